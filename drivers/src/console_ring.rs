//! The Xen PV console ring (`xen/io/console.h`).
//!
//! One page holds two byte rings: `out` carries the guest's output to the
//! backend (xenconsoled, QEMU, or our hypervisor), `in` carries keyboard input
//! the other way. The guest is the producer of `out` and the consumer of `in`.
//! After moving an index, each side signals the console event channel; that
//! is the caller's job, as is mapping the page.
//!
//! The backend functions treat every index in the page as hostile and report
//! a [`RingError`] instead of trusting it; the frontend trusts its backend but
//! still never reads or writes out of bounds.

use core::sync::atomic::{AtomicU32, AtomicU8};

use hypercalls::abi::io::console::{XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};

pub use crate::ring::RingError;
use crate::ring::{zeroed_bytes, ByteRing};

/// The console page, as atomics with exactly [`XenconsInterface`]'s layout.
#[repr(C)]
pub struct ConsoleRingView {
    /// Backend to guest.
    pub r#in: [AtomicU8; XENCONS_IN_SIZE],
    /// Guest to backend.
    pub out: [AtomicU8; XENCONS_OUT_SIZE],
    pub in_cons: AtomicU32,
    pub in_prod: AtomicU32,
    pub out_cons: AtomicU32,
    pub out_prod: AtomicU32,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ConsoleRingView>() == size_of::<XenconsInterface>());
    assert!(align_of::<ConsoleRingView>() == align_of::<XenconsInterface>());
    assert!(offset_of!(ConsoleRingView, r#in) == offset_of!(XenconsInterface, r#in));
    assert!(offset_of!(ConsoleRingView, out) == offset_of!(XenconsInterface, out));
    assert!(offset_of!(ConsoleRingView, in_cons) == offset_of!(XenconsInterface, in_cons));
    assert!(offset_of!(ConsoleRingView, in_prod) == offset_of!(XenconsInterface, in_prod));
    assert!(offset_of!(ConsoleRingView, out_cons) == offset_of!(XenconsInterface, out_cons));
    assert!(offset_of!(ConsoleRingView, out_prod) == offset_of!(XenconsInterface, out_prod));
};

impl ConsoleRingView {
    /// An empty ring with all indices zero.
    pub const fn new() -> Self {
        Self {
            r#in: zeroed_bytes(),
            out: zeroed_bytes(),
            in_cons: AtomicU32::new(0),
            in_prod: AtomicU32::new(0),
            out_cons: AtomicU32::new(0),
            out_prod: AtomicU32::new(0),
        }
    }

    /// The guest-to-backend ring.
    pub fn output_ring(&self) -> ByteRing<'_, XENCONS_OUT_SIZE> {
        ByteRing::new(&self.out, &self.out_cons, &self.out_prod)
    }

    /// The backend-to-guest ring.
    pub fn input_ring(&self) -> ByteRing<'_, XENCONS_IN_SIZE> {
        ByteRing::new(&self.r#in, &self.in_cons, &self.in_prod)
    }
}

impl Default for ConsoleRingView {
    fn default() -> Self {
        Self::new()
    }
}

/// Guest: queues as much of `bytes` as fits in the output ring and returns
/// how many were queued (0 when full). Never blocks. If the backend has
/// corrupted the indices nothing is written and 0 is returned.
pub fn write(view: &ConsoleRingView, bytes: &[u8]) -> usize {
    view.output_ring().write(bytes).unwrap_or(0)
}

/// Guest: takes up to `buf.len()` bytes of input. Returns 0 when there is
/// none, or when the backend has corrupted the indices.
pub fn read(view: &ConsoleRingView, buf: &mut [u8]) -> usize {
    view.input_ring().read(buf).unwrap_or(0)
}

/// Guest: bytes of output the backend has not consumed yet, or `None` if
/// the indices are inconsistent. Useful to flush before shutting down.
pub fn pending_output(view: &ConsoleRingView) -> Option<usize> {
    view.output_ring().unconsumed().ok()
}

/// Backend: hands everything the guest has written so far to `sink` (in
/// chunks) and consumes it. Returns the byte count. A guest whose producer
/// index claims more than a ring's worth of data gets a [`RingError`], and
/// nothing is consumed.
pub fn drain_output(view: &ConsoleRingView, sink: impl FnMut(&[u8])) -> Result<usize, RingError> {
    view.output_ring().consume_with(XENCONS_OUT_SIZE, sink)
}

/// Backend: queues as much of `bytes` as fits in the guest's input ring and
/// returns how many were queued.
pub fn feed_input(view: &ConsoleRingView, bytes: &[u8]) -> Result<usize, RingError> {
    view.input_ring().write(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    fn drain(view: &ConsoleRingView) -> Result<Vec<u8>, RingError> {
        let mut got = Vec::new();
        drain_output(view, |chunk| got.extend_from_slice(chunk))?;
        Ok(got)
    }

    #[test]
    fn guest_output_reaches_the_backend_in_order() {
        let view = Box::new(ConsoleRingView::new());
        assert_eq!(write(&view, b"hello, "), 7);
        assert_eq!(write(&view, b"world\n"), 6);
        assert_eq!(pending_output(&view), Some(13));
        assert_eq!(drain(&view).unwrap(), b"hello, world\n");
        assert_eq!(pending_output(&view), Some(0));
        assert_eq!(drain(&view).unwrap(), b"");
    }

    #[test]
    fn a_full_output_ring_takes_only_what_fits() {
        let view = Box::new(ConsoleRingView::new());
        let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let first = write(&view, &big);
        assert_eq!(first, XENCONS_OUT_SIZE);
        assert_eq!(write(&view, b"more"), 0);
        let drained = drain(&view).unwrap();
        assert_eq!(drained, &big[..first]);
        assert_eq!(write(&view, &big[first..]), big.len() - first);
        assert_eq!(drain(&view).unwrap(), &big[first..]);
    }

    #[test]
    fn backend_input_reaches_the_guest_across_wraparound() {
        let view = Box::new(ConsoleRingView::new());
        view.in_cons.store(u32::MAX - 3, Ordering::Relaxed);
        view.in_prod.store(u32::MAX - 3, Ordering::Relaxed);
        assert_eq!(feed_input(&view, b"typed text").unwrap(), 10);
        let mut buf = [0u8; 4];
        assert_eq!(read(&view, &mut buf), 4);
        assert_eq!(&buf, b"type");
        let mut rest = [0u8; 16];
        assert_eq!(read(&view, &mut rest), 6);
        assert_eq!(&rest[..6], b"d text");
        assert_eq!(view.in_cons.load(Ordering::Relaxed), (u32::MAX - 3).wrapping_add(10));
        assert_eq!(read(&view, &mut rest), 0);
    }

    #[test]
    fn input_beyond_the_ring_size_is_truncated() {
        let view = Box::new(ConsoleRingView::new());
        let big = [b'k'; XENCONS_IN_SIZE + 10];
        assert_eq!(feed_input(&view, &big).unwrap(), XENCONS_IN_SIZE);
        assert_eq!(feed_input(&view, b"x").unwrap(), 0);
    }

    #[test]
    fn a_lying_guest_producer_index_is_a_reported_error() {
        let view = Box::new(ConsoleRingView::new());
        view.out_cons.store(500, Ordering::Relaxed);
        view.out_prod.store(500 + XENCONS_OUT_SIZE as u32 + 1, Ordering::Relaxed);
        let mut sink_calls = 0;
        let result = drain_output(&view, |_| sink_calls += 1);
        assert_eq!(
            result,
            Err(RingError::IndexOverrun {
                prod: 500 + XENCONS_OUT_SIZE as u32 + 1,
                cons: 500,
                size: XENCONS_OUT_SIZE
            })
        );
        assert_eq!(sink_calls, 0);
        assert_eq!(view.out_cons.load(Ordering::Relaxed), 500);
        // A producer index "behind" the consumer wraps to a huge count too.
        view.out_prod.store(499, Ordering::Relaxed);
        assert!(drain(&view).is_err());
        assert_eq!(view.out_cons.load(Ordering::Relaxed), 500);
    }

    #[test]
    fn a_guest_that_corrupts_the_input_consumer_cannot_make_the_backend_overflow() {
        let view = Box::new(ConsoleRingView::new());
        view.in_prod.store(10, Ordering::Relaxed);
        view.in_cons.store(10 + 4096, Ordering::Relaxed);
        assert!(matches!(feed_input(&view, b"abc"), Err(RingError::IndexOverrun { .. })));
        assert_eq!(view.in_prod.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_full_but_honest_ring_is_not_an_error() {
        let view = Box::new(ConsoleRingView::new());
        view.out_cons.store(u32::MAX, Ordering::Relaxed);
        view.out_prod.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(write(&view, &[b'z'; XENCONS_OUT_SIZE]), XENCONS_OUT_SIZE);
        let drained = drain(&view).unwrap();
        assert_eq!(drained.len(), XENCONS_OUT_SIZE);
        assert!(drained.iter().all(|&b| b == b'z'));
    }

    #[test]
    fn the_frontend_tolerates_a_corrupt_backend() {
        let view = Box::new(ConsoleRingView::new());
        view.out_cons.store(1 << 20, Ordering::Relaxed);
        assert_eq!(write(&view, b"lost"), 0);
        assert_eq!(pending_output(&view), None);
        view.in_prod.store(1 << 20, Ordering::Relaxed);
        let mut buf = [0u8; 8];
        assert_eq!(read(&view, &mut buf), 0);
    }
}
