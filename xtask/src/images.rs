//! Building the bootable images: the guest kernel now, the bundled
//! hypervisor once it has a bare-metal binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo_program, target_dir, workspace_root, XtaskError};

/// The bare-metal target both images are built for (built in, soft-float, no red zone).
pub const BARE_METAL_TARGET: &str = "x86_64-unknown-none";

/// Which cargo profile to build the images with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

impl Profile {
    /// The directory name cargo uses for the profile under `target/<triple>/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

/// The images a run can boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The guest kernel ELF (PVH entry for native and QEMU-Xen boots, PV entry for hypervisors).
    pub kernel: PathBuf,
    /// The bundled hypervisor ELF; `None` until the `hypervisor` crate has a bootable binary.
    pub hypervisor: Option<PathBuf>,
}

/// Where cargo puts a bare-metal binary of this workspace.
pub fn bare_metal_binary(profile: Profile, name: &str) -> PathBuf {
    target_dir().join(BARE_METAL_TARGET).join(profile.dir_name()).join(name)
}

/// Builds every image that exists and returns their paths.
pub fn build(profile: Profile) -> Result<Images, XtaskError> {
    let kernel = build_bare_metal_binary(profile, "kernel", "kernel")?;
    let hypervisor = build_bare_metal_binary(profile, "hypervisor", "hypervisor")?;
    Ok(Images { kernel, hypervisor: Some(hypervisor) })
}

/// Builds one image (`kernel` or `hypervisor`, each the binary of the
/// package of the same name) and returns its path.
pub fn build_one(profile: Profile, name: &str) -> Result<PathBuf, XtaskError> {
    build_bare_metal_binary(profile, name, name)
}

fn build_bare_metal_binary(profile: Profile, package: &str, binary: &str) -> Result<PathBuf, XtaskError> {
    let mut cargo = Command::new(cargo_program());
    cargo
        .current_dir(workspace_root())
        .args(["build", "-p", package, "--bin", binary, "--target"])
        .arg(BARE_METAL_TARGET);
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    let status = cargo.status().map_err(|err| XtaskError::failed(format!("cannot run cargo: {err}")))?;
    if !status.success() {
        return Err(XtaskError::failed(format!(
            "building `{package}` for {BARE_METAL_TARGET} failed ({status})"
        )));
    }
    let path = bare_metal_binary(profile, binary);
    if !path.is_file() {
        return Err(XtaskError::failed(format!(
            "cargo reported success but {} does not exist",
            path.display()
        )));
    }
    Ok(path)
}

/// One line per image: its path relative to the workspace, and its size.
pub fn describe(images: &Images) -> Vec<String> {
    let mut lines = vec![describe_file("kernel", &images.kernel)];
    match &images.hypervisor {
        Some(path) => lines.push(describe_file("hypervisor", path)),
        None => lines.push("hypervisor: not built yet (no bare-metal binary)".to_string()),
    }
    lines
}

fn describe_file(label: &str, path: &Path) -> String {
    let shown = path.strip_prefix(workspace_root()).unwrap_or(path);
    match std::fs::metadata(path) {
        Ok(meta) => format!(
            "{label}: {} ({} bytes, {:.1} KiB)",
            shown.display(),
            meta.len(),
            meta.len() as f64 / 1024.0
        ),
        Err(err) => format!("{label}: {} (unreadable: {err})", shown.display()),
    }
}
