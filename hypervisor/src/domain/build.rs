//! Building the guest domain: the bare-metal half of the domain builder.
//! Every decision (what goes where, which bits each page-table entry
//! gets, what start_info says) is made by `hypervisor::domain_builder`;
//! this file allocates machine frames and copies bytes.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;
use hypervisor::domain_builder::{
    compute_layout, parse_guest_image, start_info_fields, BootPageTables, ImageError, LayoutError,
    LayoutRequest, StartInfoInputs, RESERVED_L4_SLOTS,
};

use hypervisor::domain_builder::PageTableLevel;
use hypervisor::mm::{Level, Mfn, MmError, SharedAccess};

use super::{Domain, Vcpu, GUEST_DOMID};
use crate::arch::descriptors::{GUEST_CS64, GUEST_SS};
use crate::arch::entry::Frame;
use crate::arch::memory::{self, PAGE_SIZE, PTE_NX, PTE_USER};
use crate::layout::M2P_BASE;

/// The M2P value of a frame no domain owns (Xen's INVALID_M2P_ENTRY).
pub const INVALID_M2P_ENTRY: u64 = !0;

/// The M2P table's machine address and length in entries.
static M2P_TABLE: AtomicU64 = AtomicU64::new(0);
static M2P_ENTRIES: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub enum BuildError {
    Image(ImageError),
    Layout(LayoutError),
    /// The validator refused the initial state: a builder bug, reported plainly.
    Memory(MmError),
    OutOfMemory {
        wanted_pages: u64,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image(error) => write!(f, "{error}"),
            Self::Layout(error) => write!(f, "{error}"),
            Self::Memory(error) => write!(f, "the initial page tables do not validate: {error:?}"),
            Self::OutOfMemory { wanted_pages } => write!(
                f,
                "not enough machine memory for {wanted_pages} guest pages (lower mem= or give QEMU more -m)"
            ),
        }
    }
}

/// The M2P table's frames: first machine frame and how many, as
/// `XENMEM_machphys_mfn_list` reports them (the table is contiguous).
pub fn m2p_frames() -> (u64, u64) {
    let entries = M2P_ENTRIES.load(Ordering::Relaxed);
    (M2P_TABLE.load(Ordering::Relaxed) / PAGE_SIZE, (entries * 8).div_ceil(PAGE_SIZE))
}

pub fn m2p_set(mfn: u64, pfn: u64) {
    if mfn < M2P_ENTRIES.load(Ordering::Relaxed) {
        memory::write_u64(M2P_TABLE.load(Ordering::Relaxed) + 8 * mfn, pfn);
    }
}

/// Creates the machine-to-physical table for machine frames below
/// `max_mfn` and maps it read-only, guest-readable, at M2P_BASE, where
/// PV guests look for it (`XENMEM_machphys_mapping`).
fn create_m2p(max_mfn: u64) -> Result<(), BuildError> {
    let pages = (max_mfn * 8).div_ceil(PAGE_SIZE);
    let table = memory::allocate_frames(pages).ok_or(BuildError::OutOfMemory { wanted_pages: pages })?;
    for mfn in 0..max_mfn {
        memory::write_u64(table + 8 * mfn, INVALID_M2P_ENTRY);
    }
    M2P_TABLE.store(table, Ordering::Relaxed);
    M2P_ENTRIES.store(max_mfn, Ordering::Relaxed);
    let root = memory::hypervisor_root();
    memory::map_range(root, M2P_BASE, table, pages * PAGE_SIZE, PTE_USER | PTE_NX);
    Ok(())
}

/// Copies `bytes` to the bootstrap region from `vaddr` on, page by page
/// (the frames behind it need not be contiguous).
fn copy_to_guest(vaddr: u64, bytes: &[u8], machine_of: &impl Fn(u64) -> u64) {
    let mut done = 0;
    while done < bytes.len() {
        let at = vaddr + done as u64;
        let chunk = (PAGE_SIZE - at % PAGE_SIZE).min((bytes.len() - done) as u64) as usize;
        memory::write_bytes(machine_of(at), &bytes[done..done + chunk]);
        done += chunk;
    }
}

fn level_of(level: PageTableLevel) -> Level {
    match level {
        PageTableLevel::L1 => Level::L1,
        PageTableLevel::L2 => Level::L2,
        PageTableLevel::L3 => Level::L3,
        PageTableLevel::L4 => Level::L4,
    }
}

/// What the domain is built from.
pub struct GuestBoot<'a> {
    /// The guest kernel's ELF image.
    pub image: &'a [u8],
    /// Its initial ramdisk, if any: copied in after the kernel, as Xen's
    /// builder does, and named by `start_info.mod_start`/`mod_len`.
    pub initrd: Option<&'a [u8]>,
    pub mem_mib: u64,
    pub cmdline: &'a [u8],
}

/// Builds the domain and returns the register state to start it with.
pub fn build(boot: &GuestBoot<'_>) -> Result<Frame, BuildError> {
    let GuestBoot { image, initrd, mem_mib, cmdline } = *boot;
    let guest = parse_guest_image(image).map_err(BuildError::Image)?;
    log::info!("Building a PV domain (id {GUEST_DOMID}) from a {} KiB ELF", image.len() / 1024);
    for line in alloc::format!("{guest}").lines() {
        log::info!("{line}");
    }
    let nr_pages = mem_mib * (1 << 20) / PAGE_SIZE;
    let request = LayoutRequest {
        initrd_len: initrd.map_or(0, |bytes| bytes.len() as u64),
        ..LayoutRequest::new(nr_pages)
    };
    let layout = compute_layout(&guest, &request).map_err(BuildError::Layout)?;
    for line in alloc::format!("{layout}").lines() {
        log::info!("{line}");
    }

    // Machine frames, one by one: the guest must not assume they are contiguous.
    let mut p2m = Vec::with_capacity(nr_pages as usize);
    for _ in 0..nr_pages {
        let frame = memory::allocate_frame().ok_or(BuildError::OutOfMemory { wanted_pages: nr_pages })?;
        p2m.push(frame / PAGE_SIZE);
    }
    let max_mfn = memory::machine_frame_limit();
    create_m2p(max_mfn)?;
    for (pfn, &mfn) in p2m.iter().enumerate() {
        m2p_set(mfn, pfn as u64);
    }
    super::memory::init(max_mfn);
    super::memory::assign_to_domain(GUEST_DOMID, p2m.iter().copied()).map_err(BuildError::Memory)?;
    let mfn_of = |pfn: u64| p2m[pfn as usize];
    let machine_of = |vaddr: u64| {
        let pfn = layout.pfn_of(vaddr).expect("address inside the bootstrap region");
        mfn_of(pfn) * PAGE_SIZE + vaddr % PAGE_SIZE
    };

    // The kernel's segments, page by page (frames start zeroed, so the
    // .bss tail needs no work).
    for segment in guest.load_segments() {
        copy_to_guest(segment.dest_vaddr, &image[segment.file_range()], &machine_of);
    }

    if let Some(bytes) = initrd {
        copy_to_guest(layout.initrd.start, bytes, &machine_of);
    }

    // The p2m list the guest reads as start_info.mfn_list.
    for pfn in 0..nr_pages {
        if let Some((page_pfn, offset)) = layout.p2m_entry_location(pfn) {
            memory::write_u64(mfn_of(page_pfn) * PAGE_SIZE + offset as u64, mfn_of(pfn));
        }
    }

    // Bootstrap page tables, with the hypervisor's own L4 slots.
    let tables = BootPageTables::new(&layout);
    for (frame, entries) in tables.frames_with_contents(mfn_of) {
        let machine = mfn_of(frame.pfn) * PAGE_SIZE;
        for (index, &entry) in entries.iter().enumerate() {
            memory::write_u64(machine + 8 * index as u64, entry);
        }
    }
    let root = mfn_of(tables.l4_pfn()) * PAGE_SIZE;
    for slot in RESERVED_L4_SLOTS {
        memory::write_u64(root + 8 * slot as u64, memory::hypervisor_l4_entry(slot));
    }
    let table_frames: Vec<(Mfn, Level)> =
        tables.frames().map(|frame| (Mfn(mfn_of(frame.pfn)), level_of(frame.level))).collect();

    if let Some(page) = layout.hypercall_page {
        let mut stubs = [0u8; 4096];
        hypervisor::hypercall_page::fill(&mut stubs);
        memory::write_bytes(machine_of(page), &stubs);
    }

    let shared_info = memory::allocate_frame().ok_or(BuildError::OutOfMemory { wanted_pages: 1 })?;
    super::memory::share_with_domain(GUEST_DOMID, shared_info / PAGE_SIZE, SharedAccess::ReadWrite)
        .map_err(BuildError::Memory)?;
    super::memory::adopt_initial_tables(GUEST_DOMID, &table_frames).map_err(BuildError::Memory)?;
    const CONSOLE_PORT: u32 = 1;
    const STORE_PORT: u32 = 2;
    let fields = start_info_fields(
        &layout,
        mfn_of,
        &StartInfoInputs {
            shared_info_maddr: shared_info,
            store_evtchn: STORE_PORT,
            console_evtchn: CONSOLE_PORT,
            flags: 0,
            cmdline,
        },
    );
    memory::write_bytes(machine_of(layout.start_info.start), &fields.to_bytes());
    log::info!("guest command line: \"{}\"", core::str::from_utf8(fields.cmd_line_text()).unwrap_or("?"));

    let mut domain = Domain {
        shared_info,
        vcpu: Vcpu::new(shared_info),
        vm_assist: 0,
        console_port: CONSOLE_PORT,
        store_port: STORE_PORT,
        console_ring: mfn_of(layout.console_pfn()) * PAGE_SIZE,
        store_ring: mfn_of(layout.xenstore_pfn()) * PAGE_SIZE,
        tot_pages: nr_pages,
        max_pages: nr_pages,
        p2m,
    };
    domain.vcpu.kernel_root = root;
    // As Xen's builder does: a kernel that declares writable page tables
    // gets the assist without having to ask for it with vm_assist.
    let writable = 1 << hypercalls::abi::features::XENFEAT_writable_page_tables;
    if (guest.notes.supported.0 | guest.notes.required.0) & writable != 0 {
        domain.vm_assist |= 1 << hypercalls::abi::xen::VMASST_TYPE_writable_pagetables;
    }
    super::install(domain);

    // The guest's tables carry the hypervisor's slots, so the hypervisor
    // stays mapped across the switch.
    crate::arch::memory::switch_to_guest_root(root);

    Ok(Frame {
        rip: layout.entry,
        cs: u64::from(GUEST_CS64),
        rflags: 0x202,
        rsp: layout.initial_stack_pointer(),
        ss: u64::from(GUEST_SS),
        rsi: layout.start_info.start,
        ..Frame::default()
    })
}
