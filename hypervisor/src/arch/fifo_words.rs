//! The FIFO event ABI's words in guest frames (event-array pages and
//! control blocks), reached through the direct map with atomic operations:
//! the guest reads and writes the same words at any time, so every access
//! is a single atomic instruction and no reference outlives it.

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

use hypervisor::services::fifo::{GuestWords, WordAddress};

use super::memory::{self, PAGE_SIZE};

/// Guest words by machine frame number, for `hypervisor::services::fifo`.
pub struct MachineWords;

/// Runs `f` on the word at `at`.
fn with_word<R>(at: WordAddress, f: impl FnOnce(&AtomicU32) -> R) -> R {
    assert!(
        at.offset.is_multiple_of(4) && u64::from(at.offset) + 4 <= PAGE_SIZE,
        "FIFO word at {at:?} is misaligned or leaves its frame"
    );
    let machine = at.frame.checked_mul(PAGE_SIZE).expect("frame number in range") + u64::from(at.offset);
    // Panics unless the word is in the direct map.
    let address = memory::machine_to_virt(machine);
    // SAFETY: `address` is mapped (checked above) and 4-byte aligned, within
    // one frame. The FIFO state only names frames the guest handed over and
    // the hypervisor holds with a writable type reference (taken before the
    // frame is recorded, dropped only after the state forgot it), so the
    // frame is guest RAM that can neither be freed nor become a page table
    // meanwhile. An `AtomicU32` is valid for any bits, and all access from
    // this side is atomic, so the guest writing the word concurrently is
    // sound. The reference does not escape `f`.
    let word = unsafe { &*(address as *const AtomicU32) };
    f(word)
}

impl GuestWords for MachineWords {
    fn load(&self, at: WordAddress) -> u32 {
        with_word(at, |word| word.load(SeqCst))
    }

    fn store(&self, at: WordAddress, value: u32) {
        with_word(at, |word| word.store(value, SeqCst));
    }

    fn fetch_or(&self, at: WordAddress, bits: u32) -> u32 {
        with_word(at, |word| word.fetch_or(bits, SeqCst))
    }

    fn fetch_and(&self, at: WordAddress, bits: u32) -> u32 {
        with_word(at, |word| word.fetch_and(bits, SeqCst))
    }

    fn compare_exchange(&self, at: WordAddress, current: u32, new: u32) -> Result<u32, u32> {
        with_word(at, |word| word.compare_exchange(current, new, SeqCst, SeqCst))
    }
}
