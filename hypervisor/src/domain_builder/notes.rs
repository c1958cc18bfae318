//! Reading the Xen ELF notes (`xen/elfnote.h`) and the legacy `__xen_guest`
//! string, with libelf's rules for what each note means.

use core::fmt;

use hypercalls::abi::elfnote::{
    XEN_ELFNOTE_BSD_SYMTAB, XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_GUEST_OS,
    XEN_ELFNOTE_GUEST_VERSION, XEN_ELFNOTE_HV_START_LOW, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_INIT_P2M,
    XEN_ELFNOTE_L1_MFN_VALID, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_MOD_START_PFN, XEN_ELFNOTE_PADDR_OFFSET,
    XEN_ELFNOTE_PAE_MODE, XEN_ELFNOTE_PHYS32_ENTRY, XEN_ELFNOTE_SUPPORTED_FEATURES,
    XEN_ELFNOTE_SUSPEND_CANCEL, XEN_ELFNOTE_VIRT_BASE, XEN_ELFNOTE_XEN_VERSION,
};

use super::error::{ImageError, ShortText};
use super::features::{parse_feature_string, FeatureSet};
use super::PAGE_SHIFT;

/// Where the notes were found. libelf looks in PT_NOTE segments first, then
/// in SHT_NOTE sections, then in the legacy `__xen_guest` section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoteSource {
    /// Nothing found (yet).
    #[default]
    None,
    /// PT_NOTE program headers.
    ProgramHeaders,
    /// SHT_NOTE sections (some kernels keep notes only in a non-ALLOC `.note`).
    Sections,
    /// The legacy comma-separated `__xen_guest` string section.
    LegacyGuestSection,
}

/// Everything the Xen notes of an image said, as given (no defaults applied).
/// Strings borrow from the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNotes<'a> {
    /// Where the notes came from.
    pub source: NoteSource,
    /// How many Xen notes (or legacy keys) were read.
    pub count: usize,
    pub guest_os: Option<&'a str>,
    pub guest_version: Option<&'a str>,
    pub xen_version: Option<&'a str>,
    pub loader: Option<&'a str>,
    /// x86_32 only; meaningless (and ignored) for a 64-bit kernel.
    pub pae_mode: Option<&'a str>,
    /// The last FEATURES string, verbatim.
    pub features: Option<&'a str>,
    /// The SUPPORTED_FEATURES bitmap (submap 0), verbatim.
    pub supported_features_bitmap: Option<u32>,
    /// BSD_SYMTAB: recorded only; symbol tables are not loaded.
    pub bsd_symtab: Option<&'a str>,
    pub virt_base: Option<u64>,
    pub paddr_offset: Option<u64>,
    pub entry: Option<u64>,
    pub hypercall_page: Option<u64>,
    /// INIT_P2M: where the kernel would like its p2m list mapped.
    pub init_p2m: Option<u64>,
    /// MOD_START_PFN: the kernel accepts an initrd given as a pfn (unmapped).
    pub mod_start_pfn: Option<u64>,
    /// HV_START_LOW: x86_32 only; recorded.
    pub hv_start_low: Option<u64>,
    /// PHYS32_ENTRY: the PVH entry point; unused by a PV boot.
    pub phys32_entry: Option<u64>,
    pub suspend_cancel: Option<u64>,
    /// An L1_MFN_VALID note was present.
    pub l1_mfn_valid: bool,
    /// Features the kernel supports: FEATURES names plus SUPPORTED_FEATURES.
    pub supported: FeatureSet,
    /// Features the kernel requires (`!name` in FEATURES).
    pub required: FeatureSet,
}

enum NoteKind {
    Number,
    Text,
    NameOnly,
}

fn describe(note_type: u32) -> Option<(&'static str, NoteKind)> {
    use NoteKind::*;
    Some(match note_type {
        XEN_ELFNOTE_ENTRY => ("ENTRY", Number),
        XEN_ELFNOTE_HYPERCALL_PAGE => ("HYPERCALL_PAGE", Number),
        XEN_ELFNOTE_VIRT_BASE => ("VIRT_BASE", Number),
        XEN_ELFNOTE_PADDR_OFFSET => ("PADDR_OFFSET", Number),
        XEN_ELFNOTE_XEN_VERSION => ("XEN_VERSION", Text),
        XEN_ELFNOTE_GUEST_OS => ("GUEST_OS", Text),
        XEN_ELFNOTE_GUEST_VERSION => ("GUEST_VERSION", Text),
        XEN_ELFNOTE_LOADER => ("LOADER", Text),
        XEN_ELFNOTE_PAE_MODE => ("PAE_MODE", Text),
        XEN_ELFNOTE_FEATURES => ("FEATURES", Text),
        XEN_ELFNOTE_BSD_SYMTAB => ("BSD_SYMTAB", Text),
        XEN_ELFNOTE_HV_START_LOW => ("HV_START_LOW", Number),
        XEN_ELFNOTE_L1_MFN_VALID => ("L1_MFN_VALID", NameOnly),
        XEN_ELFNOTE_SUSPEND_CANCEL => ("SUSPEND_CANCEL", Number),
        XEN_ELFNOTE_INIT_P2M => ("INIT_P2M", Number),
        XEN_ELFNOTE_MOD_START_PFN => ("MOD_START_PFN", Number),
        // A bitmap; handled on its own below, but named here so it counts.
        XEN_ELFNOTE_SUPPORTED_FEATURES => ("SUPPORTED_FEATURES", NameOnly),
        XEN_ELFNOTE_PHYS32_ENTRY => ("PHYS32_ENTRY", Number),
        _ => return None,
    })
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn little_endian_number(bytes: &[u8]) -> Option<u64> {
    if !matches!(bytes.len(), 1 | 2 | 4 | 8) {
        return None;
    }
    Some(bytes.iter().rev().fold(0, |value, &byte| (value << 8) | u64::from(byte)))
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

const fn align4(value: usize) -> usize {
    (value + 3) & !3
}

impl<'a> XenNotes<'a> {
    /// Reads every note in `region` (a PT_NOTE segment's or SHT_NOTE
    /// section's bytes, which start at file offset `region_offset`), applying
    /// those owned by "Xen". Returns how many Xen notes it applied.
    pub(crate) fn read_note_region(
        &mut self,
        region: &'a [u8],
        region_offset: u64,
    ) -> Result<usize, ImageError> {
        let mut applied = 0;
        let mut at = 0usize;
        // Fewer than a header's 12 bytes left is alignment padding.
        while region.len() - at >= 12 {
            let truncated = ImageError::TruncatedNote { offset: region_offset + at as u64 };
            let name_size = read_u32(region, at).ok_or(truncated)? as usize;
            let desc_size = read_u32(region, at + 4).ok_or(truncated)?;
            let note_type = read_u32(region, at + 8).ok_or(truncated)?;
            let name_start = at + 12;
            let desc_start = name_start.checked_add(align4(name_size)).ok_or(truncated)?;
            let desc_end = desc_start.checked_add(desc_size as usize).ok_or(truncated)?;
            let name = region.get(name_start..name_start + name_size).ok_or(truncated)?;
            let desc = region.get(desc_start..desc_end).ok_or(truncated)?;
            if until_nul(name) == b"Xen" && self.apply_note(note_type, desc)? {
                applied += 1;
            }
            at = desc_end.saturating_add(3) & !3;
            at = at.min(region.len());
        }
        Ok(applied)
    }

    /// Applies one Xen note; returns whether its type is one libelf knows.
    fn apply_note(&mut self, note_type: u32, desc: &'a [u8]) -> Result<bool, ImageError> {
        let Some((name, kind)) = describe(note_type) else {
            return Ok(false);
        };
        match kind {
            NoteKind::Number => {
                let value = little_endian_number(desc)
                    .ok_or(ImageError::BadNumericNote { note: name, size: desc.len() as u32 })?;
                self.apply_number(note_type, value);
            }
            NoteKind::Text => {
                let text = core::str::from_utf8(until_nul(desc))
                    .map_err(|_| ImageError::BadStringNote { note: name })?;
                self.apply_text(note_type, text)?;
            }
            NoteKind::NameOnly if note_type == XEN_ELFNOTE_SUPPORTED_FEATURES => {
                // A bitmap of 32-bit words; Xen knows only the first.
                let bitmap = desc
                    .len()
                    .is_multiple_of(4)
                    .then(|| read_u32(desc, 0))
                    .flatten()
                    .ok_or(ImageError::BadNumericNote { note: name, size: desc.len() as u32 })?;
                self.supported_features_bitmap = Some(bitmap);
                self.supported.0 |= bitmap;
            }
            NoteKind::NameOnly => self.l1_mfn_valid = true,
        }
        self.count += 1;
        Ok(true)
    }

    fn apply_number(&mut self, note_type: u32, value: u64) {
        let slot = match note_type {
            XEN_ELFNOTE_ENTRY => &mut self.entry,
            XEN_ELFNOTE_HYPERCALL_PAGE => &mut self.hypercall_page,
            XEN_ELFNOTE_VIRT_BASE => &mut self.virt_base,
            XEN_ELFNOTE_PADDR_OFFSET => &mut self.paddr_offset,
            XEN_ELFNOTE_HV_START_LOW => &mut self.hv_start_low,
            XEN_ELFNOTE_SUSPEND_CANCEL => &mut self.suspend_cancel,
            XEN_ELFNOTE_INIT_P2M => &mut self.init_p2m,
            XEN_ELFNOTE_MOD_START_PFN => &mut self.mod_start_pfn,
            XEN_ELFNOTE_PHYS32_ENTRY => &mut self.phys32_entry,
            _ => return,
        };
        *slot = Some(value);
    }

    fn apply_text(&mut self, note_type: u32, text: &'a str) -> Result<(), ImageError> {
        let slot = match note_type {
            XEN_ELFNOTE_XEN_VERSION => &mut self.xen_version,
            XEN_ELFNOTE_GUEST_OS => &mut self.guest_os,
            XEN_ELFNOTE_GUEST_VERSION => &mut self.guest_version,
            XEN_ELFNOTE_LOADER => &mut self.loader,
            XEN_ELFNOTE_PAE_MODE => &mut self.pae_mode,
            XEN_ELFNOTE_BSD_SYMTAB => &mut self.bsd_symtab,
            XEN_ELFNOTE_FEATURES => {
                parse_feature_string(text, &mut self.supported, &mut self.required)
                    .map_err(|name| ImageError::UnknownRequiredFeature(ShortText::new(name)))?;
                &mut self.features
            }
            _ => return Ok(()),
        };
        *slot = Some(text);
        Ok(())
    }

    /// Applies the legacy `__xen_guest` string: `KEY=VALUE` pairs separated by
    /// commas. Its HYPERCALL_PAGE is a page number relative to VIRT_BASE.
    pub(crate) fn read_legacy_guest_info(&mut self, text: &'a str) -> Result<(), ImageError> {
        let mut hypercall_pfn = None;
        for pair in text.split(',').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "LOADER" => self.loader = Some(value),
                "GUEST_OS" => self.guest_os = Some(value),
                "GUEST_VER" => self.guest_version = Some(value),
                "XEN_VER" => self.xen_version = Some(value),
                "PAE" => self.pae_mode = Some(value),
                "BSD_SYMTAB" => self.bsd_symtab = Some("yes"),
                "VIRT_BASE" => self.virt_base = Some(parse_c_number(value)),
                "VIRT_ENTRY" => self.entry = Some(parse_c_number(value)),
                "ELF_PADDR_OFFSET" => self.paddr_offset = Some(parse_c_number(value)),
                "HYPERCALL_PAGE" => hypercall_pfn = Some(parse_c_number(value)),
                "FEATURES" => {
                    parse_feature_string(value, &mut self.supported, &mut self.required)
                        .map_err(|name| ImageError::UnknownRequiredFeature(ShortText::new(name)))?;
                    self.features = Some(value);
                }
                _ => continue,
            }
            self.count += 1;
        }
        // As libelf: made absolute only when VIRT_BASE is known.
        self.hypercall_page = hypercall_pfn.map(|pfn| {
            let offset = pfn.wrapping_shl(PAGE_SHIFT);
            match self.virt_base {
                Some(base) => base.wrapping_add(offset),
                None => offset,
            }
        });
        Ok(())
    }
}

/// `strtoull(text, NULL, 0)`: hex with `0x`, octal with a leading `0`,
/// decimal otherwise; stops at the first non-digit; saturates on overflow.
fn parse_c_number(text: &str) -> u64 {
    let text = text.trim_start();
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        (hex, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    let mut value: u64 = 0;
    for digit in digits.chars().map_while(|c| c.to_digit(radix)) {
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .unwrap_or(u64::MAX);
    }
    value
}

impl fmt::Display for XenNotes<'_> {
    /// One line per note, like Xen's verbose "ELF: note: ..." output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts = [
            ("GUEST_OS", self.guest_os),
            ("GUEST_VERSION", self.guest_version),
            ("XEN_VERSION", self.xen_version),
            ("LOADER", self.loader),
            ("PAE_MODE", self.pae_mode),
            ("FEATURES", self.features),
            ("BSD_SYMTAB", self.bsd_symtab),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                writeln!(f, "ELF: note: {name} = \"{value}\"")?;
            }
        }
        let numbers = [
            ("VIRT_BASE", self.virt_base),
            ("PADDR_OFFSET", self.paddr_offset),
            ("ENTRY", self.entry),
            ("HYPERCALL_PAGE", self.hypercall_page),
            ("INIT_P2M", self.init_p2m),
            ("MOD_START_PFN", self.mod_start_pfn),
            ("HV_START_LOW", self.hv_start_low),
            ("PHYS32_ENTRY", self.phys32_entry),
            ("SUSPEND_CANCEL", self.suspend_cancel),
            ("SUPPORTED_FEATURES", self.supported_features_bitmap.map(u64::from)),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                writeln!(f, "ELF: note: {name} = {value:#x}")?;
            }
        }
        if self.l1_mfn_valid {
            writeln!(f, "ELF: note: L1_MFN_VALID")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_numbers_follow_strtoull_base_zero() {
        assert_eq!(parse_c_number("0xC0000000"), 0xc000_0000);
        assert_eq!(parse_c_number("010"), 8);
        assert_eq!(parse_c_number("42junk"), 42);
        assert_eq!(parse_c_number("0"), 0);
        assert_eq!(parse_c_number(""), 0);
        assert_eq!(parse_c_number("0xffffffffffffffffff"), u64::MAX);
    }

    #[test]
    fn numeric_payloads_of_every_allowed_width_read_little_endian() {
        assert_eq!(little_endian_number(&[0x12]), Some(0x12));
        assert_eq!(little_endian_number(&[0x34, 0x12]), Some(0x1234));
        assert_eq!(little_endian_number(&[0x78, 0x56, 0x34, 0x12]), Some(0x1234_5678));
        assert_eq!(
            little_endian_number(&0xffff_ffff_8000_1000u64.to_le_bytes()),
            Some(0xffff_ffff_8000_1000)
        );
        assert_eq!(little_endian_number(&[1, 2, 3]), None);
    }

    #[test]
    fn legacy_string_sets_fields_and_rebases_the_hypercall_page() {
        let mut notes = XenNotes::default();
        notes
            .read_legacy_guest_info(
                "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,HYPERCALL_PAGE=0x12,FEATURES=writable_page_tables",
            )
            .unwrap();
        assert_eq!(notes.guest_os, Some("linux"));
        assert_eq!(notes.xen_version, Some("xen-3.0"));
        assert_eq!(notes.virt_base, Some(0xc000_0000));
        assert_eq!(notes.hypercall_page, Some(0xc001_2000));
        assert!(notes.supported.contains(0));
        assert_eq!(notes.required, FeatureSet::EMPTY);
        assert_eq!(notes.count, 5);
    }
}
