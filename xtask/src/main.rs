//! `cargo xtask`: the command line over the `xtask` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use xtask::images::{self, Profile};
use xtask::run::{self, Backend, RunOptions};
use xtask::{test_suite, XtaskError};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run and test the guest kernel and the hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the bootable images (release unless --debug).
    Build {
        #[arg(long)]
        debug: bool,
    },
    /// Boot a guest and report its verdict.
    Run(RunArgs),
    /// Run the whole suite: host unit tests, the images, the system tests.
    Test,
    /// Measure hypercall, page-table, event, boot and size costs on every backend.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Runs of each backend under each clock; medians are reported.
    #[arg(long, value_name = "N", default_value_t = xtask::bench::DEFAULT_RUNS,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// Skip QEMU's Xen emulation (nested, about 25 s a run).
    #[arg(long)]
    no_qemu_xen: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Where to run the guest.
    #[arg(long, value_enum, default_value_t = Backend::Hv)]
    on: Backend,
    /// Boot the guest through its PVH entry (bare always does).
    #[arg(long)]
    pvh: bool,
    /// The guest ELF [default: the kernel, built first].
    #[arg(long, value_name = "ELF")]
    guest: Option<PathBuf>,
    /// The guest's command line.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// An initial ramdisk for the guest (`--on hv`): the hypervisor copies it
    /// in after the kernel and names it in start_info, as Xen's builder does.
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = run::DEFAULT_MEM_MIB,
          value_parser = clap::value_parser!(u32).range(16..=65536))]
    mem: u32,
    /// Wait for gdb on port 1234 before the first instruction (no timeout).
    #[arg(long)]
    gdb: bool,
    /// Seconds to wait for a verdict before killing QEMU (0: wait forever).
    #[arg(long, value_name = "S", default_value_t = run::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Build and run the debug kernel instead of the release one.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Build { debug } => build(debug),
        Task::Run(args) => run_guest(args),
        Task::Test => test_suite::run_all().map(|_| ()),
        Task::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::from(u8::try_from(err.status).unwrap_or(1))
        }
    }
}

fn bench(args: BenchArgs) -> Result<(), XtaskError> {
    let options = xtask::bench::BenchOptions { runs: args.runs, qemu_xen: !args.no_qemu_xen };
    let command =
        std::iter::once("cargo xtask".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>();
    xtask::bench::run_and_report(&options, command.join(" "))
}

fn profile(debug: bool) -> Profile {
    if debug {
        Profile::Debug
    } else {
        Profile::Release
    }
}

fn build(debug: bool) -> Result<(), XtaskError> {
    let built = images::build(profile(debug))?;
    for line in images::describe(&built) {
        println!("{line}");
    }
    Ok(())
}

fn run_guest(args: RunArgs) -> Result<(), XtaskError> {
    // Before building anything: an unavailable backend is an answer in itself.
    args.on.ensure_available()?;
    // Build only what this run boots: a user's `--guest` needs no kernel build.
    let guest = match args.guest {
        Some(path) => path,
        None => images::build_one(profile(args.debug), "kernel")?,
    };
    let hypervisor = match args.on {
        Backend::Hv => Some(images::build_one(profile(args.debug), "hypervisor")?),
        _ => None,
    };
    let options = RunOptions {
        backend: args.on,
        guest,
        hypervisor,
        cmdline: args.cmdline,
        initrd: args.initrd,
        pvh: args.pvh,
        mem_mib: args.mem,
        gdb: args.gdb,
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        echo: true,
        log_path: args.on.default_log_path(),
    };
    let report = run::run(&options)?;
    let log = report.log_path.strip_prefix(xtask::workspace_root()).unwrap_or(&report.log_path);
    eprintln!("xtask: serial log: {}", log.display());
    if report.succeeded() {
        eprintln!("xtask: {}", report.summary());
        Ok(())
    } else {
        Err(XtaskError::failed(report.summary()))
    }
}
