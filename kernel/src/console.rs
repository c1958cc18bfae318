//! `println!` and the `log` backend, both writing to the platform console.

use core::fmt::{self, Write};

use crate::platform;

struct PlatformConsole;

impl Write for PlatformConsole {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        platform::current().console_write(text);
        Ok(())
    }
}

/// A `fmt::Write` for code that reports through the console (self-tests).
pub fn writer() -> impl Write {
    PlatformConsole
}

/// Serialises whole lines so output from an interrupt handler cannot split one.
static LINE_LOCK: spin::Mutex<()> = spin::Mutex::new(());

pub fn print(args: fmt::Arguments<'_>) {
    let _line = LINE_LOCK.lock();
    let _ = PlatformConsole.write_fmt(args);
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match record.level() {
            log::Level::Info => println!("{}", record.args()),
            level => println!("{}: {}", level, record.args()),
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes the `log` crate to the console. `debug` on the command line
/// enables debug messages.
pub fn init_logging(debug: bool) {
    // A second call (there is none) would fail harmlessly.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if debug { log::LevelFilter::Debug } else { log::LevelFilter::Info });
}
