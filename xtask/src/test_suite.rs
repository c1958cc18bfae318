//! `cargo xtask test`: host unit tests, the images, then the system tests,
//! with one total at the end.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::images::{self, Profile};
use crate::{cargo_program, workspace_root, XtaskError};

/// Test counts, summed over steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    /// The final line; CI looks for `N passed, M failed` on a line of its own.
    pub fn total_line(&self) -> String {
        format!("total: {} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// Reads libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line
/// (ignored tests count as skipped).
pub fn parse_libtest_summary(line: &str) -> Option<Tally> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, counts) = rest.split_once(". ")?;
    Some(Tally {
        passed: count_before(counts, "passed")?,
        failed: count_before(counts, "failed")?,
        skipped: count_before(counts, "ignored").unwrap_or(0),
    })
}

/// Reads the system harness's `system: 3 passed, 0 failed, 1 skipped` line.
pub fn parse_system_summary(line: &str) -> Option<Tally> {
    let counts = line.trim().strip_prefix("system: ")?;
    Some(Tally {
        passed: count_before(counts, "passed")?,
        failed: count_before(counts, "failed")?,
        skipped: count_before(counts, "skipped")?,
    })
}

/// The number in front of `word` in a list like `3 passed; 0 failed` or `3 passed, 0 failed`.
fn count_before(counts: &str, word: &str) -> Option<u64> {
    counts.split([';', ',']).find_map(|part| part.trim().strip_suffix(word)?.trim().parse().ok())
}

/// Runs the whole suite, printing every step's output and the total line.
/// Returns the total; it is an error if any step or test failed.
pub fn run_all() -> Result<Tally, XtaskError> {
    let mut total = Tally::default();

    eprintln!("xtask: step 1/3: host unit tests");
    let host = run_counting_step(
        "host unit tests",
        // --no-fail-fast: one crate's failing tests must not hide the other crates' counts.
        &["test", "--workspace", "--exclude", "system-tests", "--no-fail-fast"],
        parse_libtest_summary,
    );
    total.add(host);

    eprintln!("xtask: step 2/3: building the images");
    match images::build(Profile::Release) {
        Ok(built) => images::describe(&built).iter().for_each(|line| eprintln!("xtask: {line}")),
        Err(err) => {
            eprintln!("xtask: step `build` failed: {err}; counting it as one failure");
            total.failed += 1;
        }
    }

    eprintln!("xtask: step 3/3: system tests");
    let system = run_counting_step(
        "system tests",
        &["test", "-p", "system-tests", "--test", "system"],
        parse_system_summary,
    );
    total.add(system);

    println!("{}", total.total_line());
    if total.failed > 0 {
        return Err(XtaskError::failed(format!("{} test(s) or step(s) failed", total.failed)));
    }
    Ok(total)
}

/// Runs `cargo <args>`, streaming its stdout and summing every summary line.
/// A step that fails without reporting a failed test (a build error, a
/// crash) still counts as one failure, so the total can never hide it.
fn run_counting_step(name: &str, args: &[&str], parse: fn(&str) -> Option<Tally>) -> Tally {
    let mut tally = Tally::default();
    let spawned = Command::new(cargo_program())
        .current_dir(workspace_root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            eprintln!("xtask: step `{name}`: cannot run cargo: {err}; counting it as one failure");
            tally.failed = 1;
            return tally;
        }
    };
    if let Some(stdout) = child.stdout.take() {
        let mut terminal = std::io::stdout();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(terminal, "{line}");
            if let Some(counts) = parse(&line) {
                tally.add(counts);
            }
        }
    }
    let status = child.wait();
    let succeeded = status.as_ref().is_ok_and(|s| s.success());
    if !succeeded && tally.failed == 0 {
        let how = match status {
            Ok(status) => status.to_string(),
            Err(err) => err.to_string(),
        };
        eprintln!(
            "xtask: step `{name}` failed ({how}) without reporting a failed test; counting it as one failure"
        );
        tally.failed = 1;
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summaries() {
        let ok =
            "test result: ok. 12 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_libtest_summary(ok), Some(Tally { passed: 12, failed: 0, skipped: 2 }));
        let failed = "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(parse_libtest_summary(failed), Some(Tally { passed: 3, failed: 1, skipped: 0 }));
        assert_eq!(parse_libtest_summary("test foo ... ok"), None);
        assert_eq!(parse_libtest_summary("running 3 tests"), None);
    }

    #[test]
    fn parses_system_summary() {
        assert_eq!(
            parse_system_summary("system: 5 passed, 1 failed, 2 skipped"),
            Some(Tally { passed: 5, failed: 1, skipped: 2 })
        );
        assert_eq!(parse_system_summary("PASS system: x"), None);
        assert_eq!(parse_system_summary("system: 5 passed"), None);
    }

    #[test]
    fn total_line_has_the_shape_ci_reads() {
        let mut total = Tally { passed: 1, failed: 0, skipped: 0 };
        total.add(Tally { passed: 2, failed: 3, skipped: 4 });
        assert_eq!(total.total_line(), "total: 3 passed, 3 failed, 4 skipped");
    }
}
