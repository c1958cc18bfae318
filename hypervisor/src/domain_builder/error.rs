//! Why a guest image cannot be built: one variant per distinct cause, each
//! displayed as one line that names the problem and, where useful, the fix.

use core::fmt;

/// An owned copy of (at most the first 60 bytes of) some text, so errors can
/// quote the guest image without borrowing its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    bytes: [u8; Self::CAPACITY],
    len: u8,
    truncated: bool,
}

impl ShortText {
    /// How many bytes are kept.
    pub const CAPACITY: usize = 60;

    /// Copies `text`, cutting it at a character boundary if it is too long.
    pub fn new(text: &str) -> Self {
        let mut len = text.len().min(Self::CAPACITY);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self { bytes, len: len as u8, truncated: len < text.len() }
    }

    /// Formats `value` (for example a parser's error) into a new `ShortText`.
    pub fn from_display(value: &dyn fmt::Display) -> Self {
        let mut text = Self::new("");
        // Writing past the capacity only sets `truncated`; it never fails.
        let _ = fmt::write(&mut text, format_args!("{value}"));
        text
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        // `new` only ever cuts at a character boundary of a `&str`.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let used = self.len as usize;
        let mut take = piece.len().min(Self::CAPACITY - used);
        while !piece.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[used..used + take].copy_from_slice(&piece.as_bytes()[..take]);
        self.len = (used + take) as u8;
        self.truncated |= take < piece.len();
        Ok(())
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// The guest ELF image cannot be loaded as a 64-bit PV kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer bytes than the ELF header needs.
    TooShort { len: usize },
    /// The first four bytes are not `\x7fELF`.
    NotElf,
    /// `EI_CLASS` is `ELFCLASS32`.
    Elf32,
    /// `EI_CLASS` is neither 32- nor 64-bit.
    BadClass(u8),
    /// `EI_DATA` is big-endian or invalid.
    NotLittleEndian(u8),
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine(u16),
    /// `e_type` is not `ET_EXEC`.
    NotExecutable(u16),
    /// The ELF structure itself (header tables, string tables) is broken;
    /// the text is the ELF parser's description.
    Malformed(ShortText),
    /// A program header points outside the file.
    SegmentOutsideFile { index: usize, offset: u64, file_size: u64, image_len: usize },
    /// A PT_LOAD segment's `p_filesz` exceeds its `p_memsz`.
    SegmentFileLargerThanMemory { index: usize, file_size: u64, mem_size: u64 },
    /// A PT_LOAD segment's address range wraps around 2^64.
    SegmentAddressOverflow { index: usize },
    /// Two PT_LOAD segments claim the same bytes.
    OverlappingSegments { first: usize, second: usize },
    /// More PT_LOAD segments than [`MAX_LOAD_SEGMENTS`](super::MAX_LOAD_SEGMENTS).
    TooManyLoadSegments { count: usize },
    /// No PT_LOAD segment with any of R, W, X set.
    NoLoadableSegments,
    /// No Xen notes anywhere and no `__xen_guest` section.
    NoXenNotes,
    /// A note's header or payload runs past the end of its container.
    TruncatedNote { offset: u64 },
    /// A numeric note whose payload is not 1, 2, 4 or 8 bytes.
    BadNumericNote { note: &'static str, size: u32 },
    /// A string note that is not UTF-8.
    BadStringNote { note: &'static str },
    /// A note libelf requires is absent.
    MissingNote { note: &'static str },
    /// Neither `LOADER` starts with "generic" nor `GUEST_OS` with "linux";
    /// the text quotes both.
    UnsupportedLoader(ShortText),
    /// `XEN_VERSION` does not start with "xen-3.0".
    UnsupportedXenVersion(ShortText),
    /// `FEATURES` requires (`!name`) a feature name nobody knows.
    UnknownRequiredFeature(ShortText),
    /// `FEATURES` requires a feature this hypervisor does not offer.
    RequiredFeatureUnsupported { feature: &'static str },
    /// `PADDR_OFFSET` is given without `VIRT_BASE`.
    PaddrOffsetWithoutVirtBase,
    /// `VIRT_BASE` is not page aligned.
    VirtBaseUnaligned(u64),
    /// The kernel's virtual range wraps around 2^64.
    KernelRangeWraps { start: u64, end: u64 },
    /// `VIRT_BASE` lies above the start of the kernel.
    VirtBaseAboveKernel { virt_base: u64, kernel_start: u64 },
    /// The entry point is outside the kernel's virtual range.
    EntryOutOfBounds { entry: u64, start: u64, end: u64 },
    /// `INIT_P2M` points inside the kernel.
    P2mBaseInsideKernel { p2m_base: u64 },
    /// `HYPERCALL_PAGE` is not a page-aligned page within the kernel image.
    BadHypercallPage { address: u64, start: u64, end: u64 },
    /// The kernel's range is not canonical.
    NonCanonical { start: u64, end: u64 },
    /// The kernel's range overlaps the hypervisor's reserved range.
    OverlapsHypervisor { start: u64, end: u64 },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImageError::*;
        match *self {
            TooShort { len } => write!(
                f,
                "guest image is {len} bytes, too short for an ELF64 header (64 bytes): pass the kernel ELF (vmlinux), not a fragment"
            ),
            NotElf => write!(f, "guest image is not ELF (no \\x7fELF magic): pass an uncompressed ELF kernel, not a bzImage or gzip file"),
            Elf32 => write!(f, "guest image is a 32-bit ELF (ELFCLASS32): only 64-bit x86_64 PV kernels are supported, rebuild for x86_64"),
            BadClass(class) => write!(f, "guest image has an invalid ELF class {class}"),
            NotLittleEndian(data) => write!(f, "guest image is not little-endian (EI_DATA {data}): an x86_64 kernel must be ELFDATA2LSB"),
            WrongMachine(machine) => write!(f, "guest image is for machine {machine}, not EM_X86_64 (62)"),
            NotExecutable(e_type) => write!(f, "guest image has ELF type {e_type}, not ET_EXEC (2): link the kernel as a static executable"),
            Malformed(err) => write!(f, "guest image is a malformed ELF: {err}"),
            SegmentOutsideFile { index, offset, file_size, image_len } => write!(
                f,
                "program header {index} covers file bytes {offset:#x}+{file_size:#x}, beyond the {image_len}-byte image (truncated file?)"
            ),
            SegmentFileLargerThanMemory { index, file_size, mem_size } => write!(
                f,
                "PT_LOAD segment {index} has p_filesz {file_size:#x} larger than p_memsz {mem_size:#x}"
            ),
            SegmentAddressOverflow { index } => write!(f, "PT_LOAD segment {index}'s address range wraps around 2^64"),
            OverlappingSegments { first, second } => write!(f, "PT_LOAD segments {first} and {second} overlap in memory"),
            TooManyLoadSegments { count } => write!(
                f,
                "guest image has {count} PT_LOAD segments, more than the {} supported: merge segments in the linker script",
                super::MAX_LOAD_SEGMENTS
            ),
            NoLoadableSegments => write!(f, "guest image has no loadable PT_LOAD segment"),
            NoXenNotes => write!(
                f,
                "not a Xen PV image: no \"Xen\" ELF notes (PT_NOTE or .note sections) and no __xen_guest section"
            ),
            TruncatedNote { offset } => write!(f, "ELF note at file offset {offset:#x} runs past the end of its segment or section"),
            BadNumericNote { note, size } => write!(f, "Xen note {note} is numeric but has a {size}-byte payload (expected 1, 2, 4 or 8)"),
            BadStringNote { note } => write!(f, "Xen note {note} is not valid UTF-8 text"),
            MissingNote { note } => write!(f, "required Xen note {note} is missing"),
            UnsupportedLoader(found) => write!(
                f,
                "will only load images with LOADER \"generic\" or GUEST_OS \"linux\" (got {found})"
            ),
            UnsupportedXenVersion(version) => write!(f, "XEN_VERSION is \"{version}\", but only images built for \"xen-3.0\" load"),
            UnknownRequiredFeature(name) => write!(f, "FEATURES requires unknown feature \"{name}\""),
            RequiredFeatureUnsupported { feature } => write!(
                f,
                "the kernel requires feature {feature}, which this hypervisor does not offer (drop the '!' in its FEATURES note if it is optional)"
            ),
            PaddrOffsetWithoutVirtBase => write!(f, "Xen note PADDR_OFFSET is set but VIRT_BASE is not; add a VIRT_BASE note"),
            VirtBaseUnaligned(base) => write!(f, "VIRT_BASE {base:#x} is not 4 KiB aligned"),
            KernelRangeWraps { start, end } => write!(f, "kernel virtual range {start:#x}..{end:#x} wraps around the address space (check VIRT_BASE and PADDR_OFFSET)"),
            VirtBaseAboveKernel { virt_base, kernel_start } => write!(
                f,
                "VIRT_BASE {virt_base:#x} is above the kernel's start {kernel_start:#x} (check PADDR_OFFSET and the segments' p_paddr)"
            ),
            EntryOutOfBounds { entry, start, end } => write!(
                f,
                "entry point {entry:#x} lies outside the kernel's range {start:#x}..{end:#x}"
            ),
            P2mBaseInsideKernel { p2m_base } => write!(f, "INIT_P2M address {p2m_base:#x} lies inside the kernel image"),
            BadHypercallPage { address, start, end } => write!(
                f,
                "HYPERCALL_PAGE {address:#x} must be a 4 KiB aligned page inside the kernel image {start:#x}..{end:#x}"
            ),
            NonCanonical { start, end } => write!(f, "kernel range {start:#x}..{end:#x} is not canonical x86_64 address space"),
            OverlapsHypervisor { start, end } => write!(
                f,
                "kernel range {start:#x}..{end:#x} overlaps the hypervisor's reserved range {:#x}..{:#x}",
                super::HYPERVISOR_VIRT_START,
                super::HYPERVISOR_VIRT_END
            ),
        }
    }
}

impl From<elf::ParseError> for ImageError {
    fn from(err: elf::ParseError) -> Self {
        ImageError::Malformed(ShortText::from_display(&err))
    }
}

/// The start-of-day layout cannot be built for this image and memory size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The bootstrap region (plus a relocated p2m) needs more pages than the guest has.
    NotEnoughMemory { needed_pages: u64, nr_pages: u64 },
    /// An address computation overflowed 64 bits.
    AddressOverflow,
    /// Part of the bootstrap region is not canonical.
    NonCanonical { start: u64, end: u64 },
    /// The bootstrap region overlaps the hypervisor's reserved range.
    OverlapsHypervisor { start: u64, end: u64 },
    /// The relocated p2m (INIT_P2M) would overlap the bootstrap region.
    P2mOverlapsRegion { p2m_start: u64, p2m_end: u64 },
    /// A guest needs at least one page.
    NoMemory,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LayoutError::*;
        match *self {
            NotEnoughMemory { needed_pages, nr_pages } => write!(
                f,
                "the start-of-day region needs {needed_pages} pages but the guest has only {nr_pages}: give the guest more memory"
            ),
            AddressOverflow => write!(f, "the start-of-day region runs past the top of the address space"),
            NonCanonical { start, end } => write!(f, "start-of-day region {start:#x}..{end:#x} is not canonical x86_64 address space"),
            OverlapsHypervisor { start, end } => write!(
                f,
                "start-of-day region {start:#x}..{end:#x} overlaps the hypervisor's reserved range {:#x}..{:#x}",
                super::HYPERVISOR_VIRT_START,
                super::HYPERVISOR_VIRT_END
            ),
            P2mOverlapsRegion { p2m_start, p2m_end } => write!(
                f,
                "the INIT_P2M mapping {p2m_start:#x}..{p2m_end:#x} overlaps the start-of-day region"
            ),
            NoMemory => write!(f, "the guest was given 0 pages of memory"),
        }
    }
}
