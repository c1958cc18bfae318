//! Event channels, virtual timers and upcalls at run time: the bare-metal
//! side of `hypervisor::services`.
//!
//! All of it is one [`EventState`] behind a lock. Nothing here holds that
//! lock while it takes the domain lock, runs a backend or waits for an
//! interrupt, so the backends may send events back from inside their work.
//!
//! The flow on every way back to the guest ([`before_guest_resumes`]):
//! run the timers if the APIC alarm fired, let the backends handle the
//! events the guest sent them, then bounce to the guest's event callback if
//! an upcall is pending and not masked (Xen's check on exit to guest).

use core::sync::atomic::{AtomicBool, Ordering};

use drivers::shared_info::{SharedInfoView, VcpuInfoView};
use hypercalls::abi::xen::{VMASST_TYPE_runstate_update_flag, VcpuTimeInfo, VIRQ_TIMER};
use hypervisor::mm::{Mfn, MmError, PageType};
use hypervisor::services::ports::{EventChannels, GuestEvents, Port, WakeCounters};
use hypervisor::services::runstate::{Runstate, State};
use hypervisor::services::timers::{VcpuTimers, MILLISECOND};
use spin::Mutex;

use crate::arch::entry::Frame;
use crate::arch::fifo_words::MachineWords;
use crate::arch::{guest_access, memory, shared};
use crate::domain::{self, BACKEND_DOMID, GUEST_DOMID, NMI_VECTOR};
use crate::{backends, exceptions, time, traps};

/// How often the backends look at the console ring and the serial line
/// even when nobody notified them.
const BACKEND_TICK: u64 = 10 * MILLISECOND;

pub struct EventState {
    pub channels: EventChannels,
    pub timers: VcpuTimers,
    runstate: Runstate,
    /// Guest-virtual addresses the guest registered (0: none).
    runstate_area: u64,
    time_area: u64,
    time_area_version: u32,
    /// The machine frame `VCPUOP_register_vcpu_info` moved vcpu_info to.
    vcpu_info_frame: Option<u64>,
    views: Option<Views>,
    next_backend_tick: u64,
    /// A `SCHEDOP_poll` timeout being waited for.
    poll_deadline: Option<u64>,
}

impl EventState {
    const fn new() -> Self {
        Self {
            channels: EventChannels::new(GUEST_DOMID, BACKEND_DOMID),
            timers: VcpuTimers::new(),
            runstate: Runstate::new(0),
            runstate_area: 0,
            time_area: 0,
            time_area_version: 0,
            vcpu_info_frame: None,
            views: None,
            next_backend_tick: 0,
            poll_deadline: None,
        }
    }

    fn next_deadline(&self) -> u64 {
        let timers = self.timers.next_deadline().unwrap_or(u64::MAX);
        let poll = self.poll_deadline.unwrap_or(u64::MAX);
        timers.min(poll).min(self.next_backend_tick)
    }

    pub fn vcpu_info_frame(&self) -> Option<u64> {
        self.vcpu_info_frame
    }

    pub fn runstate(&self) -> &Runstate {
        &self.runstate
    }
}

/// The guest's event pages as the hypervisor sees them.
#[derive(Clone, Copy)]
struct Views {
    shared: &'static SharedInfoView,
    vcpu: &'static VcpuInfoView,
}

impl Views {
    fn events(self) -> GuestEvents<'static> {
        GuestEvents { shared: self.shared, vcpu: self.vcpu, words: &MachineWords }
    }
}

static STATE: Mutex<EventState> = Mutex::new(EventState::new());
/// Set once [`set_up`] has run, so the hot path skips it without locking.
static READY: AtomicBool = AtomicBool::new(false);

/// Sets up the guest's event channels, time and backends before its first
/// instruction, and masks event upcalls on every `vcpu_info` in
/// `shared_info`, as Xen's domain builders do (the guest unmasks them once
/// it is ready for events). Boot calls this after building the domain;
/// until it does, the first entry from the guest sets things up (late,
/// and without masking upcalls the guest may already have unmasked).
pub fn init() {
    set_up(true);
}

fn set_up(before_guest_runs: bool) {
    if READY.load(Ordering::Acquire) {
        return;
    }
    let mut state = STATE.lock();
    if state.views.is_some() {
        return;
    }
    if !before_guest_runs {
        log::warn!("events: set up late, at the guest's first entry (boot should call events::init)");
    }
    let (shared_info, vcpu_info, console_port, store_port, console_ring, store_ring) = domain::with(|d| {
        (d.shared_info, d.vcpu.vcpu_info, d.console_port, d.store_port, d.console_ring, d.store_ring)
    });
    let views =
        Views { shared: shared::shared_info_view(shared_info), vcpu: shared::vcpu_info_view(vcpu_info) };
    state.views = Some(views);
    shared::set_current_vcpu_info(views.vcpu);
    if before_guest_runs {
        for vcpu in &views.shared.vcpu_info {
            vcpu.evtchn_upcall_mask.store(1, Ordering::Relaxed);
        }
    }

    // The toolstack's part: the console and xenstore channels exist, bound
    // to their backends, before the guest runs. Ports are handed out in
    // order, so connect the lower-numbered one first.
    let mut backend_ports = [0; 2];
    let mut order = [(console_port, 0), (store_port, 1)];
    order.sort_unstable();
    for (expected, slot) in order {
        match state.channels.connect_backend(views.events()) {
            Ok((guest_port, backend_port)) if guest_port == expected => backend_ports[slot] = backend_port,
            other => log::error!("events: backend channel for guest port {expected} came out as {other:?}"),
        }
    }
    BACKEND_WORK.store(state.channels.has_backend_pending(), Ordering::SeqCst);
    // Binding marked the backends' ports pending; nothing has happened yet.
    while state.channels.take_backend_pending().is_some() {}

    let now = time::now_ns();
    state.runstate = Runstate::new(now);
    state.next_backend_tick = now + BACKEND_TICK;
    time::publish_wallclock(views.shared);
    time::publish_time_info(&views.vcpu.time, &time::time_info());
    drop(state);
    READY.store(true, Ordering::Release);

    backends::init(&backends::Setup {
        console_ring,
        console_guest_port: console_port,
        console_backend_port: backend_ports[0],
        store_ring,
        store_guest_port: store_port,
        store_backend_port: backend_ports[1],
    });
    log::info!(
        "events: console on port {console_port} (backend {}), xenstore on port {store_port} (backend {})",
        backend_ports[0],
        backend_ports[1]
    );
    rearm();
}

/// Runs `f` on the event state with the guest's event bitmaps.
pub fn with<R>(f: impl FnOnce(&mut EventState, GuestEvents<'static>) -> R) -> R {
    set_up(false);
    let mut state = STATE.lock();
    let views = state.views.expect("events initialised");
    let result = f(&mut state, views.events());
    BACKEND_WORK.store(state.channels.has_backend_pending(), Ordering::SeqCst);
    result
}

/// Mirrors "a backend port has an event waiting" outside the lock, for the
/// check on every way back to the guest; updated whenever the lock is held.
static BACKEND_WORK: AtomicBool = AtomicBool::new(false);

/// A backend's event to the guest through backend port `port`.
pub fn notify_guest(port: Port) {
    with(|state, events| {
        let _ = state.channels.backend_send(port, events);
    });
}

/// Fires a VIRQ at the guest (nothing happens if it is not bound).
pub fn raise_virq(virq: u32) {
    with(|state, events| state.channels.raise_virq(virq, events));
}

/// Lets the backends handle every event the guest sent them.
pub fn run_backends() {
    if !BACKEND_WORK.load(Ordering::SeqCst) {
        return;
    }
    while let Some(port) = with(|state, _| state.channels.take_backend_pending()) {
        backends::notify(port);
    }
}

/// Programs the APIC alarm for the earliest thing waiting: a guest timer,
/// a poll timeout or the backends' tick.
pub fn rearm() {
    let deadline = with(|state, _| state.next_deadline());
    time::set_alarm(deadline);
}

/// Runs everything due now: the guest's timers (raising `VIRQ_TIMER`),
/// the pvclock refresh and the backends' tick.
fn run_timers() {
    let now = time::now_ns();
    let info = time::time_info();
    let backend_tick = with(|state, events| {
        if state.timers.expire(now) {
            state.channels.raise_virq(VIRQ_TIMER, events);
        }
        time::publish_time_info(&events.vcpu.time, &info);
        let due = now >= state.next_backend_tick;
        if due {
            state.next_backend_tick = now + BACKEND_TICK;
        }
        due
    });
    update_time_area(&info);
    if backend_tick {
        backends::tick();
    }
    rearm();
}

/// Timer hypercalls changed a deadline: fire what is already due, then
/// re-program the alarm.
pub fn timers_changed() {
    run_timers();
}

/// Work done on every way back to the guest.
#[inline(always)]
pub fn before_guest_resumes(frame: &mut Frame) {
    if time::take_alarm_fired() {
        run_timers();
    }
    run_backends();
    deliver_nmi(frame);
    deliver_upcall(frame);
}

/// A virtual NMI waits for delivery (`VCPUOP_send_nmi`). Checked on every
/// way back to the guest, so kept outside the locks.
static NMI_PENDING: AtomicBool = AtomicBool::new(false);

/// `VCPUOP_send_nmi`: the NMI is delivered on the way back to the guest.
pub fn raise_nmi() {
    NMI_PENDING.store(true, Ordering::SeqCst);
}

/// Bounces a pending virtual NMI to the guest's handler (vector 2 of its
/// trap table), unless one is still being handled. With no handler the
/// NMI is lost, as on Xen. Unlike an event upcall it leaves events as
/// they were.
fn deliver_nmi(frame: &mut Frame) {
    if !NMI_PENDING.load(Ordering::SeqCst) {
        return;
    }
    let handler = domain::with(|d| {
        if d.vcpu.nmi_masked {
            return None;
        }
        NMI_PENDING.store(false, Ordering::SeqCst);
        let handler = d.vcpu.traps[usize::from(NMI_VECTOR)].address;
        d.vcpu.nmi_masked = handler != 0;
        (handler != 0).then_some(handler)
    });
    if let Some(handler) = handler {
        if let Err(why) = exceptions::bounce(frame, handler, None, false) {
            traps::crash_domain(frame, why);
        }
    }
}

/// Bounces to the guest's event callback if an event upcall is pending and
/// the guest has not masked upcalls; the bounce masks them, as Xen does.
fn deliver_upcall(frame: &mut Frame) {
    // Without the event lock: this runs on every way back to the guest.
    let Some(vcpu) = shared::current_vcpu_info() else { return };
    let deliverable = vcpu.evtchn_upcall_pending.load(Ordering::SeqCst) != 0
        && vcpu.evtchn_upcall_mask.load(Ordering::SeqCst) == 0;
    if !deliverable {
        return;
    }
    let callback = domain::with(|d| d.vcpu.event_callback);
    if callback == 0 {
        return;
    }
    if let Err(why) = exceptions::bounce(frame, callback, None, true) {
        traps::crash_domain(frame, why);
    }
}

/// Waits, with interrupts briefly enabled, until `woken` says so. Timers
/// and backends keep running meanwhile (the backends' tick also polls the
/// serial line, so input wakes a guest waiting for it).
fn wait_until(mut woken: impl FnMut(&mut EventState, GuestEvents<'static>) -> bool) {
    loop {
        if time::take_alarm_fired() {
            run_timers();
        }
        run_backends();
        if with(&mut woken) {
            return;
        }
        rearm();
        crate::arch::cpu::wait_for_interrupt();
    }
}

fn set_runstate(state: State) {
    let now = time::now_ns();
    with(|events, _| events.runstate.enter(state, now));
    write_runstate_area();
}

/// `SCHEDOP_block`: re-enables event delivery and sleeps until an event
/// needs delivering (the upcall then happens on the way back).
pub fn block() {
    let events = with(|_, events| events);
    events.vcpu.evtchn_upcall_mask.store(0, Ordering::SeqCst);
    if events.need_delivery() {
        return;
    }
    set_runstate(State::Blocked);
    let start = with(|state, _| state.channels.wake_counters());
    wait_until(|state, events| events.need_delivery() || state.channels.wake_counters().kicks != start.kicks);
    set_runstate(State::Running);
}

/// `SCHEDOP_poll` once the ports were checked and none is pending: sleeps
/// until one of them (with a single port: that one) becomes pending, an
/// upcall is raised, or system time `timeout` passes (0: no timeout).
pub fn poll_wait(single_port: Option<Port>, timeout: u64) {
    set_runstate(State::Blocked);
    let start: WakeCounters = with(|state, _| {
        state.poll_deadline = (timeout != 0).then_some(timeout);
        state.channels.wake_counters()
    });
    wait_until(|state, events| {
        let counters = state.channels.wake_counters();
        let port_fired = match single_port {
            Some(port) => state.channels.guest_port_pending(port, events).unwrap_or(false),
            None => counters.newly_pending != start.newly_pending,
        };
        let timed_out = timeout != 0 && time::now_ns() >= timeout;
        counters.kicks != start.kicks || port_fired || timed_out
    });
    with(|state, _| state.poll_deadline = None);
    set_runstate(State::Running);
}

/// Moves vCPU 0's `vcpu_info` to `machine` (the guest frame already holds
/// a writable type reference for it): copies the current contents, then
/// marks every selector bit and the upcall pending so no event is lost
/// (`map_vcpu_info`).
pub fn move_vcpu_info(mfn: u64, machine: u64) {
    let old = domain::with(|d| d.vcpu.vcpu_info);
    let size = core::mem::size_of::<hypercalls::abi::xen::VcpuInfo>() as u64;
    for offset in (0..size).step_by(8) {
        memory::write_u64(machine + offset, memory::read_u64(old + offset));
    }
    domain::with(|d| d.vcpu.vcpu_info = machine);
    let view = shared::vcpu_info_view(machine);
    with(|state, events| {
        state.views = Some(Views { shared: events.shared, vcpu: view });
        shared::set_current_vcpu_info(view);
        state.vcpu_info_frame = Some(mfn);
    });
    view.evtchn_pending_sel.store(u64::MAX, Ordering::SeqCst);
    view.evtchn_upcall_pending.store(1, Ordering::SeqCst);
}

/// Takes a writable type reference on guest frame `mfn` and never drops
/// it, as a real backend's grant mapping or Xen's `map_vcpu_info` holds
/// it: the frame can then neither leave the guest nor become a page table,
/// so the hypervisor may keep a view of it.
pub fn hold_guest_frame(mfn: u64) -> Result<(), MmError> {
    domain::memory::with(|state, mem| {
        state.frames.get_page_and_type(mem, Mfn(mfn), GUEST_DOMID, PageType::Writable)
    })
}

/// Drops the type reference [`hold_guest_frame`] took, once nothing in the
/// hypervisor refers to the frame any more (the FIFO state after
/// `EVTCHNOP_reset`, or a request refused after the frame was taken).
pub fn release_guest_frame(mfn: u64) {
    domain::memory::with(|state, mem| state.frames.put_page_and_type(mem, Mfn(mfn)));
}

/// Records the guest's runstate area and fills it in at once.
pub fn register_runstate_area(address: u64) {
    with(|state, _| state.runstate_area = address);
    write_runstate_area();
}

/// Records the guest's secondary `vcpu_time_info` and fills it in.
pub fn register_time_area(address: u64) {
    with(|state, _| state.time_area = address);
    update_time_area(&time::time_info());
}

/// Copies the runstate record to the guest's area, with the update flag
/// protocol if the guest enabled `VMASST_TYPE_runstate_update_flag`.
/// Faults are ignored, as Xen ignores them.
fn write_runstate_area() {
    let (address, runstate) = with(|state, _| (state.runstate_area, state.runstate));
    if address == 0 {
        return;
    }
    let flagged = domain::with(|d| d.vm_assist & (1 << VMASST_TYPE_runstate_update_flag) != 0);
    with_kernel_address_space(|| {
        if flagged {
            let _ = guest_access::write_struct(address, &runstate.recorded_updating());
        }
        let _ = guest_access::write_struct(address, &runstate.recorded());
    });
}

/// Refreshes the guest's secondary time record, Xen's way: version odd,
/// the record, version even.
fn update_time_area(info: &VcpuTimeInfo) {
    let (address, version) = with(|state, _| {
        state.time_area_version = time::version_update_begin(state.time_area_version);
        (state.time_area, state.time_area_version)
    });
    if address == 0 {
        return;
    }
    let mut record = *info;
    record.version = version;
    with_kernel_address_space(|| {
        if guest_access::write(address, &version.to_le_bytes()).is_ok() {
            let _ = guest_access::write_struct(address, &record);
            let _ = guest_access::write(address, &time::version_update_end(version).to_le_bytes());
        }
    });
    with(|state, _| state.time_area_version = time::version_update_end(version));
}

/// Runs `f` on the guest kernel's page tables: areas the kernel registered
/// need not be mapped in its user address space (Xen switches the same way).
fn with_kernel_address_space(f: impl FnOnce()) {
    let (in_kernel, kernel_root, user_root) =
        domain::with(|d| (domain::in_kernel_mode(), d.vcpu.kernel_root, d.vcpu.user_root));
    if in_kernel || kernel_root == 0 || user_root == 0 {
        f();
        return;
    }
    memory::switch_to_guest_root(kernel_root);
    f();
    memory::switch_to_guest_root(user_root);
}
