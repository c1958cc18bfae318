//! Every `pub const`, `pub struct` and `pub type` under `src/abi/` must be
//! in the conformance table, so nothing can be added to the ABI unchecked.

use super::{all_checks, Check};
use std::collections::BTreeSet;
use std::path::Path;
use std::string::String;
use std::vec::Vec;

/// Public items under `abi/` that are deliberately not C ABI items, and why.
const EXEMPT: &[(&str, &str)] = &[
    ("XEN_ELFNOTE_OWNER", "the note owner string \"Xen\"; elfnote.h documents it in prose only"),
    ("XsdError", "Rust view of C's struct xsd_errors (&str, not const char *); entries are checked"),
    ("E820Entry", "XENMEM_memory_map's entry format is not in Xen's public headers; unit-tested"),
];

fn abi_sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            abi_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// `(kind, name)` for each `pub const|struct|type NAME` in `source`.
fn public_items(source: &str) -> Vec<(&'static str, String)> {
    let mut items = Vec::new();
    for line in source.lines() {
        let line = line.trim_start();
        for kind in ["const", "struct", "type"] {
            let Some(rest) = line.strip_prefix("pub ").and_then(|r| r.strip_prefix(kind)) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix(' ') else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            // `pub const fn` helpers are code, not ABI items.
            if !name.is_empty() && name != "fn" {
                items.push((kind, name));
            }
        }
    }
    items
}

#[test]
fn every_public_abi_item_is_checked_against_c() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/abi");
    let mut sources = Vec::new();
    abi_sources(&root, &mut sources);
    assert!(sources.len() >= 5, "found only {} files under {}", sources.len(), root.display());

    let checked_consts: BTreeSet<&str> = all_checks()
        .filter_map(|c| match *c {
            Check::Const { name, .. } | Check::Str { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    let checked_types: BTreeSet<&str> = all_checks()
        .filter_map(|c| match *c {
            Check::Size { rust_type, .. } => Some(rust_type),
            _ => None,
        })
        .collect();

    let mut missing = Vec::new();
    let mut seen = 0;
    for (file, source) in &sources {
        for (kind, name) in public_items(source) {
            seen += 1;
            if EXEMPT.iter().any(|(exempt, _)| *exempt == name) {
                continue;
            }
            let checked = match kind {
                "const" => checked_consts.contains(name.as_str()),
                _ => checked_types.contains(name.as_str()),
            };
            if !checked {
                missing.push(format!("{file}: pub {kind} {name}"));
            }
        }
    }
    assert!(seen > 100, "the scan found only {seen} items; is it still parsing the sources?");
    assert!(missing.is_empty(), "ABI items without a conformance check:\n{}", missing.join("\n"));
}

#[test]
fn the_scan_finds_items_inside_macro_invocations() {
    let items = public_items("xen_consts! {\n  T;\n    pub const FOO_BAR: u32 = 1;\n}\npub struct Baz => \"x\" {}\n pub type Q = u8;\npub const fn f() {}\n");
    assert_eq!(items, [("const", "FOO_BAR".into()), ("struct", "Baz".into()), ("type", "Q".into())]);
}

#[test]
fn exemptions_name_real_items() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/abi");
    let mut sources = Vec::new();
    abi_sources(&root, &mut sources);
    for (name, reason) in EXEMPT {
        assert!(!reason.is_empty());
        assert!(
            sources.iter().any(|(_, s)| public_items(s).iter().any(|(_, n)| n == name)),
            "exempt item {name} no longer exists"
        );
    }
}
