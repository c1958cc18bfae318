//! Serving the guest over the shared xenstore page
//! (`docs/misc/xenstore-ring.txt`).
//!
//! Requests are read into a private buffer (a message can be four times
//! the ring size) and answered in order; replies and events wait in the
//! outbox until the response ring has room. New requests are only taken
//! while the outbox is small, so a guest that never reads its replies
//! cannot make the server buffer without bound.
//!
//! The page is guest-writable, so its indices are checked on every access.
//! A corrupt index or an oversized message breaks the connection: the
//! server sets the page's error field (the "connection error" feature),
//! forgets the guest's watches and transactions, and answers nothing more
//! until the guest asks to reconnect (the "ring reconnection" feature).

use core::sync::atomic::Ordering;

use drivers::ring::RingError;
use drivers::xenstore::ring::XenstoreRingView;
use drivers::xenstore::wire::{self, WireError, HEADER_LEN, MESSAGE_MAX};
use hypercalls::abi::io::xs_wire::{
    XENSTORE_CONNECTED, XENSTORE_ERROR_NONE, XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX,
    XENSTORE_RECONNECT, XENSTORE_RING_SIZE, XENSTORE_SERVER_FEATURE_ERROR,
    XENSTORE_SERVER_FEATURE_RECONNECTION,
};

use super::Xenstore;

/// Features this server offers in `server_features`.
const FEATURES: u32 = XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR;

/// Stop taking requests while this much output is still queued.
const OUTBOX_HIGH_WATER: usize = XENSTORE_RING_SIZE;

/// Bound on passes per call, so a guest that keeps the ring busy from
/// another CPU cannot keep the server in one call forever.
const MAX_PASSES: usize = 64;

/// Why the server stopped talking to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionError {
    /// A ring index is inconsistent (`XENSTORE_ERROR_RINGIDX`).
    Ring(RingError),
    /// The guest sent an unframeable message (`XENSTORE_ERROR_PROTO`).
    Protocol(WireError),
}

/// What one [`Xenstore::serve_ring`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Requests answered.
    pub requests: usize,
    /// Request bytes taken from the ring.
    pub consumed: usize,
    /// Reply and event bytes put into the ring.
    pub produced: usize,
    /// The guest's reconnect request was carried out.
    pub reconnected: bool,
}

impl ServeSummary {
    /// Whether the guest should be signalled on the xenstore event channel.
    pub fn should_notify(&self) -> bool {
        self.consumed > 0 || self.produced > 0 || self.reconnected
    }
}

impl Xenstore {
    /// Answers every complete request in `ring` and writes as much queued
    /// output as fits. Call it whenever the guest signals the xenstore
    /// event channel (and after dom0 changes, to deliver their events);
    /// signal the guest back if [`ServeSummary::should_notify`].
    pub fn serve_ring(&mut self, ring: &XenstoreRingView) -> Result<ServeSummary, ConnectionError> {
        ring.server_features.fetch_or(FEATURES, Ordering::Release);
        if ring.connection.load(Ordering::Acquire) == XENSTORE_RECONNECT {
            self.reconnect(ring);
            return Ok(ServeSummary { reconnected: true, ..ServeSummary::default() });
        }
        if let Some(error) = self.broken {
            return Err(error);
        }
        let mut summary = ServeSummary::default();
        for _ in 0..MAX_PASSES {
            let produced = self.flush(ring).map_err(|e| self.fail(ring, ConnectionError::Ring(e)))?;
            let consumed = self.fill_inbox(ring).map_err(|e| self.fail(ring, ConnectionError::Ring(e)))?;
            let requests = self.answer_inbox().map_err(|e| self.fail(ring, ConnectionError::Protocol(e)))?;
            summary.produced += produced;
            summary.consumed += consumed;
            summary.requests += requests;
            if produced == 0 && consumed == 0 && requests == 0 {
                break;
            }
        }
        Ok(summary)
    }

    /// Whether the connection has been given up on.
    pub fn connection_error(&self) -> Option<ConnectionError> {
        self.broken
    }

    /// Bytes of replies and events waiting for room in the response ring.
    pub fn pending_output_len(&self) -> usize {
        self.outbox.len()
    }

    fn flush(&mut self, ring: &XenstoreRingView) -> Result<usize, RingError> {
        if self.outbox.is_empty() {
            // Still validate the indices the guest controls.
            ring.responses().free_space()?;
            return Ok(0);
        }
        let written = ring.responses().write(&self.outbox)?;
        self.outbox.drain(..written);
        Ok(written)
    }

    fn fill_inbox(&mut self, ring: &XenstoreRingView) -> Result<usize, RingError> {
        // A complete message is at most MESSAGE_MAX bytes, so an inbox that
        // full always holds one to answer: reading more is never needed to
        // make progress.
        let room = MESSAGE_MAX.saturating_sub(self.inbox.len());
        let inbox = &mut self.inbox;
        ring.requests().consume_with(room, |chunk| inbox.extend_from_slice(chunk))
    }

    /// Answers complete messages at the front of the inbox while the outbox
    /// has room; returns how many.
    fn answer_inbox(&mut self) -> Result<usize, WireError> {
        let mut answered = 0;
        while self.outbox.len() < OUTBOX_HIGH_WATER && self.inbox.len() >= HEADER_LEN {
            let header = wire::decode_header(&self.inbox)?;
            let total = HEADER_LEN + header.len as usize;
            if self.inbox.len() < total {
                break;
            }
            let message: alloc::vec::Vec<u8> = self.inbox.drain(..total).collect();
            for output in self.handle_request(&message) {
                self.outbox.extend_from_slice(&output);
            }
            answered += 1;
        }
        Ok(answered)
    }

    fn fail(&mut self, ring: &XenstoreRingView, error: ConnectionError) -> ConnectionError {
        let code = match error {
            ConnectionError::Ring(_) => XENSTORE_ERROR_RINGIDX,
            ConnectionError::Protocol(_) => XENSTORE_ERROR_PROTO,
        };
        self.reset_connection();
        self.broken = Some(error);
        ring.error.store(code, Ordering::Release);
        error
    }

    /// The guest asked for a fresh connection: drop everything in flight
    /// and empty both rings.
    fn reconnect(&mut self, ring: &XenstoreRingView) {
        self.reset_connection();
        ring.req_cons.store(0, Ordering::Relaxed);
        ring.req_prod.store(0, Ordering::Relaxed);
        ring.rsp_cons.store(0, Ordering::Relaxed);
        ring.rsp_prod.store(0, Ordering::Relaxed);
        ring.error.store(XENSTORE_ERROR_NONE, Ordering::Relaxed);
        ring.connection.store(XENSTORE_CONNECTED, Ordering::Release);
    }
}
