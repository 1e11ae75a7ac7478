//! What the door screen says, Korean first with English beside it. Honest words only: a
//! temperature is "normal", "measure again" or "please see a teacher", never a diagnosis.

use serde::Serialize;

use dolbom_contract::{AttendanceKind, Role, TemperatureStatus};

/// One message in both languages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub ko: String,
    pub en: String,
}

impl Line {
    fn new(ko: impl Into<String>, en: impl Into<String>) -> Self {
        Self { ko: ko.into(), en: en.into() }
    }
}

pub fn welcome() -> Line {
    Line::new("어서 오세요", "Welcome")
}

pub fn come_closer() -> Line {
    Line::new("조금 더 가까이 와서 카메라를 봐 주세요", "Come a little closer and look at the camera")
}

pub fn measuring() -> Line {
    Line::new("잠깐 가만히 서 있어 주세요. 체온을 재고 있어요", "Please stand still, measuring your temperature")
}

pub fn visitor() -> Line {
    Line::new("선생님을 기다려 주세요", "Please wait for a teacher")
}

/// "김민지 어린이, 안녕하세요!" for a child, "김민지님, 안녕하세요!" for an adult; the goodbye
/// on a departure.
pub fn greeting(name: &str, role: Role, kind: AttendanceKind) -> Line {
    let honorific = match role {
        Role::Child => " 어린이",
        Role::Guardian | Role::Staff => "님",
    };
    match kind {
        AttendanceKind::Arrival => Line::new(format!("{name}{honorific}, 안녕하세요!"), format!("Hello, {name}!")),
        AttendanceKind::Departure => {
            Line::new(format!("{name}{honorific}, 안녕히 가세요!"), format!("Goodbye, {name}!"))
        }
    }
}

/// What the temperature means for the person at the door; None when nothing is worth saying
/// (screening off, a tag or PIN check-in).
pub fn temperature(status: TemperatureStatus, celsius: Option<f32>) -> Option<Line> {
    use TemperatureStatus as T;
    Some(match status {
        T::Normal => match celsius {
            Some(c) => Line::new(format!("체온 {c:.1}℃ 정상이에요"), format!("Temperature {c:.1} °C, normal")),
            None => Line::new("체온 정상이에요", "Temperature normal"),
        },
        T::Remeasure => Line::new(
            format!("{}. 잠깐 쉬면서 기다려 주세요", dolbom_contract::REMEASURE_MESSAGE_KO),
            "Please measure again in 5 minutes; rest a little first",
        ),
        // No number and no word about illness: a teacher measures again and decides.
        T::Elevated => Line::new("선생님께 가 주세요", "Please see a teacher"),
        T::TooFar | T::NotFrontal | T::OutOfView | T::Inconsistent | T::Implausible => {
            Line::new("체온을 재지 못했어요. 선생님께 알려 주세요", "Temperature not measured; please tell a teacher")
        }
        T::NoThermal | T::SensorFault => {
            Line::new("지금은 체온을 잴 수 없어요. 선생님께 알려 주세요", "Cannot measure now; please tell a teacher")
        }
        T::ScreeningOff | T::NotMeasured => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_are_role_aware_and_korean_first() {
        let g = greeting("김민지", Role::Child, AttendanceKind::Arrival);
        assert_eq!((g.ko.as_str(), g.en.as_str()), ("김민지 어린이, 안녕하세요!", "Hello, 김민지!"));
        assert_eq!(greeting("김영희", Role::Guardian, AttendanceKind::Arrival).ko, "김영희님, 안녕하세요!");
        assert_eq!(greeting("김민지", Role::Child, AttendanceKind::Departure).ko, "김민지 어린이, 안녕히 가세요!");
    }

    #[test]
    fn temperatures_in_honest_words() {
        let normal = temperature(TemperatureStatus::Normal, Some(36.54)).expect("normal");
        assert_eq!(normal.ko, "체온 36.5℃ 정상이에요");
        let elevated = temperature(TemperatureStatus::Elevated, Some(38.2)).expect("elevated");
        assert!(!elevated.ko.contains("38") && !elevated.en.contains("fever"), "no number, no diagnosis");
        assert!(temperature(TemperatureStatus::Remeasure, Some(34.0)).expect("remeasure").ko.contains("5분"));
        assert_eq!(temperature(TemperatureStatus::NotMeasured, None), None);
    }
}
