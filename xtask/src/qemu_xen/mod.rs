//! `cargo xtask run --on qemu-xen`: the guest as a PVH guest of QEMU's Xen
//! emulation (`-accel kvm,xen-version=...`), which needs a KVM with Xen HVM
//! support (Linux CONFIG_KVM_XEN).
//!
//! - **Direct mode**, where this host's KVM has it: QEMU runs the guest here.
//! - **Nested mode** otherwise: L0 is QEMU TCG with `-cpu max` (AMD SVM with
//!   NPT), L1 a Debian 12 backports Linux (6.12, CONFIG_KVM_XEN=y) whose
//!   initramfs holds QEMU 10, and L2 that QEMU with Xen emulation running the
//!   guest. L1 is built once from Debian packages and cached outside the
//!   repository (see [`harness`]). The guest ELF reaches L1 as a raw virtio
//!   disk, L2's arguments through fw_cfg; L2's serial console streams out
//!   through L1's, and L2's exit status becomes L0's through L1's own
//!   isa-debug-exit device, so the runner reads the verdict as for any backend.

mod apt;
pub(crate) mod cpio;
pub mod harness;
mod initramfs;
mod libraries;
mod modules;
pub mod probe;

use std::path::Path;

use drivers::debug_exit;

use crate::guest_elf::{self, GuestElf};
use crate::run::{Backend, RunOptions};
use crate::{qemu, XtaskError};

pub use harness::{cache_dir, Harness};

/// KVM with Xen emulation claiming Xen 4.10 (QEMU's documented example);
/// the split irqchip is mandatory for it.
pub const XEN_ACCEL: &str = "kvm,xen-version=0x4000a,kernel-irqchip=split";
/// `direct` or `nested` forces a mode instead of probing.
pub const MODE_ENV: &str = "XTASK_QEMU_XEN_MODE";
/// Where L1's init script puts the guest ELF it copies off the virtio disk.
const L1_GUEST_PATH: &str = "/tmp/guest.elf";
/// L1's own needs on top of L2's memory: its kernel, the initramfs (in RAM) and QEMU.
pub const L1_OVERHEAD_MIB: u32 = 640;
/// fw_cfg names, read by the init script under /sys/firmware/qemu_fw_cfg/by_name/.
const FW_CFG_GUEST_SIZE: &str = "opt/rust-xen/guest-size";
const FW_CFG_L2_ARGS: &str = "opt/rust-xen/l2-args";

/// Why QEMU's Xen emulation cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// This host cannot build the nested harness at all (no route to
    /// Debian's archive, not a Debian-like x86_64 host): a reason to skip.
    CannotBuildHere(String),
    /// Something that should have worked failed (disk full, a broken package).
    Failed(String),
}

impl Unavailable {
    pub fn message(&self) -> &str {
        match self {
            Unavailable::CannotBuildHere(message) | Unavailable::Failed(message) => message,
        }
    }
}

impl From<Unavailable> for XtaskError {
    fn from(unavailable: Unavailable) -> Self {
        XtaskError::failed(format!("qemu-xen: {}", unavailable.message()))
    }
}

/// How this host runs QEMU's Xen emulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Nested(Harness),
}

/// The mode and, in one line, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub mode: Mode,
    pub why: String,
}

/// Chooses the mode (probing KVM unless `XTASK_QEMU_XEN_MODE` says) and, for
/// nested mode, builds the harness if it is not cached yet.
pub fn prepare(qemu_program: &Path) -> Result<Prepared, Unavailable> {
    let forced = std::env::var(MODE_ENV).ok().filter(|value| !value.is_empty());
    let missing = match forced.as_deref() {
        Some("direct") => return Ok(Prepared { mode: Mode::Direct, why: format!("forced by {MODE_ENV}") }),
        Some("nested") => format!("forced by {MODE_ENV}"),
        Some(other) => {
            return Err(Unavailable::Failed(format!("{MODE_ENV}={other} is neither `direct` nor `nested`")));
        }
        None => match probe::kvm_xen(qemu_program) {
            probe::KvmXen::Available => {
                let why = "this host's KVM runs Xen HVM guests".to_string();
                return Ok(Prepared { mode: Mode::Direct, why });
            }
            probe::KvmXen::Missing(reason) => format!("this host's KVM has no Xen HVM support ({reason})"),
        },
    };
    let harness = harness::ensure()?;
    Ok(Prepared { mode: Mode::Nested(harness), why: missing })
}

/// The QEMU arguments for one run, for [`crate::run::run`]: L2's own in
/// direct mode, L0's in nested mode. Says on stderr which mode runs and why.
pub fn qemu_args(options: &RunOptions, guest: &GuestElf) -> Result<Vec<String>, XtaskError> {
    if !guest.has_pvh_entry() {
        return Err(XtaskError::usage(format!(
            "guest `{}` has Xen notes but no XEN_ELFNOTE_PHYS32_ENTRY ({}), which a PVH boot under QEMU's Xen emulation needs",
            options.guest.display(),
            guest_elf::XEN_ELFNOTE_PHYS32_ENTRY
        )));
    }
    if options.cmdline.contains('\n') {
        return Err(XtaskError::usage("the guest command line cannot contain a newline"));
    }
    let program = qemu::ensure_qemu()?;
    let prepared = prepare(&program)?;
    match prepared.mode {
        Mode::Direct => {
            eprintln!("xtask: qemu-xen: direct mode: {}", prepared.why);
            Ok(l2_args(&XenMachine {
                guest: &options.guest.display().to_string(),
                cmdline: &options.cmdline,
                mem_mib: options.mem_mib,
                gdb: options.gdb,
            }))
        }
        Mode::Nested(harness) => {
            eprintln!(
                "xtask: qemu-xen: nested mode: {}; L0 QEMU TCG -> L1 {} -> L2 QEMU with Xen emulation",
                prepared.why, harness.description
            );
            if options.gdb {
                return Err(XtaskError::usage(
                    "--gdb needs direct mode: in nested mode the guest runs two VMs deep, out of gdb's reach",
                ));
            }
            let guest_size = std::fs::metadata(&options.guest)
                .map_err(|err| {
                    XtaskError::usage(format!("cannot read guest `{}`: {err}", options.guest.display()))
                })?
                .len();
            let l2 = l2_args(&XenMachine {
                guest: L1_GUEST_PATH,
                cmdline: &options.cmdline,
                mem_mib: options.mem_mib,
                gdb: false,
            });
            Ok(l0_args(&harness, &options.guest, guest_size, &l2, options.mem_mib + L1_OVERHEAD_MIB))
        }
    }
}

/// A quiet `qemu-xen` run with the defaults, as the system tests use it.
pub fn run_options(guest: impl Into<std::path::PathBuf>, cmdline: &str) -> RunOptions {
    RunOptions {
        backend: Backend::QemuXen,
        pvh: true,
        log_path: Backend::QemuXen.default_log_path(),
        ..RunOptions::bare(guest, cmdline)
    }
}

/// The machine that runs the guest under Xen emulation (L2 in nested mode).
#[derive(Clone, Debug)]
pub struct XenMachine<'a> {
    pub guest: &'a str,
    pub cmdline: &'a str,
    pub mem_mib: u32,
    pub gdb: bool,
}

/// `-M pc` (the machine QEMU's Xen emulation is built for), no NIC (QEMU 10
/// crashes at exit after the Xen platform device unplugs one), the serial
/// port and Xen's primary PV console both on stdout, and isa-debug-exit for
/// the verdict.
pub fn l2_args(machine: &XenMachine<'_>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "pc",
        "-accel",
        XEN_ACCEL,
        "-cpu",
        "host",
        "-smp",
        "1",
        "-display",
        "none",
        "-monitor",
        "none",
        "-nodefaults",
        "-no-reboot",
        "-nic",
        "none",
        "-chardev",
        "stdio,id=console,mux=on",
        "-serial",
        "chardev:console",
        "-device",
        "xen-console,chardev=console",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-m".into(), machine.mem_mib.to_string()]);
    args.extend(["-device".into(), format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT)]);
    args.extend(["-kernel".into(), machine.guest.to_string(), "-append".into(), machine.cmdline.to_string()]);
    if machine.gdb {
        args.extend(["-s".into(), "-S".into()]);
    }
    args
}

/// L0: QEMU TCG booting L1 from the cached harness, with the guest as a
/// read-only raw virtio disk and the run's parameters in fw_cfg.
pub fn l0_args(
    harness: &Harness,
    guest: &Path,
    guest_size: u64,
    l2_args: &[String],
    l1_mem_mib: u32,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "pc",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-nodefaults",
        "-no-reboot",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-m".into(), l1_mem_mib.to_string()]);
    args.extend(["-device".into(), format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT)]);
    args.extend(["-kernel".into(), harness.kernel.display().to_string()]);
    args.extend(["-initrd".into(), harness.initramfs.display().to_string()]);
    // panic=-1: a broken L1 ends at once (as a reset, which -no-reboot turns into an exit).
    args.extend(["-append".into(), "console=ttyS0 quiet loglevel=4 panic=-1".into()]);
    let guest = escape_option_value(&guest.display().to_string());
    args.extend(["-drive".into(), format!("file={guest},if=virtio,format=raw,readonly=on")]);
    args.extend(["-fw_cfg".into(), format!("name={FW_CFG_GUEST_SIZE},string={guest_size}")]);
    // One argument per line, each ending in a newline, so an empty last argument survives.
    let l2: String = l2_args.iter().map(|arg| format!("{arg}\n")).collect();
    let l2 = escape_option_value(&l2);
    args.extend(["-fw_cfg".into(), format!("name={FW_CFG_L2_ARGS},string={l2}")]);
    args
}

/// QEMU's option syntax ends a value at a comma; a literal comma is doubled.
pub fn escape_option_value(value: &str) -> String {
    value.replace(',', ",,")
}

/// Progress of the harness build, on stderr beside the runner's own lines.
fn progress(message: &str) {
    eprintln!("xtask: qemu-xen: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn value_after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2).filter(|pair| pair[0] == flag).map(|pair| pair[1].as_str()).collect()
    }

    #[test]
    fn the_xen_machine_has_xen_emulation_a_console_and_the_verdict_port() {
        let args = l2_args(&XenMachine {
            guest: "/g/kernel",
            cmdline: "selftest crash=none",
            mem_mib: 96,
            gdb: false,
        });
        assert_eq!(value_after(&args, "-accel"), ["kvm,xen-version=0x4000a,kernel-irqchip=split"]);
        assert_eq!(value_after(&args, "-M"), ["pc"]);
        assert_eq!(value_after(&args, "-nic"), ["none"]);
        assert_eq!(value_after(&args, "-m"), ["96"]);
        assert_eq!(value_after(&args, "-kernel"), ["/g/kernel"]);
        assert_eq!(value_after(&args, "-append"), ["selftest crash=none"]);
        let devices = value_after(&args, "-device");
        assert!(devices.contains(&"isa-debug-exit,iobase=0xf4,iosize=0x04"), "{devices:?}");
        assert!(devices.contains(&"xen-console,chardev=console"), "{devices:?}");
        assert_eq!(value_after(&args, "-serial"), ["chardev:console"]);
        assert!(!args.iter().any(|arg| arg == "-S"));
        let gdb = l2_args(&XenMachine { guest: "g", cmdline: "", mem_mib: 64, gdb: true });
        assert!(gdb.ends_with(&["-s".to_string(), "-S".to_string()]));
    }

    #[test]
    fn l0_boots_the_harness_and_hands_over_the_run() {
        let harness = Harness {
            kernel: PathBuf::from("/c/vmlinuz"),
            initramfs: PathBuf::from("/c/initramfs.cpio"),
            description: "Linux x".into(),
        };
        let l2 = vec!["-append".to_string(), "a,b c".to_string()];
        let args = l0_args(&harness, Path::new("/w/odd,name.elf"), 346872, &l2, 768);
        assert_eq!(value_after(&args, "-accel"), ["tcg,thread=multi"]);
        assert_eq!(value_after(&args, "-cpu"), ["max"]);
        assert_eq!(value_after(&args, "-m"), ["768"]);
        assert_eq!(value_after(&args, "-kernel"), ["/c/vmlinuz"]);
        assert_eq!(value_after(&args, "-initrd"), ["/c/initramfs.cpio"]);
        assert_eq!(value_after(&args, "-drive"), ["file=/w/odd,,name.elf,if=virtio,format=raw,readonly=on"]);
        assert_eq!(
            value_after(&args, "-fw_cfg"),
            [
                "name=opt/rust-xen/guest-size,string=346872",
                "name=opt/rust-xen/l2-args,string=-append\na,,b c\n"
            ]
        );
        assert_eq!(value_after(&args, "-device"), ["isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    }

    #[test]
    fn unavailability_becomes_a_one_line_failure() {
        let err: XtaskError = Unavailable::CannotBuildHere("cannot reach the Debian archive".into()).into();
        assert_eq!(err.status, crate::EXIT_FAILED);
        assert_eq!(err.message, "qemu-xen: cannot reach the Debian archive");
    }
}
