//! The maptrack table: one record per grant mapping a domain holds, named
//! by the handle `GNTTABOP_map_grant_ref` returns and
//! `GNTTABOP_unmap_grant_ref` takes.
//!
//! It grows a frame's worth of records at a time up to Xen's default
//! `gnttab_max_maptrack_frames`, and hands out handles from a free list
//! the way Xen does for a single vCPU: a new frame's first record at
//! once, the rest in order; freed handles go to the tail, and the list
//! always keeps one record back (so a full table answers `GNTST_no_space`
//! one record short of its size).

use alloc::vec::Vec;

use hypercalls::abi::grant_table::{GNTST_bad_handle, GrantHandle, GrantRef};
use hypercalls::abi::xen::DomId;

/// Records per maptrack frame (a 4 KiB frame of Xen's 16-byte records).
pub const RECORDS_PER_FRAME: u32 = 256;
/// Xen's default `gnttab_max_maptrack_frames`.
pub const MAX_FRAMES: u32 = 1024;

/// End of the free list.
const TAIL: u32 = u32::MAX;

/// What one handle maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The granting domain.
    pub domid: DomId,
    pub gref: GrantRef,
    /// The `GNTMAP_*` flags of the mapping, cut to 16 bits as Xen stores
    /// them; the host/device bits go as those halves are unmapped. Zero
    /// means the handle is free.
    pub flags: u16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    mapping: Mapping,
    /// The next free handle, while this one is free.
    next: u32,
}

#[derive(Debug)]
pub struct Maptrack {
    frames: Vec<Vec<Record>>,
    head: u32,
    tail: u32,
    max_frames: u32,
}

impl Default for Maptrack {
    fn default() -> Self {
        Self::new()
    }
}

impl Maptrack {
    pub const fn new() -> Self {
        Self::with_max_frames(MAX_FRAMES)
    }

    /// A table that grows to at most `max_frames` frames.
    pub const fn with_max_frames(max_frames: u32) -> Self {
        Self { frames: Vec::new(), head: TAIL, tail: TAIL, max_frames }
    }

    /// Handles below this exist (Xen's `maptrack_limit`).
    pub fn limit(&self) -> u32 {
        self.frames.len() as u32 * RECORDS_PER_FRAME
    }

    /// A free handle, growing the table if needed; `None` when it is full
    /// or memory ran out (`GNTST_no_space`).
    pub fn get_handle(&mut self) -> Option<GrantHandle> {
        if self.head != TAIL {
            let next = self.record(self.head).next;
            if next != TAIL {
                let handle = self.head;
                self.head = next;
                return Some(handle);
            }
        }
        self.grow()
    }

    /// Returns a handle to the tail of the free list.
    pub fn put_handle(&mut self, handle: GrantHandle) {
        if handle >= self.limit() {
            return;
        }
        *self.record_mut(handle) = Record { mapping: Mapping::default(), next: TAIL };
        if self.tail != TAIL {
            self.record_mut(self.tail).next = handle;
        }
        self.tail = handle;
        if self.head == TAIL {
            self.head = handle;
        }
    }

    /// The mapping behind a handle in use, or `GNTST_bad_handle`.
    pub fn lookup(&self, handle: GrantHandle) -> Result<Mapping, i16> {
        if handle >= self.limit() {
            return Err(GNTST_bad_handle);
        }
        let mapping = self.record(handle).mapping;
        if mapping.flags == 0 {
            return Err(GNTST_bad_handle);
        }
        Ok(mapping)
    }

    /// Records what a handle from [`get_handle`](Self::get_handle) maps.
    pub fn set(&mut self, handle: GrantHandle, mapping: Mapping) {
        if handle < self.limit() {
            self.record_mut(handle).mapping = mapping;
        }
    }

    /// Changes the flags of a handle in use (an unmap of one half).
    pub fn set_flags(&mut self, handle: GrantHandle, flags: u16) {
        if handle < self.limit() {
            self.record_mut(handle).mapping.flags = flags;
        }
    }

    fn grow(&mut self) -> Option<GrantHandle> {
        if self.frames.len() as u32 >= self.max_frames || self.frames.try_reserve(1).is_err() {
            return None;
        }
        let mut frame = Vec::new();
        frame.try_reserve_exact(RECORDS_PER_FRAME as usize).ok()?;
        let first = self.limit();
        frame.extend(
            (0..RECORDS_PER_FRAME)
                .map(|index| Record { mapping: Mapping::default(), next: first + index + 1 }),
        );
        // The new records go in front of what the list still holds.
        if let Some(last) = frame.last_mut() {
            last.next = self.head;
        }
        if self.tail == TAIL {
            self.tail = first + RECORDS_PER_FRAME - 1;
        }
        self.head = first + 1;
        self.frames.push(frame);
        Some(first)
    }

    fn record(&self, handle: GrantHandle) -> &Record {
        &self.frames[(handle / RECORDS_PER_FRAME) as usize][(handle % RECORDS_PER_FRAME) as usize]
    }

    fn record_mut(&mut self, handle: GrantHandle) -> &mut Record {
        &mut self.frames[(handle / RECORDS_PER_FRAME) as usize][(handle % RECORDS_PER_FRAME) as usize]
    }
}
