//! Test support: intercept hypercalls on the current thread so the typed
//! wrappers can be checked on the host without a hypervisor.

use std::cell::RefCell;
use std::vec::Vec;

/// A hypercall as the transport saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub nr: u32,
    pub args: [u64; 5],
}

type Responder = Box<dyn FnMut(Call) -> i64>;

thread_local! {
    static RESPONDER: RefCell<Option<Responder>> = const { RefCell::new(None) };
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn intercept(nr: u32, args: [u64; 5]) -> Option<i64> {
    let call = Call { nr, args };
    RESPONDER.with(|responder| {
        let mut responder = responder.borrow_mut();
        let respond = responder.as_mut()?;
        CALLS.with(|calls| calls.borrow_mut().push(call));
        Some(respond(call))
    })
}

/// Runs `body` with every hypercall on this thread answered by `respond`
/// instead of the hypercall page; returns `body`'s result and the calls made.
pub(crate) fn with_responder<R>(
    respond: impl FnMut(Call) -> i64 + 'static,
    body: impl FnOnce() -> R,
) -> (R, Vec<Call>) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RESPONDER.with(|r| *r.borrow_mut() = None);
        }
    }
    CALLS.with(|calls| calls.borrow_mut().clear());
    RESPONDER.with(|r| *r.borrow_mut() = Some(Box::new(respond)));
    let reset = Reset;
    let result = body();
    drop(reset);
    let calls = CALLS.with(|calls| core::mem::take(&mut *calls.borrow_mut()));
    (result, calls)
}

/// Reads a `T` from an address a wrapper passed to the (mock) hypervisor.
pub(crate) fn read_guest<T: Copy>(addr: u64) -> T {
    // SAFETY: test-only. Responders only pass back addresses the wrapper
    // under test derived from live references to `T` (or arrays of it),
    // which stay borrowed for the duration of the intercepted call.
    unsafe { (addr as *const T).read_unaligned() }
}

/// Reads `len` consecutive `T`s (a hypercall's array argument).
pub(crate) fn read_guest_slice<T: Copy>(addr: u64, len: usize) -> Vec<T> {
    (0..len).map(|i| read_guest(addr + (i * core::mem::size_of::<T>()) as u64)).collect()
}

/// Writes a `T` where a wrapper expects the (mock) hypervisor's output.
pub(crate) fn write_guest<T: Copy>(addr: u64, value: T) {
    // SAFETY: as for `read_guest`; the wrapper passed this address from a
    // `&mut` borrow that is live across the intercepted call.
    unsafe { (addr as *mut T).write_unaligned(value) }
}
