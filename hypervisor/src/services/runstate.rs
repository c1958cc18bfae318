//! vCPU runstate accounting (`struct vcpu_runstate_info`): which state the
//! vCPU is in since when, and how long it has spent in each state.

use hypercalls::abi::vcpu::{RUNSTATE_blocked, RUNSTATE_running, VcpuRunstateInfo, XEN_RUNSTATE_UPDATE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Blocked,
}

impl State {
    fn abi(self) -> i32 {
        match self {
            State::Running => RUNSTATE_running,
            State::Blocked => RUNSTATE_blocked,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runstate {
    info: VcpuRunstateInfo,
}

impl Runstate {
    /// A vCPU that started running at system time `now`.
    pub const fn new(now: u64) -> Self {
        Self { info: VcpuRunstateInfo { state: RUNSTATE_running, state_entry_time: now, time: [0; 4] } }
    }

    /// Moves to `state` at `now`, charging the time since the last change
    /// to the state being left.
    pub fn enter(&mut self, state: State, now: u64) {
        let index = self.info.state as usize;
        self.info.time[index] += now.saturating_sub(self.info.state_entry_time);
        self.info.state = state.abi();
        self.info.state_entry_time = now;
    }

    /// What Xen copies into the guest's runstate area: the record as of
    /// the last state change.
    pub fn recorded(&self) -> VcpuRunstateInfo {
        self.info
    }

    /// `VCPUOP_get_runstate_info`: the record with the current state's
    /// time brought up to `now`.
    pub fn at(&self, now: u64) -> VcpuRunstateInfo {
        let mut info = self.info;
        info.time[info.state as usize] += now.saturating_sub(info.state_entry_time);
        info
    }

    /// The record marked as being updated (`XEN_RUNSTATE_UPDATE`), for
    /// guests that asked for `VMASST_TYPE_runstate_update_flag`.
    pub fn recorded_updating(&self) -> VcpuRunstateInfo {
        let mut info = self.info;
        info.state_entry_time |= XEN_RUNSTATE_UPDATE;
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::abi::vcpu::RUNSTATE_runnable;

    #[test]
    fn time_is_charged_to_the_state_being_left() {
        let mut runstate = Runstate::new(100);
        runstate.enter(State::Blocked, 350);
        runstate.enter(State::Running, 1_000);
        let info = runstate.recorded();
        assert_eq!(info.state, RUNSTATE_running);
        assert_eq!(info.state_entry_time, 1_000);
        assert_eq!(info.time[RUNSTATE_running as usize], 250);
        assert_eq!(info.time[RUNSTATE_blocked as usize], 650);
        assert_eq!(info.time[RUNSTATE_runnable as usize], 0);
    }

    #[test]
    fn the_live_view_includes_the_current_state() {
        let mut runstate = Runstate::new(0);
        runstate.enter(State::Blocked, 10);
        let live = runstate.at(25);
        assert_eq!(live.time[RUNSTATE_blocked as usize], 15);
        assert_eq!(runstate.recorded().time[RUNSTATE_blocked as usize], 0);
    }

    #[test]
    fn the_update_flag_is_bit_63_of_the_entry_time() {
        let runstate = Runstate::new(77);
        assert_eq!(runstate.recorded_updating().state_entry_time, 77 | (1 << 63));
        assert_eq!(runstate.recorded().state_entry_time, 77);
    }
}
