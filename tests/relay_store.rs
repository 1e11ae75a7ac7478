//! The relay store's contract, kept by both back ends: SQLite (a file) and PostgreSQL (a scratch
//! database on the real server).

mod common;

use common::postgres::TempDb;
use dolbom_relay::store::{Delivery, Outcome, Parked, PgStore, Recovered, RelayStore, SqliteStore, StoreError};

fn delivery(event_id: &str, recipient: &str) -> Delivery {
    Delivery {
        id: 0,
        event_id: event_id.into(),
        recipient: recipient.into(),
        guardian: "mom".into(),
        child: "minji".into(),
        center: "c".into(),
        notice: "arrival".into(),
        event_ms: 1,
        sender: "0212345678".into(),
        msg_type: "SMS".into(),
        subject: None,
        body: "hello".into(),
        status: "pending".into(),
        attempts: 0,
        next_ms: 10,
        created_ms: 10,
        updated_ms: 10,
        detail: None,
        instance: None,
    }
}

/// The contract both back ends keep.
fn contract(store: &dyn RelayStore) {
    let d = [delivery("e1", "010"), delivery("e1", "011")];
    assert!(store.intake("e1", "accepted", &d, 10).expect("intake"));
    assert!(!store.intake("e1", "accepted", &d, 11).expect("again"), "the same event twice is seen once");
    assert!(store.intake("e2", "accepted", &[delivery("e2", "010")], 12).expect("intake"));
    assert_eq!(store.next_due().expect("due"), Some(10));
    assert!(store.claim("a", "t0", 9).expect("not yet").is_none(), "nothing is due before next_ms");
    let first = store.claim("a", "t1", 20).expect("claim").expect("a row");
    let second = store.claim("b", "t2", 20).expect("claim").expect("a row");
    assert_eq!((first.recipient.as_str(), second.recipient.as_str()), ("010", "011"), "oldest first");
    assert_eq!((first.status.as_str(), first.instance.as_deref()), ("claimed", Some("a")));
    assert!(store.claim("a", "t3", 20).expect("claim").is_none(), "010's second text waits for its first");
    assert_eq!(store.next_due().expect("due"), None, "nothing claimable while 010 and 011 are in flight");

    // Only the claim's holder sends and records.
    assert!(store.begin_send(first.id, "t1", 21).expect("begin"));
    assert!(!store.begin_send(second.id, "t1", 21).expect("begin"), "t2's claim is not t1's to send");
    let sent = Outcome { status: "sent", attempts: 1, next_ms: 20, detail: Some("gw-1") };
    assert!(store.finish(first.id, "t1", &sent, 30).expect("finish"));
    assert!(!store.finish(second.id, "t1", &sent, 30).expect("finish"), "nor to record");
    assert_eq!(store.sent_since("010", 25).expect("count"), 1);
    assert_eq!(store.sent_since("011", 25).expect("count"), 0);

    // a restarts: nothing of a's is in flight, and b's live claim is not a's to settle.
    assert_eq!(store.recover("a", 0, 40).expect("recover"), Recovered::default());
    // b dies mid-send and restarts: that text is unknown, never sent again.
    assert!(store.begin_send(second.id, "t2", 41).expect("begin"));
    assert_eq!(store.recover("b", 0, 42).expect("recover"), Recovered { requeued: 0, unknown: 1 });

    // 010's second text: claimed by c, which vanishes before sending; after the lease any relay
    // puts it back in the queue. c's late steps then land nowhere.
    let third = store.claim("c", "t4", 50).expect("claim").expect("010's second text");
    assert_eq!(third.event_id, "e2");
    assert_eq!(store.recover("", 40, 60).expect("sweep"), Recovered::default(), "a live claim stays");
    assert_eq!(store.recover("", 55, 60).expect("sweep"), Recovered { requeued: 1, unknown: 0 });
    assert!(!store.begin_send(third.id, "t4", 61).expect("begin"), "c lost its claim");
    let again = store.claim("c", "t5", 62).expect("claim").expect("queued again");
    assert_eq!(again.id, third.id);
    // The same relay's earlier attempt reporting late (a lost commit reply, retried) must not
    // overwrite the new claim: the claim token, not the relay's name, decides.
    let retry = Outcome { status: "pending", attempts: 1, next_ms: 63, detail: Some("HTTP 500") };
    assert!(!store.finish(third.id, "t4", &retry, 63).expect("finish"), "a stale outcome is refused");
    // A claim whose answer was lost is handed back by its token.
    assert_eq!(store.release("t5", 64).expect("release"), 1);
    assert_eq!(store.release("t5", 64).expect("release"), 0);
    let last = store.claim("a", "t6", 65).expect("claim").expect("claimable again");
    assert_eq!(last.id, third.id);

    let log = store.log(10).expect("log");
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].id, third.id, "newest first");
    let statuses: Vec<&str> = log.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["claimed", "unknown", "sent"]);

    // Retention: settled rows and seen events go; a text still under way stays, whatever its age.
    assert_eq!(store.prune(1_000).expect("prune"), 2 + 2, "two settled texts and both events");
    let left = store.log(10).expect("log");
    assert_eq!(left.iter().map(|d| d.id).collect::<Vec<_>>(), [third.id]);
    assert!(store.intake("e1", "accepted", &[], 1_001).expect("intake"), "a forgotten event is new again");
}

fn parked(event_id: &str, event_ms: i64) -> Parked {
    Parked { event_id: event_id.into(), topic: "t".into(), payload: "{}".into(), event_ms }
}

/// Events of a child the directory did not know are kept once, listed while recent, and planned
/// again at most once: the deliveries come with taking the event off the list.
fn parked_contract(store: &dyn RelayStore) {
    assert!(store.intake_parked(&parked("p1", 100), "unknown child", 10).expect("park"));
    assert!(!store.intake_parked(&parked("p1", 100), "unknown child", 11).expect("again"), "seen once");
    assert!(!store.intake("p1", "accepted", &[delivery("p1", "010")], 12).expect("intake"), "the dedupe holds");
    assert!(store.intake_parked(&parked("p0", 50), "unknown child", 12).expect("park"));
    assert_eq!(store.parked(0).expect("list"), [parked("p0", 50), parked("p1", 100)], "oldest first");
    assert_eq!(store.parked(60).expect("list"), [parked("p1", 100)], "too old to plan again");
    assert_eq!(store.parked(0).expect("list"), [parked("p1", 100)], "and forgotten");
    assert!(store.log(10).expect("log").is_empty(), "no texts for an unknown child");
    let texts = [delivery("p1", "010"), delivery("p1", "011")];
    assert!(store.unpark("p1", "accepted: 2 text(s)", &texts, 20).expect("unpark"));
    assert!(!store.unpark("p1", "accepted: 2 text(s)", &texts, 21).expect("unpark"), "only once");
    assert!(store.parked(0).expect("list").is_empty());
    assert_eq!(store.log(10).expect("log").len(), 2);
    assert!(!store.unpark("never-parked", "x", &[delivery("never-parked", "010")], 22).expect("unpark"));
    assert_eq!(store.log(10).expect("log").len(), 2);
}

/// Arrivals held for a re-measure are kept once, found by id, listed when overdue, and
/// released at most once: the texts come with taking the arrival off the held list.
fn held_contract(store: &dyn RelayStore) {
    assert!(store.intake_held(&parked("h1", 100), "held", 10).expect("hold"));
    assert!(!store.intake_held(&parked("h1", 100), "held", 11).expect("again"), "seen once");
    assert!(!store.intake("h1", "accepted", &[delivery("h1", "010")], 12).expect("intake"), "the dedupe holds");
    assert!(store.intake_held(&parked("h0", 50), "held", 12).expect("hold"));
    assert_eq!(store.held("h1").expect("get"), Some(parked("h1", 100)));
    assert_eq!(store.held("nope").expect("get"), None);
    assert_eq!(store.held_before(60).expect("due"), [parked("h0", 50)], "only the overdue");
    assert_eq!(store.held_before(1000).expect("due"), [parked("h0", 50), parked("h1", 100)], "oldest first");
    assert!(store.log(10).expect("log").is_empty(), "no texts while held");
    let texts = [delivery("h1", "010"), delivery("h1", "011")];
    assert!(store.release_held("h1", "settled: 2 text(s)", &texts, 20).expect("release"));
    assert!(!store.release_held("h1", "unsettled: 2 text(s)", &texts, 21).expect("release"), "only once");
    assert_eq!(store.held("h1").expect("get"), None);
    assert_eq!(store.log(10).expect("log").len(), 2);
    assert_eq!(store.held_before(1000).expect("due"), [parked("h0", 50)], "the other is still held");
    assert_eq!(store.outcome("h1").expect("outcome").as_deref(), Some("settled: 2 text(s)"));
    assert_eq!(store.outcome("nope").expect("outcome"), None);
    // A parked arrival whose child is added moves to the held list, once, without texts.
    assert!(store.intake_parked(&parked("h2", 200), "unknown child", 30).expect("park"));
    assert!(store.unpark_to_held(&parked("h2", 200), "held (after a directory change)", 31).expect("move"));
    assert!(!store.unpark_to_held(&parked("h2", 200), "again", 32).expect("move"), "only once");
    assert!(store.parked(0).expect("list").is_empty());
    assert_eq!(store.held("h2").expect("get"), Some(parked("h2", 200)));
    assert_eq!(store.outcome("h2").expect("outcome").as_deref(), Some("held (after a directory change)"));
    assert_eq!(store.log(10).expect("log").len(), 2, "no texts when moved");
}

#[test]
fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(&SqliteStore::open(&dir.path().join("relay.db")).expect("open"));
    parked_contract(&SqliteStore::open(&dir.path().join("parked.db")).expect("open"));
    held_contract(&SqliteStore::open(&dir.path().join("held.db")).expect("open"));
}

#[test]
fn postgres_keeps_the_contract() {
    let db = TempDb::create();
    contract(&PgStore::open(&db.params(), None, None).expect("open"));
    // A second relay opening the same database finds the tables and the records.
    let again = PgStore::open(&db.params(), None, None).expect("reopen");
    assert_eq!(again.log(10).expect("log").len(), 1);
    parked_contract(&PgStore::open(&TempDb::create().params(), None, None).expect("open"));
    held_contract(&PgStore::open(&TempDb::create().params(), None, None).expect("open"));
}

/// Relays sharing a store that all see the directory change plan a parked event again at once:
/// exactly one of them adds its texts.
#[test]
fn postgres_plans_a_parked_event_again_once_across_relays() {
    let db = TempDb::create();
    let setup = PgStore::open(&db.params(), None, None).expect("open");
    for i in 0..50 {
        assert!(setup.intake_parked(&parked(&format!("p{i}"), 100), "unknown child", 10).expect("park"));
    }
    let won: Vec<usize> = std::thread::scope(|s| {
        let relays: Vec<_> = (0..4)
            .map(|_| {
                let params = db.params();
                s.spawn(move || {
                    let store = PgStore::open(&params, None, None).expect("open");
                    let mut won = 0;
                    for p in store.parked(0).expect("list") {
                        let texts = [delivery(&p.event_id, "010"), delivery(&p.event_id, "011")];
                        won += usize::from(store.unpark(&p.event_id, "accepted", &texts, 20).expect("unpark"));
                    }
                    won
                })
            })
            .collect();
        relays.into_iter().map(|r| r.join().expect("relay")).collect()
    });
    assert_eq!(won.iter().sum::<usize>(), 50, "each parked event planned once: {won:?}");
    assert_eq!(setup.log(1000).expect("log").len(), 100, "two texts each, no more");
}

/// Two relays claiming from one PostgreSQL store at once never take the same delivery.
#[test]
fn postgres_claims_are_exclusive_across_relays() {
    let db = TempDb::create();
    let setup = PgStore::open(&db.params(), None, None).expect("open");
    let rows: Vec<Delivery> = (0..200).map(|i| delivery("e", &format!("010{i:05}"))).collect();
    assert!(setup.intake("e", "accepted", &rows, 10).expect("intake"));
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                let params = db.params();
                s.spawn(move || {
                    let store = PgStore::open(&params, None, None).expect("open");
                    let mut mine = Vec::new();
                    let mut n = 0;
                    while let Some(d) = store.claim(name, &format!("{name}-{n}"), 20).expect("claim") {
                        n += 1;
                        mine.push(d.id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    let mut all: Vec<i64> = claimed.iter().flatten().copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        200,
        "every delivery claimed exactly once: {:?}",
        claimed.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(claimed.iter().map(Vec::len).sum::<usize>(), 200);
}

/// Two processes under one relay name would settle each other's claims: the second is refused.
#[test]
fn postgres_refuses_a_second_relay_under_the_same_name() {
    let db = TempDb::create();
    let first = PgStore::open(&db.params(), None, Some("relay-1")).expect("open");
    let second = PgStore::open(&db.params(), None, Some("relay-1"));
    assert!(matches!(second, Err(StoreError::InstanceTaken(ref n)) if n == "relay-1"), "{:?}", second.err());
    assert!(PgStore::open(&db.params(), None, Some("relay-2")).is_ok(), "another name is fine");
    drop(first);
    assert!(PgStore::open(&db.params(), None, Some("relay-1")).is_ok(), "free again once the first is gone");
}

/// One guardian never has two texts in flight, however many senders claim at once: four
/// concurrent claimers over 60 texts to three guardians, each checked in and out around a send.
#[test]
fn postgres_keeps_one_text_in_flight_per_guardian() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let db = TempDb::create();
    let setup = PgStore::open(&db.params(), None, None).expect("open");
    for i in 0..20 {
        let rows: Vec<Delivery> = ["010", "011", "012"].iter().map(|r| delivery(&format!("e{i}"), r)).collect();
        assert!(setup.intake(&format!("e{i}"), "accepted", &rows, 10).expect("intake"));
    }
    let in_flight: Mutex<HashMap<String, usize>> = Mutex::default();
    let sent: Mutex<Vec<i64>> = Mutex::default();
    std::thread::scope(|s| {
        for w in 0..4 {
            let (params, in_flight, sent) = (db.params(), &in_flight, &sent);
            s.spawn(move || {
                let store = PgStore::open(&params, None, None).expect("open");
                let mut idle = 0;
                for n in 0.. {
                    let token = format!("w{w}-{n}");
                    let Some(d) = store.claim("r", &token, 20).expect("claim") else {
                        idle += 1;
                        if idle > 50 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        continue;
                    };
                    idle = 0;
                    {
                        let mut map = in_flight.lock().expect("map");
                        let c = map.entry(d.recipient.clone()).or_default();
                        *c += 1;
                        assert_eq!(*c, 1, "two texts in flight to {}", d.recipient);
                    }
                    assert!(store.begin_send(d.id, &token, 21).expect("begin"));
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    *in_flight.lock().expect("map").get_mut(&d.recipient).expect("entry") -= 1;
                    let done = Outcome { status: "sent", attempts: 1, next_ms: 20, detail: None };
                    assert!(store.finish(d.id, &token, &done, 22).expect("finish"));
                    sent.lock().expect("sent").push(d.id);
                }
            });
        }
    });
    let mut ids = sent.into_inner().expect("sent");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "every text sent once");
}

/// `sslmode=require` means TLS, verified: with the server's certificate as the CA the store
/// connects and the server reports its sessions encrypted; against CAs that do not vouch for the
/// server, or under another name, it is refused, never a silent plaintext fallback.
#[test]
fn postgres_over_tls_is_verified() {
    let db = TempDb::create();
    let (cert, name) = db.server_certificate();
    let params = db.params_at(&format!("host={name} hostaddr=127.0.0.1 port={} sslmode=require", db.port()));
    let store = PgStore::open(&params, Some(&cert), None).expect("TLS, verified against the server's certificate");
    store.log(1).expect("a query over TLS");
    let mut admin = postgres::Client::connect(&common::postgres::admin_params(), postgres::NoTls).expect("admin");
    // The last `dbname=` wins in a connection string.
    let db_name =
        params.split_whitespace().rev().find_map(|kv| kv.strip_prefix("dbname=")).expect("dbname").to_string();
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
            &[&db_name],
        )
        .expect("pg_stat_ssl");
    let (encrypted, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(encrypted >= 1 && plain == 0, "store sessions: {encrypted} encrypted, {plain} plain");
    // The public CAs (Debian's bundle; set-up installs ca-certificates) do not vouch for it.
    let public = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    let refused = PgStore::open(&params, Some(public), None).err();
    assert!(
        matches!(&refused, Some(StoreError::Postgres(e)) if format!("{e:?}").contains("UnknownIssuer")),
        "a server the CAs do not vouch for is refused: {refused:?}"
    );
    let wrong_name = db.params_at(&format!("host=not-{name} hostaddr=127.0.0.1 port={} sslmode=require", db.port()));
    let refused = PgStore::open(&wrong_name, Some(&cert), None).err();
    assert!(
        matches!(&refused, Some(StoreError::Postgres(e)) if format!("{e:?}").contains("NotValidForName")),
        "the server's name is checked too: {refused:?}"
    );
}

/// The deliveries table as the first released relay wrote it: no claim columns, no in-flight
/// index. Two `sending` rows for one guardian, as an interrupted older relay could leave.
const OLD_SCHEMA: &str = "
CREATE TABLE events_seen (event_id TEXT PRIMARY KEY, received_ms BIGINT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE deliveries (
    id {ID}, event_id TEXT NOT NULL, recipient TEXT NOT NULL, guardian TEXT NOT NULL,
    child TEXT NOT NULL, center TEXT NOT NULL, notice TEXT NOT NULL, event_ms BIGINT NOT NULL,
    sender TEXT NOT NULL, msg_type TEXT NOT NULL, subject TEXT, body TEXT NOT NULL, status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0, next_ms BIGINT NOT NULL, created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL, detail TEXT, UNIQUE (event_id, recipient));
INSERT INTO deliveries (event_id, recipient, guardian, child, center, notice, event_ms, sender, msg_type, body,
                        status, next_ms, created_ms, updated_ms)
VALUES ('e1', '010', 'mom', 'minji', 'c', 'arrival', 1, 's', 'SMS', 'hi', 'sending', 1, 1, 1),
       ('e2', '010', 'mom', 'minji', 'c', 'departure', 2, 's', 'SMS', 'bye', 'sending', 2, 2, 2),
       ('e3', '011', 'dad', 'minji', 'c', 'arrival', 3, 's', 'SMS', 'hi', 'pending', 3, 3, 3);
";

/// A store written by an older relay opens: the claim columns are added, the second in-flight
/// text for one guardian is settled as unknown, and the store works on.
fn upgrade_check(store: &dyn RelayStore) {
    let log = store.log(10).expect("log");
    let statuses: Vec<&str> = log.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["pending", "unknown", "sending"], "newest first");
    assert_eq!(store.recover("a", 0, 10).expect("recover").unknown, 1, "the interrupted send, at the restart");
    let next = store.claim("a", "t1", 10).expect("claim").expect("the pending text");
    assert_eq!(next.event_id, "e3");
}

#[test]
fn sqlite_store_from_an_older_relay_upgrades() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let conn = rusqlite::Connection::open(&path).expect("old file");
    conn.execute_batch(&OLD_SCHEMA.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT")).expect("old schema");
    drop(conn);
    upgrade_check(&SqliteStore::open(&path).expect("opens"));
}

#[test]
fn postgres_store_from_an_older_relay_upgrades() {
    let db = TempDb::create();
    let mut old = postgres::Client::connect(&db.params(), postgres::NoTls).expect("connect");
    old.batch_execute(&OLD_SCHEMA.replace("{ID}", "BIGSERIAL PRIMARY KEY")).expect("old schema");
    drop(old);
    upgrade_check(&PgStore::open(&db.params(), None, None).expect("opens"));
}
