//! The day's air as an inline SVG line (drawn on the server: no script library on the page).

use crate::lang::esc;

const W: f64 = 600.0;
const H: f64 = 160.0;
const PAD: f64 = 24.0;

/// One series over the day `[start_ms, start_ms + 24 h)`: `points` are (ms, value). An empty
/// series draws the axes only.
pub fn day_svg(id: &str, label: &str, unit: &str, start_ms: i64, points: &[(i64, f32)]) -> String {
    let day = 24.0 * 3600.0 * 1000.0;
    let (lo, hi) = points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
    let (lo, hi) = if points.is_empty() {
        (0.0, 1.0)
    } else if hi - lo < 1.0 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let x = |ms: i64| PAD + ((ms - start_ms) as f64 / day).clamp(0.0, 1.0) * (W - 2.0 * PAD);
    let y = |v: f32| H - PAD - f64::from((v - lo) / (hi - lo)) * (H - 2.0 * PAD);
    let line: Vec<String> = points.iter().map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v))).collect();
    let mut ticks = String::new();
    for h in [0, 6, 12, 18, 24] {
        let tx = PAD + f64::from(h) / 24.0 * (W - 2.0 * PAD);
        ticks.push_str(&format!(
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{tx:.1}\" y=\"{:.1}\" class=\"tick\">{h:02}</text>",
            PAD,
            H - PAD,
            H - 6.0
        ));
    }
    format!(
        "<svg id=\"{}\" class=\"plot\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">{ticks}\
         <text x=\"{PAD}\" y=\"14\" class=\"label\">{} ({}) {:.0}–{:.0}</text>\
         <polyline fill=\"none\" class=\"series\" points=\"{}\"/></svg>",
        esc(id),
        esc(label),
        esc(label),
        esc(unit),
        lo,
        hi,
        line.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fall_inside_the_frame_and_the_label_is_escaped() {
        let svg = day_svg("co2", "CO2 <ppm>", "ppm", 0, &[(0, 400.0), (12 * 3600 * 1000, 900.0), (-5, 10.0)]);
        assert!(svg.contains("CO2 &lt;ppm&gt;"));
        let pts = svg.split("points=\"").nth(1).and_then(|s| s.split('"').next()).expect("points");
        for p in pts.split(' ') {
            let (x, y) = p.split_once(',').expect("x,y");
            let (x, y): (f64, f64) = (x.parse().expect("x"), y.parse().expect("y"));
            assert!((0.0..=W).contains(&x) && (0.0..=H).contains(&y), "{p}");
        }
        assert!(day_svg("e", "empty", "", 0, &[]).contains("points=\"\""));
    }
}
