//! An RDM6300 tag reader, simulated: the bytes a reader sends when cards are held to it, with
//! the line noise, damaged frames and repeats a real one produces (`dolbom sim tag`, the tests).

use std::io::Write;
use std::time::Duration;

use dolbom_face::gallery::CardId;

use crate::sources::tag::rdm6300::{checksum, encode, encode_with_checksum, STX};

/// How each card is presented.
#[derive(Debug, Clone)]
pub struct TagSim {
    /// Frames per card: a "continuous" reader repeats the frame while the card is held.
    pub repeat: u32,
    /// Between repeated frames (real readers: about 50 ms).
    pub interval: Duration,
    /// Between cards.
    pub gap: Duration,
    /// Line noise before each card, with a stray STX in it.
    pub noise: bool,
    /// One frame with a wrong checksum before each card's good frames.
    pub bad_checksum: bool,
}

impl Default for TagSim {
    fn default() -> Self {
        Self {
            repeat: 1,
            interval: Duration::from_millis(50),
            gap: Duration::from_secs(1),
            noise: false,
            bad_checksum: false,
        }
    }
}

/// Noise a reader's line picks up: random-looking bytes, a stray STX, hex digits, a stray ETX.
pub const NOISE: &[u8] = b"\x00\xff\x55\x02\x31\x41\x7e\x03\x80";

/// The writes for one card, in order; each is one burst on the wire.
pub fn bursts(card: &CardId, sim: &TagSim) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if sim.noise {
        out.push(NOISE.to_vec());
    }
    if sim.bad_checksum {
        out.push(encode_with_checksum(card, checksum(card.bytes()) ^ 0x5A).to_vec());
    }
    out.extend((0..sim.repeat).map(|_| encode(card).to_vec()));
    out
}

/// Writes the cards' frames to `port`, paced as a reader sends them; returns the bytes written.
pub fn play(port: &mut impl Write, cards: &[CardId], sim: &TagSim) -> std::io::Result<usize> {
    let mut written = 0;
    for (i, card) in cards.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(sim.gap);
        }
        for (j, burst) in bursts(card, sim).iter().enumerate() {
            if j > 0 && burst.first() == Some(&STX) {
                std::thread::sleep(sim.interval);
            }
            port.write_all(burst)?;
            port.flush()?;
            written += burst.len();
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::serial::SerialDecoder;
    use crate::sources::tag::Rdm6300;

    #[test]
    fn the_decoder_reads_the_simulator_with_every_kind_of_damage() {
        let card: CardId = "62E3086CED".parse().expect("card");
        let sim = TagSim { repeat: 4, noise: true, bad_checksum: true, ..TagSim::default() };
        let bytes: Vec<u8> = bursts(&card, &sim).concat();
        let mut d = Rdm6300::default();
        let mut out = Vec::new();
        d.feed(&bytes, &mut out);
        assert_eq!(out, vec![card; 4]);
        assert_eq!((d.stats().checksum_errors, d.stats().frames), (1, 4));
        assert!(d.stats().malformed >= 1, "the stray STX in the noise: {:?}", d.stats());
    }
}
