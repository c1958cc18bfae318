//! A small ELF64 writer for building test kernels (good and broken) in memory.

use hypercalls::abi::elfnote::{
    XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_LOADER,
    XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_VIRT_BASE, XEN_ELFNOTE_XEN_VERSION,
};

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_NOTE: u32 = 7;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
pub const EM_X86_64: u16 = 62;
pub const ET_EXEC: u16 = 2;

pub struct Segment {
    pub p_type: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub paddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
}

pub struct Section {
    pub name: String,
    pub sh_type: u32,
    pub data: Vec<u8>,
}

pub struct ElfWriter {
    pub class: u8,
    pub data_encoding: u8,
    pub machine: u16,
    pub e_type: u16,
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
}

fn align(value: usize, to: usize) -> usize {
    value.div_ceil(to) * to
}

impl ElfWriter {
    /// An empty x86_64 little-endian executable.
    pub fn new() -> Self {
        Self {
            class: 2,
            data_encoding: 1,
            machine: EM_X86_64,
            e_type: ET_EXEC,
            entry: 0,
            segments: Vec::new(),
            sections: Vec::new(),
        }
    }

    pub fn entry(mut self, entry: u64) -> Self {
        self.entry = entry;
        self
    }

    /// A PT_LOAD segment with `p_vaddr` = `p_paddr` + `virt_offset`.
    pub fn load(mut self, paddr: u64, virt_offset: u64, data: Vec<u8>, memsz: u64, flags: u32) -> Self {
        self.segments.push(Segment {
            p_type: PT_LOAD,
            flags,
            vaddr: paddr.wrapping_add(virt_offset),
            paddr,
            data,
            memsz,
        });
        self
    }

    pub fn note_segment(mut self, notes: Vec<u8>) -> Self {
        let memsz = notes.len() as u64;
        self.segments.push(Segment { p_type: PT_NOTE, flags: PF_R, vaddr: 0, paddr: 0, data: notes, memsz });
        self
    }

    pub fn section(mut self, name: &str, sh_type: u32, data: Vec<u8>) -> Self {
        self.sections.push(Section { name: name.to_string(), sh_type, data });
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let phoff = 64;
        let mut out = vec![0u8; phoff + 56 * self.segments.len()];
        let mut segment_offsets = Vec::new();
        for seg in &self.segments {
            out.resize(align(out.len(), 16), 0);
            segment_offsets.push(out.len() as u64);
            out.extend_from_slice(&seg.data);
        }
        let mut section_offsets = Vec::new();
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for sec in &self.sections {
            out.resize(align(out.len(), 8), 0);
            section_offsets.push(out.len() as u64);
            out.extend_from_slice(&sec.data);
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(sec.name.as_bytes());
            names.push(0);
        }
        let shstrtab_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");
        let (shoff, shnum, shstrndx) = if self.sections.is_empty() {
            (0u64, 0u16, 0u16)
        } else {
            let strtab_offset = out.len() as u64;
            out.extend_from_slice(&names);
            out.resize(align(out.len(), 8), 0);
            let shoff = out.len() as u64;
            out.extend_from_slice(&[0u8; 64]); // the null section
            for (i, sec) in self.sections.iter().enumerate() {
                out.extend_from_slice(&section_header(
                    name_offsets[i],
                    sec.sh_type,
                    section_offsets[i],
                    sec.data.len() as u64,
                ));
            }
            out.extend_from_slice(&section_header(shstrtab_name, 3, strtab_offset, names.len() as u64));
            let count = self.sections.len() as u16 + 2;
            (shoff, count, count - 1)
        };

        let mut header = Vec::with_capacity(64);
        header.extend_from_slice(b"\x7fELF");
        header.extend_from_slice(&[self.class, self.data_encoding, 1, 0]);
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&self.e_type.to_le_bytes());
        header.extend_from_slice(&self.machine.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&self.entry.to_le_bytes());
        let phoff_field = if self.segments.is_empty() { 0 } else { phoff as u64 };
        header.extend_from_slice(&phoff_field.to_le_bytes());
        header.extend_from_slice(&shoff.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&64u16.to_le_bytes());
        header.extend_from_slice(&56u16.to_le_bytes());
        header.extend_from_slice(&(self.segments.len() as u16).to_le_bytes());
        header.extend_from_slice(&64u16.to_le_bytes());
        header.extend_from_slice(&shnum.to_le_bytes());
        header.extend_from_slice(&shstrndx.to_le_bytes());
        out[..64].copy_from_slice(&header);

        for (i, seg) in self.segments.iter().enumerate() {
            let mut ph = Vec::with_capacity(56);
            ph.extend_from_slice(&seg.p_type.to_le_bytes());
            ph.extend_from_slice(&seg.flags.to_le_bytes());
            ph.extend_from_slice(&segment_offsets[i].to_le_bytes());
            ph.extend_from_slice(&seg.vaddr.to_le_bytes());
            ph.extend_from_slice(&seg.paddr.to_le_bytes());
            ph.extend_from_slice(&(seg.data.len() as u64).to_le_bytes());
            ph.extend_from_slice(&seg.memsz.to_le_bytes());
            let p_align: u64 = if seg.p_type == PT_NOTE { 4 } else { 0x1000 };
            ph.extend_from_slice(&p_align.to_le_bytes());
            let at = phoff + 56 * i;
            out[at..at + 56].copy_from_slice(&ph);
        }
        out
    }
}

fn section_header(name: u32, sh_type: u32, offset: u64, size: u64) -> [u8; 64] {
    let mut sh = [0u8; 64];
    sh[0..4].copy_from_slice(&name.to_le_bytes());
    sh[4..8].copy_from_slice(&sh_type.to_le_bytes());
    sh[24..32].copy_from_slice(&offset.to_le_bytes());
    sh[32..40].copy_from_slice(&size.to_le_bytes());
    let align: u64 = if sh_type == SHT_NOTE { 4 } else { 1 };
    sh[48..56].copy_from_slice(&align.to_le_bytes());
    sh
}

/// One ELF note with owner `owner` (NUL added), padded to 4 bytes.
pub fn note(owner: &[u8], n_type: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(owner.len() as u32 + 1).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(owner);
    out.push(0);
    out.resize(align(out.len(), 4), 0);
    out.extend_from_slice(desc);
    out.resize(align(out.len(), 4), 0);
    out
}

pub fn xen_str(n_type: u32, text: &str) -> Vec<u8> {
    let mut desc = text.as_bytes().to_vec();
    desc.push(0);
    note(b"Xen", n_type, &desc)
}

pub fn xen_u64(n_type: u32, value: u64) -> Vec<u8> {
    note(b"Xen", n_type, &value.to_le_bytes())
}

pub fn xen_u32(n_type: u32, value: u32) -> Vec<u8> {
    note(b"Xen", n_type, &value.to_le_bytes())
}

pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
pub const TEXT_PADDR: u64 = 0x10_0000;
pub const TEXT_VADDR: u64 = VIRT_BASE + TEXT_PADDR;
pub const HYPERCALL_PAGE: u64 = TEXT_VADDR + 0x1000;
pub const DATA_PADDR: u64 = 0x10_4000;

/// The notes our own kernel carries.
pub fn standard_notes() -> Vec<Vec<u8>> {
    vec![
        xen_str(XEN_ELFNOTE_GUEST_OS, "test-kernel"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
        xen_u64(XEN_ELFNOTE_VIRT_BASE, VIRT_BASE),
        xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0),
        xen_u64(XEN_ELFNOTE_ENTRY, TEXT_VADDR),
        xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, HYPERCALL_PAGE),
    ]
}

/// Text (3 pages, R X) at 1 MiB and data (1 page of file, 3 of memory,
/// R W) at 1 MiB + 16 KiB, linked at VIRT_BASE, with the given notes in a
/// PT_NOTE segment.
pub fn kernel_with_notes(notes: &[Vec<u8>]) -> ElfWriter {
    ElfWriter::new()
        .entry(TEXT_VADDR)
        .load(TEXT_PADDR, VIRT_BASE, vec![0x90; 0x3000], 0x3000, PF_R | PF_X)
        .load(DATA_PADDR, VIRT_BASE, vec![0xda; 0x1000], 0x3000, PF_R | PF_W)
        .note_segment(notes.concat())
}

/// A well-formed kernel like ours.
pub fn standard_kernel() -> Vec<u8> {
    kernel_with_notes(&standard_notes()).build()
}

/// A one-segment kernel with VIRT_BASE `virt_base`, its text at 1 MiB above
/// it (entered there), plus `extra` notes.
pub fn kernel_at(virt_base: u64, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut notes = vec![
        xen_str(XEN_ELFNOTE_GUEST_OS, "test-kernel"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
        xen_u64(XEN_ELFNOTE_VIRT_BASE, virt_base),
        xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0),
    ];
    notes.extend_from_slice(extra);
    ElfWriter::new()
        .entry(virt_base + TEXT_PADDR)
        .load(TEXT_PADDR, virt_base, vec![0x90; 0x3000], 0x3000, PF_R | PF_X)
        .note_segment(notes.concat())
        .build()
}
