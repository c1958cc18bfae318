//! Does this host's KVM run Xen HVM guests? Asked of QEMU itself: it starts
//! a paused machine with Xen emulation and quits at once, which fails during
//! accelerator setup when KVM lacks KVM_CAP_XEN_HVM (or is absent).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::XEN_ACCEL;

/// KVM start-up can be slow (seconds on these PVM-based hosts); a hang is a "no".
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvmXen {
    Available,
    /// Why not, in QEMU's words when it gave any.
    Missing(String),
}

/// The answer, asked once per process.
pub fn kvm_xen(qemu: &Path) -> KvmXen {
    static ANSWER: OnceLock<KvmXen> = OnceLock::new();
    ANSWER.get_or_init(|| ask_qemu(qemu)).clone()
}

fn ask_qemu(qemu: &Path) -> KvmXen {
    if !Path::new("/dev/kvm").exists() {
        return KvmXen::Missing("no /dev/kvm".into());
    }
    let spawned = Command::new(qemu)
        .args(["-M", "pc", "-accel", XEN_ACCEL, "-display", "none", "-nodefaults", "-S", "-monitor", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return KvmXen::Missing(format!("cannot start {}: {err}", qemu.display())),
    };
    // QEMU reads this only once the machine exists, i.e. once KVM accepted Xen mode.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"quit\n");
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < PROBE_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    match status {
        Some(status) if status.success() => KvmXen::Available,
        Some(status) => {
            KvmXen::Missing(reason(&stderr).unwrap_or_else(|| format!("QEMU's probe failed ({status})")))
        }
        None => KvmXen::Missing(format!("QEMU's probe did not finish in {} s", PROBE_TIMEOUT.as_secs())),
    }
}

/// QEMU's first error line, without the program name and the echoed option.
pub fn reason(stderr: &str) -> Option<String> {
    let line = stderr.lines().map(str::trim).find(|line| !line.is_empty() && !line.contains("warning:"))?;
    let mut rest = line;
    while let Some((head, tail)) = rest.split_once(": ") {
        if head.starts_with("qemu-system") || head.starts_with('-') {
            rest = tail;
        } else {
            break;
        }
    }
    Some(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_drop_the_program_and_the_echoed_option() {
        let stderr = "qemu-system-x86_64: -accel kvm,xen-version=0x4000a,kernel-irqchip=split: kvm: Xen HVM guest support not present or insufficient\n\
                      qemu-system-x86_64: -accel kvm,xen-version=0x4000a,kernel-irqchip=split: failed to initialize kvm: Function not implemented\n";
        assert_eq!(reason(stderr).as_deref(), Some("kvm: Xen HVM guest support not present or insufficient"));
        let permission = "qemu-system-x86_64: warning: host doesn't support requested feature\n\
                          Could not access KVM kernel module: Permission denied\n";
        assert_eq!(
            reason(permission).as_deref(),
            Some("Could not access KVM kernel module: Permission denied")
        );
        assert_eq!(reason("\n\n"), None);
    }
}
