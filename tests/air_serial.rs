//! The air-quality decoders under real byte layouts and hostile input: frames written out byte by
//! byte with hand-computed checksums, every single-byte change, every split, noise, lying length
//! fields, warm-up, a bounded mutational fuzz run per decoder, and the simulator's day decoded
//! back to the simulator's values; then the stages on real pseudo-terminals (window means,
//! warm-up, polling, damage, unplug, implausible streams) and `dolbom sim air --profile` end to
//! end against them.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dolbom_kiosk::air::{IndoorMeasurement, IndoorUpdate, AIR_CO2, AIR_PM};
use dolbom_kiosk::health::{Health, SensorState, SensorStatus};
use dolbom_kiosk::shutdown::Shutdown;
use dolbom_kiosk::sim::thermal::{link, open_pty, slave_is_open, Pty};
use dolbom_kiosk::sources::air::config::AirConfig;
use dolbom_kiosk::sources::air::stage::{run_co2, run_pms};
use tokio::sync::mpsc;

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

// ---- The stages on pseudo-terminals ----

type Stage = fn(AirConfig, mpsc::Sender<IndoorUpdate>, Arc<Health>, Shutdown);

/// A stage on its thread, with the channel and health it reports to.
struct Running {
    rx: mpsc::Receiver<IndoorUpdate>,
    health: Arc<Health>,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(stage: Stage, toml_text: &str) -> Self {
        let config: AirConfig = toml::from_str(toml_text).expect("air config");
        config.validate().expect("valid air config");
        let (tx, rx) = mpsc::channel(64);
        let health = Arc::new(Health::default());
        let shutdown = Shutdown::new();
        let thread = {
            let (h, s) = (health.clone(), shutdown.clone());
            std::thread::spawn(move || stage(config, tx, h, s))
        };
        Running { rx, health, shutdown, thread: Some(thread) }
    }

    /// The next update, within `timeout`.
    fn next(&mut self, timeout: Duration) -> IndoorUpdate {
        let mut got = None;
        common::wait_until("an air update", timeout, || {
            got = self.rx.try_recv().ok();
            got.is_some()
        });
        got.expect("update")
    }

    fn sensor(&self, name: &str) -> SensorStatus {
        self.health.summary().sensors.get(name).cloned().unwrap_or_else(|| panic!("{name} reported no health"))
    }

    fn state(&self, name: &str) -> SensorState {
        self.health.summary().sensors.get(name).map_or(SensorState::Off, |s| s.state)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let joined = t.join();
            if !std::thread::panicking() {
                joined.expect("stage thread");
            }
        }
    }
}

fn plugged(port: &Path) -> Pty {
    let pty = open_pty().expect("pty");
    link(port, &pty.slave_path).expect("link");
    pty
}

fn particles(u: &IndoorUpdate) -> (f32, f32, f32) {
    match u.measurement {
        IndoorMeasurement::Particles { pm1, pm25, pm10, .. } => (pm1, pm25, pm10),
        ref m => panic!("expected particles, got {m:?}"),
    }
}

/// A plausible reading with the given PM2.5 (PM1 half of it, PM10 4 more).
fn pm(pm25: u16) -> PmReading {
    PmReading {
        pm1_cf1: pm25 / 2,
        pm25_cf1: pm25,
        pm10_cf1: pm25 + 4,
        pm1: pm25 / 2,
        pm25,
        pm10: pm25 + 4,
        counts: [2000, 600, 120, 14, 3, 1],
        version: 0x97,
        ..PmReading::default()
    }
}

/// Warm-up first (all-zero frames give a `Warming` update, never clean air), then a burst of
/// readings with noise and a damaged frame in between: the next window's update is their exact
/// mean, the damage is counted. Active mode, bytes through the tty layer.
#[test]
fn pms_stage_sends_warming_then_window_means_and_counts_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyPMS");
    let mut pty = plugged(&port);
    let mut stage = Running::start(
        run_pms,
        &format!(
            "window_secs = 1\nretry_max_ms = 300\n[pms]\nport = \"{}\"\nmodel = \"pms5003\"\nmode = \"active\"\n",
            port.display()
        ),
    );
    common::wait_until("the stage to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));
    // The start commands: wake, then active mode.
    let mut start = [0u8; 14];
    pty.master.read_exact(&mut start).expect("start commands");
    assert_eq!(start[..], [pms::wake(), pms::active_mode()].concat()[..]);

    let warming = pms::encode(&PmReading { version: 0x97, ..PmReading::default() });
    pty.master.write_all(&warming).expect("write");
    let first = stage.next(Duration::from_secs(5));
    assert_eq!((first.sensor, first.samples, &first.measurement), (AIR_PM, 0, &IndoorMeasurement::Warming));
    assert_eq!(stage.state(AIR_PM), SensorState::Ok, "a warming sensor is alive");

    // Right after a window closed: a burst that lands in the next one.
    let mut damaged = pms::encode(&pm(300));
    damaged[9] ^= 0x40;
    let burst = [
        &[0x13, 0x42, 0x00][..],
        &pms::encode(&pm(10)),
        &damaged,
        &pms::encode(&pm(30)),
        &[0x42, 0x4D, 0x99, 0x01],
        &pms::encode(&pm(20)),
        &warming,
    ]
    .concat();
    pty.master.write_all(&burst).expect("write");
    let update = stage.next(Duration::from_secs(5));
    assert_eq!(particles(&update), (10.0, 20.0, 24.0), "the mean of 10, 20, 30 (warming and damage left out)");
    assert_eq!(update.samples, 3);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    assert!((now_ms - update.at_ms).abs() < 5_000, "stamped with the window's end: {}", update.at_ms);
    let health = stage.sensor(AIR_PM);
    assert!(health.checksum_errors >= 1 && health.malformed >= 1, "{health:?}");
    assert_eq!(health.frames, 5, "2 warming + 3 measured: {health:?}");
    // Nothing more arrives: no update for an empty window.
    assert!(stage.rx.try_recv().is_err());
}

/// The MH-Z19B speaks only when asked: the test plays the sensor, reading the stage's command
/// bytes (range, ABC, then read commands once a second), checking them, and answering. Answers
/// in the preheat make a `Warming` window; then window means; a damaged answer is counted.
#[test]
fn co2_stage_polls_and_the_answers_make_window_means() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyCO2");
    let mut pty = plugged(&port);
    let mut stage = Running::start(
        run_co2,
        &format!("window_secs = 2\nretry_max_ms = 300\n[co2]\nport = \"{}\"\nabc = false\npreheat_secs = 1\npoll_secs = 1\nrange_ppm = 2000\n", port.display()),
    );
    common::wait_until("the stage to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));
    let read_command = |pty: &mut Pty| -> [u8; 9] {
        let mut cmd = [0u8; 9];
        pty.master.read_exact(&mut cmd).expect("a command from the stage");
        cmd
    };
    assert_eq!(read_command(&mut pty), mhz19::range(2000), "the range first");
    assert_eq!(read_command(&mut pty), mhz19::abc(false), "then ABC as configured");
    assert_eq!(read_command(&mut pty), mhz19::poll(), "then a read at once");
    pty.master.write_all(&mhz19::encode_answer(555, [0; 4])).expect("answer");
    let first = stage.next(Duration::from_secs(5));
    assert_eq!((first.sensor, &first.measurement), (AIR_CO2, &IndoorMeasurement::Warming), "555 in the preheat");

    // Each poll answered: 800 ppm, once after noise and once damaged (then answered again).
    let mut polls = 0;
    let mut updates = Vec::new();
    let started = Instant::now();
    while updates.len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(15), "updates: {updates:?}");
        let cmd = read_command(&mut pty);
        assert_eq!(cmd, mhz19::poll(), "only reads after the start");
        polls += 1;
        let answer = mhz19::encode_answer(800, [0x41, 0, 0, 0]);
        if polls == 2 {
            let mut bad = answer;
            bad[3] ^= 0x10;
            pty.master.write_all(&[&[0xFF, 0x00, 0x86][..], &bad, &answer].concat()).expect("answer");
        } else {
            pty.master.write_all(&answer).expect("answer");
        }
        while let Ok(u) = stage.rx.try_recv() {
            updates.push(u);
        }
    }
    for u in &updates {
        assert_eq!(u.measurement, IndoorMeasurement::Co2 { ppm: 800.0 }, "{u:?}");
        assert!(u.samples >= 1);
    }
    assert!(polls >= 3, "polled once a second: {polls} polls");
    assert!(stage.sensor(AIR_CO2).checksum_errors >= 1);
    assert_eq!(stage.state(AIR_CO2), SensorState::Ok);

    // A sensor that stops answering is stale: retrying, and no update.
    common::wait_until("the silent sensor to be reported", Duration::from_secs(10), || {
        let mut cmd = [0u8; 64];
        let _ = pty.master.read(&mut cmd);
        stage.state(AIR_CO2) == SensorState::Retrying
    });
    let error = stage.sensor(AIR_CO2).error.unwrap_or_default();
    assert!(error.contains("no valid frames"), "{error}");
}

/// Unplug (the pty closed and its link removed): the sensor is `retrying`; a new pty on the
/// same link: `ok` again and the updates resume. Frames with valid checksums but impossible
/// values: `faulty` with the reason, and no update from them.
#[test]
fn pms_stage_survives_unplug_and_reports_implausible_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyPMS");
    let mut stage = Running::start(
        run_pms,
        &format!(
            "window_secs = 1\nretry_max_ms = 300\n[pms]\nport = \"{}\"\nmodel = \"pms5003\"\nmode = \"active\"\n",
            port.display()
        ),
    );
    common::wait_until("nothing plugged in: retrying", Duration::from_secs(5), || {
        stage.state(AIR_PM) == SensorState::Retrying
    });
    for round in 0..2u16 {
        let mut pty = plugged(&port);
        common::wait_until("the stage to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));
        let value = 15 + 10 * round;
        let update = loop {
            pty.master.write_all(&pms::encode(&pm(value))).expect("write");
            let u = stage.next(Duration::from_secs(5));
            // A window may hold the end of the previous round's frames; wait for this round's.
            if particles(&u).1 == f32::from(value) {
                break u;
            }
        };
        assert_eq!(update.samples, 1);
        assert_eq!(stage.state(AIR_PM), SensorState::Ok);
        drop(pty);
        let _ = std::fs::remove_file(&port);
        common::wait_until("the unplug to be noticed", Duration::from_secs(10), || {
            stage.state(AIR_PM) == SensorState::Retrying
        });
    }

    let mut pty = plugged(&port);
    common::wait_until("the stage to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));
    while stage.rx.try_recv().is_ok() {}
    let impossible = PmReading { pm25: 60, pm25_cf1: 60, pm10: 20, pm10_cf1: 20, ..pm(10) };
    common::wait_until("an impossible stream to be reported", Duration::from_secs(10), || {
        pty.master.write_all(&pms::encode(&impossible)).expect("write");
        stage.state(AIR_PM) == SensorState::Faulty
    });
    let health = stage.sensor(AIR_PM);
    assert!(health.error.as_deref().unwrap_or_default().contains("cannot exceed"), "{health:?}");
    assert!(stage.health.summary().degraded);
    // Two windows of nothing but impossible frames send nothing.
    let quiet_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < quiet_until {
        pty.master.write_all(&pms::encode(&impossible)).expect("write");
        assert!(stage.rx.try_recv().is_err(), "an update from an implausible stream");
        std::thread::sleep(Duration::from_millis(100)); // the sensor's pace, not a synchronisation
    }
    pty.master.write_all(&pms::encode(&pm(12))).expect("write");
    assert_eq!(particles(&stage.next(Duration::from_secs(5))).1, 12.0);
    assert_eq!(stage.state(AIR_PM), SensorState::Ok);
}

/// `dolbom sim air --profile` against both stages: the PMS in passive mode (answering the
/// stage's read requests), the CO2 sensor answering its polls; the updates follow the profile's
/// exact values, the step from 700 to 1500 ppm included.
#[test]
fn sim_air_plays_a_profile_to_both_stages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pms_link, co2_link) = (dir.path().join("pms"), dir.path().join("co2"));
    let profile = dir.path().join("profile.csv");
    std::fs::write(&profile, "t_s,pm25,pm10,co2\n0,12,20,700\n4,12,20,700\n5,40,60,1500\n60,40,60,1500\n")
        .expect("profile");
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["sim", "air", "--speed", "1", "--noise", "0.05", "--corrupt", "0.05", "--seconds", "18"])
        .arg("--pms-link")
        .arg(&pms_link)
        .arg("--co2-link")
        .arg(&co2_link)
        .arg("--profile")
        .arg(&profile)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dolbom sim air");
    let mut out = std::io::BufReader::new(sim.stdout.take().expect("stdout"));
    for name in ["pms", "co2"] {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("a slave path");
        assert!(line.starts_with(&format!("{name}\t/dev/pts/")), "{line:?}");
    }
    let air = format!(
        "window_secs = 2\nretry_max_ms = 300\n[pms]\nport = \"{}\"\nmodel = \"pms5003\"\npoll_secs = 1\n[co2]\nport = \"{}\"\npreheat_secs = 0\npoll_secs = 1\n",
        pms_link.display(),
        co2_link.display()
    );
    let mut pms_stage = Running::start(run_pms, &air);
    let mut co2_stage = Running::start(run_co2, &air);
    let mut seen_pm = Vec::new();
    while seen_pm.last() != Some(&40.0) {
        let u = pms_stage.next(Duration::from_secs(12));
        seen_pm.push(particles(&u).1);
    }
    let mut seen_co2 = Vec::new();
    while seen_co2.last() != Some(&1500.0) {
        match co2_stage.next(Duration::from_secs(12)).measurement {
            IndoorMeasurement::Co2 { ppm } => seen_co2.push(ppm),
            m => panic!("{m:?}"),
        }
    }
    assert_eq!(seen_pm.first(), Some(&12.0), "{seen_pm:?}");
    assert_eq!(seen_co2.first(), Some(&700.0), "{seen_co2:?}");
    for (values, lo, hi) in [(&seen_pm, 12.0, 40.0), (&seen_co2, 700.0, 1500.0)] {
        assert!(values.iter().all(|v| (lo..=hi).contains(v)), "{values:?}");
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "follows the profile upwards: {values:?}");
    }
    assert_eq!(pms_stage.state(AIR_PM), SensorState::Ok);
    assert_eq!(co2_stage.state(AIR_CO2), SensorState::Ok);
    drop((pms_stage, co2_stage));
    let _ = sim.kill();
    let _ = sim.wait();
}

/// Every flag of `dolbom sim air` is bounded, and the error names it; a bad profile names its line.
#[test]
fn sim_air_refuses_bad_flags_and_profiles_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("co2").display().to_string();
    let profile = dir.path().join("bad.csv");
    std::fs::write(&profile, "t_s,pm25,pm10,co2\n0,10,20,600\n10,30,20,600\n").expect("profile");
    let profile = profile.display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--speed", "1"], "--pms-link"),
        (&["--co2-link", &link, "--speed", "0"], "--speed"),
        (&["--co2-link", &link, "--speed", "NaN"], "--speed"),
        (&["--co2-link", &link, "--start-hour", "25"], "--start-hour"),
        (&["--co2-link", &link, "--hours", "0"], "--hours"),
        (&["--co2-link", &link, "--period", "0"], "--period"),
        (&["--co2-link", &link, "--noise", "1.5"], "--noise"),
        (&["--co2-link", &link, "--corrupt=-0.1"], "--corrupt"),
        (&["--co2-link", &link, "--children", "201"], "--children"),
        (&["--co2-link", &link, "--seconds", "0"], "--seconds"),
        (&["--co2-link", &link, "--seed=-1"], "--seed"),
        (&["--co2-link", &link, "--profile", &profile], "line 3"),
    ];
    for (args, named) in cases {
        let out = common::dolbom(&[&["sim", "air"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!Path::new(&link).exists(), "{args:?}: no pty is linked for a refused run");
    }
}
