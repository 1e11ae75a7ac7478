//! A one-frame hand-over between the camera and the vision stage.
//!
//! In `latest` mode the camera overwrites a frame the vision stage has not taken yet: when
//! processing is slower than the camera, old frames are dropped (and counted), never queued.
//! In `every` mode (files processed as fast as possible) the camera waits instead, so every
//! frame is processed.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::Frame;

#[derive(Default)]
struct State {
    frame: Option<Frame>,
    ended: bool,
}

#[derive(Default)]
pub struct FrameSlot {
    state: Mutex<State>,
    changed: Condvar,
}

pub enum Take {
    Frame(Frame),
    /// No frame within the timeout (a stalled or slow camera).
    Idle,
    /// The source has ended for good (end of file, or shutdown).
    Ended,
}

impl FrameSlot {
    /// Offers a frame. With `wait` the call blocks until the previous frame was taken; otherwise
    /// it replaces it. Returns true when a frame was dropped.
    pub fn put(&self, frame: Frame, wait: bool) -> bool {
        let Ok(mut s) = self.state.lock() else { return true };
        if wait {
            while s.frame.is_some() && !s.ended {
                s = match self.changed.wait(s) {
                    Ok(s) => s,
                    Err(_) => return true,
                };
            }
        }
        let dropped = s.frame.replace(frame).is_some();
        self.changed.notify_all();
        dropped
    }

    /// Marks the end of the stream; the vision stage finishes what is in the slot first.
    pub fn end(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.ended = true;
            self.changed.notify_all();
        }
    }

    pub fn take(&self, timeout: Duration) -> Take {
        let Ok(mut s) = self.state.lock() else { return Take::Ended };
        if s.frame.is_none() && !s.ended {
            s = match self.changed.wait_timeout(s, timeout) {
                Ok((s, _)) => s,
                Err(_) => return Take::Ended,
            };
        }
        match s.frame.take() {
            Some(f) => {
                self.changed.notify_all();
                Take::Frame(f)
            }
            None if s.ended => Take::Ended,
            None => Take::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::Mat;

    fn frame(index: u64) -> Frame {
        Frame { image: Mat::default().into(), index, captured_ms: index as i64, mono_ms: index as i64 }
    }

    #[test]
    fn latest_mode_drops_stale_frames() {
        let slot = FrameSlot::default();
        assert!(!slot.put(frame(1), false));
        assert!(slot.put(frame(2), false), "frame 1 was never taken: dropped");
        match slot.take(Duration::from_millis(10)) {
            Take::Frame(f) => assert_eq!(f.index, 2),
            _ => panic!("expected frame 2"),
        }
        assert!(matches!(slot.take(Duration::from_millis(10)), Take::Idle));
        slot.end();
        assert!(matches!(slot.take(Duration::from_millis(10)), Take::Ended));
    }

    #[test]
    fn every_mode_waits_for_the_consumer() {
        let slot = std::sync::Arc::new(FrameSlot::default());
        let producer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    assert!(!slot.put(frame(i), true));
                }
                slot.end();
            })
        };
        let mut seen = Vec::new();
        loop {
            match slot.take(Duration::from_secs(5)) {
                Take::Frame(f) => seen.push(f.index),
                Take::Idle => continue,
                Take::Ended => break,
            }
        }
        producer.join().expect("producer");
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }
}
