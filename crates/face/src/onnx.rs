//! ONNX Runtime: one process-wide environment, loaded from a shared library at run time, and
//! model sessions created from verified files.
//!
//! The library is loaded dynamically (ort's `load-dynamic`) because the kiosk image ships the
//! ONNX Runtime build that matches its CPU; nothing is downloaded at build time.
//!
//! Memory (docs/memory.md): every session allocates from one CPU arena registered on the
//! environment, grown by exactly what is asked for; models are loaded from their files, never
//! held whole in memory by us.

use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::AsPointer;
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
    register_shared_arena(&env).map_err(|e| fail(format!("cannot register the shared CPU arena: {e}")))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// `arena_extend_strategy` value of ONNX Runtime's `kSameAsRequested`.
const SAME_AS_REQUESTED: usize = 1;

/// Registers one CPU arena on the environment for every session to share (they opt in with
/// `session.use_env_allocators`).
///
/// Why: by default each session has its own arena, and an arena never gives memory back and
/// grows in powers of two (1, 2, 4 ... 32 MB), so the detector's and the embedder's activations
/// each kept up to twice what they needed, side by side. Sessions here run one after the other,
/// so one arena grown by exactly what is requested serves both.
fn register_shared_arena(env: &Environment) -> Result<(), ort::Error> {
    let api = ort::api();
    let keys = [c"arena_extend_strategy".as_ptr()];
    let values = [SAME_AS_REQUESTED];
    let mut config = ptr::null_mut();
    // SAFETY: the key and value arrays have `keys.len()` elements and outlive the call; ONNX
    // Runtime writes a new config to `config` or returns an error status.
    unsafe {
        ort::Error::result_from_status((api.CreateArenaCfgV2)(keys.as_ptr(), values.as_ptr(), keys.len(), &mut config))?
    };
    let registered =
        MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Arena, MemoryType::Default).and_then(|info| {
            // SAFETY: `env` and `info` are live ONNX Runtime objects; the arena config is read
            // during the call and copied into the allocator.
            unsafe {
                ort::Error::result_from_status((api.CreateAndRegisterAllocator)(
                    env.ptr().cast_mut(),
                    info.ptr(),
                    config,
                ))
            }
        });
    // SAFETY: `config` came from CreateArenaCfgV2 above and is released once, here.
    unsafe { (api.ReleaseArenaCfg)(config) };
    registered
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
    if let Some(expected) = spec.sha256 {
        let actual = sha256_file(path).map_err(|error| OnnxError::ModelRead { path: path.to_path_buf(), error })?;
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
        // The environment's shared arena (see `register_shared_arena`) instead of one per session.
        .with_env_allocators()
        .map_err(|e| load(e.to_string()))?
        // A memory pattern is one block holding all of a run's intermediate tensors, planned and
        // kept per input shape; the shared arena reuses freed tensors' space instead, which
        // peaks 9-10 MB lower on the walk-up clip (docs/memory.md).
        .with_memory_pattern(false)
        .map_err(|e| load(e.to_string()))?
        // From the file, not from a copy in memory: ONNX Runtime parses it as a stream, so the
        // 38 MB embedder is not held a third time while its weights are being set up. The file
        // was hashed just above; the check guards against corrupt downloads and flipped bits,
        // which cannot happen in between.
        .commit_from_file(path)
        .map_err(|e| load(e.to_string()))
}

/// The hex sha256 of a file, read in pieces so the model is never held in memory whole.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
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
