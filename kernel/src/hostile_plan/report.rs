//! Running attacks and reporting them, one line each:
//!
//! ```text
//! PASS map-hypervisor-frame [XSA-148]
//! FAIL mmu-update-foreign-domain: expected -ESRCH, got -EPERM
//! SKIP console-ring-lying-producer: dom0 has no console ring
//! hostile: 61 passed, 1 failed
//! ```
//!
//! The summary line is exact; skipped attacks count in neither number. An
//! attack passes when the hypervisor answered as Xen would and stayed up.

use core::fmt::{self, Write};

use crate::selftest::Outcome;

/// One attack over some context `C` (in the kernel: the environment the
/// suite prepared), with the Xen security advisory it mirrors, if any.
pub struct Attack<C> {
    pub name: &'static str,
    pub xsa: Option<u16>,
    pub run: fn(&mut C) -> Outcome,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl Summary {
    pub fn succeeded(&self) -> bool {
        self.failed == 0
    }

    /// Adds another part of the suite's results.
    pub fn add(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hostile: {} passed, {} failed", self.passed, self.failed)
    }
}

/// Writes the line for one finished attack and counts it in `summary`.
pub fn report(summary: &mut Summary, name: &str, xsa: Option<u16>, outcome: Outcome, out: &mut dyn Write) {
    // A console that fails cannot report its own failure anywhere better.
    let _ = match outcome {
        Outcome::Pass => {
            summary.passed += 1;
            match xsa {
                Some(number) => writeln!(out, "PASS {name} [XSA-{number}]"),
                None => writeln!(out, "PASS {name}"),
            }
        }
        Outcome::Fail(reason) => {
            summary.failed += 1;
            writeln!(out, "FAIL {name}: {reason}")
        }
        Outcome::Skip(reason) => {
            summary.skipped += 1;
            writeln!(out, "SKIP {name}: {reason}")
        }
    };
}

/// Runs `attacks` in order, reporting each as it finishes (no summary line:
/// the suite prints one for all its parts).
pub fn run_attacks<C>(context: &mut C, attacks: &[Attack<C>], out: &mut dyn Write) -> Summary {
    let mut summary = Summary::default();
    for attack in attacks {
        let outcome = (attack.run)(context);
        report(&mut summary, attack.name, attack.xsa, outcome, out);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn passes(_: &mut u32) -> Outcome {
        Outcome::Pass
    }
    fn fails(count: &mut u32) -> Outcome {
        *count += 1;
        Outcome::Fail(alloc::format!("expected -EINVAL, got {}", count))
    }
    fn skips(_: &mut u32) -> Outcome {
        Outcome::Skip("dom0 has no console ring")
    }

    #[test]
    fn one_line_per_attack_with_the_xsa_and_the_exact_summary() {
        let attacks = [
            Attack { name: "superpage", xsa: Some(148), run: passes },
            Attack { name: "plain", xsa: None, run: passes },
            Attack { name: "broken", xsa: Some(182), run: fails },
            Attack { name: "ring", xsa: None, run: skips },
        ];
        let mut out = String::new();
        let summary = run_attacks(&mut 0, &attacks, &mut out);
        assert_eq!(summary, Summary { passed: 2, failed: 1, skipped: 1 });
        assert!(!summary.succeeded());
        assert_eq!(
            out,
            "PASS superpage [XSA-148]\nPASS plain\nFAIL broken: expected -EINVAL, got 1\n\
             SKIP ring: dom0 has no console ring\n"
        );
        assert_eq!(alloc::format!("{summary}"), "hostile: 2 passed, 1 failed");
    }

    #[test]
    fn parts_add_up() {
        let mut total = Summary { passed: 1, failed: 0, skipped: 2 };
        total.add(Summary { passed: 3, failed: 1, skipped: 0 });
        assert_eq!(total, Summary { passed: 4, failed: 1, skipped: 2 });
        assert!(Summary { passed: 0, failed: 0, skipped: 5 }.succeeded());
    }
}
