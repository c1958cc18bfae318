//! Byte-stream rings in memory shared with another party.
//!
//! The PV console and the xenstore page both carry byte streams in
//! power-of-two arrays indexed by free-running 32-bit producer and consumer
//! counters (`xen/io/ring.h` conventions). [`ByteRing`] is one direction of
//! such a page: the caller says which side it is by calling [`ByteRing::write`]
//! (producer) or [`ByteRing::read`] (consumer).
//!
//! Both indices live in memory the peer can scribble on, so neither is
//! trusted: if `prod - cons` exceeds the ring size the ring is reported as
//! corrupt and nothing is read or written. Every operation touches at most
//! one ring's worth of bytes, so a hostile peer can never make it loop.
//!
//! Ordering follows Xen's rule "read prod, barrier, read data, barrier,
//! write cons" (and its mirror for the producer): the peer's index is loaded
//! with `Acquire`, our own index is published with `Release`.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// A ring whose indices cannot be trusted any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// `prod - cons` is larger than the ring: one side published an index
    /// that no correct implementation could produce.
    IndexOverrun {
        /// The producer index as read.
        prod: u32,
        /// The consumer index as read.
        cons: u32,
        /// The ring size in bytes.
        size: usize,
    },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RingError::IndexOverrun { prod, cons, size } => {
                write!(f, "ring indices inconsistent: prod {prod:#x} - cons {cons:#x} > size {size}")
            }
        }
    }
}

/// One direction of a shared byte ring of `N` bytes (`N` a power of two).
#[derive(Clone, Copy)]
pub struct ByteRing<'a, const N: usize> {
    data: &'a [AtomicU8; N],
    cons: &'a AtomicU32,
    prod: &'a AtomicU32,
}

/// Bytes copied to the stack per call of a [`ByteRing::consume_with`] sink.
const CHUNK: usize = 64;

impl<'a, const N: usize> ByteRing<'a, N> {
    const SIZE_IS_POWER_OF_TWO: () = assert!(N.is_power_of_two() && N <= (1 << 31));

    /// A ring over `data` with the given consumer and producer indices.
    pub fn new(data: &'a [AtomicU8; N], cons: &'a AtomicU32, prod: &'a AtomicU32) -> Self {
        let () = Self::SIZE_IS_POWER_OF_TWO;
        Self { data, cons, prod }
    }

    /// The ring size in bytes.
    pub const fn size(&self) -> usize {
        N
    }

    fn slot(index: u32) -> usize {
        (index as usize) & (N - 1)
    }

    fn check(prod: u32, cons: u32) -> Result<usize, RingError> {
        let used = prod.wrapping_sub(cons) as usize;
        if used > N {
            Err(RingError::IndexOverrun { prod, cons, size: N })
        } else {
            Ok(used)
        }
    }

    /// Bytes written but not yet consumed.
    pub fn unconsumed(&self) -> Result<usize, RingError> {
        Self::check(self.prod.load(Ordering::Acquire), self.cons.load(Ordering::Acquire))
    }

    /// Bytes a producer could write now.
    pub fn free_space(&self) -> Result<usize, RingError> {
        self.unconsumed().map(|used| N - used)
    }

    /// Producer side: copies as much of `bytes` as fits and publishes it.
    /// Never waits; returns how many bytes were written.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, RingError> {
        // Acquire pairs with the consumer's Release of `cons`: it has finished
        // reading the slots we are about to reuse.
        let cons = self.cons.load(Ordering::Acquire);
        let prod = self.prod.load(Ordering::Relaxed);
        let used = Self::check(prod, cons)?;
        let count = bytes.len().min(N - used);
        for (offset, &byte) in bytes[..count].iter().enumerate() {
            self.data[Self::slot(prod.wrapping_add(offset as u32))].store(byte, Ordering::Relaxed);
        }
        if count > 0 {
            // Release: the data stores above are visible before the new index.
            self.prod.store(prod.wrapping_add(count as u32), Ordering::Release);
        }
        Ok(count)
    }

    /// Consumer side: copies up to `buf.len()` available bytes into `buf`
    /// and marks them consumed. Returns how many bytes were read.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, RingError> {
        let mut filled = 0;
        self.consume_with(buf.len(), |chunk| {
            buf[filled..filled + chunk.len()].copy_from_slice(chunk);
            filled += chunk.len();
        })
    }

    /// Consumer side: hands up to `max` available bytes to `sink`, in
    /// chunks, then marks them consumed. Bytes the producer adds meanwhile
    /// are left for the next call, so this always terminates.
    pub fn consume_with(&self, max: usize, mut sink: impl FnMut(&[u8])) -> Result<usize, RingError> {
        // Acquire pairs with the producer's Release of `prod`: the data it
        // wrote before publishing is visible to the loads below.
        let prod = self.prod.load(Ordering::Acquire);
        let cons = self.cons.load(Ordering::Relaxed);
        let available = Self::check(prod, cons)?;
        let count = available.min(max);
        let mut chunk = [0u8; CHUNK];
        let mut done = 0;
        while done < count {
            let len = (count - done).min(CHUNK);
            for (i, byte) in chunk[..len].iter_mut().enumerate() {
                *byte = self.data[Self::slot(cons.wrapping_add((done + i) as u32))].load(Ordering::Relaxed);
            }
            sink(&chunk[..len]);
            done += len;
        }
        if count > 0 {
            // Release: our reads of the slots happen before the producer may
            // see them as free.
            self.cons.store(cons.wrapping_add(count as u32), Ordering::Release);
        }
        Ok(count)
    }
}

/// A zeroed array of `N` atomic bytes, for building views on the host.
pub(crate) const fn zeroed_bytes<const N: usize>() -> [AtomicU8; N] {
    [const { AtomicU8::new(0) }; N]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Page<const N: usize> {
        data: [AtomicU8; N],
        cons: AtomicU32,
        prod: AtomicU32,
    }

    impl<const N: usize> Page<N> {
        fn starting_at(index: u32) -> Self {
            Self { data: zeroed_bytes(), cons: AtomicU32::new(index), prod: AtomicU32::new(index) }
        }
        fn ring(&self) -> ByteRing<'_, N> {
            ByteRing::new(&self.data, &self.cons, &self.prod)
        }
    }

    #[test]
    fn bytes_come_out_in_order_across_index_wraparound() {
        let page = Page::<8>::starting_at(u32::MAX - 2);
        let ring = page.ring();
        let mut next_in = 0u8;
        let mut next_out = 0u8;
        for round in 0..20 {
            let batch: [u8; 5] = core::array::from_fn(|i| next_in.wrapping_add(i as u8));
            let written = ring.write(&batch[..(round % 5) + 1]).unwrap();
            next_in = next_in.wrapping_add(written as u8);
            let mut out = [0u8; 8];
            let read = ring.read(&mut out[..(round % 3) + 1]).unwrap();
            for &byte in &out[..read] {
                assert_eq!(byte, next_out);
                next_out = next_out.wrapping_add(1);
            }
        }
        let mut rest = [0u8; 8];
        let read = ring.read(&mut rest).unwrap();
        for &byte in &rest[..read] {
            assert_eq!(byte, next_out);
            next_out = next_out.wrapping_add(1);
        }
        assert_eq!(next_out, next_in);
        assert_eq!(ring.unconsumed().unwrap(), 0);
    }

    #[test]
    fn a_full_ring_accepts_nothing_more() {
        let page = Page::<4>::starting_at(0);
        let ring = page.ring();
        assert_eq!(ring.write(b"abcdef").unwrap(), 4);
        assert_eq!(ring.free_space().unwrap(), 0);
        assert_eq!(ring.write(b"x").unwrap(), 0);
        let mut out = [0u8; 8];
        assert_eq!(ring.read(&mut out).unwrap(), 4);
        assert_eq!(&out[..4], b"abcd");
    }

    #[test]
    fn overrun_indices_are_rejected_without_moving_either_index() {
        let page = Page::<16>::starting_at(100);
        page.prod.store(100 + 17, Ordering::Relaxed);
        let ring = page.ring();
        let expected = RingError::IndexOverrun { prod: 117, cons: 100, size: 16 };
        let mut out = [0u8; 32];
        assert_eq!(ring.read(&mut out), Err(expected));
        assert_eq!(ring.write(b"x"), Err(expected));
        let mut calls = 0;
        assert_eq!(ring.consume_with(usize::MAX, |_| calls += 1), Err(expected));
        assert_eq!(calls, 0);
        assert_eq!(page.cons.load(Ordering::Relaxed), 100);
        assert_eq!(page.prod.load(Ordering::Relaxed), 117);
    }

    #[test]
    fn consume_with_reports_chunks_that_add_up_to_the_data() {
        let page = Page::<256>::starting_at(7);
        let ring = page.ring();
        let data: [u8; 200] = core::array::from_fn(|i| i as u8);
        assert_eq!(ring.write(&data).unwrap(), 200);
        let mut seen = [0u8; 200];
        let mut filled = 0;
        let consumed = ring
            .consume_with(150, |chunk| {
                assert!(chunk.len() <= CHUNK);
                seen[filled..filled + chunk.len()].copy_from_slice(chunk);
                filled += chunk.len();
            })
            .unwrap();
        assert_eq!((consumed, filled), (150, 150));
        assert_eq!(&seen[..150], &data[..150]);
        assert_eq!(ring.unconsumed().unwrap(), 50);
    }
}
