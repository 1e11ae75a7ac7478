//! A line protocol for small thermal arrays behind a serial bridge, e.g. an AMG8833 (8x8) read
//! by a microcontroller: one line per frame, `T,<ambient>,<p0>,...,<pN>\n`, in degrees Celsius,
//! row-major. Lines that do not parse, or have the wrong number of values, are counted and
//! skipped. Values that parse but are impossible (`nan`, 999) are passed on: judging them is
//! [`super::plausibility`]'s job, so the sensor is reported faulty rather than silent.

use super::{DecoderStats, SerialDecoder, ThermalFrame};

const MAX_LINE: usize = 16 * 1024;

pub struct CsvFrames {
    width: usize,
    height: usize,
    line: Vec<u8>,
    overlong: bool,
    stats: DecoderStats,
}

impl CsvFrames {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, line: Vec::new(), overlong: false, stats: DecoderStats::default() }
    }

    fn parse(&self, line: &[u8]) -> Option<ThermalFrame> {
        let text = std::str::from_utf8(line).ok()?.trim();
        let mut fields = text.strip_prefix("T,")?.split(',');
        let ambient: f32 = fields.next()?.trim().parse().ok()?;
        let pixels: Vec<f32> = fields.map(|f| f.trim().parse::<f32>()).collect::<Result<_, _>>().ok()?;
        if pixels.len() != self.width * self.height {
            return None;
        }
        Some(ThermalFrame { width: self.width, height: self.height, pixels, ambient_c: Some(ambient), mono_ms: 0 })
    }
}

impl SerialDecoder for CsvFrames {
    type Frame = ThermalFrame;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ThermalFrame>) {
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() < MAX_LINE {
                    self.line.push(b);
                } else {
                    self.overlong = true;
                    self.stats.bytes_skipped += 1;
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if self.overlong {
                self.overlong = false;
                self.stats.malformed += 1;
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.parse(&line) {
                Some(frame) => {
                    self.stats.frames += 1;
                    out.push(frame);
                }
                None => self.stats.malformed += 1,
            }
        }
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn init_commands(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// Encodes a frame as a line (the simulator and the tests use this).
pub fn encode(pixels_c: &[f32], ambient_c: f32) -> Vec<u8> {
    let mut s = format!("T,{ambient_c:.2}");
    for p in pixels_c {
        s.push_str(&format!(",{p:.2}"));
    }
    s.push('\n');
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_pieces_and_bad_lines_counted() {
        let good = encode(&[25.0; 64], 23.5);
        let stream = [b"junk\n".as_slice(), &good[..10], &good[10..], b"T,1,2,3\n", b"\n", &good].concat();
        let mut d = CsvFrames::new(8, 8);
        let mut out = Vec::new();
        for c in stream.chunks(5) {
            d.feed(c, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].ambient_c, Some(23.5));
        assert_eq!(d.stats().malformed, 2);
    }

    #[test]
    fn an_endless_line_is_bounded() {
        let mut d = CsvFrames::new(8, 8);
        let mut out = Vec::new();
        d.feed(&vec![b'1'; 100_000], &mut out);
        d.feed(b"\n", &mut out);
        d.feed(&encode(&[20.0; 64], 20.0), &mut out);
        assert_eq!(out.len(), 1);
        assert!(d.line.capacity() <= 2 * MAX_LINE);
    }
}
