//! The Winsen MH-Z19B NDIR CO2 sensor's UART protocol, 9600 8N1.
//!
//! Datasheet facts relied on (MH-Z19B user's manual V1.5/V1.6, cross-checked against ESPHome's
//! mhz19 driver and other public drivers):
//! - every command and answer is 9 bytes: `FF`, then 7 bytes, then a check value equal to
//!   `0xFF - (sum of bytes 1..=7) + 1` (the two's complement of the 8-bit sum);
//! - read CO2: `FF 01 86 00 00 00 00 00 79`; the answer is `FF 86 HH LL .. .. .. .. CS`, the
//!   concentration `HH * 256 + LL` ppm. Bytes 4..=7 are not documented for the B model (other
//!   drivers read a temperature from byte 4); they are covered by the check value and ignored;
//! - the sensor only answers when asked: nothing arrives unless the stage sends [`poll`]. The
//!   serial loop sends [`SerialDecoder::init_commands`] only when it opens the port, so the
//!   stage must write [`poll`] every [`POLL_EVERY`] itself (the sensor measures about every 5 s;
//!   asking faster returns the same value);
//! - self-calibration (ABC, on by default): over each 24 h the lowest reading is taken as
//!   400 ppm. That holds for a room that gets fresh air at least once a day — a daycare room
//!   aired in the evening or morning does — and drifts low in one that never does; [`abc`]
//!   turns it off then (see the docs for the outdoor zero calibration);
//! - measuring range 0–5000 ppm by default (2000 and 10000 settable with [`range`]);
//! - preheat 3 minutes after power-on ([`PREHEAT`]). What the sensor sends meanwhile is not
//!   documented: users report fixed values (e.g. 388 for a few seconds, then 555; others 400,
//!   410 or 450), so no value is taken as a warm-up marker here. Readings in the first
//!   [`PREHEAT`] after the decoder starts (the daemon starts with the kiosk, which powers the
//!   sensor) are marked `warming` instead.

use std::time::{Duration, Instant};

use super::{Co2Reading, DecoderStats, SerialDecoder};

pub const FRAME_LEN: usize = 9;
pub const HEADER: [u8; 2] = [0xFF, 0x86];
/// The datasheet's preheat time.
pub const PREHEAT: Duration = Duration::from_secs(180);
/// How often the stage should send [`poll`]: the sensor updates about every 5 s.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

pub const CMD_READ: u8 = 0x86;
pub const CMD_ABC: u8 = 0x79;
pub const CMD_RANGE: u8 = 0x99;

/// The check value of a 9-byte frame: two's complement of the sum of bytes 1..=7.
pub fn checksum(frame: &[u8; FRAME_LEN]) -> u8 {
    let sum = frame[1..8].iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    (!sum).wrapping_add(1)
}

/// A command `FF 01 CMD d0..d4 CS`.
pub fn command(cmd: u8, data: [u8; 5]) -> [u8; FRAME_LEN] {
    let mut f = [0xFF, 0x01, cmd, data[0], data[1], data[2], data[3], data[4], 0];
    f[8] = checksum(&f);
    f
}

/// Read the CO2 concentration: `FF 01 86 00 00 00 00 00 79`. The stage sends it every
/// [`POLL_EVERY`].
pub fn poll() -> [u8; FRAME_LEN] {
    command(CMD_READ, [0; 5])
}

/// Automatic baseline correction on (`A0`) or off (`00`).
pub fn abc(on: bool) -> [u8; FRAME_LEN] {
    command(CMD_ABC, [if on { 0xA0 } else { 0x00 }, 0, 0, 0, 0])
}

/// Detection range in ppm (2000, 5000 or 10000), sent in bytes 6 and 7.
pub fn range(ppm: u16) -> [u8; FRAME_LEN] {
    let [h, l] = ppm.to_be_bytes();
    command(CMD_RANGE, [0, 0, 0, h, l])
}

/// The sensor's answer to [`poll`] (the simulator and the tests use this); `extra` fills the
/// undocumented bytes 4..=7.
pub fn encode_answer(ppm: u16, extra: [u8; 4]) -> [u8; FRAME_LEN] {
    let [h, l] = ppm.to_be_bytes();
    let mut f = [0xFF, CMD_READ, h, l, extra[0], extra[1], extra[2], extra[3], 0];
    f[8] = checksum(&f);
    f
}

pub struct Mhz19b {
    buf: Vec<u8>,
    stats: DecoderStats,
    started: Instant,
    preheat: Duration,
    abc: Option<bool>,
}

impl Mhz19b {
    /// `preheat`: readings this soon after now are marked warming ([`PREHEAT`] in the daemon).
    /// `abc`: switch self-calibration on or off when the port opens, or leave it as it is.
    pub fn new(preheat: Duration, abc: Option<bool>) -> Self {
        Self {
            buf: Vec::with_capacity(2 * FRAME_LEN),
            stats: DecoderStats::default(),
            started: Instant::now(),
            preheat,
            abc,
        }
    }

    /// Bytes held back as the start of an unfinished answer (always under [`FRAME_LEN`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl SerialDecoder for Mhz19b {
    type Frame = Co2Reading;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Co2Reading>) {
        self.buf.extend_from_slice(bytes);
        let mut pos = 0usize;
        let mut skipped = 0usize;
        loop {
            let rest = &self.buf[pos..];
            match rest.windows(2).position(|w| w == HEADER) {
                Some(p) => {
                    pos += p;
                    skipped += p;
                }
                None => {
                    let keep = usize::from(rest.last() == Some(&HEADER[0]));
                    pos += rest.len() - keep;
                    skipped += rest.len() - keep;
                    break;
                }
            }
            let rest = &self.buf[pos..];
            if rest.len() < FRAME_LEN {
                break;
            }
            let mut f = [0u8; FRAME_LEN];
            f.copy_from_slice(&rest[..FRAME_LEN]);
            if checksum(&f) != f[8] {
                // 0x86 cannot start a header, so the next one is at least two bytes on.
                self.stats.checksum_errors += 1;
                pos += 2;
                skipped += 2;
                continue;
            }
            let warming = self.started.elapsed() < self.preheat;
            out.push(Co2Reading { ppm: u16::from_be_bytes([f[2], f[3]]), warming });
            self.stats.frames += 1;
            pos += FRAME_LEN;
        }
        self.stats.bytes_skipped += skipped as u64;
        self.buf.drain(..pos);
    }

    /// Plugged in again: powered up again, so its preheat starts over.
    fn device_returned(&mut self) {
        self.started = Instant::now();
        self.buf.clear();
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// The ABC setting if one was asked for, then a first read. Later reads are the stage's
    /// ([`poll`] every [`POLL_EVERY`]).
    fn init_commands(&self) -> Vec<Vec<u8>> {
        let mut cmds = Vec::new();
        if let Some(on) = self.abc {
            cmds.push(abc(on).to_vec());
        }
        cmds.push(poll().to_vec());
        cmds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unplugged and plugged in again, the sensor has been powered off: its preheat starts over.
    #[test]
    fn a_returned_sensor_warms_up_again() {
        let preheat = Duration::from_millis(100);
        let mut d = Mhz19b::new(preheat, None);
        let read = |d: &mut Mhz19b| {
            let mut out = Vec::new();
            d.feed(&encode_answer(800, [0; 4]), &mut out);
            out.pop().expect("an answer").warming
        };
        assert!(read(&mut d), "within the preheat");
        let until = Instant::now() + Duration::from_secs(10);
        while read(&mut d) {
            assert!(Instant::now() < until, "the preheat never ended");
            std::thread::yield_now();
        }
        d.device_returned();
        assert!(read(&mut d), "warming again after the device came back");
    }

    #[test]
    fn commands_match_the_datasheet_bytes() {
        assert_eq!(poll(), [0xFF, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79]);
        assert_eq!(abc(true), [0xFF, 0x01, 0x79, 0xA0, 0x00, 0x00, 0x00, 0x00, 0xE6]);
        assert_eq!(abc(false), [0xFF, 0x01, 0x79, 0x00, 0x00, 0x00, 0x00, 0x00, 0x86]);
        assert_eq!(range(5000), [0xFF, 0x01, 0x99, 0x00, 0x00, 0x00, 0x13, 0x88, 0xCB]);
    }

    #[test]
    fn warming_follows_the_preheat_time() {
        let answer = encode_answer(555, [0; 4]);
        for (preheat, warming) in [(PREHEAT, true), (Duration::ZERO, false)] {
            let mut d = Mhz19b::new(preheat, None);
            let mut out = Vec::new();
            d.feed(&answer, &mut out);
            assert_eq!(out, vec![Co2Reading { ppm: 555, warming }]);
        }
    }
}
