//! A minimal userspace for the Linux PV guest: an initramfs holding
//! Debian's statically linked busybox and an `/init` script that proves
//! user mode works (a line from a user process, a fork and exec, a pipe)
//! and then powers the domain off, so a clean run ends with Xen's
//! poweroff, not a panic.
//!
//! `busybox-static` is fetched once with `apt-get download`, unpacked with
//! `dpkg-deb -x`, and the archive is kept beside the kernel
//! (`<cache>/initramfs/<package file name>.cpio`).

use std::path::{Path, PathBuf};

use super::{apt, cache_dir, failed, unpack_deb, FetchError};
use crate::qemu_xen::cpio::CpioWriter;

/// The Debian package with a statically linked busybox.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The line `/init` prints first, from a user process.
pub const USERSPACE_BANNER: &str = "rust-xen: Linux userspace is running";
/// What `/init` prints after a pipeline of forked and exec'd processes.
pub const PIPELINE_RESULT: &str = "rust-xen: 6*7=42";

/// `/init`: every command runs as its own process (fork + exec of
/// busybox); any failure leaves init, which Linux turns into a panic.
fn init_script() -> String {
    format!(
        "#!/bin/busybox sh\n\
         set -e\n\
         /bin/busybox echo '{USERSPACE_BANNER}'\n\
         /bin/busybox uname -sr\n\
         /bin/busybox echo 42 | /bin/busybox sed 's/^/rust-xen: 6*7=/'\n\
         /bin/busybox poweroff -f\n"
    )
}

/// The initramfs's path, building it on first use.
pub fn try_fetch_initramfs() -> Result<PathBuf, FetchError> {
    let dir = cache_dir().join("initramfs");
    if let Some(cached) = cached_archive(&dir) {
        return Ok(cached);
    }
    std::fs::create_dir_all(&dir).map_err(|err| failed(format!("cannot create {}: {err}", dir.display())))?;
    let download_dir = dir.join(format!("download.{}", std::process::id()));
    let result = build(&dir, &download_dir);
    let _ = std::fs::remove_dir_all(&download_dir);
    result
}

fn cached_archive(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "cpio"))
}

fn build(dir: &Path, download_dir: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(download_dir)
        .map_err(|err| failed(format!("cannot create {}: {err}", download_dir.display())))?;
    eprintln!("xtask: fetching Debian's {BUSYBOX_PACKAGE} for the Linux guest's initramfs (once)");
    let deb = match apt::download(BUSYBOX_PACKAGE, download_dir) {
        Ok(deb) => deb,
        Err(FetchError::Failed(error)) => {
            eprintln!("xtask: {error}; running apt-get update and trying again");
            apt::update()?;
            apt::download(BUSYBOX_PACKAGE, download_dir)?
        }
        Err(unreachable) => return Err(unreachable),
    };
    let root = download_dir.join("root");
    unpack_deb(&deb, &root)?;
    let busybox_path = root.join("bin").join("busybox");
    let busybox = std::fs::read(&busybox_path).map_err(|err| {
        failed(format!("{BUSYBOX_PACKAGE} has no usable {}: {err}", busybox_path.display()))
    })?;
    let archive = initramfs(&busybox).map_err(|err| failed(format!("cannot write the initramfs: {err}")))?;
    let name =
        deb.file_stem().map_or_else(|| BUSYBOX_PACKAGE.into(), |stem| stem.to_string_lossy().into_owned());
    let path = dir.join(format!("{name}.cpio"));
    let partial = download_dir.join("initramfs.cpio");
    std::fs::write(&partial, archive)
        .map_err(|err| failed(format!("cannot write {}: {err}", partial.display())))?;
    std::fs::rename(&partial, &path)
        .map_err(|err| failed(format!("cannot move {} into place: {err}", path.display())))?;
    eprintln!("xtask: the Linux guest's initramfs is at {}", path.display());
    Ok(path)
}

/// The archive: `/init`, `/bin/busybox`, and the mount points and device
/// nodes a shell expects.
pub fn initramfs(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut cpio = CpioWriter::new(Vec::new());
    for directory in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.directory(directory, 0o755)?;
    }
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.char_device("dev/null", 0o666, 1, 3)?;
    cpio.file("bin/busybox", 0o755, busybox)?;
    cpio.file("init", 0o755, init_script().as_bytes())?;
    cpio.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_init_and_busybox() {
        let archive = initramfs(b"\x7fELF busybox").unwrap();
        let text = String::from_utf8_lossy(&archive);
        for name in ["bin/busybox", "dev/console", "init", "TRAILER!!!"] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(text.contains(USERSPACE_BANNER));
        assert!(text.contains("poweroff -f"));
    }

    #[test]
    fn the_script_prints_what_the_test_looks_for() {
        let script = init_script();
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains(&format!("echo '{USERSPACE_BANNER}'")));
        // The pipeline's output is built at run time, not echoed whole.
        assert!(!script.contains(PIPELINE_RESULT));
        assert!(script.contains("rust-xen: 6*7="));
    }
}
