//! The `dolbom` command line end to end: enrol, list, identify, remove, and the errors that must
//! leave everything unchanged.

mod common;

use std::path::Path;

use common::{dolbom, photo, stderr, stdout, write_config};
use opencv::core::{Mat, Scalar, Size, Vector, CV_8UC3};
use opencv::{imgcodecs, imgproc};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn gallery_bytes(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join("gallery.json")).ok()
}

#[test]
fn enroll_list_identify_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let (o1, o2, o3) = (
        photo("face_recognition/obama.jpg"),
        photo("face_recognition/obama2.jpg"),
        photo("face_recognition/obama3.jpg"),
    );

    let out = dolbom(&[
        "enroll",
        "--config",
        s(&cfg),
        "--person",
        "obama",
        "--role",
        "guardian",
        "--name",
        "버락 오바마",
        s(&o1),
        s(&o2),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 photo(s) added, 2 in total"), "{}", stdout(&out));
    assert!(stdout(&out).contains("nearest enrolled: nobody else"), "{}", stdout(&out));
    assert!(stdout(&out).contains("3 to 5 photos") && stdout(&out).contains("3~5장"), "{}", stdout(&out));

    // Only embeddings are stored: no pixels, no file names of the photos.
    let stored: serde_json::Value = serde_json::from_slice(&gallery_bytes(dir.path()).expect("gallery")).expect("json");
    let person = &stored["gallery"]["people"][0];
    let keys: Vec<&str> = person.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["embeddings", "enrolled_at", "id", "name", "role"]);
    assert_eq!(person["embeddings"].as_array().expect("array").len(), 2);
    assert!(!String::from_utf8_lossy(&gallery_bytes(dir.path()).expect("gallery")).contains("obama.jpg"));

    let out = dolbom(&["gallery", "list", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "obama\tguardian\t2\t버락 오바마\t-\n");

    let out = dolbom(&["identify", "--config", s(&cfg), s(&o3), s(&photo("insightface/t1.jpg"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 5, "1 face in obama3.jpg + 4 in t1.jpg: {lines:?}");
    let first = &lines[0];
    assert_eq!(first["image"], s(&o3));
    assert_eq!(first["person"], "obama");
    assert_eq!(first["role"], "guardian");
    assert!(first["similarity"].as_f64().expect("similarity") > 0.6);
    assert_eq!(first["box"].as_array().expect("box").len(), 4);
    assert_eq!(first["landmarks"].as_array().expect("landmarks").len(), 5);
    assert!(first["score"].as_f64().expect("score") > 0.9);
    for stranger in &lines[1..] {
        assert!(stranger["person"].is_null(), "{stranger}");
    }

    let out = dolbom(&["gallery", "remove", "obama", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = dolbom(&["gallery", "list", "--config", s(&cfg)]);
    assert_eq!(stdout(&out), "");
}

/// Enrols a child (the test records each id's consent first).
fn enroll_as(cfg: &Path, id: &str, name: &str, extra: &[&str], images: &[&Path]) -> std::process::Output {
    let mut args = vec!["enroll", "--config", s(cfg), "--person", id, "--role", "child", "--name", name];
    args.extend_from_slice(extra);
    args.extend(images.iter().map(|p| s(p)));
    dolbom(&args)
}

/// `gallery list --json`, as id → look-alikes.
fn lookalikes(cfg: &Path) -> Vec<(String, Vec<String>)> {
    let out = dolbom(&["gallery", "list", "--json", "--config", s(cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let marks = v["lookalikes"].as_array().expect("lookalikes listed for everyone");
            (
                v["id"].as_str().expect("id").to_string(),
                marks.iter().map(|m| m.as_str().expect("id").to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn a_face_close_to_an_enrolled_one_needs_a_confirmed_lookalike_and_the_mark_is_kept_on_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let (o1, o2, o3) = (
        photo("face_recognition/obama.jpg"),
        photo("face_recognition/obama2.jpg"),
        photo("face_recognition/obama3.jpg"),
    );
    let biden = photo("face_recognition/biden.jpg");
    for id in ["a", "b", "c", "d"] {
        common::consent(&cfg, id);
    }
    let out = enroll_as(&cfg, "a", "김민지", &[], &[&o1, &o3]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = enroll_as(&cfg, "c", "박준", &[], &[&biden]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nearest enrolled: a (김민지), similarity 0."), "{}", stdout(&out));
    assert!(stdout(&out).contains("가장 닮은 등록자: a (김민지)"), "{}", stdout(&out));

    // The same man under a second id: as close as twins get. Refused, naming the neighbour.
    let before = gallery_bytes(dir.path());
    let out = enroll_as(&cfg, "b", "B", &[], &[&o2]);
    assert!(!out.status.success(), "a look-alike was enrolled unconfirmed: {}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("looks like `a` (김민지)") && err.contains("--lookalike-of a"), "{err}");
    assert!(err.contains("닮은꼴 기준 0.35") && err.contains("similarity 0."), "{err}");
    assert_eq!(gallery_bytes(dir.path()), before);

    // Naming someone else, or nobody enrolled, does not confirm it.
    for (other, expect) in [("c", "looks like `a`"), ("nobody", "no person with this id is enrolled"), ("b", "own")] {
        let out = enroll_as(&cfg, "b", "B", &["--lookalike-of", other], &[&o2]);
        assert!(!out.status.success(), "--lookalike-of {other} accepted");
        assert!(stderr(&out).contains(expect), "--lookalike-of {other}: {}", stderr(&out));
        assert_eq!(gallery_bytes(dir.path()), before);
    }

    let out = enroll_as(&cfg, "b", "B", &["--lookalike-of", "a"], &[&o2]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nearest enrolled: a (김민지)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("marked b and a as look-alikes"), "{}", stdout(&out));
    let marks = |id: &str| lookalikes(&cfg).into_iter().find(|(p, _)| p == id).map(|(_, m)| m);
    assert_eq!(marks("a"), Some(vec!["b".to_string()]));
    assert_eq!(marks("b"), Some(vec!["a".to_string()]));
    assert_eq!(marks("c"), Some(vec![]));
    let out = dolbom(&["gallery", "list", "--config", s(&cfg)]);
    assert!(stdout(&out).contains("a\tchild\t2\t김민지\tb\n") && stdout(&out).contains("c\tchild\t1\t박준\t-\n"));

    // Once confirmed, more photos of either need no new confirmation.
    let out = enroll_as(&cfg, "b", "B", &[], &[&o3]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A pair the operator knows about may be marked below the level too.
    let out = enroll_as(&cfg, "d", "D", &["--lookalike-of", "c"], &[&photo("unknowns/Female_40_1_4.jpg")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(marks("c"), Some(vec!["d".to_string()]));

    let out = dolbom(&["gallery", "remove", "a", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(marks("b"), Some(vec![]), "removing a drops the mark from b");
}

/// Runs an enrolment that must fail, and checks the message and that the gallery did not change.
fn enroll_fails(dir: &Path, cfg: &Path, images: &[&Path], expect: &str) {
    let before = gallery_bytes(dir);
    let mut args = vec!["enroll", "--config", s(cfg), "--person", "kid", "--role", "child", "--name", "Kid"];
    args.extend(images.iter().map(|p| s(p)));
    let out = dolbom(&args);
    assert!(!out.status.success(), "enrolment of {images:?} should fail");
    assert!(stderr(&out).contains(expect), "expected {expect:?} in: {}", stderr(&out));
    assert_eq!(gallery_bytes(dir), before, "gallery changed by a failed enrolment");
}

#[test]
fn bad_photos_are_rejected_with_a_reason_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let good = photo("face_recognition/obama.jpg");
    let out = dolbom(&["enroll", "--config", s(&cfg), "--person", "obama", "--role", "staff", "--name", "O", s(&good)]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::consent(&cfg, "kid");

    // No face: a plain grey picture.
    let blank = dir.path().join("wall.png");
    let grey = Mat::new_size_with_default(Size::new(640, 480), CV_8UC3, Scalar::all(128.0)).expect("mat");
    imgcodecs::imwrite(s(&blank), &grey, &Vector::new()).expect("write");
    enroll_fails(dir.path(), &cfg, &[&good, &blank], "no face found");

    // Several faces: a group photo.
    enroll_fails(dir.path(), &cfg, &[&photo("insightface/t1.jpg")], "4 faces found");

    // Blurry: a real photo under a strong Gaussian blur.
    let blurred = dir.path().join("blurred.png");
    let sharp = imgcodecs::imread(s(&good), imgcodecs::IMREAD_COLOR).expect("read");
    let mut soft = Mat::default();
    imgproc::gaussian_blur(&sharp, &mut soft, Size::new(0, 0), 8.0, 8.0, opencv::core::BORDER_DEFAULT).expect("blur");
    imgcodecs::imwrite(s(&blurred), &soft, &Vector::new()).expect("write");
    enroll_fails(dir.path(), &cfg, &[&blurred], "too blurry");

    // Too small: the same photo shrunk so the face is about 60 px.
    let small = dir.path().join("small.png");
    let mut tiny = Mat::default();
    imgproc::resize(&sharp, &mut tiny, Size::new(0, 0), 0.25, 0.25, imgproc::INTER_AREA).expect("resize");
    imgcodecs::imwrite(s(&small), &tiny, &Vector::new()).expect("write");
    enroll_fails(dir.path(), &cfg, &[&small], "too small");

    // Unreadable: not an image at all, and a path that does not exist.
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a jpeg").expect("write");
    enroll_fails(dir.path(), &cfg, &[&text], "cannot read image");
    enroll_fails(dir.path(), &cfg, &[&dir.path().join("missing.jpg")], "cannot read image");

    // A bad id is refused before anything is stored.
    let out = dolbom(&["enroll", "--config", s(&cfg), "--person", "../x", "--role", "child", "--name", "X", s(&good)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not valid"), "{}", stderr(&out));
}

#[test]
fn model_and_config_errors_are_clear_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = photo("face_recognition/obama.jpg");
    let enroll = |cfg: &Path| {
        dolbom(&["enroll", "--config", s(cfg), "--person", "p", "--role", "staff", "--name", "P", s(&good)])
    };

    // Missing model file.
    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).expect("dir");
    let cfg = write_config(&missing, "");
    let text = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, text.replace("sface_2021dec.onnx", "no_such_model.onnx")).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no_such_model.onnx is missing"), "{}", stderr(&out));
    assert!(gallery_bytes(&missing).is_none());

    // Corrupt model: the right name, garbage inside; with and without a pinned sha256.
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).expect("dir");
    let bad_model = corrupt.join("yunet.onnx");
    std::fs::write(&bad_model, b"\x08\x07garbage that is not an ONNX graph").expect("write");
    let cfg = write_config(&corrupt, "");
    let text = std::fs::read_to_string(&cfg).expect("read");
    let yunet = common::assets().join("models/yunet_2023mar_dynamic.onnx");
    let text = text.replace(s(&yunet), s(&bad_model));
    std::fs::write(&cfg, &text).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is corrupt: sha256"), "{}", stderr(&out));
    let unpinned: String = text.lines().filter(|l| !l.contains("85260e29")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&cfg, unpinned).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot be loaded"), "{}", stderr(&out));
    assert!(gallery_bytes(&corrupt).is_none());

    // A misspelt key is named, with its line.
    let typo = dir.path().join("typo");
    std::fs::create_dir(&typo).expect("dir");
    let cfg = write_config(&typo, "");
    let text = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, text.replace("score_threshold", "score_treshold")).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("score_treshold"), "{}", stderr(&out));

    // A value out of range is named by its full key.
    let cfg = write_config(&typo, "");
    let text = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, text.replace("threshold = 0.40", "threshold = 4.0")).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("face.matcher.threshold"), "{}", stderr(&out));
    assert!(gallery_bytes(&typo).is_none());

    // Removing someone who is not enrolled.
    let cfg = write_config(&typo, "");
    let out = dolbom(&["gallery", "remove", "nobody", "--config", s(&cfg)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no person with id `nobody`"), "{}", stderr(&out));

    // A missing ONNX Runtime library.
    let cfg = write_config(&typo, "");
    let text = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, text.replace("lib/libonnxruntime.so", "lib/libonnxruntime-nope.so")).expect("write");
    let out = enroll(&cfg);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot load the ONNX Runtime library"), "{}", stderr(&out));
}

/// DOLBOM_LOG_FORMAT=json: every log line is one JSON object a log shipper can read, with the
/// level, the message and the span it came from.
#[test]
fn logs_as_json_lines_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let (o1, b) = (photo("face_recognition/obama.jpg"), photo("face_recognition/biden.jpg"));
    // Biden's photo added to Obama resembles his other photo only weakly: a warning.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dolbom"))
        .args(["enroll", "--config", s(&cfg), "--person", "a", "--role", "staff", "--name", "A", s(&o1), s(&b)])
        .env("DOLBOM_LOG", "info")
        .env("DOLBOM_LOG_FORMAT", "json")
        .output()
        .expect("run dolbom");
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let warning = lines.iter().find(|l| l["level"] == "WARN").expect("a warning");
    assert!(warning["fields"]["message"].as_str().is_some_and(|m| m.contains("only weakly")), "{warning}");
    assert_eq!(warning["span"]["person"], "a", "{warning}");
}

#[test]
fn identify_reports_unreadable_images_but_keeps_going() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a jpeg").expect("write");
    let out = dolbom(&["identify", "--config", s(&cfg), s(&text), s(&photo("face_recognition/biden.jpg"))]);
    assert!(!out.status.success(), "an unreadable image must fail the run");
    assert!(stderr(&out).contains("notes.jpg"), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "biden.jpg still identified: {lines:?}");
    assert!(lines[0].contains("\"person\":null"), "empty gallery knows nobody: {}", lines[0]);
}

/// A gallery written as an older dolbom (or a hand edit) could have: `n` people, a few of them
/// with names no terminal should print raw.
fn write_gallery(dir: &Path, n: usize) {
    let hostile = ["line\nforged\tline", "\u{1b}[2J\u{1b}[31mred", "bell\u{7}", "rtl\u{202e}gnp.exe"];
    let people: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let name = if i < hostile.len() { hostile[i].to_string() } else { format!("아이 {i}") };
            serde_json::json!({"id": format!("p{i}"), "role": "child", "name": name, "embeddings": [], "enrolled_at": 1})
        })
        .collect();
    let gallery = serde_json::json!({"format": "dolbom.gallery/1", "gallery": {"embedder": null, "people": people}});
    std::fs::write(dir.join("gallery.json"), gallery.to_string()).expect("gallery");
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    // Far more than a pipe holds, so the command is still writing when the reader leaves.
    write_gallery(dir.path(), 5000);
    for args in [&["gallery", "list", "--config", s(&cfg)][..], &["gallery", "list", "--json", "--config", s(&cfg)]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dolbom"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("first line");
        assert!(first.starts_with("p0") || first.contains("\"p0\""), "{first}");
        // `| head -1`: the reader is gone (dropped above) while the command still has lines to print.
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn stored_names_are_printed_escaped_and_new_names_are_checked_at_enrolment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    write_gallery(dir.path(), 4);
    let out = dolbom(&["gallery", "list", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "one line per person, whatever the names hold: {text:?}");
    assert!(!text.chars().any(|c| c != '\n' && c != '\t' && c.is_control()), "raw control characters: {text:?}");
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(text.contains("line\\nforged\\tline") && text.contains("\\u{1b}[2J"), "{text:?}");

    let out = dolbom(&["gallery", "remove", "p1", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains('\u{1b}'), "{:?}", stdout(&out));

    let photo = photo("face_recognition/obama.jpg");
    for name in ["two\nlines", "\u{1b}[31mred", "tab\there", "zero\u{200b}width", "rtl\u{202e}x", "", "  "] {
        let before = gallery_bytes(dir.path());
        let out =
            dolbom(&["enroll", "--config", s(&cfg), "--person", "kid", "--role", "child", "--name", name, s(&photo)]);
        assert!(!out.status.success(), "{name:?} accepted");
        assert!(stderr(&out).contains("display name"), "{name:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains('\u{1b}'), "the error escapes the name too: {:?}", stderr(&out));
        assert_eq!(gallery_bytes(dir.path()), before, "{name:?} changed the gallery");
    }
}

#[test]
fn calibrate_thermal_refuses_non_finite_and_out_of_range_values() {
    let good = ["100,100=5,5", "500,100=25,5", "300,400=15,20"];
    let out = dolbom(&[&["calibrate", "thermal"][..], &good].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("calibration = ["), "{}", stdout(&out));
    for bad in ["NaN", "nan", "inf", "-inf", "infinity", "1e308", "-1", "20000", "1e-400x"] {
        for slot in 0..4 {
            let mut v = ["300", "400", "15", "20"];
            v[slot] = bad;
            let pair = format!("{},{}={},{}", v[0], v[1], v[2], v[3]);
            // After `--`, as a negative first value must be written; the parser sees every value.
            let out = dolbom(&["calibrate", "thermal", "--", good[0], good[1], &pair]);
            assert!(!out.status.success(), "{pair} accepted: {}", stdout(&out));
            assert!(stderr(&out).contains(&pair), "{pair}: the message names the pair: {}", stderr(&out));
            assert!(!stdout(&out).contains("calibration"), "{pair}: nothing printed for the config");
        }
    }
}

/// Blackbody readings give the `[thermal]` gain and offset lines; the lines load as a config;
/// too few or inconsistent readings are refused in Korean and English with nothing printed.
#[test]
fn calibrate_thermal_fits_gain_and_offset_from_blackbody_readings() {
    // A sensor reading 0.5 degC low at 30 degC and 1.0 degC low at 40 degC.
    let out = dolbom(&["calibrate", "thermal", "--blackbody", "30=29.5", "30.0=29.5", "40=39.0", "35=34.25"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("[thermal]") && text.contains("3 set point(s)"), "{text}");
    let value = |key: &str| -> f32 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("{key}: {text}"));
        line.split(" = ").nth(1).and_then(|v| v.trim().parse().ok()).expect("number")
    };
    let (gain, offset) = (value("gain"), value("offset_c"));
    assert!((gain - 1.0526).abs() < 0.001 && (offset - (-1.0526)).abs() < 0.01, "{text}");
    assert!((gain * 39.0 + offset - 40.0).abs() < 0.01, "corrects 39.0 read to 40.0: {text}");
    // The printed lines are a valid [thermal] section.
    let dir = tempfile::tempdir().expect("tempdir");
    let section = text.lines().filter(|l| !l.starts_with('#') && !l.starts_with('[')).collect::<Vec<_>>().join("\n");
    let cfg =
        write_config(dir.path(), &format!("\n[thermal]\ndevice = \"gy-mcu90640\"\nport = \"/dev/null\"\n{section}\n"));
    assert!(dolbom_kiosk::config::Config::load(&cfg).is_ok(), "{section}");

    for (args, why) in [
        (&["35=34.5"][..], "at least two"),
        (&["35=34.0", "35=35.0"][..], "differ by"),
        (&["30=30", "40=30.5"][..], "gain"),
        (&["30=30", "35=36", "40=39"][..], "one line"),
        (&["35=x", "36=35"][..], "SET_C=READ_C"),
    ] {
        let out = dolbom(&[&["calibrate", "thermal", "--blackbody"][..], args].concat());
        assert!(!out.status.success(), "{args:?} accepted: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(err.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c)), "{args:?}: Korean too: {err}");
        assert!(!stdout(&out).contains("gain"), "{args:?}: nothing printed for the config");
    }
    let out = dolbom(&["calibrate", "thermal", "100,100=5,5", "--blackbody", "35=34"]);
    assert!(!out.status.success(), "point pairs and blackbody readings are two different fits");
}

/// The tester's 20000x20000 image: a few bytes of header. `enroll` and `identify` refuse it from
/// its header, before decoding (which took 1.4 GB), and say why; other images still go through.
#[test]
fn images_with_huge_dimensions_are_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&20_000u32.to_be_bytes());
    png.extend_from_slice(&20_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, &png).expect("write");
    let biden = photo("face_recognition/biden.jpg");
    common::consent(&cfg, "kid");

    let out = dolbom(&["identify", "--config", s(&cfg), s(&huge), s(&biden)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too large") && stderr(&out).contains("20000x20000"), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "biden.jpg still identified: {}", stdout(&out));

    enroll_fails(dir.path(), &cfg, &[&biden, &huge], "too large");
}

#[test]
fn simulator_flags_are_bounded_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let link = dir.path().join("thermal0");
    let photo = photo("face_recognition/obama.jpg");
    let walker = s(&photo).to_string();
    let thermal = |flag: &str, value: &str| {
        dolbom(&["sim", "thermal", "--config", s(&cfg), "--link", s(&link), &format!("--{flag}={value}"), &walker])
    };
    for (flag, values) in [
        ("fps", &["0", "nan", "inf", "1e300", "-1"][..]),
        ("video-fps", &["0", "nan", "-1"]),
        ("ambient", &["nan", "-inf", "100", "-300"]),
        ("noise", &["nan", "-1", "1e9"]),
        ("dropout", &["nan", "-0.1", "1.5"]),
        ("corrupt", &["nan", "-0.1", "1.5"]),
        ("seconds", &["0", "nan", "inf", "-5"]),
    ] {
        for value in values {
            let out = thermal(flag, value);
            assert!(!out.status.success(), "--{flag}={value} accepted");
            assert!(stderr(&out).contains(&format!("--{flag}")), "--{flag}={value}: {}", stderr(&out));
            assert!(!link.exists(), "--{flag}={value}: nothing was started");
        }
    }
    for bad in ["nan", "inf", "1000", "-100"] {
        let w = format!("{walker}@{bad}");
        let out = dolbom(&["sim", "thermal", "--config", s(&cfg), "--link", s(&link), &w]);
        assert!(!out.status.success(), "{w} accepted");
        let out = dolbom(&["sim", "walk-up", "--out", s(&dir.path().join("x.avi")), &w]);
        assert!(!out.status.success(), "{w} accepted by walk-up");
    }
    let out = dolbom(&["sim", "walk-up", "--out", s(&dir.path().join("x.avi")), "--fps", "0", &walker]);
    assert!(!out.status.success() && stderr(&out).contains("--fps"), "{}", stderr(&out));
}

#[test]
fn calibrate_faces_measures_the_gallery_and_labelled_photos_consistently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let fr = |name: &str| photo(&format!("face_recognition/{name}"));
    let enrol = |id: &str, extra: &[&str], photos: &[std::path::PathBuf]| {
        let refs: Vec<&Path> = photos.iter().map(|p| p.as_path()).collect();
        common::consent(&cfg, id);
        let out = enroll_as(&cfg, id, id, extra, &refs);
        assert!(out.status.success(), "{id}: {}", stderr(&out));
    };
    enrol("obama", &[], &[fr("obama.jpg"), fr("obama3.jpg")]);
    enrol("twin", &["--lookalike-of", "obama"], &[fr("obama2.jpg")]);
    enrol("biden", &[], &[fr("biden.jpg")]);
    for kid in ["Female_40_1_4", "Female_41_6", "Female_42_1_5"] {
        enrol(kid, &[], &[photo(&format!("unknowns/{kid}.jpg"))]);
    }
    // Labelled photos: an unenrolled look-alike with two photos, a photo already enrolled, a group
    // photo and a file that is no image.
    let photos = dir.path().join("photos");
    let copy = |person: &str, from: &Path| {
        std::fs::create_dir_all(photos.join(person)).expect("dir");
        std::fs::copy(from, photos.join(person).join(from.file_name().expect("name"))).expect("copy");
    };
    copy("stranger", &fr("obama_partial_face.jpg"));
    copy("stranger", &fr("obama_partial_face2.jpg"));
    copy("obama", &fr("obama.jpg"));
    copy("group", &photo("insightface/t1.jpg"));
    std::fs::create_dir_all(photos.join("notes")).expect("dir");
    std::fs::write(photos.join("notes/readme.jpg"), "not a photo").expect("write");

    let run = |far: &str| {
        let out =
            dolbom(&["calibrate", "faces", "--config", s(&cfg), "--photos", s(&photos), "--target-far", far, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("one JSON object")
    };
    let report = run("0.001");
    let p = &report["photos"];
    assert_eq!(
        [&p["used"], &p["duplicate"], &p["several_faces"], &p["unreadable"], &p["no_face"]],
        [2, 1, 1, 1, 0],
        "{p}"
    );
    let c = &report["calibration"];
    let n = |v: &serde_json::Value| v.as_u64().expect("count");
    let x = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("number expected: {v}"));
    // obama 2, twin 1, biden 1, three children 1 each, stranger 2.
    assert_eq!((n(&c["people"]), n(&c["templates"])), (7, 9));
    assert_eq!(n(&c["genuine"]["pairs"]), 2);
    assert_eq!(n(&c["impostor"]["pairs"]), 9 * 8 / 2 - 2);
    let g = &c["genuine"];
    assert!(x(&g["min"]) <= x(&g["p5"]) && x(&g["p5"]) <= x(&g["median"]), "{g}");
    let i = &c["impostor"];
    assert!(x(&i["median"]) <= x(&i["p99"]) && x(&i["p99"]) <= x(&i["p99_9"]) && x(&i["p99_9"]) <= x(&i["max"]));

    // Look-alikes: obama, twin and stranger are one man; worst first; only obama-twin is marked.
    let pairs = c["lookalikes"].as_array().expect("lookalikes");
    let level = x(&c["lookalike_level"]);
    assert_eq!(level, 0.35);
    let sims: Vec<f64> = pairs.iter().map(|p| x(&p["similarity"])).collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]) && sims.iter().all(|s| *s >= level), "{sims:?}");
    let mut names: Vec<(String, bool)> = pairs
        .iter()
        .map(|p| {
            let mut ab = [p["a"].as_str().expect("a"), p["b"].as_str().expect("b")];
            ab.sort();
            (ab.join("+"), p["marked"].as_bool().expect("marked"))
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("obama+stranger".into(), false), ("obama+twin".into(), true), ("stranger+twin".into(), false)],
        "{pairs:?}"
    );
    assert_eq!(x(&c["impostor"]["max"]), sims[0], "the worst look-alike is the highest impostor pair");

    // 34 pairs cannot show 1 in 1000: nothing recommended. At 1 in 10 a threshold is, and it keeps
    // to the target.
    assert!(c["recommended"].is_null(), "{}", c["recommended"]);
    assert_eq!(n(&c["needed_pairs"]), 1000);
    let loose = run("0.1");
    let r = &loose["calibration"]["recommended"];
    assert!(x(&r["far"]) <= 0.1, "{r}");
    assert!(n(&r["false_matches"]) <= 3, "{r}");
    let estimates = r["stranger_accepted"].as_array().expect("estimates");
    let sizes: Vec<u64> = estimates.iter().map(|e| n(&e["gallery_size"])).collect();
    assert_eq!(sizes, [10, 50, 200]);
    let far = x(&r["far_for_estimate"]);
    for e in estimates {
        let expected = 1.0 - (1.0 - far).powi(n(&e["gallery_size"]) as i32);
        assert!((x(&e["rate"]) - expected).abs() < 1e-9, "{e}");
    }

    // Leave-one-out: probes are the templates of people with two or more (obama 2, stranger 2).
    let m = &c["margin"];
    assert_eq!(n(&m["probes"]), 4, "{m}");
    // One man under three ids: for some probe another "person" comes first.
    assert!(x(&m["smallest"]) < 0.0 && n(&m["wrong_person_first"]) >= 1, "{m}");

    // The text says the same in Korean and English.
    let out = dolbom(&["calibrate", "faces", "--config", s(&cfg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expect in ["people 6, face templates 7", "사람 6명", "look-alike pairs", "닮은꼴", "obama - twin  marked"]
    {
        assert!(text.contains(expect), "{expect:?} missing in:\n{text}");
    }

    for bad in ["0", "1", "nan", "-0.5"] {
        let out = dolbom(&["calibrate", "faces", "--config", s(&cfg), &format!("--target-far={bad}")]);
        assert!(!out.status.success(), "--target-far {bad} accepted");
        assert!(stderr(&out).contains("--target-far"), "{}", stderr(&out));
    }
}
