//! Face pipeline latency next to the raw ONNX Runtime inference of the same models, so the
//! overhead of dolbom's own pre- and post-processing is visible.
//!
//!     cargo bench --bench face            # full run
//!     cargo bench --bench face -- --quick # a few iterations (CI)
//!
//! Prints medians (and p90) over repeated runs on the registry photos fetched by scripts/setup.sh.

use std::path::Path;
use std::time::{Duration, Instant};

use dolbom_face::gallery::{Gallery, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::onnx::{self, ModelSpec};
use dolbom_face::{to_planar_f32, FaceModels};
use dolbom_kiosk::config::Config;
use opencv::core::{MatTraitConst, MatTraitConstManual};
use ort::value::Tensor;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let iterations = if quick { 5 } else { 50 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("config/sample.toml")).expect("config/sample.toml");
    let photos = root.join(".dolbom/testdata");
    let images = ["face_recognition/obama.jpg", "face_recognition/biden.jpg", "insightface/t1.jpg"];

    let models = FaceModels::load(&config.runtime, &config.face).expect("models (run scripts/setup.sh)");
    let mut pipeline = FacePipeline::new(models, Matcher::new(config.face.matcher.clone()));
    let env = onnx::environment(&config.runtime.onnxruntime).expect("onnxruntime");
    let threads = config.runtime.threads;
    let mut raw_yunet =
        onnx::open_session(env, &ModelSpec { path: &config.face.detector.model, sha256: None, threads })
            .expect("yunet");
    let mut raw_sface =
        onnx::open_session(env, &ModelSpec { path: &config.face.embedder.model, sha256: None, threads })
            .expect("sface");
    let yunet_sizer = dolbom_face::yunet::YuNet::new(
        env,
        &ModelSpec { path: &config.face.detector.model, sha256: None, threads: 1 },
        dolbom_face::yunet::YuNetParams {
            max_input_side: config.face.detector.max_input_side,
            score_threshold: config.face.detector.score_threshold,
            nms_threshold: config.face.detector.nms_threshold,
        },
    )
    .expect("yunet");

    // A gallery of 50 people x 3 photos, so matching costs what it would at a real center.
    let mut gallery = Gallery::empty();
    let seed = load_bgr(&photos.join(images[0])).expect("photo");
    let base = pipeline.analyze(&seed).expect("analyze").remove(0).embedding;
    for i in 0..50 {
        let perturbed: Vec<f32> =
            base.values().iter().enumerate().map(|(j, v)| v + ((i * 31 + j * 7) % 13) as f32 * 0.01).collect();
        let e = dolbom_face::Embedding::normalized(perturbed).expect("non-zero");
        gallery
            .enroll(&format!("p{i}"), Role::Child, "P", vec![e.clone(), e.clone(), e], "sface_2021dec", 0)
            .expect("enroll");
    }

    println!("dolbom face benchmark: {iterations} iterations, ONNX Runtime intra-op threads = {threads}");
    println!(
        "{:<28} {:>12} {:>10} {:>10} {:>14} {:>9}",
        "image", "stage", "p50 ms", "p90 ms", "raw ORT p50 ms", "overhead"
    );
    for rel in images {
        let image = load_bgr(&photos.join(rel)).expect("photo");
        let (w, h) = (image.cols(), image.rows());
        let (sw, sh) = yunet_sizer.working_size(w, h);
        let (pw, ph) = ((sw as usize).div_ceil(32) * 32, (sh as usize).div_ceil(32) * 32);

        let detect = time(iterations, || {
            pipeline.models.detector.detect(&image).expect("detect");
        });
        // The raw runs get exactly the tensors dolbom builds, made once outside the timing.
        let mut small = opencv::core::Mat::default();
        opencv::imgproc::resize(
            &image,
            &mut small,
            opencv::core::Size::new(sw, sh),
            0.0,
            0.0,
            opencv::imgproc::INTER_LINEAR,
        )
        .expect("resize");
        let mut input = Vec::new();
        to_planar_f32(small.data_bytes().expect("bytes"), sw as usize, sh as usize, (pw, ph), false, &mut input);
        let raw_detect = time(iterations, || {
            let t = Tensor::from_array(([1usize, 3, ph, pw], input.clone())).expect("tensor");
            raw_yunet.run(ort::inputs!["input" => t]).expect("run");
        });
        row(rel, &format!("detect {pw}x{ph}"), &detect, Some(&raw_detect));

        let faces = pipeline.models.detector.detect(&image).expect("detect");
        let face = faces.first().expect("a face");
        let embed = time(iterations, || {
            let aligned = pipeline.models.aligner.align(&image, face).expect("align");
            pipeline.models.embedder.embed(&aligned).expect("embed");
        });
        let aligned = pipeline.models.aligner.align(&image, face).expect("align");
        let mut crop = Vec::new();
        to_planar_f32(aligned.data_bytes().expect("bytes"), 112, 112, (112, 112), true, &mut crop);
        let raw_embed = time(iterations, || {
            let t = Tensor::from_array(([1usize, 3, 112, 112], crop.clone())).expect("tensor");
            raw_sface.run(ort::inputs!["data" => t]).expect("run");
        });
        row("", "align+embed", &embed, Some(&raw_embed));

        let identify = time(iterations, || {
            pipeline.identify(rel, &image, &gallery).expect("identify");
        });
        let raw_total = median(&raw_detect) + median(&raw_embed) * faces.len() as u32;
        row("", &format!("identify {}f", faces.len()), &identify, Some(&[raw_total]));
        let decode = time(iterations.min(10), || {
            load_bgr(&photos.join(rel)).expect("photo");
        });
        row("", &format!("decode {w}x{h}"), &decode, None);
    }
}

fn time(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm-up: first runs allocate and let ONNX Runtime pick kernels
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50)
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[(s.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(image: &str, stage: &str, samples: &[Duration], raw: Option<&[Duration]>) {
    let p50 = median(samples);
    let (raw_ms, overhead) = match raw {
        Some(r) => {
            let r = median(r);
            (format!("{:.2}", ms(r)), format!("{:.2}x", p50.as_secs_f64() / r.as_secs_f64()))
        }
        None => ("-".into(), "-".into()),
    };
    println!(
        "{:<28} {:>12} {:>10.2} {:>10.2} {:>14} {:>9}",
        image,
        stage,
        ms(p50),
        ms(percentile(samples, 90)),
        raw_ms,
        overhead
    );
}
