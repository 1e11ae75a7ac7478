//! `dolbom gallery keygen | seal | rekey`: the key the gallery is sealed with (docs/security.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dolbom_face::gallery::GalleryKey;
use dolbom_kiosk::config::Config;

/// Writes a new random key to `file` (mode 0600; an existing file is never replaced).
pub fn keygen(file: PathBuf) -> Result<ExitCode> {
    let key = GalleryKey::generate()?;
    key.write_new(&file)?;
    outln!(
        "wrote key {} to {} (mode 0600) / 키({})를 {}에 만들었습니다",
        key.id(),
        file.display(),
        key.id(),
        file.display()
    )?;
    outln!(
        "keep a copy somewhere safe: without it the gallery cannot be opened and everyone must be enrolled again / \
         안전한 곳에 사본을 보관하세요: 키를 잃으면 갤러리를 열 수 없어 모두 다시 등록해야 합니다"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Seals a plain gallery with the configured key now (rather than at its next change).
pub fn seal(config: PathBuf) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let store = config.gallery.store();
    let key = store.key()?.context(
        "no key is configured: set gallery.key_file, or CREDENTIALS_DIRECTORY=/etc/dolbom/credentials for the \
         gallery-key credential / 키가 설정되지 않았습니다 (gallery.key_file)",
    )?;
    let done = store.rekey(&key)?;
    outln!(
        "{}: {} people, sealed with key {} / {}명, 키({})로 암호화했습니다",
        store.path().display(),
        done.people,
        done.to,
        done.people,
        done.to
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the gallery with the configured key and seals it with the key in `new_key_file`.
pub fn rekey(config: PathBuf, new_key_file: &Path) -> Result<ExitCode> {
    let config = Config::load(&config)?;
    let store = config.gallery.store();
    let new = GalleryKey::read(new_key_file)?;
    let done = store.rekey(&new)?;
    let from = done.from.map_or_else(|| "plain / 암호화 안 됨".to_string(), |k| format!("key {k}"));
    outln!(
        "{}: {} people, was {from}, now sealed with key {} / {}명, 새 키({})로 다시 암호화했습니다",
        store.path().display(),
        done.people,
        done.to,
        done.people,
        done.to
    )?;
    let configured = store.key_file().map_or_else(|| "gallery.key_file".to_string(), |k| k.display().to_string());
    outln!(
        "now: install {} as the configured key ({configured}; under systemd the LoadCredential= source, e.g. \
         /etc/dolbom/credentials/gallery-key) and restart the kiosk; until then it cannot read the gallery. Keep \
         the old key until the new one is backed up. / 이제 새 키를 설정된 키 위치에 두고 키오스크를 다시 시작하세요. \
         새 키를 백업할 때까지 이전 키를 보관하세요",
        new_key_file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
