//! Certificates made by the `openssl` CLI for the tests that talk TLS to a real Mosquitto, and
//! such a Mosquitto with a password file and the ACLs the shipped generator
//! (scripts/mosquitto-acl.sh) writes for a fleet, on the shipped listener config
//! (config/mosquitto/dolbom.conf).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::broker::{free_port, wait_for_port};

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh installs it)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`{name}.crt`, `{name}.key`) in `dir`; P-256 keys are fast to make.
pub fn make_ca(dir: &Path, name: &str) {
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.crt"),
        "-subj",
        &format!("/CN=dolbom test {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
}

/// A certificate `{name}.crt` signed by the CA `ca`, for the subject alternative names `san`
/// (`DNS:broker.test`, `IP:127.0.0.1`, comma-separated).
pub fn make_leaf_for(dir: &Path, ca: &str, name: &str, cn: &str, san: &str) {
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.csr"),
        "-subj",
        &format!("/CN={cn}"),
    ]));
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"),
    )
    .expect("ext");
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        &format!("{name}.csr"),
        "-CA",
        &format!("{ca}.crt"),
        "-CAkey",
        &format!("{ca}.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &format!("{name}.crt"),
        "-extfile",
        &format!("{name}.ext"),
    ]));
}

/// A certificate for one DNS name.
pub fn make_leaf(dir: &Path, ca: &str, name: &str, dns: &str) {
    make_leaf_for(dir, ca, name, dns, &format!("DNS:{dns}"))
}

/// The name on the fleet broker's certificate.
pub const NAME: &str = "broker.dolbom.test";

/// A user's password in the tests: its name reversed.
pub fn password(user: &str) -> String {
    user.chars().rev().collect()
}

/// Mosquitto with TLS, a password file and the generated ACLs, on a free port.
pub struct TlsBroker {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsBroker {
    /// `fleet` is the generator's input (`kiosk CENTER KIOSK`, `relay NAME`, `staff NAME CENTER`
    /// lines); `users` the accounts to create, each with [`password`].
    pub fn start(dir: &Path, fleet: &str, users: &[&str]) -> Self {
        make_ca(dir, "ca");
        make_ca(dir, "other-ca");
        make_leaf(dir, "ca", "broker", NAME);
        let passwd = dir.join("passwd");
        for (i, user) in users.iter().enumerate() {
            let mut cmd = Command::new("mosquitto_passwd");
            if i == 0 {
                cmd.arg("-c");
            }
            run(cmd.arg("-b").arg(&passwd).arg(user).arg(password(user)));
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let fleet_file = dir.join("fleet.txt");
        std::fs::write(&fleet_file, fleet).expect("fleet");
        let acl = Command::new(repo.join("scripts/mosquitto-acl.sh")).arg(&fleet_file).output().expect("acl script");
        assert!(acl.status.success(), "{}", String::from_utf8_lossy(&acl.stderr));
        std::fs::write(dir.join("acl"), &acl.stdout).expect("acl");
        // The shipped listener config, moved to this port and directory.
        let port = free_port();
        let shipped = std::fs::read_to_string(repo.join("config/mosquitto/dolbom.conf")).expect("shipped config");
        let mut conf = shipped
            .replace("listener 8883", &format!("listener {port} 127.0.0.1"))
            .replace("/etc/mosquitto/dolbom/", &format!("{}/", dir.display()));
        // As root, Mosquitto would drop to its own user, who cannot read this private directory.
        conf.push_str("user root\n");
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.log")).expect("log"))
            .spawn()
            .expect("mosquitto must be installed (scripts/setup.sh)");
        wait_for_port(port, Duration::from_secs(10));
        TlsBroker { port, dir: dir.to_path_buf(), child }
    }

    /// Writes `user`'s password into a 0600 file of the broker's directory and returns its path.
    pub fn password_file(&self, user: &str) -> PathBuf {
        let file = self.dir.join(format!("{user}.password"));
        std::fs::write(&file, password(user)).expect("password file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        file
    }

    /// The `[mqtt]` keys (after host and port) and the `[mqtt.tls]` table a daemon's config
    /// needs to log in as `user`: its password in a 0600 file, the test CA, the broker's name.
    pub fn login_toml(&self, user: &str) -> String {
        format!(
            "username = \"{user}\"\npassword_file = \"{}\"\n\n[mqtt.tls]\nca_file = \"{}\"\nserver_name = \"{NAME}\"\n",
            self.password_file(user).display(),
            self.dir.join("ca.crt").display()
        )
    }

    /// A client's `[mqtt]` as a kiosk or relay file would write it, `tls` its `[tls]` table.
    pub fn config(&self, user: &str, tls: &str) -> dolbom_mqtt::BrokerConfig {
        self.password_file(user);
        let text = format!(
            "host = \"127.0.0.1\"\nport = {}\nclient_id = \"{user}-{}-{}\"\nusername = \"{user}\"\npassword_file = \"{user}.password\"\n{tls}",
            self.port,
            std::process::id(),
            free_port()
        );
        let mut c: dolbom_mqtt::BrokerConfig = toml::from_str(&text).expect("parses");
        c.validate().expect("valid");
        c.load_secrets(&self.dir).expect("secrets");
        c
    }
}

/// The `[tls]` table of a client config that trusts `ca` and expects `name`.
pub fn tls(ca: &str, name: &str) -> String {
    format!("[tls]\nca_file = \"{ca}\"\nserver_name = \"{name}\"\n")
}
