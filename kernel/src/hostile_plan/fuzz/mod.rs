//! The hypercall fuzzer's policy: from a seeded [`Rng`] and a description
//! of the guest's scratch resources ([`Env`]), plan one hypercall at a time
//! ([`Call`]): its number, its five argument words, what to write into the
//! scratch buffers first, and what to repair afterwards.
//!
//! Arguments point into the guest's own scratch memory, into the
//! hypervisor's range, into non-canonical and unmapped space, and name
//! frames the guest does not own. What the planner never does, because it
//! would legitimately destroy the guest rather than test the hypervisor:
//!
//! * `iret` (it consumes a frame from the caller's stack);
//! * shut the domain down: `SCHEDOP_shutdown`, `_shutdown_code` and
//!   `_watchdog` only get pointers the hypervisor must refuse (not even
//!   one whose first bytes are readable), `remote_shutdown`
//!   never names the guest itself, `VCPUOP_down` is never issued, and
//!   `EVTCHNOP_reset` never names the guest;
//! * block without a wake-up: no `SCHEDOP_block`, and every `SCHEDOP_poll`
//!   carries a timeout already in the past;
//! * change what the kernel runs on: `MMUEXT_NEW_BASEPTR` only names frames
//!   the guest does not own; no frame, slot or address of the running
//!   kernel appears anywhere (only the scratch frames in [`Env`]);
//!   `MMU_MACHPHYS_UPDATE` only names spare or foreign frames;
//!   `VCPUOP_register_vcpu_info`, `VCPUOP_initialise` and `VCPUOP_send_nmi`
//!   are never issued; runstate and time areas go only to the sink page
//!   (or to pointers the hypervisor refuses);
//!   `EVTCHNOP_init_control` / `expand_array` never name a guest frame
//!   (that would switch the guest to FIFO events);
//! * close or rebind the kernel's own event channels: ports the planner
//!   closes or moves are the fuzzer's own ([`Env::ports`]) or out of range;
//! * switch the grant table to version 2;
//! * enable debug breakpoints (DR7 enable bits stay clear);
//! * let the hypervisor read requests the planner did not write: a count
//!   larger than a list's honest length (or with upper bits a 32-bit
//!   parameter drops) only goes with a list pointer the hypervisor must
//!   refuse, and the bytes behind the "straddling" pointer (the last 64 of
//!   the buffers, right before the unmapped guard page) hold
//!   [`STRADDLE_POISON`], which reads as an invalid port, domain or command;
//! * write to the console (only pointers that fault), since the output is
//!   the test log;
//! * as the initial domain (real Xen's dom0, which is privileged), any
//!   hypercall that could reconfigure the machine: platform_op, sysctl,
//!   domctl, kexec, xenoprof, xenpmu, dm_op, hypfs, mca, paging_domctl_cont,
//!   physdev operations other than `set_iopl` / `irq_status_query`, and
//!   `EVTCHNOP_bind_pirq`.
//!
//! State the kernel does rely on but a call may legitimately change is
//! listed in [`Repairs`]; the kernel restores it right after the call (its
//! trap table, callbacks, FPU switch flag, segment bases, debug registers,
//! NMI callback, periodic timer).

mod calls;
mod memory_calls;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use super::Rng;

/// The guest resources the fuzzer may use, all virtual addresses unless named otherwise.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// Real Xen's dom0: privileged, so machine-wide hypercalls are excluded.
    pub privileged: bool,
    pub own_domid: u16,
    /// Scratch buffers: `buffer_bytes` mapped writable at `buffer_base`, an
    /// unmapped guard page right after.
    pub buffer_base: u64,
    pub buffer_bytes: u64,
    /// A page the hypervisor may keep writing to (runstate and time areas).
    pub sink: u64,
    /// 512 pages (one whole L1 table) whose PTEs the fuzzer may rewrite,
    /// and the machine address of that L1 table.
    pub playground: u64,
    pub playground_l1: u64,
    /// Machine frames the guest owns that nothing uses or maps writable.
    pub spare_mfns: Vec<u64>,
    /// Machine frames that are not the guest's (the hypervisor's tables).
    pub foreign_mfns: Vec<u64>,
    /// Event-channel ports set aside for the fuzzer.
    pub ports: Vec<u32>,
}

/// What `fuzz=<seed>,<count>[,trace]` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub seed: u64,
    pub count: u64,
    /// Print every call before issuing it (to find the one that hangs).
    pub trace: bool,
}

/// Parses the command-line value (numbers decimal or `0x` hex).
pub fn parse_spec(spec: &str) -> Result<Spec, &'static str> {
    let mut parts = spec.split(',').map(str::trim);
    let seed = parts.next().ok_or("expected fuzz=<seed>,<count>")?;
    let count = parts.next().ok_or("expected fuzz=<seed>,<count>")?;
    let trace = match parts.next() {
        None => false,
        Some("trace") => true,
        Some(_) => return Err("the third part of fuzz= may only be `trace`"),
    };
    let seed = crate::cmdline::parse_number(seed).ok_or("the seed is not a number")?;
    let count = crate::cmdline::parse_number(count).ok_or("the count is not a number")?;
    Ok(Spec { seed, count, trace })
}

/// Pages in the playground: exactly one L1 table.
pub const PLAYGROUND_PAGES: u64 = 512;

/// Canonical addresses in the hypervisor's reserved range.
pub const HYPERVISOR_ADDRESSES: [u64; 4] =
    [0xffff_8000_0000_0000, 0xffff_82d0_8000_0000, 0xffff_8300_0000_0000, 0xffff_87ff_ffff_f000];
/// Canonical addresses nothing maps (the top of the lower half).
pub const UNMAPPED_ADDRESSES: [u64; 3] =
    [0x0000_7fff_ffff_f000, 0x0000_7fff_0000_0000, 0x0000_0000_dead_0000];

/// State a call may change that the kernel restores afterwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repairs(pub u8);

impl Repairs {
    pub const TRAPS: u8 = 1 << 0;
    pub const CALLBACKS: u8 = 1 << 1;
    pub const FPU: u8 = 1 << 2;
    pub const SEGMENT_BASES: u8 = 1 << 3;
    pub const DEBUG_REGISTERS: u8 = 1 << 4;
    pub const NMI_CALLBACK: u8 = 1 << 5;
    pub const PERIODIC_TIMER: u8 = 1 << 6;

    pub fn has(self, repair: u8) -> bool {
        self.0 & repair != 0
    }
}

/// Words to write at `address` before the call (`words[start..start + len]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub address: u64,
    pub start: usize,
    pub len: usize,
}

/// One planned hypercall.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub number: u64,
    pub args: [u64; 5],
    pub fills: Vec<Fill>,
    pub words: Vec<u64>,
    pub repairs: Repairs,
    /// If the call succeeds it wrote a new event-channel port (a `u32`) at
    /// this address; the kernel closes it so ports do not run out.
    pub close_port_at: Option<u64>,
}

impl Call {
    /// Every word the call will write into a buffer, with its address.
    pub fn filled_words(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.fills.iter().flat_map(move |fill| {
            self.words[fill.start..fill.start + fill.len]
                .iter()
                .enumerate()
                .map(move |(index, &word)| (fill.address + 8 * index as u64, word))
        })
    }
}

/// Bytes at the end of the buffer region never handed out, so a pointer
/// there straddles into the guard page. The hypervisor may read the first
/// bytes behind such a pointer; the kernel fills the zone with
/// [`STRADDLE_POISON`] before every call so that they are always vetted.
pub const STRADDLE_ZONE: u64 = 64;

/// The zone's contents: all ones reads as an invalid port, domain, count,
/// command or address wherever a hypervisor finds it.
pub const STRADDLE_POISON: u64 = u64::MAX;

/// Plans calls one after another from a seed.
pub struct Planner<'e> {
    env: &'e Env,
    rng: Rng,
    call: Call,
    /// Next free byte of the buffer region for the call being planned.
    next_free: u64,
}

impl<'e> Planner<'e> {
    pub fn new(env: &'e Env, seed: u64) -> Self {
        Self { env, rng: Rng::new(seed), call: Call::default(), next_free: env.buffer_base }
    }

    /// The next call. Its buffers never overlap each other.
    pub fn next_call(&mut self) -> &Call {
        self.call.fills.clear();
        self.call.words.clear();
        self.call.repairs = Repairs::default();
        self.call.close_port_at = None;
        self.call.args = [0; 5];
        self.next_free = self.env.buffer_base;
        let (number, args) = self.plan_top_level();
        self.call.number = number;
        self.call.args = args;
        &self.call
    }

    // ----- building blocks -----

    /// Copies `words` into a fresh buffer; `None` if the region is full.
    fn buffer(&mut self, words: &[u64]) -> Option<u64> {
        let bytes = 8 * words.len() as u64;
        let end = self.env.buffer_base + self.env.buffer_bytes - STRADDLE_ZONE;
        let address = self.next_free;
        if address + bytes > end {
            return None;
        }
        self.next_free = address + bytes.max(8);
        let start = self.call.words.len();
        self.call.words.extend_from_slice(words);
        self.call.fills.push(Fill { address, start, len: words.len() });
        Some(address)
    }

    /// A pointer the hypervisor must refuse, or one that runs off the end
    /// of the mapped buffers into the guard page.
    fn bad_pointer(&mut self) -> u64 {
        match self.rng.below(5) {
            0 => 0,
            1 => 0x0000_8000_0000_0000 | (self.rng.next_u64() & 0x0000_7fff_ffff_fff8),
            2 => self.rng.pick(&HYPERVISOR_ADDRESSES),
            3 => self.rng.pick(&UNMAPPED_ADDRESSES),
            _ => self.env.buffer_base + self.env.buffer_bytes - 8,
        }
    }

    /// A pointer the hypervisor must refuse outright (never the straddling
    /// one, whose first bytes are readable): for requests that would hurt
    /// the guest if they were read at all, such as a shutdown.
    fn refused_pointer(&mut self) -> u64 {
        match self.rng.below(4) {
            0 => 0,
            1 => 0x0000_8000_0000_0000 | (self.rng.next_u64() & 0x0000_7fff_ffff_fff8),
            2 => self.rng.pick(&HYPERVISOR_ADDRESSES),
            _ => self.rng.pick(&UNMAPPED_ADDRESSES),
        }
    }

    /// A buffer holding `words`, or (one time in five, or when full) a bad pointer.
    fn pointer_to(&mut self, words: &[u64]) -> u64 {
        if self.rng.chance(1, 5) {
            return self.bad_pointer();
        }
        match self.buffer(words) {
            Some(address) => address,
            None => self.bad_pointer(),
        }
    }

    /// A buffer of `len` random words (or a bad pointer).
    fn random_buffer(&mut self, len: usize) -> u64 {
        let mut words = [0u64; 32];
        let len = len.min(words.len());
        for word in &mut words[..len] {
            *word = self.random_word();
        }
        self.pointer_to(&words[..len])
    }

    /// A word for unstructured buffer contents: random bits, small numbers,
    /// all-ones, scratch or foreign frame numbers, hypervisor addresses.
    /// Never an address or frame of the running kernel.
    fn random_word(&mut self) -> u64 {
        match self.rng.below(8) {
            0 | 1 => self.rng.next_u64(),
            2 => self.rng.below(16),
            3 => u64::MAX - self.rng.below(4),
            4 => self.mfn(),
            5 => self.pte(),
            6 => self.rng.pick(&HYPERVISOR_ADDRESSES),
            _ => u64::from(self.rng.next_u32()),
        }
    }

    /// A machine frame number: spare, foreign, beyond RAM, or random.
    fn mfn(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=3 if !self.env.spare_mfns.is_empty() => self.pick_spare(),
            4..=6 if !self.env.foreign_mfns.is_empty() => {
                let index = self.rng.below(self.env.foreign_mfns.len() as u64) as usize;
                self.env.foreign_mfns[index]
            }
            7 => (1 << 39) | self.rng.below(1 << 20),
            8 => 0xf_ffff_ffff,
            _ => self.rng.next_u64(),
        }
    }

    fn pick_spare(&mut self) -> u64 {
        let index = self.rng.below(self.env.spare_mfns.len() as u64) as usize;
        self.env.spare_mfns[index]
    }

    /// A page-table entry: an [`Planner::mfn`] with random flags, or noise.
    fn pte(&mut self) -> u64 {
        const FLAG_BITS: [u64; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 52, 62, 63];
        if self.rng.chance(1, 10) {
            return self.rng.next_u64();
        }
        let mut flags = 1; // present, mostly
        for _ in 0..self.rng.below(5) {
            flags ^= 1 << self.rng.pick(&FLAG_BITS);
        }
        ((self.mfn() & 0xff_ffff_ffff) << 12) | flags
    }

    /// A machine address of a page-table entry to update, with `cmd` in the
    /// low bits: a spare frame, the playground L1, a foreign frame or noise.
    /// `MMU_MACHPHYS_UPDATE` (1) never names the playground L1.
    fn update_pointer(&mut self) -> u64 {
        let cmd = self.rng.below(4);
        let slot = 8 * self.rng.below(512);
        let frame_address = match self.rng.below(10) {
            0..=2 if cmd != 1 => self.env.playground_l1 + slot,
            9 => return self.rng.next_u64() & !7 | cmd,
            _ => (self.mfn() & 0xff_ffff_ffff) * 4096 + slot,
        };
        frame_address | cmd
    }

    /// A virtual address whose PTE `update_va_mapping` may change: a
    /// playground page, or one the hypervisor must refuse.
    fn mapping_address(&mut self) -> u64 {
        match self.rng.below(8) {
            0..=3 => self.env.playground + 4096 * self.rng.below(PLAYGROUND_PAGES),
            4 => self.rng.pick(&HYPERVISOR_ADDRESSES),
            5 => self.rng.pick(&UNMAPPED_ADDRESSES),
            6 => 0x0000_8000_0000_0000 | (self.rng.next_u64() & 0x0000_7fff_ffff_f000),
            _ => self.env.playground + 4096 * self.rng.below(PLAYGROUND_PAGES) + self.rng.below(4096),
        }
    }

    /// A domain id: the guest itself (as `DOMID_SELF` or by number), domain
    /// 0, a special id or noise.
    fn domid(&mut self) -> u64 {
        use hypercalls::abi::xen::{DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN};
        match self.rng.below(10) {
            0..=3 => DOMID_SELF.into(),
            4 => self.env.own_domid.into(),
            5 => 0,
            6 => self.rng.pick(&[DOMID_IO, DOMID_XEN, DOMID_INVALID]).into(),
            7 => self.rng.below(16),
            _ => u64::from(self.rng.next_u32() as u16),
        }
    }

    /// A domain id that is not the guest, for operations on another domain
    /// that would hurt the guest if aimed at itself.
    fn other_domid(&mut self) -> u64 {
        use hypercalls::abi::xen::DOMID_SELF;
        loop {
            let domid = self.domid() & 0xffff;
            if domid != u64::from(DOMID_SELF) && domid != u64::from(self.env.own_domid) {
                return domid;
            }
        }
    }

    /// An event-channel port the fuzzer may close or rebind.
    fn owned_port(&mut self) -> u64 {
        if !self.env.ports.is_empty() && self.rng.chance(2, 3) {
            let index = self.rng.below(self.env.ports.len() as u64) as usize;
            return self.env.ports[index].into();
        }
        self.out_of_range_port()
    }

    fn out_of_range_port(&mut self) -> u64 {
        self.rng.pick(&[4096, 4097, 1 << 17, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_1000])
    }

    /// Any port, for operations harmless on the kernel's own ports.
    fn any_port(&mut self) -> u64 {
        match self.rng.below(3) {
            0 => self.rng.below(64),
            1 => self.owned_port(),
            _ => self.out_of_range_port(),
        }
    }

    /// A count for a list of `entries` at `list`. Absurd counts (huge, or
    /// with upper bits a 32-bit parameter drops) only go with a list the
    /// hypervisor cannot read: a hypervisor that reads past the honest
    /// part of a real list would run stale buffer contents as requests,
    /// which are not vetted (the hostile suite tests that case safely, with
    /// the list against unmapped memory).
    fn count(&mut self, list: u64, entries: u64) -> u64 {
        let absurd = match self.rng.below(4) {
            0 => self.rng.pick(&[0x7fff_ffff, 0xffff_ffff, 0x8000_0000]),
            1 => (1 << 32) | (1 + self.rng.below(2)),
            2 => self.rng.next_u64(),
            _ => 0,
        };
        let list_readable =
            (self.env.buffer_base..self.env.buffer_base + self.env.buffer_bytes).contains(&list);
        match self.rng.below(8) {
            0 if !list_readable => absurd,
            1 => 0,
            _ => 1 + self.rng.below(entries.max(1)),
        }
    }
}
