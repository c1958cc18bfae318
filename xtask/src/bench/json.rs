//! `target/bench/results.json`: every raw number of the run (each run's
//! figures, boot timings and sizes), the medians, the ratios the tables
//! show and the targets' standing.

use serde_json::{json, Map, Value};

use super::machine::Clock;
use super::report::{self, Standing, ROWS};
use super::results::{BootSeries, Results, Series};
use crate::run::Backend;

fn series_json(series: &Series) -> Value {
    let runs: Vec<Value> = series
        .runs
        .iter()
        .map(|run| {
            let figures: Map<String, Value> = run
                .figures
                .figures
                .values()
                .map(|figure| {
                    let value = json!({
                        "value": figure.value,
                        "unit": figure.unit,
                        "iterations": figure.iterations,
                        "batch": figure.batch,
                        "from_hypervisor": figure.from_hypervisor,
                    });
                    (figure.name.clone(), value)
                })
                .collect();
            json!({
                "platform": run.figures.platform,
                "figures": figures,
                "failures": run.figures.failures,
                "outcome": run.outcome,
                "succeeded": run.succeeded,
                "elapsed_s": run.elapsed.as_secs_f64(),
                "log": run.log.display().to_string(),
            })
        })
        .collect();
    let medians: Map<String, Value> = series
        .names()
        .into_iter()
        .filter_map(|name| Some((name.clone(), json!(series.median(&name)?))))
        .collect();
    json!({
        "backend": series.backend.name(),
        "clock": series.clock.name(),
        "skipped": series.skipped,
        "platform": series.platform(),
        "medians": medians,
        "runs": runs,
    })
}

fn boot_json(boot: &BootSeries) -> Value {
    let runs: Vec<Value> = boot
        .runs
        .iter()
        .map(|run| {
            json!({
                "first_line_s": run.first_line.map(|at| at.as_secs_f64()),
                "shutdown_s": run.shutdown.as_secs_f64(),
                "outcome": run.outcome,
                "succeeded": run.succeeded,
            })
        })
        .collect();
    json!({
        "backend": boot.backend.name(),
        "skipped": boot.skipped,
        "median_first_line_s": boot.first_line_s(),
        "median_shutdown_s": boot.shutdown_s(),
        "runs": runs,
    })
}

/// The ratios of the tables, per clock and benchmark.
fn ratios_json(results: &Results) -> Value {
    let mut by_clock = Map::new();
    for clock in [Clock::Icount, Clock::Wall] {
        let value = |backend, name: &str| results.value(backend, clock, name);
        let floor = value(Backend::Hv, "syscall_floor");
        let mut rows = Map::new();
        for row in ROWS {
            let native = |backend| {
                super::lines::ratio(
                    value(backend, row.name),
                    row.native.and_then(|n| value(Backend::Bare, n)),
                )
            };
            rows.insert(
                row.name.to_string(),
                json!({
                    "hv/xen": super::lines::ratio(value(Backend::Hv, row.name), value(Backend::Xen, row.name)),
                    "hv/floor": super::lines::ratio(value(Backend::Hv, row.name), floor),
                    "hv/native": native(Backend::Hv),
                    "xen/native": native(Backend::Xen),
                    "qemu-xen/xen": super::lines::ratio(value(Backend::QemuXen, row.name), value(Backend::Xen, row.name)),
                    "native_reference": row.native,
                }),
            );
        }
        by_clock.insert(clock.name().to_string(), Value::Object(rows));
    }
    Value::Object(by_clock)
}

pub fn render(results: &Results) -> Value {
    let targets: Vec<Value> = report::targets(results)
        .into_iter()
        .map(|target| {
            let (standing, detail) = match target.standing {
                Standing::Met => ("met", None),
                Standing::Missed(by) => ("missed", Some(by)),
                Standing::Unknown(why) => ("not judged", Some(why)),
            };
            json!({ "goal": target.goal, "measured": target.measured, "standing": standing, "detail": detail })
        })
        .collect();
    let sizes: Vec<Value> = results
        .sizes
        .iter()
        .map(|size| {
            json!({
                "image": size.label,
                "path": size.path.display().to_string(),
                "bytes": size.bytes,
                "stripped_bytes": size.stripped.as_ref().ok(),
                "stripped_error": size.stripped.as_ref().err(),
            })
        })
        .collect();
    json!({
        "command": results.command,
        "qemu": results.qemu_version,
        "icount": super::machine::ICOUNT,
        "runs_per_series": results.runs_per_series,
        "duration_s": results.duration.as_secs_f64(),
        "units": "icount series: retired instructions per operation (1 tick = 1 instruction); wall series: host TSC ticks, meaningful only as ratios; timer_wakeup_latency: ns",
        "series": results.series.iter().map(series_json).collect::<Vec<_>>(),
        "ratios": ratios_json(results),
        "boot": results.boots.iter().map(boot_json).collect::<Vec<_>>(),
        "sizes": sizes,
        "targets": targets,
    })
}
