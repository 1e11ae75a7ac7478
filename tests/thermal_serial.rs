//! The thermal parsers under hostile input, and the serial source on a real pseudo-terminal:
//! bytes through the kernel's tty layer, a port that vanishes and comes back.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dolbom_kiosk::health::{Health, SensorState};
use dolbom_kiosk::shutdown::Shutdown;
use dolbom_kiosk::sim::thermal::{link, open_pty, slave_is_open, Rng};
use dolbom_kiosk::sources::thermal::mlx90640::{self, Checksum, GyMcu90640};
use dolbom_kiosk::sources::thermal::source::{run_thermal, LatestFrame, ThermalConfig};
use dolbom_kiosk::sources::thermal::{csv, plausibility, DeviceKind, FrameDecoder, ThermalFrame};

/// A mutational fuzzer with a time budget (DOLBOM_FUZZ_SECS, default 10 s per decoder): valid
/// frames cut, spliced, bit-flipped, duplicated and mixed with random bytes, fed in random
/// splits. Nothing may panic, every frame that comes out must be well-formed, and memory must
/// stay bounded. Failing inputs are printed as a seed to replay.
#[test]
fn fuzz_decoders_never_panic_and_only_emit_valid_frames() {
    let secs: u64 = std::env::var("DOLBOM_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let valid_bin: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            mlx90640::encode(&(0..768).map(|i| 20.0 + ((i * (k + 1)) % 200) as f32 / 10.0).collect::<Vec<_>>(), 24.0)
        })
        .collect();
    let valid_csv: Vec<Vec<u8>> = (0..4).map(|k| csv::encode(&[21.0 + k as f32; 64], 23.0)).collect();
    for (name, valid) in [("gy-mcu90640", &valid_bin), ("csv", &valid_csv)] {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut cases = 0u64;
        let mut emitted = 0u64;
        while Instant::now() < deadline {
            let seed = 0x9E37_79B9_7F4A_7C15u64 ^ cases;
            let mut rng = Rng::new(seed);
            let input = mutate(valid, &mut rng);
            let mut decoder: Box<FrameDecoder> = if name == "csv" {
                Box::new(csv::CsvFrames::new(8, 8))
            } else {
                Box::new(GyMcu90640::new(Checksum::Sum16, None))
            };
            let mut out: Vec<ThermalFrame> = Vec::new();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let n = 1 + (rng.next_f64() * 2000.0) as usize % rest.len().max(1);
                    let (chunk, tail) = rest.split_at(n.min(rest.len()));
                    decoder.feed(chunk, &mut out);
                    rest = tail;
                }
            }));
            assert!(result.is_ok(), "{name} decoder panicked; replay seed {seed:#x}");
            for f in &out {
                assert_eq!(f.pixels.len(), f.width * f.height, "{name}: malformed frame from seed {seed:#x}");
                // A mutated line may parse to `inf`; the plausibility check must then refuse it.
                let finite = f.pixels.iter().chain(&f.ambient_c).all(|p| p.is_finite());
                assert!(
                    finite || plausibility::check_frame(f).is_err(),
                    "{name}: non-finite frame accepted from seed {seed:#x}"
                );
            }
            emitted += out.len() as u64;
            cases += 1;
        }
        eprintln!("fuzz {name}: {cases} cases, {emitted} frames accepted in {secs} s");
        assert!(cases > 100, "{name}: the fuzzer hardly ran ({cases} cases)");
        assert!(emitted > 0, "{name}: mutations never left a valid frame, so acceptance was not exercised");
    }
}

fn mutate(valid: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let pieces = 1 + (rng.next_f64() * 6.0) as usize;
    for _ in 0..pieces {
        let frame = &valid[(rng.next_f64() * valid.len() as f64) as usize % valid.len()];
        match (rng.next_f64() * 7.0) as u32 {
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
            3 => out.extend((0..(rng.next_f64() * 3000.0) as usize).map(|_| (rng.next_f64() * 256.0) as u8)),
            4 => out.extend(std::iter::repeat_n(0x5A, (rng.next_f64() * 50.0) as usize)),
            5 => {
                let cut = (rng.next_f64() * frame.len() as f64) as usize;
                out.extend_from_slice(&frame[cut..]);
            }
            _ => {
                let mut f = frame.clone();
                let at = (rng.next_f64() * f.len() as f64) as usize % f.len();
                f.insert(at, (rng.next_f64() * 256.0) as u8);
                out.extend_from_slice(&f);
            }
        }
    }
    out
}

fn config(port: &Path, device: DeviceKind) -> ThermalConfig {
    let toml = format!(
        "device = \"{}\"\nport = \"{}\"\nretry_max_ms = 300\n",
        if device == DeviceKind::Csv { "csv" } else { "gy-mcu90640" },
        port.display()
    );
    toml::from_str(&toml).expect("thermal config")
}

#[test]
fn serial_source_reads_a_pty_survives_unplug_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("ttyTHERMAL");
    let latest: LatestFrame = Arc::default();
    let health = Arc::new(Health::default());
    let shutdown = Shutdown::new();

    // Nothing plugged in yet: the source retries and says so.
    let source = {
        let (c, l, h, s) = (config(&port, DeviceKind::GyMcu90640), latest.clone(), health.clone(), shutdown.clone());
        std::thread::spawn(move || run_thermal(c, l, h, s))
    };
    common::wait_until("retrying state", Duration::from_secs(5), || health.summary().thermal == SensorState::Retrying);

    for round in 0..2 {
        let mut pty = open_pty().expect("pty");
        link(&port, &pty.slave_path).expect("link");
        common::wait_until("the source to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));
        // Noise, a corrupted frame, then good frames split oddly, written through the tty layer.
        let good = mlx90640::encode(&scene(768, 30.0 + round as f32), 24.0);
        let mut bad = good.clone();
        bad[100] ^= 0xFF;
        pty.master.write_all(&[0x13, 0x5A, 0x00, 0x5A, 0x5A, 0x01]).expect("write");
        pty.master.write_all(&bad).expect("write");
        for chunk in good.chunks(97) {
            pty.master.write_all(chunk).expect("write");
        }
        pty.master.write_all(&good).expect("write");
        common::wait_until("a frame from the pty", Duration::from_secs(10), || {
            latest.lock().ok().and_then(|l| l.as_ref().map(|f| f.pixels[0])) == Some(30.0 + round as f32)
        });
        assert_eq!(health.summary().thermal, SensorState::Ok);
        // Unplug: the device disappears.
        drop(pty);
        let _ = std::fs::remove_file(&port);
        common::wait_until("the source to notice the unplug", Duration::from_secs(10), || {
            health.summary().thermal == SensorState::Retrying
        });
    }
    let summary = health.summary();
    assert!(summary.thermal_checksum_errors >= 1, "{summary:?}");
    shutdown.trigger();
    source.join().expect("source thread");
}

/// A plausible scene: `base` at pixel 0, a little structure elsewhere (a flat frame is faulty).
fn scene(n: usize, base: f32) -> Vec<f32> {
    (0..n).map(|i| base + (i % 5) as f32 * 0.25).collect()
}

/// Frames with valid framing and checksums but values no working sensor produces: each kind
/// makes the sensor `faulty` with a reason and empties the frame screening reads from, so no face
/// is measured from it; a plausible frame afterwards makes it `ok` again. Both decoders, bytes
/// through a real pseudo-terminal.
#[test]
fn impossible_frames_make_the_sensor_faulty_and_never_reach_screening() {
    type Encode = fn(&[f32], f32) -> Vec<u8>;
    /// What is sent, given a frame counter (so frames can differ).
    type Frames = Box<dyn Fn(u64) -> Vec<u8>>;
    for (device, n, encode) in
        [(DeviceKind::GyMcu90640, 768, mlx90640::encode as Encode), (DeviceKind::Csv, 64, csv::encode as Encode)]
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = dir.path().join("ttyTHERMAL");
        let mut pty = open_pty().expect("pty");
        link(&port, &pty.slave_path).expect("link");
        let latest: LatestFrame = Arc::default();
        let health = Arc::new(Health::default());
        let shutdown = Shutdown::new();
        let source = {
            let (c, l, h, s) = (config(&port, device), latest.clone(), health.clone(), shutdown.clone());
            std::thread::spawn(move || run_thermal(c, l, h, s))
        };
        common::wait_until("the source to open the port", Duration::from_secs(10), || slave_is_open(&pty.master));

        let with_pixel = move |i: usize, v: f32| {
            let mut px = scene(n, 30.0);
            px[i] = v;
            encode(&px, 24.0)
        };
        let frozen = encode(&scene(n, 31.0), 24.0);
        let mut cases: Vec<(&str, Frames, &str)> = vec![
            ("hot flat 80 degC", Box::new(move |_| encode(&vec![80.0; n], 24.0)), "every pixel"),
            ("hot flat 36.6 degC", Box::new(move |_| encode(&vec![36.6; n], 24.0)), "every pixel"),
            ("dead sensor -327.68", Box::new(move |_| encode(&vec![-327.68; n], -327.68)), "outside"),
            ("one dead pixel", Box::new(move |k| with_pixel(k as usize % n, -327.68)), "outside"),
            ("one pixel above 300 degC", Box::new(move |k| with_pixel(k as usize % n, 310.0)), "outside"),
            ("impossible die temperature", Box::new(move |k| encode(&scene(n, 30.0 + k as f32 / 100.0), 120.0)), "die"),
            ("frozen", Box::new(move |_| frozen.clone()), "frozen"),
        ];
        if device == DeviceKind::Csv {
            // What a bridge prints when its sensor library returns nothing: `nan`, `inf`.
            let line = move |ambient: &str, pixel9: &str| {
                let px: Vec<String> = scene(n, 30.0)
                    .iter()
                    .enumerate()
                    .map(|(i, p)| if i == 9 { pixel9.to_string() } else { format!("{p:.2}") })
                    .collect();
                format!("T,{ambient},{}\n", px.join(",")).into_bytes()
            };
            cases.push(("NaN pixel", Box::new(move |_| line("24.00", "NaN")), "outside"));
            cases.push(("inf pixel", Box::new(move |_| line("24.00", "inf")), "outside"));
            cases.push(("nan ambient", Box::new(move |k| line("nan", &format!("{}", 30 + k % 3))), "die"));
        }
        let mut k = 0u64;
        for (what, bad, reason) in &cases {
            // Plausible frames first (each a little different): screening has a frame to read.
            common::wait_until(&format!("{device:?}: ok before {what}"), Duration::from_secs(10), || {
                k += 1;
                pty.master.write_all(&encode(&scene(n, 30.0 + (k % 50) as f32 / 10.0), 24.0)).expect("write");
                health.summary().thermal == SensorState::Ok && latest.lock().map(|l| l.is_some()).unwrap_or(false)
            });
            common::wait_until(&format!("{device:?}: {what} reported faulty"), Duration::from_secs(10), || {
                k += 1;
                pty.master.write_all(&bad(k)).expect("write");
                health.summary().thermal == SensorState::Faulty
            });
            let summary = health.summary();
            let error = summary.thermal_error.clone().unwrap_or_default();
            assert!(error.contains(reason), "{device:?}: {what}: reason {error:?} should mention {reason:?}");
            assert!(summary.degraded, "{device:?}: {what}: a faulty sensor degrades the kiosk");
            assert!(latest.lock().expect("lock").is_none(), "{device:?}: {what}: screening must have no frame");
        }
        shutdown.trigger();
        source.join().expect("source thread");
    }
}
