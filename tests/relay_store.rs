//! The relay store's contract, kept by both back ends: SQLite (a file) and PostgreSQL (a scratch
//! database on the real server).

mod common;

use common::postgres::TempDb;
use dolbom::relay::store::{Delivery, Outcome, PgStore, Recovered, RelayStore, SqliteStore};

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
    assert!(store.claim("a", 9).expect("not yet").is_none(), "nothing is due before next_ms");
    let first = store.claim("a", 20).expect("claim").expect("a row");
    let second = store.claim("b", 20).expect("claim").expect("a row");
    assert_eq!((first.recipient.as_str(), second.recipient.as_str()), ("010", "011"), "oldest first");
    assert_eq!((first.status.as_str(), first.instance.as_deref()), ("claimed", Some("a")));
    assert!(store.claim("a", 20).expect("claim").is_none(), "010's second text waits for its first");

    // Only the claimant sends and records.
    assert!(store.begin_send(first.id, "a", 21).expect("begin"));
    assert!(!store.begin_send(second.id, "a", 21).expect("begin"), "b's claim is not a's to send");
    let sent = Outcome { status: "sent", attempts: 1, next_ms: 20, detail: Some("gw-1") };
    assert!(store.finish(first.id, "a", &sent, 30).expect("finish"));
    assert!(!store.finish(second.id, "a", &sent, 30).expect("finish"), "nor to record");
    assert_eq!(store.sent_since("010", 25).expect("count"), 1);
    assert_eq!(store.sent_since("011", 25).expect("count"), 0);

    // a restarts: nothing of a's is in flight, and b's live claim is not a's to settle.
    assert_eq!(store.recover("a", 0, 40).expect("recover"), Recovered::default());
    // b dies mid-send and restarts: that text is unknown, never sent again.
    assert!(store.begin_send(second.id, "b", 41).expect("begin"));
    assert_eq!(store.recover("b", 0, 42).expect("recover"), Recovered { requeued: 0, unknown: 1 });

    // 010's second text: claimed by c, which vanishes before sending; after the lease any relay
    // puts it back in the queue, and it goes out once.
    let third = store.claim("c", 50).expect("claim").expect("010's second text");
    assert_eq!(third.event_id, "e2");
    assert_eq!(store.recover("", 40, 60).expect("sweep"), Recovered::default(), "a live claim stays");
    assert_eq!(store.recover("", 55, 60).expect("sweep"), Recovered { requeued: 1, unknown: 0 });
    assert!(!store.begin_send(third.id, "c", 61).expect("begin"), "c lost its claim");
    let again = store.claim("a", 62).expect("claim").expect("queued again");
    assert_eq!(again.id, third.id);

    let log = store.log(10).expect("log");
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].id, third.id, "newest first");
    let statuses: Vec<&str> = log.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["claimed", "unknown", "sent"]);
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
    contract(&PgStore::open(&db.params(), None).expect("open"));
    // A second relay opening the same database finds the tables and the records.
    let again = PgStore::open(&db.params(), None).expect("reopen");
    assert_eq!(again.log(10).expect("log").len(), 3);
}

/// Two relays claiming from one PostgreSQL store at once never take the same delivery.
#[test]
fn postgres_claims_are_exclusive_across_relays() {
    let db = TempDb::create();
    let setup = PgStore::open(&db.params(), None).expect("open");
    let rows: Vec<Delivery> = (0..200).map(|i| delivery("e", &format!("010{i:05}"))).collect();
    assert!(setup.intake("e", "accepted", &rows, 10).expect("intake"));
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let workers: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                let params = db.params();
                s.spawn(move || {
                    let store = PgStore::open(&params, None).expect("open");
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

/// Two processes under one relay name would settle each other's claims: the second is refused.
#[test]
fn postgres_refuses_a_second_relay_under_the_same_name() {
    let db = TempDb::create();
    let first = PgStore::open(&db.params(), Some("relay-1")).expect("open");
    let second = PgStore::open(&db.params(), Some("relay-1"));
    assert!(
        matches!(second, Err(dolbom::relay::store::StoreError::InstanceTaken(ref n)) if n == "relay-1"),
        "{:?}",
        second.err()
    );
    assert!(PgStore::open(&db.params(), Some("relay-2")).is_ok(), "another name is fine");
    drop(first);
    assert!(PgStore::open(&db.params(), Some("relay-1")).is_ok(), "free again once the first is gone");
}
