//! What a center's own faces say about the match threshold (`dolbom calibrate faces`).
//!
//! Every pair of templates of one person is a genuine pair, every pair across two people an
//! impostor pair. From them: the two distributions, the look-alike pairs, the threshold that keeps
//! the false-match rate per comparison at a target, what that threshold costs in misses, and, from
//! leave-one-out probes, how close the runner-up comes to the right person (what a margin rule
//! between the best and the second-best person would cost).

use serde::Serialize;

use crate::enroll::lookalike_level;
use crate::Embedding;

/// Two templates of one person this similar are the same photo reached twice (enrolled and also
/// in a photo folder): counting it would add a perfect genuine pair that says nothing.
pub const SAME_PHOTO_SIMILARITY: f32 = 0.995;

/// Gallery sizes for the open-set estimate: a small class, a center, a large center.
pub const GALLERY_SIZES: [usize; 3] = [10, 50, 200];

/// Margins between the best and the second-best person whose cost is reported.
pub const MARGINS: [f32; 3] = [0.02, 0.05, 0.10];

/// One labelled person: their templates and who they are marked as looking like.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub id: String,
    pub embeddings: Vec<Embedding>,
    pub lookalikes: Vec<String>,
}

impl Subject {
    /// Adds a template unless it is the same photo as one already there; says whether it did.
    pub fn add(&mut self, e: Embedding) -> bool {
        if self.embeddings.iter().any(|x| x.similarity(&e) >= SAME_PHOTO_SIMILARITY) {
            return false;
        }
        self.embeddings.push(e);
        true
    }
}

/// Photos from labelled folders: how many were used, and why the others were not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhotoCounts {
    pub used: usize,
    pub no_face: usize,
    pub several_faces: usize,
    pub unreadable: usize,
    /// The same photo as a template the person already has (counted once).
    pub duplicate: usize,
}

/// What `dolbom calibrate faces --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub calibration: Calibration,
    pub photos: PhotoCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub people: usize,
    pub templates: usize,
    pub genuine: GenuineStats,
    pub impostor: ImpostorStats,
    /// Different people at or above this similarity are listed as look-alikes.
    pub lookalike_level: f32,
    /// Pairs of different people at or above `lookalike_level`, most similar first.
    pub lookalikes: Vec<LookalikePair>,
    /// The configured match threshold, measured on these pairs.
    pub configured: ThresholdPoint,
    /// False matches per comparison aimed at (`--target-far`).
    pub target_far: f64,
    /// Different-person pairs needed to see one false match at `target_far`: with fewer, a rate
    /// that small cannot be measured and no threshold is recommended.
    pub needed_pairs: usize,
    /// The lowest threshold keeping the observed false-match rate at or below `target_far`; None
    /// with fewer than `needed_pairs` different-person pairs.
    pub recommended: Option<ThresholdPoint>,
    /// None without a person with two templates and a second person.
    pub margin: Option<MarginStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenuineStats {
    pub pairs: usize,
    pub min: Option<f32>,
    pub p5: Option<f32>,
    pub median: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpostorStats {
    pub pairs: usize,
    pub median: Option<f32>,
    pub p99: Option<f32>,
    pub p99_9: Option<f32>,
    pub max: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookalikePair {
    pub a: String,
    pub b: String,
    /// Highest similarity over their template pairs.
    pub similarity: f32,
    /// Marked as look-alikes in the gallery (`dolbom enroll --lookalike-of`).
    pub marked: bool,
}

/// Error rates at one threshold, per comparison of two templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdPoint {
    pub threshold: f32,
    /// Different-person pairs at or above the threshold.
    pub false_matches: usize,
    pub far: Option<f64>,
    /// Same-person pairs below it: a photo of an enrolled person not matching another of theirs.
    pub misses: usize,
    pub frr: Option<f64>,
    /// Per-comparison false-match rate the open-set estimate uses: the observed one, or, when no
    /// false match was seen, 3 / pairs (the 95 % upper bound for zero events, "rule of three").
    pub far_for_estimate: Option<f64>,
    pub far_is_upper_bound: bool,
    /// Estimated chance that a stranger is taken for one of N enrolled people, 1 - (1 - far)^N:
    /// an estimate, as it takes the comparisons as independent.
    pub stranger_accepted: Vec<OpenSetEstimate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSetEstimate {
    pub gallery_size: usize,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarginStats {
    /// Templates used as probes (people with at least two templates).
    pub probes: usize,
    /// Own best similarity minus the best other person's; negative when someone else came first.
    pub smallest: f32,
    pub smallest_probe: String,
    pub smallest_runner_up: String,
    /// Probes that resembled another person more than their own other templates.
    pub wrong_person_first: usize,
    /// For each margin: the probes the threshold accepts as the right person that the margin rule
    /// would turn into unknown.
    pub cost: Vec<MarginCost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarginCost {
    pub margin: f32,
    pub lost: usize,
    pub of: usize,
}

/// Measures `subjects` (people without templates are left out) against the configured matcher,
/// recommending a threshold for `target_far` false matches per comparison.
pub fn measure(subjects: &[Subject], matcher: &crate::config::MatcherConfig, target_far: f64) -> Calibration {
    let match_threshold = matcher.threshold;
    let subjects: Vec<&Subject> = subjects.iter().filter(|s| !s.embeddings.is_empty()).collect();
    let level = lookalike_level(matcher);
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    let mut lookalikes = Vec::new();
    for (i, a) in subjects.iter().enumerate() {
        for (k, ea) in a.embeddings.iter().enumerate() {
            genuine.extend(a.embeddings[k + 1..].iter().map(|eb| ea.similarity(eb)));
        }
        for b in &subjects[i + 1..] {
            let pairs: Vec<f32> =
                a.embeddings.iter().flat_map(|ea| b.embeddings.iter().map(|eb| ea.similarity(eb))).collect();
            let best = pairs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if best >= level {
                let marked = a.lookalikes.contains(&b.id) || b.lookalikes.contains(&a.id);
                lookalikes.push(LookalikePair { a: a.id.clone(), b: b.id.clone(), similarity: best, marked });
            }
            impostor.extend(pairs);
        }
    }
    genuine.sort_by(f32::total_cmp);
    impostor.sort_by(f32::total_cmp);
    lookalikes.sort_by(|x, y| y.similarity.total_cmp(&x.similarity).then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b))));
    Calibration {
        people: subjects.len(),
        templates: subjects.iter().map(|s| s.embeddings.len()).sum(),
        genuine: GenuineStats {
            pairs: genuine.len(),
            min: quantile(&genuine, 0.0),
            p5: quantile(&genuine, 0.05),
            median: quantile(&genuine, 0.5),
        },
        impostor: ImpostorStats {
            pairs: impostor.len(),
            median: quantile(&impostor, 0.5),
            p99: quantile(&impostor, 0.99),
            p99_9: quantile(&impostor, 0.999),
            max: quantile(&impostor, 1.0),
        },
        lookalike_level: level,
        lookalikes,
        configured: at_threshold(&genuine, &impostor, match_threshold),
        target_far,
        needed_pairs: needed_pairs(target_far),
        recommended: recommend(&genuine, &impostor, target_far),
        margin: margins(&subjects, match_threshold),
    }
}

/// The value at fraction `p` of a sorted list (nearest rank), None for an empty one.
pub fn quantile(sorted: &[f32], p: f64) -> Option<f32> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last as f64 * p).round() as usize).copied()
}

fn rate(count: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| count as f64 / of as f64)
}

fn at_threshold(genuine: &[f32], impostor: &[f32], threshold: f32) -> ThresholdPoint {
    let n = impostor.len();
    let false_matches = impostor.iter().filter(|s| **s >= threshold).count();
    let misses = genuine.iter().filter(|s| **s < threshold).count();
    let far = rate(false_matches, n);
    let far_is_upper_bound = n > 0 && false_matches == 0;
    let far_for_estimate = if far_is_upper_bound { Some((3.0 / n as f64).min(1.0)) } else { far };
    let stranger_accepted = far_for_estimate
        .map(|far| {
            GALLERY_SIZES
                .iter()
                .map(|&gallery_size| OpenSetEstimate {
                    gallery_size,
                    rate: 1.0 - (1.0 - far).powi(gallery_size as i32),
                })
                .collect()
        })
        .unwrap_or_default();
    ThresholdPoint {
        threshold,
        false_matches,
        far,
        misses,
        frr: rate(misses, genuine.len()),
        far_for_estimate,
        far_is_upper_bound,
        stranger_accepted,
    }
}

/// Different-person pairs among which one false match is `target_far` of them.
pub fn needed_pairs(target_far: f64) -> usize {
    // 1 / 0.001 is 1000.0000000000001 in floating point: not 1001 pairs.
    (1.0 / target_far - 1e-6).ceil().max(1.0) as usize
}

/// The lowest threshold on a 0.01 grid with at most `target_far` of the impostor pairs at or
/// above it: lower thresholds only add false matches, higher ones only add misses. None when
/// there are too few impostor pairs to measure such a rate.
fn recommend(genuine: &[f32], impostor: &[f32], target_far: f64) -> Option<ThresholdPoint> {
    let n = impostor.len();
    if n < needed_pairs(target_far) {
        return None;
    }
    let allowed = (target_far * n as f64).floor() as usize;
    // The highest impostor score that must fall below the threshold.
    let must_reject = *impostor.get(n.checked_sub(allowed + 1)?)?;
    let threshold = (((f64::from(must_reject) * 100.0).floor() + 1.0) / 100.0).clamp(0.01, 1.0) as f32;
    Some(at_threshold(genuine, impostor, threshold))
}

/// Leave-one-out: each template is a probe against everyone's other templates.
fn margins(subjects: &[&Subject], threshold: f32) -> Option<MarginStats> {
    struct Probe {
        own: f32,
        other: f32,
        name: String,
        runner_up: String,
    }
    let mut probes = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for (k, probe) in s.embeddings.iter().enumerate() {
            let own = s
                .embeddings
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, e)| e.similarity(probe))
                .fold(f32::NEG_INFINITY, f32::max);
            let other = subjects
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| (o, o.embeddings.iter().map(|e| e.similarity(probe)).fold(f32::NEG_INFINITY, f32::max)))
                .max_by(|x, y| x.1.total_cmp(&y.1));
            if let (true, Some((o, other))) = (own.is_finite(), other) {
                probes.push(Probe { own, other, name: format!("{} #{}", s.id, k + 1), runner_up: o.id.clone() });
            }
        }
    }
    let worst = probes.iter().min_by(|x, y| (x.own - x.other).total_cmp(&(y.own - y.other)))?;
    let recognised: Vec<&Probe> = probes.iter().filter(|p| p.own >= threshold && p.own > p.other).collect();
    Some(MarginStats {
        probes: probes.len(),
        smallest: worst.own - worst.other,
        smallest_probe: worst.name.clone(),
        smallest_runner_up: worst.runner_up.clone(),
        wrong_person_first: probes.iter().filter(|p| p.other >= p.own).count(),
        cost: MARGINS
            .iter()
            .map(|&margin| MarginCost {
                margin,
                lost: recognised.iter().filter(|p| p.own - p.other < margin).count(),
                of: recognised.len(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector at `deg` degrees in the plane of axes 0 and `axis`: the cosine of two of them
    /// on the same axis is the cosine of their angle difference.
    fn at(axis: usize, deg: f32) -> Embedding {
        let mut v = vec![0.0; 4];
        v[0] = deg.to_radians().cos();
        v[axis] = deg.to_radians().sin();
        Embedding::normalized(v).expect("non-zero")
    }

    fn subject(id: &str, embeddings: Vec<Embedding>, lookalikes: &[&str]) -> Subject {
        Subject { id: id.into(), embeddings, lookalikes: lookalikes.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        let v: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        assert_eq!(quantile(&v, 0.0), Some(0.0));
        assert_eq!(quantile(&v, 0.05), Some(5.0));
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
    }

    #[test]
    fn pairs_distributions_and_lookalikes() {
        // a and b share axis 1 and are 60° apart at best (cos 0.5); c is on its own axis.
        let subjects = [
            subject("a", vec![at(1, 0.0), at(1, 10.0)], &["b"]),
            subject("b", vec![at(1, 70.0), at(1, 80.0), at(1, 90.0)], &[]),
            subject("c", vec![at(2, 90.0)], &[]),
            subject("nobody", vec![], &[]),
        ];
        let c = measure(&subjects, &crate::config::MatcherConfig::default(), 0.001);
        assert_eq!((c.people, c.templates), (3, 6));
        assert_eq!(c.genuine.pairs, 1 + 3);
        assert_eq!(c.impostor.pairs, 2 * 3 + 2 + 3);
        let min = c.genuine.min.expect("min");
        assert!((min - 20f32.to_radians().cos()).abs() < 1e-5, "{min}");
        assert!(c.genuine.min <= c.genuine.p5 && c.genuine.p5 <= c.genuine.median);
        let max = c.impostor.max.expect("max");
        assert!((max - 0.5).abs() < 1e-5, "{max}");
        assert!(c.impostor.median <= c.impostor.p99 && c.impostor.p99 <= c.impostor.p99_9);
        assert_eq!(c.lookalike_level, 0.35);
        assert_eq!(c.lookalikes.len(), 1, "{:?}", c.lookalikes);
        let pair = &c.lookalikes[0];
        assert_eq!((pair.a.as_str(), pair.b.as_str(), pair.marked), ("a", "b", true));
        // c is orthogonal to everyone else (similarity 0): no look-alike.
        assert_eq!(c.configured.false_matches, 1, "a#1-b#1 at 0.5 >= 0.40");
    }

    #[test]
    fn lookalike_pairs_come_most_similar_first() {
        let subjects = [
            subject("x", vec![at(1, 0.0)], &[]),
            subject("y", vec![at(1, 60.0)], &[]),
            subject("z", vec![at(1, 30.0)], &[]),
        ];
        let c = measure(&subjects, &crate::config::MatcherConfig::default(), 0.001);
        let order: Vec<(&str, &str)> = c.lookalikes.iter().map(|p| (p.a.as_str(), p.b.as_str())).collect();
        assert_eq!(order, [("x", "z"), ("y", "z"), ("x", "y")]);
        assert!(c.lookalikes.iter().all(|p| !p.marked));
    }

    #[test]
    fn recommended_threshold_rejects_all_but_the_allowed_impostors() {
        let genuine: Vec<f32> = (40..100).map(|i| i as f32 / 100.0).collect();
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 2000.0).collect(); // 0 .. 0.4995
                                                                                 // 2 % of 1000 allows 20 at or above: 0.4895 must fall below, so 0.49 on the grid.
        let r = recommend(&genuine, &impostor, 0.02).expect("enough pairs");
        assert_eq!(r.threshold, 0.49);
        assert_eq!(r.false_matches, 20);
        assert_eq!(r.far, Some(0.02));
        assert!(!r.far_is_upper_bound);
        assert_eq!(r.misses, 9, "genuine 0.40 .. 0.48 fall below 0.49");
        // 1 in 1000 allows 1 (0.4995), but the grid point above the next one (0.499) clears it too.
        let strict = recommend(&genuine, &impostor, 0.001).expect("exactly enough pairs");
        assert_eq!((strict.threshold, strict.false_matches), (0.5, 0));
        assert!(strict.far_is_upper_bound && (strict.far_for_estimate.expect("bound") - 0.003).abs() < 1e-12);
        let ten = &strict.stranger_accepted[0];
        assert_eq!(ten.gallery_size, 10);
        assert!((ten.rate - (1.0 - 0.997f64.powi(10))).abs() < 1e-12);
        // 1000 pairs cannot show 1 in 2000; no pairs show nothing.
        assert_eq!(needed_pairs(0.001), 1000);
        assert_eq!(needed_pairs(0.0005), 2000);
        assert!(recommend(&genuine, &impostor, 0.0005).is_none());
        assert!(recommend(&genuine, &[], 0.5).is_none());
    }

    #[test]
    fn margin_is_own_best_minus_the_best_other_person() {
        // p's templates are 20° apart, q's 60°; q's first sits 10° from p's second: for both of
        // those the other person comes first, worst for q #1 (own 60° away, p 10° away).
        let subjects =
            [subject("p", vec![at(1, 0.0), at(1, 20.0)], &[]), subject("q", vec![at(1, 30.0), at(1, 90.0)], &[])];
        let m = measure(&subjects, &crate::config::MatcherConfig::default(), 0.001).margin.expect("margins");
        assert_eq!(m.probes, 4);
        let expected = 60f32.to_radians().cos() - 10f32.to_radians().cos();
        assert!((m.smallest - expected).abs() < 1e-5, "{}", m.smallest);
        assert_eq!((m.smallest_probe.as_str(), m.smallest_runner_up.as_str()), ("q #1", "p"));
        assert_eq!(m.wrong_person_first, 2);
        // Recognised (own ≥ 0.40 and first): p #1 (margin cos20 - cos30 ≈ 0.074) and q #2 (≈ 0.158).
        assert_eq!(m.cost.iter().map(|c| (c.lost, c.of)).collect::<Vec<_>>(), [(0, 2), (0, 2), (1, 2)]);
        assert!(
            measure(&subjects[..1], &crate::config::MatcherConfig::default(), 0.001).margin.is_none(),
            "nobody to be second"
        );
    }

    #[test]
    fn the_same_photo_twice_is_one_template() {
        let mut s = Subject::default();
        assert!(s.add(at(1, 0.0)));
        assert!(!s.add(at(1, 0.1)));
        assert!(s.add(at(1, 20.0)));
        assert_eq!(s.embeddings.len(), 2);
    }
}
