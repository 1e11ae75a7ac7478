//! `GET /air`: the air indoors and outdoors now (the doors' `telemetry/air`), today's curves as
//! inline SVG, and today's limit crossings (`event/air`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use dolbom_contract::{AirEventState, AirTelemetry, DustReading, Reading};
use jiff::Timestamp;

use super::trouble;
use crate::center::attendance::hhmm;
use crate::center::plot::day_svg;
use crate::lang::{esc, Lang};
use crate::web::layout::page as layout;
use crate::web::{App, Staff};

fn value(r: &Option<Reading>, unit: &str) -> String {
    r.as_ref().map(|r| format!("{:.0} {unit}", r.value)).unwrap_or_else(|| "—".into())
}

fn dust(r: &Option<DustReading>, lang: Lang) -> String {
    r.as_ref()
        .map(|r| format!("{:.0} µg/m³ ({})", r.value, lang.t(&r.grade.ko, &r.grade.en)))
        .unwrap_or_else(|| "—".into())
}

pub async fn page(staff: Staff, State(app): State<App>) -> Response {
    let store = &app.center.store;
    let today = store.today();
    let (latest, samples, events) = match (store.air_latest(), store.air_day(&today), store.air_events(&today)) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return trouble(&staff, e),
    };
    let l = staff.lang;
    let title = l.t("공기", "Air");
    let Some(now) = latest else {
        let body = format!(
            "<p id=\"no-air\">{}</p>",
            l.t(
                "공기 센서가 없습니다 (키오스크가 공기 정보를 보내지 않았습니다).",
                "No air sensor (no kiosk has sent air readings)."
            )
        );
        return layout(&staff, title, "air", &body).into_response();
    };
    let row = |k: &str, v: String| format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    let i = &now.indoor;
    let o = &now.outdoor;
    let indoor = [
        row(l.t("초미세먼지 PM2.5", "Fine dust PM2.5"), dust(&i.pm25, l)),
        row(l.t("미세먼지 PM10", "Dust PM10"), dust(&i.pm10, l)),
        row(l.t("이산화탄소", "CO2"), value(&i.co2_ppm, "ppm")),
        row(l.t("온도", "Temperature"), value(&i.temperature_c, "°C")),
        row(l.t("습도", "Humidity"), value(&i.humidity_pct, "%")),
    ]
    .concat();
    let outdoor = [
        row(l.t("초미세먼지 PM2.5", "Fine dust PM2.5"), dust(&o.pm25, l)),
        row(l.t("미세먼지 PM10", "Dust PM10"), dust(&o.pm10, l)),
        row(l.t("온도", "Temperature"), value(&o.temperature_c, "°C")),
        row(l.t("습도", "Humidity"), value(&o.humidity_pct, "%")),
    ]
    .concat();
    let start = jiff::civil::Date::strptime("%Y-%m-%d", &today)
        .ok()
        .and_then(|d| store.tz().to_timestamp(d.to_datetime(jiff::civil::Time::midnight())).ok())
        .map(|t| t.as_millisecond())
        .unwrap_or(0);
    let series = |f: &dyn Fn(&AirTelemetry) -> Option<f32>| -> Vec<(i64, f32)> {
        samples.iter().filter_map(|s| Some((s.ts.parse::<Timestamp>().ok()?.as_millisecond(), f(s)?))).collect()
    };
    let plots = [
        day_svg(
            "plot-pm25",
            l.t("초미세먼지", "PM2.5"),
            "µg/m³",
            start,
            &series(&|s| s.indoor.pm25.as_ref().map(|r| r.value)),
        ),
        day_svg(
            "plot-co2",
            l.t("이산화탄소", "CO2"),
            "ppm",
            start,
            &series(&|s| s.indoor.co2_ppm.as_ref().map(|r| r.value)),
        ),
        day_svg(
            "plot-temperature",
            l.t("실내 온도", "Indoor temperature"),
            "°C",
            start,
            &series(&|s| s.indoor.temperature_c.as_ref().map(|r| r.value)),
        ),
    ]
    .concat();
    let crossings: String = events
        .iter()
        .map(|e| {
            let what = match e.state {
                AirEventState::Exceeded => l.t("기준 초과", "over the limit"),
                AirEventState::Recovered => l.t("회복", "recovered"),
            };
            format!(
                "<li class=\"air-event\">{} {} {} ({:.0} {}): {}</li>",
                esc(&e.ts.parse::<Timestamp>().map(|t| hhmm(t.as_millisecond(), store.tz())).unwrap_or_default()),
                esc(l.t(e.pollutant.label_ko(), e.pollutant.label_en())),
                esc(what),
                e.value,
                esc(&e.unit),
                esc(l.t(&e.recommendation.ko, &e.recommendation.en)),
            )
        })
        .collect();
    let body = format!(
        "<p class=\"note\">{} {} · {}</p><section id=\"indoor\"><h2>{}</h2><table>{indoor}</table></section>\
         <section id=\"outdoor\"><h2>{}</h2><table>{outdoor}</table></section>\
         <section id=\"today\"><h2>{}</h2>{plots}<ul>{crossings}</ul></section>",
        l.t("키오스크", "Kiosk"),
        esc(&now.kiosk),
        esc(&now.ts.parse::<Timestamp>().map(|t| hhmm(t.as_millisecond(), store.tz())).unwrap_or_default()),
        l.t("실내", "Indoors"),
        l.t("실외", "Outdoors"),
        l.t("오늘", "Today"),
    );
    layout(&staff, title, "air", &body).into_response()
}
