//! The L1 kernel's modules the harness loads, in dependency order, read from
//! the unpacked Debian kernel package. Dependencies come from each module's
//! own `.modinfo` (`depends=`), so no `depmod` run is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use elf::endian::AnyEndian;
use elf::ElfBytes;

/// A module's name as the kernel knows it: `-` and `_` are the same.
pub fn canonical_name(name: &str) -> String {
    name.replace('-', "_")
}

/// One module, decompressed, ready for `insmod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub depends: Vec<String>,
    pub object: Vec<u8>,
}

/// The value of `key` in a `.modinfo` section (NUL-separated `key=value` strings).
pub fn modinfo_value(section: &[u8], key: &str) -> Option<String> {
    section.split(|&byte| byte == 0).find_map(|field| {
        let field = std::str::from_utf8(field).ok()?;
        let (name, value) = field.split_once('=')?;
        (name == key).then(|| value.to_string())
    })
}

/// The modules named in a `depends=` value (comma-separated, possibly empty).
pub fn parse_depends(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|name| !name.is_empty()).map(canonical_name).collect()
}

/// Reads `depends=` from a module object.
pub fn module_depends(object: &[u8]) -> Result<Vec<String>, String> {
    let file =
        ElfBytes::<AnyEndian>::minimal_parse(object).map_err(|err| format!("not an ELF object: {err}"))?;
    let header = file
        .section_header_by_name(".modinfo")
        .map_err(|err| format!("bad section headers: {err}"))?
        .ok_or("no .modinfo section")?;
    let (data, _) = file.section_data(&header).map_err(|err| format!("bad .modinfo: {err}"))?;
    Ok(modinfo_value(data, "depends").map(|value| parse_depends(&value)).unwrap_or_default())
}

/// `wanted` and everything they depend on, each after its dependencies.
/// `load` fetches one module by canonical name.
pub fn load_order(
    wanted: &[&str],
    mut load: impl FnMut(&str) -> Result<Module, String>,
) -> Result<Vec<Module>, String> {
    let mut ordered = Vec::new();
    let mut done = BTreeSet::new();
    for name in wanted {
        visit(&canonical_name(name), &mut load, &mut done, &mut Vec::new(), &mut ordered)?;
    }
    Ok(ordered)
}

fn visit(
    name: &str,
    load: &mut impl FnMut(&str) -> Result<Module, String>,
    done: &mut BTreeSet<String>,
    path: &mut Vec<String>,
    ordered: &mut Vec<Module>,
) -> Result<(), String> {
    if done.contains(name) {
        return Ok(());
    }
    if path.iter().any(|seen| seen == name) {
        return Err(format!("module dependency cycle: {} -> {name}", path.join(" -> ")));
    }
    let module = load(name)?;
    path.push(name.to_string());
    for dependency in &module.depends {
        visit(dependency, load, done, path, ordered)?;
    }
    path.pop();
    done.insert(name.to_string());
    ordered.push(module);
    Ok(())
}

/// Every module file under `<root>/lib/modules/<version>/kernel`, by canonical name.
pub fn index_modules(modules_dir: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut index = BTreeMap::new();
    let mut stack = vec![modules_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|err| format!("cannot list {}: {err}", dir.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = module_file_name(&path) {
                index.insert(canonical_name(&name), path);
            }
        }
    }
    Ok(index)
}

/// `kvm-amd.ko.xz` -> `kvm-amd`; not a module file -> `None`.
fn module_file_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|suffix| file.strip_suffix(suffix))?;
    Some(stem.to_string())
}

/// The module object, decompressed with the static busybox from the unpacked
/// packages (so the host needs no xz), or with the host's zstd for `.zst`.
pub fn read_module(path: &Path, busybox: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let name = path.to_string_lossy();
    let mut command = if name.ends_with(".ko") {
        return std::fs::read(path).map_err(|err| format!("cannot read {shown}: {err}"));
    } else if name.ends_with(".xz") {
        let mut command = Command::new(busybox);
        command.arg("unxz");
        command
    } else if name.ends_with(".gz") {
        let mut command = Command::new(busybox);
        command.arg("gunzip");
        command
    } else {
        let mut command = Command::new("zstd");
        command.arg("-q");
        command
    };
    let output =
        command.arg("-dc").arg(path).output().map_err(|err| format!("cannot decompress {shown}: {err}"))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        return Err(format!("cannot decompress {shown}: {}", why.trim()));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_fields_are_found_by_exact_key() {
        let section = b"license=GPL\0depends=kvm,ccp\0retpoline=Y\0name=kvm_amd\0";
        assert_eq!(modinfo_value(section, "depends").as_deref(), Some("kvm,ccp"));
        assert_eq!(modinfo_value(section, "name").as_deref(), Some("kvm_amd"));
        assert_eq!(modinfo_value(section, "depend"), None);
        assert_eq!(parse_depends("kvm,ccp"), ["kvm", "ccp"]);
        assert_eq!(parse_depends("virtio-ring"), ["virtio_ring"]);
        assert!(parse_depends("").is_empty());
    }

    fn fake(name: &str, depends: &[&str]) -> Module {
        Module { name: name.into(), depends: depends.iter().map(|d| d.to_string()).collect(), object: vec![] }
    }

    fn names(modules: &[Module]) -> Vec<&str> {
        modules.iter().map(|module| module.name.as_str()).collect()
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let graph = |name: &str| match name {
            "kvm_amd" => Ok(fake(name, &["kvm", "ccp"])),
            "kvm" => Ok(fake(name, &["irqbypass"])),
            "ccp" | "irqbypass" | "virtio_blk" => Ok(fake(name, &[])),
            other => Err(format!("no module {other}")),
        };
        let order = load_order(&["virtio-blk", "kvm-amd", "kvm"], graph).unwrap();
        assert_eq!(names(&order), ["virtio_blk", "irqbypass", "kvm", "ccp", "kvm_amd"]);
    }

    #[test]
    fn cycles_and_missing_modules_are_errors() {
        let cyclic = |name: &str| match name {
            "a" => Ok(fake(name, &["b"])),
            _ => Ok(fake(name, &["a"])),
        };
        assert_eq!(load_order(&["a"], cyclic).unwrap_err(), "module dependency cycle: a -> b -> a");
        let missing =
            |name: &str| if name == "a" { Ok(fake(name, &["gone"])) } else { Err(format!("no {name}")) };
        assert_eq!(load_order(&["a"], missing).unwrap_err(), "no gone");
    }

    #[test]
    fn module_files_are_recognised_by_suffix() {
        let name = |file: &str| module_file_name(Path::new(file));
        assert_eq!(name("/x/kvm-amd.ko.xz").as_deref(), Some("kvm-amd"));
        assert_eq!(name("virtio_blk.ko").as_deref(), Some("virtio_blk"));
        assert_eq!(name("ccp.ko.zst").as_deref(), Some("ccp"));
        assert_eq!(name("modules.order"), None);
        assert_eq!(name("kvm.ko.xz.sig"), None);
    }

    #[test]
    fn an_object_without_modinfo_is_refused() {
        let host_binary = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(module_depends(&host_binary).unwrap_err(), "no .modinfo section");
        assert!(module_depends(b"not elf").unwrap_err().starts_with("not an ELF object"));
    }
}
