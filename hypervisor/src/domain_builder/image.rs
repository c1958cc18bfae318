//! Parsing and validating a 64-bit PV kernel ELF: the header, the PT_LOAD
//! segments, the Xen notes, and libelf's address calculation
//! (`elf_xen_addr_calc_check`), producing a load plan.

use core::fmt;

use elf::abi::{EM_X86_64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, SHT_NOTE};
use elf::endian::LittleEndian;
use elf::ElfBytes;

use super::error::{ImageError, ShortText};
use super::features::{feature_name, HYPERVISOR_SUPPORTED_FEATURES};
use super::notes::{NoteSource, XenNotes};
use super::{is_canonical_range, overlaps_hypervisor, page_round_down, page_round_up, PAGE_SIZE};

/// The most PT_LOAD segments an image may have (kernels have 2 to 6).
pub const MAX_LOAD_SEGMENTS: usize = 16;

/// One PT_LOAD segment to copy: `file_size` bytes from the image at
/// `file_offset` to `dest_vaddr`, then zeroes up to `mem_size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSegment {
    /// Index of the program header.
    pub index: usize,
    /// Guest virtual address of the first byte (`p_paddr` + VIRT_BASE - PADDR_OFFSET).
    pub dest_vaddr: u64,
    /// Guest pseudo-physical address of the first byte: its offset from
    /// VIRT_BASE, which the bootstrap region maps 1:1 from pfn 0.
    pub guest_paddr: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
    /// `p_flags` (PF_R/PF_W/PF_X); informational, as Xen maps everything RWX.
    pub flags: u32,
}

impl LoadSegment {
    /// The image bytes to copy (in range: checked when parsing).
    pub fn file_range(&self) -> core::ops::Range<usize> {
        self.file_offset as usize..(self.file_offset + self.file_size) as usize
    }

    /// How many bytes after the file bytes must be zeroed.
    pub fn zero_fill_len(&self) -> u64 {
        self.mem_size - self.file_size
    }
}

/// A validated PV kernel image and everything the builder needs from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestImage<'a> {
    /// The Xen notes as written.
    pub notes: XenNotes<'a>,
    /// VIRT_BASE, defaulted: the start of the bootstrap region (pfn 0).
    pub virt_base: u64,
    /// PADDR_OFFSET, defaulted (0 with notes, VIRT_BASE with `__xen_guest`).
    pub paddr_offset: u64,
    /// Lowest and highest-plus-one `p_paddr` of the loadable segments.
    pub elf_paddr_start: u64,
    pub elf_paddr_end: u64,
    /// The kernel's virtual range, `[kernel_start, kernel_end)`; not
    /// necessarily page aligned.
    pub kernel_start: u64,
    pub kernel_end: u64,
    /// ENTRY, defaulting to `e_entry`.
    pub entry: u64,
    /// HYPERCALL_PAGE: the page the hypervisor fills with hypercall stubs.
    pub hypercall_page: Option<u64>,
    /// INIT_P2M, as given.
    pub init_p2m: Option<u64>,
    segments: [LoadSegment; MAX_LOAD_SEGMENTS],
    segment_count: usize,
}

impl GuestImage<'_> {
    /// The load plan: every loadable PT_LOAD segment, in program-header order.
    pub fn load_segments(&self) -> &[LoadSegment] {
        &self.segments[..self.segment_count]
    }
}

impl fmt::Display for GuestImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            " Guest kernel: 64-bit, lsb, paddr {:#x} -> {:#x}",
            self.elf_paddr_start, self.elf_paddr_end
        )?;
        write!(f, "{}", self.notes)?;
        writeln!(f, "ELF: addresses:")?;
        writeln!(f, "    virt_base        = {:#x}", self.virt_base)?;
        writeln!(f, "    elf_paddr_offset = {:#x}", self.paddr_offset)?;
        writeln!(f, "    virt_kstart      = {:#x}", self.kernel_start)?;
        writeln!(f, "    virt_kend        = {:#x}", self.kernel_end)?;
        writeln!(f, "    virt_entry       = {:#x}", self.entry)?;
        for seg in self.load_segments() {
            writeln!(
                f,
                "ELF: phdr {} at {:#x} -> {:#x} (memsz {:#x})",
                seg.index,
                seg.dest_vaddr,
                seg.dest_vaddr + seg.file_size,
                seg.mem_size
            )?;
        }
        Ok(())
    }
}

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
const EI_NIDENT: usize = 16;
const ELF64_HEADER_SIZE: usize = 64;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;

/// Checks what the `elf` crate would report less precisely: magic, class,
/// byte order and size.
fn check_identity(image: &[u8]) -> Result<(), ImageError> {
    if image.len() >= ELF_MAGIC.len() && image[..4] != ELF_MAGIC {
        return Err(ImageError::NotElf);
    }
    if image.len() < EI_NIDENT {
        return Err(ImageError::TooShort { len: image.len() });
    }
    match image[4] {
        ELFCLASS64 => {}
        ELFCLASS32 => return Err(ImageError::Elf32),
        other => return Err(ImageError::BadClass(other)),
    }
    if image[5] != ELFDATA2LSB {
        return Err(ImageError::NotLittleEndian(image[5]));
    }
    if image.len() < ELF64_HEADER_SIZE {
        return Err(ImageError::TooShort { len: image.len() });
    }
    Ok(())
}

fn file_bytes(image: &[u8], index: usize, offset: u64, size: u64) -> Result<&[u8], ImageError> {
    let outside = ImageError::SegmentOutsideFile { index, offset, file_size: size, image_len: image.len() };
    let end = offset.checked_add(size).ok_or(outside)?;
    let range = usize::try_from(offset).map_err(|_| outside)?..usize::try_from(end).map_err(|_| outside)?;
    image.get(range).ok_or(outside)
}

/// Parses and validates a 64-bit PV kernel, as Xen's libelf does
/// (`elf_init`, `elf_parse_binary`, `elf_xen_parse`), plus this hypervisor's
/// own limits (canonical, clear of the hypervisor's range, required
/// features it offers).
pub fn parse_guest_image(image: &[u8]) -> Result<GuestImage<'_>, ImageError> {
    check_identity(image)?;
    let elf = ElfBytes::<LittleEndian>::minimal_parse(image)?;
    if elf.ehdr.e_machine != EM_X86_64 {
        return Err(ImageError::WrongMachine(elf.ehdr.e_machine));
    }
    if elf.ehdr.e_type != ET_EXEC {
        return Err(ImageError::NotExecutable(elf.ehdr.e_type));
    }

    let mut segments = [LoadSegment::default(); MAX_LOAD_SEGMENTS];
    let mut segment_count = 0;
    let mut paddrs = [(0u64, 0u64); MAX_LOAD_SEGMENTS];
    let mut notes = XenNotes::default();
    let mut notes_in_segments = 0;

    for (index, phdr) in elf.segments().into_iter().flatten().enumerate() {
        if phdr.p_type == PT_NOTE && phdr.p_offset != 0 {
            // (libelf skips p_offset 0: some binutils leave it unset.)
            let bytes = file_bytes(image, index, phdr.p_offset, phdr.p_filesz)?;
            notes_in_segments += notes.read_note_region(bytes, phdr.p_offset)?;
        }
        if phdr.p_type != PT_LOAD || phdr.p_flags & (PF_R | PF_W | PF_X) == 0 {
            continue;
        }
        file_bytes(image, index, phdr.p_offset, phdr.p_filesz)?;
        if phdr.p_filesz > phdr.p_memsz {
            return Err(ImageError::SegmentFileLargerThanMemory {
                index,
                file_size: phdr.p_filesz,
                mem_size: phdr.p_memsz,
            });
        }
        let paddr_end =
            phdr.p_paddr.checked_add(phdr.p_memsz).ok_or(ImageError::SegmentAddressOverflow { index })?;
        if segment_count == MAX_LOAD_SEGMENTS {
            let count = elf
                .segments()
                .into_iter()
                .flatten()
                .filter(|p| p.p_type == PT_LOAD && p.p_flags & (PF_R | PF_W | PF_X) != 0)
                .count();
            return Err(ImageError::TooManyLoadSegments { count });
        }
        for (earlier, &(start, end)) in paddrs[..segment_count].iter().enumerate() {
            // Empty segments claim no bytes, so they overlap nothing.
            let both_nonempty = start < end && phdr.p_paddr < paddr_end;
            if both_nonempty && phdr.p_paddr < end && start < paddr_end {
                return Err(ImageError::OverlappingSegments {
                    first: segments[earlier].index,
                    second: index,
                });
            }
        }
        paddrs[segment_count] = (phdr.p_paddr, paddr_end);
        segments[segment_count] = LoadSegment {
            index,
            dest_vaddr: phdr.p_paddr, // rebased below, once the offsets are known
            guest_paddr: 0,
            file_offset: phdr.p_offset,
            file_size: phdr.p_filesz,
            mem_size: phdr.p_memsz,
            flags: phdr.p_flags,
        };
        segment_count += 1;
    }
    if segment_count == 0 {
        return Err(ImageError::NoLoadableSegments);
    }
    let elf_paddr_start = paddrs[..segment_count].iter().map(|p| p.0).min().unwrap_or(0);
    let elf_paddr_end = paddrs[..segment_count].iter().map(|p| p.1).max().unwrap_or(0);

    notes.source = NoteSource::ProgramHeaders;
    if notes_in_segments == 0 {
        notes.source = NoteSource::Sections;
        let mut notes_in_sections = 0;
        for shdr in elf.section_headers().into_iter().flatten().skip(1) {
            if shdr.sh_type == SHT_NOTE {
                let (bytes, _) = elf.section_data(&shdr)?;
                notes_in_sections += notes.read_note_region(bytes, shdr.sh_offset)?;
            }
        }
        if notes_in_sections == 0 {
            let legacy = elf.section_header_by_name("__xen_guest")?;
            let Some(shdr) = legacy else {
                return Err(ImageError::NoXenNotes);
            };
            let (bytes, _) = elf.section_data(&shdr)?;
            let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
            let text =
                core::str::from_utf8(bytes).map_err(|_| ImageError::BadStringNote { note: "__xen_guest" })?;
            notes.source = NoteSource::LegacyGuestSection;
            notes.read_legacy_guest_info(text)?;
        }
    }

    check_notes(&notes)?;
    let mut image = calculate_addresses(notes, elf.ehdr.e_entry, elf_paddr_start, elf_paddr_end)?;
    let virt_offset = image.virt_base.wrapping_sub(image.paddr_offset);
    for seg in &mut segments[..segment_count] {
        seg.dest_vaddr = seg.dest_vaddr.wrapping_add(virt_offset);
        seg.guest_paddr = seg.dest_vaddr - image.virt_base;
    }
    image.segments = segments;
    image.segment_count = segment_count;
    Ok(image)
}

/// libelf's `elf_xen_note_check` for a PV guest, plus the required-feature check.
fn check_notes(notes: &XenNotes<'_>) -> Result<(), ImageError> {
    let generic = notes.loader.is_some_and(|l| l.starts_with("generic"));
    let linux = notes.guest_os.is_some_and(|os| os.starts_with("linux"));
    if !generic && !linux {
        if notes.loader.is_none() && notes.guest_os.is_none() {
            return Err(ImageError::MissingNote { note: "LOADER (\"generic\") or GUEST_OS (\"linux\")" });
        }
        return Err(ImageError::UnsupportedLoader(ShortText::from_display(&format_args!(
            "LOADER \"{}\", GUEST_OS \"{}\"",
            notes.loader.unwrap_or(""),
            notes.guest_os.unwrap_or("")
        ))));
    }
    match notes.xen_version {
        None => return Err(ImageError::MissingNote { note: "XEN_VERSION" }),
        Some(version) if !version.starts_with("xen-3.0") => {
            return Err(ImageError::UnsupportedXenVersion(ShortText::new(version)))
        }
        Some(_) => {}
    }
    if let Some(bit) = notes.required.without(HYPERVISOR_SUPPORTED_FEATURES).first() {
        return Err(ImageError::RequiredFeatureUnsupported {
            feature: feature_name(bit).unwrap_or("(unnamed)"),
        });
    }
    Ok(())
}

/// libelf's `elf_xen_addr_calc_check` for a PV guest, plus this
/// hypervisor's checks on the resulting range.
fn calculate_addresses<'a>(
    notes: XenNotes<'a>,
    e_entry: u64,
    elf_paddr_start: u64,
    elf_paddr_end: u64,
) -> Result<GuestImage<'a>, ImageError> {
    if notes.paddr_offset.is_some() && notes.virt_base.is_none() {
        return Err(ImageError::PaddrOffsetWithoutVirtBase);
    }
    let virt_base = notes.virt_base.unwrap_or(0);
    let paddr_offset = notes.paddr_offset.unwrap_or(match notes.source {
        // Old kernels wrote virtual addresses into p_paddr.
        NoteSource::LegacyGuestSection => virt_base,
        _ => 0,
    });
    if !virt_base.is_multiple_of(PAGE_SIZE) {
        return Err(ImageError::VirtBaseUnaligned(virt_base));
    }
    let virt_offset = virt_base.wrapping_sub(paddr_offset);
    let kernel_start = elf_paddr_start.wrapping_add(virt_offset);
    let kernel_end = elf_paddr_end.wrapping_add(virt_offset);
    let entry = notes.entry.unwrap_or(e_entry);

    if kernel_start > kernel_end {
        return Err(ImageError::KernelRangeWraps { start: kernel_start, end: kernel_end });
    }
    if virt_base > kernel_start {
        return Err(ImageError::VirtBaseAboveKernel { virt_base, kernel_start });
    }
    // Inclusive at the end, as libelf.
    if entry < kernel_start || entry > kernel_end {
        return Err(ImageError::EntryOutOfBounds { entry, start: kernel_start, end: kernel_end });
    }
    if let Some(p2m_base) = notes.init_p2m {
        if (kernel_start..kernel_end).contains(&p2m_base) {
            return Err(ImageError::P2mBaseInsideKernel { p2m_base });
        }
    }
    if !is_canonical_range(virt_base, kernel_end) {
        return Err(ImageError::NonCanonical { start: virt_base, end: kernel_end });
    }
    if overlaps_hypervisor(virt_base, kernel_end) {
        return Err(ImageError::OverlapsHypervisor { start: virt_base, end: kernel_end });
    }
    // Xen only asks for the page to be inside the bootstrap region; here it
    // must be a whole page of the kernel image, so filling it can never
    // overwrite the p2m, start_info or page tables.
    if let Some(address) = notes.hypercall_page {
        let image_start = page_round_down(kernel_start);
        let image_end = page_round_up(kernel_end)
            .ok_or(ImageError::KernelRangeWraps { start: kernel_start, end: kernel_end })?;
        let inside =
            address >= image_start && address.checked_add(PAGE_SIZE).is_some_and(|end| end <= image_end);
        if !address.is_multiple_of(PAGE_SIZE) || !inside {
            return Err(ImageError::BadHypercallPage { address, start: kernel_start, end: kernel_end });
        }
    }
    Ok(GuestImage {
        notes,
        virt_base,
        paddr_offset,
        elf_paddr_start,
        elf_paddr_end,
        kernel_start,
        kernel_end,
        entry,
        hypercall_page: notes.hypercall_page,
        init_p2m: notes.init_p2m,
        segments: [LoadSegment::default(); MAX_LOAD_SEGMENTS],
        segment_count: 0,
    })
}
