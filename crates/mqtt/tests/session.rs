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

async fn subscribed(session: &mut Session, filter: &str) {
    session.subscribe(filter).expect("subscribe");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
            Ok(Ok(SessionEvent::Subscribed { refused: 0 })) => return,
            Ok(Ok(SessionEvent::Subscribed { refused })) => panic!("{refused} filter(s) refused"),
            Ok(Ok(_)) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

/// Publishes each payload (QoS 1) and waits for every PUBACK, from a client allowed big messages.
async fn publish_all(topic: &str, payloads: &[Vec<u8>], retain: bool) {
    let broker = BrokerConfig::default();
    let options = ConnectOptions { max_message_bytes: 4 << 20, ..broker.connect_options(&unique("poison-pub")) };
    let mut session = Session::new(Protocol::V311, &options);
    connected(&mut session).await;
    for p in payloads {
        let m = Outgoing5 {
            topic: topic.into(),
            payload: p.clone(),
            retain,
            expiry_secs: None,
            user_properties: Vec::new(),
        };
        session.publish(&m).expect("queued");
    }
    let mut acked = 0;
    while acked < payloads.len() {
        match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
            Ok(Ok(SessionEvent::Acked { .. })) => acked += 1,
            Ok(Ok(_)) => {}
            other => panic!("publisher: {other:?}"),
        }
    }
    session.disconnect();
}

/// Disconnects cleanly: what was queued before (acknowledgements) goes out first, and the
/// broker has closed the connection when this returns.
async fn close(session: &mut Session) {
    session.disconnect();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => panic!("the broker did not close the connection after DISCONNECT"),
        }
    }
}

/// What a subscriber sees until `last` arrives: the messages taken in, the sizes refused, and
/// whether the connection held. Acknowledges what it takes in.
async fn take_until(session: &mut Session, last: &[u8]) -> (Vec<Vec<u8>>, Vec<usize>) {
    let (mut taken, mut refused) = (Vec::new(), Vec::new());
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.poll()).await {
            Ok(Ok(SessionEvent::Message { payload, ack, .. })) => {
                if let Some(ack) = ack {
                    session.ack(ack).await.expect("ack");
                }
                let done = payload == last;
                taken.push(payload);
                if done {
                    return (taken, refused);
                }
            }
            Ok(Ok(SessionEvent::Refused { bytes, .. })) => refused.push(bytes),
            Ok(Ok(SessionEvent::Connected)) => panic!("the session reconnected: a message broke the connection"),
            Ok(Ok(_)) => {}
            other => panic!("subscriber: {other:?} (taken {}, refused {refused:?})", taken.len()),
        }
    }
}

/// The class of oversized messages, from just above the limit to megabytes, between valid ones:
/// each is dropped without breaking the connection, the valid ones all arrive in order, and a
/// persistent session does not get the dropped ones again after a reconnect (they were
/// acknowledged). rumqttc's 10 KiB default ended the connection on each, and a persistent
/// session then had the same message redelivered forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_dropped_without_breaking_the_session() {
    let limit = 16 * 1024;
    let big = [limit + 1, 64 * 1024, 1 << 20, 3 << 20];
    let mut payloads = Vec::new();
    for (i, size) in big.iter().enumerate() {
        payloads.push(format!("ok-{i}").into_bytes());
        payloads.push(vec![b'x'; *size]);
    }
    payloads.push(vec![b'y'; limit]);
    payloads.push(b"last".to_vec());
    let valid: Vec<Vec<u8>> = payloads.iter().filter(|p| p.len() <= limit).cloned().collect();

    for (protocol, persistent) in [(Protocol::V311, true), (Protocol::V311, false), (Protocol::V5, false)] {
        let topic = unique("dolbom-test/poison");
        let broker = BrokerConfig::default();
        let sub_id = unique("poison-sub");
        let options = ConnectOptions { persistent, max_message_bytes: limit, ..broker.connect_options(&sub_id) };
        let mut sub = Session::new(protocol, &options);
        connected(&mut sub).await;
        subscribed(&mut sub, &topic).await;
        publish_all(&topic, &payloads, false).await;
        let (taken, refused) = take_until(&mut sub, b"last").await;
        let case = format!("{protocol:?} persistent={persistent}");
        assert_eq!(taken, valid, "{case}: the valid messages, in order");
        if protocol == Protocol::V311 {
            assert_eq!(refused, big.to_vec(), "{case}: every oversized message reported once");
        } else {
            // v5 announced its maximum packet size (payload limit and room for the header): the
            // broker never sent the bigger ones; the one just over the limit came and was dropped.
            assert_eq!(refused, vec![limit + 1], "{case}");
        }
        if persistent {
            // Nothing comes again on a new connection of the same session (the acknowledgements
            // queued before the DISCONNECT go out before it).
            close(&mut sub).await;
            let mut again = Session::new(protocol, &options);
            connected(&mut again).await;
            publish_all(&topic, &[b"after".to_vec()], false).await;
            let (taken, refused) = take_until(&mut again, b"after").await;
            assert_eq!((taken, refused), (vec![b"after".to_vec()], vec![]), "{case}: redelivered after reconnect");
            drop(again);
            let mut clean = Session::new(Protocol::V311, &broker.connect_options(&sub_id));
            connected(&mut clean).await;
            clean.disconnect();
        }
    }
}

/// A retained message reaches a new subscriber marked as retained, so a client can tell a
/// message kept from some time ago from one sent now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_marked() {
    let topic = unique("dolbom-test/retained");
    publish_all(&topic, &[b"kept".to_vec()], true).await;
    let broker = BrokerConfig::default();
    let mut sub = Session::new(Protocol::V5, &broker.connect_options(&unique("retained-sub")));
    connected(&mut sub).await;
    subscribed(&mut sub, &topic).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.poll()).await {
            Ok(Ok(SessionEvent::Message { payload, retain, .. })) => {
                assert_eq!((payload.as_slice(), retain), (&b"kept"[..], true));
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("no retained message: {other:?}"),
        }
    }
    publish_all(&topic, &[Vec::new()], true).await;
}
