//! A TCP forwarder on loopback that a test can take down and bring back, to play a network or
//! database outage between the relay and a real server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    target: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:target` on a free port, down until [`Proxy::up`].
    pub fn new(target: u16) -> Self {
        Proxy { port: super::broker::free_port(), target, up: Arc::new(AtomicBool::new(false)), conns: Arc::default() }
    }

    /// Starts listening and forwarding.
    pub fn up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        self.up.store(true, Ordering::SeqCst);
        let (up, conns, target) = (self.up.clone(), self.conns.clone(), self.target);
        std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let _ = client.set_nonblocking(false);
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        conns.lock().expect("conns").push(c);
                    }
                }
                pipe(client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                pipe(server, client);
            }
            // Dropping the listener here closes the port: new connections are refused.
        });
    }

    /// Stops listening and cuts every open connection.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().expect("conns").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
