//! XENFEAT feature sets as kernels declare them in their notes, and the one
//! place that says which of them this hypervisor offers a PV guest.

use hypercalls::abi::features::{
    XENFEAT_auto_translated_physmap, XENFEAT_dom0, XENFEAT_hvm_callback_vector, XENFEAT_pae_pgdir_above_4gb,
    XENFEAT_supervisor_mode_kernel, XENFEAT_writable_descriptor_tables, XENFEAT_writable_page_tables,
};

/// A set of XENFEAT bit numbers (submap 0, the only one Xen defines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureSet(pub u32);

impl FeatureSet {
    /// No features.
    pub const EMPTY: Self = Self(0);

    /// The set holding exactly the given XENFEAT bit numbers.
    pub const fn of(bits: &[u32]) -> Self {
        let mut mask = 0;
        let mut i = 0;
        while i < bits.len() {
            mask |= 1 << bits[i];
            i += 1;
        }
        Self(mask)
    }

    /// Whether XENFEAT bit `bit` is in the set.
    pub const fn contains(self, bit: u32) -> bool {
        bit < 32 && self.0 & (1 << bit) != 0
    }

    /// Adds XENFEAT bit `bit` (bits beyond submap 0 are ignored, as in Xen).
    pub fn insert(&mut self, bit: u32) {
        if bit < 32 {
            self.0 |= 1 << bit;
        }
    }

    /// Features in `self` but not in `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The lowest-numbered feature in the set, if any.
    pub const fn first(self) -> Option<u32> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros())
        }
    }
}

/// The feature names a FEATURES note may use, exactly the ones libelf knows.
pub const KNOWN_FEATURE_NAMES: [(u32, &str); 7] = [
    (XENFEAT_writable_page_tables, "writable_page_tables"),
    (XENFEAT_writable_descriptor_tables, "writable_descriptor_tables"),
    (XENFEAT_auto_translated_physmap, "auto_translated_physmap"),
    (XENFEAT_supervisor_mode_kernel, "supervisor_mode_kernel"),
    (XENFEAT_pae_pgdir_above_4gb, "pae_pgdir_above_4gb"),
    (XENFEAT_hvm_callback_vector, "hvm_callback_vector"),
    (XENFEAT_dom0, "dom0"),
];

/// The features a kernel may *require* (`!name` in its FEATURES note) and
/// still be loaded here.
///
/// * `writable_page_tables`: a PV guest may write its (read-only mapped)
///   page tables directly; the hypervisor traps, validates and emulates the
///   write as Xen does for every PV guest. Linux requires it.
/// * `pae_pgdir_above_4gb`: trivially true for 64-bit guests.
///
/// Not offered: `writable_descriptor_tables`, `auto_translated_physmap`,
/// `supervisor_mode_kernel` (PV kernels run in ring 3), `hvm_callback_vector`
/// (HVM only) and `dom0` (the guest is an unprivileged domU; a kernel that
/// merely *supports* dom0 still loads).
pub const HYPERVISOR_SUPPORTED_FEATURES: FeatureSet =
    FeatureSet::of(&[XENFEAT_writable_page_tables, XENFEAT_pae_pgdir_above_4gb]);

/// The libelf name of XENFEAT bit `bit`, if it has one.
pub fn feature_name(bit: u32) -> Option<&'static str> {
    KNOWN_FEATURE_NAMES.iter().find(|(known, _)| *known == bit).map(|(_, name)| *name)
}

fn feature_bit(name: &str) -> Option<u32> {
    KNOWN_FEATURE_NAMES.iter().find(|(_, known)| *known == name).map(|(bit, _)| *bit)
}

/// Parses a FEATURES string (`name|!name|...`) the way libelf does: a plain
/// known name is supported, `!name` is supported *and* required, unknown
/// plain names are ignored (newer kernels may name newer features), and an
/// unknown required name is an error, returned as that name.
pub fn parse_feature_string<'a>(
    text: &'a str,
    supported: &mut FeatureSet,
    required: &mut FeatureSet,
) -> Result<(), &'a str> {
    for token in text.split('|') {
        match token.strip_prefix('!') {
            Some(name) => {
                let bit = feature_bit(name).ok_or(name)?;
                supported.insert(bit);
                required.insert(bit);
            }
            None => {
                if let Some(bit) = feature_bit(token) {
                    supported.insert(bit);
                }
            }
        }
    }
    Ok(())
}
