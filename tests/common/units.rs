//! The shipped systemd units, checked against the daemons as they really run. This machine kind
//! has no systemd as PID 1, so a unit cannot be started here; instead systemd's own tools rate
//! and expand the units, and the daemons run under strace (and, where the kernel has it, under
//! the same write-xor-execute rule MemoryDenyWriteExecute= enforces) to see what they call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn unit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd").join(name)
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh --tests installs it)"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `systemd-analyze security --offline=yes`'s overall exposure of a unit file (0 = locked, 10 = open).
pub fn exposure(unit: &Path) -> f64 {
    let text = tool("systemd-analyze", &["security", "--offline=yes", "--no-pager", unit.to_str().expect("utf-8")]);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
    let value = line.rsplit(':').next().and_then(|v| v.split_whitespace().next()).expect("a rating");
    value.parse().unwrap_or_else(|_| panic!("not a rating: {line}"))
}

/// The system calls a group such as `@system-service` stands for, nested groups expanded.
fn expand(group: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in tool("systemd-analyze", &["syscall-filter", "--no-pager", group]).lines().skip(1) {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if name.starts_with('@') {
            names.extend(expand(name));
        } else {
            names.insert(name.to_string());
        }
    }
    names
}

/// What the unit's `SystemCallFilter=` lines let through: the allow lists, minus the `~` ones.
pub fn allowed_syscalls(unit: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(unit).expect("unit file");
    let (mut allow, mut deny) = (BTreeSet::new(), BTreeSet::new());
    for value in text.lines().filter_map(|l| l.trim().strip_prefix("SystemCallFilter=")) {
        let (set, list) = match value.strip_prefix('~') {
            Some(rest) => (&mut deny, rest),
            None => (&mut allow, value),
        };
        for item in list.split_whitespace() {
            if item.starts_with('@') {
                set.extend(expand(item));
            } else {
                set.insert(item.to_string());
            }
        }
    }
    assert!(!allow.is_empty(), "{} has no SystemCallFilter allow list", unit.display());
    allow.difference(&deny).cloned().collect()
}

/// `strace -f -c` in front of a command: every thread's calls, counted into `summary`.
pub fn traced(program: &Path, summary: &Path) -> Command {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-c", "-o"]).arg(summary).arg(program);
    cmd
}

/// Refuses write+execute memory for the command and what it starts, as MemoryDenyWriteExecute=
/// does; false when this kernel (before 6.3) has no such switch.
pub fn deny_write_execute(cmd: &mut Command) -> bool {
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_GET_MDWE: libc::c_int = 66;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    // SAFETY: PR_GET_MDWE only reads this process's flags.
    let supported = unsafe { libc::prctl(PR_GET_MDWE, 0 as libc::c_ulong, 0, 0, 0) } >= 0;
    if supported {
        use std::os::unix::process::CommandExt;
        // SAFETY: a prctl in the child before exec, touching no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    supported
}

/// The system calls named in an `strace -c` summary.
pub fn called(summary: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(summary).expect("strace summary");
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| *n != "total" && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_string)
        .collect();
    assert!(names.len() > 20, "strace saw too little to judge:\n{text}");
    names
}

/// The calls made outside the unit's filter. SQLite gives its files to their directory's owner
/// with fchown only when it runs as root, as the tests do; the units run as `dolbom`.
pub fn outside_filter(unit: &Path, summary: &Path) -> Vec<String> {
    let allowed = allowed_syscalls(unit);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let expected = |c: &String| allowed.contains(c) || (root && c == "fchown");
    called(summary).into_iter().filter(|c| !expected(c)).collect()
}
