//! `dolbom console` (run the staff console), `console passwd`, `console users`,
//! `console remove`: the accounts file is managed here, never through the web pages.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use dolbom_console::auth::users::{Users, MIN_PASSWORD_CHARS};
use dolbom_console::lang::Lang;
use dolbom_console::ConsoleConfig;

use crate::ConsoleAction;

pub fn console(config: Option<PathBuf>, action: Option<ConsoleAction>) -> Result<ExitCode> {
    let path = config.context("--config FILE is required / --config 파일을 지정하세요")?;
    let file = ConsoleConfig::load(&path)?;
    match action {
        None => {
            let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from("."));
            dolbom_console::daemon::run_blocking(file, &dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(ConsoleAction::Passwd { id, name, lang }) => {
            let users_file = &file.web.users_file;
            let password = read_password()?;
            let _lock = Users::lock(users_file)?;
            let mut users = Users::load(users_file)?.unwrap_or_default();
            let new = users.get(&id).is_none();
            users.set(&id, name.as_deref(), lang.as_deref().map(Lang::from_code), &password).map_err(|e| match e {
                dolbom_console::auth::UsersError::ShortPassword => anyhow::anyhow!(
                    "비밀번호가 너무 짧습니다: {MIN_PASSWORD_CHARS}자 이상으로 하세요 / \
                     the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
                ),
                e => e.into(),
            })?;
            users.save(users_file)?;
            if new {
                outln!("account {id} added / 계정 {id}을(를) 추가했습니다 ({})", users_file.display())?;
            } else {
                outln!("password of {id} changed / {id}의 비밀번호를 바꿨습니다 ({})", users_file.display())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ConsoleAction::Users) => {
            let users = Users::load(&file.web.users_file)?.unwrap_or_default();
            if users.users.is_empty() {
                eprintln!(
                    "no staff accounts yet: add one with `dolbom console passwd` / \
                     직원 계정이 없습니다: `dolbom console passwd`로 추가하세요"
                );
            }
            for u in &users.users {
                outln!("{}\t{}\t{}", u.id, u.name, u.lang.as_deref().unwrap_or("-"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ConsoleAction::Remove { id }) => {
            let users_file = &file.web.users_file;
            let _lock = Users::lock(users_file)?;
            let mut users = Users::load(users_file)?.unwrap_or_default();
            if !users.remove(&id) {
                bail!("no account {id} / 계정 {id}이(가) 없습니다");
            }
            users.save(users_file)?;
            outln!(
                "account {id} removed; its sessions end at its next request / 계정 {id}을(를) 지웠습니다 \
                 (로그인된 세션은 다음 요청 때 끝납니다)"
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// From the terminal: asked twice, not echoed. From a pipe (scripts, tests): one line.
fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).context("reading the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = prompt_hidden("새 비밀번호 / new password: ")?;
    let second = prompt_hidden("한 번 더 / again: ")?;
    if first != second {
        bail!("the two passwords differ / 두 비밀번호가 다릅니다");
    }
    Ok(first)
}

/// Reads one line from the terminal with echo off (restored afterwards, also on error).
fn prompt_hidden(prompt: &str) -> Result<String> {
    use std::os::fd::AsRawFd;
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let fd = std::io::stdin().as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor (stdin, a terminal).
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        bail!("cannot read the terminal's settings: {}", std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above; `quiet` is a copy of valid settings with echo off.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        bail!("cannot turn off the terminal's echo: {}", std::io::Error::last_os_error());
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
