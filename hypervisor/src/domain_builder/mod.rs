//! Parsing guest ELF images and computing the PV start-of-day layout.
