//! `[outdoor]`: how often to ask AirKorea and the KMA, and where. The service keys live in files
//! of their own (`dolbom_secret`), never in the TOML; a service without a key is simply absent.

use std::path::{Path, PathBuf};

use dolbom_face::config::in_range;
use serde::Deserialize;

use super::grid;

/// AirKorea's real-time air quality service (한국환경공단 에어코리아 대기오염정보).
pub const AIRKOREA_BASE_URL: &str = "https://apis.data.go.kr/B552584/ArpltnInforInqireSvc";
/// KMA's short-term forecast service (기상청 단기예보 조회서비스), which serves the
/// ultra-short-term observations.
pub const KMA_BASE_URL: &str = "https://apis.data.go.kr/1360000/VilageFcstInfoService_2.0";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutdoorConfig {
    /// Both services update hourly; asking more often than every 15 minutes only spends quota.
    #[serde(default = "default_poll_minutes")]
    pub poll_minutes: u32,
    /// One request's whole time, connect included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub airkorea: Option<AirKoreaConfig>,
    #[serde(default)]
    pub kma: Option<KmaConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirKoreaConfig {
    /// The measuring station's name as AirKorea spells it, e.g. "종로구".
    pub station: String,
    /// The data.go.kr service key's file (see `dolbom_secret`); without it AirKorea is not asked.
    #[serde(default)]
    pub service_key_file: Option<PathBuf>,
    #[serde(default = "default_airkorea_base_url")]
    pub base_url: String,
    /// The key itself, read from `service_key_file` by [`OutdoorConfig::load_secrets`].
    #[serde(skip)]
    pub service_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmaConfig {
    /// The center's KMA grid cell; or give `lat` and `lon` and it is computed.
    #[serde(default)]
    pub nx: Option<u16>,
    #[serde(default)]
    pub ny: Option<u16>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub service_key_file: Option<PathBuf>,
    #[serde(default = "default_kma_base_url")]
    pub base_url: String,
    #[serde(skip)]
    pub service_key: Option<String>,
}

fn default_poll_minutes() -> u32 {
    30
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_airkorea_base_url() -> String {
    AIRKOREA_BASE_URL.into()
}
fn default_kma_base_url() -> String {
    KMA_BASE_URL.into()
}

/// No service: what a kiosk without `[outdoor]` runs, so its status says "not configured".
impl Default for OutdoorConfig {
    fn default() -> Self {
        Self { poll_minutes: default_poll_minutes(), timeout_secs: default_timeout_secs(), airkorea: None, kma: None }
    }
}

impl OutdoorConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range("outdoor.poll_minutes", self.poll_minutes, 15, 60)?;
        in_range("outdoor.timeout_secs", self.timeout_secs, 1, 60)?;
        if let Some(a) = &self.airkorea {
            if a.station.trim().is_empty() {
                return Err(("outdoor.airkorea.station", "must not be empty".into()));
            }
            check_base_url("outdoor.airkorea.base_url", &a.base_url)?;
        }
        if let Some(k) = &self.kma {
            k.grid()?;
            check_base_url("outdoor.kma.base_url", &k.base_url)?;
        }
        Ok(())
    }

    /// Reads the service keys' files (relative to `base`, the config file's directory). Only
    /// what polls calls it, as with the broker password.
    pub fn load_secrets(&mut self, base: &Path) -> Result<(), dolbom_secret::SecretError> {
        if let Some(a) = &mut self.airkorea {
            if let Some(spec) = &a.service_key_file {
                a.service_key = Some(dolbom_secret::read("outdoor.airkorea.service_key_file", spec, base)?);
            }
        }
        if let Some(k) = &mut self.kma {
            if let Some(spec) = &k.service_key_file {
                k.service_key = Some(dolbom_secret::read("outdoor.kma.service_key_file", spec, base)?);
            }
        }
        Ok(())
    }
}

impl KmaConfig {
    /// The grid cell: `nx`/`ny` as given, or computed from `lat`/`lon` (exactly one pair).
    pub fn grid(&self) -> Result<(u16, u16), (&'static str, String)> {
        match (self.nx, self.ny, self.lat, self.lon) {
            (Some(nx), Some(ny), None, None) => {
                in_range("outdoor.kma.nx", nx, 1, grid::NX_MAX)?;
                in_range("outdoor.kma.ny", ny, 1, grid::NY_MAX)?;
                Ok((nx, ny))
            }
            (None, None, Some(lat), Some(lon)) => {
                // Korea's grid spans about 32–44° N, 121–132° E; check before projecting.
                in_range("outdoor.kma.lat", lat, 30.0, 45.0)?;
                in_range("outdoor.kma.lon", lon, 120.0, 135.0)?;
                grid::to_grid(lat, lon).ok_or_else(|| {
                    ("outdoor.kma.lat", format!("= {lat}, lon = {lon}: outside the KMA grid / 기상청 격자 밖입니다"))
                })
            }
            _ => Err(("outdoor.kma.nx", "give either nx and ny, or lat and lon (not both, not one alone)".into())),
        }
    }
}

fn check_base_url(key: &'static str, url: &str) -> Result<(), (&'static str, String)> {
    let parsed = reqwest::Url::parse(url).map_err(|e| (key, format!("= {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
        return Err((key, format!("= {url:?}: must be an http(s) URL without a query")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OutdoorConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn defaults_are_the_real_services_and_valid() {
        let c = parse("[airkorea]\nstation = \"종로구\"\n[kma]\nnx = 60\nny = 127\n");
        assert_eq!((c.poll_minutes, c.timeout_secs), (30, 10));
        assert_eq!(c.airkorea.as_ref().map(|a| a.base_url.as_str()), Some(AIRKOREA_BASE_URL));
        assert_eq!(c.kma.as_ref().map(|k| k.base_url.as_str()), Some(KMA_BASE_URL));
        c.validate().expect("valid");
        let none = OutdoorConfig::default();
        assert_eq!(
            (none.poll_minutes, none.timeout_secs, none.airkorea.is_none(), none.kma.is_none()),
            (30, 10, true, true)
        );
        none.validate().expect("valid");
    }

    #[test]
    fn lat_lon_becomes_the_grid_cell_and_pairs_are_not_mixed() {
        let c = parse("[kma]\nlat = 37.5735\nlon = 126.9790\n");
        assert_eq!(c.kma.as_ref().map(|k| k.grid()), Some(Ok((60, 127))));
        for bad in ["nx = 60\n", "nx = 60\nny = 127\nlat = 37.5\nlon = 127.0\n", "lat = 37.5\n", ""] {
            let c = parse(&format!("[kma]\n{bad}"));
            let (key, _) = c.validate().expect_err(bad);
            assert_eq!(key, "outdoor.kma.nx", "{bad}");
        }
        let (key, _) = parse("[kma]\nlat = 91.0\nlon = 127.0\n").validate().expect_err("lat 91");
        assert_eq!(key, "outdoor.kma.lat");
    }

    #[test]
    fn base_urls_and_stations_are_checked() {
        let (key, _) = parse("[airkorea]\nstation = \" \"\n").validate().expect_err("blank station");
        assert_eq!(key, "outdoor.airkorea.station");
        for url in ["ftp://x/y", "not a url", "https://x/y?serviceKey=abc"] {
            let c = parse(&format!("[kma]\nnx = 1\nny = 1\nbase_url = {url:?}\n"));
            assert_eq!(c.validate().expect_err(url).0, "outdoor.kma.base_url", "{url}");
        }
    }

    #[test]
    fn keys_come_from_owner_only_files_and_absent_files_mean_absent_services() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("airkorea.key");
        std::fs::write(&key, "abc+def/ghi==\n").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut c =
            parse("[airkorea]\nstation = \"종로구\"\nservice_key_file = \"airkorea.key\"\n[kma]\nnx = 60\nny = 127\n");
        c.load_secrets(dir.path()).expect("read");
        assert_eq!(c.airkorea.as_ref().and_then(|a| a.service_key.as_deref()), Some("abc+def/ghi=="));
        assert_eq!(c.kma.as_ref().and_then(|k| k.service_key.as_deref()), None);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = c.load_secrets(dir.path()).expect_err("world-readable");
        assert_eq!(err.key(), "outdoor.airkorea.service_key_file");
    }
}
