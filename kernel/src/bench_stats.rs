//! The arithmetic and the output format of the guest's `bench` mode.
//!
//! A benchmark times `batches` runs of `iterations` operations each between
//! serialised timestamps. The reported figure is the median over batches of
//! the per-operation cost, so one batch disturbed by an interrupt, a host
//! hiccup or a cold cache does not move it. Costs are kept in tenths of a
//! tick: under QEMU's `-icount shift=0` a tick is one retired instruction,
//! and a native operation costs only a handful of them.
//!
//! Every result is one line, the same format the hypervisor uses for its
//! own floor, so `cargo xtask bench` parses one format:
//!
//! ```text
//! bench: name=null_hypercall ticks=334.0 iterations=1000 batches=5 unit=ticks
//! bench: name=mmu_update_batch_per_pte ticks=210.4 iterations=5120 batches=5 unit=ticks batch=512
//! bench: name=multicall_per_entry error=ENOSYS
//! ```

use core::fmt;

/// The median of `values` (the mean of the middle two for an even count);
/// `None` for no values. Sorts `values` in place.
pub fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[middle])
    } else {
        // Halve before adding so two huge values cannot overflow.
        let (low, high) = (values[middle - 1], values[middle]);
        Some(low / 2 + high / 2 + (low % 2 + high % 2) / 2)
    }
}

/// The cost of one operation in tenths of a tick, rounded to nearest:
/// `ticks` measured over `operations` operations. Zero operations cost 0.
pub fn tenths_per_operation(ticks: u64, operations: u64) -> u64 {
    if operations == 0 {
        return 0;
    }
    let tenths = u128::from(ticks) * 10;
    let operations = u128::from(operations);
    u64::try_from((tenths + operations / 2) / operations).unwrap_or(u64::MAX)
}

/// What a reported figure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// TSC ticks: retired instructions under icount, host cycles otherwise.
    Ticks,
    /// Nanoseconds of the platform's clock (wake-up latencies).
    Nanoseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ticks => "ticks",
            Unit::Nanoseconds => "ns",
        }
    }
}

/// One benchmark's result, ready to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement<'a> {
    pub name: &'a str,
    /// Median cost per operation, in tenths of `unit`.
    pub tenths: u64,
    /// Operations in one batch (one timed region).
    pub iterations: u64,
    pub batches: u32,
    pub unit: Unit,
    /// Requests per hypercall, for the batched operations.
    pub batch_size: Option<u32>,
}

impl<'a> Measurement<'a> {
    /// The result of `batches` timed regions of `iterations` operations,
    /// `region_ticks` holding each region's total. `None` without regions.
    pub fn from_regions(name: &'a str, region_ticks: &mut [u64], iterations: u64) -> Option<Self> {
        let mut per_operation: [u64; MAX_BATCHES] = [0; MAX_BATCHES];
        let count = region_ticks.len().min(MAX_BATCHES);
        for (slot, &ticks) in per_operation.iter_mut().zip(region_ticks.iter()) {
            *slot = tenths_per_operation(ticks, iterations);
        }
        Some(Self {
            name,
            tenths: median(&mut per_operation[..count])?,
            iterations,
            batches: count as u32,
            unit: Unit::Ticks,
            batch_size: None,
        })
    }

    /// A figure measured directly per event (`samples`, e.g. latencies).
    pub fn from_samples(name: &'a str, samples: &mut [u64], unit: Unit) -> Option<Self> {
        let value = median(samples)?;
        Some(Self {
            name,
            tenths: value.saturating_mul(10),
            iterations: samples.len() as u64,
            batches: 1,
            unit,
            batch_size: None,
        })
    }

    pub fn with_batch_size(self, batch_size: u32) -> Self {
        Self { batch_size: Some(batch_size), ..self }
    }
}

/// Regions a single benchmark may time (the statistics use a fixed array).
pub const MAX_BATCHES: usize = 32;

impl fmt::Display for Measurement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bench: name={} ticks={}.{} iterations={} batches={} unit={}",
            self.name,
            self.tenths / 10,
            self.tenths % 10,
            self.iterations,
            self.batches,
            self.unit.as_str()
        )?;
        if let Some(size) = self.batch_size {
            write!(f, " batch={size}")?;
        }
        Ok(())
    }
}

/// The line for a benchmark that could not run: `reason` is one word
/// (an errno name, `refused`, ...) so the line stays machine-readable.
pub struct Failure<'a> {
    pub name: &'a str,
    pub reason: &'a str,
}

impl fmt::Display for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bench: name={} error=", self.name)?;
        // Spaces would split the field; the reader wants one token.
        for (index, word) in self.reason.split_ascii_whitespace().enumerate() {
            if index > 0 {
                f.write_str("_")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn median_of_odd_even_and_empty_sets() {
        assert_eq!(median(&mut [5, 1, 9]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2), "mean of 2 and 3, rounded down");
        assert_eq!(median(&mut [7, 9]), Some(8));
        assert_eq!(median(&mut [42]), Some(42));
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [u64::MAX, u64::MAX]), Some(u64::MAX), "no overflow");
    }

    #[test]
    fn a_disturbed_batch_does_not_move_the_median() {
        let mut regions = [3340, 3341, 99_999, 3339, 3340];
        let result = Measurement::from_regions("null_hypercall", &mut regions, 10).unwrap();
        assert_eq!(result.tenths, 3340);
        assert_eq!(result.batches, 5);
    }

    #[test]
    fn per_operation_cost_keeps_a_tenth_and_rounds() {
        assert_eq!(tenths_per_operation(4500, 1000), 45);
        assert_eq!(tenths_per_operation(1, 3), 3, "0.333 rounds to 0.3");
        assert_eq!(tenths_per_operation(2, 3), 7, "0.666 rounds to 0.7");
        assert_eq!(tenths_per_operation(10, 0), 0);
        assert_eq!(tenths_per_operation(u64::MAX, 1), u64::MAX, "saturates");
    }

    #[test]
    fn lines_have_the_shared_format() {
        let mut regions = [10_700, 10_800, 10_750];
        let result = Measurement::from_regions("mmu_update_batch_per_pte", &mut regions, 512)
            .unwrap()
            .with_batch_size(512);
        assert_eq!(
            result.to_string(),
            "bench: name=mmu_update_batch_per_pte ticks=21.0 iterations=512 batches=3 unit=ticks batch=512"
        );
        let mut latencies = [120, 80, 100];
        let latency =
            Measurement::from_samples("timer_wakeup_latency", &mut latencies, Unit::Nanoseconds).unwrap();
        assert_eq!(
            latency.to_string(),
            "bench: name=timer_wakeup_latency ticks=100.0 iterations=3 batches=1 unit=ns"
        );
        let failure = Failure { name: "multicall_per_entry", reason: "function not implemented" };
        assert_eq!(failure.to_string(), "bench: name=multicall_per_entry error=function_not_implemented");
    }

    #[test]
    fn no_regions_no_result() {
        assert_eq!(Measurement::from_regions("x", &mut [], 10), None);
        assert_eq!(Measurement::from_samples("x", &mut [], Unit::Ticks), None);
    }
}
