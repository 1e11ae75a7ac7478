//! The sealed gallery format: one text line, then the ciphertext.
//!
//! ```text
//! dolbom.gallery.sealed/1 chacha20-poly1305 key=<16 hex: key id> nonce=<24 hex>\n
//! <ChaCha20-Poly1305 ciphertext of the plain JSON gallery, then its 16-byte tag>
//! ```
//!
//! The header line, newline included, is the cipher's associated data: changing any byte of it
//! or of the ciphertext fails authentication. The nonce is 96 random bits per write. Random
//! nonces are safe here because one key seals few messages: a gallery is written on enrolment,
//! removal and at most weekly template refreshes, thousands of times over a key's life, far below
//! the ~2^32 messages at which a repeated random 96-bit nonce becomes a real risk.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::key::{GalleryKey, KeyId};

/// How a sealed gallery begins; a plain one begins with `{`.
pub const MAGIC: &str = "dolbom.gallery.sealed/";
pub const FORMAT: &str = "dolbom.gallery.sealed/1";
const CIPHER: &str = "chacha20-poly1305";
/// The longest header line that can be valid, so a damaged file is not scanned whole.
const MAX_HEADER: usize = 128;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SealError {
    #[error("its header is damaged ({0})")]
    Header(&'static str),
    #[error("it is sealed in format `{0}`, which this version of dolbom does not read")]
    Version(String),
    #[error("it does not authenticate: it was changed or damaged after it was written")]
    Tampered,
    #[error("it is sealed with key {file}, not with the configured key {configured}")]
    WrongKey { file: KeyId, configured: KeyId },
    #[error("the system's random number source failed")]
    NoRandomness,
    #[error("the cipher refused the key")]
    BadKey,
}

/// What the header line says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub key: KeyId,
    nonce: [u8; NONCE_LEN],
}

pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC.as_bytes())
}

/// Reads the header of a sealed file; returns it and where the ciphertext starts.
pub fn header(bytes: &[u8]) -> Result<(Header, usize), SealError> {
    let end = bytes.iter().take(MAX_HEADER).position(|&b| b == b'\n').ok_or(SealError::Header("no header line"))?;
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| SealError::Header("not text"))?;
    let mut fields = line.split(' ');
    let format = fields.next().unwrap_or_default();
    if format != FORMAT {
        return Err(if format.starts_with(MAGIC) {
            SealError::Version(format.to_string())
        } else {
            SealError::Header("unknown format")
        });
    }
    if fields.next() != Some(CIPHER) {
        return Err(SealError::Header("unknown cipher"));
    }
    let key = fields
        .next()
        .and_then(|f| f.strip_prefix("key="))
        .and_then(KeyId::parse)
        .ok_or(SealError::Header("bad key id"))?;
    let mut nonce = [0u8; NONCE_LEN];
    fields
        .next()
        .and_then(|f| f.strip_prefix("nonce="))
        .and_then(|n| hex::decode_to_slice(n, &mut nonce).ok())
        .ok_or(SealError::Header("bad nonce"))?;
    if fields.next().is_some() {
        return Err(SealError::Header("extra fields"));
    }
    Ok((Header { key, nonce }, end + 1))
}

/// Seals `plain` with `key` under a fresh random nonce.
pub fn seal(plain: &[u8], key: &GalleryKey) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::NoRandomness)?;
    let line = format!("{FORMAT} {CIPHER} key={} nonce={}\n", key.id(), hex::encode(nonce));
    let mut out = Vec::with_capacity(line.len() + plain.len() + CHACHA20_POLY1305.tag_len());
    out.extend_from_slice(line.as_bytes());
    let mut body = plain.to_vec();
    aead_key(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(line.as_bytes()), &mut body)
        .map_err(|_| SealError::Tampered)?;
    out.extend_from_slice(&body);
    // The plain copy is not left in freed memory longer than needed.
    body.fill(0);
    Ok(out)
}

/// Opens a sealed file with `key`: the plain bytes, or why not.
pub fn open(bytes: &[u8], key: &GalleryKey) -> Result<Vec<u8>, SealError> {
    let (header, start) = header(bytes)?;
    if header.key != key.id() {
        return Err(SealError::WrongKey { file: header.key, configured: key.id() });
    }
    let mut body = bytes[start..].to_vec();
    let plain_len = aead_key(key)?
        .open_in_place(Nonce::assume_unique_for_key(header.nonce), Aad::from(&bytes[..start]), &mut body)
        .map_err(|_| SealError::Tampered)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

fn aead_key(key: &GalleryKey) -> Result<LessSafeKey, SealError> {
    // Never refused: ChaCha20-Poly1305 takes any 32-byte key, and ours are 32 bytes.
    Ok(LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key.bytes()).map_err(|_| SealError::BadKey)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> GalleryKey {
        GalleryKey::from_hex(&format!("{b:02x}").repeat(32)).expect("key")
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let plain = br#"{"format":"dolbom.gallery/1"}"#;
        let a = seal(plain, &key(1)).expect("seal");
        let b = seal(plain, &key(1)).expect("seal");
        assert_ne!(a, b, "a new nonce per write");
        assert!(is_sealed(&a));
        assert!(!a.windows(6).any(|w| w == b"format"), "no plain text in the sealed bytes");
        assert_eq!(open(&a, &key(1)).expect("open"), plain);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let sealed = seal(br#"{"format":"dolbom.gallery/1","gallery":{}}"#, &key(7)).expect("seal");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&bad, &key(7)).is_err(), "byte {i} flipped and still opened");
        }
        for len in 0..sealed.len() {
            assert!(open(&sealed[..len], &key(7)).is_err(), "truncated to {len} and still opened");
        }
    }

    #[test]
    fn wrong_key_is_told_apart_from_damage() {
        let sealed = seal(b"{}", &key(1)).expect("seal");
        assert_eq!(open(&sealed, &key(2)), Err(SealError::WrongKey { file: key(1).id(), configured: key(2).id() }));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert_eq!(open(&bad, &key(1)), Err(SealError::Tampered));
        let newer = [b"dolbom.gallery.sealed/2 x\n".as_slice(), &sealed].concat();
        assert!(matches!(open(&newer, &key(1)), Err(SealError::Version(v)) if v == "dolbom.gallery.sealed/2"));
    }
}
