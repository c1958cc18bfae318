//! Xenstore path rules (`docs/misc/xenstore.txt`): absolute paths start
//! with `/`, use only ASCII alphanumerics and `-/_@`, have no `//` and no
//! trailing `/` (except the root). Relative paths are taken from the
//! caller's home `/local/domain/<domid>`.

use alloc::format;
use alloc::string::String;

use hypercalls::abi::io::xs_wire::{XsdError, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};

use super::errors::EINVAL;

/// A request path resolved to an absolute one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedPath {
    pub absolute: String,
    /// The caller named it relative to its home, so events are reported
    /// relative too.
    pub relative: bool,
}

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

fn validate_absolute(path: &str) -> Result<(), XsdError> {
    let well_formed = path == "/" || (!path.ends_with('/') && !path.contains("//"));
    if !path.starts_with('/')
        || path.len() > XENSTORE_ABS_PATH_MAX
        || !well_formed
        || !path.bytes().all(valid_char)
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// Resolves and validates a path from a request.
pub(crate) fn resolve(home: &str, raw: &[u8]) -> Result<ResolvedPath, XsdError> {
    let text = core::str::from_utf8(raw).map_err(|_| EINVAL)?;
    if text.starts_with('/') {
        validate_absolute(text)?;
        return Ok(ResolvedPath { absolute: String::from(text), relative: false });
    }
    if text.is_empty() || text.len() > XENSTORE_REL_PATH_MAX {
        return Err(EINVAL);
    }
    let absolute = format!("{home}/{text}");
    validate_absolute(&absolute)?;
    Ok(ResolvedPath { absolute, relative: true })
}

/// Whether `name` is a valid special watch path such as `@releaseDomain`.
pub(crate) fn is_special(name: &[u8]) -> bool {
    name.first() == Some(&b'@') && name.len() <= XENSTORE_ABS_PATH_MAX && name.iter().all(|&c| valid_char(c))
}

/// `child` is `parent` or below it (every path is below `/`).
pub(crate) fn is_child(child: &str, parent: &str) -> bool {
    parent == "/"
        || child == parent
        || (child.len() > parent.len() && child.starts_with(parent) && child.as_bytes()[parent.len()] == b'/')
}

/// The parent of a non-root absolute path.
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

/// `path` as the caller should see it: relative to `home` if it used a
/// relative path (and `path` is below home), absolute otherwise.
pub(crate) fn display<'p>(path: &'p str, relative: bool, home: &str) -> &'p str {
    if relative {
        if let Some(rest) = path.strip_prefix(home).and_then(|rest| rest.strip_prefix('/')) {
            return rest;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "/local/domain/3";

    #[test]
    fn absolute_and_relative_paths_resolve() {
        assert_eq!(
            resolve(HOME, b"/a/b-c_d@e"),
            Ok(ResolvedPath { absolute: "/a/b-c_d@e".into(), relative: false })
        );
        assert_eq!(resolve(HOME, b"/"), Ok(ResolvedPath { absolute: "/".into(), relative: false }));
        assert_eq!(
            resolve(HOME, b"device/vif/0"),
            Ok(ResolvedPath { absolute: "/local/domain/3/device/vif/0".into(), relative: true })
        );
    }

    #[test]
    fn malformed_paths_are_einval() {
        for bad in [&b""[..], b"/a/", b"a/", b"/a//b", b"//", b"/a b", b"/a.b", b"/\xff", b"a\0b", b"/a\0"] {
            assert_eq!(resolve(HOME, bad), Err(EINVAL), "{:?}", bad);
        }
    }

    #[test]
    fn length_limits_apply() {
        let longest = format!("/{}", "x".repeat(XENSTORE_ABS_PATH_MAX - 1));
        assert!(resolve(HOME, longest.as_bytes()).is_ok());
        let too_long = format!("/{}", "x".repeat(XENSTORE_ABS_PATH_MAX));
        assert_eq!(resolve(HOME, too_long.as_bytes()), Err(EINVAL));
        let relative = "r".repeat(XENSTORE_REL_PATH_MAX + 1);
        assert_eq!(resolve(HOME, relative.as_bytes()), Err(EINVAL));
    }

    #[test]
    fn child_and_parent_relations() {
        assert!(is_child("/a/b", "/a"));
        assert!(is_child("/a", "/a"));
        assert!(is_child("/a", "/"));
        assert!(!is_child("/ab", "/a"));
        assert!(!is_child("/a", "/a/b"));
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn relative_display_strips_the_home() {
        assert_eq!(display("/local/domain/3/x/y", true, HOME), "x/y");
        assert_eq!(display("/local/domain/3/x/y", false, HOME), "/local/domain/3/x/y");
        assert_eq!(display("/other", true, HOME), "/other");
    }

    #[test]
    fn special_watch_names() {
        assert!(is_special(b"@releaseDomain"));
        assert!(!is_special(b"releaseDomain"));
        assert!(!is_special(b"@bad name"));
    }
}
