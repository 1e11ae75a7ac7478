//! `dolbom sim thermal`: a thermal sensor on a pseudo-terminal, so the daemon, the demo and the
//! tests run without hardware. It speaks the GY-MCU90640 (or CSV) protocol and renders the same
//! walk-up scene as the sample clip: a wall near 23 degC, each person's body (the photo's
//! rectangle) near 30.5 degC, their face at the skin temperature chosen for them. Pixels
//! integrate the scene (8x8 samples each), so a far face mixes with the background as on a real
//! 32x24 array; noise, dropped frames and the odd corrupted frame come on top.

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{in_view, placement, total_frames, WalkUp, Walker};
use crate::sources::thermal::{csv, mlx90640};
use dolbom_face::Detection;

/// How the simulated sensor behaves.
#[derive(Debug, Clone)]
pub struct ThermalSim {
    pub fps: f64,
    pub ambient_c: f32,
    pub noise_c: f32,
    /// Fraction of frames not sent.
    pub dropout: f64,
    /// Fraction of frames sent with a flipped byte.
    pub corrupt: f64,
    pub csv: bool,
    pub calibration: [f64; 6],
    pub seed: u64,
}

/// A walker's face in their photo's own pixels, found once by the detector.
pub type PhotoFace = (Detection, f64, f64);

/// A small deterministic generator, so a scene replays identically.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-12), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A rectangle with a temperature, in thermal pixel coordinates.
#[derive(Debug, Clone, Copy)]
pub struct Blob {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
    pub celsius: f32,
    /// Draw as the ellipse inscribed in the rectangle (faces), else the full rectangle.
    pub ellipse: bool,
}

impl Blob {
    fn contains(&self, x: f64, y: f64) -> bool {
        if !(x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1) {
            return false;
        }
        if !self.ellipse {
            return true;
        }
        let (cx, cy) = ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0);
        let (rx, ry) = ((self.x1 - self.x0) / 2.0, (self.y1 - self.y0) / 2.0);
        ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0
    }
}

/// Renders a 32x24 frame: background `ambient - 1` with a faint vertical gradient, blobs painted
/// in order (later on top), each pixel the mean of 8x8 samples, plus Gaussian noise.
pub fn render(blobs: &[Blob], ambient_c: f32, noise_c: f32, rng: &mut Rng) -> Vec<f32> {
    let (w, h) = (mlx90640::WIDTH, mlx90640::HEIGHT);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let mut sum = 0.0f64;
            for sy in 0..8 {
                for sx in 0..8 {
                    let (px, py) = (x as f64 + (sx as f64 + 0.5) / 8.0, y as f64 + (sy as f64 + 0.5) / 8.0);
                    let mut t = f64::from(ambient_c) - 1.0 + 0.5 * py / h as f64;
                    for b in blobs {
                        if b.contains(px, py) {
                            t = f64::from(b.celsius);
                        }
                    }
                    sum += t;
                }
            }
            out.push((sum / 64.0 + f64::from(noise_c) * rng.gauss()) as f32);
        }
    }
    out
}

/// The blobs of the walk-up scene at video frame `i`.
pub fn scene_at(i: u64, walkers: &[Walker], faces: &[PhotoFace], p: &WalkUp, cal: &[f64; 6]) -> Vec<Blob> {
    let Some((w, within)) = in_view(walkers.len(), p, i) else { return Vec::new() };
    let walker = &walkers[w];
    let (face, pw, ph) = &faces[w];
    let frac = walker.frac(within, p);
    let (k, ox, oy) = placement(*pw, *ph, frac, f64::from(p.width), f64::from(p.height));
    let to_t = |x: f64, y: f64| crate::screening::fusion::to_thermal(cal, [(ox + x * k) as f32, (oy + y * k) as f32]);
    let (bx0, by0) = to_t(0.0, 0.0);
    let (bx1, by1) = to_t(*pw, *ph);
    let [fx0, fy0, fx1, fy1] = face.bbox.map(f64::from);
    let (x0, y0) = to_t(fx0, fy0);
    let (x1, y1) = to_t(fx1, fy1);
    vec![
        Blob { x0: bx0, y0: by0, x1: bx1, y1: by1, celsius: 30.5, ellipse: false },
        Blob { x0, y0, x1, y1, celsius: walker.skin_c, ellipse: true },
    ]
}

/// A pseudo-terminal pair; the slave's path is what the daemon opens as its serial port.
pub struct Pty {
    pub master: File,
    pub slave_path: String,
}

pub fn open_pty() -> std::io::Result<Pty> {
    let (mut master, mut slave): (RawFd, RawFd) = (-1, -1);
    // SAFETY: openpty writes two descriptors we take ownership of; no name buffer or termios.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are valid and owned only here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // Raw mode on the slave: no echo, no newline translation of binary frames.
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(std::os::fd::AsRawFd::as_raw_fd(&slave), &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(std::os::fd::AsRawFd::as_raw_fd(&slave), libc::TCSANOW, &t);
        }
    }
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: the buffer is large enough and NUL-terminated by ttyname_r on success.
    let rc = unsafe { libc::ttyname_r(std::os::fd::AsRawFd::as_raw_fd(&slave), buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ttyname_r succeeded, so buf holds a C string.
    let slave_path = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
    drop(slave); // the daemon opens it by path
    Ok(Pty { master: File::from(master), slave_path })
}

/// True once someone has the slave side open (the master no longer reports a hang-up).
pub fn slave_is_open(master: &File) -> bool {
    let mut fd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(master), events: 0, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut fd, 1, 0) };
    rc == 0 || (fd.revents & libc::POLLHUP) == 0
}

/// Streams the scene into the pty until it ends (then repeats the empty doorway until `run_for`).
pub fn stream(
    pty: &mut Pty,
    walkers: &[Walker],
    faces: &[PhotoFace],
    p: &WalkUp,
    sim: &ThermalSim,
    run_for: Option<Duration>,
) -> std::io::Result<u64> {
    // Start the scene when the daemon opens the port, so both play the same timeline.
    let waiting = Instant::now();
    while !slave_is_open(&pty.master) {
        if waiting.elapsed() > Duration::from_secs(300) {
            return Err(std::io::Error::other("nobody opened the simulated sensor within 5 minutes"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Drain what the daemon sends (its start commands) so the pty buffer never fills.
    // SAFETY: setting O_NONBLOCK on our own descriptor.
    unsafe {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&pty.master);
        libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK);
    }
    let started = Instant::now();
    let mut rng = Rng::new(sim.seed);
    let end = run_for.unwrap_or_else(|| Duration::from_secs_f64(total_frames(walkers.len(), p) as f64 / p.fps + 2.0));
    let mut sent = 0u64;
    let mut n = 0u64;
    let mut scratch = [0u8; 256];
    while started.elapsed() < end {
        let due = started + Duration::from_secs_f64(n as f64 / sim.fps);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        n += 1;
        let _ = std::io::Read::read(&mut pty.master, &mut scratch);
        let video_frame = (started.elapsed().as_secs_f64() * p.fps) as u64;
        let blobs = scene_at(video_frame, walkers, faces, p, &sim.calibration);
        let pixels = render(&blobs, sim.ambient_c, sim.noise_c, &mut rng);
        if rng.next_f64() < sim.dropout {
            continue;
        }
        let mut bytes =
            if sim.csv { csv::encode(&pixels, sim.ambient_c) } else { mlx90640::encode(&pixels, sim.ambient_c) };
        if rng.next_f64() < sim.corrupt {
            let at = (rng.next_f64() * bytes.len() as f64) as usize % bytes.len();
            bytes[at] ^= 0x5A;
        }
        match pty.master.write_all(&bytes) {
            Ok(()) => sent += 1,
            // The daemon closed the port (restart, unplug test): wait for it to come back.
            Err(e) if e.raw_os_error() == Some(libc::EIO) || e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// The face in each walker's photo, found with the configured detector.
pub fn photo_faces(walkers: &[Walker], detector: &mut dyn dolbom_face::FaceDetector) -> Result<Vec<PhotoFace>, String> {
    walkers
        .iter()
        .map(|w| {
            let image = dolbom_face::image::load_bgr(&w.photo).map_err(|e| e.to_string())?;
            let faces = detector.detect(&image).map_err(|e| e.to_string())?;
            let face = faces
                .into_iter()
                .max_by(|a, b| a.area().total_cmp(&b.area()))
                .ok_or_else(|| format!("{}: no face to give a temperature to", w.photo.display()))?;
            use opencv::core::MatTraitConst;
            Ok((face, f64::from(image.cols()), f64::from(image.rows())))
        })
        .collect()
}

pub fn link(path: &Path, target: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink(target, path)
}
