//! `dolbom calibrate thermal`: the camera-to-thermal transform from point pairs.
//! `dolbom calibrate faces`: what the center's own faces say about the match threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_face::calibrate::{self, Calibration, PhotoCounts, Report, Subject, ThresholdPoint};
use dolbom_face::gallery::printable;
use dolbom_face::image::load_bgr;
use dolbom_kiosk::config::Config;

/// Camera pixel coordinates a point may have: image sizes up to 16K.
const CAMERA_MAX_PX: f64 = 16_384.0;
/// Thermal pixel coordinates: arrays up to 1024 wide (the MLX90640 is 32x24).
const THERMAL_MAX_PX: f64 = 1_024.0;

pub fn thermal(pairs: Vec<String>) -> Result<ExitCode> {
    let pairs = pairs.iter().map(|p| parse_pair(p)).collect::<Result<Vec<_>>>()?;
    let m = dolbom_kiosk::screening::fusion::fit_affine(&pairs).map_err(anyhow::Error::msg)?;
    // Points that are finite and in range can still fit a degenerate transform (rounding).
    let [a, b, _, d, e, _] = m;
    anyhow::ensure!(
        m.iter().all(|v| v.is_finite()) && (a * e - b * d).abs() >= 1e-9,
        "these points do not give an invertible transform; use points spread over the view"
    );
    let residual = dolbom_kiosk::screening::fusion::rms_error(&m, &pairs);
    outln!("# fitted from {} point pairs; RMS error {residual:.2} thermal pixels", pairs.len())?;
    outln!("calibration = [{:.6}, {:.6}, {:.4}, {:.6}, {:.6}, {:.4}]", m[0], m[1], m[2], m[3], m[4], m[5])?;
    Ok(ExitCode::SUCCESS)
}

/// `dolbom calibrate thermal --blackbody SET_C=READ_C ...`: the sensor's gain and offset.
pub fn blackbody(readings: Vec<String>) -> Result<ExitCode> {
    use dolbom_kiosk::sources::thermal::correction::{fit, parse_reading};
    let readings =
        readings.iter().map(|r| parse_reading(r)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let c = fit(&readings).map_err(anyhow::Error::msg)?;
    outln!(
        "# fitted from {} blackbody readings at {} set point(s); RMS residual {:.2} degC{}",
        readings.len(),
        c.set_points,
        c.rms_c,
        if c.set_points == 1 { " (one set point: offset only)" } else { "" }
    )?;
    outln!("[thermal]")?;
    outln!("gain = {:.4}", c.gain)?;
    outln!("offset_c = {:.3}", c.offset_c)?;
    Ok(ExitCode::SUCCESS)
}

fn parse_pair(s: &str) -> Result<([f64; 2], [f64; 2])> {
    let bad = || anyhow::anyhow!("`{s}` is not CAMERA_X,CAMERA_Y=THERMAL_X,THERMAL_Y");
    let (a, b) = s.split_once('=').ok_or_else(bad)?;
    let xy = |t: &str, what: &str, max: f64| -> Result<[f64; 2]> {
        let (x, y) = t.split_once(',').ok_or_else(bad)?;
        let coord = |v: &str| -> Result<f64> {
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            // `NaN` and `inf` parse as numbers; no point is there.
            anyhow::ensure!(
                v.is_finite() && (0.0..=max).contains(&v),
                "`{s}`: {what} coordinate {v} must be a number from 0 to {max} pixels"
            );
            Ok(v)
        };
        Ok([coord(x)?, coord(y)?])
    };
    Ok((xy(a, "camera", CAMERA_MAX_PX)?, xy(b, "thermal", THERMAL_MAX_PX)?))
}

pub fn faces(config: PathBuf, photo_dirs: Vec<PathBuf>, target_far: f64, json: bool) -> Result<ExitCode> {
    anyhow::ensure!(
        target_far > 0.0 && target_far < 1.0,
        "--target-far = {target_far}: must be between 0 and 1 (exclusive), e.g. 0.001 for 1 in 1000"
    );
    let config = Config::load(&config)?;
    let gallery = config.gallery.store().load()?;
    let mut subjects: BTreeMap<String, Subject> = BTreeMap::new();
    for p in &gallery.people {
        let s = subjects.entry(p.id.clone()).or_insert_with(|| Subject { id: p.id.clone(), ..Subject::default() });
        s.embeddings.extend(p.embeddings.iter().cloned());
        s.lookalikes.extend(p.lookalikes.iter().cloned());
    }
    let mut counts = PhotoCounts::default();
    if !photo_dirs.is_empty() {
        let mut pipeline = super::face::pipeline(&config)?;
        gallery.check_embedder(pipeline.models.embedder.model_id())?;
        for dir in &photo_dirs {
            for person_dir in sorted_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
                let id = person_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for photo in sorted_entries(&person_dir)?.into_iter().filter(|p| p.is_file()) {
                    let faces = match load_bgr(&photo)
                        .map_err(anyhow::Error::from)
                        .and_then(|img| pipeline.analyze(&img).map_err(anyhow::Error::from))
                    {
                        Ok(faces) => faces,
                        Err(e) => {
                            tracing::warn!("{}: skipped: {e:#}", photo.display());
                            counts.unreadable += 1;
                            continue;
                        }
                    };
                    match faces.len() {
                        0 => counts.no_face += 1,
                        1 => {
                            let s = subjects
                                .entry(id.clone())
                                .or_insert_with(|| Subject { id: id.clone(), ..Subject::default() });
                            let added = faces.into_iter().next().is_some_and(|f| s.add(f.embedding));
                            if added {
                                counts.used += 1;
                            } else {
                                counts.duplicate += 1;
                            }
                        }
                        _ => counts.several_faces += 1,
                    }
                }
            }
        }
    }
    let subjects: Vec<Subject> = subjects.into_values().collect();
    let result = calibrate::measure(&subjects, &config.face.matcher, target_far);
    if json {
        let report = Report { calibration: result, photos: counts };
        outln!("{}", serde_json::to_string_pretty(&report).context("serialising the calibration")?)?;
    } else {
        print_text(&result, &counts, !photo_dirs.is_empty())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    v.sort();
    Ok(v)
}

fn f(v: Option<f32>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 0.1 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

/// What one threshold means, in the words of the integrator's question.
fn print_point(t: &ThresholdPoint, c: &Calibration) -> std::io::Result<()> {
    let (th, g, n) = (t.threshold, c.genuine.pairs, c.impostor.pairs);
    if let Some(frr) = t.frr {
        let in100 = (frr * 100.0).round();
        outln!(
            "  at {th:.2}: about {in100} in 100 of your enrolled people's own photos would not match on a single \
             frame ({} of {g} same-person pairs below it)",
            t.misses
        )?;
        outln!(
            "  {th:.2}에서: 등록된 아이 본인 사진 100장 중 약 {in100}장은 한 프레임에서 일치하지 않습니다 (같은 사람 \
             쌍 {g}개 중 {}개가 미달)",
            t.misses
        )?;
    }
    if t.far_is_upper_bound {
        let bound = pct(t.far_for_estimate.unwrap_or(1.0));
        outln!("  no different-person pair reached {th:.2}; with {n} pairs the rate is only known to be below about {bound}")?;
        outln!(
            "  {th:.2} 이상인 다른 사람 쌍은 없었습니다. 쌍 {n}개로는 비율이 약 {bound} 미만이라는 것만 알 수 있습니다"
        )?;
    } else if let Some(far) = t.far {
        outln!("  {} of {n} different-person pairs reach {th:.2} ({})", t.false_matches, pct(far))?;
        outln!("  다른 사람 쌍 {n}개 중 {}개가 {th:.2} 이상 ({})", t.false_matches, pct(far))?;
    }
    if !t.stranger_accepted.is_empty() {
        let est: Vec<String> =
            t.stranger_accepted.iter().map(|e| format!("{} people: {}", e.gallery_size, pct(e.rate))).collect();
        let est_ko: Vec<String> =
            t.stranger_accepted.iter().map(|e| format!("{}명: {}", e.gallery_size, pct(e.rate))).collect();
        let bound = if t.far_is_upper_bound { "at most " } else { "" };
        let bound_ko = if t.far_is_upper_bound { "최대 " } else { "" };
        outln!(
            "  estimate: a stranger compared with the enrolled people is accepted as one of them {bound}about {} \
             of the time (1-(1-rate)^N, comparisons taken as independent)",
            est.join(", ")
        )?;
        outln!(
            "  추정: 모르는 사람이 등록된 사람들과 비교되어 그중 한 명으로 인식될 확률 {bound_ko}약 {} \
             (1-(1-비율)^N, 비교가 서로 독립이라고 가정)",
            est_ko.join(", ")
        )?;
    }
    Ok(())
}

fn print_text(c: &Calibration, counts: &PhotoCounts, photos: bool) -> std::io::Result<()> {
    outln!(
        "people {}, face templates {}, same-person pairs {}, different-person pairs {}",
        c.people,
        c.templates,
        c.genuine.pairs,
        c.impostor.pairs
    )?;
    outln!(
        "사람 {}명, 얼굴 템플릿 {}개, 같은 사람 쌍 {}개, 다른 사람 쌍 {}개",
        c.people,
        c.templates,
        c.genuine.pairs,
        c.impostor.pairs
    )?;
    if photos {
        let PhotoCounts { used, no_face, several_faces, unreadable, duplicate } = counts;
        outln!(
            "photos: {used} used; skipped {no_face} without a face, {several_faces} with several faces, \
             {unreadable} unreadable, {duplicate} already in the gallery"
        )?;
        outln!(
            "사진: {used}장 사용; 얼굴 없음 {no_face}장, 여러 얼굴 {several_faces}장, 읽을 수 없음 {unreadable}장, \
             이미 등록됨 {duplicate}장은 건너뜀"
        )?;
    }
    outln!()?;
    let g = &c.genuine;
    outln!("same person (genuine):      min {}  p5 {}  median {}", f(g.min), f(g.p5), f(g.median))?;
    outln!("같은 사람끼리 유사도:        최소 {}  하위 5% {}  중앙값 {}", f(g.min), f(g.p5), f(g.median))?;
    let i = &c.impostor;
    outln!(
        "different people (impostor): median {}  p99 {}  p99.9 {}  max {}",
        f(i.median),
        f(i.p99),
        f(i.p99_9),
        f(i.max)
    )?;
    outln!(
        "다른 사람끼리 유사도:        중앙값 {}  상위 1% {}  상위 0.1% {}  최대 {}",
        f(i.median),
        f(i.p99),
        f(i.p99_9),
        f(i.max)
    )?;
    outln!()?;
    let level = c.lookalike_level;
    if c.lookalikes.is_empty() {
        outln!("look-alike pairs (different people at similarity {level:.2} or more): none")?;
        outln!("닮은꼴 (유사도 {level:.2} 이상인 다른 사람): 없음")?;
    } else {
        outln!("look-alike pairs (different people at similarity {level:.2} or more), most alike first:")?;
        outln!("닮은꼴 (유사도 {level:.2} 이상인 다른 사람), 가장 닮은 순:")?;
        for p in &c.lookalikes {
            let mark = if p.marked {
                "marked / 닮은꼴 표시됨"
            } else {
                "NOT marked (enroll --lookalike-of) / 표시 안 됨"
            };
            outln!("  {:.3}  {} - {}  {mark}", p.similarity, printable(&p.a), printable(&p.b))?;
        }
    }
    outln!()?;
    let th = c.configured.threshold;
    outln!("configured face.matcher.threshold: {th:.2} / 설정된 임계값 (face.matcher.threshold): {th:.2}")?;
    print_point(&c.configured, c)?;
    outln!()?;
    let target = pct(c.target_far);
    match &c.recommended {
        None => {
            outln!(
                "recommended threshold for {target} false matches per comparison (--target-far {}): none; {} \
                 different-person pairs cannot show a rate that small (at least {} are needed): enrol more people \
                 or add --photos",
                c.target_far,
                c.impostor.pairs,
                c.needed_pairs
            )?;
            outln!(
                "비교 1회당 오인식 {target} (--target-far {})를 위한 권장 임계값: 없음. 다른 사람 쌍 {}개로는 그렇게 \
                 작은 비율을 잴 수 없습니다 (최소 {}개 필요). 사람을 더 등록하거나 --photos를 추가하세요",
                c.target_far,
                c.impostor.pairs,
                c.needed_pairs
            )?;
        }
        Some(r) => {
            let th = r.threshold;
            outln!(
                "recommended threshold for at most {target} false matches per comparison (--target-far {}): {th:.2}",
                c.target_far
            )?;
            outln!("비교 1회당 오인식 {target} 이하를 위한 권장 임계값 (--target-far {}): {th:.2}", c.target_far)?;
            print_point(r, c)?;
        }
    }
    outln!()?;
    match &c.margin {
        None => {
            outln!("margin: needs a person with two or more templates and someone else")?;
            outln!("차이: 템플릿이 두 개 이상인 사람과 다른 한 사람 이상이 필요합니다")?;
        }
        Some(m) => {
            let (probe, runner) = (printable(&m.smallest_probe), printable(&m.smallest_runner_up));
            outln!(
                "margin (leave-one-out: each template against the rest, own best minus best other person), {} probes:",
                m.probes
            )?;
            outln!(
                "차이 (각 템플릿을 나머지와 비교: 본인 최고 유사도 - 다른 사람 최고 유사도), 프로브 {}개:",
                m.probes
            )?;
            outln!("  smallest {:.3}: {probe} against {runner}", m.smallest)?;
            outln!("  최소 {:.3}: {probe} 대 {runner}", m.smallest)?;
            outln!("  another person came first for {} probe(s)", m.wrong_person_first)?;
            outln!("  다른 사람이 더 닮게 나온 프로브: {}개", m.wrong_person_first)?;
            for cost in &m.cost {
                outln!(
                    "  a margin rule of {:.2} would turn {} of {} recognised probes into unknown",
                    cost.margin,
                    cost.lost,
                    cost.of
                )?;
                outln!(
                    "  차이 기준 {:.2}: 인식된 프로브 {}개 중 {}개가 미확인이 됩니다",
                    cost.margin,
                    cost.of,
                    cost.lost
                )?;
            }
        }
    }
    Ok(())
}
