//! Downloading Debian packages with the host's apt, but with a private
//! configuration, package lists and an empty dpkg status: the host's own
//! sources, pins and installed packages play no part, nothing is installed,
//! no root is needed, and apt fetches the whole dependency closure.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::progress;
use super::Unavailable;

/// The Debian archive, overridable for a local mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
pub const MIRROR_ENV: &str = "XTASK_DEBIAN_MIRROR";
/// The suites the recipe in PLATFORM.md uses: Debian 12 plus its backports
/// (Linux 6.12 with CONFIG_KVM_XEN=y, QEMU 10).
pub const SUITE: &str = "bookworm";
pub const BACKPORTS: &str = "bookworm-backports";
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A private apt tree under `dir`.
pub struct PrivateApt {
    dir: PathBuf,
    mirror: String,
}

impl PrivateApt {
    pub fn new(dir: &Path) -> Self {
        let mirror = std::env::var(MIRROR_ENV).ok().filter(|m| !m.trim().is_empty());
        PrivateApt { dir: dir.to_path_buf(), mirror: mirror.unwrap_or_else(|| DEFAULT_MIRROR.to_string()) }
    }

    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// Where the downloaded `.deb` files end up.
    pub fn archives(&self) -> PathBuf {
        self.dir.join("cache/archives")
    }

    /// Writes the configuration and the (empty) dpkg status.
    pub fn prepare(&self) -> Result<(), Unavailable> {
        for sub in [
            "etc/parts",
            "etc/sources.list.d",
            "etc/preferences.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            let path = self.dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|err| io_failure(&path, err))?;
        }
        let write = |name: &str, text: String| {
            let path = self.dir.join(name);
            std::fs::write(&path, text).map_err(|err| io_failure(&path, err))
        };
        write("etc/sources.list", sources_list(&self.mirror))?;
        write("state/status", String::new())?;
        write("apt.conf", apt_conf(&self.dir))
    }

    /// `apt-get update` against the private sources.
    pub fn update(&self) -> Result<(), Unavailable> {
        let (ok, tail) = self.apt_get(&["update"], None)?;
        let lists = std::fs::read_dir(self.dir.join("state/lists"))
            .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with("_Packages")))
            .unwrap_or(false);
        if ok && lists {
            return Ok(());
        }
        Err(Unavailable::CannotBuildHere(format!(
            "cannot reach the Debian archive at {} (set {MIRROR_ENV} to use a mirror): {}",
            self.mirror,
            last_error(&tail).unwrap_or("apt-get update fetched no package lists")
        )))
    }

    /// Downloads `packages` and their dependencies (no recommends), preferring backports.
    pub fn download(&self, packages: &[&str]) -> Result<(), Unavailable> {
        let mut args = vec!["install", "--download-only", "--yes", "--target-release", BACKPORTS];
        args.extend_from_slice(packages);
        let (ok, tail) = self.apt_get(&args, Some("downloaded"))?;
        if ok {
            return Ok(());
        }
        let why = last_error(&tail).unwrap_or("apt-get failed");
        let message = format!("downloading the harness packages failed: {why}");
        Err(if why.contains("No space left") {
            Unavailable::Failed(message)
        } else if why.contains("Failed to fetch") || why.contains("Could not resolve") {
            Unavailable::CannotBuildHere(message)
        } else {
            Unavailable::Failed(message)
        })
    }

    /// Runs apt-get with the private configuration. With `count_label`,
    /// shows how many packages have arrived every few seconds. Returns
    /// success and the last lines of output.
    fn apt_get(&self, args: &[&str], count_label: Option<&str>) -> Result<(bool, Vec<String>), Unavailable> {
        let mut child = Command::new("apt-get")
            .arg("-q")
            .args(args)
            .env("APT_CONFIG", self.dir.join("apt.conf"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Unavailable::CannotBuildHere(format!("cannot run apt-get: {err}")))?;
        let stderr = child.stderr.take().map(|err| std::thread::spawn(move || collect_tail(err, |_| {})));
        let mut total: Option<usize> = None;
        let mut fetched = 0;
        let mut last_report = Instant::now();
        let stdout_tail = child.stdout.take().map(|out| {
            collect_tail(out, |line| {
                if total.is_none() {
                    total = newly_installed(line);
                }
                if line.starts_with("Get:") {
                    fetched += 1;
                    if let (Some(label), true) =
                        (count_label, last_report.elapsed() >= Duration::from_secs(5))
                    {
                        last_report = Instant::now();
                        let of = total.map(|n| format!(" of {n}")).unwrap_or_default();
                        progress(&format!("      {label} {fetched}{of} packages"));
                    }
                }
            })
        });
        let status =
            child.wait().map_err(|err| Unavailable::Failed(format!("cannot wait for apt-get: {err}")))?;
        let mut tail: Vec<String> = stdout_tail.unwrap_or_default().into();
        tail.extend(stderr.and_then(|handle| handle.join().ok()).unwrap_or_default());
        Ok((status.success(), tail))
    }
}

fn collect_tail(stream: impl std::io::Read, mut each: impl FnMut(&str)) -> VecDeque<String> {
    let mut tail = VecDeque::new();
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        each(&line);
        if tail.len() == 30 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    tail
}

fn io_failure(path: &Path, err: std::io::Error) -> Unavailable {
    Unavailable::Failed(format!("cannot write {}: {err}", path.display()))
}

pub fn sources_list(mirror: &str) -> String {
    [SUITE, BACKPORTS]
        .iter()
        .map(|suite| format!("deb [signed-by={KEYRING}] {mirror} {suite} main\n"))
        .collect()
}

/// Every path apt would otherwise take from the host, pointed into `dir`.
pub fn apt_conf(dir: &Path) -> String {
    let at = |sub: &str| dir.join(sub).display().to_string();
    let settings = [
        ("Dir::Etc::main", "/dev/null".to_string()),
        ("Dir::Etc::Parts", at("etc/parts")),
        ("Dir::Etc::SourceList", at("etc/sources.list")),
        ("Dir::Etc::SourceParts", at("etc/sources.list.d")),
        ("Dir::Etc::Preferences", at("etc/preferences")),
        ("Dir::Etc::PreferencesParts", at("etc/preferences.d")),
        ("Dir::State", at("state")),
        ("Dir::State::status", at("state/status")),
        ("Dir::Cache", at("cache")),
        ("Acquire::Languages", "none".to_string()),
        ("Acquire::Retries", "3".to_string()),
        ("APT::Install-Recommends", "false".to_string()),
        // Root's apt would hand downloads to the `_apt` user, who cannot write here.
        ("APT::Sandbox::User", "root".to_string()),
    ];
    settings.iter().map(|(key, value)| format!("{key} \"{value}\";\n")).collect()
}

/// apt's `N newly installed` count.
fn newly_installed(line: &str) -> Option<usize> {
    let (before, _) = line.split_once(" newly installed")?;
    before.rsplit(", ").next()?.trim().parse().ok()
}

/// The most telling line of apt's output, without its `E:`/`W:` tag: the
/// first thing it failed to fetch and why, else its last error, else its
/// last warning.
fn last_error(tail: &[String]) -> Option<&str> {
    let tagged = |line: &String| line.starts_with("E:") || line.starts_with("W:");
    let find = |wanted: &dyn Fn(&String) -> bool| tail.iter().rev().find(|line| wanted(line));
    // The first failed fetch names the first unreachable URL and the reason in full.
    let line = tail
        .iter()
        .find(|line| tagged(line) && line.contains("Failed to fetch"))
        .or_else(|| find(&|line| line.starts_with("E:")))
        .or_else(|| find(&|line| line.starts_with("W:")))?;
    Some(line[2..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_keeps_apt_away_from_the_host() {
        let conf = apt_conf(Path::new("/cache/apt"));
        assert!(conf.contains("Dir::Etc::Parts \"/cache/apt/etc/parts\";\n"), "{conf}");
        assert!(conf.contains("Dir::State::status \"/cache/apt/state/status\";\n"), "{conf}");
        assert!(conf.contains("Dir::Etc::main \"/dev/null\";\n"), "{conf}");
        assert!(!conf.contains("/etc/apt"), "{conf}");
        let sources = sources_list("http://mirror/debian");
        assert_eq!(
            sources.lines().collect::<Vec<_>>(),
            [
                format!("deb [signed-by={KEYRING}] http://mirror/debian bookworm main"),
                format!("deb [signed-by={KEYRING}] http://mirror/debian bookworm-backports main"),
            ]
        );
    }

    #[test]
    fn apt_output_is_read_for_counts_and_errors() {
        assert_eq!(
            newly_installed("0 upgraded, 115 newly installed, 0 to remove and 0 not upgraded."),
            Some(115)
        );
        assert_eq!(newly_installed("Need to get 155 MB of archives."), None);
        let tail: Vec<String> = [
            "Get:1 http://x bookworm InRelease",
            "W: Failed to fetch http://x/InRelease  Could not connect",
            "W: Failed to fetch http://x/Other  Unable to connect",
            "E: Some index files failed to download.",
            "W: later warning",
            "E: Write error - write (28: No space left on device)",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(last_error(&tail), Some("Failed to fetch http://x/InRelease  Could not connect"));
        let without_fetches = [tail[0].clone(), tail[3].clone(), tail[4].clone()];
        assert_eq!(last_error(&without_fetches), Some("Some index files failed to download."));
        assert_eq!(last_error(&tail[4..5]), Some("later warning"));
        assert_eq!(last_error(&tail[4..]), Some("Write error - write (28: No space left on device)"));
        assert_eq!(last_error(&tail[..1]), None);
    }
}
