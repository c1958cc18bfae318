//! `set_timer_op(timeout)`: the vCPU's single-shot timer, in absolute
//! system time; `VIRQ_TIMER` fires when it expires.

use super::{Args, HypercallResult};
use crate::{events, time};

pub fn set_timer_op(Args([timeout, ..]): Args) -> HypercallResult {
    let now = time::now_ns();
    events::with(|state, _| state.timers.set_timer_op(timeout, now));
    events::timers_changed();
    Ok(0)
}
