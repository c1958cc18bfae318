//! `cargo xtask bench`: the costs of paravirtualization, measured with our
//! own stack next to real Xen 4.17, in one run.
//!
//! 1. The guest's `bench` mode (`kernel/src/bench/`) on four backends: bare
//!    (native), hv (PV under our hypervisor, which also measures its own
//!    SYSCALL/SYSRET floor), xen (PV dom0 of real Xen) and qemu-xen (PVH
//!    under QEMU's Xen emulation, nested; wall clock only, KVM has no
//!    icount). Each under `-icount shift=0,sleep=off` (the TSC counts
//!    retired instructions: deterministic, comparable across hypervisors on
//!    the same emulated CPU) and without it (wall clock, host TSC ticks,
//!    reported only as ratios), `--runs` times each; medians are reported.
//! 2. Boot figures: QEMU start to the guest's first line and to its end,
//!    on the ordinary machines, by the runner's own clock (`bench=boot`).
//! 3. The stripped sizes of the guest and hypervisor ELFs.
//!
//! Output: the report on stdout (also `target/bench/report.txt`), every raw
//! number in `target/bench/results.json`, the seed-claim plot in
//! `target/bench/seed-claim.png`, and each run's serial log under
//! `target/bench/logs/`.

mod json;
pub mod lines;
pub mod machine;
mod plot;
pub mod report;
pub mod results;
mod sizes;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::images::{self, Profile};
use crate::run::{Backend, RunEnd, RunReport, Verdict};
use crate::{qemu, target_dir, xen, XtaskError};
use machine::{Capture, Clock, Images, Setup};
use results::{BenchRun, BootRun, BootSeries, Results, Series};

/// Runs per series unless `--runs` says otherwise.
pub const DEFAULT_RUNS: u32 = 3;
/// A measured run takes a few seconds; a hang must not stall the bench.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The nested harness boots a Linux before the guest (a run takes 15-40 s).
const QEMU_XEN_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub runs: u32,
    /// Run the qemu-xen series (it costs about 25 s a run).
    pub qemu_xen: bool,
}

/// Where the results go.
pub fn output_dir() -> PathBuf {
    target_dir().join("bench")
}

/// Runs everything, prints the report and writes the JSON and the plot.
pub fn run_and_report(options: &BenchOptions, command: String) -> Result<(), XtaskError> {
    let results = measure(options, command)?;
    let text = report::render(&results);
    println!("{text}");
    let dir = output_dir();
    write(&dir.join("report.txt"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(&json::render(&results))
        .map_err(|err| XtaskError::failed(format!("cannot encode the results: {err}")))?;
    write(&dir.join("results.json"), json.as_bytes())?;
    println!("results: {}", shown(&dir.join("results.json")).display());
    println!("report:  {}", shown(&dir.join("report.txt")).display());
    match plot::draw(&results, &dir.join("seed-claim.png")) {
        Ok(path) => println!("plot:    {}", shown(&path).display()),
        Err(why) => println!("plot:    not drawn: {why}"),
    }
    Ok(())
}

fn shown(path: &Path) -> &Path {
    path.strip_prefix(crate::workspace_root()).unwrap_or(path)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), XtaskError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| XtaskError::failed(format!("cannot create {}: {err}", dir.display())))?;
    }
    std::fs::write(path, bytes)
        .map_err(|err| XtaskError::failed(format!("cannot write {}: {err}", path.display())))
}

fn progress(message: &str) {
    eprintln!("xtask: bench: {message}");
}

/// Builds the images and runs every series, the boots and the sizes.
pub fn measure(options: &BenchOptions, command: String) -> Result<Results, XtaskError> {
    if options.runs == 0 {
        return Err(XtaskError::usage("--runs must be at least 1"));
    }
    let started = Instant::now();
    let program = qemu::ensure_qemu()?;
    let kernel = images::build_one(Profile::Release, "kernel")?;
    let hypervisor = images::build_one(Profile::Release, "hypervisor")?;
    let xen = xen::ensure_xen().map_err(|err| err.message);
    if let Err(why) = &xen {
        progress(&format!("real Xen is not available, its series are skipped: {why}"));
    }
    let images = Images { kernel, hypervisor, xen: xen.clone().ok() };
    let unavailable = |backend: Backend| -> Option<String> {
        match (backend, &xen) {
            (Backend::Xen, Err(why)) => Some(format!("real Xen is not available: {why}")),
            _ => None,
        }
    };

    let mut series = Vec::new();
    for backend in [Backend::Bare, Backend::Hv, Backend::Xen] {
        for clock in [Clock::Icount, Clock::Wall] {
            let skipped = unavailable(backend);
            series.push(bench_series(&program, &images, backend, clock, options.runs, skipped));
        }
    }
    series.push(skipped_series(Backend::QemuXen, Clock::Icount, "nested KVM cannot run with -icount"));
    if options.qemu_xen {
        series.push(bench_series(&program, &images, Backend::QemuXen, Clock::Wall, options.runs, None));
    } else {
        series.push(skipped_series(Backend::QemuXen, Clock::Wall, "skipped with --no-qemu-xen"));
    }

    let boots = [Backend::Bare, Backend::Hv, Backend::Xen]
        .into_iter()
        .map(|backend| boot_series(&program, &images, backend, options.runs, unavailable(backend)))
        .collect();
    let scratch = output_dir().join("stripped");
    let sizes = vec![
        sizes::measure("guest", &images.kernel, &scratch),
        sizes::measure("hypervisor", &images.hypervisor, &scratch),
    ];
    Ok(Results {
        command,
        qemu_version: qemu_version(&program),
        runs_per_series: options.runs,
        series,
        boots,
        sizes,
        duration: started.elapsed(),
    })
}

fn skipped_series(backend: Backend, clock: Clock, why: &str) -> Series {
    Series { backend, clock, runs: Vec::new(), skipped: Some(why.to_string()) }
}

fn summary(capture: &Capture, log: &Path) -> (String, bool) {
    let report = RunReport {
        output: String::new(),
        qemu_stderr: capture.qemu_stderr.clone(),
        end: capture.end,
        log_path: log.to_path_buf(),
        elapsed: capture.elapsed,
    };
    (report.summary(), capture.end == RunEnd::Verdict(Verdict::Success))
}

fn bench_series(
    program: &Path,
    images: &Images,
    backend: Backend,
    clock: Clock,
    runs: u32,
    skipped: Option<String>,
) -> Series {
    if let Some(why) = skipped {
        return skipped_series(backend, clock, &why);
    }
    let timeout = if backend == Backend::QemuXen { QEMU_XEN_TIMEOUT } else { RUN_TIMEOUT };
    let mut series = Series { backend, clock, runs: Vec::new(), skipped: None };
    for run in 1..=runs {
        let setup = Setup { backend, images, cmdline: "bench", clock: Some(clock) };
        let args = match machine::qemu_args(&setup) {
            Ok(args) => args,
            Err(err) => return skipped_series(backend, clock, &err.message),
        };
        let log = output_dir().join("logs").join(format!("{}-{}-{run}.log", backend.name(), clock.name()));
        let capture = match machine::watch(program, &args, timeout, &log) {
            Ok(capture) => capture,
            Err(err) => return skipped_series(backend, clock, &err.message),
        };
        let figures = lines::collect(capture.text_lines());
        let (outcome, succeeded) = summary(&capture, &log);
        progress(&format!(
            "{} {} run {run}/{runs}: {} figures, {:.1} s ({})",
            backend.name(),
            clock.name(),
            figures.figures.len(),
            capture.elapsed.as_secs_f64(),
            outcome
        ));
        series.runs.push(BenchRun { figures, outcome, succeeded, elapsed: capture.elapsed, log });
    }
    if series.runs.iter().all(|run| run.figures.figures.is_empty()) {
        let why = series.runs.first().map_or("no runs".to_string(), |run| run.outcome.clone());
        series.skipped = Some(format!("no figures: {why}"));
    }
    series
}

fn boot_series(
    program: &Path,
    images: &Images,
    backend: Backend,
    runs: u32,
    skipped: Option<String>,
) -> BootSeries {
    let mut series = BootSeries { backend, runs: Vec::new(), skipped };
    if series.skipped.is_some() {
        return series;
    }
    for run in 1..=runs {
        let setup = Setup { backend, images, cmdline: "bench=boot", clock: None };
        let log = output_dir().join("logs").join(format!("{}-boot-{run}.log", backend.name()));
        let capture =
            machine::qemu_args(&setup).and_then(|args| machine::watch(program, &args, RUN_TIMEOUT, &log));
        let capture = match capture {
            Ok(capture) => capture,
            Err(err) => {
                series.skipped = Some(err.message);
                return series;
            }
        };
        let (outcome, succeeded) = summary(&capture, &log);
        let first_line = capture.first_guest_line();
        progress(&format!(
            "{} boot {run}/{runs}: first line at {}, end at {:.2} s ({outcome})",
            backend.name(),
            first_line.map_or("-".into(), |at| format!("{:.2} s", at.as_secs_f64())),
            capture.elapsed.as_secs_f64()
        ));
        series.runs.push(BootRun { first_line, shutdown: capture.elapsed, outcome, succeeded });
    }
    series
}

fn qemu_version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_string))
        .unwrap_or_else(|| "QEMU (version unknown)".into())
}
