//! The GY-MCU90640 serial protocol (an MLX90640 32x24 array behind an STM32).
//!
//! Frame (1544 bytes): `5A 5A`, u16 LE payload size (1538 = 0x0602), 768 x i16 LE pixels in
//! 0.01 degC (row-major, 32 wide), i16 LE ambient in 0.01 degC, u16 LE checksum. The checksum
//! is the 16-bit sum of all preceding 16-bit LE words, header included. Public sources disagree
//! on details (some modules ship other checksums), so `checksum = "none"` accepts frames on
//! structure alone.
//!
//! Commands are 4 bytes `A5 CMD DATA SUM`, SUM the low byte of the sum of the first three:
//! automatic output `A5 35 02 DC`; 115200 baud `A5 15 02 BC`, 460800 baud `A5 15 03 BD`;
//! frame rate `A5 25 xx ..` (the rate codes differ between firmware versions, so the code is
//! configurable and not sent by default).

use serde::Deserialize;

use super::{DecoderStats, SerialDecoder, ThermalFrame};

pub const WIDTH: usize = 32;
pub const HEIGHT: usize = 24;
pub const FRAME_LEN: usize = 1544;
const PAYLOAD_LEN: u16 = 1538;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Checksum {
    /// 16-bit sum of the preceding 16-bit LE words.
    #[default]
    Sum16,
    /// Structure only (header, size) for modules with another checksum.
    None,
}

pub fn command(cmd: u8, data: u8) -> Vec<u8> {
    vec![0xA5, cmd, data, 0xA5u8.wrapping_add(cmd).wrapping_add(data)]
}

/// Encodes a frame as the module sends it (the simulator and the tests use this).
pub fn encode(pixels_c: &[f32], ambient_c: f32) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_LEN);
    out.extend_from_slice(&[0x5A, 0x5A]);
    out.extend_from_slice(&PAYLOAD_LEN.to_le_bytes());
    let centi = |c: f32| ((c * 100.0).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16).to_le_bytes();
    for i in 0..WIDTH * HEIGHT {
        out.extend_from_slice(&centi(pixels_c.get(i).copied().unwrap_or(0.0)));
    }
    out.extend_from_slice(&centi(ambient_c));
    let sum = sum16(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn sum16(bytes: &[u8]) -> u16 {
    bytes.chunks_exact(2).fold(0u16, |acc, w| acc.wrapping_add(u16::from_le_bytes([w[0], w[1]])))
}

pub struct GyMcu90640 {
    buf: Vec<u8>,
    stats: DecoderStats,
    checksum: Checksum,
    rate_code: Option<u8>,
}

impl GyMcu90640 {
    pub fn new(checksum: Checksum, rate_code: Option<u8>) -> Self {
        Self { buf: Vec::with_capacity(2 * FRAME_LEN), stats: DecoderStats::default(), checksum, rate_code }
    }
}

impl SerialDecoder for GyMcu90640 {
    type Frame = ThermalFrame;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ThermalFrame>) {
        self.buf.extend_from_slice(bytes);
        // Walk a cursor over the buffer and compact once at the end: skipping byte by byte
        // with a drain each time would be quadratic on a flood of 0x5A.
        let mut pos = 0usize;
        let mut skipped = 0usize;
        loop {
            let rest = &self.buf[pos..];
            // Hunt for the header; keep a trailing 0x5A, it may be half of one.
            match rest.windows(2).position(|w| w == [0x5A, 0x5A]) {
                Some(p) => {
                    pos += p;
                    skipped += p;
                }
                None => {
                    let keep = usize::from(rest.last() == Some(&0x5A));
                    pos += rest.len() - keep;
                    skipped += rest.len() - keep;
                    break;
                }
            }
            let rest = &self.buf[pos..];
            if rest.len() < 4 {
                break;
            }
            if u16::from_le_bytes([rest[2], rest[3]]) != PAYLOAD_LEN {
                // Not a header after all (pixel data can contain 5A 5A), or another frame type.
                self.stats.malformed += 1;
                pos += 1;
                skipped += 1;
                continue;
            }
            if rest.len() < FRAME_LEN {
                break;
            }
            let frame = &rest[..FRAME_LEN];
            let stated = u16::from_le_bytes([frame[FRAME_LEN - 2], frame[FRAME_LEN - 1]]);
            if self.checksum == Checksum::Sum16 && sum16(&frame[..FRAME_LEN - 2]) != stated {
                // Resynchronise just past this header: a real one may start inside the damage.
                self.stats.checksum_errors += 1;
                pos += 2;
                skipped += 2;
                continue;
            }
            let word = |i: usize| i16::from_le_bytes([frame[4 + 2 * i], frame[5 + 2 * i]]);
            let pixels: Vec<f32> = (0..WIDTH * HEIGHT).map(|i| f32::from(word(i)) / 100.0).collect();
            let ambient = f32::from(word(WIDTH * HEIGHT)) / 100.0;
            out.push(ThermalFrame { width: WIDTH, height: HEIGHT, pixels, ambient_c: Some(ambient), mono_ms: 0 });
            self.stats.frames += 1;
            pos += FRAME_LEN;
        }
        self.stats.bytes_skipped += skipped as u64;
        // What is left is a partial frame behind a plausible header (or one 0x5A): under 1544 bytes.
        self.buf.drain(..pos);
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn init_commands(&self) -> Vec<Vec<u8>> {
        let mut cmds = Vec::new();
        if let Some(code) = self.rate_code {
            cmds.push(command(0x25, code));
        }
        cmds.push(command(0x35, 0x02)); // automatic output
        cmds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(offset: f32) -> Vec<f32> {
        (0..WIDTH * HEIGHT).map(|i| 22.0 + offset + (i % 7) as f32 * 0.25).collect()
    }

    fn decode(chunks: &[&[u8]]) -> (Vec<ThermalFrame>, DecoderStats) {
        let mut d = GyMcu90640::new(Checksum::Sum16, None);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        (out, d.stats())
    }

    #[test]
    fn commands_match_the_documented_bytes() {
        assert_eq!(command(0x35, 0x02), [0xA5, 0x35, 0x02, 0xDC]);
        assert_eq!(command(0x15, 0x02), [0xA5, 0x15, 0x02, 0xBC]);
        assert_eq!(command(0x15, 0x03), [0xA5, 0x15, 0x03, 0xBD]);
    }

    #[test]
    fn round_trip_with_negative_and_hot_pixels() {
        let mut px = scene(0.0);
        px[0] = -12.34;
        px[767] = 38.21;
        let bytes = encode(&px, 24.5);
        assert_eq!(bytes.len(), FRAME_LEN);
        assert_eq!(&bytes[..4], &[0x5A, 0x5A, 0x02, 0x06]);
        let (frames, stats) = decode(&[&bytes]);
        assert_eq!(frames.len(), 1);
        assert!((frames[0].pixels[0] + 12.34).abs() < 1e-3);
        assert!((frames[0].pixels[767] - 38.21).abs() < 1e-3);
        assert_eq!(frames[0].ambient_c, Some(24.5));
        assert_eq!(stats, DecoderStats { frames: 1, ..DecoderStats::default() });
    }

    #[test]
    fn frames_split_across_reads_in_any_way() {
        let stream: Vec<u8> =
            [encode(&scene(0.0), 24.0), encode(&scene(1.0), 24.0), encode(&scene(2.0), 24.0)].concat();
        for chunk in [1, 2, 3, 7, 64, 1000, 1543, 1544, 1545, 5000] {
            let chunks: Vec<&[u8]> = stream.chunks(chunk).collect();
            let (frames, stats) = decode(&chunks);
            assert_eq!(frames.len(), 3, "chunk size {chunk}");
            assert_eq!(stats.checksum_errors + stats.malformed, 0, "chunk size {chunk}");
            assert!((frames[2].pixels[0] - 24.0).abs() < 1e-3);
        }
    }

    #[test]
    fn corrupted_frame_is_counted_and_the_next_one_recovered() {
        let mut bad = encode(&scene(0.0), 24.0);
        bad[800] ^= 0x40;
        let good = encode(&scene(3.0), 24.0);
        let noise = [0x00, 0x5A, 0x13, 0x5A, 0x5A, 0x99, 0x99, 0xFF];
        let (frames, stats) = decode(&[&noise, &bad, &noise, &good]);
        assert_eq!(frames.len(), 1);
        assert!((frames[0].pixels[0] - 25.0).abs() < 1e-3);
        assert_eq!(stats.checksum_errors, 1);
        assert!(stats.malformed >= 1, "the fake header in the noise was rejected");
    }

    #[test]
    fn wrong_baud_garbage_yields_nothing_and_a_bounded_buffer() {
        // What 460800-baud frames look like when read at 115200: bytes with no structure.
        let mut x: u32 = 12345;
        let garbage: Vec<u8> = (0..50_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let mut d = GyMcu90640::new(Checksum::Sum16, None);
        let mut out = Vec::new();
        for c in garbage.chunks(333) {
            d.feed(c, &mut out);
            assert!(d.buf.len() < FRAME_LEN);
        }
        assert!(out.is_empty());
        let good = encode(&scene(0.0), 24.0);
        d.feed(&good, &mut out);
        assert_eq!(out.len(), 1, "recovers once real frames arrive");
    }

    #[test]
    fn a_flood_of_header_bytes_is_passed_over_in_one_sweep() {
        let mut d = GyMcu90640::new(Checksum::Sum16, None);
        let mut out = Vec::new();
        d.feed(&vec![0x5A; 1 << 20], &mut out);
        assert!(out.is_empty());
        assert!(d.buf.len() < FRAME_LEN);
        assert_eq!(d.stats().malformed as usize + d.buf.len(), 1 << 20, "every false header counted");
        d.feed(&encode(&scene(0.0), 24.0), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn checksum_none_accepts_other_checksums() {
        let mut frame = encode(&scene(0.0), 24.0);
        frame[FRAME_LEN - 1] ^= 0xFF;
        let mut d = GyMcu90640::new(Checksum::None, None);
        let mut out = Vec::new();
        d.feed(&frame, &mut out);
        assert_eq!(out.len(), 1);
    }
}
