//! The project's build/run/test driver, in the cargo-xtask pattern: plain
//! process calls to `cargo` and `qemu-system-x86_64`, no build-system magic.
//!
//! The logic lives here so that the system tests (`tests/system.rs`) can boot
//! guests through the same runner that `cargo xtask run` uses and inspect
//! what came back, instead of scraping a terminal.

pub mod bench;
pub mod guest_elf;
pub mod images;
pub mod linux_guest;
pub mod qemu;
pub mod qemu_xen;
pub mod run;
pub mod test_suite;
pub mod watch;
pub mod xen;
pub mod xen_pvh;

use std::fmt;
use std::path::PathBuf;

/// Exit status for bad input or a feature that does not exist yet: the run
/// never started, so nothing about the guest is implied.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a run or a test step that went wrong.
pub const EXIT_FAILED: i32 = 1;

/// An error that ends the command: a one-line message and the process exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XtaskError {
    pub status: i32,
    pub message: String,
}

impl XtaskError {
    /// Bad input or an unavailable feature (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        XtaskError { status: EXIT_USAGE, message: message.into() }
    }

    /// Something we tried went wrong (exit status 1).
    pub fn failed(message: impl Into<String>) -> Self {
        XtaskError { status: EXIT_FAILED, message: message.into() }
    }
}

impl fmt::Display for XtaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for XtaskError {}

/// The root of the workspace (xtask always lives one level below it), so
/// every command works from any directory.
/// The user's cache directory, where downloads live outside the repository:
/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn user_cache_dir() -> PathBuf {
    user_cache_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// [`user_cache_dir`] from the two variables. The XDG spec says to ignore a
/// relative `XDG_CACHE_HOME`; with neither usable, a directory under the
/// system's temporary directory.
pub fn user_cache_dir_from(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    xdg_cache_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| home.map(PathBuf::from).filter(|dir| dir.is_absolute()).map(|home| home.join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join("cache"))
}

pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` like cargo does.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The cargo that invoked us (cargo sets `CARGO` for `cargo run`), else the one on PATH.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}
