//! Reading a run's serial output: the `bench:` lines (the guest's and the
//! hypervisor's share one format, see `kernel::bench_stats`), the guest's
//! platform, and when its first line appeared.
//!
//! ```text
//! bench: name=null_hypercall ticks=334.0 iterations=1000 batches=5 unit=ticks
//! (HV) bench: name=syscall_floor ticks=7 iterations=10000
//! bench: name=multicall_per_entry error=ENOSYS
//! ```

use std::collections::BTreeMap;

/// One `bench:` result.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub name: String,
    /// Cost per operation (or the latency), in `unit`.
    pub value: f64,
    pub iterations: u64,
    /// `ticks` (the default) or `ns`.
    pub unit: String,
    /// Requests per hypercall, for the batched operations.
    pub batch: Option<u64>,
    /// Printed by the hypervisor (`(HV) ` prefix) rather than the guest.
    pub from_hypervisor: bool,
}

/// What one `bench:` line says.
#[derive(Clone, Debug, PartialEq)]
pub enum BenchLine {
    Figure(Figure),
    /// The benchmark could not run; the reason is one token.
    Failed {
        name: String,
        reason: String,
    },
    /// `bench: platform pv`
    Platform(String),
    /// Any other `bench:` line (progress, the summary).
    Note,
}

/// The prefix the hypervisor puts on its own console lines.
const HYPERVISOR_PREFIX: &str = "(HV) ";

/// Parses one serial line; `None` if it is not a `bench:` line at all, a
/// `Note` if it is one without a usable figure.
pub fn parse_line(line: &str) -> Option<BenchLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (from_hypervisor, line) = match line.strip_prefix(HYPERVISOR_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let body = line.strip_prefix("bench: ")?;
    if let Some(platform) = body.strip_prefix("platform ") {
        return Some(BenchLine::Platform(platform.trim().to_string()));
    }
    let fields: BTreeMap<&str, &str> =
        body.split_ascii_whitespace().filter_map(|field| field.split_once('=')).collect();
    let Some(name) = fields.get("name").map(|name| name.to_string()) else {
        return Some(BenchLine::Note);
    };
    if let Some(reason) = fields.get("error") {
        return Some(BenchLine::Failed { name, reason: reason.to_string() });
    }
    let value = fields.get("ticks").and_then(|text| text.parse::<f64>().ok()).filter(|v| v.is_finite());
    let iterations = fields.get("iterations").and_then(|text| text.parse().ok());
    let (Some(value), Some(iterations)) = (value, iterations) else {
        return Some(BenchLine::Note);
    };
    Some(BenchLine::Figure(Figure {
        name,
        value,
        iterations,
        unit: fields.get("unit").unwrap_or(&"ticks").to_string(),
        batch: fields.get("batch").and_then(|text| text.parse().ok()),
        from_hypervisor,
    }))
}

/// Everything the `bench:` lines of one run said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFigures {
    pub platform: Option<String>,
    pub figures: BTreeMap<String, Figure>,
    pub failures: BTreeMap<String, String>,
}

pub fn collect<'a>(lines: impl IntoIterator<Item = &'a str>) -> RunFigures {
    let mut run = RunFigures::default();
    for line in lines {
        match parse_line(line) {
            Some(BenchLine::Figure(figure)) => {
                run.figures.insert(figure.name.clone(), figure);
            }
            Some(BenchLine::Failed { name, reason }) => {
                run.failures.insert(name, reason);
            }
            Some(BenchLine::Platform(platform)) => run.platform = Some(platform),
            Some(BenchLine::Note) | None => {}
        }
    }
    run
}

/// Whether `line` is the guest kernel's banner, its first line on every
/// platform (`Guest kernel 0.1.0 (Rust), platform: pv (PV boot)`).
pub fn is_guest_banner(line: &str) -> bool {
    line.trim_start_matches(|c: char| c.is_ascii_control()).starts_with("Guest kernel ")
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 })
}

/// `numerator / denominator`, when both exist and the quotient means something.
pub fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 && n.is_finite() => Some(n / d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_and_hypervisor_lines_share_one_format() {
        let guest =
            parse_line("bench: name=null_hypercall ticks=334.5 iterations=1000 batches=5 unit=ticks\r");
        let Some(BenchLine::Figure(figure)) = guest else { panic!("{guest:?}") };
        assert_eq!(figure.name, "null_hypercall");
        assert_eq!(figure.value, 334.5);
        assert_eq!(figure.iterations, 1000);
        assert_eq!(figure.unit, "ticks");
        assert!(!figure.from_hypervisor);

        let floor = parse_line("(HV) bench: name=syscall_floor ticks=7 iterations=10000");
        let Some(BenchLine::Figure(floor)) = floor else { panic!("{floor:?}") };
        assert_eq!((floor.name.as_str(), floor.value, floor.unit.as_str()), ("syscall_floor", 7.0, "ticks"));
        assert!(floor.from_hypervisor);
    }

    #[test]
    fn batches_units_failures_and_platforms() {
        let line =
            "bench: name=mmu_update_batch_per_pte ticks=417.7 iterations=5120 batches=5 unit=ticks batch=512";
        let Some(BenchLine::Figure(batched)) = parse_line(line) else { panic!() };
        assert_eq!(batched.batch, Some(512));
        let Some(BenchLine::Figure(latency)) =
            parse_line("bench: name=timer_wakeup_latency ticks=3243.0 iterations=20 batches=1 unit=ns")
        else {
            panic!()
        };
        assert_eq!(latency.unit, "ns");
        assert_eq!(
            parse_line("bench: name=multicall_per_entry error=ENOSYS"),
            Some(BenchLine::Failed { name: "multicall_per_entry".into(), reason: "ENOSYS".into() })
        );
        assert_eq!(parse_line("bench: platform pv"), Some(BenchLine::Platform("pv".into())));
        assert_eq!(parse_line("bench: 13 results, 0 failed"), Some(BenchLine::Note));
    }

    #[test]
    fn malformed_lines_are_not_figures() {
        assert_eq!(parse_line("tour: done"), None);
        assert_eq!(parse_line("(XEN) bench: name=x ticks=1 iterations=1"), None, "Xen's lines are not ours");
        for broken in [
            "bench: name=x ticks=abc iterations=1",
            "bench: name=x iterations=10",
            "bench: name=x ticks=5",
            "bench: name=x ticks=NaN iterations=3",
            "bench: ticks=5 iterations=3",
        ] {
            assert_eq!(parse_line(broken), Some(BenchLine::Note), "{broken}");
        }
    }

    #[test]
    fn a_run_collects_its_figures() {
        let output = "Guest kernel 0.1.0 (Rust), platform: pv (PV boot)\n\
                      (HV) bench: name=syscall_floor ticks=7 iterations=10000\n\
                      bench: platform pv\n\
                      bench: name=null_hypercall ticks=764.0 iterations=1000 batches=5 unit=ticks\n\
                      bench: name=multicall_per_entry error=ENOSYS\n";
        let run = collect(output.lines());
        assert_eq!(run.platform.as_deref(), Some("pv"));
        assert_eq!(run.figures.len(), 2);
        assert_eq!(run.figures["null_hypercall"].value, 764.0);
        assert_eq!(run.failures["multicall_per_entry"], "ENOSYS");
        assert!(is_guest_banner(output.lines().next().unwrap()));
        assert!(!is_guest_banner("(HV) Guest kernel loaded"));
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0), "non-numbers are ignored");
        assert_eq!(ratio(Some(764.0), Some(382.0)), Some(2.0));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
    }
}
