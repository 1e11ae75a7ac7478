//! What to tell the staff when an indoor value crosses its limit: open the windows when the air
//! outside is better, keep them closed and run the purifier when it is worse, and say so when
//! nobody knows what the air outside is like.

use dolbom_contract::{AirEventState, DustGrade, Pollutant, Recommendation, RecommendationCode};

/// The outdoor dust as fresh enough to decide on (stale values are passed as `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutdoorDustNow {
    pub pm10: Option<f32>,
    pub pm25: Option<f32>,
}

impl OutdoorDustNow {
    /// The worse of the two grades; `None` when neither is known.
    fn grade(&self) -> Option<DustGrade> {
        let pm10 = self.pm10.and_then(DustGrade::pm10);
        let pm25 = self.pm25.and_then(DustGrade::pm25);
        pm10.max(pm25)
    }

    fn value(&self, p: Pollutant) -> Option<f32> {
        match p {
            Pollutant::Pm10 => self.pm10,
            Pollutant::Pm25 => self.pm25,
            Pollutant::Co2 | Pollutant::Hcho => None,
        }
    }
}

/// The advice for one transition of `pollutant` at `indoor` (its value now).
pub fn recommend(pollutant: Pollutant, state: AirEventState, indoor: f32, outdoor: OutdoorDustNow) -> Recommendation {
    if state == AirEventState::Recovered {
        return text(RecommendationCode::None, pollutant);
    }
    let Some(grade) = outdoor.grade() else {
        return text(RecommendationCode::OutdoorUnknown, pollutant);
    };
    let outdoor_clean = grade <= DustGrade::Moderate;
    let code = match pollutant {
        // Dust: outside must be acceptable and lower than inside, else windows only let more in.
        Pollutant::Pm10 | Pollutant::Pm25 => match outdoor.value(pollutant) {
            Some(out) if outdoor_clean && out < indoor => RecommendationCode::Ventilate,
            Some(_) => RecommendationCode::CloseWindowsRunPurifier,
            // The other size is known but not this one: decide on the grade alone.
            None if outdoor_clean => RecommendationCode::Ventilate,
            None => RecommendationCode::CloseWindowsRunPurifier,
        },
        // Gases: only fresh air helps; with bad dust outside, air out briefly.
        Pollutant::Co2 | Pollutant::Hcho if outdoor_clean => RecommendationCode::Ventilate,
        Pollutant::Co2 | Pollutant::Hcho => RecommendationCode::VentilateBriefly,
    };
    text(code, pollutant)
}

fn text(code: RecommendationCode, p: Pollutant) -> Recommendation {
    let (ko, en) = (p.label_ko(), p.label_en());
    let (ko, en) = match code {
        RecommendationCode::Ventilate => (
            format!("실내 {ko} 기준 초과: 바깥 공기가 더 깨끗하니 창문을 열어 환기하세요."),
            format!("Indoor {en} above the limit: the air outside is cleaner, open the windows to ventilate."),
        ),
        RecommendationCode::VentilateBriefly => (
            format!("실내 {ko} 기준 초과: 바깥 미세먼지가 나쁘니 짧게(5~10분) 환기한 뒤 창문을 닫고 공기청정기를 켜세요."),
            format!("Indoor {en} above the limit: outdoor dust is bad, ventilate briefly (5-10 min), then close the windows and run the air purifier."),
        ),
        RecommendationCode::CloseWindowsRunPurifier => (
            format!("실내 {ko} 기준 초과: 바깥 공기가 더 나쁘니 창문을 닫고 공기청정기를 켜세요."),
            format!("Indoor {en} above the limit: the air outside is worse, keep the windows closed and run the air purifier."),
        ),
        RecommendationCode::OutdoorUnknown => (
            format!("실내 {ko} 기준 초과: 바깥 공기 정보가 없습니다. 창문을 열기 전에 바깥 미세먼지를 확인하세요."),
            format!("Indoor {en} above the limit: outdoor air is unknown; check outdoor dust before opening the windows."),
        ),
        RecommendationCode::None => (
            format!("실내 {ko}가 기준 이내로 돌아왔습니다."),
            format!("Indoor {en} is back within the limit."),
        ),
    };
    Recommendation { code, ko, en }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AirEventState::{Exceeded, Recovered};
    use Pollutant::*;
    use RecommendationCode as R;

    fn out(pm10: Option<f32>, pm25: Option<f32>) -> OutdoorDustNow {
        OutdoorDustNow { pm10, pm25 }
    }

    #[test]
    fn the_table() {
        let cases = [
            // Dust inside, cleaner outside: open up.
            (Pm25, Exceeded, 50.0, out(Some(25.0), Some(10.0)), R::Ventilate),
            (Pm10, Exceeded, 90.0, out(Some(40.0), Some(20.0)), R::Ventilate),
            // Outside moderate but dirtier than inside for this size: keep closed.
            (Pm25, Exceeded, 36.0, out(Some(40.0), Some(38.0)), R::CloseWindowsRunPurifier),
            // Outside bad (on either size): keep closed.
            (Pm25, Exceeded, 80.0, out(Some(100.0), Some(30.0)), R::CloseWindowsRunPurifier),
            (Pm10, Exceeded, 200.0, out(Some(170.0), Some(90.0)), R::CloseWindowsRunPurifier),
            // Only the other size known outside.
            (Pm25, Exceeded, 50.0, out(Some(20.0), None), R::Ventilate),
            (Pm25, Exceeded, 50.0, out(Some(120.0), None), R::CloseWindowsRunPurifier),
            // CO2 and formaldehyde: fresh air, briefly when the dust outside is bad.
            (Co2, Exceeded, 1400.0, out(Some(60.0), Some(30.0)), R::Ventilate),
            (Co2, Exceeded, 1400.0, out(Some(60.0), Some(50.0)), R::VentilateBriefly),
            (Hcho, Exceeded, 120.0, out(None, Some(5.0)), R::Ventilate),
            // Unknown outside: say so.
            (Co2, Exceeded, 1400.0, out(None, None), R::OutdoorUnknown),
            (Pm25, Exceeded, 50.0, out(None, Some(f32::NAN)), R::OutdoorUnknown),
            // Recovered: nothing to do, whatever outside is.
            (Pm25, Recovered, 20.0, out(Some(200.0), Some(100.0)), R::None),
            (Co2, Recovered, 800.0, out(None, None), R::None),
        ];
        for (p, state, indoor, outdoor, want) in cases {
            let r = recommend(p, state, indoor, outdoor);
            assert_eq!(r.code, want, "{p:?} {state:?} {indoor} {outdoor:?}");
        }
    }

    #[test]
    fn every_advice_is_in_korean_and_english_and_names_the_pollutant() {
        for code in [R::Ventilate, R::VentilateBriefly, R::CloseWindowsRunPurifier, R::OutdoorUnknown, R::None] {
            for p in Pollutant::ALL {
                let r = text(code, p);
                assert!(r.ko.contains(p.label_ko()) && r.en.contains(p.label_en()), "{r:?}");
                assert!(r.ko.chars().any(|c| ('가'..='힣').contains(&c)), "{r:?}");
                assert!(r.en.is_ascii(), "{r:?}");
            }
        }
    }
}
