//! The hypervisor's command line: its own options, then `--`, then the
//! guest's command line, which is passed on untouched
//! (`mem=128 loglvl=debug -- selftest`). Without `--`, everything is the
//! guest's, so a bare `-append "selftest"` does what one expects.

use core::fmt;

/// Guest memory when `mem=` is not given.
pub const DEFAULT_GUEST_MEM_MIB: u64 = 128;
/// Guest memory must at least hold a kernel and its bootstrap region.
pub const MIN_GUEST_MEM_MIB: u64 = 8;
/// The hypervisor's frame accounting covers this much guest memory.
pub const MAX_GUEST_MEM_MIB: u64 = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    pub guest_mem_mib: u64,
    pub debug: bool,
    /// Measure the hypervisor's SYSCALL/SYSRET floor at boot (`bench`).
    pub bench: bool,
    /// The guest's initial ramdisk, a second boot module that the boot
    /// loader placed in machine memory (`initrd=<address>,<bytes>`): the
    /// guest finds it through `start_info.mod_start`/`mod_len`.
    pub initrd: Option<MachineRange>,
    pub guest_cmdline: &'a str,
}

/// A range of machine memory: its first byte and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineRange {
    pub start: u64,
    pub len: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    BadMemory(&'a str),
    MemoryOutOfRange(u64),
    BadInitrd(&'a str),
    Unknown(&'a str),
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMemory(text) => write!(f, "mem={text} is not a number of MiB"),
            Self::MemoryOutOfRange(mib) => write!(
                f,
                "mem={mib} is outside {MIN_GUEST_MEM_MIB}..={MAX_GUEST_MEM_MIB} MiB"
            ),
            Self::BadInitrd(text) => write!(
                f,
                "initrd={text} is not `<address>,<bytes>` (decimal or 0x-hex, a non-empty page-aligned range)"
            ),
            Self::Unknown(word) => write!(
                f,
                "unknown hypervisor option `{word}` (options: mem=<MiB>, loglvl=debug, bench, initrd=<address>,<bytes>; guest arguments go after `--`)"
            ),
        }
    }
}

pub fn parse(cmdline: &str) -> Result<Options<'_>, OptionError<'_>> {
    let cmdline = cmdline.trim_matches(char::from(0)).trim();
    let (own, guest) = match cmdline.split_once("--") {
        Some((own, guest)) if own.is_empty() || own.ends_with(' ') => (own, guest.trim()),
        _ => ("", cmdline),
    };
    let mut options = Options {
        guest_mem_mib: DEFAULT_GUEST_MEM_MIB,
        debug: false,
        bench: false,
        initrd: None,
        guest_cmdline: guest,
    };
    for word in own.split_ascii_whitespace() {
        match word.split_once('=') {
            Some(("mem", value)) => {
                let mib = value.parse().map_err(|_| OptionError::BadMemory(value))?;
                if !(MIN_GUEST_MEM_MIB..=MAX_GUEST_MEM_MIB).contains(&mib) {
                    return Err(OptionError::MemoryOutOfRange(mib));
                }
                options.guest_mem_mib = mib;
            }
            Some(("initrd", value)) => {
                options.initrd = Some(parse_range(value).ok_or(OptionError::BadInitrd(value))?)
            }
            Some(("loglvl", "debug")) => options.debug = true,
            Some(("loglvl", _)) => options.debug = false,
            None if word == "bench" => options.bench = true,
            _ => return Err(OptionError::Unknown(word)),
        }
    }
    Ok(options)
}

/// `<address>,<bytes>`: a page-aligned start, a non-empty length, and no
/// wrap-around.
fn parse_range(text: &str) -> Option<MachineRange> {
    let (start, len) = text.split_once(',')?;
    let (start, len) = (parse_number(start)?, parse_number(len)?);
    let aligned = start % 4096 == 0;
    (aligned && len > 0 && start.checked_add(len).is_some()).then_some(MachineRange { start, len })
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_options_then_guest_command_line() {
        let options = parse("mem=64 loglvl=debug bench -- selftest crash=page-fault").unwrap();
        assert_eq!(options.guest_mem_mib, 64);
        assert!(options.debug);
        assert!(options.bench);
        assert_eq!(options.guest_cmdline, "selftest crash=page-fault");
    }

    #[test]
    fn without_separator_everything_is_the_guests() {
        let options = parse("selftest mem=5").unwrap();
        assert_eq!(options.guest_mem_mib, DEFAULT_GUEST_MEM_MIB);
        assert_eq!(options.guest_cmdline, "selftest mem=5");
        assert_eq!(parse("").unwrap().guest_cmdline, "");
        assert_eq!(parse("-- ").unwrap().guest_cmdline, "");
    }

    #[test]
    fn a_double_dash_inside_a_guest_word_is_not_the_separator() {
        assert_eq!(parse("foo--bar").unwrap().guest_cmdline, "foo--bar");
    }

    #[test]
    fn bad_options_are_refused_with_their_reason() {
        assert_eq!(parse("mem=lots --"), Err(OptionError::BadMemory("lots")));
        assert_eq!(parse("mem=1 --"), Err(OptionError::MemoryOutOfRange(1)));
        assert_eq!(parse("bogus --"), Err(OptionError::Unknown("bogus")));
        assert!(OptionError::Unknown("x").to_string().contains("after `--`"));
    }

    #[test]
    fn an_initrd_is_a_page_aligned_machine_range() {
        let options = parse("initrd=0x2000000,12345 -- x").unwrap();
        assert_eq!(options.initrd, Some(MachineRange { start: 0x200_0000, len: 12345 }));
        assert_eq!(parse("initrd=8192,1 --").unwrap().initrd, Some(MachineRange { start: 8192, len: 1 }));
        assert_eq!(parse("-- x").unwrap().initrd, None);
        for bad in ["0x2000001,5", "0x2000000,0", "0x2000000", "zz,5", "0xfffffffffffff000,0x2000"] {
            let cmdline = format!("initrd={bad} --");
            assert_eq!(parse(&cmdline), Err(OptionError::BadInitrd(bad)), "{bad}");
        }
        assert!(OptionError::BadInitrd("x").to_string().contains("<address>,<bytes>"));
    }
}
