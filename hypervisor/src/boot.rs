//! Start of day: from the PVH entry to a running guest.

use drivers::debug_exit::Verdict;
use hypercalls::abi::hvm::{HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE};

use crate::arch::{self, memory};
use crate::layout::{HV_PHYS_BASE, HV_VIRT_BASE};
use crate::{console, domain, time};

/// Memory regions from the loader, at most this many.
const MAX_REGIONS: usize = 32;

#[derive(Clone, Copy, Default)]
struct Region {
    start: u64,
    end: u64,
}

/// What the PVH loader (QEMU) handed over.
struct BootInfo {
    ram: [Region; MAX_REGIONS],
    nr_ram: usize,
    /// Ranges the hypervisor must not hand out: the start-info block, the
    /// command line, the module list and the guest ELF itself.
    in_use: [Region; 8],
    nr_in_use: usize,
    cmdline: [u8; 2048],
    cmdline_len: usize,
    guest_image: Option<Region>,
}

impl BootInfo {
    fn reserve(&mut self, start: u64, len: u64) {
        if self.nr_in_use < self.in_use.len() {
            self.in_use[self.nr_in_use] = Region { start, end: start + len };
            self.nr_in_use += 1;
        }
    }

    fn is_ram(&self, start: u64, len: u64) -> bool {
        self.ram[..self.nr_ram].iter().any(|r| r.start <= start && start + len <= r.end)
    }
}

pub fn hv_main(start_info: u64) -> ! {
    console::init();
    arch::heap::init();
    log::info!("Rust Xen-compatible hypervisor {} starting", env!("CARGO_PKG_VERSION"));
    arch::descriptors::install(arch::boot::stack_top());
    arch::entry::install_idt();
    arch::cpu::enable_cpu_features();

    let mut boot = match read_boot_info(start_info) {
        Ok(boot) => boot,
        Err(problem) => fail(format_args!("boot: {problem}")),
    };
    // A copy, so that `boot` can still record what the options reserve.
    let cmdline_bytes = boot.cmdline;
    let cmdline = core::str::from_utf8(&cmdline_bytes[..boot.cmdline_len]).unwrap_or("");
    let options = match hypervisor::options::parse(cmdline) {
        Ok(options) => options,
        Err(error) => fail(format_args!("command line: {error}")),
    };
    console::set_debug(options.debug);
    if let Some(initrd) = options.initrd {
        if !boot.is_ram(initrd.start, initrd.len) {
            fail(format_args!(
                "initrd={:#x},{}: that range is not RAM (have the boot loader put the module there)",
                initrd.start, initrd.len
            ));
        }
        boot.reserve(initrd.start, initrd.len);
    }

    init_memory(&boot);
    time::init();
    if options.bench {
        measure_floor();
    }

    let Some(image) = boot.guest_image else {
        fail(format_args!("no guest kernel: pass the guest ELF as the first module (QEMU -initrd)"));
    };
    let image = memory::bytes(image.start, image.end - image.start);
    let initrd = options.initrd.map(|initrd| memory::bytes(initrd.start, initrd.len));
    let guest = domain::build::GuestBoot {
        image,
        initrd,
        mem_mib: options.guest_mem_mib,
        cmdline: options.guest_cmdline.as_bytes(),
    };
    let entry = match domain::build::build(&guest) {
        Ok(entry) => entry,
        Err(error) => fail(format_args!("cannot build the guest domain: {error}")),
    };
    // Event channels, pvclock, the wallclock and the backends, before the
    // guest's first instruction (Xen's builder does the same).
    crate::events::init();
    log::info!("starting the guest");
    arch::entry::enter_guest(&entry)
}

/// The SYSCALL + SYSRET round trip from ring 3, in one machine-readable
/// line that `cargo xtask bench` collects like the guest's.
fn measure_floor() {
    const ITERATIONS: u64 = 10_000;
    let ticks = arch::floor::measure(ITERATIONS);
    log::info!("bench: name=syscall_floor ticks={} iterations={ITERATIONS}", ticks / ITERATIONS);
}

fn fail(message: core::fmt::Arguments<'_>) -> ! {
    log::error!("{message}");
    console::exit(Verdict::Failure)
}

fn read_boot_info(paddr: u64) -> Result<BootInfo, &'static str> {
    let info: HvmStartInfo = memory::read_struct(paddr);
    if info.magic != XEN_HVM_START_MAGIC_VALUE {
        return Err("hvm_start_info has the wrong magic: boot the hypervisor with a PVH loader");
    }
    if info.version < 1 || info.memmap_entries == 0 {
        return Err("the loader passed no memory map (hvm_start_info version 0)");
    }
    let mut boot = BootInfo {
        ram: [Region::default(); MAX_REGIONS],
        nr_ram: 0,
        in_use: [Region::default(); 8],
        nr_in_use: 0,
        cmdline: [0; 2048],
        cmdline_len: 0,
        guest_image: None,
    };
    boot.reserve(paddr, core::mem::size_of::<HvmStartInfo>() as u64);
    if info.cmdline_paddr != 0 {
        let text = memory::bytes(info.cmdline_paddr, boot.cmdline.len() as u64);
        let len = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        boot.cmdline[..len].copy_from_slice(&text[..len]);
        boot.cmdline_len = len;
    }
    let entry_size = core::mem::size_of::<HvmMemmapTableEntry>() as u64;
    for index in 0..u64::from(info.memmap_entries) {
        let entry: HvmMemmapTableEntry = memory::read_struct(info.memmap_paddr + index * entry_size);
        if entry.r#type == hypercalls::abi::hvm::XEN_HVM_MEMMAP_TYPE_RAM && boot.nr_ram < MAX_REGIONS {
            boot.ram[boot.nr_ram] = Region { start: entry.addr, end: entry.addr + entry.size };
            boot.nr_ram += 1;
        }
    }
    boot.reserve(info.memmap_paddr, u64::from(info.memmap_entries) * entry_size);
    if info.nr_modules > 0 {
        let module: HvmModlistEntry = memory::read_struct(info.modlist_paddr);
        boot.guest_image = Some(Region { start: module.paddr, end: module.paddr + module.size });
        boot.reserve(module.paddr, module.size);
        boot.reserve(info.modlist_paddr, core::mem::size_of::<HvmModlistEntry>() as u64);
    }
    Ok(boot)
}

/// Gives every free RAM frame to the allocator, then moves onto the
/// hypervisor's own page tables with a direct map of machine memory.
fn init_memory(boot: &BootInfo) {
    let image = arch::boot::image();
    let image_end = (image.end - HV_VIRT_BASE).next_multiple_of(memory::PAGE_SIZE);
    let mut reserved = [Region::default(); 10];
    reserved[0] = Region { start: 0, end: HV_PHYS_BASE.max(image_end) };
    reserved[1..=boot.nr_in_use].copy_from_slice(&boot.in_use[..boot.nr_in_use]);
    let reserved = &reserved[..=boot.nr_in_use];

    let mut total = 0;
    let mut ram_end = 0;
    for region in &boot.ram[..boot.nr_ram] {
        ram_end = ram_end.max(region.end);
        // Split the region around reserved ranges, page by page boundaries.
        let mut start = region.start.next_multiple_of(memory::PAGE_SIZE);
        let end = region.end / memory::PAGE_SIZE * memory::PAGE_SIZE;
        while start < end {
            let blocking = reserved.iter().filter(|r| r.start < end && r.end > start).min_by_key(|r| r.start);
            let stop = match blocking {
                Some(r) if r.start <= start => {
                    start = r.end.next_multiple_of(memory::PAGE_SIZE);
                    continue;
                }
                Some(r) => r.start / memory::PAGE_SIZE * memory::PAGE_SIZE,
                None => end,
            };
            memory::add_free_frames(start / memory::PAGE_SIZE, stop / memory::PAGE_SIZE);
            total += stop - start;
            start = stop;
        }
    }
    // Map up to 4 GiB at least, so the LAPIC's MMIO page is in the direct map.
    let limit = ram_end.clamp(4 << 30, crate::layout::MAX_MACHINE_MEMORY);
    memory::build_hypervisor_address_space(ram_end, limit, |start, len| boot.is_ram(start, len));
    log::info!(
        "memory: {} MiB of RAM, {} MiB free for the guest and the hypervisor",
        ram_end >> 20,
        total >> 20
    );
}
