//! The machines the benchmarks run on, and one run of QEMU watched line by
//! line with the runner's own clock.
//!
//! The QEMU command lines are the ordinary runners' (`qemu.rs`, `xen.rs`,
//! `qemu_xen`), adjusted in two ways for the measured runs:
//! - the default CPU model instead of `-cpu max`, in both clock modes so
//!   that they measure the same machine (with `-icount`, `-cpu max` dies
//!   with "Bad icount read");
//! - one vCPU for Xen too (the bundled hypervisor and bare have one):
//!   under icount, every vCPU's instructions advance the shared virtual
//!   clock, so a second, idling vCPU would inflate the figures;
//! - `-icount shift=0,sleep=off` for the deterministic runs: every retired
//!   instruction, the guest's or the hypervisor's, advances the TSC by one.
//!
//! The boot-time runs use the ordinary command lines unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run::{self, Backend, RunEnd, RunOptions};
use crate::watch::{Event, Watched};
use crate::{guest_elf, qemu, qemu_xen, xen, XtaskError};

/// The QEMU option that makes the TSC count retired instructions.
pub const ICOUNT: &str = "shift=0,sleep=off";
/// Guest (or dom0) memory for every run.
pub const GUEST_MEM_MIB: u32 = 128;

/// How a run's TSC ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Clock {
    /// `-icount shift=0`: one tick per retired instruction, deterministic.
    Icount,
    /// Plain TCG: the host's TSC, noisy; reported only as ratios.
    Wall,
}

impl Clock {
    pub fn name(self) -> &'static str {
        match self {
            Clock::Icount => "icount",
            Clock::Wall => "wall",
        }
    }
}

/// The images every run boots.
#[derive(Clone, Debug)]
pub struct Images {
    pub kernel: PathBuf,
    pub hypervisor: PathBuf,
    /// Real Xen, when it could be fetched.
    pub xen: Option<PathBuf>,
}

/// What one run is.
#[derive(Clone, Debug)]
pub struct Setup<'a> {
    pub backend: Backend,
    pub images: &'a Images,
    pub cmdline: &'a str,
    /// `None` for an ordinary (boot-time) run; else the measured machine.
    pub clock: Option<Clock>,
}

/// QEMU's arguments for one run.
pub fn qemu_args(setup: &Setup<'_>) -> Result<Vec<String>, XtaskError> {
    let images = setup.images;
    let args = match setup.backend {
        Backend::Bare => qemu::bare_args(&qemu::BareMachine {
            guest: &images.kernel,
            cmdline: setup.cmdline,
            mem_mib: GUEST_MEM_MIB,
            gdb: false,
        }),
        Backend::Hv => {
            let args = qemu::hv_args(&qemu::HvMachine {
                hypervisor: &images.hypervisor,
                guest: &images.kernel,
                cmdline: setup.cmdline,
                initrd: None,
                guest_mem_mib: GUEST_MEM_MIB,
                gdb: false,
            });
            // The hypervisor measures its own floor when asked.
            if setup.clock.is_some() {
                with_hypervisor_option(args, "bench")?
            } else {
                args
            }
        }
        Backend::Xen => {
            let xen = images.xen.as_deref().ok_or_else(|| XtaskError::failed("real Xen is not available"))?;
            xen::qemu_args(xen, &xen::module_argument(&images.kernel, setup.cmdline)?, GUEST_MEM_MIB)
        }
        Backend::QemuXen => {
            if setup.clock == Some(Clock::Icount) {
                return Err(XtaskError::usage("qemu-xen runs on (nested) KVM, which has no icount"));
            }
            let options =
                RunOptions { mem_mib: GUEST_MEM_MIB, ..qemu_xen::run_options(&images.kernel, setup.cmdline) };
            // Nested mode boots L1 with `-cpu max` (it needs SVM); it is left as is.
            return qemu_xen::qemu_args(&options, &guest_elf::inspect(&images.kernel)?);
        }
    };
    Ok(match setup.clock {
        None => args,
        Some(Clock::Wall) => single_cpu(default_cpu(args)),
        Some(Clock::Icount) => {
            let mut args = single_cpu(default_cpu(args));
            args.extend(["-icount".to_string(), ICOUNT.to_string()]);
            args
        }
    })
}

/// Sets `-smp 1`.
pub fn single_cpu(mut args: Vec<String>) -> Vec<String> {
    match args.iter().position(|arg| arg == "-smp") {
        Some(at) if at + 1 < args.len() => args[at + 1] = "1".into(),
        _ => args.extend(["-smp".into(), "1".into()]),
    }
    args
}

/// Drops `-cpu <model>`, so QEMU uses its default model.
pub fn default_cpu(args: Vec<String>) -> Vec<String> {
    let mut kept = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-cpu" {
            args.next();
        } else {
            kept.push(arg);
        }
    }
    kept
}

/// Adds `option` to the hypervisor's own options (before `--` in `-append`).
pub fn with_hypervisor_option(mut args: Vec<String>, option: &str) -> Result<Vec<String>, XtaskError> {
    let at = args.iter().position(|arg| arg == "-append").map(|at| at + 1);
    let Some(cmdline) = at.and_then(|at| args.get_mut(at)) else {
        return Err(XtaskError::failed("the hypervisor's QEMU command line has no -append"));
    };
    let Some((own, guest)) = cmdline.split_once(" -- ") else {
        return Err(XtaskError::failed(format!("no `--` in the hypervisor's command line `{cmdline}`")));
    };
    *cmdline = format!("{own} {option} -- {guest}");
    Ok(args)
}

/// One run, as the runner saw it.
#[derive(Clone, Debug)]
pub struct Capture {
    /// Each serial line with the time it arrived, from QEMU's start.
    pub lines: Vec<(Duration, String)>,
    pub end: RunEnd,
    /// From QEMU's start to its exit, or to Xen's verdict line.
    pub elapsed: Duration,
    pub qemu_stderr: String,
}

impl Capture {
    /// When the guest's first line (its banner) arrived.
    pub fn first_guest_line(&self) -> Option<Duration> {
        self.lines.iter().find(|(_, line)| super::lines::is_guest_banner(line)).map(|(at, _)| *at)
    }

    pub fn text_lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|(_, line)| line.as_str())
    }
}

/// Runs QEMU until it exits, Xen reports the end of dom0, or `timeout`
/// passes; keeps the serial output in `log`.
pub fn watch(program: &Path, args: &[String], timeout: Duration, log: &Path) -> Result<Capture, XtaskError> {
    let mut command = Command::new(program);
    command.args(args);
    let mut qemu = Watched::spawn(command, log)?;
    let started = qemu.started;
    let mut lines = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let end = loop {
        if started.elapsed() >= timeout {
            break RunEnd::TimedOut(timeout);
        }
        match qemu.next(Duration::from_millis(20))? {
            Event::Output(arrived, bytes) => {
                partial.extend_from_slice(&bytes);
                let mut verdict = None;
                while let Some(newline) = partial.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = partial.drain(..=newline).collect();
                    let line = String::from_utf8_lossy(&raw).trim_end_matches(['\r', '\n']).to_string();
                    verdict = verdict.or_else(|| xen::verdict_of_line(&line));
                    lines.push((arrived.duration_since(started), line));
                }
                if let Some(verdict) = verdict {
                    break RunEnd::Verdict(verdict);
                }
            }
            Event::Quiet => {}
            Event::Exited(status) => break run::classify(status),
        }
    };
    let elapsed = started.elapsed();
    if !partial.is_empty() {
        lines.push((elapsed, String::from_utf8_lossy(&partial).into_owned()));
    }
    // Xen idles after its verdict, and a timed-out run hangs: QEMU is ours to end.
    let qemu_stderr = qemu.finish();
    Ok(Capture { lines, end, elapsed, qemu_stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Images {
        Images {
            kernel: PathBuf::from("/t/kernel"),
            hypervisor: PathBuf::from("/t/hypervisor"),
            xen: Some(PathBuf::from("/c/xen")),
        }
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter().position(|arg| arg == flag).map(|at| args[at + 1].as_str())
    }

    #[test]
    fn measured_runs_use_the_default_cpu_and_icount_when_asked() {
        let images = images();
        for backend in [Backend::Bare, Backend::Hv, Backend::Xen] {
            let icount =
                qemu_args(&Setup { backend, images: &images, cmdline: "bench", clock: Some(Clock::Icount) })
                    .unwrap();
            assert_eq!(after(&icount, "-icount"), Some(ICOUNT), "{backend:?}");
            assert_eq!(after(&icount, "-cpu"), None, "{backend:?}");
            let wall =
                qemu_args(&Setup { backend, images: &images, cmdline: "bench", clock: Some(Clock::Wall) })
                    .unwrap();
            assert!(!wall.iter().any(|arg| arg == "-icount" || arg == "-cpu"), "{backend:?}");
            assert_eq!(after(&wall, "-smp"), Some("1"), "{backend:?}");
            assert_eq!(after(&icount, "-smp"), Some("1"), "{backend:?}");
            let ordinary =
                qemu_args(&Setup { backend, images: &images, cmdline: "bench=boot", clock: None }).unwrap();
            assert_eq!(
                after(&ordinary, "-cpu"),
                Some("max"),
                "{backend:?}: boot runs use the ordinary machine"
            );
        }
    }

    #[test]
    fn the_hypervisor_gets_bench_before_the_separator() {
        let images = images();
        let args = qemu_args(&Setup {
            backend: Backend::Hv,
            images: &images,
            cmdline: "bench",
            clock: Some(Clock::Wall),
        })
        .unwrap();
        assert_eq!(after(&args, "-append"), Some("mem=128 bench -- bench"));
        let boot =
            qemu_args(&Setup { backend: Backend::Hv, images: &images, cmdline: "bench=boot", clock: None })
                .unwrap();
        assert_eq!(after(&boot, "-append"), Some("mem=128 -- bench=boot"));
        let no_append = with_hypervisor_option(vec!["-kernel".into(), "x".into()], "bench");
        assert!(no_append.is_err());
    }

    #[test]
    fn qemu_xen_has_no_icount_and_xen_needs_its_binary() {
        let images = images();
        let icount =
            Setup { backend: Backend::QemuXen, images: &images, cmdline: "", clock: Some(Clock::Icount) };
        assert_eq!(qemu_args(&icount).unwrap_err().status, crate::EXIT_USAGE);
        let no_xen = Images { xen: None, ..images };
        let xen = Setup { backend: Backend::Xen, images: &no_xen, cmdline: "", clock: Some(Clock::Wall) };
        assert!(qemu_args(&xen).is_err());
    }

    #[test]
    fn default_cpu_drops_only_the_model_and_single_cpu_sets_one() {
        let args = ["-M", "pc", "-cpu", "max", "-smp", "2", "-m", "64"].map(String::from).to_vec();
        assert_eq!(single_cpu(default_cpu(args)), ["-M", "pc", "-smp", "1", "-m", "64"]);
        assert_eq!(single_cpu(vec!["-M".into(), "pc".into()]), ["-M", "pc", "-smp", "1"]);
    }
}
