//! `--on xen --pvh`: the guest as **PVH dom0** of real Xen 4.17 on QEMU TCG.
//!
//! Xen itself is the same cached Debian package as for `--on xen`
//! ([`crate::xen`]). What differs is the machine under it:
//!
//! - QEMU **7.2**: QEMU 10's TCG nested SVM reports every `mov from %crN`
//!   in the guest as a CR0 read, so Xen hands a PVH dom0 stale control
//!   registers and it halts. Debian 12's own `qemu-system-x86` (7.2) and
//!   `qemu-system-common` (its TCG module) are fetched once with
//!   `apt-get download` and unpacked with `dpkg -x` into a cache beside
//!   Xen's, nothing installed; they run beside the host's QEMU 10 with
//!   `QEMU_MODULE_DIR` pointing at their own modules and the host's firmware
//!   (`-L /usr/share/seabios -L /usr/share/qemu`).
//! - `-M q35 -device intel-iommu,intremap=on`: Xen refuses a PVH hardware
//!   domain without an IOMMU.
//! - `-cpu max,-rdtscp`: with RDTSCP Xen's SVM instruction-length decoder
//!   fails on it ("SVM Insn len emulation failed").
//! - `dom0=pvh` on Xen's command line.
//!
//! The verdict is read from Xen's log exactly as for PV dom0.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{Backend, RunOptions, RunReport};
use crate::{guest_elf, xen, XtaskError};

/// Debian 12's QEMU 7.2: the emulator and the package holding its TCG module.
pub const QEMU_PACKAGES: &[&str] = &["qemu-system-x86", "qemu-system-common"];
/// The release `apt-get download` takes them from (the host's backports
/// would otherwise give QEMU 10).
pub const QEMU_RELEASE: &str = "bookworm";
/// Set to the root of an unpacked QEMU 7.2 (holding `usr/bin/qemu-system-x86_64`) to skip the download.
pub const QEMU_OVERRIDE_ENV: &str = "XTASK_QEMU72_ROOT";
const QEMU_IN_ROOT: &str = "usr/bin/qemu-system-x86_64";
const MODULES_IN_ROOT: &str = "usr/lib/x86_64-linux-gnu/qemu";
/// The host's firmware (SeaBIOS, option ROMs), from the packages QEMU 10 came with.
pub const FIRMWARE_DIRS: &[&str] = &["/usr/share/seabios", "/usr/share/qemu"];
/// Memory QEMU gives Xen itself, on top of dom0's.
const XEN_OVERHEAD_MIB: u32 = 512;

impl RunOptions {
    /// A quiet run as PVH dom0 of real Xen, as the system tests use it.
    pub fn xen_pvh(guest: impl Into<PathBuf>, cmdline: &str) -> Self {
        RunOptions { pvh: true, log_path: default_log_path(), ..RunOptions::xen(guest, cmdline) }
    }
}

/// `target/run/xen-pvh.log`, apart from the PV runs' `xen.log`.
pub fn default_log_path() -> PathBuf {
    crate::target_dir().join("run").join("xen-pvh.log")
}

/// `<xen cache>/../qemu-7.2`: beside Xen's cache, outside the repository.
pub fn cache_dir() -> PathBuf {
    let xen_cache = xen::cache_dir();
    xen_cache.parent().map_or_else(|| xen_cache.join("qemu-7.2"), |parent| parent.join("qemu-7.2"))
}

/// An unpacked QEMU 7.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu72 {
    pub program: PathBuf,
    pub module_dir: PathBuf,
}

impl Qemu72 {
    pub fn in_root(root: &Path) -> Self {
        Qemu72 { program: root.join(QEMU_IN_ROOT), module_dir: root.join(MODULES_IN_ROOT) }
    }

    fn is_complete(&self) -> bool {
        self.program.is_file() && self.module_dir.join("accel-tcg-x86_64.so").is_file()
    }
}

/// The override, the cached copy, or a fresh download (which says what it
/// is doing on stderr).
pub fn ensure_qemu72() -> Result<Qemu72, XtaskError> {
    if let Some(root) = std::env::var_os(QEMU_OVERRIDE_ENV).map(PathBuf::from) {
        let qemu = Qemu72::in_root(&root);
        return if qemu.is_complete() {
            Ok(qemu)
        } else {
            Err(XtaskError::usage(format!(
                "{QEMU_OVERRIDE_ENV}={} holds no {QEMU_IN_ROOT} with its TCG module in {MODULES_IN_ROOT}",
                root.display()
            )))
        };
    }
    let cache = cache_dir();
    let root = cache.join("root");
    let qemu = Qemu72::in_root(&root);
    if qemu.is_complete() {
        return Ok(qemu);
    }
    let fail = |what: &str, err: std::io::Error| XtaskError::failed(format!("{what}: {err}"));
    let work = cache.join(format!("download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|err| fail(&format!("cannot create {}", work.display()), err))?;
    eprintln!(
        "xtask: fetching Debian 12's QEMU 7.2 ({}) into {} (once; PVH dom0 needs it)",
        QEMU_PACKAGES.join(", "),
        cache.display()
    );
    let result = download_and_unpack(&work, &root);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if !qemu.is_complete() {
        return Err(XtaskError::failed(format!("{} lacks QEMU 7.2 after unpacking", root.display())));
    }
    eprintln!("xtask: QEMU 7.2 is at {}", qemu.program.display());
    Ok(qemu)
}

fn download_and_unpack(work: &Path, root: &Path) -> Result<(), XtaskError> {
    let specs: Vec<String> =
        QEMU_PACKAGES.iter().map(|package| format!("{package}/{QEMU_RELEASE}")).collect();
    let fetch = || Command::new("apt-get").arg("download").args(&specs).current_dir(work).status();
    let first =
        fetch().map_err(|err| XtaskError::usage(format!("cannot run apt-get ({err}); {}", manual_hint())))?;
    if !first.success() {
        eprintln!("xtask: apt-get download failed; running apt-get update and trying again");
        xen::run_tool(Command::new("apt-get").arg("update"), "apt-get update")?;
        let second = fetch().map_err(|err| XtaskError::failed(format!("cannot run apt-get: {err}")))?;
        if !second.success() {
            return Err(XtaskError::failed(format!(
                "apt-get download {} failed; {}",
                specs.join(" "),
                manual_hint()
            )));
        }
    }
    let unpacking = work.join("root");
    for package in QEMU_PACKAGES {
        let deb = find_deb(work, package).ok_or_else(|| {
            XtaskError::failed(format!("apt-get left no {package} .deb in {}", work.display()))
        })?;
        xen::run_tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacking), "dpkg -x")?;
    }
    // Appears whole or not at all: a half-unpacked tree is never mistaken for the cache.
    let _ = std::fs::remove_dir_all(root);
    std::fs::rename(&unpacking, root)
        .map_err(|err| XtaskError::failed(format!("cannot move QEMU 7.2 to {}: {err}", root.display())))
}

/// `<package>_<version>_amd64.deb` in `dir`.
fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    std::fs::read_dir(dir).ok()?.flatten().map(|entry| entry.path()).find(|path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".deb"))
    })
}

fn manual_hint() -> String {
    format!(
        "this needs Debian 12 ({QEMU_RELEASE}) in apt's sources, or {QEMU_OVERRIDE_ENV} set to a \
         `dpkg -x` of {} from {QEMU_RELEASE}",
        QEMU_PACKAGES.join(" and ")
    )
}

/// QEMU 7.2's arguments for Xen with the guest as PVH dom0 of `dom0_mib` MiB.
pub fn qemu_args(xen: &Path, module: &str, dom0_mib: u32) -> Vec<String> {
    let machine_mib = (dom0_mib + XEN_OVERHEAD_MIB).max(1024);
    let xen_cmdline = format!(
        "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem={dom0_mib}M,max:{dom0_mib}M noreboot dom0=pvh"
    );
    let mut args: Vec<String> =
        FIRMWARE_DIRS.iter().flat_map(|dir| ["-L".to_string(), dir.to_string()]).collect();
    args.extend(
        [
            "-M",
            "q35",
            "-device",
            "intel-iommu,intremap=on",
            "-accel",
            "tcg",
            "-cpu",
            "max,-rdtscp",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
            "-net",
            "none",
        ]
        .map(String::from),
    );
    args.extend(["-m".into(), format!("{machine_mib}M"), "-kernel".into(), xen.display().to_string()]);
    args.extend(["-append".into(), xen_cmdline, "-initrd".into(), module.to_string()]);
    args
}

/// Boots the guest as PVH dom0 and waits for Xen's verdict line.
pub fn run(options: &RunOptions) -> Result<RunReport, XtaskError> {
    debug_assert_eq!(options.backend, Backend::Xen);
    let guest = guest_elf::inspect(&options.guest)?;
    if !guest.has_pvh_entry() {
        return Err(XtaskError::usage(format!(
            "guest `{}` has Xen notes but no XEN_ELFNOTE_PHYS32_ENTRY ({}), which a PVH dom0 needs",
            options.guest.display(),
            guest_elf::XEN_ELFNOTE_PHYS32_ENTRY
        )));
    }
    if options.gdb {
        return Err(XtaskError::usage(
            "--gdb is not supported with --on xen (attach to Xen's gdbstub instead)",
        ));
    }
    if let Some(missing) = FIRMWARE_DIRS.iter().find(|dir| !Path::new(dir).is_dir()) {
        return Err(XtaskError::usage(format!(
            "{missing} is missing: QEMU 7.2 borrows the host QEMU's firmware (install seabios and qemu-system-data)"
        )));
    }
    let module = xen::module_argument(&options.guest, &options.cmdline)?;
    let xen_binary = xen::ensure_xen()?;
    let qemu = ensure_qemu72()?;
    let mut command = Command::new(&qemu.program);
    command.env("QEMU_MODULE_DIR", &qemu.module_dir).args(qemu_args(&xen_binary, &module, options.mem_mib));
    xen::watch(command, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_what_pvh_dom0_needs() {
        let args = qemu_args(Path::new("/c/xen"), "/t/kernel selftest", 128);
        let after = |flag: &str| args.iter().position(|arg| arg == flag).map(|at| args[at + 1].as_str());
        assert_eq!(after("-M"), Some("q35"));
        assert_eq!(after("-device"), Some("intel-iommu,intremap=on"));
        assert_eq!(after("-cpu"), Some("max,-rdtscp"));
        assert_eq!(after("-kernel"), Some("/c/xen"));
        assert_eq!(after("-initrd"), Some("/t/kernel selftest"));
        assert_eq!(after("-m"), Some("1024M"));
        let append = after("-append").unwrap();
        assert!(append.ends_with(" dom0=pvh") && append.contains("dom0_mem=128M,max:128M"), "{append}");
        let firmware: Vec<&str> =
            args.windows(2).filter(|pair| pair[0] == "-L").map(|pair| pair[1].as_str()).collect();
        assert_eq!(firmware, FIRMWARE_DIRS);
    }

    #[test]
    fn the_cache_sits_beside_xens_outside_the_repository() {
        let cache = cache_dir();
        assert_eq!(cache.parent(), xen::cache_dir().parent());
        assert!(cache.ends_with("qemu-7.2"));
        assert!(!cache.starts_with(crate::workspace_root()));
    }

    #[test]
    fn an_unpacked_root_is_complete_only_with_the_tcg_module() {
        let root = std::env::temp_dir().join(format!("xtask-qemu72-{}", std::process::id()));
        let qemu = Qemu72::in_root(&root);
        std::fs::create_dir_all(qemu.program.parent().unwrap()).unwrap();
        std::fs::write(&qemu.program, b"elf").unwrap();
        assert!(!qemu.is_complete(), "no TCG module yet");
        std::fs::create_dir_all(&qemu.module_dir).unwrap();
        std::fs::write(qemu.module_dir.join("accel-tcg-x86_64.so"), b"so").unwrap();
        assert!(qemu.is_complete());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn debs_are_found_by_exact_package_name() {
        let dir = std::env::temp_dir().join(format!("xtask-qemu72-debs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["qemu-system-x86_1%3a7.2_amd64.deb", "qemu-system-common_1%3a7.2_amd64.deb"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = |package| find_deb(&dir, package).and_then(|p| p.file_name().map(|n| n.to_owned()));
        assert_eq!(found("qemu-system-x86").unwrap(), "qemu-system-x86_1%3a7.2_amd64.deb");
        assert_eq!(found("qemu-system-common").unwrap(), "qemu-system-common_1%3a7.2_amd64.deb");
        assert_eq!(found("qemu-system"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
