//! A scratch PostgreSQL database per test, on the server the test set-up provides (this machine
//! kind's own on 127.0.0.1:5432; scripts/test.sh installs one and the `dolbom_test` role elsewhere).
//! `DOLBOM_TEST_POSTGRES` overrides the connection string. Fails loudly, never skips.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

pub fn admin_params() -> String {
    std::env::var("DOLBOM_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=dolbom_test password=dolbom_test dbname=postgres".into())
}

/// The `[relay]` keys for connection string `params`: its password moved into a 0600 file in
/// `dir`, as the relay requires (`relay.postgres_password_file`).
pub fn relay_keys(params: &str, dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mut password = None;
    let kept: Vec<&str> = params
        .split_whitespace()
        .filter(|kv| match kv.strip_prefix("password=") {
            Some(p) => {
                password = Some(p.trim_matches('\'').to_string());
                false
            }
            None => true,
        })
        .collect();
    let mut keys = format!("postgres = \"{}\"\n", kept.join(" "));
    if let Some(p) = password {
        static N: AtomicUsize = AtomicUsize::new(0);
        let file = dir.join(format!("pg-password-{}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&file, p).expect("password file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        keys.push_str(&format!("postgres_password_file = \"{}\"\n", file.display()));
    }
    keys
}

pub struct TempDb {
    name: String,
}

impl TempDb {
    pub fn create() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("dolbom_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&admin_params(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at `{}`: {e} (run scripts/test.sh)", admin_params()));
        // Separate statements: a multi-statement string runs as one transaction, which these refuse.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).expect("drop old db");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create db");
        TempDb { name }
    }

    /// The server's TCP port on loopback (for a proxy in front of it).
    pub fn port(&self) -> u16 {
        admin_params().split_whitespace().find_map(|kv| kv.strip_prefix("port=")?.parse().ok()).unwrap_or(5432)
    }

    /// The connection string for this database.
    pub fn params(&self) -> String {
        format!("{} dbname={}", admin_params(), self.name)
    }

    /// The same database reached through another port on loopback (a proxy).
    pub fn params_via(&self, port: u16) -> String {
        self.params_at(&format!("host=127.0.0.1 port={port}"))
    }

    /// The same database with `where_` (host, hostaddr, port) in place of the server's address.
    pub fn params_at(&self, where_: &str) -> String {
        let admin = admin_params();
        let kept: Vec<&str> =
            admin.split_whitespace().filter(|kv| !kv.starts_with("port=") && !kv.starts_with("host=")).collect();
        format!("{where_} {} dbname={}", kept.join(" "), self.name)
    }

    /// The server's TLS certificate file and a name it is issued to (the test set-up's server:
    /// Debian's, with its snakeoil certificate). Fails loudly when the server has no TLS.
    pub fn server_certificate(&self) -> (std::path::PathBuf, String) {
        let mut admin = postgres::Client::connect(&admin_params(), postgres::NoTls).expect("admin");
        let ssl: String = admin.query_one("SHOW ssl", &[]).expect("ssl").get(0);
        assert_eq!(ssl, "on", "the test server has TLS off");
        let file: String = admin.query_one("SHOW ssl_cert_file", &[]).expect("ssl_cert_file").get(0);
        let mut path = std::path::PathBuf::from(file);
        if path.is_relative() {
            let data: String = admin.query_one("SHOW data_directory", &[]).expect("data_directory").get(0);
            path = std::path::Path::new(&data).join(path);
        }
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-subject", "-nameopt", "multiline", "-in"])
            .arg(&path)
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let name = text
            .split([',', '\n'])
            .find_map(|p| p.trim().strip_prefix("DNS:").map(str::to_string))
            .or_else(|| {
                text.lines().find_map(|l| {
                    l.trim().strip_prefix("commonName").map(|v| v.trim_start_matches([' ', '=']).to_string())
                })
            })
            .unwrap_or_else(|| panic!("no name in {}: {text}", path.display()));
        (path, name)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&admin_params(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
