//! Recognition on real photos: the same person matches across different photos; different and
//! unenrolled people do not.

mod common;

use std::path::PathBuf;

use dolbom_face::enroll::{enroll, Enroller, Enrollment};
use dolbom_face::gallery::Role;
use dolbom_face::image::load_bgr;

#[test]
fn same_person_matches_and_strangers_stay_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::load(&common::write_config(dir.path(), ""));
    let mut pipeline = common::pipeline(&config);
    let store = config.gallery.store();
    let q = &config.face.quality;
    let (now, audit) = (jiff::ZonedDateTime::now(), dolbom_face::gallery::AuditLog::new(config.gallery.audit_path()));
    let who = Enroller { now: &now, by: "test", audit: &audit };
    let obama = [common::photo("face_recognition/obama.jpg"), common::photo("face_recognition/obama2.jpg")];
    enroll(
        &mut pipeline,
        q,
        &store,
        &Enrollment { id: "obama", role: Role::Guardian, name: "Obama", photos: &obama },
        &who,
    )
    .expect("enrol obama");
    let biden = [common::photo("face_recognition/biden.jpg")];
    enroll(
        &mut pipeline,
        q,
        &store,
        &Enrollment { id: "biden", role: Role::Staff, name: "Biden", photos: &biden },
        &who,
    )
    .expect("enrol biden");
    let gallery = store.load().expect("gallery");

    // Photos of Obama that were not enrolled, including one with half the face cut off.
    for rel in ["face_recognition/obama3.jpg", "face_recognition/obama_partial_face.jpg"] {
        let image = load_bgr(&common::photo(rel)).expect("photo");
        let ids = pipeline.identify(rel, &image, &gallery).expect("identify");
        assert_eq!(ids.len(), 1, "{rel}");
        assert_eq!(ids[0].person.as_deref(), Some("obama"), "{rel}: {:?}", ids[0]);
    }

    // Different enrolled people do not match each other.
    let obama_emb = &gallery.get("obama").expect("obama").embeddings;
    let biden_emb = &gallery.get("biden").expect("biden").embeddings;
    for a in obama_emb {
        for b in biden_emb {
            assert!(a.similarity(b) < config.face.matcher.threshold, "obama~biden {}", a.similarity(b));
        }
    }

    // 160-odd strangers from another package, and the group photo: nobody is taken for an enrolled person.
    let mut strangers = 0;
    let mut worst = f32::MIN;
    let mut unknowns: Vec<PathBuf> =
        std::fs::read_dir(common::photo("unknowns")).expect("unknowns dir").map(|e| e.expect("entry").path()).collect();
    unknowns.sort();
    unknowns.push(common::photo("insightface/t1.jpg"));
    for path in &unknowns {
        let image = load_bgr(path).expect("photo");
        for id in pipeline.identify(&path.display().to_string(), &image, &gallery).expect("identify") {
            assert_eq!(id.person, None, "{} matched {:?} at {:?}", path.display(), id.person, id.similarity);
            worst = worst.max(id.similarity.unwrap_or(f32::MIN));
            strangers += 1;
        }
    }
    assert!(strangers >= 150, "only {strangers} stranger faces checked");
    assert!(worst < config.face.matcher.threshold, "closest stranger {worst}");
}
