//! Who the children are (the kiosks' rosters, the classes of `[[classes]]`) and what their
//! day looks like, for the board and the CSV.

use std::collections::HashMap;

use dolbom_contract::{ConsentState, Role, Roster};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::store::DayRecord;
use crate::ConsoleConfig;

/// A child as the rosters know them.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub id: String,
    pub name: String,
    /// The `[[classes]]` entry, None for a child in no class.
    pub class: Option<String>,
    /// Kiosks whose roster lists the child.
    pub kiosks: Vec<String>,
    pub face: bool,
    pub consent: ConsentState,
}

/// Every child on any roster (and every child a class names), in class order, then by name;
/// children in no class last.
pub fn children(config: &ConsoleConfig, rosters: &[Roster]) -> Vec<Child> {
    let mut by_id: HashMap<String, Child> = HashMap::new();
    for r in rosters {
        for p in r.people.iter().filter(|p| p.role == Role::Child) {
            let c = by_id.entry(p.id.clone()).or_insert_with(|| Child {
                id: p.id.clone(),
                name: p.name.clone(),
                class: class_of(config, &p.id).map(str::to_string),
                kiosks: Vec::new(),
                face: false,
                consent: p.consent,
            });
            c.kiosks.push(r.kiosk.clone());
            c.face |= p.face;
            if p.consent == ConsentState::InForce {
                c.consent = ConsentState::InForce;
            }
        }
    }
    for class in &config.classes {
        for id in &class.children {
            by_id.entry(id.clone()).or_insert_with(|| Child {
                id: id.clone(),
                name: id.clone(),
                class: Some(class.name.clone()),
                kiosks: Vec::new(),
                face: false,
                consent: ConsentState::None,
            });
        }
    }
    let order = |c: &Child| {
        c.class.as_ref().and_then(|n| config.classes.iter().position(|k| &k.name == n)).unwrap_or(usize::MAX)
    };
    let mut out: Vec<Child> = by_id.into_values().collect();
    out.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.name.cmp(&b.name)).then_with(|| a.id.cmp(&b.id)));
    out
}

pub fn class_of<'c>(config: &'c ConsoleConfig, id: &str) -> Option<&'c str> {
    config.classes.iter().find(|c| c.children.iter().any(|k| k == id)).map(|c| c.name.as_str())
}

/// Where a child stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Left,
    Absent,
}

impl State {
    pub fn of(record: Option<&DayRecord>) -> State {
        match record {
            Some(r) if r.present => State::Present,
            Some(r) if r.departure_ms.is_some() => State::Left,
            _ => State::Absent,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Left => "left",
            State::Absent => "absent",
        }
    }
}

/// "08:42" in the center's time zone.
pub fn hhmm(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms).map(|t| tz.to_datetime(t).strftime("%H:%M").to_string()).unwrap_or_default()
}

/// "12/03 08:42" in the center's time zone.
pub fn stamp(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms).map(|t| tz.to_datetime(t).strftime("%m/%d %H:%M").to_string()).unwrap_or_default()
}
