//! Finding (or installing) QEMU and building its command lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use drivers::debug_exit;

use crate::XtaskError;

pub const QEMU_PROGRAM: &str = "qemu-system-x86_64";

/// Where Debian 12's backports (QEMU 10; bookworm's own 7.2 lacks what we need) come from.
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/backports.list";
const BACKPORTS_LINE: &str = "deb http://deb.debian.org/debian bookworm-backports main";
const INSTALL_HINT: &str = "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list && apt-get update && apt-get install -y -t bookworm-backports qemu-system-x86";

/// The gdb stub port QEMU's `-s` opens.
pub const GDB_PORT: u16 = 1234;

/// Returns the QEMU binary, installing it first when we are root on Debian.
pub fn ensure_qemu() -> Result<PathBuf, XtaskError> {
    if let Some(path) = find_qemu() {
        return Ok(path);
    }
    if !(running_as_root() && Path::new("/etc/debian_version").exists()) {
        return Err(XtaskError::usage(format!(
            "{QEMU_PROGRAM} is not installed; install it with: {INSTALL_HINT}"
        )));
    }
    eprintln!("xtask: {QEMU_PROGRAM} is missing; installing qemu-system-x86 from bookworm-backports");
    install_qemu_from_backports()?;
    find_qemu().ok_or_else(|| {
        XtaskError::failed(format!("installed qemu-system-x86 but {QEMU_PROGRAM} is still not on PATH"))
    })
}

fn install_qemu_from_backports() -> Result<(), XtaskError> {
    let listed = std::fs::read_to_string(BACKPORTS_LIST).unwrap_or_default();
    if !listed.lines().any(|line| line.trim() == BACKPORTS_LINE) {
        std::fs::write(BACKPORTS_LIST, format!("{BACKPORTS_LINE}\n"))
            .map_err(|err| XtaskError::failed(format!("cannot write {BACKPORTS_LIST}: {err}")))?;
    }
    let steps: [&[&str]; 2] =
        [&["update"], &["install", "-y", "-t", "bookworm-backports", "qemu-system-x86"]];
    for args in steps {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|err| XtaskError::failed(format!("cannot run apt-get: {err}")))?;
        if !status.success() {
            return Err(XtaskError::failed(format!("`apt-get {}` failed ({status})", args.join(" "))));
        }
    }
    Ok(())
}

/// The QEMU binary on PATH, if there is one.
pub fn find_qemu() -> Option<PathBuf> {
    find_in_path(QEMU_PROGRAM)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// The effective uid from /proc (no libc dependency for one number).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// What a run under the bundled hypervisor needs.
#[derive(Clone, Debug)]
pub struct HvMachine<'a> {
    pub hypervisor: &'a Path,
    pub guest: &'a Path,
    pub cmdline: &'a str,
    /// The guest's initial ramdisk, if any.
    pub initrd: Option<&'a Path>,
    pub guest_mem_mib: u32,
    pub gdb: bool,
}

/// Where QEMU's generic loader puts the guest's initrd in machine memory:
/// above the hypervisor image and its heap (which end below 32 MiB) and
/// below where QEMU puts the guest ELF (the top of RAM).
pub const HV_INITRD_ADDRESS: u64 = 64 << 20;

/// Memory QEMU gives the machine beyond the guest's: the hypervisor image,
/// its heap, the M2P table and page tables.
pub const HYPERVISOR_OVERHEAD_MIB: u32 = 64;

/// QEMU boots the hypervisor (a PVH kernel) with the guest ELF as its first
/// module; `mem=` and everything after `--` on the command line are for the
/// hypervisor to pass on.
///
/// An initrd is a second module. QEMU's PVH loader passes only one, so
/// QEMU's generic loader puts the initrd at [`HV_INITRD_ADDRESS`] and the
/// hypervisor's `initrd=<address>,<bytes>` option says where it is, as a
/// boot loader's module list would.
pub fn hv_args(machine: &HvMachine<'_>) -> Vec<String> {
    let initrd = machine.initrd.map(|path| (path, file_len(path)));
    let own_options = match initrd {
        Some((_, len)) => format!("mem={} initrd={HV_INITRD_ADDRESS:#x},{len}", machine.guest_mem_mib),
        None => format!("mem={}", machine.guest_mem_mib),
    };
    let initrd_mib = initrd.map_or(0, |(_, len)| len.div_ceil(1 << 20) as u32);
    let mut args = bare_args(&BareMachine {
        guest: machine.hypervisor,
        cmdline: &format!("{own_options} -- {}", machine.cmdline),
        // QEMU loads the guest ELF (the hypervisor's boot module) and any
        // initrd into the same RAM, so they need room too (Linux's vmlinux
        // is ~55 MiB).
        mem_mib: machine.guest_mem_mib + HYPERVISOR_OVERHEAD_MIB + guest_file_mib(machine.guest) + initrd_mib,
        gdb: machine.gdb,
    });
    args.push("-initrd".into());
    args.push(machine.guest.display().to_string());
    if let Some((path, _)) = initrd {
        args.push("-device".into());
        args.push(format!("loader,file={},addr={HV_INITRD_ADDRESS:#x},force-raw=on", path.display()));
    }
    args
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// The guest file's size in whole MiB, rounded up (0 if it cannot be read:
/// the runner reports a missing guest before QEMU starts anyway).
fn guest_file_mib(guest: &Path) -> u32 {
    file_len(guest).div_ceil(1 << 20) as u32
}

/// What a bare (native PVH) boot needs.
#[derive(Clone, Debug)]
pub struct BareMachine<'a> {
    pub guest: &'a Path,
    pub cmdline: &'a str,
    pub mem_mib: u32,
    pub gdb: bool,
}

/// The QEMU arguments for a PVH direct boot on plain TCG: the guest runs
/// native, the serial port is our stdout, and `isa-debug-exit` carries its verdict.
pub fn bare_args(machine: &BareMachine<'_>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "1",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-nodefaults",
    ]
    .map(String::from)
    .to_vec();
    args.push("-m".into());
    args.push(machine.mem_mib.to_string());
    args.push("-device".into());
    args.push(format!("isa-debug-exit,iobase={:#x},iosize=0x04", debug_exit::PORT));
    args.push("-kernel".into());
    args.push(machine.guest.display().to_string());
    args.push("-append".into());
    args.push(machine.cmdline.to_string());
    if machine.gdb {
        // -s: gdb stub on tcp::1234; -S: hold the CPU until gdb says continue.
        args.push("-s".into());
        args.push("-S".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_args_wire_the_verdict_port_and_the_guest() {
        let guest = Path::new("/tmp/guest.elf");
        let args =
            bare_args(&BareMachine { guest, cmdline: "selftest crash=none", mem_mib: 256, gdb: false });
        let joined = args.join(" ");
        assert!(joined.contains("-device isa-debug-exit,iobase=0xf4,iosize=0x04"), "{joined}");
        assert!(joined.contains("-kernel /tmp/guest.elf"), "{joined}");
        assert!(joined.contains("-m 256"), "{joined}");
        assert!(joined.contains("-serial stdio"), "{joined}");
        // The whole cmdline stays one argument.
        assert!(args.iter().any(|arg| arg == "selftest crash=none"));
        assert!(!args.iter().any(|arg| arg == "-S"));
    }

    #[test]
    fn gdb_holds_the_cpu_at_reset() {
        let args = bare_args(&BareMachine { guest: Path::new("k"), cmdline: "", mem_mib: 128, gdb: true });
        assert!(args.ends_with(&["-s".to_string(), "-S".to_string()]));
    }

    #[test]
    fn an_initrd_is_loaded_beside_and_named_to_the_hypervisor() {
        let initrd = std::env::temp_dir().join(format!("xtask-initrd-test-{}", std::process::id()));
        std::fs::write(&initrd, vec![0u8; 3 << 20]).unwrap();
        let machine = HvMachine {
            hypervisor: Path::new("hv"),
            guest: Path::new("/nonexistent/guest"),
            cmdline: "console=hvc0",
            initrd: Some(&initrd),
            guest_mem_mib: 256,
            gdb: false,
        };
        let args = hv_args(&machine);
        std::fs::remove_file(&initrd).unwrap();
        let joined = args.join(" ");
        let loader = format!("loader,file={},addr=0x4000000,force-raw=on", initrd.display());
        assert!(args.contains(&loader), "{joined}");
        assert!(args
            .iter()
            .any(|arg| arg == &format!("mem=256 initrd=0x4000000,{} -- console=hvc0", 3 << 20)));
        assert!(joined.contains(&format!("-m {}", 256 + HYPERVISOR_OVERHEAD_MIB + 3)), "{joined}");
        let without = hv_args(&HvMachine { initrd: None, ..machine });
        assert!(without.iter().any(|arg| arg == "mem=256 -- console=hvc0"));
        assert!(!without.join(" ").contains("loader"));
    }
}
