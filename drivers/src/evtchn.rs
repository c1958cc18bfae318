//! The 2-level event-channel ABI: bitmaps in `shared_info`.
//!
//! Port `p` is bit `p % 64` of word `p / 64` in `evtchn_pending` and
//! `evtchn_mask`; bit `p / 64` of a vCPU's `evtchn_pending_sel` says that
//! word may have work, and `evtchn_upcall_pending` says the vCPU has been
//! told. Xen (here: our hypervisor) sets bits top-down, the guest clears them
//! bottom-up, so no event is lost when both run at once:
//!
//! * [`set_pending`] and [`unmask`] are the hypervisor's half (Xen's
//!   `evtchn_2l_set_pending` and `EVTCHNOP_unmask`).
//! * [`pending_ports`], [`mask`] and [`unmask_local`] are the guest's half.
//!
//! All read-modify-writes are sequentially consistent, as Xen's locked bit
//! operations are.

use core::sync::atomic::Ordering::SeqCst;

use hypercalls::abi::event_channel::{EvtchnPort, EVTCHN_2L_NR_CHANNELS};

pub use crate::shared_info::{SharedInfoView, VcpuInfoView};

/// Ports the 2-level ABI can name (4096 on x86_64).
pub const NR_PORTS: u32 = EVTCHN_2L_NR_CHANNELS as u32;

const BITS_PER_WORD: u32 = u64::BITS;

/// A port the 2-level bitmaps cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortOutOfRange(pub EvtchnPort);

/// The bitmap word and bit mask of `port`.
fn locate(port: EvtchnPort) -> Result<(usize, u64), PortOutOfRange> {
    if port >= NR_PORTS {
        return Err(PortOutOfRange(port));
    }
    Ok(((port / BITS_PER_WORD) as usize, 1u64 << (port % BITS_PER_WORD)))
}

/// Tells `vcpu` that `word` has work. True if this raised the vCPU's
/// `evtchn_upcall_pending` from 0, i.e. it must be kicked.
fn mark_word_pending(vcpu: &VcpuInfoView, word: usize) -> bool {
    let selector_bit = 1u64 << word;
    if vcpu.evtchn_pending_sel.fetch_or(selector_bit, SeqCst) & selector_bit != 0 {
        return false;
    }
    vcpu.evtchn_upcall_pending.swap(1, SeqCst) == 0
}

/// Hypervisor: `port` fired. Sets its pending bit; if that is new and the
/// port is not masked, flags its word in `vcpu`'s selector and raises
/// `evtchn_upcall_pending`. Returns true when the vCPU needs an upcall (its
/// `evtchn_upcall_pending` went from 0 to 1); delivery still waits while
/// the guest's `evtchn_upcall_mask` is set.
pub fn set_pending(
    shared: &SharedInfoView,
    vcpu: &VcpuInfoView,
    port: EvtchnPort,
) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    if shared.evtchn_pending[word].fetch_or(bit, SeqCst) & bit != 0 {
        return Ok(false);
    }
    if shared.evtchn_mask[word].load(SeqCst) & bit != 0 {
        return Ok(false);
    }
    Ok(mark_word_pending(vcpu, word))
}

/// Hypervisor: `EVTCHNOP_unmask`. Clears the mask bit and, if the port was
/// masked and is pending, re-raises it on `vcpu`. Returns true when the
/// vCPU needs an upcall.
pub fn unmask(
    shared: &SharedInfoView,
    vcpu: &VcpuInfoView,
    port: EvtchnPort,
) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    let was_masked = shared.evtchn_mask[word].fetch_and(!bit, SeqCst) & bit != 0;
    if was_masked && shared.evtchn_pending[word].load(SeqCst) & bit != 0 {
        return Ok(mark_word_pending(vcpu, word));
    }
    Ok(false)
}

/// Guest: runs `handler` once for every pending, unmasked port, clearing
/// each pending bit *before* its handler runs (so a new event during the
/// handler is seen again). Loops until the selector is empty, so events
/// that arrive during the scan are handled in the same call. Masked ports
/// stay pending. Returns the number of handler calls.
///
/// Within a word, ports are handled from a snapshot of the active bits, so
/// a port that keeps firing cannot starve the others.
pub fn pending_ports(
    shared: &SharedInfoView,
    vcpu: &VcpuInfoView,
    mut handler: impl FnMut(EvtchnPort),
) -> usize {
    let mut handled = 0;
    loop {
        // Clear the summary flag first: anything Xen sets after this point
        // raises it again and is caught by the next round or upcall.
        vcpu.evtchn_upcall_pending.store(0, SeqCst);
        let mut selector = vcpu.evtchn_pending_sel.swap(0, SeqCst);
        if selector == 0 {
            return handled;
        }
        while selector != 0 {
            let word = selector.trailing_zeros() as usize;
            selector &= selector - 1;
            loop {
                let mut active =
                    shared.evtchn_pending[word].load(SeqCst) & !shared.evtchn_mask[word].load(SeqCst);
                if active == 0 {
                    break;
                }
                while active != 0 {
                    let bit_index = active.trailing_zeros();
                    let bit = 1u64 << bit_index;
                    active &= !bit;
                    if shared.evtchn_pending[word].fetch_and(!bit, SeqCst) & bit != 0 {
                        handler(word as u32 * BITS_PER_WORD + bit_index);
                        handled += 1;
                    }
                }
            }
        }
    }
}

/// Guest: stops upcalls for `port` (events still mark it pending).
pub fn mask(shared: &SharedInfoView, port: EvtchnPort) -> Result<(), PortOutOfRange> {
    let (word, bit) = locate(port)?;
    shared.evtchn_mask[word].fetch_or(bit, SeqCst);
    Ok(())
}

/// Guest: re-enables upcalls for `port` without a hypercall. If the port
/// fired while masked, this flags it in `vcpu`'s selector and upcall flag
/// and returns true: the caller must then process events itself (call
/// [`pending_ports`]) or make the `EVTCHNOP_unmask` hypercall, because no
/// upcall is on its way for that event.
pub fn unmask_local(
    shared: &SharedInfoView,
    vcpu: &VcpuInfoView,
    port: EvtchnPort,
) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    shared.evtchn_mask[word].fetch_and(!bit, SeqCst);
    if shared.evtchn_pending[word].load(SeqCst) & bit == 0 {
        return Ok(false);
    }
    vcpu.evtchn_pending_sel.fetch_or(1u64 << word, SeqCst);
    vcpu.evtchn_upcall_pending.store(1, SeqCst);
    Ok(true)
}

/// Clears `port`'s pending bit; returns whether it was set.
pub fn clear_pending(shared: &SharedInfoView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    Ok(shared.evtchn_pending[word].fetch_and(!bit, SeqCst) & bit != 0)
}

/// Whether `port` is pending.
pub fn is_pending(shared: &SharedInfoView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    Ok(shared.evtchn_pending[word].load(SeqCst) & bit != 0)
}

/// Whether `port` is masked.
pub fn is_masked(shared: &SharedInfoView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    let (word, bit) = locate(port)?;
    Ok(shared.evtchn_mask[word].load(SeqCst) & bit != 0)
}

#[cfg(test)]
mod tests;
