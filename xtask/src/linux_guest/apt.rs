//! The host's apt, run for one package: its progress on our stderr, its
//! errors read to tell "no route to Debian's archive" from everything else.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{failed, tool_missing, FetchError};

/// How often a download says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `apt-get download <package>` into `dir`; the `.deb` it left there.
pub(super) fn download(package: &str, dir: &Path) -> Result<PathBuf, FetchError> {
    let child = Command::new("apt-get")
        // Root's apt hands downloads to `_apt`, who cannot write into root's
        // cache: it would warn and go on as root anyway.
        .args(["-o", "APT::Sandbox::User=root", "download", package])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        // apt's own lines (`Get:1 ...`, `Fetched ...`) go to our stderr: the
        // system tests' stdout holds only their verdicts.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(tool_missing("apt-get", &err)))?;
    let (ok, errors) = wait_reporting(child, Some(dir))?;
    if !ok {
        return Err(classify(&format!("apt-get download {package} failed"), &errors));
    }
    let deb =
        std::fs::read_dir(dir).ok().into_iter().flatten().flatten().map(|entry| entry.path()).find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(package) && name.ends_with(".deb"))
        });
    deb.ok_or_else(|| failed(format!("apt-get download {package} left no .deb in {}", dir.display())))
}

/// `apt-get update`, for missing or stale package lists.
pub(super) fn update() -> Result<(), FetchError> {
    let child = Command::new("apt-get")
        .args(["update", "-q"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(tool_missing("apt-get", &err)))?;
    let (ok, errors) = wait_reporting(child, None)?;
    // apt-get update succeeds with only warnings when some lists failed.
    if ok && !errors.iter().any(|line| is_unreachable(line)) {
        return Ok(());
    }
    Err(classify("apt-get update failed", &errors))
}

/// Waits for apt, echoing its stderr and, for a download, the megabytes
/// that reached `download_dir` so far. Returns success and apt's stderr lines.
fn wait_reporting(mut child: Child, download_dir: Option<&Path>) -> Result<(bool, Vec<String>), FetchError> {
    let stderr = child.stderr.take().map(|stream| {
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.push(line);
            }
            lines
        })
    });
    let started = Instant::now();
    let mut last_report = started;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(err) => return Err(failed(format!("cannot wait for apt-get: {err}"))),
        }
        if let Some(dir) = download_dir.filter(|_| last_report.elapsed() >= PROGRESS_EVERY) {
            last_report = Instant::now();
            let megabytes = bytes_under(dir) as f64 / 1e6;
            eprintln!("xtask: downloading: {megabytes:.1} MB after {} s", started.elapsed().as_secs());
        }
    };
    let lines = stderr.and_then(|reader| reader.join().ok()).unwrap_or_default();
    Ok((status.success(), lines))
}

fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            Some(if meta.is_dir() { bytes_under(&entry.path()) } else { meta.len() })
        })
        .sum()
}

/// apt's words for a network that does not get it to the archive.
const UNREACHABLE_MARKERS: &[&str] = &[
    "Could not resolve",
    "Temporary failure resolving",
    "Unable to connect",
    "Could not connect",
    "Connection failed",
    "Connection timed out",
    "Network is unreachable",
    "No route to host",
];

pub fn is_unreachable(line: &str) -> bool {
    UNREACHABLE_MARKERS.iter().any(|marker| line.contains(marker))
}

/// One line for a failed apt run: the archive unreachable, else apt's
/// first error (the cause; later ones are consequences), else its last line.
pub fn classify(what: &str, stderr: &[String]) -> FetchError {
    if let Some(line) = stderr.iter().find(|line| is_unreachable(line)) {
        return FetchError::ArchiveUnreachable(format!("{what}: {}", without_tag(line)));
    }
    match stderr.iter().find(|line| line.starts_with("E:")).or_else(|| stderr.last()) {
        Some(line) => failed(format!("{what}: {}", without_tag(line))),
        None => failed(what.to_string()),
    }
}

fn without_tag(line: &str) -> &str {
    for tag in ["E:", "W:", "Err:"] {
        if let Some(rest) = line.strip_prefix(tag) {
            return rest.trim();
        }
    }
    line.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn no_network_is_told_apart_from_other_failures() {
        let offline = lines(&[
            "Err:1 http://deb.debian.org/debian bookworm-backports/main amd64 linux-image-x amd64 6.12",
            "  Temporary failure resolving 'deb.debian.org'",
            "E: Failed to fetch http://deb.debian.org/debian/pool/main/l/linux-image-x.deb  Temporary failure resolving 'deb.debian.org'",
        ]);
        match classify("apt-get download x failed", &offline) {
            FetchError::ArchiveUnreachable(why) => {
                assert!(why.starts_with("apt-get download x failed: Temporary failure resolving"), "{why}")
            }
            other => panic!("expected unreachable, got {other:?}"),
        }

        let no_lists =
            lines(&["E: Can't select candidate version from package linux-image-x as it has no candidate"]);
        match classify("apt-get download x failed", &no_lists) {
            FetchError::Failed(error) => assert_eq!(
                error.message,
                "apt-get download x failed: Can't select candidate version from package linux-image-x as it has no candidate"
            ),
            other => panic!("expected a failure, got {other:?}"),
        }

        let not_root = lines(&[
            "W: warning first",
            "E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)",
            "E: Unable to lock directory /var/lib/apt/lists/",
        ]);
        match classify("apt-get update failed", &not_root) {
            FetchError::Failed(error) => {
                assert_eq!(
                    error.message,
                    "apt-get update failed: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)"
                )
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert!(matches!(classify("x", &[]), FetchError::Failed(error) if error.message == "x"));
    }
}
