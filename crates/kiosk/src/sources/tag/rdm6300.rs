//! The RDM6300 125 kHz (EM4100) card reader's UART output, 9600 8N1, transmit only.
//!
//! Checked against the RDM6300 datasheet text (pin table, "UART output format" and its worked
//! checksum example) and two independent write-ups of real readers:
//! - a frame is 14 bytes: `02` (STX), 10 ASCII hex characters of data, 2 ASCII hex characters of
//!   checksum, `03` (ETX);
//! - the 10 data characters are 5 bytes: a version (customer) byte, then the 4-byte card number
//!   (printed in decimal on many fobs: `10 00 86 F4 44` is card 0008844356);
//! - the checksum is the XOR of the five data bytes (datasheet example: `62 E3 08 6C ED` → `08`;
//!   write-up example: `10 00 86 F4 44` → `26`);
//! - readers of the "continuous" design repeat a card's frame about every 50 ms while it is held
//!   in the field (the "standard" design sends it once): [`super::Debounce`] makes one read of it.
//!
//! Readers send upper-case hex; lower case is accepted too (clones and bridges differ). STX and
//! ETX are never hex characters, so after noise or a damaged frame the next STX is always a
//! place to start again.

use dolbom_face::gallery::CardId;

use crate::health::DecoderStats;
use crate::sources::serial::SerialDecoder;

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
/// STX, 10 data characters, 2 checksum characters, ETX.
pub const FRAME_LEN: usize = 14;

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Two ASCII hex characters as a byte.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    Some(hex_value(pair[0])? << 4 | hex_value(*pair.get(1)?)?)
}

/// The XOR of the five data bytes.
pub fn checksum(data: &[u8; 5]) -> u8 {
    data.iter().fold(0, |x, b| x ^ b)
}

/// A card's frame as the reader sends it (upper-case hex).
pub fn encode(card: &CardId) -> [u8; FRAME_LEN] {
    encode_with_checksum(card, checksum(card.bytes()))
}

/// A frame with the given checksum byte, right or wrong (the simulator sends wrong ones).
pub fn encode_with_checksum(card: &CardId, sum: u8) -> [u8; FRAME_LEN] {
    let mut out = [0u8; FRAME_LEN];
    out[0] = STX;
    let text = format!("{card}{sum:02X}");
    out[1..13].copy_from_slice(text.as_bytes());
    out[13] = ETX;
    out
}

/// Decodes one whole frame starting at STX: the card, or what is wrong with it.
fn parse(f: &[u8]) -> Result<CardId, Damage> {
    if f[FRAME_LEN - 1] != ETX {
        return Err(Damage::Malformed);
    }
    let mut bytes = [0u8; 6];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = hex_byte(&f[1 + 2 * i..3 + 2 * i]).ok_or(Damage::Malformed)?;
    }
    let data = [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]];
    if checksum(&data) != bytes[5] {
        return Err(Damage::Checksum);
    }
    Ok(CardId::from_bytes(data))
}

enum Damage {
    Malformed,
    Checksum,
}

/// The reader's decoder: card ids out, never more than one frame buffered.
#[derive(Debug, Default)]
pub struct Rdm6300 {
    buf: Vec<u8>,
    stats: DecoderStats,
}

impl Rdm6300 {
    /// Bytes held back as the start of an unfinished frame (always under [`FRAME_LEN`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl SerialDecoder for Rdm6300 {
    type Frame = CardId;

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<CardId>) {
        self.buf.extend_from_slice(bytes);
        // A cursor over the buffer, compacted once at the end (as in the other decoders).
        let mut pos = 0usize;
        loop {
            let rest = &self.buf[pos..];
            let Some(p) = rest.iter().position(|b| *b == STX) else {
                self.stats.bytes_skipped += rest.len() as u64;
                pos += rest.len();
                break;
            };
            self.stats.bytes_skipped += p as u64;
            pos += p;
            let rest = &self.buf[pos..];
            // A second STX before this frame could end: the first began a frame cut short.
            if let Some(q) = rest[1..rest.len().min(FRAME_LEN)].iter().position(|b| *b == STX) {
                self.stats.malformed += 1;
                self.stats.bytes_skipped += q as u64 + 1;
                pos += q + 1;
                continue;
            }
            if rest.len() < FRAME_LEN {
                break; // the rest of this frame has not arrived yet
            }
            match parse(&rest[..FRAME_LEN]) {
                Ok(card) => {
                    out.push(card);
                    self.stats.frames += 1;
                    pos += FRAME_LEN;
                }
                Err(damage) => {
                    match damage {
                        Damage::Malformed => self.stats.malformed += 1,
                        Damage::Checksum => self.stats.checksum_errors += 1,
                    }
                    // Step past this STX only: the hunt for the next one counts the rest.
                    self.stats.bytes_skipped += 1;
                    pos += 1;
                }
            }
        }
        self.buf.drain(..pos);
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(s: &str) -> CardId {
        s.parse().expect("card id")
    }

    fn decode(bytes: &[u8]) -> (Vec<CardId>, DecoderStats, usize) {
        let mut d = Rdm6300::default();
        let mut out = Vec::new();
        d.feed(bytes, &mut out);
        (out, d.stats(), d.buffered())
    }

    #[test]
    fn the_datasheet_and_write_up_examples() {
        // Datasheet: data 62E3086CED, checksum 08. Write-up: a fob printed 0008844356.
        assert_eq!(encode(&card("62E3086CED")), *b"\x0262E3086CED08\x03");
        let (cards, stats, left) = decode(b"\x02100086F44426\x03");
        assert_eq!(cards, [card("100086F444")]);
        assert_eq!(cards[0].number(), 8_844_356, "the number printed on the fob");
        assert_eq!(stats, DecoderStats { frames: 1, ..DecoderStats::default() });
        assert_eq!(left, 0);
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_cards() {
        let a = card("0A00C3D2E1");
        let b = card("62E3086CED");
        let stream = [&b"\x00\xFFnoise"[..], &encode(&a), &encode(&b), &encode(&a)].concat();
        for cut in 0..=stream.len() {
            for cut2 in cut..=stream.len() {
                let mut d = Rdm6300::default();
                let mut out = Vec::new();
                d.feed(&stream[..cut], &mut out);
                d.feed(&stream[cut..cut2], &mut out);
                d.feed(&stream[cut2..], &mut out);
                assert_eq!(out, [a, b, a], "cut at {cut} and {cut2}");
                assert_eq!(d.stats().bytes_skipped, 7, "cut at {cut} and {cut2}");
                assert_eq!(d.buffered(), 0);
            }
        }
    }

    #[test]
    fn a_bad_checksum_is_counted_and_the_next_frame_read() {
        let a = card("62E3086CED");
        let bad = encode_with_checksum(&a, 0x09);
        let (cards, stats, _) = decode(&[&bad[..], &encode(&a)].concat());
        assert_eq!(cards, [a]);
        assert_eq!(stats.checksum_errors, 1);
        assert_eq!(stats.bytes_skipped, FRAME_LEN as u64);
    }

    #[test]
    fn lower_case_hex_is_read() {
        let (cards, stats, _) = decode(b"\x0262e3086ced08\x03");
        assert_eq!(cards, [card("62E3086CED")]);
        assert_eq!(cards[0].to_string(), "62E3086CED", "shown upper case");
        assert_eq!(stats.frames, 1);
    }

    #[test]
    fn a_truncated_frame_followed_by_a_whole_one() {
        let a = card("62E3086CED");
        let whole = encode(&a);
        let (cards, stats, left) = decode(&[&whole[..7], &whole[..]].concat());
        assert_eq!(cards, [a]);
        assert_eq!(stats.malformed, 1);
        assert_eq!(stats.bytes_skipped, 7);
        assert_eq!(left, 0);
    }

    #[test]
    fn non_hex_characters_and_a_missing_etx_are_malformed() {
        let (cards, stats, _) = decode(b"\x0262E3086CEG08\x03\x0262E3086CED08\x04");
        assert!(cards.is_empty());
        assert_eq!(stats.malformed, 2);
    }

    #[test]
    fn repeated_frames_are_each_decoded_for_the_debounce_to_judge() {
        let a = card("62E3086CED");
        let stream: Vec<u8> = (0..20).flat_map(|_| encode(&a)).collect();
        let (cards, stats, _) = decode(&stream);
        assert_eq!(cards.len(), 20);
        assert_eq!(stats.frames, 20);
    }

    #[test]
    fn noise_of_every_byte_never_panics_and_stays_bounded() {
        let mut d = Rdm6300::default();
        let mut out = Vec::new();
        let noise: Vec<u8> = (0..1 << 16).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for chunk in noise.chunks(97) {
            d.feed(chunk, &mut out);
            assert!(d.buffered() < FRAME_LEN);
        }
        let flood = vec![STX; 5000];
        d.feed(&flood, &mut out);
        assert!(d.buffered() < FRAME_LEN);
        let s = d.stats();
        assert_eq!(s.bytes_skipped as usize + d.buffered() + FRAME_LEN * s.frames as usize, noise.len() + flood.len());
    }
}
