//! `cmd/checkin`: staff record an arrival or a departure by hand (the camera missed the child).
//! The same attendance event a face gives, with method `staff` and no temperature, under the
//! same book (crate::attendance): a second arrival the same day is refused with the time of
//! the first, so guardians are not texted twice.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use tracing::info;

use dolbom_contract::{
    self as contract, AttendanceEvent, AttendanceKind, CheckInMethod, CheckinCommand, PersonRef, TemperatureStatus,
};

use super::{Apply, Outcome, StaffDesk};
use crate::alerts::AlertContext;
use crate::attendance::{day_of, DayRecord};
use crate::outbox::Tally;
use crate::store::StoreError;

impl Apply for CheckinCommand {
    fn in_tx(
        &self,
        desk: &StaffDesk,
        ctx: &AlertContext,
        tx: &Connection,
        now_ms: i64,
        tally: &mut Tally,
    ) -> Result<Outcome, StoreError> {
        let gallery = match desk.gallery.load() {
            Ok(g) => g,
            Err(e) => {
                return Ok(Outcome::Refused(format!(
                    "the gallery cannot be read ({e}); nothing was recorded / 갤러리를 읽을 수 없어 기록하지 않았습니다"
                )))
            }
        };
        let Some(person) = gallery.get(&self.person) else {
            return Ok(Outcome::Refused(format!(
                "no person `{}` on this kiosk / 이 키오스크에 등록되지 않은 사람입니다",
                self.person
            )));
        };
        let at = Timestamp::from_millisecond(now_ms).unwrap_or_else(|_| Timestamp::now());
        let day = day_of(at, &desk.policy.tz);
        let record = tx
            .query_row(
                "SELECT arrived_ms, departed_ms, last_event_ms FROM attendance WHERE day = ?1 AND person = ?2",
                params![day, self.person],
                |r| Ok(DayRecord { arrived_ms: r.get(0)?, departed_ms: r.get(1)?, last_event_ms: r.get(2)? }),
            )
            .optional()?;
        let hhmm = |ms: i64| {
            Timestamp::from_millisecond(ms)
                .map(|t| t.to_zoned_datetime(desk.policy.tz.clone()).strftime("%H:%M").to_string())
                .unwrap_or_default()
        };
        match (self.kind, record.as_ref()) {
            (AttendanceKind::Arrival, Some(DayRecord { arrived_ms: Some(a), .. })) => {
                let t = hhmm(*a);
                return Ok(Outcome::Refused(format!("already arrived at {t} / {t}에 이미 등원했습니다")));
            }
            (_, Some(DayRecord { departed_ms: Some(d), .. })) => {
                let t = hhmm(*d);
                return Ok(Outcome::Refused(format!("already left at {t} / {t}에 이미 하원했습니다")));
            }
            _ => {}
        }
        let (arrived, departed) = match self.kind {
            AttendanceKind::Arrival => (Some(now_ms), None),
            AttendanceKind::Departure => (record.as_ref().and_then(|r| r.arrived_ms), Some(now_ms)),
        };
        tx.execute(
            "INSERT INTO attendance (day, person, arrived_ms, departed_ms, last_event_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(day, person) DO UPDATE SET arrived_ms = ?3, departed_ms = ?4, last_event_ms = ?5",
            params![day, self.person, arrived, departed, now_ms],
        )?;
        let event = AttendanceEvent {
            schema: contract::ATTENDANCE_SCHEMA.into(),
            event_id: contract::new_event_id(),
            center: ctx.site.center.clone(),
            kiosk: ctx.site.kiosk.clone(),
            ts: ctx.site.ts(now_ms),
            kind: self.kind,
            person: PersonRef { id: person.id.clone(), role: person.role },
            // Staff saw the child: as sure as a tag.
            confidence: 1.0,
            temperature_c: None,
            temperature_status: if desk.screening_on {
                TemperatureStatus::NotMeasured
            } else {
                TemperatureStatus::ScreeningOff
            },
            temperature_site: None,
            method: CheckInMethod::Staff,
        };
        info!(event_id = %event.event_id, person = %self.person, kind = ?self.kind, by = %self.by, "attendance event by staff");
        tally.enqueue(
            tx,
            &ctx.event_message(ctx.site.topics.attendance(), "attendance", &event, now_ms),
            ctx.capacity,
            now_ms,
        )?;
        let t = hhmm(now_ms);
        let name = &person.name;
        Ok(Outcome::Done(match self.kind {
            AttendanceKind::Arrival => format!("arrival of {name} recorded at {t} / {name} {t} 등원 기록"),
            AttendanceKind::Departure => format!("departure of {name} recorded at {t} / {name} {t} 하원 기록"),
        }))
    }
}
