//! Locks on the door, against a real Mosquitto: TLS with certificates made here by the
//! `openssl` CLI, a password file made by `mosquitto_passwd`, the shipped listener config
//! (config/mosquitto/dolbom.conf) and the ACLs the shipped generator (scripts/mosquitto-acl.sh)
//! writes for a fleet. Every client connects through dolbom_mqtt, as the kiosk and relay do.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tls::{make_ca, make_leaf, tls, TlsBroker, NAME};
use dolbom_mqtt::{BrokerConfig, Outgoing5, Protocol, Session, SessionError, SessionEvent};

const CENTER: &str = "haessal";

/// The fleet: two kiosks, a relay and two staff offices of the same name in two centers.
const USERS: [&str; 5] =
    ["kiosk@haessal@door1", "kiosk@haessal@door2", "relay@district", "staff@haessal@office", "staff@sun@office"];
const FLEET: &str =
    "kiosk haessal door1\nkiosk haessal door2\nrelay district\nstaff office haessal\nstaff office sun\n";

fn start_broker(dir: &Path) -> TlsBroker {
    TlsBroker::start(dir, FLEET, &USERS)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Connects and returns the session, or the error that ended the attempt.
async fn connect(c: &BrokerConfig) -> Result<Session, SessionError> {
    let mut session = Session::new(Protocol::V311, &c.connect_options("test"));
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match session.poll().await? {
                SessionEvent::Connected => return Ok(()),
                _ => continue,
            }
        }
    })
    .await
    .map_err(|_| SessionError::Network("no CONNACK within 10 s".into()))??;
    Ok(session)
}

fn event(topic: String, marker: &str) -> Outgoing5 {
    Outgoing5 {
        topic,
        payload: format!("{{\"marker\":\"{marker}\"}}").into_bytes(),
        retain: false,
        expiry_secs: None,
        user_properties: Vec::new(),
    }
}

/// Waits until the broker has acknowledged the last publish (it has taken it, or dropped it).
async fn acked(session: &mut Session) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(session.poll().await.expect("connection"), SessionEvent::Acked { .. }) {}
    })
    .await
    .expect("PUBACK within 10 s")
}

/// Waits for the next message on `session`.
async fn next_message(session: &mut Session) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SessionEvent::Message { topic, payload, .. } = session.poll().await.expect("connection") {
                return (topic, String::from_utf8_lossy(&payload).into_owned());
            }
        }
    })
    .await
    .expect("a message within 10 s")
}

#[test]
fn tls_names_cas_and_acls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_broker(dir.path());
    let rt = runtime();
    rt.block_on(async {
        // The relay's view: every event of the fleet its ACL lets it read.
        let relay = broker.config("relay@district", &tls("ca.crt", NAME));
        let mut relay = connect(&relay).await.expect("the relay connects over TLS");
        relay.subscribe("dolbom/v1/+/+/event/#").expect("subscribe");
        loop {
            if let SessionEvent::Subscribed { refused } = relay.poll().await.expect("subscribed") {
                assert_eq!(refused, 0);
                break;
            }
        }

        // The kiosk connects and delivers under its own root.
        let kiosk = broker.config("kiosk@haessal@door1", &tls("ca.crt", NAME));
        let mut door1 = connect(&kiosk).await.expect("the kiosk connects over TLS");
        let own = format!("dolbom/v1/{CENTER}/door1/event/attendance");
        door1.publish(&event(own.clone(), "own-1")).expect("publish");
        assert_eq!(next_message(&mut relay).await, (own.clone(), "{\"marker\":\"own-1\"}".into()));

        // Door 1's credentials under door 2's root: the broker drops it. Door 1 then publishes a
        // marker of its own on the same connection; the relay gets the marker first and nothing
        // before it, so the forged event never reached it (and it had nothing to text).
        let other = format!("dolbom/v1/{CENTER}/door2/event/attendance");
        door1.publish(&event(other, "forged")).expect("publish");
        door1.publish(&event(own.clone(), "own-2")).expect("publish");
        assert_eq!(
            next_message(&mut relay).await,
            (own.clone(), "{\"marker\":\"own-2\"}".into()),
            "the forged event under door2/ must not reach the relay"
        );

        // A kiosk cannot send itself (or a sibling) staff commands; a staff client of another
        // center cannot either: both are dropped, only the office's own command arrives.
        let mut door2 = connect(&broker.config("kiosk@haessal@door2", &tls("ca.crt", NAME))).await.expect("door2");
        door2.subscribe(&format!("dolbom/v1/{CENTER}/door2/cmd/#")).expect("subscribe");
        loop {
            if let SessionEvent::Subscribed { refused } = door2.poll().await.expect("subscribed") {
                assert_eq!(refused, 0);
                break;
            }
        }
        let cmd = format!("dolbom/v1/{CENTER}/door2/cmd/silence");
        door1.publish(&event(cmd.clone(), "from-door1")).expect("publish");
        acked(&mut door1).await;
        // The other center's office has the same name; its command is acknowledged before the
        // haessal office sends its own, so had it gone through, door 2 would get it first.
        let mut sun = connect(&broker.config("staff@sun@office", &tls("ca.crt", NAME))).await.expect("sun office");
        sun.publish(&event(cmd.clone(), "from-sun-office")).expect("publish");
        acked(&mut sun).await;
        let office = connect(&broker.config("staff@haessal@office", &tls("ca.crt", NAME))).await.expect("office");
        office.publish(&event(format!("dolbom/v1/{CENTER}/door2/event/attendance"), "office-event")).expect("publish");
        office.publish(&event(cmd.clone(), "from-office")).expect("publish");
        assert_eq!(next_message(&mut door2).await, (cmd, "{\"marker\":\"from-office\"}".into()));
        // Had the office's forged event gone through, the relay would have it before this one.
        door1.publish(&event(own.clone(), "own-3")).expect("publish");
        assert_eq!(next_message(&mut relay).await, (own, "{\"marker\":\"own-3\"}".into()));
    });
}

/// The generator refuses fleets whose user names or Home Assistant node ids would meet, and the
/// ids dolbom refuses; ids with '.' and '-' stay apart.
#[test]
fn the_acl_generator_refuses_ambiguous_fleets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mosquitto-acl.sh");
    let run = |fleet: &str, args: &[&str]| {
        let file = dir.path().join("fleet.txt");
        std::fs::write(&file, fleet).expect("fleet");
        let out = Command::new(&script).args(args).arg(&file).output().expect("acl script");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, acl, err) = run("kiosk sun-flower door\nkiosk sun flower-door\nkiosk a.b door\n", &[]);
    assert!(ok, "{err}");
    for user in ["user kiosk@sun-flower@door\n", "user kiosk@sun@flower-door\n", "user kiosk@a.b@door\n"] {
        assert!(acl.contains(user), "{user} in {acl}");
    }
    assert!(acl.contains("topic write homeassistant/+/dolbom_a_b_door/#\n"), "{acl}");
    for (fleet, says) in [
        ("relay district\nrelay district haessal\n", "user `relay@district` already comes from line 1"),
        ("staff office haessal\nstaff office haessal\n", "user `staff@haessal@office` already comes from line 1"),
        ("kiosk a.b door\nkiosk a_b door\n", "node id `dolbom_a_b_door` of line 1"),
        ("kiosk a b_c\nkiosk a_b c\n", "node id `dolbom_a_b_c` of line 1"),
        ("kiosk .hidden door\n", "`.hidden` is not a dolbom id"),
        ("kiosk a@b door\n", "`a@b` is not a dolbom id"),
    ] {
        let (ok, _, err) = run(fleet, &[]);
        assert!(!ok && err.contains(says), "{fleet:?}: {err}");
    }
    let (ok, acl, err) = run("kiosk a b\n", &["--discovery-prefix", "ha/site1"]);
    assert!(ok, "{err}");
    assert!(acl.contains("topic write ha/site1/+/dolbom_a_b/#\n") && !acl.contains("homeassistant"), "{acl}");
    let (ok, _, err) = run("kiosk a b\n", &["--discovery-prefix", "ha/#"]);
    assert!(!ok && err.contains("--discovery-prefix"), "{err}");
}

#[test]
fn wrong_ca_wrong_name_and_plain_tcp_are_refused_loudly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start_broker(dir.path());
    let rt = runtime();
    let user = "kiosk@haessal@door1";
    let err = |c: BrokerConfig| match rt.block_on(connect(&c)) {
        Ok(_) => panic!("connected where it must not"),
        Err(e) => e,
    };

    let e = err(broker.config(user, &tls("other-ca.crt", NAME)));
    assert!(matches!(e, SessionError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("not signed by a trusted CA") && e.to_string().contains("mqtt.tls.ca_file"), "{e}");

    let e = err(broker.config(user, &tls("ca.crt", "kiosk.other.test")));
    assert!(matches!(e, SessionError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("not valid for the name"), "{e}");

    // Without server_name the host (127.0.0.1) is checked, which the certificate does not name.
    let e = err(broker.config(user, "[tls]\nca_file = \"ca.crt\"\n"));
    assert!(e.to_string().contains("not valid for the name"), "{e}");

    let e = err(broker.config(user, ""));
    assert!(e.to_string().contains("TLS listener"), "plain MQTT to the TLS port: {e}");

    // The right CA and name still work, so the refusals above were about CA, name and TLS.
    rt.block_on(connect(&broker.config(user, &tls("ca.crt", NAME)))).expect("connects");
}

#[test]
fn a_client_key_every_user_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path(), "ca");
    make_leaf(dir.path(), "ca", "client", "door1.dolbom.test");
    std::fs::set_permissions(dir.path().join("client.key"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = "[tls]\nca_file = \"ca.crt\"\nclient_cert_file = \"client.crt\"\nclient_key_file = \"client.key\"\n";
    let mut c: BrokerConfig = toml::from_str(text).expect("parses");
    c.validate().expect("valid");
    let e = c.load_secrets(dir.path()).expect_err("world-readable key");
    assert_eq!(e.key(), "mqtt.tls.client_key_file");
    std::fs::set_permissions(dir.path().join("client.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut c: BrokerConfig = toml::from_str(text).expect("parses");
    c.load_secrets(dir.path()).expect("an owner-only key loads");
    assert!(c.tls_client.is_some());
}

/// The test harness's TLS switch (tests/common/broker.rs) is real: under `DOLBOM_TEST_TLS=1`
/// the tests' broker takes TLS only (a plain client is turned away) and the tests' own clients
/// and the daemons' configs reach it with the test CA; without it, plain MQTT as before.
#[test]
fn the_test_harness_tls_switch_really_switches() {
    use common::broker::{mqtt_options, system_broker_port, tls_on, tls_toml};
    let port = system_broker_port();
    let connects = |opts: rumqttc::MqttOptions| {
        runtime().block_on(async {
            let (_client, mut el) = rumqttc::AsyncClient::new(opts, 10);
            matches!(
                tokio::time::timeout(Duration::from_secs(10), el.poll()).await,
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))))
            )
        })
    };
    assert!(connects(mqtt_options(format!("switch-{}", std::process::id()), port)), "the tests' client connects");
    let plain = rumqttc::MqttOptions::new(format!("switch-plain-{}", std::process::id()), "127.0.0.1", port);
    assert_eq!(connects(plain), !tls_on(), "plain MQTT works exactly when the switch is off");
    assert_eq!(tls_toml().contains("[mqtt.tls]"), tls_on());
    if tls_on() {
        // What the daemons get: their own TLS settings from that TOML reach the same broker.
        let text = format!("host = \"127.0.0.1\"\nport = {port}\n{}", tls_toml().replace("[mqtt.tls]", "[tls]"));
        let mut c: BrokerConfig = toml::from_str(&text).expect("parses");
        c.validate().expect("valid");
        c.load_secrets(Path::new("/")).expect("the CA loads");
        runtime().block_on(connect(&c)).expect("a daemon's session connects over TLS");
    }
}
