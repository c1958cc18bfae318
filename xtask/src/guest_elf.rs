//! A host-side sanity check of a guest image before QEMU sees it, so bad
//! input gets one clear line instead of a loader error from deep inside QEMU.

use std::path::Path;

use elf::abi::{PT_NOTE, SHT_NOTE};
use elf::endian::AnyEndian;
use elf::note::Note;
use elf::ElfBytes;

use crate::XtaskError;

/// The note type (`XEN_ELFNOTE_PHYS32_ENTRY`, xen/include/public/elfnote.h)
/// naming the 32-bit entry point a PVH loader jumps to.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u64 = 18;

/// What the check found in a guest that passed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestElf {
    /// The `n_type` of every note named "Xen", in file order (segments first, then sections).
    pub xen_note_types: Vec<u64>,
}

impl GuestElf {
    /// Whether a PVH loader (QEMU's `-kernel`, Xen's PVH builder) can enter this guest.
    pub fn has_pvh_entry(&self) -> bool {
        self.xen_note_types.contains(&XEN_ELFNOTE_PHYS32_ENTRY)
    }
}

/// Why a byte image is not a Xen guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotAGuest {
    NotElf,
    Malformed(String),
    NoXenNotes,
}

/// Checks that `path` is an ELF carrying Xen notes; every failure is a usage error.
pub fn inspect(path: &Path) -> Result<GuestElf, XtaskError> {
    let shown = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(XtaskError::usage(format!("guest `{shown}` does not exist")));
        }
        Err(_) if path.is_dir() => {
            return Err(XtaskError::usage(format!("guest `{shown}` is a directory, not an ELF file")));
        }
        Err(err) => return Err(XtaskError::usage(format!("cannot read guest `{shown}`: {err}"))),
    };
    inspect_bytes(&bytes).map_err(|why| {
        XtaskError::usage(match why {
            NotAGuest::NotElf => format!("guest `{shown}` is not an ELF file"),
            NotAGuest::Malformed(detail) => {
                format!("guest `{shown}` is not a valid ELF file ({detail})")
            }
            NotAGuest::NoXenNotes => format!(
                "guest `{shown}` is an ELF without Xen notes (no \"Xen\" note in a PT_NOTE segment or .note* section)"
            ),
        })
    })
}

/// The same check on bytes already in memory.
pub fn inspect_bytes(bytes: &[u8]) -> Result<GuestElf, NotAGuest> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(NotAGuest::NotElf);
    }
    let file =
        ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|err| NotAGuest::Malformed(err.to_string()))?;
    let mut xen_note_types = Vec::new();

    for mut phdr in file.segments().into_iter().flatten() {
        if phdr.p_type != PT_NOTE {
            continue;
        }
        phdr.p_align = XEN_NOTE_ALIGN;
        if let Ok(notes) = file.segment_data_as_notes(&phdr) {
            xen_note_types.extend(notes.filter_map(xen_note_type));
        }
    }

    // Some guests carry their notes only in a non-loaded `.note*` section.
    if let Ok((Some(sections), Some(names))) = file.section_headers_with_strtab() {
        for mut shdr in sections.iter() {
            let is_note_section = shdr.sh_type == SHT_NOTE
                && names.get(shdr.sh_name as usize).is_ok_and(|name| name.starts_with(".note"));
            if !is_note_section {
                continue;
            }
            shdr.sh_addralign = XEN_NOTE_ALIGN;
            if let Ok(notes) = file.section_data_as_notes(&shdr) {
                xen_note_types.extend(notes.filter_map(xen_note_type));
            }
        }
    }

    if xen_note_types.is_empty() {
        return Err(NotAGuest::NoXenNotes);
    }
    Ok(GuestElf { xen_note_types })
}

/// Xen's loaders pad note names and descriptors to 4 bytes whatever the
/// segment's alignment says, so read them the same way.
const XEN_NOTE_ALIGN: u64 = 4;

fn xen_note_type(note: Note<'_>) -> Option<u64> {
    match note {
        Note::Unknown(any) if any.name_str().is_ok_and(|name| name == "Xen") => Some(any.n_type),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 with one PT_NOTE segment holding `notes`.
    fn elf_with_note_segment(notes: &[u8]) -> Vec<u8> {
        const EHDR: usize = 64;
        const PHDR: usize = 56;
        let mut image = vec![0u8; EHDR];
        image[..4].copy_from_slice(b"\x7fELF");
        image[4] = 2; // ELFCLASS64
        image[5] = 1; // little-endian
        image[6] = 1; // EV_CURRENT
        image[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        image[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
        image[20..24].copy_from_slice(&1u32.to_le_bytes());
        image[32..40].copy_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
        image[52..54].copy_from_slice(&(EHDR as u16).to_le_bytes());
        image[54..56].copy_from_slice(&(PHDR as u16).to_le_bytes());
        image[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum

        let notes_offset = (EHDR + PHDR) as u64;
        let mut phdr = Vec::new();
        phdr.extend_from_slice(&PT_NOTE.to_le_bytes());
        phdr.extend_from_slice(&4u32.to_le_bytes()); // PF_R
        phdr.extend_from_slice(&notes_offset.to_le_bytes());
        phdr.extend_from_slice(&0u64.to_le_bytes()); // p_vaddr
        phdr.extend_from_slice(&0u64.to_le_bytes()); // p_paddr
        phdr.extend_from_slice(&(notes.len() as u64).to_le_bytes());
        phdr.extend_from_slice(&(notes.len() as u64).to_le_bytes());
        phdr.extend_from_slice(&4u64.to_le_bytes()); // p_align
        image.extend_from_slice(&phdr);
        image.extend_from_slice(notes);
        image
    }

    fn note(name: &[u8], note_type: u32, desc: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&note_type.to_le_bytes());
        bytes.extend_from_slice(name);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        bytes.extend_from_slice(desc);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        bytes
    }

    #[test]
    fn finds_xen_notes_among_other_notes() {
        let mut notes = note(b"GNU\0", 3, &[1, 2, 3, 4, 5]);
        notes.extend(note(b"Xen\0", 6, b"linux\0"));
        notes.extend(note(b"Xen\0", 18, &0x100000u32.to_le_bytes()));
        let guest = inspect_bytes(&elf_with_note_segment(&notes)).expect("a Xen guest");
        assert_eq!(guest.xen_note_types, vec![6, 18]);
        assert!(guest.has_pvh_entry());
    }

    #[test]
    fn pv_only_guest_has_no_pvh_entry() {
        let notes = note(b"Xen\0", 1, &0xffffffff80100000u64.to_le_bytes());
        let guest = inspect_bytes(&elf_with_note_segment(&notes)).expect("a Xen guest");
        assert!(!guest.has_pvh_entry());
    }

    #[test]
    fn elf_with_only_foreign_notes_is_rejected() {
        let notes = note(b"GNU\0", 3, &[9; 20]);
        let result = inspect_bytes(&elf_with_note_segment(&notes));
        assert_eq!(result, Err(NotAGuest::NoXenNotes));
    }

    #[test]
    fn non_elf_and_truncated_elf_are_rejected() {
        assert_eq!(inspect_bytes(b"#!/bin/sh\necho hi\n"), Err(NotAGuest::NotElf));
        assert_eq!(inspect_bytes(b""), Err(NotAGuest::NotElf));
        assert!(matches!(inspect_bytes(b"\x7fELF\x02\x01"), Err(NotAGuest::Malformed(_))));
    }

    #[test]
    fn host_program_is_an_elf_without_xen_notes() {
        // Real toolchain output: GNU notes in 8-aligned segments, no Xen notes.
        let this_test = std::env::current_exe().expect("test binary path");
        let bytes = std::fs::read(this_test).expect("test binary readable");
        assert_eq!(inspect_bytes(&bytes), Err(NotAGuest::NoXenNotes));
    }

    #[test]
    fn usage_errors_name_the_file() {
        let missing = Path::new("/nonexistent/guest.elf");
        let err = inspect(missing).unwrap_err();
        assert_eq!(err.status, crate::EXIT_USAGE);
        assert!(err.message.contains("/nonexistent/guest.elf"), "{}", err.message);
        assert!(err.message.contains("does not exist"), "{}", err.message);
    }
}
