//! `--on xen`: the guest as PV dom0 of real Xen 4.17 on QEMU TCG, the
//! conformance oracle for the PV ABI.
//!
//! Xen comes from Debian's `xen-hypervisor-4.17-amd64` package, fetched
//! once with `apt-get download` into a cache outside the repository
//! (`$XDG_CACHE_HOME/xen-guest/xen-4.17`, else `~/.cache/...`), unpacked
//! with `dpkg -x`, and gunzipped (QEMU's multiboot loader wants the ELF).
//! QEMU boots Xen with our ELF as the dom0 module; the guest's console
//! (`console_io`) shares the serial line with Xen's log. Xen ends the run
//! with `(XEN) Hardware Dom0 halted` (poweroff: success), `... crashed`
//! (failure) or `... shutdown` (reboot: failure); with `noreboot` QEMU then
//! idles, so the runner watches for that line and ends QEMU itself.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run::{Backend, RunEnd, RunOptions, RunReport, Verdict};
use crate::watch::{Event, Watched};
use crate::{guest_elf, qemu, XtaskError};

/// The Debian package holding the hypervisor.
pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-amd64";
/// The compressed hypervisor inside the package.
const XEN_GZ_IN_PACKAGE: &str = "boot/xen-4.17-amd64.gz";
/// The unpacked hypervisor in the cache.
const XEN_BINARY: &str = "xen-4.17-amd64";
/// Set to a Xen multiboot ELF to use it instead of the cached download.
pub const XEN_OVERRIDE_ENV: &str = "XTASK_XEN";
/// `XEN_ELFNOTE_ENTRY`: the PV entry point a PV loader jumps to.
pub const XEN_ELFNOTE_ENTRY: u64 = 1;
/// Memory QEMU gives Xen itself, on top of dom0's.
const XEN_OVERHEAD_MIB: u32 = 512;

impl RunOptions {
    /// A quiet run as PV dom0 of real Xen, as the system tests use it.
    pub fn xen(guest: impl Into<PathBuf>, cmdline: &str) -> Self {
        RunOptions {
            backend: Backend::Xen,
            pvh: false,
            log_path: Backend::Xen.default_log_path(),
            ..RunOptions::bare(guest, cmdline)
        }
    }
}

/// Where the downloaded hypervisor is kept.
pub fn cache_dir() -> PathBuf {
    crate::user_cache_dir().join("xen-guest").join("xen-4.17")
}

/// The Xen binary to boot: the override, the cached copy, or a fresh
/// download (which says what it is doing on stderr).
pub fn ensure_xen() -> Result<PathBuf, XtaskError> {
    if let Some(path) = std::env::var_os(XEN_OVERRIDE_ENV).map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(XtaskError::usage(format!("{XEN_OVERRIDE_ENV}={} is not a file", path.display())))
        };
    }
    let cache = cache_dir();
    let binary = cache.join(XEN_BINARY);
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|err| XtaskError::failed(format!("cannot create {}: {err}", cache.display())))?;
    eprintln!("xtask: fetching Debian's {XEN_PACKAGE} into {} (once)", cache.display());
    let deb = match find_deb(&cache) {
        Some(deb) => deb,
        None => download(&cache)?,
    };
    eprintln!("xtask: unpacking {}", deb.display());
    let root = cache.join("root");
    run_tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&root), "dpkg -x")?;
    let compressed = root.join(XEN_GZ_IN_PACKAGE);
    let partial = cache.join(format!("{XEN_BINARY}.partial"));
    let output = File::create(&partial)
        .map_err(|err| XtaskError::failed(format!("cannot create {}: {err}", partial.display())))?;
    run_tool(Command::new("gzip").arg("-dc").arg(&compressed).stdout(output), "gzip -dc")?;
    std::fs::rename(&partial, &binary)
        .map_err(|err| XtaskError::failed(format!("cannot move {} into place: {err}", binary.display())))?;
    eprintln!("xtask: Xen is at {}", binary.display());
    Ok(binary)
}

fn find_deb(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().map(|entry| entry.path()).find(|path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(XEN_PACKAGE) && name.ends_with(".deb"))
    })
}

/// `apt-get download`, with `apt-get update` first if the lists lack it.
fn download(cache: &Path) -> Result<PathBuf, XtaskError> {
    let fetch = || Command::new("apt-get").arg("download").arg(XEN_PACKAGE).current_dir(cache).status();
    let first =
        fetch().map_err(|err| XtaskError::usage(format!("cannot run apt-get ({err}); {}", manual_hint())))?;
    if !first.success() {
        eprintln!("xtask: apt-get download failed; running apt-get update and trying again");
        run_tool(Command::new("apt-get").arg("update"), "apt-get update")?;
        let second = fetch().map_err(|err| XtaskError::failed(format!("cannot run apt-get: {err}")))?;
        if !second.success() {
            return Err(XtaskError::failed(format!(
                "apt-get download {XEN_PACKAGE} failed; {}",
                manual_hint()
            )));
        }
    }
    find_deb(cache).ok_or_else(|| {
        XtaskError::failed(format!("apt-get left no {XEN_PACKAGE} .deb in {}", cache.display()))
    })
}

fn manual_hint() -> String {
    format!("or set {XEN_OVERRIDE_ENV} to an unpacked xen-4.17-amd64 (the gunzipped {XEN_GZ_IN_PACKAGE})")
}

pub(crate) fn run_tool(command: &mut Command, what: &str) -> Result<(), XtaskError> {
    let status = command.status().map_err(|err| XtaskError::failed(format!("cannot run {what}: {err}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(XtaskError::failed(format!("{what} failed ({status})")))
    }
}

/// The `-initrd` argument: QEMU's multiboot modules are comma-separated,
/// each "path command line"; a comma inside one is written twice.
pub fn module_argument(guest: &Path, cmdline: &str) -> Result<String, XtaskError> {
    let path = guest.to_str().ok_or_else(|| XtaskError::usage("the guest path is not UTF-8"))?;
    if path.chars().any(char::is_whitespace) {
        return Err(XtaskError::usage(format!(
            "guest path `{path}` contains whitespace, which a multiboot module line cannot carry"
        )));
    }
    let module = if cmdline.is_empty() { path.to_string() } else { format!("{path} {cmdline}") };
    Ok(module.replace(',', ",,"))
}

/// QEMU's arguments for Xen with the guest as dom0 of `dom0_mib` MiB.
pub fn qemu_args(xen: &Path, module: &str, dom0_mib: u32) -> Vec<String> {
    let machine_mib = (dom0_mib + XEN_OVERHEAD_MIB).max(1024);
    let xen_cmdline = format!(
        "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem={dom0_mib}M,max:{dom0_mib}M noreboot"
    );
    ["-M", "pc", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-nographic", "-no-reboot", "-net", "none"]
        .into_iter()
        .map(String::from)
        .chain(["-m".into(), format!("{machine_mib}M"), "-kernel".into(), xen.display().to_string()])
        .chain(["-append".into(), xen_cmdline, "-initrd".into(), module.to_string()])
        .collect()
}

/// How Xen says the run ended, from one line of its log.
pub fn verdict_of_line(line: &str) -> Option<Verdict> {
    let message = line.trim_end_matches('\r').strip_prefix("(XEN) ")?;
    if message.starts_with("Hardware Dom0 halted") {
        Some(Verdict::Success)
    } else if message.starts_with("Hardware Dom0 crashed") {
        Some(Verdict::Failure)
    } else if message.starts_with("Hardware Dom0 shutdown") {
        Some(Verdict::Reboot)
    } else if message.starts_with("Panic on CPU") {
        Some(Verdict::HypervisorFault)
    } else {
        None
    }
}

/// Boots the guest as dom0 and waits for Xen's verdict line (PVH dom0
/// with `--pvh`: [`crate::xen_pvh`]).
pub fn run(options: &RunOptions) -> Result<RunReport, XtaskError> {
    if options.pvh {
        return crate::xen_pvh::run(options);
    }
    let guest = guest_elf::inspect(&options.guest)?;
    if !guest.xen_note_types.contains(&XEN_ELFNOTE_ENTRY) {
        return Err(XtaskError::usage(format!(
            "guest `{}` has Xen notes but no XEN_ELFNOTE_ENTRY ({XEN_ELFNOTE_ENTRY}), which a PV boot needs",
            options.guest.display()
        )));
    }
    if options.gdb {
        return Err(XtaskError::usage(
            "--gdb is not supported with --on xen (attach to Xen's gdbstub instead)",
        ));
    }
    let module = module_argument(&options.guest, &options.cmdline)?;
    let program = qemu::ensure_qemu()?;
    let xen = ensure_xen()?;
    let args = qemu_args(&xen, &module, options.mem_mib);
    watch_qemu(&program, &args, options)
}

fn watch_qemu(program: &Path, args: &[String], options: &RunOptions) -> Result<RunReport, XtaskError> {
    let mut command = Command::new(program);
    command.args(args);
    watch(command, options)
}

/// Runs `command` (a QEMU booting Xen), streaming and logging its serial
/// output, until Xen says how dom0 ended.
pub(crate) fn watch(command: Command, options: &RunOptions) -> Result<RunReport, XtaskError> {
    let mut qemu = Watched::spawn(command, &options.log_path)?;
    let started = qemu.started;
    let mut output = Vec::new();
    let mut scanned = 0;
    let end = loop {
        if let Some(limit) = options.timeout.filter(|limit| started.elapsed() >= *limit) {
            break RunEnd::TimedOut(limit);
        }
        match qemu.next(Duration::from_millis(50))? {
            Event::Output(_, bytes) => {
                if options.echo {
                    let mut terminal = std::io::stdout();
                    let _ = terminal.write_all(&bytes).and_then(|()| terminal.flush());
                }
                output.extend_from_slice(&bytes);
                // Only whole lines are judged, from where the last look ended.
                let complete = output.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
                let fresh = String::from_utf8_lossy(&output[scanned..complete]).into_owned();
                scanned = complete;
                if let Some(verdict) = fresh.lines().find_map(verdict_of_line) {
                    break RunEnd::Verdict(verdict);
                }
            }
            Event::Quiet => {}
            Event::Exited(status) => break RunEnd::NoVerdict(status.code().unwrap_or(-1)),
        }
    };
    // With `noreboot` Xen idles after its verdict: QEMU is ours to end.
    let qemu_stderr = qemu.finish();
    Ok(RunReport {
        output: String::from_utf8_lossy(&output).into_owned(),
        qemu_stderr,
        end,
        log_path: options.log_path.clone(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_lines_decide_the_verdict() {
        assert_eq!(verdict_of_line("(XEN) Hardware Dom0 halted: halting machine"), Some(Verdict::Success));
        assert_eq!(
            verdict_of_line("(XEN) Hardware Dom0 crashed: 'noreboot' set - not rebooting.\r"),
            Some(Verdict::Failure)
        );
        assert_eq!(verdict_of_line("(XEN) Hardware Dom0 shutdown: rebooting machine"), Some(Verdict::Reboot));
        assert_eq!(verdict_of_line("(XEN) Panic on CPU 0:"), Some(Verdict::HypervisorFault));
        assert_eq!(verdict_of_line("guest says: Hardware Dom0 halted"), None, "guest output is not Xen's");
        assert_eq!(verdict_of_line("(XEN) Freed 656kB init memory"), None);
    }

    #[test]
    fn module_argument_doubles_commas_and_refuses_spaces() {
        let module = module_argument(Path::new("/t/kernel"), "selftest fuzz=1,2").unwrap();
        assert_eq!(module, "/t/kernel selftest fuzz=1,,2");
        assert_eq!(module_argument(Path::new("/t/a,b"), "").unwrap(), "/t/a,,b");
        let error = module_argument(Path::new("/my dir/kernel"), "").unwrap_err();
        assert_eq!(error.status, crate::EXIT_USAGE);
    }

    #[test]
    fn qemu_gets_xen_and_the_dom0_memory() {
        let args = qemu_args(Path::new("/c/xen"), "/t/kernel selftest", 128);
        let after = |flag: &str| args.iter().position(|arg| arg == flag).map(|at| args[at + 1].as_str());
        assert_eq!(after("-kernel"), Some("/c/xen"));
        assert_eq!(after("-initrd"), Some("/t/kernel selftest"));
        assert_eq!(after("-m"), Some("1024M"));
        let append = after("-append").unwrap();
        assert!(append.contains("dom0_mem=128M,max:128M") && append.contains("noreboot"), "{append}");
    }

    #[test]
    fn the_cache_is_outside_the_repository() {
        assert!(!cache_dir().starts_with(crate::workspace_root()));
    }
}
