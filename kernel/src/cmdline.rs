//! The guest command line: space-separated words, each a flag (`selftest`)
//! or a `key=value` option (`crash=page-fault`, `fuzz=1,1000000`).
//! A later occurrence of a key overrides an earlier one, as in Linux.

/// A parsed view over the command line text; it borrows and never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    pub fn parse(text: &'a str) -> Self {
        Self { text: text.trim_matches(char::from(0)) }
    }

    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Every word, in order.
    pub fn words(&self) -> impl Iterator<Item = &'a str> {
        self.text.split_ascii_whitespace()
    }

    /// True if `name` appears as a bare word.
    pub fn has_flag(&self, name: &str) -> bool {
        self.words().any(|word| word == name)
    }

    /// The value of the last `name=value` word, if any.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.words()
            .filter_map(|word| word.split_once('='))
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .last()
    }

    /// The last `name=value` as a number (decimal, or hex with `0x`).
    pub fn number(&self, name: &str) -> Option<Result<u64, BadNumber<'a>>> {
        self.value(name).map(|text| parse_number(text).ok_or(BadNumber { text }))
    }
}

/// A value that should have been a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadNumber<'a> {
    pub text: &'a str,
}

/// Parses decimal or `0x` hexadecimal.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_values() {
        let cmdline = Cmdline::parse("  selftest crash=page-fault  fuzz=1,1000000 ");
        assert!(cmdline.has_flag("selftest"));
        assert!(!cmdline.has_flag("crash"));
        assert_eq!(cmdline.value("crash"), Some("page-fault"));
        assert_eq!(cmdline.value("fuzz"), Some("1,1000000"));
        assert_eq!(cmdline.value("missing"), None);
        assert_eq!(cmdline.words().count(), 3);
    }

    #[test]
    fn last_value_wins_and_empty_values_are_kept() {
        let cmdline = Cmdline::parse("mem=1 mem=2 console=");
        assert_eq!(cmdline.value("mem"), Some("2"));
        assert_eq!(cmdline.value("console"), Some(""));
    }

    #[test]
    fn numbers() {
        let cmdline = Cmdline::parse("a=42 b=0x1F c=zz");
        assert_eq!(cmdline.number("a"), Some(Ok(42)));
        assert_eq!(cmdline.number("b"), Some(Ok(31)));
        assert_eq!(cmdline.number("c"), Some(Err(BadNumber { text: "zz" })));
        assert_eq!(cmdline.number("d"), None);
    }

    #[test]
    fn trailing_nuls_from_fixed_buffers_are_ignored() {
        let cmdline = Cmdline::parse("selftest\0\0\0");
        assert!(cmdline.has_flag("selftest"));
    }
}
