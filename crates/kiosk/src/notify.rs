//! Telling systemd how the daemon is (`Type=notify`): READY once every stage runs, STOPPING at
//! shutdown, and WATCHDOG pings only while the camera → vision → event loop is alive. A stage
//! stuck in a blocking call (a wedged camera driver) stops the pings, and systemd restarts the
//! kiosk after `WatchdogSec`. The protocol is one datagram per message to `$NOTIFY_SOCKET`;
//! without that variable (not under systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::health::Health;
use crate::shutdown::Shutdown;

/// The stages whose heartbeat the watchdog checks (a stage that never beats, such as the air
/// stage on a kiosk without air sensors, is not watched).
pub const WATCHED: [&str; 4] = ["camera", "vision", "event", AIR];
/// The air stage's name among the heartbeats.
pub const AIR: &str = "air";

pub struct Notifier {
    socket: Option<(UnixDatagram, PathBuf)>,
    /// Half of `$WATCHDOG_USEC`: how often to ping, and how long a stage may go without a beat.
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Self {
        let path = std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from);
        let socket = path.and_then(|p| match UnixDatagram::unbound() {
            Ok(s) => Some((s, p)),
            Err(e) => {
                warn!(error = %e, "cannot create the systemd notification socket");
                None
            }
        });
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Self { socket, watchdog }
    }

    fn send(&self, message: &str) {
        let Some((socket, path)) = &self.socket else { return };
        // Abstract sockets are named with a leading '@'.
        let sent = match path.to_str().and_then(|p| p.strip_prefix('@')) {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
            }
            None => socket.send_to(message.as_bytes(), path),
        };
        if let Err(e) = sent {
            debug!(error = %e, message, "systemd notification not sent");
        }
    }

    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=at the door / 동작 중");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: delivering what is queued / 정지 중");
    }

    /// Pings the watchdog while every watched stage beats, until the process ends. During
    /// shutdown the stages stop one by one on purpose: the pings go on, and `TimeoutStopSec`
    /// bounds the stop instead.
    pub async fn watch(self: Arc<Self>, health: Arc<Health>, shutdown: Shutdown) {
        let Some(every) = self.watchdog.filter(|_| self.socket.is_some()) else { return };
        let mut tick = tokio::time::interval(every);
        let mut warned = false;
        loop {
            tick.tick().await;
            let stalled = health.stalled(&WATCHED, every);
            if stalled.is_empty() || shutdown.is_triggered() {
                self.send("WATCHDOG=1");
                warned = false;
            } else if !warned {
                warned = true;
                warn!(?stalled, "a stage has stopped beating: no watchdog ping, systemd will restart the kiosk");
                self.send(&format!("STATUS=stalled: {} / 멈춤", stalled.join(", ")));
            }
        }
    }
}
