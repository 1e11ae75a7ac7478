//! The relay store's contract, kept by both back ends: SQLite (a file) and PostgreSQL (a scratch
//! database on the real server).

mod common;

use common::postgres::TempDb;
use dolbom::relay::store::{Delivery, Outcome, PgStore, RelayStore, SqliteStore};

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
    assert_eq!(store.next_due().expect("due"), Some(10));
    assert!(store.claim("a", 9).expect("not yet").is_none(), "nothing is due before next_ms");
    let first = store.claim("a", 20).expect("claim").expect("a row");
    let second = store.claim("b", 20).expect("claim").expect("a row");
    assert_ne!(first.id, second.id);
    assert_eq!((first.status.as_str(), first.instance.as_deref()), ("sending", Some("a")));
    assert!(store.claim("a", 20).expect("claim").is_none(), "both rows are taken");
    let sent = Outcome { status: "sent", attempts: 1, next_ms: 20, detail: Some("gw-1") };
    store.finish(first.id, &sent, 30).expect("finish");
    assert_eq!(store.sent_since("010", 25).expect("count") + store.sent_since("011", 25).expect("count"), 1);
    // Instance a restarts: b's claim is live and stays; after the lease it is presumed dead.
    assert_eq!(store.recover("a", 0, 40).expect("recover"), 0);
    assert_eq!(store.recover("a", 21, 41).expect("recover"), 1);
    let log = store.log(10).expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, second.id.max(first.id), "newest first");
    let statuses: Vec<&str> = log.iter().map(|d| d.status.as_str()).collect();
    assert!(statuses.contains(&"sent") && statuses.contains(&"unknown"), "{statuses:?}");
    assert_eq!(store.next_due().expect("due"), None);
}

#[test]
fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(&SqliteStore::open(&dir.path().join("relay.db")).expect("open"));
}

#[test]
fn postgres_keeps_the_contract() {
    let db = TempDb::create();
    contract(&PgStore::open(&db.params()).expect("open"));
    // A second relay opening the same database finds the tables and the records.
    let again = PgStore::open(&db.params()).expect("reopen");
    assert_eq!(again.log(10).expect("log").len(), 2);
}

/// Two relays claiming from one PostgreSQL store at once never take the same delivery.
#[test]
fn postgres_claims_are_exclusive_across_relays() {
    let db = TempDb::create();
    let setup = PgStore::open(&db.params()).expect("open");
    let rows: Vec<Delivery> = (0..200).map(|i| delivery("e", &format!("010{i:05}"))).collect();
    assert!(setup.intake("e", "accepted", &rows, 10).expect("intake"));
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                let params = db.params();
                s.spawn(move || {
                    let store = PgStore::open(&params).expect("open");
                    let mut mine = Vec::new();
                    while let Some(d) = store.claim(name, 20).expect("claim") {
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
