//! Latitude and longitude to the KMA forecast grid (동네예보 DFS grid, 5 km cells): the Lambert
//! conformal conic projection with the constants the KMA publishes in its API guide (standard
//! parallels 30° and 60° N, origin 38° N 126° E at grid cell 43,136, earth radius 6371.00877 km).

use std::f64::consts::PI;

/// Earth radius, km.
const RE: f64 = 6371.00877;
/// Cell size, km.
const GRID: f64 = 5.0;
const SLAT1: f64 = 30.0;
const SLAT2: f64 = 60.0;
const OLON: f64 = 126.0;
const OLAT: f64 = 38.0;
const XO: f64 = 43.0;
const YO: f64 = 136.0;

/// The grid's extent: cells outside it are not served.
pub const NX_MAX: u16 = 149;
pub const NY_MAX: u16 = 253;

/// The grid cell (nx, ny) holding a point, or `None` when it lies outside the KMA grid.
pub fn to_grid(lat: f64, lon: f64) -> Option<(u16, u16)> {
    if !lat.is_finite() || !lon.is_finite() {
        return None;
    }
    let deg = PI / 180.0;
    let re = RE / GRID;
    let (slat1, slat2, olon, olat) = (SLAT1 * deg, SLAT2 * deg, OLON * deg, OLAT * deg);
    let sn = ((PI * 0.25 + slat2 * 0.5).tan() / (PI * 0.25 + slat1 * 0.5).tan()).ln();
    let sn = (slat1.cos() / slat2.cos()).ln() / sn;
    let sf = (PI * 0.25 + slat1 * 0.5).tan().powf(sn) * slat1.cos() / sn;
    let ro = re * sf / (PI * 0.25 + olat * 0.5).tan().powf(sn);
    let ra = re * sf / (PI * 0.25 + lat * deg * 0.5).tan().powf(sn);
    let mut theta = lon * deg - olon;
    if theta > PI {
        theta -= 2.0 * PI;
    }
    if theta < -PI {
        theta += 2.0 * PI;
    }
    theta *= sn;
    let x = (ra * theta.sin() + XO + 0.5).floor();
    let y = (ro - ra * theta.cos() + YO + 0.5).floor();
    let inside = |v: f64, max: u16| v >= 1.0 && v <= f64::from(max);
    (inside(x, NX_MAX) && inside(y, NY_MAX)).then_some((x as u16, y as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cells the KMA's grid table (shipped with the API guide) lists for these districts, at
    /// the coordinates of their offices; the origin is the projection's own definition.
    #[test]
    fn known_places_fall_in_their_published_cells() {
        let cases = [
            ("origin 38N 126E", 38.0, 126.0, (43, 136)),
            ("서울 종로구", 37.5735, 126.9790, (60, 127)),
            ("서울 강남구", 37.5172, 127.0473, (61, 126)),
            ("부산 중구", 35.1064, 129.0324, (97, 74)),
            ("광주 서구", 35.1518, 126.8903, (59, 74)),
            ("제주 제주시", 33.4996, 126.5312, (53, 38)),
        ];
        for (name, lat, lon, want) in cases {
            assert_eq!(to_grid(lat, lon), Some(want), "{name} ({lat}, {lon})");
        }
    }

    #[test]
    fn points_off_the_grid_have_no_cell() {
        assert_eq!(to_grid(51.5, -0.12), None, "London");
        assert_eq!(to_grid(-37.5, 127.0), None, "the southern hemisphere");
        assert_eq!(to_grid(f64::NAN, 127.0), None);
        assert_eq!(to_grid(37.5, f64::INFINITY), None);
    }
}
