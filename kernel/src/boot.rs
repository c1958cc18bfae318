//! From the entry stubs to a running kernel: pick the platform, read what
//! the loader handed over, bring up memory and traps, then do what the
//! command line asks.

use drivers::debug_exit::Verdict;
use hypercalls::abi::hvm::{HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE};
use kernel::cmdline::Cmdline;
use kernel::memory_map::{MemoryMap, Region, RegionKind};

use crate::arch::memory;
use crate::platform::pvh::{self, PVH};
use crate::platform::{self, native::NATIVE, pv::PV, Platform};
use crate::{mm, println};

/// Everything the kernel learned from its loader, in one platform-neutral shape.
pub struct BootInfo {
    /// Which boot protocol delivered us, for the banner.
    pub protocol: &'static str,
    /// A copy of the command line: the loader's copy is in memory the
    /// kernel stops mapping once it has its own page tables.
    cmdline: [u8; CMDLINE_MAX],
    cmdline_len: usize,
    pub memory: MemoryMap,
    /// Guest-physical ranges (start, length) the loader still uses:
    /// the boot-information block, modules, the command line.
    pub in_use: [(u64, u64); 16],
}

/// The longest command line kept (Xen's `start_info.cmd_line` holds 1024 bytes).
const CMDLINE_MAX: usize = 2048;

impl BootInfo {
    pub(crate) fn new(protocol: &'static str) -> Self {
        Self {
            protocol,
            cmdline: [0; CMDLINE_MAX],
            cmdline_len: 0,
            memory: MemoryMap::new(),
            in_use: [(0, 0); 16],
        }
    }

    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    pub(crate) fn set_cmdline(&mut self, text: &str) {
        // Cut at a character boundary so the copy stays valid UTF-8.
        let mut len = text.len().min(CMDLINE_MAX);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        self.cmdline[..len].copy_from_slice(&text.as_bytes()[..len]);
        self.cmdline_len = len;
    }

    pub(crate) fn mark_in_use(&mut self, start: u64, len: u64) {
        if let Some(slot) = self.in_use.iter_mut().find(|slot| slot.1 == 0) {
            *slot = (start, len);
        }
    }
}

/// The PVH entry, in long mode on the boot page tables. The same entry
/// serves a native boot and a PVH guest of Xen: CPUID tells them apart
/// (Xen's signature in a hypervisor leaf), and the platform follows.
pub fn pvh_main(start_info: u64) -> ! {
    let (platform, on_xen) = match pvh::start::detect() {
        Ok(Some(leaves)) => {
            let platform = platform::select(&PVH);
            // Hypercalls first: as dom0 they are the only console.
            if let Err(problem) = pvh::start::start(leaves, start_info) {
                println!("boot: PVH start on Xen failed: {problem}");
                platform.shutdown(Verdict::Failure)
            }
            (platform, true)
        }
        Ok(None) => {
            NATIVE.init_console();
            (platform::select(&NATIVE), false)
        }
        Err(problem) => {
            NATIVE.init_console();
            let platform = platform::select(&NATIVE);
            println!("boot: Xen's CPUID leaves are unusable ({problem:?}); running native");
            (platform, false)
        }
    };
    let boot = match read_hvm_start_info(start_info, on_xen) {
        Ok(boot) => boot,
        Err(problem) => {
            println!("boot: {problem}");
            platform.shutdown(Verdict::Failure)
        }
    };
    if on_xen {
        pvh::start::apply_cmdline(&Cmdline::parse(boot.cmdline()));
    }
    kernel_main(platform, boot)
}

/// The PV entry: ring 3 under Xen, on Xen's bootstrap page tables, with
/// the virtual address of `start_info`.
pub fn pv_main(start_info: u64) -> ! {
    let platform = platform::select(&PV);
    let boot = match platform::pv::start::read_start_info(&PV, start_info) {
        Ok(boot) => boot,
        Err(problem) => {
            println!("boot: {problem}");
            platform.shutdown(Verdict::Failure)
        }
    };
    kernel_main(platform, boot)
}

/// `hvm_start_info` at `paddr`; `on_xen` allows Xen's version 0 (no memory map).
fn read_hvm_start_info(paddr: u64, on_xen: bool) -> Result<BootInfo, &'static str> {
    let start_info: HvmStartInfo = memory::read_phys(paddr);
    if start_info.magic != XEN_HVM_START_MAGIC_VALUE {
        return Err("hvm_start_info has the wrong magic; this entry point is for PVH loaders");
    }
    let mut boot = BootInfo::new("PVH");
    boot.mark_in_use(paddr, core::mem::size_of::<HvmStartInfo>() as u64);
    if start_info.cmdline_paddr != 0 {
        let text = memory::read_phys_c_str(start_info.cmdline_paddr, CMDLINE_MAX);
        boot.set_cmdline(text);
        boot.mark_in_use(start_info.cmdline_paddr, text.len() as u64 + 1);
    }
    for index in 0..u64::from(start_info.nr_modules) {
        let entry_size = core::mem::size_of::<HvmModlistEntry>() as u64;
        let module: HvmModlistEntry = memory::read_phys(start_info.modlist_paddr + index * entry_size);
        boot.mark_in_use(module.paddr, module.size);
    }
    if start_info.nr_modules > 0 {
        let size = core::mem::size_of::<HvmModlistEntry>() as u64;
        boot.mark_in_use(start_info.modlist_paddr, u64::from(start_info.nr_modules) * size);
    }
    // The memory map arrived with version 1 of the structure. Xen 4.17
    // still builds a PVH dom0 version 0, whose map comes by hypercall.
    if start_info.version < 1 || start_info.memmap_entries == 0 {
        if on_xen {
            pvh::start::read_memory_map(&mut boot.memory)?;
            return Ok(boot);
        }
        return Err("hvm_start_info carries no memory map (version 0 loaders are not supported)");
    }
    let entry_size = core::mem::size_of::<HvmMemmapTableEntry>() as u64;
    for index in 0..u64::from(start_info.memmap_entries) {
        let entry: HvmMemmapTableEntry = memory::read_phys(start_info.memmap_paddr + index * entry_size);
        boot.memory.push(Region {
            start: entry.addr,
            len: entry.size,
            kind: RegionKind::from_e820(entry.r#type),
        });
    }
    boot.mark_in_use(start_info.memmap_paddr, u64::from(start_info.memmap_entries) * entry_size);
    Ok(boot)
}

/// What the loader handed over, kept for the kernel's lifetime.
static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// What the boot loader or hypervisor handed over, once the kernel has it.
pub fn boot_info() -> Option<&'static BootInfo> {
    BOOT_INFO.get()
}

fn kernel_main(platform: &'static dyn Platform, boot: BootInfo) -> ! {
    let boot: &'static BootInfo = BOOT_INFO.call_once(|| boot);
    let cmdline = Cmdline::parse(boot.cmdline());
    crate::console::init_logging(cmdline.has_flag("debug"));
    println!(
        "Guest kernel {} (Rust), platform: {} ({} boot)",
        env!("CARGO_PKG_VERSION"),
        platform.name(),
        boot.protocol
    );
    println!("command line: \"{}\"", boot.cmdline());
    println!("memory map ({} MiB of RAM):", boot.memory.total_ram() >> 20);
    crate::console::print(format_args!("{}", boot.memory));

    platform.install_traps();
    mm::init_frames(&boot.memory, &boot.in_use);
    if let Err(problem) = platform.init_address_space(&boot.memory) {
        println!("boot: {problem}");
        platform.shutdown(Verdict::Failure);
    }
    mm::init_heap();
    let free = mm::frames::with(|frames| frames.free_frames());
    let heap = crate::arch::heap::stats().total;
    println!("memory: {} MiB free after the heap ({} KiB)", free * 4 / 1024, heap / 1024);
    platform.init_services();
    if let Some(xen) = platform::xen() {
        println!(
            "Xen {}.{}{} ({}), features {:#010x}, {}",
            xen.version.0,
            xen.version.1,
            xen.extra_version,
            xen.capabilities,
            xen.features,
            if xen.initial_domain { "initial domain (dom0)" } else { "unprivileged domain (domU)" }
        );
    }
    if let Some(now) = platform.wallclock() {
        println!("wall clock: {now}");
    }

    let verdict = crate::commands::run(cmdline, boot);
    platform.shutdown(verdict)
}
