//! Reading photos from disk, with errors that say which file and why.
//!
//! A photo is judged by its size on disk and by the dimensions in its header before anything is
//! decoded: OpenCV decodes whatever it is given, and a 20000x20000 image (a few kilobytes of
//! PNG) takes over a gigabyte. Only formats whose header we can read are decoded.

use std::io::Read;
use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, Vector};
use opencv::imgcodecs;

/// Largest photo file read, in bytes: a full-resolution phone photo is 3 to 15 MB.
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// Largest photo decoded, in pixels: 48 megapixels (a phone's full-sensor photo), about 150 MB
/// decoded as 8-bit BGR.
pub const MAX_PIXELS: u64 = 48_000_000;
/// Longest side decoded, in pixels.
pub const MAX_SIDE: u32 = 12_000;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("image {path} is too large: {reason}; use a photo of at most {MAX_SIDE} px a side and {} megapixels (사진이 너무 큼)", MAX_PIXELS / 1_000_000)]
    TooLarge { path: PathBuf, reason: String },
}

/// Loads a photo as 8-bit BGR, whatever its format or bit depth (PNG with alpha, 16-bit, grey),
/// refusing files and dimensions above the limits before decoding.
pub fn load_bgr(path: &Path) -> Result<Mat, ImageError> {
    let unreadable = |reason: String| ImageError::Unreadable { path: path.to_path_buf(), reason };
    let too_large = |reason: String| ImageError::TooLarge { path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(format!("{} bytes on disk, at most {MAX_FILE_BYTES}", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take`: the file may have grown since it was measured.
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(format!("more than {MAX_FILE_BYTES} bytes")));
    }
    let (width, height) = dimensions(&bytes).map_err(unreadable)?;
    if width == 0 || height == 0 {
        return Err(unreadable(format!("its header says {width}x{height} px")));
    }
    check_dimensions(width, height).map_err(too_large)?;
    let mat = imgcodecs::imdecode(&Vector::<u8>::from_slice(&bytes), imgcodecs::IMREAD_COLOR)
        .map_err(|e| unreadable(e.to_string()))?;
    if mat.empty() {
        return Err(unreadable("not an image in a format OpenCV can decode".into()));
    }
    Ok(mat)
}

/// Dimensions within [`MAX_SIDE`] and [`MAX_PIXELS`].
pub fn check_dimensions(width: u32, height: u32) -> Result<(), String> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!("{width}x{height} px"));
    }
    Ok(())
}

/// Width and height from the header of a JPEG, PNG, BMP, GIF, WebP or PNM (PBM/PGM/PPM) file.
pub fn dimensions(b: &[u8]) -> Result<(u32, u32), String> {
    let le16 = |i: usize| b.get(i..i + 2).map(|s| u32::from(u16::from_le_bytes([s[0], s[1]])));
    let be32 = |i: usize| b.get(i..i + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    let le32 = |i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let le24 = |i: usize| b.get(i..i + 3).map(|s| u32::from_le_bytes([s[0], s[1], s[2], 0]));
    let truncated = || "the header is cut short".to_string();
    if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        if b.get(12..16) != Some(b"IHDR") {
            return Err("a PNG without its IHDR header".into());
        }
        return Ok((be32(16).ok_or_else(truncated)?, be32(20).ok_or_else(truncated)?));
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        return jpeg_dimensions(b);
    }
    if b.starts_with(b"BM") {
        let (w, h) = (le32(18).ok_or_else(truncated)?, le32(22).ok_or_else(truncated)?);
        // Signed; a negative height means rows stored top-down.
        return Ok(((w as i32).unsigned_abs(), (h as i32).unsigned_abs()));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Ok((le16(6).ok_or_else(truncated)?, le16(8).ok_or_else(truncated)?));
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return match b.get(12..16) {
            Some(b"VP8X") => Ok((le24(24).ok_or_else(truncated)? + 1, le24(27).ok_or_else(truncated)? + 1)),
            Some(b"VP8L") => {
                let bits = le32(21).ok_or_else(truncated)?;
                Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            Some(b"VP8 ") => Ok((le16(26).ok_or_else(truncated)? & 0x3FFF, le16(28).ok_or_else(truncated)? & 0x3FFF)),
            _ => Err("a WebP file of an unknown kind".into()),
        };
    }
    if b.len() > 2 && b[0] == b'P' && (b'1'..=b'6').contains(&b[1]) {
        return pnm_dimensions(b);
    }
    Err("not a JPEG, PNG, BMP, GIF, WebP or PNM image".into())
}

/// Walks the JPEG segments up to the frame header (SOFn), skipping EXIF and other metadata.
fn jpeg_dimensions(b: &[u8]) -> Result<(u32, u32), String> {
    let be16 = |i: usize| b.get(i..i + 2).map(|s| u32::from(u16::from_be_bytes([s[0], s[1]])));
    let mut i = 2;
    loop {
        // Markers may be padded with any number of 0xFF.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return Err("a JPEG whose frame header cannot be found".into());
        }
        let marker = *b.get(i + 1).ok_or("a JPEG cut short before its frame header")?;
        i += 2;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return Err("a JPEG without a frame header before its image data".into()),
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let h = be16(i + 3).ok_or("a JPEG frame header cut short")?;
                let w = be16(i + 5).ok_or("a JPEG frame header cut short")?;
                return Ok((w, h));
            }
            _ => {
                let len = be16(i).ok_or("a JPEG segment cut short")? as usize;
                if len < 2 {
                    return Err("a JPEG segment with an impossible length".into());
                }
                i += len;
            }
        }
    }
}

/// `P6\n# comment\n640 480\n255\n...`: the first two numbers after the magic.
fn pnm_dimensions(b: &[u8]) -> Result<(u32, u32), String> {
    let head = &b[2..b.len().min(4096)];
    let mut numbers = Vec::new();
    let mut in_comment = false;
    let mut current: Option<u64> = None;
    for &c in head {
        if in_comment {
            in_comment = c != b'\n' && c != b'\r';
            continue;
        }
        match c {
            b'0'..=b'9' => current = Some(current.unwrap_or(0).saturating_mul(10).saturating_add(u64::from(c - b'0'))),
            b'#' if current.is_none() => in_comment = true,
            c if c.is_ascii_whitespace() => {
                if let Some(n) = current.take() {
                    numbers.push(n);
                    if numbers.len() == 2 {
                        let side = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                        return Ok((side(numbers[0]), side(numbers[1])));
                    }
                }
            }
            _ => return Err("a PNM file with a malformed header".into()),
        }
    }
    Err("a PNM file whose header is cut short".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, CV_8UC3};

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        // An EXIF-like APP1 segment first, as phones write, then padding, then SOF2 (progressive).
        b.extend_from_slice(&[0xFF, 0xE1, 0x01, 0x02]);
        b.extend(std::iter::repeat_n(0xAB, 0x0100));
        b.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08]);
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b
    }

    fn crafted(w: u32, h: u32) -> Vec<(&'static str, Vec<u8>)> {
        let mut bmp = b"BM".to_vec();
        bmp.resize(18, 0);
        bmp.extend_from_slice(&w.to_le_bytes());
        bmp.extend_from_slice(&(-(h as i32)).to_le_bytes());
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.resize(24, 0);
        webp.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        webp.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&(w.min(65535) as u16).to_le_bytes());
        gif.extend_from_slice(&(h.min(65535) as u16).to_le_bytes());
        vec![
            ("png", png_header(w, h)),
            ("jpg", jpeg_header(w.min(65535) as u16, h.min(65535) as u16)),
            ("bmp", bmp),
            ("webp", webp),
            ("gif", gif),
            ("ppm", format!("P6\n# made by hand\n{w} {h}\n255\n").into_bytes()),
        ]
    }

    #[test]
    fn huge_dimensions_are_refused_before_decoding_in_every_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Too wide, too tall, too many pixels though each side is fine, the tester's 20000x20000.
        for (w, h) in [(20_000, 20_000), (60_000, 10), (10, 60_000), (12_001, 100), (8_000, 8_000)] {
            for (ext, bytes) in crafted(w, h) {
                assert_eq!(dimensions(&bytes), Ok((w, h)), "{ext}");
                let path = dir.path().join(format!("huge.{ext}"));
                std::fs::write(&path, &bytes).expect("write");
                let err = load_bgr(&path).expect_err(ext);
                assert!(matches!(err, ImageError::TooLarge { .. }), "{ext} {w}x{h}: {err}");
                assert!(err.to_string().contains(&format!("{w}x{h}")), "{err}");
            }
        }
        let path = dir.path().join("empty.png");
        std::fs::write(&path, png_header(0, 100)).expect("write");
        assert!(matches!(load_bgr(&path), Err(ImageError::Unreadable { .. })), "a zero side is no image");
    }

    #[test]
    fn a_file_too_big_on_disk_is_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.jpg");
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        assert!(matches!(load_bgr(&path), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn real_images_report_their_size_and_still_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = Mat::new_rows_cols_with_default(23, 37, CV_8UC3, Scalar::new(10.0, 120.0, 200.0, 0.0)).expect("mat");
        for ext in ["jpg", "png", "bmp", "ppm"] {
            let path = dir.path().join(format!("small.{ext}"));
            assert!(imgcodecs::imwrite(path.to_str().expect("utf-8"), &img, &Vector::new()).expect("imwrite"), "{ext}");
            let bytes = std::fs::read(&path).expect("read");
            assert_eq!(dimensions(&bytes), Ok((37, 23)), "{ext}");
            let loaded = load_bgr(&path).expect(ext);
            assert_eq!((loaded.cols(), loaded.rows()), (37, 23), "{ext}");
        }
    }

    #[test]
    fn unknown_and_truncated_headers_are_unreadable_not_decoded() {
        for bytes in
            [&b"not an image"[..], b"\x89PNG\r\n\x1a\n", &[0xFF, 0xD8, 0xFF, 0xE1, 0xFF], b"II*\0", b"", b"P6 12"]
        {
            assert!(dimensions(bytes).is_err(), "{bytes:?}");
        }
    }
}
