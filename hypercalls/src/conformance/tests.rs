//! The probe generator and the comparison, on hand-made tables.

use super::*;
use std::string::String;
use std::vec::Vec;

const SAMPLE: &[Check] = &[
    Check::Const { name: "A", c_expr: "A", value: -3 },
    Check::Str { name: "B", c_expr: "B", value: "CREATE|EXCL" },
    Check::Size { rust_type: "T", c_type: "struct t", size: 16 },
    Check::Offset { rust_type: "T", c_type: "struct t", field: "r#type", offset: 8 },
];

fn run(output: &str) -> (Result<Counts, String>, Vec<String>) {
    let mut mismatches = Vec::new();
    let result =
        compare(SAMPLE.iter(), output, |m| mismatches.push(m.to_string())).map_err(|e| e.to_string());
    (result, mismatches)
}

#[test]
fn matching_output_passes_and_counts_each_kind() {
    let (result, mismatches) = run("0 -3\n1 CREATE|EXCL\n2 16\n3 8\n");
    assert_eq!(result, Ok(Counts { constants: 2, sizes: 1, offsets: 1 }));
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[test]
fn a_deliberate_mismatch_is_reported() {
    let (result, mismatches) = run("0 -3\n1 CREATE\n2 24\n3 8\n");
    assert!(result.is_ok());
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    assert!(mismatches[0].contains("\"CREATE|EXCL\"") && mismatches[0].ends_with("C says CREATE"));
    assert!(mismatches[1].contains("sizeof(T) = 16") && mismatches[1].ends_with("C says 24"));
}

#[test]
fn truncated_reordered_or_extra_output_is_an_error() {
    assert!(run("0 -3\n1 CREATE|EXCL\n").0.unwrap_err().contains("ends before line 2"));
    assert!(run("1 CREATE|EXCL\n0 -3\n2 16\n3 8\n").0.is_err());
    assert!(run("0 -3\n1 CREATE|EXCL\n2 16\n3 8\n4 1\n").0.is_err());
    assert!(run("0\n").0.unwrap_err().contains("malformed"));
}

#[test]
fn probe_evaluates_each_check_in_order_with_c_field_names() {
    let mut source = String::new();
    probe::write_probe(&mut source, SAMPLE.iter()).unwrap();
    assert!(source.contains("PROBE_INT(0, (A));"));
    assert!(source.contains("PROBE_STR(1, (B));"));
    assert!(source.contains("PROBE_SIZE(2, sizeof(struct t));"));
    // Raw identifiers lose their `r#` on the C side.
    assert!(source.contains("PROBE_SIZE(3, offsetof(struct t, type));"));
    assert!(source.contains("#include <xen/xen.h>"));
}

#[test]
fn the_crate_probe_has_one_line_per_check() {
    let mut source = String::new();
    c_probe_source(&mut source).unwrap();
    let probes = source.lines().filter(|l| l.trim_start().starts_with("PROBE_")).count();
    assert_eq!(probes, all_checks().count());
    assert!(count_checks().total() > 500, "{:?}", count_checks());
}

#[test]
fn every_check_agrees_with_itself_through_the_comparison() {
    // Feeding the Rust values back as the "C" output must pass, which
    // proves the formats of both sides line up for every real check.
    let mut output = String::new();
    for (index, check) in all_checks().enumerate() {
        let value = match *check {
            Check::Const { value, .. } => value.to_string(),
            Check::Str { value, .. } => value.into(),
            Check::Size { size, .. } | Check::FieldSize { size, .. } => size.to_string(),
            Check::Align { align, .. } => align.to_string(),
            Check::Offset { offset, .. } => offset.to_string(),
        };
        output.push_str(&format!("{index} {value}\n"));
    }
    let mut mismatches = 0;
    let counts = compare(all_checks(), &output, |_| mismatches += 1).unwrap();
    assert_eq!(mismatches, 0);
    assert_eq!(counts, count_checks());
}
