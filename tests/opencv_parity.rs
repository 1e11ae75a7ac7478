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
