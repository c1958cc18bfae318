//! Everything one `cargo xtask bench` measured, kept raw; medians are
//! taken on demand.

use std::path::PathBuf;
use std::time::Duration;

use super::lines::{self, RunFigures};
use super::machine::Clock;
use crate::run::Backend;

/// One QEMU run of the guest's `bench` mode.
#[derive(Clone, Debug)]
pub struct BenchRun {
    pub figures: RunFigures,
    /// How the run ended, in one line (the runner's summary).
    pub outcome: String,
    pub succeeded: bool,
    pub elapsed: Duration,
    pub log: PathBuf,
}

/// The runs of one backend under one clock.
#[derive(Clone, Debug)]
pub struct Series {
    pub backend: Backend,
    pub clock: Clock,
    pub runs: Vec<BenchRun>,
    /// Why the series did not run (or produced nothing).
    pub skipped: Option<String>,
}

impl Series {
    /// Every run's value for `name`.
    pub fn values(&self, name: &str) -> Vec<f64> {
        self.runs.iter().filter_map(|run| run.figures.figures.get(name)).map(|figure| figure.value).collect()
    }

    /// The median over runs of `name`'s figure.
    pub fn median(&self, name: &str) -> Option<f64> {
        lines::median(&self.values(name))
    }

    /// The guest's platform as it reported it (`native`, `pv`, `pvh`).
    pub fn platform(&self) -> Option<&str> {
        self.runs.iter().find_map(|run| run.figures.platform.as_deref())
    }

    /// Every benchmark name some run reported, figures and failures.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .runs
            .iter()
            .flat_map(|run| run.figures.figures.keys().chain(run.figures.failures.keys()).cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A failure some run reported for `name`.
    pub fn failure(&self, name: &str) -> Option<&str> {
        self.runs.iter().find_map(|run| run.figures.failures.get(name).map(String::as_str))
    }
}

/// One ordinary boot, timed by the runner's clock.
#[derive(Clone, Debug)]
pub struct BootRun {
    /// QEMU start to the guest's banner.
    pub first_line: Option<Duration>,
    /// QEMU start to its exit (or Xen's "Dom0 halted").
    pub shutdown: Duration,
    pub outcome: String,
    pub succeeded: bool,
}

#[derive(Clone, Debug)]
pub struct BootSeries {
    pub backend: Backend,
    pub runs: Vec<BootRun>,
    pub skipped: Option<String>,
}

impl BootSeries {
    fn successful(&self) -> impl Iterator<Item = &BootRun> {
        self.runs.iter().filter(|run| run.succeeded)
    }

    /// Median seconds to the first line, over successful runs.
    pub fn first_line_s(&self) -> Option<f64> {
        let values: Vec<f64> =
            self.successful().filter_map(|run| run.first_line).map(|at| at.as_secs_f64()).collect();
        lines::median(&values)
    }

    /// Median seconds to shutdown, over successful runs.
    pub fn shutdown_s(&self) -> Option<f64> {
        let values: Vec<f64> = self.successful().map(|run| run.shutdown.as_secs_f64()).collect();
        lines::median(&values)
    }
}

/// An ELF's size as built and stripped.
#[derive(Clone, Debug)]
pub struct ImageSize {
    pub label: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
    /// Stripped size, or why it could not be had.
    pub stripped: Result<u64, String>,
}

#[derive(Clone, Debug)]
pub struct Results {
    /// The command line that produced them.
    pub command: String,
    pub qemu_version: String,
    pub runs_per_series: u32,
    pub series: Vec<Series>,
    pub boots: Vec<BootSeries>,
    pub sizes: Vec<ImageSize>,
    pub duration: Duration,
}

impl Results {
    pub fn series(&self, backend: Backend, clock: Clock) -> Option<&Series> {
        self.series.iter().find(|series| series.backend == backend && series.clock == clock)
    }

    /// The median of `name` on `backend` under `clock`.
    pub fn value(&self, backend: Backend, clock: Clock, name: &str) -> Option<f64> {
        self.series(backend, clock)?.median(name)
    }

    pub fn boot(&self, backend: Backend) -> Option<&BootSeries> {
        self.boots.iter().find(|boot| boot.backend == backend)
    }

    pub fn size(&self, label: &str) -> Option<&ImageSize> {
        self.sizes.iter().find(|size| size.label == label)
    }
}
