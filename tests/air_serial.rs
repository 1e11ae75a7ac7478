//! The air-quality decoders under real byte layouts and hostile input: frames written out byte by
//! byte with hand-computed checksums, every single-byte change, every split, noise, lying length
//! fields, warm-up, a bounded mutational fuzz run per decoder, and the simulator's day decoded
//! back to the simulator's values.

use std::time::{Duration, Instant};

use dolbom_kiosk::sim::air::{day, AirSim};
use dolbom_kiosk::sim::thermal::Rng;
use dolbom_kiosk::sources::air::mhz19::{self, Mhz19b};
use dolbom_kiosk::sources::air::pms::{self, Mode, Pms};
use dolbom_kiosk::sources::air::window::PmMean;
use dolbom_kiosk::sources::air::{plausibility, Co2Reading, DecoderStats, PmReading, PmsFrame, SerialDecoder};

/// A PMS5003 frame written out byte by byte (values of a real indoor reading).
///
/// Checksum by hand, the sum of bytes 0..=29:
/// header 0x42 + 0x4D + 0x00 + 0x1C = 66 + 77 + 28 = 171;
/// masses 18 + 46 + 54 + 18 + 39 + 50 = 225 (running 396);
/// counts (0x0D + 0xB9) + (0x04 + 0x3D) + (0x01 + 0x55) + 0x3F + 0x0E + 0x01
///        = 198 + 65 + 86 + 63 + 14 + 1 = 427 (running 823);
/// version 0x97 = 151, error 0 (running 974) = 0x03CE.
const PMS5003_FRAME: [u8; 32] = [
    0x42, 0x4D, 0x00, 0x1C, // header, length 28
    0x00, 0x12, 0x00, 0x2E, 0x00, 0x36, // CF=1: PM1.0 18, PM2.5 46, PM10 54
    0x00, 0x12, 0x00, 0x27, 0x00, 0x32, // atmospheric: 18, 39, 50
    0x0D, 0xB9, 0x04, 0x3D, 0x01, 0x55, // >0.3 µm 3513, >0.5 µm 1085, >1.0 µm 341
    0x00, 0x3F, 0x00, 0x0E, 0x00, 0x01, // >2.5 µm 63, >5.0 µm 14, >10 µm 1
    0x97, 0x00, // version, error code
    0x03, 0xCE, // checksum 974
];

fn pms5003_reading() -> PmReading {
    PmReading {
        pm1_cf1: 18,
        pm25_cf1: 46,
        pm10_cf1: 54,
        pm1: 18,
        pm25: 39,
        pm10: 50,
        counts: [3513, 1085, 341, 63, 14, 1],
        version: 0x97,
        ..PmReading::default()
    }
}

/// A PMS5003ST frame: HCHO 23 µg/m³ (0.023 mg/m³), -3.5 degC, 55.1 % RH.
///
/// Checksum by hand, the sum of bytes 0..=37:
/// header 66 + 77 + 0 + 36 = 179; masses 5 + 8 + 9 + 5 + 8 + 9 = 44 (running 223);
/// counts (0x03 + 0x84) + (0x01 + 0x0E) + 0x28 + 0x04 + 0x01 + 0 = 135 + 15 + 40 + 4 + 1 = 195
/// (running 418); HCHO 0x17 = 23 (441); temperature 0xFF + 0xDD = 476 (917);
/// humidity 0x02 + 0x27 = 41 (958); reserved 0; version 0x91 = 145, error 0 (1103) = 0x044F.
const PMS5003ST_FRAME: [u8; 40] = [
    0x42, 0x4D, 0x00, 0x24, // header, length 36
    0x00, 0x05, 0x00, 0x08, 0x00, 0x09, // CF=1: 5, 8, 9
    0x00, 0x05, 0x00, 0x08, 0x00, 0x09, // atmospheric: 5, 8, 9
    0x03, 0x84, 0x01, 0x0E, 0x00, 0x28, // counts 900, 270, 40
    0x00, 0x04, 0x00, 0x01, 0x00, 0x00, // counts 4, 1, 0
    0x00, 0x17, // formaldehyde 23 µg/m³
    0xFF, 0xDD, // temperature -35 = -3.5 degC (signed)
    0x02, 0x27, // humidity 551 = 55.1 %
    0x00, 0x00, // reserved
    0x91, 0x00, // version, error code
    0x04, 0x4F, // checksum 1103
];

fn pms5003st_reading() -> PmReading {
    PmReading {
        pm1_cf1: 5,
        pm25_cf1: 8,
        pm10_cf1: 9,
        pm1: 5,
        pm25: 8,
        pm10: 9,
        counts: [900, 270, 40, 4, 1, 0],
        hcho_ug_m3: Some(23),
        temperature_c: Some(-3.5),
        humidity_pct: Some(55.1),
        version: 0x91,
        ..PmReading::default()
    }
}

/// An MH-Z19B answer: 608 ppm. Check value: bytes 1..=7 sum to 0x86 + 0x02 + 0x60 + 0x47 =
/// 134 + 2 + 96 + 71 = 303, low byte 0x2F; 0xFF - 0x2F + 1 = 0xD1.
const MHZ19B_ANSWER: [u8; 9] = [0xFF, 0x86, 0x02, 0x60, 0x47, 0x00, 0x00, 0x00, 0xD1];

fn feed_pms(chunks: &[&[u8]]) -> (Vec<PmsFrame>, DecoderStats, usize) {
    let mut d = Pms::new(Mode::Active);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    (out, d.stats(), d.buffered())
}

fn feed_mhz(chunks: &[&[u8]]) -> (Vec<Co2Reading>, DecoderStats, usize) {
    let mut d = Mhz19b::new(Duration::ZERO, None);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    (out, d.stats(), d.buffered())
}

fn readings(frames: &[PmsFrame]) -> Vec<PmReading> {
    frames.iter().filter_map(PmsFrame::reading).copied().collect()
}

#[test]
fn hand_written_frames_decode_and_the_encoders_reproduce_them() {
    let (frames, stats, left) = feed_pms(&[&PMS5003_FRAME, &PMS5003ST_FRAME]);
    assert_eq!(frames, vec![PmsFrame::Reading(pms5003_reading()), PmsFrame::Reading(pms5003st_reading())]);
    assert_eq!(stats, DecoderStats { frames: 2, ..DecoderStats::default() });
    assert_eq!(left, 0);
    assert_eq!(pms::encode(&pms5003_reading()), PMS5003_FRAME);
    assert_eq!(pms::encode(&pms5003st_reading()), PMS5003ST_FRAME);
    for r in [pms5003_reading(), pms5003st_reading()] {
        assert_eq!(plausibility::check_pm(&r), Ok(()));
        assert!(!r.warming);
    }

    let (co2, stats, _) = feed_mhz(&[&MHZ19B_ANSWER]);
    assert_eq!(co2, vec![Co2Reading { ppm: 608, warming: false }]);
    assert_eq!(stats.frames, 1);
    assert_eq!(mhz19::encode_answer(608, [0x47, 0, 0, 0]), MHZ19B_ANSWER);
    assert_eq!(mhz19::checksum(&MHZ19B_ANSWER), 0xD1);
}

#[test]
fn commands_have_the_datasheet_bytes() {
    // LRC = 0x42 + 0x4D + CMD + DATAH + DATAL, e.g. passive: 0x8F + 0xE1 = 0x170.
    assert_eq!(pms::passive_mode(), [0x42, 0x4D, 0xE1, 0x00, 0x00, 0x01, 0x70]);
    assert_eq!(pms::active_mode(), [0x42, 0x4D, 0xE1, 0x00, 0x01, 0x01, 0x71]);
    assert_eq!(pms::read(), [0x42, 0x4D, 0xE2, 0x00, 0x00, 0x01, 0x71]);
    assert_eq!(pms::sleep(), [0x42, 0x4D, 0xE4, 0x00, 0x00, 0x01, 0x73]);
    assert_eq!(pms::wake(), [0x42, 0x4D, 0xE4, 0x00, 0x01, 0x01, 0x74]);
    assert_eq!(Pms::new(Mode::Passive).init_commands(), vec![pms::wake().to_vec(), pms::passive_mode().to_vec()]);
    assert_eq!(Pms::new(Mode::Active).init_commands(), vec![pms::wake().to_vec(), pms::active_mode().to_vec()]);
    // 0xFF - (0x01 + 0x86) + 1 = 0x79.
    assert_eq!(mhz19::poll(), [0xFF, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79]);
    assert_eq!(mhz19::abc(false), [0xFF, 0x01, 0x79, 0x00, 0x00, 0x00, 0x00, 0x00, 0x86]);
    assert_eq!(
        Mhz19b::new(mhz19::PREHEAT, Some(false)).init_commands(),
        vec![mhz19::abc(false).to_vec(), mhz19::poll().to_vec()]
    );
    assert_eq!(Mhz19b::new(mhz19::PREHEAT, None).init_commands(), vec![mhz19::poll().to_vec()]);
}

/// Every byte of a frame changed to every other value, followed by an intact frame: the damaged
/// one never yields a reading, the damage is counted, and the intact one is always recovered.
#[test]
fn every_single_byte_change_is_refused_or_resynced() {
    for (name, frame, good) in
        [("PMS5003", &PMS5003_FRAME[..], pms5003_reading()), ("PMS5003ST", &PMS5003ST_FRAME[..], pms5003st_reading())]
    {
        let next = pms::encode(&PmReading { pm25: 40, pm25_cf1: 47, ..pms5003_reading() });
        let expected = PmsFrame::Reading(PmReading { pm25: 40, pm25_cf1: 47, ..pms5003_reading() });
        for at in 0..frame.len() {
            for x in 1..=255u8 {
                let mut bad = frame.to_vec();
                bad[at] ^= x;
                let (frames, stats, _) = feed_pms(&[&bad, &next]);
                assert_eq!(frames, vec![expected], "{name}: byte {at} ^ {x:#04x}");
                assert!(
                    stats.checksum_errors + stats.malformed + stats.bytes_skipped > 0,
                    "{name}: byte {at} ^ {x:#04x} went unnoticed"
                );
                assert_ne!(readings(&frames)[0], good);
            }
        }
    }
    for at in 0..MHZ19B_ANSWER.len() {
        for x in 1..=255u8 {
            let mut bad = MHZ19B_ANSWER;
            bad[at] ^= x;
            let next = mhz19::encode_answer(1234, [0; 4]);
            let (co2, stats, _) = feed_mhz(&[&bad, &next]);
            assert_eq!(co2, vec![Co2Reading { ppm: 1234, warming: false }], "MH-Z19B: byte {at} ^ {x:#04x}");
            assert!(stats.checksum_errors + stats.bytes_skipped > 0, "MH-Z19B: byte {at} ^ {x:#04x} unnoticed");
        }
    }
}

/// A stream of every frame kind with noise between them, cut at every offset into two reads and
/// fed in reads of every size from 1 to its whole length: always the same frames and counters.
#[test]
fn split_at_every_offset_and_every_read_size_gives_the_same_frames() {
    let noise = [0x00, 0x42, 0x13, 0x42, 0x4D, 0x77, 0x77, 0x42];
    let stream =
        [&PMS5003_FRAME[..], &noise, &PMS5003ST_FRAME, &pms::encode_ack([0xE1, 0x00]), &noise, &PMS5003_FRAME].concat();
    let (whole, whole_stats, _) = feed_pms(&[&stream]);
    assert_eq!(whole.len(), 4);
    assert_eq!(whole[2], PmsFrame::Ack([0xE1, 0x00]));
    for k in 0..=stream.len() {
        assert_eq!(feed_pms(&[&stream[..k], &stream[k..]]).0, whole, "split at {k}");
    }
    for n in 1..=stream.len() {
        let chunks: Vec<&[u8]> = stream.chunks(n).collect();
        let (frames, stats, _) = feed_pms(&chunks);
        assert_eq!(frames, whole, "reads of {n}");
        assert_eq!(stats, whole_stats, "reads of {n}");
    }

    let co2_noise = [0xFF, 0x01, 0xFF, 0xFF, 0x86, 0x00];
    let co2_stream = [&MHZ19B_ANSWER[..], &co2_noise, &mhz19::encode_answer(900, [0; 4]), &MHZ19B_ANSWER].concat();
    let (whole, whole_stats, _) = feed_mhz(&[&co2_stream]);
    assert_eq!(whole.iter().map(|r| r.ppm).collect::<Vec<_>>(), vec![608, 900, 608]);
    for k in 0..=co2_stream.len() {
        assert_eq!(feed_mhz(&[&co2_stream[..k], &co2_stream[k..]]).0, whole, "split at {k}");
    }
    for n in 1..=co2_stream.len() {
        let chunks: Vec<&[u8]> = co2_stream.chunks(n).collect();
        let (frames, stats, _) = feed_mhz(&chunks);
        assert_eq!((frames, stats), (whole.clone(), whole_stats), "reads of {n}");
    }
}

#[test]
fn an_all_zero_frame_is_warming_never_clean_air() {
    let zero = pms::encode(&PmReading { version: 0x97, ..PmReading::default() });
    let (frames, stats, _) = feed_pms(&[&zero, &PMS5003_FRAME]);
    let r = readings(&frames);
    assert_eq!(stats.frames, 2, "a warming frame is a valid frame (the sensor is alive)");
    assert!(r[0].warming, "all-zero payload is warm-up");
    assert!(!r[1].warming);
    assert_eq!(PmMean::of(&r[..1]), None, "a window of warm-up has no PM value, not 0 µg/m³");
    let mean = PmMean::of(&r).expect("one measured reading");
    assert_eq!((mean.n, mean.warming, mean.pm25), (1, 1, 39.0));
    // One count above zero is a (very clean) measurement, not warm-up.
    let clean = pms::encode(&PmReading { counts: [3, 0, 0, 0, 0, 0], ..PmReading::default() });
    assert!(!readings(&feed_pms(&[&clean]).0)[0].warming);
    // CO2 during the preheat is marked, whatever value the sensor sends.
    let mut d = Mhz19b::new(mhz19::PREHEAT, None);
    let mut out = Vec::new();
    d.feed(&mhz19::encode_answer(555, [0; 4]), &mut out);
    assert_eq!(out, vec![Co2Reading { ppm: 555, warming: true }]);
}

#[test]
fn noise_false_headers_and_lying_lengths_are_counted_and_passed_over() {
    // A false header in noise, with an unknown length: malformed.
    let lying = [0x42, 0x4D, 0xFF, 0xF0, 0x01, 0x02];
    // A real header whose length says 36 on a 32-byte frame: the checksum fails, and the next
    // frame, partly swallowed by the claimed length, is still found.
    let mut long = PMS5003_FRAME;
    long[3] = 0x24;
    // A frame cut short (a read lost), then a whole one.
    let truncated = &PMS5003_FRAME[..20];
    let stream = [&lying[..], &PMS5003_FRAME, &long, &PMS5003ST_FRAME, truncated, &PMS5003_FRAME].concat();
    let (frames, stats, left) = feed_pms(&[&stream]);
    assert_eq!(readings(&frames), vec![pms5003_reading(), pms5003st_reading(), pms5003_reading()]);
    assert_eq!(stats.malformed, 1, "{stats:?}");
    assert_eq!(stats.checksum_errors, 2, "the lying length and the truncated frame: {stats:?}");
    assert_eq!(left, 0);
    // Bytes in = frame bytes out + bytes skipped.
    assert_eq!(stream.len() as u64, 32 + 40 + 32 + stats.bytes_skipped);

    // A length of 0xFFFF never makes the decoder wait for 65 kB.
    let (frames, _, left) = feed_pms(&[&[0x42, 0x4D, 0xFF, 0xFF], &[0xAA; 100], &PMS5003_FRAME]);
    assert_eq!(readings(&frames), vec![pms5003_reading()]);
    assert_eq!(left, 0);

    // CO2: noise with a false `FF 86`, another command's answer, then a real answer.
    let noise = [0xFF, 0x86, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x42];
    let other = [0xFF, 0x79, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x86];
    let (co2, stats, _) = feed_mhz(&[&noise, &other, &MHZ19B_ANSWER]);
    assert_eq!(co2, vec![Co2Reading { ppm: 608, warming: false }]);
    assert_eq!(stats.checksum_errors, 1, "{stats:?}");
}

#[test]
fn floods_and_garbage_keep_the_buffers_bounded() {
    let mut rng = Rng::new(77);
    let garbage: Vec<u8> = (0..200_000).map(|_| (rng.next_f64() * 256.0) as u8).collect();
    let header_flood: Vec<u8> = [0x42u8, 0x4D, 0x00, 0x1C].iter().copied().cycle().take(100_000).collect();
    let mut p = Pms::new(Mode::Active);
    let mut m = Mhz19b::new(Duration::ZERO, None);
    let (mut pout, mut mout) = (Vec::new(), Vec::new());
    for chunk in garbage.chunks(997).chain(header_flood.chunks(333)) {
        p.feed(chunk, &mut pout);
        m.feed(chunk, &mut mout);
        assert!(p.buffered() < pms::MAX_FRAME_LEN, "PMS holds {}", p.buffered());
        assert!(m.buffered() < mhz19::FRAME_LEN, "MH-Z19B holds {}", m.buffered());
    }
    p.feed(&PMS5003_FRAME, &mut pout);
    m.feed(&MHZ19B_ANSWER, &mut mout);
    assert_eq!(readings(&pout).last(), Some(&pms5003_reading()), "recovers once real frames arrive");
    assert_eq!(mout.last(), Some(&Co2Reading { ppm: 608, warming: false }));
}

/// Bytes a frame took on the wire, from what the decoder made of it.
fn pms_frame_len(f: &PmsFrame) -> u64 {
    match f {
        PmsFrame::Ack(_) => pms::ACK_LEN as u64,
        PmsFrame::Reading(r) if r.is_extended() => pms::FRAME_LEN_ST as u64,
        PmsFrame::Reading(_) => pms::FRAME_LEN as u64,
    }
}

/// A mutational fuzzer with a time budget (DOLBOM_FUZZ_SECS, default 10 s per decoder), as for
/// the thermal decoders: valid frames cut, spliced, bit-flipped, duplicated and mixed with
/// random bytes, fed in random splits. Nothing may panic, every input byte must be accounted for
/// (in a frame, skipped, or held as the start of one), memory must stay bounded, and every
/// reading must be one the plausibility check can judge. Failing inputs print a seed to replay.
#[test]
fn fuzz_decoders_never_panic_and_account_for_every_byte() {
    let secs: u64 = std::env::var("DOLBOM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let valid_pms: Vec<Vec<u8>> = vec![
        PMS5003_FRAME.to_vec(),
        PMS5003ST_FRAME.to_vec(),
        pms::encode_ack([0xE4, 0x00]),
        pms::encode(&PmReading { version: 0x97, ..PmReading::default() }),
    ];
    let valid_mhz: Vec<Vec<u8>> =
        [400u16, 608, 1234, 4999].iter().map(|p| mhz19::encode_answer(*p, [0x41, 0, 0, 0]).to_vec()).collect();
    for (name, valid) in [("pms", &valid_pms), ("mh-z19b", &valid_mhz)] {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut cases = 0u64;
        let mut emitted = 0u64;
        while Instant::now() < deadline {
            let seed = 0xA17_5EED_0000_0000u64 ^ cases;
            let mut rng = Rng::new(seed);
            let input = mutate(valid, &mut rng);
            let mut pms_d = Pms::new(Mode::Active);
            let mut mhz_d = Mhz19b::new(Duration::ZERO, None);
            let (mut pms_out, mut mhz_out) = (Vec::new(), Vec::new());
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let n = 1 + (rng.next_f64() * 100.0) as usize % rest.len().max(1);
                    let (chunk, tail) = rest.split_at(n.min(rest.len()));
                    if name == "pms" {
                        pms_d.feed(chunk, &mut pms_out);
                        assert!(pms_d.buffered() < pms::MAX_FRAME_LEN);
                    } else {
                        mhz_d.feed(chunk, &mut mhz_out);
                        assert!(mhz_d.buffered() < mhz19::FRAME_LEN);
                    }
                    rest = tail;
                }
            }));
            assert!(result.is_ok(), "{name} decoder panicked or overgrew; replay seed {seed:#x}");
            let accounted = if name == "pms" {
                let s = pms_d.stats();
                assert_eq!(s.frames as usize, pms_out.len(), "{name}: seed {seed:#x}");
                for r in readings(&pms_out) {
                    assert_eq!(r.warming, r.is_all_zero(), "{name}: seed {seed:#x}");
                    let _ = plausibility::check_pm(&r);
                }
                emitted += pms_out.len() as u64;
                pms_out.iter().map(pms_frame_len).sum::<u64>() + s.bytes_skipped + pms_d.buffered() as u64
            } else {
                let s = mhz_d.stats();
                assert_eq!(s.frames as usize, mhz_out.len(), "{name}: seed {seed:#x}");
                for r in &mhz_out {
                    let _ = plausibility::check_co2(r, plausibility::CO2_RANGE_PPM);
                }
                emitted += mhz_out.len() as u64;
                mhz_out.len() as u64 * mhz19::FRAME_LEN as u64 + s.bytes_skipped + mhz_d.buffered() as u64
            };
            assert_eq!(accounted, input.len() as u64, "{name}: a byte unaccounted for; seed {seed:#x}");
            cases += 1;
        }
        eprintln!("fuzz {name}: {cases} cases, {emitted} frames accepted in {secs} s");
        assert!(cases > 100, "{name}: the fuzzer hardly ran ({cases} cases)");
        assert!(emitted > 0, "{name}: mutations never left a valid frame, so acceptance was not exercised");
    }
}

fn mutate(valid: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let pieces = 1 + (rng.next_f64() * 8.0) as usize;
    for _ in 0..pieces {
        let frame = &valid[(rng.next_f64() * valid.len() as f64) as usize % valid.len()];
        match (rng.next_f64() * 8.0) as u32 {
            0 => out.extend_from_slice(frame),
            1 => {
                let cut = (rng.next_f64() * frame.len() as f64) as usize;
                out.extend_from_slice(&frame[..cut]);
            }
            2 => {
                let mut f = frame.clone();
                for _ in 0..1 + (rng.next_f64() * 4.0) as usize {
                    let at = (rng.next_f64() * f.len() as f64) as usize % f.len();
                    f[at] ^= 1 << ((rng.next_f64() * 8.0) as u32 % 8);
                }
                out.extend_from_slice(&f);
            }
            3 => out.extend((0..(rng.next_f64() * 300.0) as usize).map(|_| (rng.next_f64() * 256.0) as u8)),
            4 => {
                // Header bytes of both protocols, the false starts a resync must pass over.
                let pool = [0x42, 0x4D, 0xFF, 0x86, 0x00, 0x1C, 0x24, 0x04];
                out.extend((0..(rng.next_f64() * 40.0) as usize).map(|_| pool[(rng.next_f64() * 8.0) as usize % 8]));
            }
            5 => {
                let cut = (rng.next_f64() * frame.len() as f64) as usize;
                out.extend_from_slice(&frame[cut..]);
            }
            6 => {
                let mut f = frame.clone();
                let at = (rng.next_f64() * f.len() as f64) as usize % f.len();
                f.insert(at, (rng.next_f64() * 256.0) as u8);
                out.extend_from_slice(&f);
            }
            _ => {
                let mut f = frame.clone();
                let at = (rng.next_f64() * f.len() as f64) as usize % f.len();
                f.remove(at);
                out.extend_from_slice(&f);
            }
        }
    }
    out
}

/// The simulator's day, noise and damaged frames included, fed in random reads: the decoders
/// return exactly the simulator's values for every frame it sent intact, in order, and count
/// every damaged one.
#[test]
fn the_simulated_day_decodes_back_to_the_simulators_values() {
    for st in [false, true] {
        let sim = AirSim { seed: 42, period_s: 5.0, st, noise: 0.1, corrupt: 0.05, ..AirSim::default() };
        let samples = day(&sim);
        assert!(samples.len() > 8000, "{} samples", samples.len());
        let pms_stream: Vec<u8> = samples.iter().flat_map(|s| s.pms_bytes.iter().copied()).collect();
        let mhz_stream: Vec<u8> = samples.iter().flat_map(|s| s.mhz_bytes.iter().copied()).collect();
        let mut rng = Rng::new(9);
        let mut cut = |stream: &[u8]| -> Vec<std::ops::Range<usize>> {
            let mut at = 0;
            let mut out = Vec::new();
            while at < stream.len() {
                let n = (1 + (rng.next_f64() * 64.0) as usize).min(stream.len() - at);
                out.push(at..at + n);
                at += n;
            }
            out
        };
        let mut p = Pms::new(Mode::Active);
        let mut frames = Vec::new();
        for r in cut(&pms_stream) {
            p.feed(&pms_stream[r], &mut frames);
        }
        let expected: Vec<PmReading> = samples.iter().filter(|s| s.pms_intact).map(|s| s.pm).collect();
        let damaged = samples.iter().filter(|s| !s.pms_intact).count() as u64;
        assert!(damaged > 100, "the simulator damaged {damaged} frames");
        assert_eq!(readings(&frames), expected, "st = {st}");
        let stats = p.stats();
        assert!(stats.checksum_errors + stats.malformed >= damaged / 2, "{stats:?} for {damaged} damaged");
        assert!(expected[..sim.warmup_frames].iter().all(|r| r.warming));
        let warm = expected.iter().filter(|r| r.warming).count();
        assert!(warm <= sim.warmup_frames, "only the warm-up is warming: {warm}");
        if st {
            assert!(expected.iter().all(|r| r.hcho_ug_m3.is_some() && r.humidity_pct.is_some()));
        }

        let mut m = Mhz19b::new(Duration::ZERO, None);
        let mut co2 = Vec::new();
        for r in cut(&mhz_stream) {
            m.feed(&mhz_stream[r], &mut co2);
        }
        let expected: Vec<u16> = samples.iter().filter(|s| s.mhz_intact).map(|s| s.co2_ppm).collect();
        assert_eq!(co2.iter().map(|r| r.ppm).collect::<Vec<_>>(), expected);
        let peak = expected.iter().copied().max().unwrap_or(0);
        assert!(peak > 1200, "the day's CO2 peaks above 1200 ppm: {peak}");
        for r in co2.iter().skip(40) {
            assert_eq!(plausibility::check_co2(r, plausibility::CO2_RANGE_PPM), Ok(()), "{r:?}");
        }
    }
}
