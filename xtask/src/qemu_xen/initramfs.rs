//! Assembling L1's initramfs from the unpacked Debian packages: busybox,
//! QEMU with exactly the libraries and firmware it needs, the KVM modules in
//! load order, and the init script. Everything runs from RAM, so L1 needs
//! no disk image, no package installation and no root privileges to build.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::cpio::CpioWriter;
use super::{libraries, modules};

/// The L1 init script; it reads everything about a run from fw_cfg.
pub const INIT_SCRIPT: &str = include_str!("l1_init.sh");
/// What L1 must load: fw_cfg (the run's parameters), virtio-blk (the guest
/// ELF) and KVM for AMD SVM, which QEMU TCG's `-cpu max` offers (with NPT).
pub const L1_MODULES: &[&str] = &["qemu_fw_cfg", "virtio_blk", "kvm_amd"];
pub const QEMU_PATH: &str = "usr/bin/qemu-system-x86_64";
/// Firmware and option ROMs: SeaBIOS, and QEMU's PVH and Linux boot ROMs.
const QEMU_DATA_DIRS: &[&str] = &["usr/share/qemu", "usr/share/seabios"];
const BUSYBOX_PATH: &str = "bin/busybox";

/// What went into the initramfs.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub modules: Vec<String>,
    pub libraries: usize,
    pub initramfs_bytes: u64,
}

/// L1's kernel image (`boot/vmlinuz-<version>`) in the unpacked packages.
pub fn find_kernel(root: &Path) -> Result<(PathBuf, String), String> {
    let boot = root.join("boot");
    let entries =
        std::fs::read_dir(&boot).map_err(|err| format!("no kernel unpacked ({}: {err})", boot.display()))?;
    let mut kernels: Vec<(PathBuf, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("vmlinuz-")?.to_string();
            Some((entry.path(), version))
        })
        .collect();
    kernels.sort();
    match kernels.len() {
        1 => Ok(kernels.remove(0)),
        0 => Err(format!("no vmlinuz-* in {}", boot.display())),
        _ => Err(format!("several kernels in {}: {:?}", boot.display(), kernels)),
    }
}

/// Writes `initramfs` from the packages unpacked in `root`.
pub fn assemble(root: &Path, kernel_version: &str, initramfs: &Path) -> Result<Assembled, String> {
    let busybox = root.join(BUSYBOX_PATH);
    let busybox_bytes = std::fs::read(&busybox).map_err(|err| format!("{}: {err}", busybox.display()))?;
    if libraries::dynamic_needs(&busybox_bytes)?.interpreter.is_some() {
        return Err(format!("{} is not statically linked", busybox.display()));
    }

    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|dir| root.join(dir).join(kernel_version).join("kernel"))
        .find(|dir| dir.is_dir())
        .ok_or_else(|| format!("no modules for Linux {kernel_version} in the unpacked packages"))?;
    let index = modules::index_modules(&modules_dir)?;
    let ordered = modules::load_order(L1_MODULES, |name| {
        let path = index.get(name).ok_or_else(|| format!("Linux {kernel_version} has no module {name}"))?;
        let object = modules::read_module(path, &busybox)?;
        let depends = modules::module_depends(&object).map_err(|err| format!("{}: {err}", path.display()))?;
        Ok(modules::Module { name: name.to_string(), depends, object })
    })?;

    let qemu_files = libraries::closure(root, QEMU_PATH)?;

    let file =
        File::create(initramfs).map_err(|err| format!("cannot create {}: {err}", initramfs.display()))?;
    let mut archive = CpioWriter::new(BufWriter::new(file));
    let write_error = |err: std::io::Error| format!("cannot write {}: {err}", initramfs.display());
    for dir in ["dev", "proc", "sys", "bin", "usr/bin"] {
        archive.directory(dir, 0o755).map_err(write_error)?;
    }
    archive.directory("tmp", 0o1777).map_err(write_error)?;
    // init's stdin/stdout/stderr: the kernel opens /dev/console before running it.
    archive.char_device("dev/console", 0o600, 5, 1).map_err(write_error)?;
    archive.file("init", 0o755, INIT_SCRIPT.as_bytes()).map_err(write_error)?;
    archive.file(BUSYBOX_PATH, 0o755, &busybox_bytes).map_err(write_error)?;
    for (position, module) in ordered.iter().enumerate() {
        // The init script loads /modules/*.ko in glob order, which this numbering makes the load order.
        let name = format!("modules/{:02}-{}.ko", position + 1, module.name);
        archive.file(&name, 0o644, &module.object).map_err(write_error)?;
    }
    archive.file(QEMU_PATH, 0o755, &libraries::read_in_root(root, QEMU_PATH)?).map_err(write_error)?;
    for (path, contents) in &qemu_files {
        archive.file(path, 0o755, contents).map_err(write_error)?;
    }
    for dir in QEMU_DATA_DIRS {
        for path in files_under(root, dir)? {
            // A dangling link (to a package we did not fetch) is firmware this machine never asks for.
            if let Ok(contents) = libraries::read_in_root(root, &path) {
                archive.file(&path, 0o644, &contents).map_err(write_error)?;
            }
        }
    }
    archive.finish().map_err(write_error)?;

    let initramfs_bytes = std::fs::metadata(initramfs).map(|meta| meta.len()).unwrap_or(0);
    Ok(Assembled {
        modules: ordered.into_iter().map(|module| module.name).collect(),
        libraries: qemu_files.len(),
        initramfs_bytes,
    })
}

/// Every non-directory under `root/dir`, as paths relative to `root`, sorted.
fn files_under(root: &Path, dir: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_string()];
    while let Some(current) = stack.pop() {
        let full = root.join(&current);
        let entries =
            std::fs::read_dir(&full).map_err(|err| format!("cannot list {}: {err}", full.display()))?;
        for entry in entries.flatten() {
            let path = format!("{current}/{}", entry.file_name().to_string_lossy());
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(_) => found.push(path),
                Err(_) => {}
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-initramfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn exactly_one_kernel_is_found() {
        let root = scratch("kernel");
        assert!(find_kernel(&root).unwrap_err().starts_with("no kernel unpacked"));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/config-6.12.9-amd64"), b"").unwrap();
        assert!(find_kernel(&root).unwrap_err().starts_with("no vmlinuz-*"));
        std::fs::write(root.join("boot/vmlinuz-6.12.9-amd64"), b"").unwrap();
        assert_eq!(
            find_kernel(&root).unwrap(),
            (root.join("boot/vmlinuz-6.12.9-amd64"), "6.12.9-amd64".into())
        );
        std::fs::write(root.join("boot/vmlinuz-6.1.0-amd64"), b"").unwrap();
        assert!(find_kernel(&root).unwrap_err().starts_with("several kernels"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn data_files_are_listed_recursively_and_sorted() {
        let root = scratch("data");
        std::fs::create_dir_all(root.join("usr/share/qemu/keymaps")).unwrap();
        std::fs::write(root.join("usr/share/qemu/pvh.bin"), b"").unwrap();
        std::fs::write(root.join("usr/share/qemu/keymaps/en-us"), b"").unwrap();
        std::os::unix::fs::symlink("../seabios/bios.bin", root.join("usr/share/qemu/bios.bin")).unwrap();
        assert_eq!(
            files_under(&root, "usr/share/qemu").unwrap(),
            ["usr/share/qemu/bios.bin", "usr/share/qemu/keymaps/en-us", "usr/share/qemu/pvh.bin"]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Sources the init script in the host's `sh` (it runs `main` only as PID 1)
    /// and asks it which debug-exit byte reproduces each L2 status on L0.
    #[test]
    fn the_init_script_maps_l2_statuses_to_l0_statuses() {
        let dir = scratch("init");
        let script = dir.join("init.sh");
        std::fs::write(&script, INIT_SCRIPT).unwrap();
        let byte_for = |status: u32| {
            let output = Command::new("sh")
                .arg("-c")
                .arg(format!(". '{}'; debug_exit_byte {status}", script.display()))
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).unwrap().trim().parse::<u32>().unwrap()
        };
        // QEMU turns byte b into exit status (b << 1) | 1.
        for verdict in [1, 33, 35, 37, 39, 127] {
            assert_eq!((byte_for(verdict) << 1) | 1, verdict, "status {verdict}");
        }
        // Not verdicts (a timeout, signals): "no verdict", status 1.
        for other in [2, 124, 129, 134, 139, 255] {
            assert_eq!(byte_for(other), 0, "status {other}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
