//! dolbom's YuNet decoding, alignment and SFace embedding agree with OpenCV's own
//! FaceDetectorYN and FaceRecognizerSF on the same photos (tests/data/opencv_reference.json,
//! made by scripts/make_golden.py from the unconverted models).

mod common;

use dolbom_face::image::load_bgr;
use dolbom_face::Embedding;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_side: u32,
    images: Vec<RefImage>,
}

#[derive(Deserialize)]
struct RefImage {
    image: String,
    faces: Vec<RefFace>,
}

#[derive(Deserialize)]
struct RefFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
    embedding: Vec<f32>,
}

#[test]
fn detector_aligner_and_embedder_match_opencv() {
    let reference: Reference =
        serde_json::from_str(include_str!("data/opencv_reference.json")).expect("reference parses");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::load(&common::write_config(dir.path(), ""));
    assert_eq!(config.face.detector.max_input_side, reference.max_side, "reference made at another scale");
    let mut pipeline = common::pipeline(&config);
    let mut compared = 0;
    for img in &reference.images {
        let image = load_bgr(&common::photo(&img.image)).expect("photo loads");
        let faces = pipeline.analyze(&image).expect("analyze");
        assert_eq!(faces.len(), img.faces.len(), "{}: face count differs from OpenCV", img.image);
        for (ours, theirs) in faces.iter().zip(&img.faces) {
            let d = &ours.detection;
            // Coordinates are in full-resolution pixels; a pixel of slack covers rounding.
            for (a, b) in d.bbox.iter().zip(&theirs.bbox) {
                assert!((a - b).abs() <= 1.0, "{}: box {:?} vs OpenCV {:?}", img.image, d.bbox, theirs.bbox);
            }
            for (a, b) in d.landmarks.iter().flatten().zip(theirs.landmarks.iter().flatten()) {
                assert!((a - b).abs() <= 1.0, "{}: landmarks {:?} vs {:?}", img.image, d.landmarks, theirs.landmarks);
            }
            assert!((d.score - theirs.score).abs() <= 0.002, "{}: score {} vs {}", img.image, d.score, theirs.score);
            let reference = Embedding::normalized(theirs.embedding.clone()).expect("non-zero reference");
            let cos = ours.embedding.similarity(&reference);
            assert!(cos >= 0.995, "{}: embedding cosine to OpenCV's is {cos}", img.image);
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} faces compared");
}

/// The header reader that guards decoding (`image::dimensions`) agrees with OpenCV's decoder on
/// every test photo: each one is still read, at the size OpenCV finds.
#[test]
fn header_dimensions_match_what_opencv_decodes_for_every_test_photo() {
    use opencv::core::MatTraitConst;
    let mut files = Vec::new();
    let mut dirs = vec![common::assets().join("testdata")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("testdata") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "jpg" || e == "jpeg" || e == "png") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 100, "the test photos are missing: run scripts/setup.sh");
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        let (w, h) = dolbom_face::image::dimensions(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let decoded =
            opencv::imgcodecs::imread(path.to_str().expect("utf-8"), opencv::imgcodecs::IMREAD_COLOR).expect("imread");
        // OpenCV turns a photo by its EXIF orientation; the limits do not care which side is which.
        let sides = |a: i32, b: i32| (a.min(b), a.max(b));
        assert_eq!(sides(w as i32, h as i32), sides(decoded.cols(), decoded.rows()), "{}", path.display());
        let loaded = load_bgr(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((loaded.cols(), loaded.rows()), (decoded.cols(), decoded.rows()), "{}", path.display());
    }
}
