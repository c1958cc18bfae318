//! A writer for the "newc" cpio format, the only archive format the Linux
//! kernel unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Written here rather than by shelling out to `cpio`, which Debian does not
//! install by default. Every entry has uid/gid 0 and mtime 0, so the same
//! inputs give the same bytes.

use std::collections::BTreeSet;
use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
/// The header is the magic plus 13 eight-digit hex fields.
pub const HEADER_LEN: usize = 6 + 13 * 8;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// Streams entries into `out`; parent directories are created on demand,
/// each once, before anything inside them.
pub struct CpioWriter<W: Write> {
    out: W,
    next_inode: u32,
    written: u64,
    directories: BTreeSet<String>,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter { out, next_inode: 1, written: 0, directories: BTreeSet::new() }
    }

    /// A directory (and its parents). `path` is relative to the archive root.
    pub fn directory(&mut self, path: &str, permissions: u32) -> io::Result<()> {
        let path = normalize(path)?;
        self.parents(&path)?;
        if self.directories.insert(path.clone()) {
            self.entry(&path, S_IFDIR | (permissions & 0o7777), 2, (0, 0), &[])?;
        }
        Ok(())
    }

    pub fn file(&mut self, path: &str, permissions: u32, contents: &[u8]) -> io::Result<()> {
        let path = normalize(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFREG | (permissions & 0o7777), 1, (0, 0), contents)
    }

    pub fn char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) -> io::Result<()> {
        let path = normalize(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFCHR | (permissions & 0o7777), 1, (major, minor), &[])
    }

    /// Writes the trailer and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.raw_entry(TRAILER, 0, 0, 1, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let parent = path[..end].to_string();
            if self.directories.insert(parent.clone()) {
                self.entry(&parent, S_IFDIR | 0o755, 2, (0, 0), &[])?;
            }
            end += 1;
        }
        Ok(())
    }

    fn entry(&mut self, path: &str, mode: u32, links: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.raw_entry(path, inode, mode, links, rdev, data)
    }

    fn raw_entry(
        &mut self,
        name: &str,
        inode: u32,
        mode: u32,
        links: u32,
        (rdev_major, rdev_minor): (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: newc entries are limited to 4 GiB"))
        })?;
        let name_len = name.len() as u32 + 1;
        let fields = [inode, mode, 0, 0, links, 0, size, 0, 0, rdev_major, rdev_minor, name_len, 0];
        let mut header = Vec::with_capacity(HEADER_LEN + name.len() + 4);
        header.extend_from_slice(MAGIC);
        for field in fields {
            header.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        header.extend_from_slice(name.as_bytes());
        header.push(0);
        self.write_padded(&header)?;
        self.write_padded(data)
    }

    /// Writes `bytes` and pads the archive to the next multiple of four.
    fn write_padded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        let padding = (4 - (self.written % 4) as usize) % 4;
        self.out.write_all(&[0; 3][..padding])?;
        self.written += padding as u64;
        Ok(())
    }
}

/// Archive paths are relative, with no empty, `.` or `..` components.
fn normalize(path: &str) -> io::Result<String> {
    let trimmed = path.trim_start_matches('/');
    let bad =
        trimmed.is_empty() || trimmed.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad archive path `{path}`")));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed entry: (name, mode, rdev, data).
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// An independent reader of the format, strict about magic and alignment.
    fn parse(archive: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(at % 4, 0, "entry at {at} is not 4-byte aligned");
            assert_eq!(&archive[at..at + 6], MAGIC);
            let field = |index: usize| {
                let start = at + 6 + index * 8;
                u32::from_str_radix(std::str::from_utf8(&archive[start..start + 8]).unwrap(), 16).unwrap()
            };
            let (mode, size, rdev, name_len) =
                (field(1), field(6) as usize, (field(9), field(10)), field(11));
            let name_start = at + HEADER_LEN;
            let name_end = name_start + name_len as usize - 1;
            assert_eq!(archive[name_end], 0, "names end in NUL");
            let name = String::from_utf8(archive[name_start..name_end].to_vec()).unwrap();
            let data_start = (name_end + 1).next_multiple_of(4);
            let data = archive[data_start..data_start + size].to_vec();
            at = (data_start + size).next_multiple_of(4);
            if name == TRAILER {
                assert_eq!(at, archive.len(), "nothing follows the trailer");
                return entries;
            }
            entries.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn entries_round_trip_with_parents_first_and_aligned() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.file("usr/bin/tool", 0o755, b"12345").unwrap();
        writer.file("/usr/bin/other", 0o644, b"").unwrap();
        writer.char_device("dev/console", 0o600, 5, 1).unwrap();
        writer.directory("usr", 0o755).unwrap();
        let archive = writer.finish().unwrap();
        let entries = parse(&archive);
        let names: Vec<&str> = entries.iter().map(|entry| entry.0.as_str()).collect();
        assert_eq!(names, ["usr", "usr/bin", "usr/bin/tool", "usr/bin/other", "dev", "dev/console"]);
        assert_eq!(entries[0].1, S_IFDIR | 0o755);
        assert_eq!((entries[2].1, entries[2].3.as_slice()), (S_IFREG | 0o755, &b"12345"[..]));
        assert_eq!(entries[3].3, b"");
        assert_eq!((entries[5].1, entries[5].2), (S_IFCHR | 0o600, (5, 1)));
    }

    #[test]
    fn a_single_file_has_the_documented_layout() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.file("a", 0o644, b"xyz").unwrap();
        let archive = writer.finish().unwrap();
        // inode 1, mode 0100644, nlink 1, size 3, namesize 2 ("a" and its NUL).
        let header = "070701\
            00000001000081a4000000000000000000000001000000000000000300000000\
            00000000000000000000000000000002\
            00000000";
        assert_eq!(&archive[..HEADER_LEN], header.as_bytes());
        assert_eq!(&archive[HEADER_LEN..HEADER_LEN + 2], b"a\0");
        // 110 header bytes + 2 name bytes is already a multiple of four: no padding.
        assert_eq!(&archive[HEADER_LEN + 2..HEADER_LEN + 5], b"xyz");
        assert_eq!(archive.len() % 4, 0);
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut writer = CpioWriter::new(Vec::new());
        for path in ["", "/", "a//b", "a/../b", "./a"] {
            assert!(writer.file(path, 0o644, b"").is_err(), "{path:?}");
        }
    }
}
