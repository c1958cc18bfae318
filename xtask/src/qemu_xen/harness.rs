//! The nested harness's cache: built once from Debian packages, kept outside
//! the repository, reused by every later run.
//!
//! `<cache>/harness-<fingerprint>/` holds L1's kernel (`vmlinuz`), its
//! initramfs and a one-line description. The fingerprint covers the recipe
//! (packages, modules, the init script), so changing any of them builds a new
//! harness instead of trusting a stale one. The directory appears by an
//! atomic rename at the end of a build, so a half-built harness is never
//! mistaken for a finished one.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::apt::{self, PrivateApt};
use super::{initramfs, progress, Unavailable};

/// Bump for a recipe change that the fingerprint cannot see (say, in how
/// the initramfs is assembled).
const RECIPE_VERSION: &str = "1";
/// L1's kernel (Linux 6.12 from backports, CONFIG_KVM_XEN=y), its QEMU (10
/// from backports) and busybox for the init script.
pub const PACKAGES: &[&str] = &["linux-image-amd64", "qemu-system-x86", "busybox-static"];
/// The packages (150 MB), their unpacked tree (330 MB) and the result (90 MB), with room to spare.
pub const FREE_SPACE_NEEDED_MIB: u64 = 1024;
const BUILD_LOCK: &str = "build.lock";
const LOCK_WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A finished harness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Harness {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// e.g. "Linux 6.12.95+deb12-amd64, qemu-system-x86 1:10.0.2+ds-2+deb13u1~bpo12+1".
    pub description: String,
}

/// Where the harness lives: `$XDG_CACHE_HOME/rust-xen/qemu-xen`, else
/// `~/.cache/rust-xen/qemu-xen`.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

pub fn cache_dir_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    crate::user_cache_dir_from(xdg_cache_home, home).join("rust-xen").join("qemu-xen")
}

/// `harness-<16 hex digits>`, from everything that goes into a harness.
pub fn harness_dir_name() -> String {
    let packages = PACKAGES.join(",");
    let modules = initramfs::L1_MODULES.join(",");
    let parts = [RECIPE_VERSION, &packages, &modules, apt::SUITE, apt::BACKPORTS, initramfs::INIT_SCRIPT];
    format!("harness-{:016x}", fingerprint(&parts))
}

/// FNV-1a over the parts, each terminated by a NUL: stable across Rust
/// releases, unlike std's hasher.
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.bytes().chain([0])) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The finished harness in `cache`, if there is one.
pub fn cached_in(cache: &Path) -> Option<Harness> {
    let dir = cache.join(harness_dir_name());
    let harness = Harness {
        kernel: dir.join("vmlinuz"),
        initramfs: dir.join("initramfs.cpio"),
        description: std::fs::read_to_string(dir.join("description")).ok()?.trim().to_string(),
    };
    (harness.kernel.is_file() && harness.initramfs.is_file()).then_some(harness)
}

/// The cached harness, built first if needed.
pub fn ensure() -> Result<Harness, Unavailable> {
    let cache = cache_dir();
    if let Some(harness) = cached_in(&cache) {
        return Ok(harness);
    }
    check_host()?;
    std::fs::create_dir_all(&cache)
        .map_err(|err| Unavailable::Failed(format!("cannot create the cache {}: {err}", cache.display())))?;
    let _lock = BuildLock::acquire(&cache)?;
    // Another xtask may have finished it while we waited for the lock.
    if let Some(harness) = cached_in(&cache) {
        return Ok(harness);
    }
    check_free_space(&cache)?;
    let work = cache.join(format!("build-{}", std::process::id()));
    let result = build(&cache, &work);
    // Whatever happened, the packages and the unpacked tree (about 500 MB) go.
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// What building needs from the host, checked before anything is downloaded.
fn check_host() -> Result<(), Unavailable> {
    let cannot = |why: String| Err(Unavailable::CannotBuildHere(why));
    if std::env::consts::ARCH != "x86_64" {
        return cannot(format!(
            "the nested harness runs x86_64 Linux, not on a {} host",
            std::env::consts::ARCH
        ));
    }
    for tool in ["apt-get", "dpkg-deb"] {
        if find_in_path(tool).is_none() {
            return cannot(format!(
                "the nested harness is built from Debian packages and needs `{tool}` (a Debian or Ubuntu host)"
            ));
        }
    }
    if !Path::new(apt::KEYRING).is_file() {
        return cannot(format!(
            "{} is missing; install it with: apt-get install debian-archive-keyring",
            apt::KEYRING
        ));
    }
    Ok(())
}

fn check_free_space(cache: &Path) -> Result<(), Unavailable> {
    let output = Command::new("df").arg("-Pk").arg(cache).output();
    let available = output.ok().and_then(|out| available_kib(&String::from_utf8_lossy(&out.stdout)));
    match available {
        Some(kib) if kib / 1024 < FREE_SPACE_NEEDED_MIB => Err(Unavailable::Failed(format!(
            "out of disk space: building the nested harness needs about {} GiB free in {}, which has {} MiB",
            FREE_SPACE_NEEDED_MIB / 1024,
            cache.display(),
            kib / 1024
        ))),
        // Without a readable `df` the build itself will say so if the disk fills up.
        _ => Ok(()),
    }
}

/// The "Available" column of `df -Pk` for the single filesystem asked about.
pub fn available_kib(df_output: &str) -> Option<u64> {
    df_output.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

fn build(cache: &Path, work: &Path) -> Result<Harness, Unavailable> {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(work);
    let step = |number: u32, what: &str| {
        progress(&format!("[{number}/5] {what} ({:.0} s so far)", started.elapsed().as_secs_f64()));
    };
    progress(&format!(
        "building the nested harness once, from Debian packages, into {} (a few minutes; later runs reuse it)",
        cache.display()
    ));

    let apt = PrivateApt::new(&work.join("apt"));
    apt.prepare()?;
    step(1, &format!("apt-get update: Debian {} and {} from {}", apt::SUITE, apt::BACKPORTS, apt.mirror()));
    apt.update()?;
    step(2, &format!("downloading {} and their dependencies (about 150 MB)", PACKAGES.join(", ")));
    apt.download(PACKAGES)?;

    let debs = list_debs(&apt.archives())?;
    step(3, &format!("unpacking {} packages", debs.len()));
    let root = work.join("root");
    std::fs::create_dir_all(&root).map_err(|err| failed_io(&root, err))?;
    for deb in &debs {
        unpack(deb, &root)?;
    }

    step(4, "assembling L1's initramfs: busybox, QEMU with its libraries and firmware, the KVM modules");
    let out = work.join("out");
    std::fs::create_dir_all(&out).map_err(|err| failed_io(&out, err))?;
    let (kernel, kernel_version) = initramfs::find_kernel(&root).map_err(Unavailable::Failed)?;
    std::fs::copy(&kernel, out.join("vmlinuz")).map_err(|err| failed_io(&out.join("vmlinuz"), err))?;
    let assembled = initramfs::assemble(&root, &kernel_version, &out.join("initramfs.cpio"))
        .map_err(Unavailable::Failed)?;
    let qemu_version = package_version(&debs, "qemu-system-x86").unwrap_or_else(|| "?".into());
    let description = format!("Linux {kernel_version}, qemu-system-x86 {qemu_version}");
    std::fs::write(out.join("description"), format!("{description}\n"))
        .map_err(|err| failed_io(&out.join("description"), err))?;

    step(5, "installing it in the cache");
    let final_dir = cache.join(harness_dir_name());
    std::fs::rename(&out, &final_dir).map_err(|err| failed_io(&final_dir, err))?;
    remove_other_harnesses(cache, &final_dir);
    progress(&format!(
        "nested harness ready in {:.0} s: {description}; modules {}; {} libraries; initramfs {} MiB",
        started.elapsed().as_secs_f64(),
        assembled.modules.join(", "),
        assembled.libraries,
        assembled.initramfs_bytes / (1024 * 1024)
    ));
    cached_in(cache)
        .ok_or_else(|| Unavailable::Failed(format!("{} is incomplete after the build", final_dir.display())))
}

fn list_debs(archives: &Path) -> Result<Vec<PathBuf>, Unavailable> {
    let entries = std::fs::read_dir(archives)
        .map_err(|err| Unavailable::Failed(format!("cannot list {}: {err}", archives.display())))?;
    let mut debs: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    if debs.is_empty() {
        return Err(Unavailable::Failed(format!("apt downloaded no packages into {}", archives.display())));
    }
    Ok(debs)
}

/// `qemu-system-x86_1%3a10.0.2+ds-2_amd64.deb` -> `1:10.0.2+ds-2` for `qemu-system-x86`.
pub fn package_version(debs: &[PathBuf], package: &str) -> Option<String> {
    debs.iter().find_map(|deb| {
        let name = deb.file_name()?.to_str()?;
        let rest = name.strip_prefix(package)?.strip_prefix('_')?;
        let version = rest.split('_').next()?;
        Some(version.replace("%3a", ":"))
    })
}

fn unpack(deb: &Path, root: &Path) -> Result<(), Unavailable> {
    let output = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(root)
        .output()
        .map_err(|err| Unavailable::Failed(format!("cannot run dpkg-deb: {err}")))?;
    if output.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&output.stderr);
    let why = why.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("no message");
    let disk = if why.contains("No space left") { "out of disk space: " } else { "" };
    Err(Unavailable::Failed(format!("{disk}unpacking {} failed: {}", deb.display(), why.trim())))
}

fn failed_io(path: &Path, err: std::io::Error) -> Unavailable {
    let disk = if err.raw_os_error() == Some(28) { "out of disk space: " } else { "" };
    Unavailable::Failed(format!("{disk}cannot write {}: {err}", path.display()))
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// One builder per cache: a file holding the builder's pid, removed on drop.
/// A lock whose process is gone is stale and taken over.
struct BuildLock {
    path: PathBuf,
}

impl BuildLock {
    fn acquire(cache: &Path) -> Result<BuildLock, Unavailable> {
        let path = cache.join(BUILD_LOCK);
        let started = Instant::now();
        let mut announced = false;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    std::fs::write(&path, std::process::id().to_string())
                        .map_err(|err| failed_io(&path, err))?;
                    // Builds that died with their process left these behind.
                    remove_stale_builds(cache);
                    return Ok(BuildLock { path });
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    let owner =
                        std::fs::read_to_string(&path).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                            if !announced {
                                progress(&format!(
                                    "waiting for xtask (pid {pid}) to finish building the harness"
                                ));
                                announced = true;
                            }
                            if started.elapsed() > LOCK_WAIT_LIMIT {
                                return Err(Unavailable::Failed(format!(
                                    "gave up waiting for pid {pid} to build the harness ({})",
                                    path.display()
                                )));
                            }
                            std::thread::sleep(Duration::from_secs(2));
                        }
                        // Dead owner, or a lock caught between creation and its pid being written.
                        _ if owner.is_some() || started.elapsed() > Duration::from_secs(5) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        _ => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
                Err(err) => return Err(failed_io(&path, err)),
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Harnesses of earlier recipes (about 90 MB each) are never used again.
fn remove_other_harnesses(cache: &Path, keep: &Path) {
    for entry in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with("harness-") && path != keep {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn remove_stale_builds(cache: &Path) {
    for entry in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("build-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_follows_xdg_then_home() {
        let dir =
            |xdg: Option<&str>, home: Option<&str>| cache_dir_from(xdg.map(Into::into), home.map(Into::into));
        assert_eq!(dir(Some("/x/cache"), Some("/home/u")), PathBuf::from("/x/cache/rust-xen/qemu-xen"));
        assert_eq!(dir(None, Some("/home/u")), PathBuf::from("/home/u/.cache/rust-xen/qemu-xen"));
        assert_eq!(dir(Some("relative"), Some("/home/u")), PathBuf::from("/home/u/.cache/rust-xen/qemu-xen"));
        assert!(dir(None, None).ends_with("cache/rust-xen/qemu-xen"));
    }

    #[test]
    fn the_harness_name_changes_with_its_recipe() {
        let name = harness_dir_name();
        assert_eq!(name.len(), "harness-".len() + 16);
        assert_eq!(name, harness_dir_name(), "stable within a build");
        // No input leaves FNV-1a's offset basis.
        assert_eq!(fingerprint(&[]), 0xcbf2_9ce4_8422_2325);
        let base = fingerprint(&["1", "qemu", "#!/bin/sh\n"]);
        assert_ne!(base, fingerprint(&["1", "qemu", "#!/bin/sh \n"]), "a script edit");
        assert_ne!(base, fingerprint(&["1", "qemu#!/bin/sh\n", ""]), "parts do not run together");
        assert_eq!(base, fingerprint(&["1", "qemu", "#!/bin/sh\n"]));
    }

    #[test]
    fn df_output_gives_the_available_column() {
        let df = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                  /dev/vda         264065012 16318812  79713304      17% /\n";
        assert_eq!(available_kib(df), Some(79713304));
        assert_eq!(available_kib("Filesystem\n"), None);
        assert_eq!(available_kib(""), None);
    }

    #[test]
    fn package_versions_come_from_deb_file_names() {
        let debs = [
            PathBuf::from("/a/qemu-system-x86_1%3a10.0.2+ds-2+deb13u1~bpo12+1_amd64.deb"),
            PathBuf::from("/a/qemu-system-common_1%3a10.0.2_amd64.deb"),
        ];
        assert_eq!(
            package_version(&debs, "qemu-system-x86").as_deref(),
            Some("1:10.0.2+ds-2+deb13u1~bpo12+1")
        );
        assert_eq!(package_version(&debs, "qemu-system").as_deref(), None);
        assert_eq!(package_version(&debs, "busybox-static"), None);
    }

    #[test]
    fn only_a_complete_harness_counts_as_cached() {
        let cache = std::env::temp_dir().join(format!("xtask-harness-cached-{}", std::process::id()));
        let dir = cache.join(harness_dir_name());
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(cached_in(&cache), None);
        std::fs::write(dir.join("vmlinuz"), b"k").unwrap();
        std::fs::write(dir.join("description"), b"Linux x\n").unwrap();
        assert_eq!(cached_in(&cache), None, "no initramfs yet");
        std::fs::write(dir.join("initramfs.cpio"), b"i").unwrap();
        let harness = cached_in(&cache).unwrap();
        assert_eq!((harness.description.as_str(), harness.kernel), ("Linux x", dir.join("vmlinuz")));
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
