//! An independently written Xen PV guest for the acceptance test of issue 3:
//! Debian's cloud kernel, byte for byte as Debian ships it, booted as a PV
//! domU of the bundled hypervisor.
//!
//! [`fetch`] resolves the kernel package from the `linux-image-cloud-amd64`
//! metapackage (bookworm-backports' Linux 6.12, else bookworm's own),
//! downloads it with the host's `apt-get download`, unpacks it with
//! `dpkg-deb -x`, and takes the ELF `vmlinux` out of the bzImage
//! `/boot/vmlinuz-*` ([`bzimage`]: the boot protocol header, then a pure-Rust
//! zstd or lz4 decoder). Only the ELF is kept, in a cache outside the repository
//! (`$XDG_CACHE_HOME/rust-xen/linux-pv/<package>/vmlinux`, else under
//! `~/.cache`), one kernel at a time.

mod apt;
pub mod bzimage;
pub mod userspace;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use bzimage::extract_vmlinux;

use crate::{guest_elf, XtaskError};

/// The metapackage that always depends on the current cloud kernel.
pub const METAPACKAGE: &str = "linux-image-cloud-amd64";
/// The suite with Linux 6.12; bookworm's own 6.1 is the fallback.
pub const BACKPORTS: &str = "bookworm-backports";
/// Set to an ELF vmlinux to use it instead of Debian's (on a host without apt).
pub const OVERRIDE_ENV: &str = "XTASK_LINUX_PV";
/// The extracted kernel's name inside its package's cache directory.
const VMLINUX: &str = "vmlinux";
/// `XEN_ELFNOTE_ENTRY`: the PV entry point, which a PV boot needs.
const XEN_ELFNOTE_ENTRY: u64 = 1;

/// Why no kernel could be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// apt could not reach Debian's archive (no network, DNS, proxy): the
    /// one reason a test may skip.
    ArchiveUnreachable(String),
    /// Anything else: a missing tool, a broken package, a full disk.
    Failed(XtaskError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::ArchiveUnreachable(why) => write!(f, "cannot reach Debian's archive: {why}"),
            FetchError::Failed(error) => f.write_str(&error.message),
        }
    }
}

impl From<FetchError> for XtaskError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Failed(error) => error,
            unreachable => XtaskError::failed(unreachable.to_string()),
        }
    }
}

fn failed(message: impl Into<String>) -> FetchError {
    FetchError::Failed(XtaskError::failed(message))
}

/// Where the extracted kernels are kept.
pub fn cache_dir() -> PathBuf {
    crate::user_cache_dir().join("rust-xen").join("linux-pv")
}

/// The path of an unmodified Debian Linux `vmlinux` with Xen PV support,
/// downloading and extracting it on first use (progress on stderr).
pub fn fetch() -> Result<PathBuf, XtaskError> {
    try_fetch().map_err(XtaskError::from)
}

/// [`fetch`], telling an unreachable archive apart from other failures.
pub fn try_fetch() -> Result<PathBuf, FetchError> {
    if let Some(path) = std::env::var_os(OVERRIDE_ENV).map(PathBuf::from) {
        check_pv_guest(&path).map_err(FetchError::Failed)?;
        return Ok(path);
    }
    let cache = cache_dir();
    let package = match resolve_package() {
        Ok(package) => package,
        Err(why) => {
            if let Some(cached) = any_cached(&cache) {
                eprintln!("xtask: {why}; using the cached {}", cached.display());
                return Ok(cached);
            }
            eprintln!("xtask: {why}; running apt-get update");
            apt::update()?;
            resolve_package().map_err(failed)?
        }
    };
    let cached = cache.join(&package.name).join(VMLINUX);
    if cached.is_file() {
        return Ok(cached);
    }
    eprintln!(
        "xtask: fetching Debian's {} ({}) into {} (once)",
        package.name,
        package.suite,
        cache.display()
    );
    let started = std::time::Instant::now();
    let download_dir = cache.join(format!("download.{}", std::process::id()));
    let result = download_and_extract(package, &cache, &download_dir);
    let _ = std::fs::remove_dir_all(&download_dir);
    let (vmlinux, package) = result?;
    forget_other_kernels(&cache, &package.name);
    eprintln!("xtask: Linux is at {} (fetched in {} s)", vmlinux.display(), started.elapsed().as_secs());
    Ok(vmlinux)
}

/// The kernel package to fetch and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KernelPackage {
    name: String,
    suite: &'static str,
}

/// Backports' cloud kernel if apt knows backports, else bookworm's.
fn resolve_package() -> Result<KernelPackage, String> {
    let depends = |target: Option<&str>| -> Result<Option<String>, String> {
        let mut command = Command::new("apt-cache");
        command.arg("depends");
        if let Some(suite) = target {
            command.args(["-t", suite]);
        }
        let output = command
            .arg(METAPACKAGE)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|err| tool_missing("apt-cache", &err))?;
        Ok(output
            .status
            .success()
            .then(|| kernel_dependency(&String::from_utf8_lossy(&output.stdout)))
            .flatten())
    };
    if let Some(name) = depends(Some(BACKPORTS))? {
        return Ok(KernelPackage { name, suite: BACKPORTS });
    }
    if let Some(name) = depends(None)? {
        eprintln!("xtask: apt has no {BACKPORTS}; using bookworm's own cloud kernel");
        return Ok(KernelPackage { name, suite: "bookworm" });
    }
    Err(format!("apt's package lists do not know {METAPACKAGE}"))
}

fn tool_missing(tool: &str, err: &std::io::Error) -> String {
    if err.kind() == std::io::ErrorKind::NotFound {
        format!("{tool} is not installed: fetching Debian's kernel needs a Debian host (or set {OVERRIDE_ENV} to a vmlinux)")
    } else {
        format!("cannot run {tool}: {err}")
    }
}

/// The concrete kernel package in `apt-cache depends` output.
pub fn kernel_dependency(apt_cache_output: &str) -> Option<String> {
    apt_cache_output.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        (name.starts_with("linux-image-") && !name.contains('<')).then(|| name.to_string())
    })
}

/// The most recently extracted kernel, for when apt cannot say which is current.
fn any_cached(cache: &Path) -> Option<PathBuf> {
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join(VMLINUX))
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .max()
        .map(|(_, path)| path)
}

/// Keeps one kernel: each is some 55 MB.
fn forget_other_kernels(cache: &Path, keep: &str) {
    for entry in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let is_other = entry.file_name() != keep && entry.path().join(VMLINUX).is_file();
        if is_other {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `apt-get download`, after one `apt-get update` if it fails for other
/// reasons than the network (most often stale or missing package lists; the
/// package name moves with each kernel upload, so it is resolved afresh).
/// Returns the `.deb` and the package it holds.
fn download_deb(package: KernelPackage, download_dir: &Path) -> Result<(PathBuf, KernelPackage), FetchError> {
    std::fs::create_dir_all(download_dir)
        .map_err(|err| failed(format!("cannot create {}: {err}", download_dir.display())))?;
    match apt::download(&package.name, download_dir) {
        Ok(deb) => Ok((deb, package)),
        Err(FetchError::Failed(error)) => {
            eprintln!("xtask: {error}; running apt-get update and trying again");
            apt::update()?;
            let fresh = resolve_package().map_err(failed)?;
            Ok((apt::download(&fresh.name, download_dir)?, fresh))
        }
        Err(unreachable) => Err(unreachable),
    }
}

/// Downloads the package and keeps the ELF kernel from it; returns its path
/// and the package it came from.
fn download_and_extract(
    package: KernelPackage,
    cache: &Path,
    download_dir: &Path,
) -> Result<(PathBuf, KernelPackage), FetchError> {
    let (deb, package) = download_deb(package, download_dir)?;
    eprintln!("xtask: unpacking {}", deb.display());
    let root = download_dir.join("root");
    unpack_deb(&deb, &root)?;
    let bzimage_path = find_bzimage(&root.join("boot")).map_err(failed)?;
    let bzimage = std::fs::read(&bzimage_path)
        .map_err(|err| failed(format!("cannot read {}: {err}", bzimage_path.display())))?;
    eprintln!("xtask: decompressing the kernel in {}", bzimage_path.display());
    let elf =
        extract_vmlinux(&bzimage).map_err(|why| failed(format!("{}: {why}", bzimage_path.display())))?;

    let dir = cache.join(&package.name);
    std::fs::create_dir_all(&dir).map_err(|err| failed(format!("cannot create {}: {err}", dir.display())))?;
    let partial = download_dir.join(VMLINUX);
    std::fs::write(&partial, &elf)
        .map_err(|err| failed(format!("cannot write {}: {err}", partial.display())))?;
    check_pv_guest(&partial).map_err(FetchError::Failed)?;
    let vmlinux = dir.join(VMLINUX);
    std::fs::rename(&partial, &vmlinux)
        .map_err(|err| failed(format!("cannot move {} into place: {err}", vmlinux.display())))?;
    Ok((vmlinux, package))
}

/// `dpkg-deb -x`: the package's files under `root`, nothing installed.
fn unpack_deb(deb: &Path, root: &Path) -> Result<(), FetchError> {
    let unpacked = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(root)
        .status()
        .map_err(|err| failed(tool_missing("dpkg-deb", &err)))?;
    if unpacked.success() {
        Ok(())
    } else {
        Err(failed(format!("dpkg-deb -x {} failed ({unpacked})", deb.display())))
    }
}

/// An ELF64 with a PV entry note, as the hypervisor's domain builder needs.
fn check_pv_guest(path: &Path) -> Result<(), XtaskError> {
    let guest = guest_elf::inspect(path)?;
    let mut class = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut class))
        .map_err(|err| XtaskError::failed(format!("cannot read {}: {err}", path.display())))?;
    if class[4] != 2 {
        return Err(XtaskError::usage(format!("{} is not a 64-bit ELF", path.display())));
    }
    if !guest.xen_note_types.contains(&XEN_ELFNOTE_ENTRY) {
        return Err(XtaskError::usage(format!(
            "{} has Xen notes but no XEN_ELFNOTE_ENTRY: not a PV kernel",
            path.display()
        )));
    }
    Ok(())
}

fn find_bzimage(boot: &Path) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(boot)
        .map_err(|err| format!("the package has no {}: {err}", boot.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!("the package has no vmlinuz-* in {}", boot.display())),
        _ => Err(format!("the package has {} vmlinuz-* in {}, expected one", found.len(), boot.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metapackage_names_the_kernel_package() {
        let backports = "linux-image-cloud-amd64\n  Depends: linux-image-6.12.95+deb12-cloud-amd64\n";
        assert_eq!(kernel_dependency(backports).as_deref(), Some("linux-image-6.12.95+deb12-cloud-amd64"));
        let with_virtual = "linux-image-cloud-amd64\n  Depends: <linux-image-virtual>\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";
        assert_eq!(kernel_dependency(with_virtual).as_deref(), Some("linux-image-6.1.0-56-cloud-amd64"));
        assert_eq!(kernel_dependency("linux-image-cloud-amd64\n  Depends: kmod\n"), None);
        assert_eq!(kernel_dependency(""), None);
    }

    #[test]
    fn the_cache_is_outside_the_repository() {
        let cache = cache_dir();
        assert!(!cache.starts_with(crate::workspace_root()), "{}", cache.display());
        assert!(cache.ends_with("rust-xen/linux-pv"), "{}", cache.display());
    }

    #[test]
    fn only_64_bit_pv_kernels_pass_the_check() {
        // The test binary itself: an ELF64, but no Xen notes.
        let host_program = std::env::current_exe().unwrap();
        let error = check_pv_guest(&host_program).unwrap_err();
        assert!(error.message.contains("without Xen notes"), "{}", error.message);
        let error = check_pv_guest(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert!(error.message.contains("does not exist"), "{}", error.message);
    }

    #[test]
    fn an_unreachable_archive_reads_as_such() {
        let error: XtaskError =
            FetchError::ArchiveUnreachable("apt-get update failed: no route".into()).into();
        assert_eq!(error.message, "cannot reach Debian's archive: apt-get update failed: no route");
        assert_eq!(error.status, crate::EXIT_FAILED);
    }
}
