//! The session against a real broker (Mosquitto on 127.0.0.1:1883, as `scripts/test.sh` provides).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dolbom_mqtt::{BrokerConfig, ConnectOptions, Outgoing5, Protocol, Session, SessionEvent};

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn connected(session: &mut Session) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
            Ok(Ok(SessionEvent::Connected)) => return,
            Ok(Ok(_)) => {}
            other => panic!("no connection to the broker on 127.0.0.1:1883: {other:?}"),
        }
    }
}

/// A burst larger than every window (our request queue, the event channel, the broker's
/// in-flight window) is taken in whole by a persistent session that acknowledges each message
/// only after handling it. An event channel that made the driver wait for its consumer, while
/// the consumer waited to queue its acknowledgement, stalled this after a few dozen messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_takes_in_a_burst_acknowledging_each_message() {
    const N: usize = 400;
    let topic = unique("dolbom-test/burst");
    let broker = BrokerConfig::default();
    let sub_id = unique("burst-sub");
    let options = ConnectOptions { persistent: true, ..broker.connect_options(&sub_id) };
    let mut sub = Session::new(Protocol::V311, &options);
    connected(&mut sub).await;
    sub.subscribe(&topic).expect("subscribe");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.poll()).await {
            Ok(Ok(SessionEvent::Subscribed { refused: 0 })) => break,
            Ok(Ok(SessionEvent::Subscribed { refused })) => panic!("{refused} filter(s) refused"),
            Ok(Ok(_)) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }

    let publisher = tokio::spawn({
        let topic = topic.clone();
        let options = ConnectOptions { inflight: 100, ..broker.connect_options(&unique("burst-pub")) };
        async move {
            let mut session = Session::new(Protocol::V311, &options);
            connected(&mut session).await;
            let mut acked = 0;
            let mut queued = 0;
            while acked < N {
                while queued < N && queued - acked < 90 {
                    let m = Outgoing5 {
                        topic: topic.clone(),
                        payload: queued.to_string().into_bytes(),
                        retain: false,
                        expiry_secs: None,
                        user_properties: Vec::new(),
                    };
                    if session.publish(&m).is_err() {
                        break;
                    }
                    queued += 1;
                }
                match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
                    Ok(Ok(SessionEvent::Acked { .. })) => acked += 1,
                    Ok(Ok(_)) => {}
                    other => panic!("publisher: {other:?}"),
                }
            }
        }
    });

    let mut seen = vec![false; N];
    let mut count = 0;
    while count < N {
        match tokio::time::timeout(Duration::from_secs(10), sub.poll()).await {
            Ok(Ok(SessionEvent::Message { payload, ack, .. })) => {
                // Handling takes a moment (the relay commits to its store first).
                tokio::time::sleep(Duration::from_micros(200)).await;
                let i: usize = String::from_utf8_lossy(&payload).parse().expect("a number");
                if !seen[i] {
                    seen[i] = true;
                    count += 1;
                }
                let ack = sub.ack(ack.expect("a persistent session hands out acknowledgements"));
                match tokio::time::timeout(Duration::from_secs(10), ack).await {
                    Ok(done) => done.expect("ack"),
                    Err(_) => panic!("stalled after {count} of {N} messages: the acknowledgement never went out"),
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("stalled after {count} of {N} messages: {other:?}"),
        }
    }
    publisher.await.expect("publisher");
    // The broker would keep this client's session forever: a clean connection under its id ends it.
    drop(sub);
    let mut clean = Session::new(Protocol::V311, &broker.connect_options(&sub_id));
    connected(&mut clean).await;
    clean.disconnect();
}
