//! Self-tests of the console ring and xenstore: a domU's connections to its
//! backends. The initial domain has neither (xenstored and the console
//! daemon would run in it), so there they report `SKIP`.

use alloc::string::String;

use drivers::xenstore::{Transaction, XsError};
use kernel::ensure;
use kernel::selftest::Outcome;

use super::Context;
use crate::platform::{self, xen};

const NO_STORE: &str = "no xenstore as dom0";
const NOT_XEN: &str = "not running on Xen";
/// Where the tests write: the domain's own `data/` directory, which the
/// toolstack makes writable for it.
const TEST_PATH: &str = "data/selftest";

fn store_or_skip() -> Result<(), Outcome> {
    let xen = platform::xen().ok_or(Outcome::Skip(NOT_XEN))?;
    if xen.initial_domain {
        return Err(Outcome::Skip(NO_STORE));
    }
    if !xen::store::is_connected() {
        return Err(Outcome::Fail("a domU without a xenstore connection".into()));
    }
    Ok(())
}

macro_rules! require {
    ($check:expr) => {
        if let Err(outcome) = $check {
            return outcome;
        }
    };
}

fn store<R>(f: impl FnOnce(&mut xen::store::Client) -> R) -> Result<R, Outcome> {
    xen::store::with(f).map_err(|_| Outcome::Fail("xenstore is not connected".into()))
}

fn failed(what: &str, error: XsError) -> Outcome {
    Outcome::Fail(alloc::format!("{what}: {error:?}"))
}

pub fn console_ring(_: &mut Context) -> Outcome {
    let Some(xen) = platform::xen() else {
        return Outcome::Skip(NOT_XEN);
    };
    if xen.initial_domain {
        return Outcome::Skip("no console ring as dom0 (console_io is its console)");
    }
    let Some((before, _)) = xen::console::output_indices() else {
        return Outcome::Fail("a domU without a console ring".into());
    };
    crate::println!("console-ring: this line travels through the ring");
    let Some((after, consumed)) = xen::console::output_indices() else {
        return Outcome::Fail("the ring disappeared".into());
    };
    ensure!(
        after.wrapping_sub(before) >= 40,
        "the producer index moved by {} only",
        after.wrapping_sub(before)
    );
    ensure!(after.wrapping_sub(consumed) <= 2048, "the backend is not draining the ring");
    Outcome::Pass
}

/// Reads what the toolstack wrote about the domain: its `name` (xl, the
/// bundled hypervisor), or where there is none its `domid` (QEMU's built-in
/// xenstore writes no name).
pub fn read_name(_: &mut Context) -> Outcome {
    require!(store_or_skip());
    let read = store(|client| match client.read_string(Transaction::NONE, "name") {
        Err(error) if error.errnum() == Some(2) => {
            client.read_string(Transaction::NONE, "domid").map(|domid| (None, domid))
        }
        other => other.map(|name| (Some(name), String::new())),
    });
    let (name, domid) = match read {
        Ok(Ok(values)) => values,
        Ok(Err(error)) => return failed("read name (or domid)", error),
        Err(outcome) => return outcome,
    };
    match name {
        Some(name) => ensure!(!name.is_empty() && name.is_ascii(), "the domain name {name:?} is not a name"),
        None => ensure!(domid.parse::<u16>().is_ok(), "no name, and the domid {domid:?} is not a number"),
    }
    Outcome::Pass
}

pub fn write_read(_: &mut Context) -> Outcome {
    require!(store_or_skip());
    let result = store(|client| -> Result<(String, Option<i32>), XsError> {
        client.write(Transaction::NONE, TEST_PATH, b"hello from the guest")?;
        let back = client.read_string(Transaction::NONE, TEST_PATH)?;
        client.rm(Transaction::NONE, TEST_PATH)?;
        let gone = client.read(Transaction::NONE, TEST_PATH).err().and_then(|error| error.errnum());
        Ok((back, gone))
    });
    let (back, gone) = match result {
        Ok(Ok(values)) => values,
        Ok(Err(error)) => return failed("write/read/rm", error),
        Err(outcome) => return outcome,
    };
    ensure!(back == "hello from the guest", "read back {back:?}");
    ensure!(gone == Some(2), "reading a removed node did not fail with ENOENT ({gone:?})");
    Outcome::Pass
}

pub fn directory(_: &mut Context) -> Outcome {
    require!(store_or_skip());
    // An empty relative path is invalid in xenstored, so list a directory
    // the test makes itself, by relative and by absolute path.
    let result = store(|client| -> Result<_, XsError> {
        let domid = client.read_string(Transaction::NONE, "domid")?;
        let home = alloc::format!("/local/domain/{domid}");
        client.write(Transaction::NONE, "data/selftest-dir/first", b"1")?;
        client.write(Transaction::NONE, "data/selftest-dir/second", b"2")?;
        let relative = client.directory(Transaction::NONE, "data/selftest-dir")?;
        let absolute = client.directory(Transaction::NONE, &alloc::format!("{home}/data/selftest-dir"))?;
        let top = client.directory(Transaction::NONE, &home)?;
        client.rm(Transaction::NONE, "data/selftest-dir")?;
        Ok((relative, absolute, top))
    });
    let (mut relative, absolute, top) = match result {
        Ok(Ok(values)) => values,
        Ok(Err(error)) => return failed("directory", error),
        Err(outcome) => return outcome,
    };
    // `domid`, not `name`: QEMU's built-in xenstore writes no name.
    ensure!(top.iter().any(|entry| entry == "domid"), "no `domid` under the home directory: {top:?}");
    relative.sort();
    ensure!(relative == ["first", "second"], "listing {relative:?}");
    let mut absolute = absolute;
    absolute.sort();
    ensure!(relative == absolute, "relative and absolute listings differ");
    Outcome::Pass
}

pub fn transaction(_: &mut Context) -> Outcome {
    require!(store_or_skip());
    let path = "data/selftest-tx";
    let result = store(|client| -> Result<_, XsError> {
        let tx = client.transaction_start()?;
        client.write(tx, path, b"inside")?;
        let outside_before = client.read(Transaction::NONE, path).is_ok();
        client.transaction_end(tx, true)?;
        let after = client.read_string(Transaction::NONE, path)?;
        let aborted = client.transaction_start()?;
        client.write(aborted, path, b"discarded")?;
        client.transaction_end(aborted, false)?;
        let kept = client.read_string(Transaction::NONE, path)?;
        client.rm(Transaction::NONE, path)?;
        Ok((outside_before, after, kept))
    });
    let (outside_before, after, kept) = match result {
        Ok(Ok(values)) => values,
        Ok(Err(error)) => return failed("transaction", error),
        Err(outcome) => return outcome,
    };
    ensure!(!outside_before, "a write inside a transaction was visible outside before the commit");
    ensure!(after == "inside", "after the commit the node reads {after:?}");
    ensure!(kept == "inside", "an aborted transaction changed the node to {kept:?}");
    Outcome::Pass
}

pub fn watch(_: &mut Context) -> Outcome {
    require!(store_or_skip());
    let path = "data/selftest-watch";
    let result = store(|client| -> Result<_, XsError> {
        client.write(Transaction::NONE, path, b"0")?;
        client.watch(path, "selftest-token")?;
        let initial = client.wait_watch_event()?;
        client.write(Transaction::NONE, path, b"1")?;
        let change = client.wait_watch_event()?;
        client.unwatch(path, "selftest-token")?;
        client.rm(Transaction::NONE, path)?;
        Ok((initial, change))
    });
    let (initial, change) = match result {
        Ok(Ok(values)) => values,
        Ok(Err(error)) => return failed("watch", error),
        Err(outcome) => return outcome,
    };
    ensure!(initial.token == "selftest-token", "the initial event has token {:?}", initial.token);
    ensure!(change.path.ends_with(path), "the change event names {:?}", change.path);
    Outcome::Pass
}
