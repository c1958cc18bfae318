//! Booting a guest on one of the backends, streaming its serial console to
//! the terminal and a log file, and reading its verdict from QEMU's exit status.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The guest's verdict, as the runner reports it.
pub use drivers::debug_exit::Verdict;

use crate::qemu::{self, BareMachine};
use crate::{guest_elf, target_dir, XtaskError};

/// Where a guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// PVH direct boot on plain QEMU TCG, no Xen: the kernel runs native.
    Bare,
    /// PV under the bundled hypervisor, itself booted on QEMU.
    Hv,
    /// PVH under QEMU's Xen emulation (KVM, nested in an L1 VM here).
    QemuXen,
    /// Real Xen 4.17 on QEMU TCG, the conformance oracle.
    Xen,
}

impl Backend {
    /// The name used on the command line and for the log file.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Bare => "bare",
            Backend::Hv => "hv",
            Backend::QemuXen => "qemu-xen",
            Backend::Xen => "xen",
        }
    }

    /// Fails with a usage error (exit 2) for a backend that does not exist yet
    /// (every backend exists now; the check stays for the next one).
    pub fn ensure_available(self) -> Result<(), XtaskError> {
        match self {
            Backend::Bare | Backend::Hv | Backend::QemuXen | Backend::Xen => Ok(()),
        }
    }

    /// `target/run/<backend>.log`, overwritten by each run.
    pub fn default_log_path(self) -> PathBuf {
        target_dir().join("run").join(format!("{}.log", self.name()))
    }
}

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub backend: Backend,
    pub guest: PathBuf,
    /// The hypervisor image for `Backend::Hv` (default: the release build).
    pub hypervisor: Option<PathBuf>,
    pub cmdline: String,
    /// An initial ramdisk for the guest (`Backend::Hv` only): a second boot
    /// module that the hypervisor copies in after the guest kernel.
    pub initrd: Option<PathBuf>,
    /// Boot the guest through its PVH entry (bare always does).
    pub pvh: bool,
    pub mem_mib: u32,
    /// Wait for gdb on port 1234 before the first instruction; disables the timeout.
    pub gdb: bool,
    /// `None` waits forever.
    pub timeout: Option<Duration>,
    /// Copy the guest's serial output (and QEMU's stderr) to our terminal as it arrives.
    pub echo: bool,
    pub log_path: PathBuf,
}

pub const DEFAULT_MEM_MIB: u32 = 128;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl RunOptions {
    /// A quiet bare run with the defaults, as the system tests use it.
    pub fn bare(guest: impl Into<PathBuf>, cmdline: &str) -> Self {
        RunOptions {
            backend: Backend::Bare,
            guest: guest.into(),
            hypervisor: None,
            cmdline: cmdline.to_string(),
            initrd: None,
            pvh: true,
            mem_mib: DEFAULT_MEM_MIB,
            gdb: false,
            timeout: Some(DEFAULT_TIMEOUT),
            echo: false,
            log_path: Backend::Bare.default_log_path(),
        }
    }

    /// A quiet run under the bundled hypervisor, as the system tests use it.
    pub fn hv(hypervisor: impl Into<PathBuf>, guest: impl Into<PathBuf>, cmdline: &str) -> Self {
        RunOptions {
            backend: Backend::Hv,
            hypervisor: Some(hypervisor.into()),
            pvh: false,
            log_path: Backend::Hv.default_log_path(),
            ..RunOptions::bare(guest, cmdline)
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The guest (or hypervisor) wrote a verdict to isa-debug-exit.
    Verdict(Verdict),
    /// QEMU exited with a status that is not a verdict.
    NoVerdict(i32),
    /// QEMU died from a signal that we did not send.
    Signal(i32),
    /// No verdict within the time limit; we killed QEMU.
    TimedOut(Duration),
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Everything the guest wrote to the serial console (lossy UTF-8).
    pub output: String,
    /// QEMU's own diagnostics.
    pub qemu_stderr: String,
    pub end: RunEnd,
    pub log_path: PathBuf,
    pub elapsed: Duration,
}

impl RunReport {
    pub fn verdict(&self) -> Option<Verdict> {
        match self.end {
            RunEnd::Verdict(verdict) => Some(verdict),
            _ => None,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.verdict() == Some(Verdict::Success)
    }

    /// One line saying how the run ended.
    pub fn summary(&self) -> String {
        match self.end {
            RunEnd::Verdict(verdict) => {
                let status = verdict.qemu_status();
                match verdict {
                    Verdict::Success => format!("guest reported success (QEMU status {status})"),
                    Verdict::Failure => format!("guest reported failure (QEMU status {status})"),
                    Verdict::Reboot => {
                        format!("guest asked for a reboot, which counts as a failure (QEMU status {status})")
                    }
                    Verdict::HypervisorFault => {
                        format!("the hypervisor reported a fault of its own (QEMU status {status})")
                    }
                }
            }
            RunEnd::NoVerdict(status @ (0 | 1)) => {
                let mut line = format!("QEMU exited with status {status} without a verdict from the guest");
                match self.qemu_stderr.lines().find(|l| !l.trim().is_empty()) {
                    Some(first) => line.push_str(&format!(": {}", first.trim())),
                    // With -no-reboot a triple fault (or a reset) ends QEMU quietly.
                    None if status == 0 => line.push_str(" (reset or triple fault?)"),
                    None => {}
                }
                line
            }
            RunEnd::NoVerdict(status) => {
                format!("QEMU exited with status {status}, which is not a debug-exit verdict")
            }
            RunEnd::Signal(signal) => format!("QEMU was killed by signal {signal}"),
            RunEnd::TimedOut(limit) => {
                format!("timed out after {} with no verdict from the guest", describe_duration(limit))
            }
        }
    }
}

fn describe_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Boots the guest and waits for its verdict. Bad input and unavailable
/// backends are errors (exit 2); every way the guest itself can end is a report.
pub fn run(options: &RunOptions) -> Result<RunReport, XtaskError> {
    options.backend.ensure_available()?;
    if options.initrd.is_some() && options.backend != Backend::Hv {
        return Err(XtaskError::usage(
            "--initrd is for `--on hv` only (the bundled hypervisor passes it to its PV guest)",
        ));
    }
    if let Some(initrd) = &options.initrd {
        if !initrd.is_file() {
            return Err(XtaskError::usage(format!("initrd {} does not exist", initrd.display())));
        }
    }
    if options.backend == Backend::Xen {
        return crate::xen::run(options);
    }
    let guest = guest_elf::inspect(&options.guest)?;
    let program = qemu::ensure_qemu()?;
    let args = match options.backend {
        Backend::Hv => hv_args(options)?,
        Backend::QemuXen => crate::qemu_xen::qemu_args(options, &guest)?,
        _ => bare_args(options, &guest)?,
    };
    if options.gdb {
        eprintln!(
            "xtask: QEMU is waiting for gdb on port {}; attach with: gdb {} -ex 'target remote :{}'",
            qemu::GDB_PORT,
            options.guest.display(),
            qemu::GDB_PORT
        );
    }
    let timeout = if options.gdb { None } else { options.timeout };
    run_qemu(&program, &args, timeout, options.echo, &options.log_path)
}

fn bare_args(options: &RunOptions, guest: &guest_elf::GuestElf) -> Result<Vec<String>, XtaskError> {
    if !guest.has_pvh_entry() {
        return Err(XtaskError::usage(format!(
            "guest `{}` has Xen notes but no XEN_ELFNOTE_PHYS32_ENTRY ({}), which a PVH boot needs",
            options.guest.display(),
            guest_elf::XEN_ELFNOTE_PHYS32_ENTRY
        )));
    }
    Ok(qemu::bare_args(&BareMachine {
        guest: &options.guest,
        cmdline: &options.cmdline,
        mem_mib: options.mem_mib,
        gdb: options.gdb,
    }))
}

/// The bundled hypervisor as QEMU's PVH kernel, the guest ELF as its boot
/// module, and the guest's memory and command line on the hypervisor's.
fn hv_args(options: &RunOptions) -> Result<Vec<String>, XtaskError> {
    let hypervisor = options
        .hypervisor
        .clone()
        .unwrap_or_else(|| crate::images::bare_metal_binary(crate::images::Profile::Release, "hypervisor"));
    if !hypervisor.is_file() {
        return Err(XtaskError::usage(format!(
            "hypervisor image {} does not exist: run `cargo xtask build` first",
            hypervisor.display()
        )));
    }
    Ok(qemu::hv_args(&qemu::HvMachine {
        hypervisor: &hypervisor,
        guest: &options.guest,
        cmdline: &options.cmdline,
        initrd: options.initrd.as_deref(),
        guest_mem_mib: options.mem_mib,
        gdb: options.gdb,
    }))
}

fn run_qemu(
    program: &Path,
    args: &[String],
    timeout: Option<Duration>,
    echo: bool,
    log_path: &Path,
) -> Result<RunReport, XtaskError> {
    let log = crate::watch::create_log(log_path)?;

    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        // The guest reads no input, and a terminal on stdin would be put in raw mode.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| XtaskError::failed(format!("cannot start {}: {err}", program.display())))?;

    let serial = child
        .stdout
        .take()
        .map(|out| tee(out, echo.then(|| Box::new(std::io::stdout()) as Box<dyn Write + Send>), Some(log)));
    let diagnostics = child
        .stderr
        .take()
        .map(|err| tee(err, echo.then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>), None));

    let end = wait_with_timeout(&mut child, timeout)?;
    let elapsed = started.elapsed();
    let output = join_capture(serial);
    let qemu_stderr = join_capture(diagnostics);
    Ok(RunReport { output, qemu_stderr, end, log_path: log_path.to_path_buf(), elapsed })
}

fn wait_with_timeout(child: &mut Child, timeout: Option<Duration>) -> Result<RunEnd, XtaskError> {
    let deadline = timeout.map(|limit| (Instant::now() + limit, limit));
    loop {
        let polled =
            child.try_wait().map_err(|err| XtaskError::failed(format!("cannot wait for QEMU: {err}")))?;
        if let Some(status) = polled {
            return Ok(classify(status));
        }
        if let Some((at, limit)) = deadline {
            if Instant::now() >= at {
                // Either may fail only because QEMU exited just now; the timeout still stands.
                let _ = child.kill();
                let _ = child.wait();
                return Ok(RunEnd::TimedOut(limit));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// QEMU's exit status as a run's end: isa-debug-exit's codes are verdicts.
pub(crate) fn classify(status: ExitStatus) -> RunEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => match Verdict::from_qemu_status(code) {
            Some(verdict) => RunEnd::Verdict(verdict),
            None => RunEnd::NoVerdict(code),
        },
        (None, Some(signal)) => RunEnd::Signal(signal),
        (None, None) => RunEnd::NoVerdict(-1),
    }
}

/// Copies a stream to an optional terminal and an optional log as it arrives
/// (chunks, not lines, so a half-written line shows at once) and keeps a copy.
fn tee(
    mut source: impl Read + Send + 'static,
    mut terminal: Option<Box<dyn Write + Send>>,
    mut log: Option<File>,
) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut captured = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = match source.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let bytes = &chunk[..read];
            captured.extend_from_slice(bytes);
            // A closed terminal or a full disk must not stop the capture the verdict depends on.
            if let Some(out) = terminal.as_mut() {
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }
            if let Some(file) = log.as_mut() {
                let _ = file.write_all(bytes);
            }
        }
        captured
    })
}

fn join_capture(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    handle
        .and_then(|handle| handle.join().ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(end: RunEnd, qemu_stderr: &str) -> RunReport {
        RunReport {
            output: String::new(),
            qemu_stderr: qemu_stderr.to_string(),
            end,
            log_path: PathBuf::from("target/run/bare.log"),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn qemu_statuses_map_to_verdicts() {
        use std::os::unix::process::ExitStatusExt;
        // A wait status holds the exit code in bits 8..16.
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(classify(exited(33)), RunEnd::Verdict(Verdict::Success));
        assert_eq!(classify(exited(35)), RunEnd::Verdict(Verdict::Failure));
        assert_eq!(classify(exited(1)), RunEnd::NoVerdict(1));
        assert_eq!(classify(exited(34)), RunEnd::NoVerdict(34));
        assert_eq!(classify(ExitStatus::from_raw(9)), RunEnd::Signal(9));
    }

    #[test]
    fn summaries_are_one_line_and_specific() {
        let failure = report(RunEnd::Verdict(Verdict::Failure), "");
        assert_eq!(failure.summary(), "guest reported failure (QEMU status 35)");
        assert!(!failure.succeeded());
        assert!(report(RunEnd::Verdict(Verdict::Success), "").succeeded());
        let timeout = report(RunEnd::TimedOut(Duration::from_secs(60)), "");
        assert_eq!(timeout.summary(), "timed out after 60 s with no verdict from the guest");
        let qemu_error = report(RunEnd::NoVerdict(1), "\nqemu: cannot load kernel\nmore\n");
        assert_eq!(
            qemu_error.summary(),
            "QEMU exited with status 1 without a verdict from the guest: qemu: cannot load kernel"
        );
        for end in [RunEnd::NoVerdict(0), RunEnd::NoVerdict(7), RunEnd::Signal(11)] {
            assert!(!report(end, "").summary().contains('\n'));
        }
    }

    #[test]
    fn every_backend_is_available() {
        for backend in [Backend::Bare, Backend::Hv, Backend::QemuXen, Backend::Xen] {
            assert_eq!(backend.ensure_available(), Ok(()), "{}", backend.name());
        }
    }
}
