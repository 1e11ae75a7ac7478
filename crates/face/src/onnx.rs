//! ONNX Runtime: one process-wide environment, loaded from a shared library at run time, and
//! model sessions created from verified files.
//!
//! The library is loaded dynamically (ort's `load-dynamic`) because the kiosk image ships the
//! ONNX Runtime build that matches its CPU; nothing is downloaded at build time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot load the ONNX Runtime library {path}: {reason} (run scripts/setup.sh, or set runtime.onnxruntime in the config)")]
    Library { path: PathBuf, reason: String },
    #[error("model file {path} is missing (run scripts/setup.sh to fetch the models)")]
    ModelMissing { path: PathBuf },
    #[error("cannot read model file {path}: {error}")]
    ModelRead { path: PathBuf, error: std::io::Error },
    #[error("model file {path} is corrupt: sha256 is {actual}, expected {expected} (run scripts/setup.sh to fetch it again)")]
    ModelChecksum { path: PathBuf, expected: String, actual: String },
    #[error("model file {path} cannot be loaded: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("model {model} has no {what} named `{name}`")]
    ModelShape { model: String, what: &'static str, name: String },
    #[error("inference failed in {model}: {reason}")]
    Inference { model: String, reason: String },
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// Loads ONNX Runtime from `library` once per process. Later calls return the same environment,
/// whatever path they pass: ONNX Runtime cannot be loaded twice into one process.
pub fn environment(library: &Path) -> Result<&'static Environment, OnnxError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let fail = |reason: String| OnnxError::Library { path: library.to_path_buf(), reason };
    if library.components().count() > 1 && !library.exists() {
        return Err(fail("no such file".into()));
    }
    let env = ort::init_from(library)
        .map_err(|e| fail(e.to_string()))?
        .with_name("dolbom")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// What is needed to open one model.
#[derive(Debug, Clone)]
pub struct ModelSpec<'a> {
    pub path: &'a Path,
    /// When set, the file must hash to this value; a flipped bit in the weights would otherwise
    /// load fine and quietly produce wrong faces.
    pub sha256: Option<&'a str>,
    pub threads: usize,
}

/// Opens a model as an ONNX Runtime session, after checking that the file is there and intact.
pub fn open_session(env: &Environment, spec: &ModelSpec<'_>) -> Result<Session, OnnxError> {
    let path = spec.path;
    if !path.exists() {
        return Err(OnnxError::ModelMissing { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|error| OnnxError::ModelRead { path: path.to_path_buf(), error })?;
    if let Some(expected) = spec.sha256 {
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(OnnxError::ModelChecksum { path: path.to_path_buf(), expected: expected.to_string(), actual });
        }
    }
    let load = |reason: String| OnnxError::ModelLoad { path: path.to_path_buf(), reason };
    Session::builder(env)
        .map_err(|e| load(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(spec.threads)
        .map_err(|e| load(e.to_string()))?
        // The detector and embedder run one after the other; threads of one session spinning
        // after its run would steal the cores the next one needs, and on a fanless kiosk they
        // only turn power into heat.
        .with_intra_op_spinning(false)
        .map_err(|e| load(e.to_string()))?
        .commit_from_memory(&bytes)
        .map_err(|e| load(e.to_string()))
}

/// Checks that a session has the named inputs and outputs the caller's decoder relies on, so a
/// wrong model file fails at start-up with a clear message rather than on the first frame.
pub fn require_names(session: &Session, model: &str, inputs: &[&str], outputs: &[&str]) -> Result<(), OnnxError> {
    for name in inputs {
        if !session.inputs().iter().any(|o| o.name() == *name) {
            return Err(OnnxError::ModelShape { model: model.to_string(), what: "input", name: name.to_string() });
        }
    }
    for name in outputs {
        if !session.outputs().iter().any(|o| o.name() == *name) {
            return Err(OnnxError::ModelShape { model: model.to_string(), what: "output", name: name.to_string() });
        }
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
