//! Host tests of the domain builder, on ELF images built in memory.

mod elf_writer;
mod image_tests;
mod layout_tests;
mod page_table_tests;
mod robustness;
mod start_info_tests;
