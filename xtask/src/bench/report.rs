//! The printed report: the icount table, the wall-clock ratios, boot and
//! size figures, and where each of the targets stands.

use std::fmt::Write as _;

use super::lines::ratio;
use super::machine::Clock;
use super::results::Results;
use crate::run::Backend;

/// The native reference for page-table rows: a store and `invlpg` on bare.
const NATIVE_PTE: &str = "pte_write_invlpg";
/// The native reference for privileged-read rows: CPUID on bare.
const NATIVE_CPUID: &str = "cpuid_native";

/// One row of the tables: a benchmark and its native counterpart.
pub struct Row {
    pub name: &'static str,
    pub label: &'static str,
    pub native: Option<&'static str>,
}

pub const ROWS: &[Row] = &[
    Row { name: "null_hypercall", label: "null hypercall (xen_version)", native: Some(NATIVE_CPUID) },
    Row { name: "multicall_per_entry", label: "multicall of 32, per entry", native: None },
    Row { name: "mmu_update_single", label: "mmu_update, 1 PTE", native: Some(NATIVE_PTE) },
    Row {
        name: "mmu_update_batch_per_pte",
        label: "mmu_update, 512 PTEs, per PTE",
        native: Some(NATIVE_PTE),
    },
    Row { name: "update_va_mapping", label: "update_va_mapping (+invlpg)", native: Some(NATIVE_PTE) },
    Row { name: "trapped_pte_write", label: "trapped PTE write (emulated)", native: Some(NATIVE_PTE) },
    Row { name: "pte_write_invlpg", label: "PTE write + invlpg (pv_ops)", native: Some(NATIVE_PTE) },
    Row { name: "evtchn_roundtrip", label: "event channel round trip", native: None },
    Row { name: "timer_set_block", label: "set_timer_op + block (due)", native: None },
    Row { name: "timer_wakeup_latency", label: "timer wake-up latency [ns]", native: None },
    Row { name: "cpuid_emulated", label: "CPUID, forced emulation", native: Some(NATIVE_CPUID) },
    Row { name: "cpuid_native", label: "CPUID, plain instruction", native: Some(NATIVE_CPUID) },
    Row { name: "syscall_floor", label: "hv floor: syscall+sysret", native: None },
];

const LABEL_WIDTH: usize = 31;

fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn times(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}x"),
        Some(v) if v >= 10.0 => format!("{v:.1}x"),
        Some(v) => format!("{v:.2}x"),
        None => "-".into(),
    }
}

/// The hypervisor's floor: its own line in the hv runs.
fn floor(results: &Results, clock: Clock) -> Option<f64> {
    results.value(Backend::Hv, clock, "syscall_floor")
}

/// `backend`'s figure for `row` over the bare machine's native counterpart.
fn over_native(results: &Results, clock: Clock, backend: Backend, row: &Row) -> Option<f64> {
    ratio(results.value(backend, clock, row.name), results.value(Backend::Bare, clock, row.native?))
}

/// hv over its floor, for what involves the hypervisor and is counted in
/// ticks (not the latency, not the plain CPUID it never sees).
fn over_floor(results: &Results, clock: Clock, row: &Row) -> Option<f64> {
    if matches!(row.name, "timer_wakeup_latency" | NATIVE_CPUID) {
        return None;
    }
    ratio(results.value(Backend::Hv, clock, row.name), floor(results, clock))
}

pub fn icount_table(results: &Results) -> String {
    let clock = Clock::Icount;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<LABEL_WIDTH$} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
        "icount: instructions per op", "bare", "hv", "xen", "hv/xen", "hv/floor", "hv/native", "xen/native"
    );
    for row in ROWS {
        let value = |backend| results.value(backend, clock, row.name);
        let _ = writeln!(
            out,
            "{:<LABEL_WIDTH$} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
            row.label,
            number(value(Backend::Bare)),
            number(value(Backend::Hv)),
            number(value(Backend::Xen)),
            times(ratio(value(Backend::Hv), value(Backend::Xen))),
            times(over_floor(results, clock, row)),
            times(over_native(results, clock, Backend::Hv, row)),
            times(over_native(results, clock, Backend::Xen, row)),
        );
    }
    out
}

pub fn wall_table(results: &Results) -> String {
    let clock = Clock::Wall;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<LABEL_WIDTH$} {:>8} {:>9} {:>9} {:>10} {:>12}",
        "wall clock (TCG): ratios only", "hv/xen", "hv/floor", "hv/native", "xen/native", "qemu-xen/xen"
    );
    for row in ROWS {
        let value = |backend| results.value(backend, clock, row.name);
        let _ = writeln!(
            out,
            "{:<LABEL_WIDTH$} {:>8} {:>9} {:>9} {:>10} {:>12}",
            row.label,
            times(ratio(value(Backend::Hv), value(Backend::Xen))),
            times(over_floor(results, clock, row)),
            times(over_native(results, clock, Backend::Hv, row)),
            times(over_native(results, clock, Backend::Xen, row)),
            times(ratio(value(Backend::QemuXen), value(Backend::Xen))),
        );
    }
    out
}

pub fn boot_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<LABEL_WIDTH$} {:>12} {:>12}",
        "boot (wall clock, seconds)", "first line", "shutdown"
    );
    for backend in [Backend::Bare, Backend::Hv, Backend::Xen] {
        let Some(boot) = results.boot(backend) else { continue };
        let seconds = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.2} s"));
        let _ = writeln!(
            out,
            "{:<LABEL_WIDTH$} {:>12} {:>12}",
            backend.name(),
            seconds(boot.first_line_s()),
            seconds(boot.shutdown_s())
        );
    }
    let (hv, xen) = (results.boot(Backend::Hv), results.boot(Backend::Xen));
    if let (Some(hv), Some(xen)) = (hv, xen) {
        let _ = writeln!(
            out,
            "{:<LABEL_WIDTH$} {:>12} {:>12}",
            "hv/xen",
            times(ratio(hv.first_line_s(), xen.first_line_s())),
            times(ratio(hv.shutdown_s(), xen.shutdown_s()))
        );
    }
    out
}

pub fn size_lines(results: &Results) -> String {
    let mut out = String::new();
    for size in &results.sizes {
        let stripped = match &size.stripped {
            Ok(bytes) => format!("{bytes} bytes ({:.1} KiB) stripped", *bytes as f64 / 1024.0),
            Err(why) => format!("stripped size unknown ({why})"),
        };
        let _ = writeln!(out, "{:<11} {} bytes as built, {stripped}", format!("{}:", size.label), size.bytes);
    }
    out
}

/// Where a target stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    Met,
    /// Missed; the text says by how much.
    Missed(String),
    /// Not measured (a backend did not run); the text says why.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub goal: &'static str,
    /// The figures behind the verdict.
    pub measured: String,
    pub standing: Standing,
}

/// `measured / reference` against the limit `at_most` (a ratio).
fn ratio_target(
    goal: &'static str,
    what: &str,
    measured: Option<f64>,
    reference: Option<f64>,
    at_most: f64,
) -> Target {
    let (Some(measured), Some(reference)) = (measured, reference) else {
        return Target {
            goal,
            measured: "-".into(),
            standing: Standing::Unknown(format!("{what} was not measured")),
        };
    };
    let Some(actual) = ratio(Some(measured), Some(reference)) else {
        return Target {
            goal,
            measured: "-".into(),
            standing: Standing::Unknown("the reference is zero".into()),
        };
    };
    let figures =
        format!("{} vs {} = {}", number(Some(measured)), number(Some(reference)), times(Some(actual)));
    let standing = if actual <= at_most {
        Standing::Met
    } else {
        Standing::Missed(format!(
            "by {:.1}x: {} against a limit of {} ({} over)",
            actual / at_most,
            times(Some(actual)),
            times(Some(at_most)),
            number(Some(measured - reference * at_most))
        ))
    };
    Target { goal, measured: figures, standing }
}

fn size_target(goal: &'static str, results: &Results, label: &str, limit_kib: u64) -> Target {
    let Some(Ok(bytes)) = results.size(label).map(|size| size.stripped.clone()) else {
        return Target { goal, measured: "-".into(), standing: Standing::Unknown("no stripped size".into()) };
    };
    let limit = limit_kib * 1024;
    let measured = format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0);
    let standing = if bytes <= limit {
        Standing::Met
    } else {
        Standing::Missed(format!(
            "by {:.1} KiB ({:.2}x the limit)",
            (bytes - limit) as f64 / 1024.0,
            bytes as f64 / limit as f64
        ))
    };
    Target { goal, measured, standing }
}

/// The targets, each judged on this run's medians.
pub fn targets(results: &Results) -> Vec<Target> {
    let icount = |backend, name| results.value(backend, Clock::Icount, name);
    let wall = |backend, name| results.value(backend, Clock::Wall, name);
    let boot = |backend| results.boot(backend).and_then(|boot| boot.first_line_s());
    vec![
        ratio_target(
            "null hypercall <= 0.5x real Xen's (icount instructions)",
            "a null hypercall on hv or xen",
            icount(Backend::Hv, "null_hypercall"),
            icount(Backend::Xen, "null_hypercall"),
            0.5,
        ),
        ratio_target(
            "null hypercall <= 2x the syscall floor (icount)",
            "hv's null hypercall or floor",
            icount(Backend::Hv, "null_hypercall"),
            floor(results, Clock::Icount),
            2.0,
        ),
        ratio_target(
            "null hypercall <= 2x the syscall floor (wall clock)",
            "hv's null hypercall or floor",
            wall(Backend::Hv, "null_hypercall"),
            floor(results, Clock::Wall),
            2.0,
        ),
        ratio_target(
            "batched mmu_update <= 3x a native PTE write, per PTE (icount)",
            "the batch on hv or the native PTE write",
            icount(Backend::Hv, "mmu_update_batch_per_pte"),
            icount(Backend::Bare, NATIVE_PTE),
            3.0,
        ),
        ratio_target(
            "batched mmu_update <= real Xen's, per PTE (icount)",
            "the batch on hv or xen",
            icount(Backend::Hv, "mmu_update_batch_per_pte"),
            icount(Backend::Xen, "mmu_update_batch_per_pte"),
            1.0,
        ),
        ratio_target(
            "boot to the guest's first line <= 1/10 of real Xen's (wall clock)",
            "the boot on hv or xen",
            boot(Backend::Hv),
            boot(Backend::Xen),
            0.1,
        ),
        size_target("guest ELF <= 200 KiB stripped", results, "guest", 200),
        size_target("hypervisor ELF <= 300 KiB stripped", results, "hypervisor", 300),
    ]
}

pub fn target_lines(targets: &[Target]) -> String {
    let mut out = String::from("targets:\n");
    for target in targets {
        let verdict = match &target.standing {
            Standing::Met => "met".to_string(),
            Standing::Missed(by) => format!("MISSED {by}"),
            Standing::Unknown(why) => format!("not judged: {why}"),
        };
        let _ = writeln!(out, "  {:<66} {:<30} {verdict}", target.goal, target.measured);
    }
    out
}

/// Series that were skipped and benchmarks that failed, so that nothing
/// missing from the tables goes unexplained.
pub fn gaps(results: &Results) -> String {
    let mut out = String::new();
    for series in &results.series {
        let which = format!("{} ({})", series.backend.name(), series.clock.name());
        if let Some(why) = &series.skipped {
            let _ = writeln!(out, "  {which}: skipped: {why}");
            continue;
        }
        if let Some(platform) = series.platform() {
            if series.backend == Backend::QemuXen && platform == "native" {
                let _ = writeln!(out, "  {which}: the guest found no Xen under its PVH entry and ran native");
            }
        }
        for run in series.runs.iter().filter(|run| !run.succeeded) {
            let _ =
                writeln!(out, "  {which}: a run ended badly: {} (log {})", run.outcome, run.log.display());
        }
        for name in series.names() {
            match series.failure(&name) {
                Some("ENOSYS") => {
                    let _ = writeln!(out, "  {which}: {name}: not offered by this hypervisor (ENOSYS)");
                }
                Some(reason) => {
                    let _ = writeln!(out, "  {which}: {name} failed: {reason}");
                }
                None => {}
            }
        }
    }
    for boot in &results.boots {
        if let Some(why) = &boot.skipped {
            let _ = writeln!(out, "  boot {}: skipped: {why}", boot.backend.name());
        }
        for run in boot.runs.iter().filter(|run| !run.succeeded) {
            let _ = writeln!(out, "  boot {}: a run ended badly: {}", boot.backend.name(), run.outcome);
        }
    }
    out
}

/// The whole printed report.
pub fn render(results: &Results) -> String {
    let mut out = format!(
        "`{}`: {} runs per series, medians; {}; whole bench {:.0} s\n\n",
        results.command,
        results.runs_per_series,
        results.qemu_version,
        results.duration.as_secs_f64()
    );
    out.push_str(&icount_table(results));
    out.push('\n');
    out.push_str(&wall_table(results));
    out.push('\n');
    out.push_str(&boot_table(results));
    out.push('\n');
    out.push_str(&size_lines(results));
    out.push('\n');
    out.push_str(&target_lines(&targets(results)));
    let gaps = gaps(results);
    if !gaps.is_empty() {
        out.push_str("\nnot measured or failed:\n");
        out.push_str(&gaps);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::bench::lines;
    use crate::bench::results::{BenchRun, BootRun, BootSeries, ImageSize, Series};

    fn series(backend: Backend, clock: Clock, runs: &[&str]) -> Series {
        let runs = runs
            .iter()
            .map(|output| BenchRun {
                figures: lines::collect(output.lines()),
                outcome: "guest reported success (QEMU status 33)".into(),
                succeeded: true,
                elapsed: Duration::from_secs(1),
                log: PathBuf::from("log"),
            })
            .collect();
        Series { backend, clock, runs, skipped: None }
    }

    fn boot(backend: Backend, first_line: f64) -> BootSeries {
        let run = BootRun {
            first_line: Some(Duration::from_secs_f64(first_line)),
            shutdown: Duration::from_secs_f64(first_line + 0.1),
            outcome: String::new(),
            succeeded: true,
        };
        BootSeries { backend, runs: vec![run], skipped: None }
    }

    fn line(name: &str, ticks: f64) -> String {
        format!("bench: name={name} ticks={ticks} iterations=1000 batches=5 unit=ticks\n")
    }

    fn results() -> Results {
        let hv = |null: f64| {
            format!(
                "(HV) bench: name=syscall_floor ticks=10 iterations=10000\n{}{}",
                line("null_hypercall", null),
                line("mmu_update_batch_per_pte", 90.0)
            )
        };
        let xen = format!("{}{}", line("null_hypercall", 400.0), line("mmu_update_batch_per_pte", 100.0));
        let bare = line(NATIVE_PTE, 40.0);
        Results {
            command: "cargo xtask bench".into(),
            qemu_version: "QEMU 10".into(),
            runs_per_series: 3,
            series: vec![
                series(Backend::Bare, Clock::Icount, &[&bare]),
                // The median of three runs decides: 150, not the outlier.
                series(Backend::Hv, Clock::Icount, &[&hv(150.0), &hv(9000.0), &hv(140.0)]),
                series(Backend::Xen, Clock::Icount, &[&xen]),
                Series {
                    backend: Backend::QemuXen,
                    clock: Clock::Wall,
                    runs: vec![],
                    skipped: Some("no KVM".into()),
                },
            ],
            boots: vec![boot(Backend::Hv, 0.1), boot(Backend::Xen, 1.5)],
            sizes: vec![
                ImageSize { label: "guest", path: "k".into(), bytes: 900_000, stripped: Ok(150 * 1024) },
                ImageSize { label: "hypervisor", path: "h".into(), bytes: 900_000, stripped: Ok(330 * 1024) },
            ],
            duration: Duration::from_secs(100),
        }
    }

    fn standing(targets: &[Target], goal_start: &str) -> Standing {
        targets.iter().find(|t| t.goal.starts_with(goal_start)).map(|t| t.standing.clone()).unwrap()
    }

    #[test]
    fn targets_are_judged_on_medians_and_say_by_how_much_they_miss() {
        let results = results();
        assert_eq!(results.value(Backend::Hv, Clock::Icount, "null_hypercall"), Some(150.0));
        let targets = targets(&results);
        assert_eq!(standing(&targets, "null hypercall <= 0.5x"), Standing::Met, "150 <= 0.5 * 400");
        let Standing::Missed(by) = standing(&targets, "null hypercall <= 2x the syscall floor (icount)")
        else {
            panic!("150 is 15x a floor of 10")
        };
        assert!(by.starts_with("by 7.5x"), "{by}");
        assert!(matches!(
            standing(&targets, "null hypercall <= 2x the syscall floor (wall"),
            Standing::Unknown(_)
        ));
        assert_eq!(standing(&targets, "batched mmu_update <= 3x"), Standing::Met, "90 <= 3 * 40");
        assert_eq!(standing(&targets, "batched mmu_update <= real"), Standing::Met);
        assert_eq!(standing(&targets, "boot"), Standing::Met, "0.1 s <= 1.5 s / 10");
        assert_eq!(standing(&targets, "guest ELF"), Standing::Met);
        let Standing::Missed(by) = standing(&targets, "hypervisor ELF") else { panic!() };
        assert!(by.starts_with("by 30.0 KiB"), "{by}");
    }

    #[test]
    fn tables_show_figures_ratios_and_gaps() {
        let results = results();
        let icount = icount_table(&results);
        let null = icount.lines().find(|l| l.starts_with("null hypercall")).unwrap();
        let columns: Vec<&str> = null.split_whitespace().skip(3).collect();
        assert_eq!(columns, ["-", "150", "400", "0.38x", "15.0x", "-", "-"], "{null}");
        let batch = icount.lines().find(|l| l.starts_with("mmu_update, 512")).unwrap();
        assert!(batch.contains("2.25x"), "90 over the native 40: {batch}");
        let report = render(&results);
        assert!(report.contains("qemu-xen (wall): skipped: no KVM"), "{report}");
        assert!(report.contains("MISSED"), "{report}");
    }
}
