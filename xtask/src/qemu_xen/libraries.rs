//! Which files a dynamically linked program needs, found inside an unpacked
//! root directory (not the host's): its ELF interpreter and the transitive
//! closure of its `DT_NEEDED` libraries.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Component, Path, PathBuf};

use elf::abi::{DT_NEEDED, PT_INTERP};
use elf::endian::AnyEndian;
use elf::ElfBytes;

/// Where Debian's dynamic loader looks (its multiarch directories first),
/// relative to the root.
const LIBRARY_DIRS: &[&str] =
    &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"];

/// A symlink chain longer than this is a loop.
const MAX_SYMLINK_HOPS: usize = 40;

/// What one ELF file asks of the dynamic loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicNeeds {
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames in order.
    pub needed: Vec<String>,
}

/// Reads the interpreter and the needed sonames; a static binary needs nothing.
pub fn dynamic_needs(bytes: &[u8]) -> Result<DynamicNeeds, String> {
    let file =
        ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|err| format!("not an ELF file: {err}"))?;
    let mut needs = DynamicNeeds::default();
    if let Some(segments) = file.segments() {
        if let Some(interp) = segments.iter().find(|segment| segment.p_type == PT_INTERP) {
            let data = file.segment_data(&interp).map_err(|err| format!("bad PT_INTERP: {err}"))?;
            let path = data.split(|&byte| byte == 0).next().unwrap_or_default();
            needs.interpreter = Some(String::from_utf8_lossy(path).into_owned());
        }
    }
    let common = file.find_common_data().map_err(|err| format!("bad section headers: {err}"))?;
    let Some(dynamic) = common.dynamic else { return Ok(needs) };
    let strings = common.dynsyms_strs.ok_or("a dynamic section but no .dynstr")?;
    for entry in dynamic.iter().filter(|entry| entry.d_tag == DT_NEEDED) {
        let name = strings.get(entry.d_val() as usize).map_err(|err| format!("bad DT_NEEDED name: {err}"))?;
        needs.needed.push(name.to_string());
    }
    Ok(needs)
}

/// The files `program` (a path relative to `root`) needs, as
/// (path in the root, contents with symlinks followed), interpreter first.
pub fn closure(root: &Path, program: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let main = read_in_root(root, program)?;
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(program.to_string(), main)]);
    let mut first = true;
    while let Some((path, bytes)) = queue.pop_front() {
        let needs = dynamic_needs(&bytes).map_err(|err| format!("{path}: {err}"))?;
        if first {
            if let Some(interpreter) = &needs.interpreter {
                let relative = interpreter.trim_start_matches('/');
                files.push((relative.to_string(), read_in_root(root, relative)?));
            }
            first = false;
        }
        for soname in needs.needed {
            if found.contains_key(&soname) {
                continue;
            }
            let location = find_library(root, &soname)
                .ok_or_else(|| format!("{path} needs {soname}, which no unpacked package provides"))?;
            let contents = read_in_root(root, &location)?;
            found.insert(soname, location.clone());
            files.push((location.clone(), contents.clone()));
            queue.push_back((location, contents));
        }
    }
    Ok(files)
}

fn find_library(root: &Path, soname: &str) -> Option<String> {
    LIBRARY_DIRS
        .iter()
        .map(|dir| format!("{dir}/{soname}"))
        .find(|candidate| resolve_in_root(root, candidate).is_ok_and(|real| root.join(real).is_file()))
}

/// Reads `relative` under `root`, following symlinks as if `root` were `/`.
pub fn read_in_root(root: &Path, relative: &str) -> Result<Vec<u8>, String> {
    let real = resolve_in_root(root, relative)?;
    std::fs::read(root.join(&real)).map_err(|err| format!("cannot read {}: {err}", root.join(real).display()))
}

/// The symlink-free path (relative to `root`) that `relative` names when
/// `root` is treated as `/`: absolute link targets stay inside the root.
pub fn resolve_in_root(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let mut pending: VecDeque<String> = split(relative).collect();
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(format!("too many symlinks resolving {relative}"));
                }
                let target = std::fs::read_link(&full)
                    .map_err(|err| format!("cannot read link {}: {err}", full.display()))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                for (index, piece) in split(&target).enumerate() {
                    pending.insert(index, piece);
                }
            }
            Ok(_) => resolved = candidate,
            Err(err) => return Err(format!("{relative}: {} is missing ({err})", candidate.display())),
        }
    }
    if resolved.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("{relative} resolves outside the root"));
    }
    Ok(resolved)
}

fn split(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/').filter(|part| !part.is_empty() && *part != ".").map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-libraries-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn this_test_binary_needs_libc_through_its_interpreter() {
        // The test binary is an ordinary dynamically linked glibc program.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let needs = dynamic_needs(&bytes).unwrap();
        let interpreter = needs.interpreter.expect("a PT_INTERP");
        assert!(interpreter.starts_with('/') && interpreter.contains("ld-linux"), "{interpreter}");
        assert!(needs.needed.iter().any(|soname| soname.starts_with("libc.so")), "{:?}", needs.needed);
    }

    #[test]
    fn non_elf_input_is_an_error() {
        assert!(dynamic_needs(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = scratch("resolve");
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/libz.so.1.2"), b"zlib").unwrap();
        symlink("libz.so.1.2", root.join("lib/x86_64-linux-gnu/libz.so.1")).unwrap();
        // Absolute: must land in the root, not on the host's /lib.
        symlink("/lib/x86_64-linux-gnu/libz.so.1", root.join("lib64/libz")).unwrap();
        symlink("../lib/x86_64-linux-gnu/./libz.so.1", root.join("lib64/relative")).unwrap();
        symlink("loop-b", root.join("lib64/loop-a")).unwrap();
        symlink("loop-a", root.join("lib64/loop-b")).unwrap();

        let expected = PathBuf::from("lib/x86_64-linux-gnu/libz.so.1.2");
        assert_eq!(resolve_in_root(&root, "lib64/libz").unwrap(), expected);
        assert_eq!(resolve_in_root(&root, "/lib64/relative").unwrap(), expected);
        assert_eq!(read_in_root(&root, "lib64/libz").unwrap(), b"zlib");
        assert_eq!(find_library(&root, "libz.so.1").as_deref(), Some("lib/x86_64-linux-gnu/libz.so.1"));
        assert_eq!(find_library(&root, "libnothere.so.9"), None);
        assert!(resolve_in_root(&root, "lib64/loop-a").unwrap_err().contains("too many symlinks"));
        assert!(resolve_in_root(&root, "lib64/missing").unwrap_err().contains("missing"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_library_is_named() {
        let root = scratch("closure");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        // A real dynamic ELF whose libraries this fake root lacks.
        std::fs::copy(std::env::current_exe().unwrap(), root.join("usr/bin/prog")).unwrap();
        let interpreter =
            dynamic_needs(&std::fs::read(root.join("usr/bin/prog")).unwrap()).unwrap().interpreter.unwrap();
        let interp_path = root.join(interpreter.trim_start_matches('/'));
        std::fs::create_dir_all(interp_path.parent().unwrap()).unwrap();
        std::fs::write(&interp_path, b"loader").unwrap();
        let err = closure(&root, "usr/bin/prog").unwrap_err();
        assert!(
            err.starts_with("usr/bin/prog needs lib") && err.contains("which no unpacked package provides"),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
