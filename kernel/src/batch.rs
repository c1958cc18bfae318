//! A fixed-size queue that hands its contents to a sink in batches: the
//! shape of every batched hypercall (`mmu_update` takes an array of
//! requests, `mmuext_op` an array of operations, `multicall` an array of
//! calls). Trapping into the hypervisor costs far more than one request, so
//! the PV platform queues requests and pays for one trap per batch.

/// Up to `N` queued items of type `T`.
pub struct Batch<T: Copy, const N: usize> {
    items: [T; N],
    len: usize,
    /// Batches handed to a sink so far (for statistics and tests).
    flushes: u64,
}

impl<T: Copy, const N: usize> Batch<T, N> {
    /// An empty queue; `filler` only initialises the unused slots.
    pub const fn new(filler: T) -> Self {
        Self { items: [filler; N], len: 0, flushes: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// The most recently queued item that matches, for read-after-write
    /// checks against items not yet flushed.
    pub fn find_last(&self, matches: impl Fn(&T) -> bool) -> Option<T> {
        self.items[..self.len].iter().rev().find(|item| matches(item)).copied()
    }

    /// Queues `item`, first flushing a full queue into `sink`.
    pub fn push<E>(&mut self, item: T, sink: impl FnMut(&[T]) -> Result<(), E>) -> Result<(), E> {
        if self.len == N {
            self.flush(sink)?;
        }
        self.items[self.len] = item;
        self.len += 1;
        Ok(())
    }

    /// Hands everything queued to `sink` in one call (nothing if empty).
    /// The queue is emptied even if the sink fails: the caller reports the
    /// error, and the items are not retried.
    pub fn flush<E>(&mut self, mut sink: impl FnMut(&[T]) -> Result<(), E>) -> Result<(), E> {
        if self.len == 0 {
            return Ok(());
        }
        let count = core::mem::replace(&mut self.len, 0);
        self.flushes += 1;
        sink(&self.items[..count])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn flushes_only_when_full_or_asked() {
        let mut batch = Batch::<u32, 3>::new(0);
        let mut seen: Vec<Vec<u32>> = Vec::new();
        for item in 1..=7 {
            batch
                .push(item, |items| {
                    seen.push(items.to_vec());
                    Ok::<(), ()>(())
                })
                .unwrap();
        }
        assert_eq!(seen, [[1, 2, 3], [4, 5, 6]]);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.find_last(|&item| item > 5), Some(7));
        batch
            .flush(|items| {
                seen.push(items.to_vec());
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(seen.last().unwrap(), &[7]);
        assert!(batch.is_empty());
        assert_eq!(batch.flushes(), 3);
        let mut calls = 0;
        batch
            .flush(|_| {
                calls += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(calls, 0, "an empty queue makes no call");
    }

    #[test]
    fn a_failed_flush_empties_the_queue_and_reports() {
        let mut batch = Batch::<u8, 2>::new(0);
        batch.push(1, |_| Ok::<(), &str>(())).unwrap();
        batch.push(2, |_| Ok::<(), &str>(())).unwrap();
        assert_eq!(batch.push(3, |_| Err("refused")), Err("refused"));
        assert!(batch.is_empty());
        assert_eq!(batch.find_last(|_| true), None);
    }

    #[test]
    fn find_last_prefers_the_newest() {
        let mut batch = Batch::<(u8, u8), 4>::new((0, 0));
        for item in [(1, 10), (2, 20), (1, 11)] {
            batch.push(item, |_| Ok::<(), ()>(())).unwrap();
        }
        assert_eq!(batch.find_last(|&(key, _)| key == 1), Some((1, 11)));
        assert_eq!(batch.find_last(|&(key, _)| key == 3), None);
    }
}
