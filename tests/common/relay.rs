//! The real relay for one center beside a kiosk under test: a directory with Obama (enrolled
//! as a child by the kiosk tests) and his two guardians, texting through the gateway double.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::broker::signal;

pub struct Relay {
    pub child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Relay {
    /// Writes the relay's config and directory under `dir/relay`, starts `dolbom relay` and
    /// waits until it has subscribed to the center's attendance and temperature events.
    pub fn start(dir: &Path, center: &str, port: u16, gateway_url: &str) -> Relay {
        let relay_dir = dir.join("relay");
        std::fs::create_dir_all(&relay_dir).expect("relay dir");
        std::fs::write(
            relay_dir.join("directory.toml"),
            format!(
                "[[center]]\nid = \"{center}\"\nname = \"햇살어린이집\"\nsender = \"02-123-4567\"\ntimezone = \"Asia/Seoul\"\n\n\
                 [[child]]\nid = \"obama\"\ncenter = \"{center}\"\nname = \"오바마\"\n\n\
                 [[child.guardian]]\nname = \"mom\"\nphone = \"010-1234-5678\"\nlang = \"ko\"\n\n\
                 [[child.guardian]]\nname = \"dad\"\nphone = \"010-8765-4321\"\nlang = \"en\"\n"
            ),
        )
        .expect("directory");
        let config = relay_dir.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"relay-{center}\"\nreconnect_initial_ms = 100\nreconnect_max_ms = 500\n{tls}\n\
                 [relay]\ntopics = [\"dolbom/v1/{center}/+/event/attendance\", \"dolbom/v1/{center}/+/event/temperature\"]\n\
                 database = \"relay.db\"\ndirectory = \"directory.toml\"\ndirectory_poll_seconds = 1\n\n\
                 [provider]\nkind = \"webhook\"\nurl = \"{gateway_url}/send\"\n",
                tls = super::broker::tls_toml(),
            ),
        )
        .expect("relay config");
        let log = relay_dir.join("relay.log");
        let child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
            .args(["relay", "--config"])
            .arg(&config)
            // The watcher's debug line marks each round of replan and release_overdue.
            .env("DOLBOM_LOG", "info,dolbom_relay::reload=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn relay");
        super::wait_until("the relay to subscribe", Duration::from_secs(20), || {
            std::fs::read_to_string(&log).unwrap_or_default().contains("subscribed")
        });
        Relay { child, log, config }
    }

    /// Stops the relay (SIGTERM) and returns its log.
    pub fn stop(mut self) -> String {
        signal(self.child.id(), "TERM");
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
