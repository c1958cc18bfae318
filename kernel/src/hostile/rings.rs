//! Attacks on the backends behind a domU's shared rings: a console ring
//! whose producer index lies, and malformed xenstore messages written
//! straight into the store ring. The reference backends are xenconsoled
//! and C xenstored from Xen 4.17: the console daemon leaves output alone
//! while `prod - cons` exceeds the ring (tools/console/daemon/io.c:321);
//! xenstored answers an unknown message type with `ENOSYS`
//! (xenstored_core.c:2031) and stops serving a guest that sends an
//! oversized message or lying ring indices, recording why in the ring's
//! `error` field when it advertises `XENSTORE_SERVER_FEATURE_ERROR`
//! (`ignore_connection`, xenstored_domain.c:576). Either way the backend
//! (here: the hypervisor) must stay up; the final `alive-*` checks prove it.
//!
//! Dom0 has neither ring, so as dom0 these are skipped.

use core::sync::atomic::Ordering;

use hypercalls::abi::event_channel::EVTCHNOP_send;
use hypercalls::abi::io::xs_wire::*;
use kernel::hostile_plan::Attack;
use kernel::selftest::Outcome;

use hypercalls::abi::errno::XEN_EINVAL;
use kernel::hostile_plan::Expect;

use super::env::{set_alias_writable, Env};
use super::{expect, hc};
use crate::platform::pv::raw_rings::{self, RawRing};
use crate::platform::pv::start::start_info;
use crate::platform::pv::PV;
use crate::platform::xen;

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "pin-console-ring-held-by-backend", xsa: None, run: pin_console_ring },
    Attack { name: "pin-xenstore-ring-held-by-backend", xsa: None, run: pin_xenstore_ring },
    Attack { name: "console-ring-lying-producer", xsa: None, run: console_lying_producer },
    Attack { name: "xenstore-unknown-message-type", xsa: None, run: xenstore_unknown_type },
    Attack { name: "xenstore-oversized-message", xsa: None, run: xenstore_oversized },
    Attack { name: "xenstore-lying-request-producer", xsa: None, run: xenstore_lying_producer },
];

const NO_RING: &str = "dom0 has no console or xenstore ring (it would run the backends)";

fn notify(port: u32) {
    let mut argument = [u64::from(port)];
    hc::evtchn(EVTCHNOP_send, &mut argument);
}

/// A ring page the backend maps writable can never become a page table:
/// the backend's mapping holds a writable type reference (xenconsoled and
/// xenstored map it with a foreign or grant mapping, which takes one in
/// `get_page_from_l1e`, mm.c:1010), so pinning it is `-EINVAL`. The
/// guest's own writable alias is dropped for the attempt, and nothing is
/// printed until it is back (the console writes through it).
fn pin_ring_frame(env: &Env, mfn: u64) -> Outcome {
    if env.privileged {
        return Outcome::Skip(NO_RING);
    }
    let Some(pfn) = PV.mmu.pfn(mfn) else { return Outcome::Fail("the ring frame is not the guest's".into()) };
    let phys = pfn * 4096;
    if set_alias_writable(phys, false) != 0 {
        return Outcome::Fail("setup: cannot drop the guest's own writable mapping of the ring".into());
    }
    let rc = hc::pin(1, mfn);
    if rc == 0 {
        hc::unpin(mfn);
    }
    let restored = set_alias_writable(phys, true);
    if restored != 0 {
        return Outcome::Fail(alloc::format!("the ring cannot be mapped writable again ({restored})"));
    }
    expect(Expect::Errno(XEN_EINVAL), rc)
}

fn pin_console_ring(env: &mut Env) -> Outcome {
    match start_info() {
        Some(start) => pin_ring_frame(env, start.console.0),
        None => Outcome::Skip(NO_RING),
    }
}

fn pin_xenstore_ring(env: &mut Env) -> Outcome {
    match start_info() {
        Some(start) => pin_ring_frame(env, start.store.0),
        None => Outcome::Skip(NO_RING),
    }
}

/// Lets the backend run: a few hundred trips through the hypervisor.
fn give_backend_time() {
    for _ in 0..300 {
        let _ = hypercalls::ops::sched::sched_yield();
    }
}

/// Nothing may be printed between lying and restoring the index: the
/// kernel's console goes through this very ring.
fn console_lying_producer(_: &mut Env) -> Outcome {
    let Some(RawRing { view, port }) = raw_rings::console() else { return Outcome::Skip(NO_RING) };
    for _ in 0..1000 {
        if view.out_cons.load(Ordering::Acquire) == view.out_prod.load(Ordering::Acquire) {
            break;
        }
        let _ = hypercalls::ops::sched::sched_yield();
    }
    let honest = view.out_prod.load(Ordering::Acquire);
    let consumed = view.out_cons.load(Ordering::Acquire);
    view.out_prod.store(consumed.wrapping_add(0x10_0000), Ordering::Release);
    notify(port);
    give_backend_time();
    let consumed_while_lying = view.out_cons.load(Ordering::Acquire);
    view.out_prod.store(honest, Ordering::Release);
    notify(port);
    give_backend_time();
    crate::println!("hostile: the console ring carries output again");
    let after = view.out_cons.load(Ordering::Acquire);
    if consumed_while_lying != consumed {
        return Outcome::Fail(alloc::format!(
            "expected the backend to leave the lying ring alone, but it moved out_cons from {consumed:#x} \
             to {consumed_while_lying:#x}"
        ));
    }
    if after == consumed_while_lying {
        return Outcome::Fail(
            "the backend stopped draining the ring after the producer index was fixed".into(),
        );
    }
    Outcome::Pass
}

fn xenstore_unknown_type(env: &mut Env) -> Outcome {
    if env.privileged {
        return Outcome::Skip(NO_RING);
    }
    let reply = xen::store::with(|client| client.request(9999, drivers::xenstore::Transaction::NONE, b""));
    match reply {
        Err(_) => Outcome::Fail("xenstore is not connected".into()),
        Ok(Err(error)) if error.errno_name() == Some("ENOSYS") => Outcome::Pass,
        Ok(other) => Outcome::Fail(alloc::format!("expected an ENOSYS error reply, got {other:?}")),
    }
}

/// Puts `bytes` into the request ring as they are, and signals the server.
fn send_raw(ring: &RawRing<drivers::xenstore::XenstoreRingView>, bytes: &[u8]) {
    let view = ring.view;
    let mut producer = view.req_prod.load(Ordering::Acquire);
    for &byte in bytes {
        view.req[producer as usize % XENSTORE_RING_SIZE].store(byte, Ordering::Relaxed);
        producer = producer.wrapping_add(1);
    }
    view.req_prod.store(producer, Ordering::Release);
    notify(ring.port);
}

/// What the server did: reply bytes produced, and the `error` field if
/// the server reports errors there.
fn watch_server(
    ring: &RawRing<drivers::xenstore::XenstoreRingView>,
    replies_before: u32,
) -> (u32, Option<u32>) {
    give_backend_time();
    let view = ring.view;
    let replied = view.rsp_prod.load(Ordering::Acquire).wrapping_sub(replies_before);
    let reports = view.server_features.load(Ordering::Acquire) & XENSTORE_SERVER_FEATURE_ERROR != 0;
    (replied, reports.then(|| view.error.load(Ordering::Acquire)))
}

/// `len` 4097: more than `XENSTORE_PAYLOAD_MAX`; no reply, the connection
/// is dropped with `XENSTORE_ERROR_PROTO` (xenstored_core.c:2153).
fn xenstore_oversized(_: &mut Env) -> Outcome {
    let Some(ring) = raw_rings::xenstore() else { return Outcome::Skip(NO_RING) };
    let before = ring.view.rsp_prod.load(Ordering::Acquire);
    let mut header = [0u8; 16];
    header[0..4].copy_from_slice(&XS_WRITE.to_le_bytes());
    header[4..8].copy_from_slice(&0x4057u32.to_le_bytes());
    header[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_le_bytes());
    send_raw(&ring, &header);
    send_raw(&ring, &[b'A'; 64]);
    match watch_server(&ring, before) {
        (0, None) => Outcome::Pass,
        (0, Some(XENSTORE_ERROR_PROTO)) => Outcome::Pass,
        (0, Some(error)) => Outcome::Fail(alloc::format!(
            "expected error {XENSTORE_ERROR_PROTO} (PROTO) in the ring, got {error}"
        )),
        (bytes, _) => {
            Outcome::Fail(alloc::format!("expected the message to be refused, got a {bytes}-byte reply"))
        }
    }
}

/// A request producer 64 KiB ahead of the consumer: `check_indexes`
/// fails, the server stops reading (xenstored_domain.c:169). After the
/// oversized message the connection may already be ignored; then this
/// only shows the server stays quiet and the hypervisor up.
fn xenstore_lying_producer(_: &mut Env) -> Outcome {
    let Some(ring) = raw_rings::xenstore() else { return Outcome::Skip(NO_RING) };
    let view = ring.view;
    let before = view.rsp_prod.load(Ordering::Acquire);
    let consumer = view.req_cons.load(Ordering::Acquire);
    view.req_prod.store(consumer.wrapping_add(0x1_0000), Ordering::Release);
    notify(ring.port);
    match watch_server(&ring, before) {
        (0, None | Some(XENSTORE_ERROR_RINGIDX | XENSTORE_ERROR_PROTO)) => Outcome::Pass,
        (0, Some(error)) => {
            Outcome::Fail(alloc::format!("expected error RINGIDX or PROTO in the ring, got {error}"))
        }
        (bytes, _) => Outcome::Fail(alloc::format!("expected no reply to a lying ring, got {bytes} bytes")),
    }
}
