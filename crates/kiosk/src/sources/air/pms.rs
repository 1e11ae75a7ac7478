//! The Plantower serial protocol (PMS5003, PMS7003, PMSA003 and the PMS5003ST), 9600 8N1.
//!
//! Datasheet facts relied on (PMS5003 data manual V2.3, PMS7003 V2.5, PMS5003ST V2.6; the byte
//! layouts cross-checked against PyPMS and ESPHome's pmsx003 driver):
//! - a frame is `42 4D`, a u16 big-endian frame length (the bytes after it: data words plus the
//!   2-byte check code), u16 big-endian data words, and a u16 big-endian check code equal to the
//!   sum of every byte before it, header included;
//! - PMS5003/7003: length 28, 32 bytes: PM1.0/PM2.5/PM10 "CF=1, standard particle", the same
//!   "under atmospheric environment", six counts of particles per 0.1 L above 0.3, 0.5, 1.0,
//!   2.5, 5.0 and 10 µm, then a version byte and an error-code byte;
//! - PMS5003ST: length 36, 40 bytes: the same twelve words, then formaldehyde (mg/m³ x 1000, so
//!   the raw value is µg/m³), temperature (signed, 0.1 degC), humidity (0.1 %), a reserved word,
//!   version and error code. A PMS5003S (32 bytes with formaldehyde where the version sits) is
//!   not told apart from a PMS5003 by its length and is not supported;
//! - commands are 7 bytes `42 4D CMD DATAH DATAL LRCH LRCL`, LRC the sum of the first five:
//!   passive mode `E1 00 00`, active mode `E1 00 01` (the power-on default), read in passive
//!   mode `E2 00 00`, sleep `E4 00 00`, wake `E4 00 01`. Mode and sleep commands are answered
//!   with an 8-byte frame of length 4 (two data bytes), passed on as [`PmsFrame::Ack`];
//! - after power-on or wake the fan needs at least 30 s before the data are stable
//!   ([`WAKE_SETTLE`]); meanwhile the sensor sends frames whose values are all zero, which are
//!   marked `warming` here (PyPMS treats an all-zero payload the same way).
//!
//! Effective range (PM2.5 standard) 0–500 µg/m³, maximum range at least 1000 µg/m³: see
//! [`super::plausibility`].

use std::time::Duration;

use super::{DecoderStats, PmReading, PmsFrame, SerialDecoder};

pub const HEADER: [u8; 2] = [0x42, 0x4D];
/// PMS5003/PMS7003 frame: 32 bytes, length field 28.
pub const FRAME_LEN: usize = 32;
/// PMS5003ST frame: 40 bytes, length field 36.
pub const FRAME_LEN_ST: usize = 40;
/// Answer to a mode or sleep command: 8 bytes, length field 4.
pub const ACK_LEN: usize = 8;
/// The longest frame; the decoder never keeps more than this much of an unfinished one.
pub const MAX_FRAME_LEN: usize = FRAME_LEN_ST;
/// How long after power-on or wake the readings are not yet stable (datasheet: at least 30 s).
pub const WAKE_SETTLE: Duration = Duration::from_secs(30);

pub const CMD_MODE: u8 = 0xE1;
pub const CMD_READ: u8 = 0xE2;
pub const CMD_SLEEP: u8 = 0xE4;

/// A 7-byte command with its check code.
pub fn command(cmd: u8, data: u16) -> [u8; 7] {
    let [h, l] = data.to_be_bytes();
    let mut out = [HEADER[0], HEADER[1], cmd, h, l, 0, 0];
    let lrc = out[..5].iter().map(|b| u16::from(*b)).sum::<u16>();
    out[5..].copy_from_slice(&lrc.to_be_bytes());
    out
}

/// Passive mode: the sensor sends a frame only when asked with [`read`].
pub fn passive_mode() -> [u8; 7] {
    command(CMD_MODE, 0)
}

/// Active mode: the sensor sends frames on its own (its power-on default).
pub fn active_mode() -> [u8; 7] {
    command(CMD_MODE, 1)
}

/// Asks for one frame in passive mode.
pub fn read() -> [u8; 7] {
    command(CMD_READ, 0)
}

/// Fan and laser off.
pub fn sleep() -> [u8; 7] {
    command(CMD_SLEEP, 0)
}

/// Fan and laser on; readings are stable after [`WAKE_SETTLE`].
pub fn wake() -> [u8; 7] {
    command(CMD_SLEEP, 1)
}

/// How the sensor is to send its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Frames on the sensor's own schedule (about one a second).
    #[default]
    Active,
    /// Frames only when the stage sends [`read`], e.g. once per publishing window.
    Passive,
}

fn sum16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |acc, b| acc.wrapping_add(u16::from(*b)))
}

/// The whole frame length for a length field, if it is one this decoder knows.
fn frame_len(length_field: u16) -> Option<usize> {
    match length_field {
        28 => Some(FRAME_LEN),
        36 => Some(FRAME_LEN_ST),
        4 => Some(ACK_LEN),
        _ => None,
    }
}

/// Wraps a payload (everything between the length field and the check code) into a frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.extend_from_slice(&HEADER);
    // Payloads here are at most 34 bytes: the length always fits.
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    let sum = sum16(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// Encodes a reading as the sensor sends it: 40 bytes when it has formaldehyde, temperature or
/// humidity (missing ones sent as 0), else 32. The inverse of the decoder (the simulator and
/// the tests use it); `warming` is not sent, it follows from the values.
pub fn encode(r: &PmReading) -> Vec<u8> {
    let mut p = Vec::with_capacity(34);
    for w in [r.pm1_cf1, r.pm25_cf1, r.pm10_cf1, r.pm1, r.pm25, r.pm10].iter().chain(&r.counts) {
        p.extend_from_slice(&w.to_be_bytes());
    }
    if r.is_extended() {
        let tenths = |v: f32, lo: f32, hi: f32| (v * 10.0).round().clamp(lo, hi);
        p.extend_from_slice(&r.hcho_ug_m3.unwrap_or(0).to_be_bytes());
        let t = tenths(r.temperature_c.unwrap_or(0.0), f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        p.extend_from_slice(&t.to_be_bytes());
        let h = tenths(r.humidity_pct.unwrap_or(0.0), 0.0, f32::from(u16::MAX)) as u16;
        p.extend_from_slice(&h.to_be_bytes());
        p.extend_from_slice(&[0, 0]); // reserved
    }
    p.extend_from_slice(&[r.version, r.error_code]);
    frame(&p)
}

/// Encodes a command answer (length 4) with its two data bytes.
pub fn encode_ack(data: [u8; 2]) -> Vec<u8> {
    frame(&data)
}

/// Decodes a complete frame whose header, length and check code were verified.
fn parse(f: &[u8]) -> PmsFrame {
    let word = |i: usize| u16::from_be_bytes([f[4 + 2 * i], f[5 + 2 * i]]);
    if f.len() == ACK_LEN {
        return PmsFrame::Ack([f[4], f[5]]);
    }
    let mut r = PmReading {
        pm1_cf1: word(0),
        pm25_cf1: word(1),
        pm10_cf1: word(2),
        pm1: word(3),
        pm25: word(4),
        pm10: word(5),
        counts: [word(6), word(7), word(8), word(9), word(10), word(11)],
        ..PmReading::default()
    };
    if f.len() == FRAME_LEN_ST {
        r.hcho_ug_m3 = Some(word(12));
        r.temperature_c = Some(f32::from(word(13) as i16) / 10.0);
        r.humidity_pct = Some(f32::from(word(14)) / 10.0);
    }
    r.version = f[f.len() - 4];
    r.error_code = f[f.len() - 3];
    r.warming = r.is_all_zero();
    PmsFrame::Reading(r)
}

pub struct Pms {
    buf: Vec<u8>,
    stats: DecoderStats,
    mode: Mode,
}

impl Pms {
    pub fn new(mode: Mode) -> Self {
        Self { buf: Vec::with_capacity(2 * MAX_FRAME_LEN), stats: DecoderStats::default(), mode }
    }

    /// Bytes held back as the start of an unfinished frame (always under [`MAX_FRAME_LEN`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl SerialDecoder for Pms {
    type Frame = PmsFrame;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<PmsFrame>) {
        self.buf.extend_from_slice(bytes);
        // A cursor over the buffer, compacted once at the end (as in the thermal decoder).
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
                    // Keep a trailing 0x42: it may be half of a header.
                    let keep = usize::from(rest.last() == Some(&HEADER[0]));
                    pos += rest.len() - keep;
                    skipped += rest.len() - keep;
                    break;
                }
            }
            let rest = &self.buf[pos..];
            if rest.len() < 4 {
                break;
            }
            let Some(len) = frame_len(u16::from_be_bytes([rest[2], rest[3]])) else {
                // A false header in noise, or a length that lies. Skipping both header bytes is
                // safe: 0x4D cannot start another header.
                self.stats.malformed += 1;
                pos += 2;
                skipped += 2;
                continue;
            };
            if rest.len() < len {
                break;
            }
            let f = &rest[..len];
            if sum16(&f[..len - 2]) != u16::from_be_bytes([f[len - 2], f[len - 1]]) {
                // Resynchronise just past this header: a real one may start inside the damage
                // (a truncated frame followed by a whole one).
                self.stats.checksum_errors += 1;
                pos += 2;
                skipped += 2;
                continue;
            }
            out.push(parse(f));
            self.stats.frames += 1;
            pos += len;
        }
        self.stats.bytes_skipped += skipped as u64;
        self.buf.drain(..pos);
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Wake the sensor (it may have been left asleep) and set the mode. In passive mode the stage
    /// must send [`read`] whenever it wants a frame: the serial loop sends these only on open.
    fn init_commands(&self) -> Vec<Vec<u8>> {
        let mode = match self.mode {
            Mode::Active => active_mode(),
            Mode::Passive => passive_mode(),
        };
        vec![wake().to_vec(), mode.to_vec()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(pm25: u16) -> PmReading {
        PmReading {
            pm1_cf1: pm25 / 2,
            pm25_cf1: pm25,
            pm10_cf1: pm25 + 4,
            pm1: pm25 / 2,
            pm25,
            pm10: pm25 + 4,
            counts: [1200, 400, 90, 12, 3, 1],
            version: 0x97,
            ..PmReading::default()
        }
    }

    fn decode(bytes: &[u8]) -> (Vec<PmsFrame>, DecoderStats, usize) {
        let mut d = Pms::new(Mode::Active);
        let mut out = Vec::new();
        d.feed(bytes, &mut out);
        (out, d.stats(), d.buffered())
    }

    #[test]
    fn round_trip_of_both_layouts_and_the_ack() {
        let plain = reading(17);
        let mut st = reading(17);
        st.hcho_ug_m3 = Some(23);
        st.temperature_c = Some(-3.4);
        st.humidity_pct = Some(55.1);
        let stream = [encode(&plain), encode(&st), encode_ack([0xE1, 0x00])].concat();
        assert_eq!(stream.len(), FRAME_LEN + FRAME_LEN_ST + ACK_LEN);
        let (frames, stats, left) = decode(&stream);
        assert_eq!(frames, vec![PmsFrame::Reading(plain), PmsFrame::Reading(st), PmsFrame::Ack([0xE1, 0x00])]);
        assert_eq!(stats, DecoderStats { frames: 3, ..DecoderStats::default() });
        assert_eq!(left, 0);
    }

    #[test]
    fn a_flood_of_header_bytes_stays_bounded() {
        let flood: Vec<u8> = HEADER.iter().copied().cycle().take(1 << 16).collect();
        let (frames, stats, left) = decode(&flood);
        assert!(frames.is_empty());
        assert!(left < MAX_FRAME_LEN);
        assert_eq!(stats.bytes_skipped as usize + left, 1 << 16);
    }
}
