//! The in-guest self-test mechanism (`selftest` on the command line).
//!
//! Each test prints one line: `PASS <name>`, `FAIL <name>: <reason>` or
//! `SKIP <name>: <reason>`. The run ends with exactly
//! `selftest: N passed, M failed`; skipped tests count in neither number.
//! The tests themselves live with the code they exercise, in the binary; this
//! module only runs and reports them, so its rules are tested on the host.

use alloc::string::String;
use core::fmt::{self, Write};

/// What one test found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// The test cannot run on this platform, and says why.
    Skip(&'static str),
}

/// A test over some context `C` (in the kernel: the booted platform).
pub struct SelfTest<C> {
    pub name: &'static str,
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
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "selftest: {} passed, {} failed", self.passed, self.failed)
    }
}

/// Runs every test in order, reporting each as it finishes, then the summary line.
pub fn run_all<C>(context: &mut C, tests: &[SelfTest<C>], out: &mut dyn Write) -> Summary {
    let mut summary = Summary::default();
    for test in tests {
        // Output errors cannot be reported anywhere better than the console
        // that failed, so they are ignored.
        let _ = match (test.run)(context) {
            Outcome::Pass => {
                summary.passed += 1;
                writeln!(out, "PASS {}", test.name)
            }
            Outcome::Fail(reason) => {
                summary.failed += 1;
                writeln!(out, "FAIL {}: {}", test.name, reason)
            }
            Outcome::Skip(reason) => {
                summary.skipped += 1;
                writeln!(out, "SKIP {}: {}", test.name, reason)
            }
        };
    }
    let _ = writeln!(out, "{summary}");
    summary
}

/// `Outcome::Fail` unless `condition`, with a formatted reason.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return $crate::selftest::Outcome::Fail(alloc::format!($($reason)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(_: &mut u32) -> Outcome {
        Outcome::Pass
    }
    fn fails(count: &mut u32) -> Outcome {
        *count += 1;
        ensure!(*count == 0, "count was {}", count);
        Outcome::Pass
    }
    fn skips(_: &mut u32) -> Outcome {
        Outcome::Skip("no xenstore as dom0")
    }

    #[test]
    fn reports_each_test_and_the_exact_summary_line() {
        let tests = [
            SelfTest { name: "a", run: passes },
            SelfTest { name: "b", run: fails },
            SelfTest { name: "c", run: skips },
        ];
        let mut out = String::new();
        let mut context = 0;
        let summary = run_all(&mut context, &tests, &mut out);
        assert_eq!(summary, Summary { passed: 1, failed: 1, skipped: 1 });
        assert!(!summary.succeeded());
        assert_eq!(
            out,
            "PASS a\nFAIL b: count was 1\nSKIP c: no xenstore as dom0\nselftest: 1 passed, 1 failed\n"
        );
    }

    #[test]
    fn skips_alone_still_succeed() {
        let tests = [SelfTest { name: "c", run: skips }];
        let mut out = String::new();
        assert!(run_all(&mut 0, &tests, &mut out).succeeded());
        assert!(out.ends_with("selftest: 0 passed, 0 failed\n"));
    }
}
