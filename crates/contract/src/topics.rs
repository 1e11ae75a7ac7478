//! Topic names, built for a kiosk and taken apart for a subscriber, in one place.
//!
//! Every kiosk publishes under `dolbom/v1/{center_id}/{kiosk_id}/`.

/// The first two levels of every dolbom topic.
pub const PREFIX: &str = "dolbom/v1";

/// Topic names under one kiosk's root.
#[derive(Debug, Clone)]
pub struct Topics {
    root: String,
}

impl Topics {
    pub fn new(center_id: &str, kiosk_id: &str) -> Self {
        Self { root: format!("{PREFIX}/{center_id}/{kiosk_id}/") }
    }
    pub fn status(&self) -> String {
        format!("{}status", self.root)
    }
    pub fn attendance(&self) -> String {
        format!("{}event/attendance", self.root)
    }
    pub fn visitor(&self) -> String {
        format!("{}event/visitor", self.root)
    }
    pub fn fever(&self) -> String {
        format!("{}event/fever", self.root)
    }
    /// QoS 1, not retained: a re-measure settled (or left unsettled) after an arrival.
    pub fn temperature(&self) -> String {
        format!("{}event/temperature", self.root)
    }
    /// Retained, latest wins: the air at the door now.
    pub fn air_telemetry(&self) -> String {
        format!("{}telemetry/air", self.root)
    }
    /// QoS 1, not retained: an indoor value crossed a daycare limit, or recovered.
    pub fn air_event(&self) -> String {
        format!("{}event/air", self.root)
    }
    /// Retained, latest wins: the people this kiosk knows (names and what is enrolled).
    pub fn roster(&self) -> String {
        format!("{}roster", self.root)
    }
    pub fn alert(&self, alert_id: &str) -> String {
        format!("{}alert/{alert_id}", self.root)
    }
    pub fn command(&self, command: Command) -> String {
        format!("{}cmd/{}", self.root, command.name())
    }
    /// Commands the kiosk accepts (never retained).
    pub fn commands(&self) -> [String; 7] {
        Command::ALL.map(|c| self.command(c))
    }
    pub fn command_result(&self) -> String {
        format!("{}cmd/result", self.root)
    }
}

/// A subscription filter for one kind of message from every kiosk of every center.
pub fn filter_all(kind: Kind) -> String {
    format!("{PREFIX}/+/+/{}", kind.suffix())
}

/// The staff commands a kiosk accepts on `cmd/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Silence,
    Resolve,
    /// A staff thermometer value that settles an open re-measure.
    Thermometer,
    /// Staff record an arrival or departure by hand (method `staff`).
    Checkin,
    /// Record a guardian's consent for a child.
    Consent,
    /// Capture at the door: the kiosk enrols the face in front of it.
    Enroll,
    /// Erase a person's face templates (and withdraw a child's consent).
    Erase,
}

impl Command {
    pub const ALL: [Command; 7] = [
        Command::Silence,
        Command::Resolve,
        Command::Thermometer,
        Command::Checkin,
        Command::Consent,
        Command::Enroll,
        Command::Erase,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Command::Silence => "silence",
            Command::Resolve => "resolve",
            Command::Thermometer => "thermometer",
            Command::Checkin => "checkin",
            Command::Consent => "consent",
            Command::Enroll => "enroll",
            Command::Erase => "erase",
        }
    }

    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What a topic under a kiosk's root carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Status,
    Attendance,
    Visitor,
    Fever,
    Temperature,
    AirTelemetry,
    AirEvent,
    Roster,
    Alert(String),
    Command(Command),
    CommandResult,
}

impl Kind {
    fn suffix(&self) -> String {
        match self {
            Kind::Status => "status".into(),
            Kind::Attendance => "event/attendance".into(),
            Kind::Visitor => "event/visitor".into(),
            Kind::Fever => "event/fever".into(),
            Kind::Temperature => "event/temperature".into(),
            Kind::AirTelemetry => "telemetry/air".into(),
            Kind::AirEvent => "event/air".into(),
            Kind::Roster => "roster".into(),
            Kind::Alert(id) => format!("alert/{id}"),
            Kind::Command(c) => format!("cmd/{}", c.name()),
            Kind::CommandResult => "cmd/result".into(),
        }
    }
}

/// A topic taken apart: whose it is and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub center: String,
    pub kiosk: String,
    pub kind: Kind,
}

impl Topic {
    /// `None` for anything that is not a dolbom topic of this version (a subscriber logs and
    /// skips it; it must never guess).
    pub fn parse(topic: &str) -> Option<Topic> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
        let mut parts = rest.splitn(3, '/');
        let (center, kiosk, tail) = (parts.next()?, parts.next()?, parts.next()?);
        if crate::ids::validate_id(center).is_err() || crate::ids::validate_id(kiosk).is_err() {
            return None;
        }
        let kind = match tail {
            "status" => Kind::Status,
            "event/attendance" => Kind::Attendance,
            "event/visitor" => Kind::Visitor,
            "event/fever" => Kind::Fever,
            "event/temperature" => Kind::Temperature,
            "telemetry/air" => Kind::AirTelemetry,
            "event/air" => Kind::AirEvent,
            "roster" => Kind::Roster,
            "cmd/result" => Kind::CommandResult,
            t => match (t.strip_prefix("alert/"), t.strip_prefix("cmd/").and_then(Command::from_name)) {
                (Some(id), _) if !id.is_empty() && !id.contains('/') => Kind::Alert(id.to_string()),
                (_, Some(c)) => Kind::Command(c),
                _ => return None,
            },
        };
        Some(Topic { center: center.to_string(), kiosk: kiosk.to_string(), kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_root() {
        let t = Topics::new("sunshine", "door-1");
        assert_eq!(t.status(), "dolbom/v1/sunshine/door-1/status");
        assert_eq!(t.attendance(), "dolbom/v1/sunshine/door-1/event/attendance");
        assert_eq!(t.visitor(), "dolbom/v1/sunshine/door-1/event/visitor");
        assert_eq!(t.alert("a1"), "dolbom/v1/sunshine/door-1/alert/a1");
        assert_eq!(t.commands()[0], "dolbom/v1/sunshine/door-1/cmd/silence");
        assert_eq!(filter_all(Kind::Attendance), "dolbom/v1/+/+/event/attendance");
        assert_eq!(t.air_telemetry(), "dolbom/v1/sunshine/door-1/telemetry/air");
        assert_eq!(t.air_event(), "dolbom/v1/sunshine/door-1/event/air");
        assert_eq!(filter_all(Kind::AirTelemetry), "dolbom/v1/+/+/telemetry/air");
    }

    #[test]
    fn every_built_topic_parses_back() {
        let t = Topics::new("sunshine", "door-1");
        let cases = [
            (t.status(), Kind::Status),
            (t.attendance(), Kind::Attendance),
            (t.visitor(), Kind::Visitor),
            (t.fever(), Kind::Fever),
            (t.temperature(), Kind::Temperature),
            (t.command(Command::Thermometer), Kind::Command(Command::Thermometer)),
            (t.air_telemetry(), Kind::AirTelemetry),
            (t.air_event(), Kind::AirEvent),
            (t.alert("a1"), Kind::Alert("a1".into())),
            (t.command(Command::Resolve), Kind::Command(Command::Resolve)),
            (t.command(Command::Checkin), Kind::Command(Command::Checkin)),
            (t.command(Command::Enroll), Kind::Command(Command::Enroll)),
            (t.roster(), Kind::Roster),
            (t.command_result(), Kind::CommandResult),
        ];
        for (topic, kind) in cases {
            let parsed = Topic::parse(&topic).unwrap_or_else(|| panic!("{topic} parses"));
            assert_eq!((parsed.center.as_str(), parsed.kiosk.as_str(), parsed.kind), ("sunshine", "door-1", kind));
        }
    }

    #[test]
    fn foreign_topics_do_not_parse() {
        for t in [
            "",
            "dolbom/v2/c/k/status",
            "dolbom/v1/c/k",
            "dolbom/v1/c/k/event/other",
            "dolbom/v1/c/k/telemetry/water",
            "dolbom/v1/c/k/telemetry/air/x",
            "dolbom/v1/c/k/alert/",
            "dolbom/v1/c/k/alert/a/b",
            "dolbom/v1/../k/status",
            "dolbom/v1/c/+/status",
            "other/v1/c/k/status",
        ] {
            assert_eq!(Topic::parse(t), None, "{t}");
        }
    }

    /// docs/mqtt.md's topic table is what an integrator reads: one unbroken table (a blank
    /// line splits a Markdown table) naming every topic the contract builds.
    #[test]
    fn the_documented_topic_table_lists_every_topic() {
        let doc = include_str!("../../../docs/mqtt.md");
        let lines: Vec<&str> = doc.lines().collect();
        let start = lines.iter().position(|l| l.starts_with("| topic |")).expect("topic table in docs/mqtt.md");
        let table: Vec<&str> = lines[start..].iter().take_while(|l| l.starts_with('|')).copied().collect();
        let text = table.join("\n");
        for topic in [
            "`status`",
            "`event/attendance`",
            "`event/visitor`",
            "`event/fever`",
            "`event/temperature`",
            "`telemetry/air`",
            "`event/air`",
            "`alert/{alert_id}`",
            "`cmd/silence`",
            "`cmd/resolve`",
            "`cmd/thermometer`",
            "`cmd/result`",
        ] {
            assert!(text.contains(topic), "{topic} missing from the unbroken topic table in docs/mqtt.md");
        }
        let t = Topics::new("c", "k");
        let built = [
            t.status(),
            t.attendance(),
            t.visitor(),
            t.fever(),
            t.temperature(),
            t.air_telemetry(),
            t.air_event(),
            t.alert("{alert_id}"),
            t.command_result(),
        ];
        for topic in built.iter().chain(t.commands().iter()) {
            let suffix = topic.trim_start_matches("dolbom/v1/c/k/");
            assert!(
                text.contains(&format!("`{suffix}`")) || text.contains(suffix),
                "{suffix} is built but not documented"
            );
        }
    }
}
