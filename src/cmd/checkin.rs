//! `dolbom tag`, `dolbom pin`: enrolling tags and PINs (the check-ins without a face), and
//! `dolbom pin enter`, the door's side of the PIN input.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use dolbom_face::gallery::{printable, CardId, GalleryError, GalleryStore, NewPerson, Pin, Role};
use dolbom_kiosk::config::Config;
use dolbom_kiosk::pin::{enter, PinAnswer};
use dolbom_kiosk::store::Store;

/// Who a person is when a tag or PIN is the first thing enrolled for them.
pub struct Who {
    pub role: Option<Role>,
    pub name: Option<String>,
}

impl Who {
    fn new_person(&self) -> Result<Option<NewPerson<'_>>> {
        match (self.role, self.name.as_deref()) {
            (Some(role), Some(name)) => Ok(Some(NewPerson { role, name })),
            (None, None) => Ok(None),
            _ => anyhow::bail!("give --role and --name together / --role과 --name을 함께 주세요"),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn store(config: &Path) -> Result<GalleryStore> {
    let config = Config::load(config)?;
    Ok(config.gallery.store())
}

pub fn tag_add(config: PathBuf, person: String, card: String, who: Who) -> Result<ExitCode> {
    let card: CardId = card.parse()?;
    let new = who.new_person()?;
    store(&config)?.update(|g| g.add_tag(&person, card, new, unix_now()).map_err(anyhow::Error::from))?;
    let p = printable(&person);
    outln!("tag {card} enrolled for {p} / 태그 {card}를 {p}에게 등록했습니다")?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag_remove(config: PathBuf, card: String) -> Result<ExitCode> {
    let card: CardId = card.parse()?;
    let owner = store(&config)?.update(|g| g.remove_tag(&card).map_err(anyhow::Error::from))?;
    let p = printable(&owner);
    outln!("tag {card} removed from {p} / 태그 {card}를 {p}에게서 삭제했습니다")?;
    Ok(ExitCode::SUCCESS)
}

/// One line per tag: card id, person, role, name, and whether the person has a face template.
pub fn tag_list(config: PathBuf, json: bool) -> Result<ExitCode> {
    let gallery = store(&config)?.load()?;
    for p in &gallery.people {
        for card in &p.tags {
            if json {
                let line = serde_json::json!({
                    "card": card, "person": p.id, "role": p.role, "name": p.name,
                    "face": !p.embeddings.is_empty(), "pin": p.pin.is_some(),
                });
                outln!("{line}")?;
            } else {
                let face = if p.embeddings.is_empty() { "no-face" } else { "face" };
                outln!("{card}\t{}\t{}\t{}\t{face}", printable(&p.id), p.role, printable(&p.name))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The PIN from a file, or else from standard input (never from the command line, where other
/// users see it in the process list).
fn read_pin(file: Option<PathBuf>) -> Result<Pin> {
    let text = match file {
        Some(f) => std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?,
        None => {
            let mut s = String::new();
            std::io::stdin().take(64).read_to_string(&mut s).context("cannot read the PIN from standard input")?;
            s
        }
    };
    Ok(text.lines().next().unwrap_or_default().trim().parse()?)
}

pub fn pin_set(config_path: PathBuf, person: String, pin_file: Option<PathBuf>, who: Who) -> Result<ExitCode> {
    let new = who.new_person()?;
    let config = Config::load(&config_path)?;
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    let pepper = config.pin.pepper(base)?;
    let pin = read_pin(pin_file)?;
    let p = printable(&person);
    let set = config
        .gallery
        .store()
        .update(|g| g.set_pin(&person, &pin, &pepper, new, unix_now()).map_err(anyhow::Error::from));
    if let Err(e) = &set {
        // Whoever sets PINs learns that one is taken: such refusals are audited (never the PIN).
        if e.downcast_ref::<GalleryError>() == Some(&GalleryError::PinInUse) {
            tracing::warn!(target: "audit", person = %p, "PIN refused: already used by another person / 다른 사람이 쓰는 PIN이라 거부했습니다");
        }
    }
    set?;
    outln!("PIN set for {p} (stored hashed) / {p}의 PIN을 설정했습니다 (해시로 저장)")?;
    Ok(ExitCode::SUCCESS)
}

pub fn pin_clear(config: PathBuf, person: String) -> Result<ExitCode> {
    let had = store(&config)?.update(|g| g.clear_pin(&person).map_err(anyhow::Error::from))?;
    let p = printable(&person);
    if had {
        outln!("PIN removed for {p} / {p}의 PIN을 삭제했습니다")?;
    } else {
        outln!("{p} had no PIN / {p}에게는 PIN이 없습니다")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ends a lock of the PIN input (forgets every wrong try), as staff do after checking the door.
pub fn pin_unlock(config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let store = Store::open(&config.state.db_file())?;
    let forgotten = dolbom_kiosk::pin_tries::unlock(&*store.lock()?).context("cannot clear the wrong-PIN count")?;
    tracing::warn!(target: "audit", forgotten, "PIN input unlocked by staff / 교사가 PIN 입력 잠금을 풀었습니다");
    outln!("PIN input unlocked ({forgotten} wrong tries forgotten) / PIN 입력 잠금을 풀었습니다 (잘못된 시도 {forgotten}회 삭제)")?;
    Ok(ExitCode::SUCCESS)
}

/// The door's side: a PIN from standard input to the running kiosk; exit 1 unless accepted.
pub fn pin_enter(config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    anyhow::ensure!(
        config.pin.enabled,
        "the PIN input is off: set `pin.enabled = true` in the config / PIN 입력이 꺼져 있습니다"
    );
    let socket = config.pin.socket_path(&config.state.dir);
    let mut line = String::new();
    std::io::stdin().take(64).read_to_string(&mut line).context("cannot read the PIN from standard input")?;
    let answer = enter(&socket, line.lines().next().unwrap_or_default().trim()).with_context(|| {
        format!(
                "cannot reach the kiosk's PIN input {} (is `dolbom kiosk` running?) / 키오스크의 PIN 입력에 연결할 수 없습니다",
                socket.display()
            )
    })?;
    match answer {
        PinAnswer::Accepted { person, name } => {
            let (id, name) = (printable(&person), printable(&name));
            outln!("checked in: {name} ({id}) / 체크인: {name} ({id})")?;
            Ok(ExitCode::SUCCESS)
        }
        PinAnswer::Wrong { tries_left } => {
            outln!(
                "wrong PIN; {tries_left} tries left before the input locks / 잘못된 PIN입니다. 잠기기 전까지 {tries_left}번 남음"
            )?;
            Ok(ExitCode::FAILURE)
        }
        PinAnswer::Locked { retry_after_secs, staff_unlock } => {
            outln!(
                "too many wrong PINs: try again in {retry_after_secs} s / 잘못된 PIN이 너무 많습니다. {retry_after_secs}초 후에 다시 시도하세요"
            )?;
            if staff_unlock {
                outln!("staff can unlock it with `dolbom pin unlock` / 교사는 `dolbom pin unlock`으로 잠금을 풀 수 있습니다")?;
            }
            Ok(ExitCode::FAILURE)
        }
        PinAnswer::Unavailable { message } => {
            outln!("{}", printable(&message))?;
            Ok(ExitCode::FAILURE)
        }
    }
}
