//! A stand-in for Korea's public air and weather services on loopback, for the demo and the
//! end-to-end tests: it answers AirKorea's `getMsrstnAcctoRltmMesureDnsty` and KMA's
//! `getUltraSrtNcst` in their own JSON shapes (string numbers, KST times, AirKorea's "24:00"
//! for midnight), and with a wrong service key the XML error envelope those services send with
//! HTTP 200. The values are the ones given; their observation times follow the clock. The bad
//! answers the kiosk must survive (flags, "-", quota, garbage) are replayed by the outdoor
//! client's own tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jiff::{tz::TimeZone, ToSpan, ZonedDateTime};

/// AirKorea's real-time measurement service, below the server's root.
pub const AIRKOREA_PATH: &str = "/B552584/ArpltnInforInqireSvc";
/// KMA's short-term forecast service (with the ultra-short-term observations), below the root.
pub const KMA_PATH: &str = "/1360000/VilageFcstInfoService_2.0";

/// What the simulated services report.
#[derive(Debug, Clone)]
pub struct OutdoorSim {
    pub station: String,
    /// µg/m³; `None` is sent as "-" with a flag, as a station under maintenance does.
    pub pm10: Option<f32>,
    pub pm25: Option<f32>,
    pub temperature_c: f32,
    pub humidity_pct: f32,
    /// When set, a request with another `serviceKey` gets the services' key error.
    pub service_key: Option<String>,
}

impl Default for OutdoorSim {
    fn default() -> Self {
        Self {
            station: "종로구".into(),
            pm10: Some(42.0),
            pm25: Some(21.0),
            temperature_c: 3.5,
            humidity_pct: 45.0,
            service_key: None,
        }
    }
}

/// The running stand-in: serves until dropped with the process (a thread per connection).
pub struct OutdoorServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
}

impl OutdoorServer {
    /// Binds `listen` (e.g. "127.0.0.1:0") and serves in the background.
    pub fn start(listen: &str, sim: OutdoorSim) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let (count, sim) = (requests.clone(), Arc::new(sim));
        std::thread::Builder::new().name("sim-outdoor".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                let (count, sim) = (count.clone(), sim.clone());
                let _ = std::thread::Builder::new().name("sim-outdoor-conn".into()).spawn(move || {
                    // A broken connection is the client's business; the server keeps serving.
                    let _ = serve(stream, &sim, &count);
                });
            }
        })?;
        Ok(Self { addr, requests })
    }

    /// The base URL to configure as `outdoor.airkorea.base_url`.
    pub fn airkorea_url(&self) -> String {
        format!("http://{}{AIRKOREA_PATH}", self.addr)
    }

    /// The base URL to configure as `outdoor.kma.base_url`.
    pub fn kma_url(&self) -> String {
        format!("http://{}{KMA_PATH}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

fn serve(stream: TcpStream, sim: &OutdoorSim, count: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut keep_alive = true;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
            if header.to_ascii_lowercase().starts_with("connection:") && header.to_ascii_lowercase().contains("close") {
                keep_alive = false;
            }
        }
        let (content_type, body) = answer(&target, sim, ZonedDateTime::now().with_time_zone(kst()));
        count.fetch_add(1, Ordering::Relaxed);
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn kst() -> TimeZone {
    TimeZone::get("Asia/Seoul").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(9)))
}

/// The answer to one request target (path and query), at `now`.
pub fn answer(target: &str, sim: &OutdoorSim, now: ZonedDateTime) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(want) = &sim.service_key {
        if param("serviceKey") != Some(want.as_str()) {
            return ("text/xml;charset=UTF-8", key_error());
        }
    }
    if path.ends_with("/getMsrstnAcctoRltmMesureDnsty") {
        ("application/json;charset=UTF-8", airkorea(sim, &now))
    } else if path.ends_with("/getUltraSrtNcst") {
        let nx = param("nx").unwrap_or("60");
        let ny = param("ny").unwrap_or("127");
        let base_date = param("base_date").unwrap_or("");
        let base_time = param("base_time").unwrap_or("");
        ("application/json;charset=UTF-8", kma(sim, nx, ny, base_date, base_time))
    } else {
        ("text/xml;charset=UTF-8", envelope("SERVICE ERROR", "NO_OPENAPI_SERVICE_ERROR", "12"))
    }
}

fn key_error() -> String {
    envelope("SERVICE ERROR", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR", "30")
}

fn envelope(msg: &str, auth: &str, code: &str) -> String {
    format!(
        "<OpenAPI_ServiceResponse>\n\t<cmmMsgHeader>\n\t\t<errMsg>{msg}</errMsg>\n\t\t<returnAuthMsg>{auth}</returnAuthMsg>\n\t\t<returnReasonCode>{code}</returnReasonCode>\n\t</cmmMsgHeader>\n</OpenAPI_ServiceResponse>"
    )
}

/// AirKorea's grade (1 good … 4 very bad) for a value, from the same breakpoints the kiosk uses.
fn grade(value: f32, bounds: [f32; 3]) -> u8 {
    1 + bounds.iter().filter(|b| value > **b).count() as u8
}

/// AirKorea's hour label: the hour that ended, with midnight written "24:00" of the day before.
fn data_time(hour_end: &ZonedDateTime) -> String {
    if hour_end.hour() == 0 {
        let day_before = hour_end.checked_sub(1.day()).unwrap_or_else(|_| hour_end.clone());
        format!("{} 24:00", day_before.strftime("%Y-%m-%d"))
    } else {
        hour_end.strftime("%Y-%m-%d %H:00").to_string()
    }
}

fn airkorea(sim: &OutdoorSim, now: &ZonedDateTime) -> String {
    let hour = now.round(jiff::ZonedDateTimeRound::new().smallest(jiff::Unit::Hour).mode(jiff::RoundMode::Trunc));
    let hour = hour.unwrap_or_else(|_| now.clone());
    let value = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{}", v.round() as i64));
    let grade_of = |v: Option<f32>, b| v.map_or(serde_json::Value::Null, |v| grade(v, b).to_string().into());
    let flag = |v: Option<f32>| if v.is_some() { serde_json::Value::Null } else { "점검및교정".into() };
    // The newest hours first, as the service lists them.
    let items: Vec<serde_json::Value> = (0..3)
        .map(|h| {
            let t = hour.checked_sub(h.hours()).unwrap_or_else(|_| hour.clone());
            serde_json::json!({
                "stationName": sim.station,
                "sidoName": "서울",
                "dataTime": data_time(&t),
                "pm10Value": value(sim.pm10),
                "pm10Value24": value(sim.pm10),
                "pm25Value": value(sim.pm25),
                "pm25Value24": value(sim.pm25),
                "pm10Grade": grade_of(sim.pm10, [30.0, 80.0, 150.0]),
                "pm25Grade": grade_of(sim.pm25, [15.0, 35.0, 75.0]),
                "pm10Grade1h": grade_of(sim.pm10, [30.0, 80.0, 150.0]),
                "pm25Grade1h": grade_of(sim.pm25, [15.0, 35.0, 75.0]),
                "pm10Flag": flag(sim.pm10),
                "pm25Flag": flag(sim.pm25),
                "khaiValue": "51",
                "khaiGrade": "2",
                "so2Value": "0.003",
                "coValue": "0.4",
                "o3Value": "0.021",
                "no2Value": "0.019",
            })
        })
        .collect();
    serde_json::json!({
        "response": {
            "body": { "totalCount": items.len(), "items": items, "pageNo": 1, "numOfRows": 100 },
            "header": { "resultMsg": "NORMAL_CODE", "resultCode": "00" }
        }
    })
    .to_string()
}

fn kma(sim: &OutdoorSim, nx: &str, ny: &str, base_date: &str, base_time: &str) -> String {
    let grid = |v: &str| v.parse::<i64>().unwrap_or(0);
    let items: Vec<serde_json::Value> = [
        ("PTY", "0".to_string()),
        ("REH", format!("{}", sim.humidity_pct.round() as i64)),
        ("RN1", "0".to_string()),
        ("T1H", format!("{:.1}", sim.temperature_c)),
        ("UUU", "-1.2".to_string()),
        ("VEC", "301".to_string()),
        ("VVV", "0.8".to_string()),
        ("WSD", "1.5".to_string()),
    ]
    .into_iter()
    .map(|(category, value)| {
        serde_json::json!({
            "baseDate": base_date, "baseTime": base_time, "category": category,
            "nx": grid(nx), "ny": grid(ny), "obsrValue": value,
        })
    })
    .collect();
    serde_json::json!({
        "response": {
            "header": { "resultCode": "00", "resultMsg": "NORMAL_SERVICE" },
            "body": {
                "dataType": "JSON",
                "items": { "item": items },
                "pageNo": 1, "numOfRows": 1000, "totalCount": 8
            }
        }
    })
    .to_string()
}

/// `%XX` and `+` decoding of one query component: a `+` is a space, then `%XX` as the kiosk's
/// own key decoding reads it.
fn percent_decode(s: &str) -> String {
    crate::sources::outdoor::request::raw_key(&s.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> ZonedDateTime {
        s.parse().expect("zoned time")
    }

    #[test]
    fn airkorea_answers_in_its_own_shape_with_midnight_as_24() {
        let sim = OutdoorSim { pm10: Some(95.0), pm25: None, ..OutdoorSim::default() };
        let (ct, body) = answer(
            "/B552584/ArpltnInforInqireSvc/getMsrstnAcctoRltmMesureDnsty?serviceKey=k&returnType=json&stationName=%EC%A2%85%EB%A1%9C%EA%B5%AC",
            &sim,
            at("2026-12-02T00:20:00+09:00[Asia/Seoul]"),
        );
        assert!(ct.starts_with("application/json"));
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let first = &v["response"]["body"]["items"][0];
        assert_eq!(first["dataTime"], "2026-12-01 24:00");
        assert_eq!(v["response"]["body"]["items"][1]["dataTime"], "2026-12-01 23:00");
        assert_eq!((first["pm10Value"].as_str(), first["pm10Grade1h"].as_str()), (Some("95"), Some("3")));
        assert_eq!((first["pm25Value"].as_str(), first["pm25Flag"].as_str()), (Some("-"), Some("점검및교정")));
        assert_eq!(first["stationName"], "종로구");
    }

    #[test]
    fn kma_echoes_the_grid_and_base_time() {
        let (_, body) = answer(
            "/1360000/VilageFcstInfoService_2.0/getUltraSrtNcst?serviceKey=k&dataType=JSON&base_date=20261201&base_time=1400&nx=61&ny=126",
            &OutdoorSim { temperature_c: -3.46, ..OutdoorSim::default() },
            at("2026-12-01T14:50:00+09:00[Asia/Seoul]"),
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let items = v["response"]["body"]["items"]["item"].as_array().expect("items").clone();
        let t1h = items.iter().find(|i| i["category"] == "T1H").expect("T1H");
        assert_eq!(
            (t1h["obsrValue"].as_str(), t1h["nx"].as_i64(), t1h["baseTime"].as_str()),
            (Some("-3.5"), Some(61), Some("1400"))
        );
    }

    #[test]
    fn a_wrong_key_gets_the_xml_error_with_http_200_content() {
        let sim = OutdoorSim { service_key: Some("a+b/c==".into()), ..OutdoorSim::default() };
        let now = at("2026-12-01T14:50:00+09:00[Asia/Seoul]");
        let path = "/B552584/ArpltnInforInqireSvc/getMsrstnAcctoRltmMesureDnsty";
        let (ct, body) = answer(&format!("{path}?serviceKey=wrong"), &sim, now.clone());
        assert!(ct.starts_with("text/xml") && body.contains("SERVICE_KEY_IS_NOT_REGISTERED_ERROR"), "{body}");
        // The key arrives URL-encoded exactly once.
        let (ct, _) = answer(&format!("{path}?serviceKey=a%2Bb%2Fc%3D%3D"), &sim, now);
        assert!(ct.starts_with("application/json"));
    }

    /// What the stand-in says is what the kiosk's own parsers read.
    #[test]
    fn the_kiosks_parsers_read_the_stand_ins_answers() {
        use crate::sources::outdoor::{airkorea, kma};
        let now = at("2026-12-02T00:50:00+09:00[Asia/Seoul]");
        let sim = OutdoorSim { pm10: Some(95.0), pm25: Some(48.0), temperature_c: -3.5, ..OutdoorSim::default() };
        let (_, body) = answer(&format!("{AIRKOREA_PATH}/getMsrstnAcctoRltmMesureDnsty"), &sim, now.clone());
        let dust = airkorea::parse(&body, "x").expect("AirKorea answer parses");
        assert_eq!((dust.station.as_str(), dust.pm10, dust.pm25), ("종로구", Some(95.0), Some(48.0)));
        assert_eq!((dust.pm10_grade, dust.pm25_grade), (Some(3), Some(3)));
        assert_eq!(dust.observed_ms, at("2026-12-02T00:00:00+09:00[Asia/Seoul]").timestamp().as_millisecond());
        let hour = kma::latest_hour(now.timestamp());
        let query: Vec<String> = kma::params(&hour, 60, 127).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (_, body) = answer(&format!("{KMA_PATH}/getUltraSrtNcst?{}", query.join("&")), &sim, now);
        let weather = kma::parse(&body, &hour, 60, 127).expect("KMA answer parses");
        assert_eq!((weather.temperature_c, weather.humidity_pct), (Some(-3.5), Some(45.0)));
    }

    #[test]
    fn the_server_answers_over_real_http() {
        let server = OutdoorServer::start("127.0.0.1:0", OutdoorSim::default()).expect("start");
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        write!(
            stream,
            "GET {}/getUltraSrtNcst?nx=60&ny=127 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            KMA_PATH
        )
        .expect("send");
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut stream, &mut reply).expect("read");
        assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.contains("\"T1H\""), "{reply}");
        assert_eq!(server.requests(), 1);
    }
}
