//! Comparison of the probe's output with the Rust table. Allocation-free so
//! it lives in the `no_std` crate and is unit-tested on the host.

use super::{Check, CheckKind};

/// Checks performed, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub constants: usize,
    pub sizes: usize,
    pub offsets: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, kind: CheckKind) {
        match kind {
            CheckKind::Constant => self.constants += 1,
            CheckKind::Size => self.sizes += 1,
            CheckKind::Offset => self.offsets += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.constants + self.sizes + self.offsets
    }
}

/// One disagreement between C and Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch<'c, 'o> {
    pub check: &'c Check,
    /// What the C probe printed for it.
    pub c_value: &'o str,
}

impl core::fmt::Display for Mismatch<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Rust {} but C says {}", self.check, self.c_value)
    }
}

/// The probe's output could not be matched to the table at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareError<'a> {
    /// A line is not `<index> <value>`.
    MalformedLine(&'a str),
    /// A line names a check that does not exist or came out of order.
    UnexpectedIndex { expected: usize, line: &'a str },
    /// The output ended before this check (the probe probably crashed).
    MissingLine { index: usize },
}

impl core::fmt::Display for CompareError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CompareError::MalformedLine(line) => write!(f, "malformed probe line {line:?}"),
            CompareError::UnexpectedIndex { expected, line } => {
                write!(f, "expected probe line {expected}, got {line:?}")
            }
            CompareError::MissingLine { index } => write!(f, "probe output ends before line {index}"),
        }
    }
}

/// Compares `probe_output` (see `probe.rs` for the format) with `checks`,
/// calling `on_mismatch` for each disagreement, and returns how many checks
/// of each kind were compared.
pub fn compare<'c, 'o>(
    checks: impl Iterator<Item = &'c Check>,
    probe_output: &'o str,
    mut on_mismatch: impl FnMut(Mismatch<'c, 'o>),
) -> Result<Counts, CompareError<'o>> {
    let mut lines = probe_output.lines().filter(|line| !line.trim().is_empty());
    let mut counts = Counts::default();
    for (index, check) in checks.enumerate() {
        let line = lines.next().ok_or(CompareError::MissingLine { index })?;
        let (line_index, c_value) = line.trim().split_once(' ').ok_or(CompareError::MalformedLine(line))?;
        let line_index: usize = line_index.parse().map_err(|_| CompareError::MalformedLine(line))?;
        if line_index != index {
            return Err(CompareError::UnexpectedIndex { expected: index, line });
        }
        if !agrees(check, c_value) {
            on_mismatch(Mismatch { check, c_value });
        }
        counts.add(check.kind());
    }
    match lines.next() {
        Some(line) => Err(CompareError::UnexpectedIndex { expected: counts.total(), line }),
        None => Ok(counts),
    }
}

fn agrees(check: &Check, c_value: &str) -> bool {
    let rust_value: i128 = match *check {
        Check::Str { value, .. } => return value == c_value,
        Check::Const { value, .. } => value,
        Check::Size { size, .. } | Check::FieldSize { size, .. } => size as i128,
        Check::Align { align, .. } => align as i128,
        Check::Offset { offset, .. } => offset as i128,
    };
    c_value.parse::<i128>() == Ok(rust_value)
}
