//! Shared set-up for the integration tests: the real models and photos that scripts/setup.sh
//! fetched into .dolbom/, and configs written into temporary directories.
#![allow(dead_code)]

pub mod broker;
pub mod browser;
#[cfg(feature = "console")]
pub mod console;
pub mod gateway;
pub mod http;
// The kiosk's helpers need the kiosk wing; the relay's tests build without it.
#[cfg(feature = "kiosk")]
pub mod kiosk;
pub mod postgres;
pub mod relay;
pub mod tcp_proxy;
pub mod tls;
pub mod units;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".dolbom")
}

/// A file under .dolbom/testdata; fails loudly when the set-up has not run, never skips.
pub fn photo(rel: &str) -> PathBuf {
    let p = assets().join("testdata").join(rel);
    assert!(p.exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// The sample config with the gallery moved into `dir`, plus `extra` TOML appended.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample.toml");
    let text = std::fs::read_to_string(&sample).expect("config/sample.toml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = String::new();
    for line in text.lines() {
        let line = line.replace("\"../.dolbom/", &format!("\"{}/.dolbom/", root.display()));
        if line.starts_with("path = ") {
            out.push_str(&format!("path = \"{}\"\n", dir.join("gallery.json").display()));
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str(extra);
    let path = dir.join("kiosk.toml");
    std::fs::write(&path, out).expect("write config");
    path
}

/// Records a guardian's consent to face-attendance for `person` through the CLI, as staff do
/// before a child's face is enrolled (given yesterday, kept a year).
pub fn consent(config: &Path, person: &str) {
    consent_with(config, person, &["face-attendance"]);
}

pub fn consent_with(config: &Path, person: &str, purposes: &[&str]) {
    let today = jiff::ZonedDateTime::now().date();
    let (given, until) = (
        today.yesterday().expect("a yesterday").to_string(),
        today.checked_add(jiff::Span::new().days(365)).expect("a year on").to_string(),
    );
    let c = config.to_str().expect("utf-8");
    let mut args =
        vec!["consent", "add", person, "--config", c, "--guardian", "김영희", "--relation", "어머니 / mother"];
    args.extend(["--given-on", given.as_str(), "--until", until.as_str(), "--by", "kim-teacher"]);
    args.extend(["--verified-how", "signed paper form, ID checked"]);
    for p in purposes {
        args.extend(["--purpose", p]);
    }
    let out = dolbom(&args);
    assert!(out.status.success(), "consent for {person}: {}", stderr(&out));
}

pub fn dolbom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dolbom")).args(args).output().expect("run dolbom")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[cfg(feature = "kiosk")]
pub fn load(config: &Path) -> dolbom_kiosk::config::Config {
    dolbom_kiosk::config::Config::load(config).expect("config loads")
}

#[cfg(feature = "kiosk")]
pub fn pipeline(config: &dolbom_kiosk::config::Config) -> dolbom_face::identify::FacePipeline {
    let models = dolbom_face::FaceModels::load(&config.runtime, &config.face).expect("models load");
    dolbom_face::identify::FacePipeline::new(models, dolbom_face::gallery::Matcher::new(config.face.matcher.clone()))
}

/// Polls `f` until it holds; fails the test with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + timeout;
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The JSON Schema `docs/schemas/NAME`, compiled.
pub fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas").join(name);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema json");
    jsonschema::validator_for(&schema).expect("valid schema")
}

pub fn assert_valid(v: &jsonschema::Validator, payload: &serde_json::Value) {
    let errors: Vec<String> = v.iter_errors(payload).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{payload} does not match its schema: {errors:?}");
}
