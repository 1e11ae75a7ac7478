//! The look-alike rule on real photos (the registry's, so the test runs anywhere the set-up has
//! run): marked look-alikes are not told apart by a small lead, and the rule never accepts more
//! than today's single threshold.

mod common;

use std::path::PathBuf;

use dolbom_face::config::MatcherConfig;
use dolbom_face::gallery::{Gallery, Matcher, Role};
use dolbom_face::identify::FacePipeline;
use dolbom_face::image::load_bgr;
use dolbom_face::Embedding;

fn embed(pipeline: &mut FacePipeline, path: &std::path::Path) -> Option<Embedding> {
    let image = load_bgr(path).ok()?;
    let mut faces = pipeline.analyze(&image).ok()?;
    (faces.len() == 1).then(|| faces.remove(0).embedding)
}

/// The closest thing to identical twins the registry photos hold: one man enrolled as two
/// children from two different photos. A third photo resembles one a little more than the other
/// (0.82 against 0.73). Today's rule names the first; so does the new one while the two are not
/// marked — but it counts them crowded (the door asks for more votes) — and once enrolment has
/// marked them as look-alikes, that lead is not enough: unknown, for staff to settle.
#[test]
fn marked_lookalikes_need_the_larger_margin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::load(&common::write_config(dir.path(), ""));
    let mut pipeline = common::pipeline(&config);
    let e = |p: &mut FacePipeline, rel: &str| embed(p, &common::photo(rel)).expect(rel);
    let (a, b) = (e(&mut pipeline, "face_recognition/obama.jpg"), e(&mut pipeline, "face_recognition/obama2.jpg"));
    let biden = e(&mut pipeline, "face_recognition/biden.jpg");
    let mut gallery = Gallery::empty();
    gallery.enroll("twin-a", Role::Child, "쌍둥이 가", vec![a], "m", 0).expect("a");
    gallery.enroll("twin-b", Role::Child, "쌍둥이 나", vec![b], "m", 0).expect("b");
    gallery.enroll("biden", Role::Staff, "Biden", vec![biden], "m", 0).expect("biden");
    let m = &config.face.matcher;

    let probe = e(&mut pipeline, "face_recognition/obama3.jpg");
    let old = Matcher::new(MatcherConfig::single_threshold(m.threshold)).best(&gallery, &probe);
    let plain = Matcher::new(m.clone()).best(&gallery, &probe);
    let lead = plain.similarity.expect("best") - plain.runner_up.expect("runner-up");
    assert!(lead >= m.margin && lead < m.lookalike_margin, "a lead between the two margins: {lead}");
    assert!(old.person.is_some(), "today's rule picks one twin");
    assert!(plain.person.is_some() && plain.crowded, "matched, but crowded: {plain:?}");

    gallery.mark_lookalikes("twin-a", "twin-b").expect("mark");
    let marked = Matcher::new(m.clone()).best(&gallery, &probe);
    assert!(marked.person.is_none() && marked.contested, "{marked:?}");
    // Biden has no close neighbour: still Biden, and not crowded.
    let biden_again = Matcher::new(m.clone()).best(&gallery, &gallery.people[2].embeddings[0]);
    assert_eq!(biden_again.person.map(|p| p.id.as_str()), Some("biden"));
    assert!(!biden_again.crowded);
}

/// Photos of other groups against a gallery of the registry's unlabelled photos: wherever the
/// threshold sits, the new rule (threshold grown with the gallery, margin over the runner-up)
/// takes no more of them for an enrolled person than today's rule, and strictly fewer where
/// faces come close. The package is unlabelled, so some of these may be the same people as
/// enrolled ones: the test compares the rules, it does not count strangers.
#[test]
fn the_new_rule_never_accepts_more_than_todays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::load(&common::write_config(dir.path(), ""));
    let mut pipeline = common::pipeline(&config);
    let mut photos: Vec<PathBuf> =
        std::fs::read_dir(common::photo("unknowns")).expect("unknowns").map(|e| e.expect("entry").path()).collect();
    photos.sort();
    let faces: Vec<Embedding> = photos.iter().filter_map(|p| embed(&mut pipeline, p)).collect();
    assert!(faces.len() >= 150, "only {} faces", faces.len());
    // The package is unlabelled and holds several photos of some people: group photos that may
    // show one person (similarity 0.45 and up: above any two different people seen, 0.39), then enrol
    // one photo of every other group and keep the rest of the groups as strangers.
    let mut group: Vec<usize> = (0..faces.len()).collect();
    fn root(g: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while g[r] != r {
            r = g[r];
        }
        g[i] = r;
        r
    }
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            if faces[i].similarity(&faces[j]) >= 0.45 {
                let (ri, rj) = (root(&mut group, i), root(&mut group, j));
                group[ri] = rj;
            }
        }
    }
    let mut roots: Vec<usize> = (0..faces.len()).map(|i| root(&mut group, i)).collect();
    roots.sort();
    roots.dedup();
    let (mut gallery, mut strangers) = (Gallery::empty(), Vec::new());
    for (k, r) in roots.iter().enumerate() {
        let members: Vec<usize> = (0..faces.len()).filter(|&i| root(&mut group, i) == *r).collect();
        if k % 2 == 0 {
            let id = format!("child-{k}");
            gallery.enroll(&id, Role::Child, &id, vec![faces[members[0]].clone()], "m", 0).expect("enrol");
        } else {
            strangers.extend(members.iter().map(|&i| faces[i].clone()));
        }
    }
    let accepted = |m: MatcherConfig, g: &Gallery| {
        let matcher = Matcher::new(m);
        strangers.iter().filter(|s| matcher.best(g, s).person.is_some()).count()
    };
    for base in [0.30, 0.35, config.face.matcher.threshold] {
        let old = accepted(MatcherConfig::single_threshold(base), &gallery);
        let new = accepted(MatcherConfig { threshold: base, ..config.face.matcher.clone() }, &gallery);
        eprintln!("threshold {base:.2}: today's rule accepts {old}, the new one {new} of {} photos", strangers.len());
        assert!(new <= old, "at {base}: the new rule takes no more: {new} against {old}");
        if base < 0.40 {
            assert!(new < old, "at {base}: strictly fewer: {new} against {old}");
        }
    }
}

/// Growing faces: a child recognised ever more weakly over a season is listed first by
/// `dolbom gallery health`, with the prompt to re-enrol, in Korean and English.
#[test]
fn gallery_health_prompts_re_enrolment_after_decay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path =
        common::write_config(dir.path(), &format!("\n[state]\ndir = \"{}\"\n", dir.path().join("state").display()));
    let config = common::load(&config_path);
    let store = dolbom_kiosk::store::Store::open(&config.state.db_file()).expect("kiosk db");
    let now = jiff::Timestamp::now().as_millisecond();
    let day = 86_400_000;
    {
        let conn = store.lock().expect("lock");
        for (i, sim) in [0.70f32, 0.66, 0.60, 0.52, 0.47, 0.45, 0.43, 0.43, 0.42, 0.42, 0.42, 0.41].iter().enumerate() {
            dolbom_kiosk::recognition::record(&conn, "minji", *sim, now - (40 - 3 * i as i64) * day).expect("record");
        }
        for i in 0..6 {
            dolbom_kiosk::recognition::record(&conn, "jiwoo", 0.71, now - i * day).expect("record");
        }
    }
    drop(store);
    let out = common::dolbom(&["gallery", "health", "--config", config_path.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rows: Vec<serde_json::Value> =
        common::stdout(&out).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["person"], "minji", "the one to re-enrol first: {rows:?}");
    let why = rows[0]["reenrol"].as_str().expect("minji is due");
    assert!(why.contains("re-enrol") && why.contains("다시 등록"), "{why}");
    assert!(rows[1]["reenrol"].is_null(), "{rows:?}");
    let table = common::dolbom(&["gallery", "health", "--config", config_path.to_str().expect("utf-8")]);
    assert!(common::stdout(&table).contains("minji"), "{}", common::stdout(&table));
}

/// Templates the kiosk took from sightings are listed with their numbers and can be taken back
/// without touching the enrolled ones.
#[test]
fn templates_from_sightings_are_listed_and_revertible() {
    use dolbom_face::gallery::{RefreshPolicy, Refreshed};
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = common::write_config(dir.path(), "");
    let config = common::load(&config_path);
    let mut pipeline = common::pipeline(&config);
    let enrolled = embed(&mut pipeline, &common::photo("face_recognition/obama.jpg")).expect("obama");
    let seen = embed(&mut pipeline, &common::photo("face_recognition/obama3.jpg")).expect("obama3");
    let store = config.gallery.store();
    store
        .update(|g| -> Result<(), Box<dyn std::error::Error>> {
            g.enroll("obama", Role::Guardian, "Obama", vec![enrolled], pipeline.models.embedder.model_id(), 1)?;
            let t = Refreshed { embedding: seen, added_at: 1_000_000, similarity: 0.71, margin: 0.52 };
            assert!(g.refresh("obama", t, &RefreshPolicy::default())?);
            Ok(())
        })
        .expect("gallery");
    let c = config_path.to_str().expect("utf-8");
    let list = |c: &str| -> serde_json::Value {
        let out = common::dolbom(&["gallery", "list", "--config", c, "--json"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        serde_json::from_str(common::stdout(&out).lines().next().expect("a line")).expect("json")
    };
    let before = list(c);
    assert_eq!(before["photos"], 1);
    assert_eq!(before["refreshed"][0]["added_at"], 1_000_000);
    let out = common::dolbom(&["gallery", "revert-refresh", "obama", "--config", c]);
    assert!(out.status.success() && common::stdout(&out).contains("1 template(s)"), "{}", common::stdout(&out));
    let after = list(c);
    assert_eq!(after["photos"], 1, "the enrolled template is kept");
    assert_eq!(after["refreshed"], serde_json::json!([]));
    let out = common::dolbom(&["gallery", "revert-refresh", "nobody", "--config", c]);
    assert!(!out.status.success());
}
