//! The images' sizes as built and stripped: a copy is stripped with the
//! first tool found (binutils' `strip`, LLVM's `llvm-strip` on PATH or from
//! rustup's `llvm-tools`, or `objcopy --strip-all`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::results::ImageSize;

pub fn measure(label: &'static str, path: &Path, scratch_dir: &Path) -> ImageSize {
    let bytes = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let stripped = strip_copy(path, &scratch_dir.join(format!("{label}.stripped")));
    ImageSize { label, path: path.to_path_buf(), bytes, stripped }
}

/// The candidate tools, each with the arguments before `<output> <input>`.
fn tools() -> Vec<(PathBuf, &'static [&'static str])> {
    let mut tools: Vec<(PathBuf, &'static [&'static str])> = vec![
        (PathBuf::from("strip"), &["--strip-all", "-o"]),
        (PathBuf::from("llvm-strip"), &["--strip-all", "-o"]),
    ];
    if let Some(llvm) = rustup_llvm_strip() {
        tools.push((llvm, &["--strip-all", "-o"]));
    }
    tools
}

/// rustup's `llvm-tools` component keeps its binaries in the sysroot.
fn rustup_llvm_strip() -> Option<PathBuf> {
    let output = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    let path = sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-strip");
    path.is_file().then_some(path)
}

fn strip_copy(input: &Path, output: &Path) -> Result<u64, String> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    let mut tried = Vec::new();
    for (tool, args) in tools() {
        let ran = Command::new(&tool).args(args).arg(output).arg(input).output();
        match ran {
            Ok(done) if done.status.success() => {
                return std::fs::metadata(output).map(|meta| meta.len()).map_err(|err| err.to_string());
            }
            Ok(done) => tried.push(format!(
                "{} failed: {}",
                tool.display(),
                String::from_utf8_lossy(&done.stderr).trim()
            )),
            Err(_) => tried.push(format!("no {}", tool.display())),
        }
    }
    let objcopy = Command::new("objcopy").arg("--strip-all").arg(input).arg(output).output();
    match objcopy {
        Ok(done) if done.status.success() => {
            std::fs::metadata(output).map(|meta| meta.len()).map_err(|err| err.to_string())
        }
        _ => {
            tried.push("no working objcopy".into());
            Err(format!("{} (install binutils)", tried.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_image_reports_why_it_has_no_stripped_size() {
        let dir = std::env::temp_dir().join(format!("xtask-sizes-{}", std::process::id()));
        let size = measure("guest", Path::new("/nonexistent/kernel"), &dir);
        assert_eq!(size.bytes, 0);
        assert!(size.stripped.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
