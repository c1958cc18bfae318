//! Timing: serialised `rdtsc` around batches of operations, one warm-up
//! batch that is not counted, and the median over the timed batches.

use core::fmt::Display;

use kernel::bench_stats::{Failure, Measurement, Unit};

use crate::arch::cpu;
use crate::println;

/// Timed batches per benchmark; the figure is their median.
pub const BATCHES: usize = 5;

pub struct Runner {
    results: u32,
    failures: u32,
    /// Benchmarks of hypercalls this hypervisor does not offer (ENOSYS).
    not_offered: u32,
}

impl Runner {
    pub fn new() -> Self {
        Self { results: 0, failures: 0, not_offered: 0 }
    }

    /// (results printed, benchmarks that failed, hypercalls not offered)
    pub fn totals(&self) -> (u32, u32, u32) {
        (self.results, self.failures, self.not_offered)
    }

    /// Times `iterations` calls of `op` per batch and prints the median
    /// cost of one call.
    pub fn measure<E: Display>(
        &mut self,
        name: &str,
        iterations: u64,
        op: impl FnMut() -> Result<(), E>,
    ) -> Option<Measurement<'static>> {
        self.measure_batched(name, iterations, 1, op)
    }

    /// As [`Self::measure`] for an operation that does `per_call` units of
    /// work (PTEs in one hypercall, entries in one multicall): the figure
    /// is per unit, and the line says the batch size.
    pub fn measure_batched<E: Display>(
        &mut self,
        name: &str,
        iterations: u64,
        per_call: u32,
        mut op: impl FnMut() -> Result<(), E>,
    ) -> Option<Measurement<'static>> {
        let mut regions = [0u64; BATCHES];
        // The warm-up batch brings code, data and the TLB in, untimed.
        for region in core::iter::once(None).chain(regions.iter_mut().map(Some)) {
            let mut first_error = None;
            let start = cpu::rdtsc_serialized();
            for _ in 0..iterations {
                if let Err(error) = op() {
                    first_error.get_or_insert(error);
                }
            }
            let end = cpu::rdtsc_serialized();
            if let Some(error) = first_error {
                self.fail(name, &error);
                return None;
            }
            if let Some(region) = region {
                *region = end.wrapping_sub(start);
            }
        }
        let operations = iterations * u64::from(per_call);
        let mut measurement = Measurement::from_regions("", &mut regions, operations)?;
        if per_call > 1 {
            measurement = measurement.with_batch_size(per_call);
        }
        self.print(name, measurement)
    }

    /// Reports a figure measured per event (a latency), as its median.
    pub fn samples(&mut self, name: &str, samples: &mut [u64], unit: Unit) -> Option<Measurement<'static>> {
        let measurement = Measurement::from_samples("", samples, unit)?;
        self.print(name, measurement)
    }

    fn print(&mut self, name: &str, measurement: Measurement<'static>) -> Option<Measurement<'static>> {
        println!("{}", Measurement { name, ..measurement });
        self.results += 1;
        Some(measurement)
    }

    /// Reports that benchmark `name` could not run, and why. A hypercall
    /// the hypervisor does not implement (QEMU's Xen emulation has no
    /// `multicall`) is reported the same way but is not a failure.
    pub fn fail(&mut self, name: &str, reason: &dyn Display) {
        let reason = alloc::format!("{reason}");
        println!("{}", Failure { name, reason: &reason });
        if reason == "ENOSYS" {
            self.not_offered += 1;
        } else {
            self.failures += 1;
        }
    }
}
