//! The physical frame allocator: a bitmap with one bit per 4 KiB frame
//! (set = free), over storage the caller provides.
//!
//! Frames are named by *guest-physical* frame number (PFN). Under PV the
//! platform layer translates PFNs to machine frames (MFNs) through the p2m;
//! the allocator never needs to know.

use core::ops::Range;

/// Why an allocator call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The frame lies outside the bitmap.
    OutOfRange(u64),
    /// `free` of a frame that was already free: a double free in the caller.
    AlreadyFree(u64),
}

/// A bitmap allocator for PFNs below `64 * WORDS`.
pub struct FrameAllocator<const WORDS: usize> {
    free_bits: [u64; WORDS],
    free_frames: u64,
    /// The lowest word that may hold a free frame; speeds up the common
    /// allocate-in-order pattern without changing which frame is returned.
    search_from_word: usize,
}

impl<const WORDS: usize> Default for FrameAllocator<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> FrameAllocator<WORDS> {
    /// An allocator with every frame in use. Add memory with [`Self::add_free_range`].
    pub const fn new() -> Self {
        Self { free_bits: [0; WORDS], free_frames: 0, search_from_word: 0 }
    }

    /// One past the highest PFN the bitmap can describe.
    pub fn capacity(&self) -> u64 {
        self.free_bits.len() as u64 * 64
    }

    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    pub fn is_free(&self, pfn: u64) -> bool {
        pfn < self.capacity() && self.free_bits[(pfn / 64) as usize] & (1 << (pfn % 64)) != 0
    }

    /// Marks frames free. Frames beyond the bitmap's capacity are ignored and
    /// their count returned, so the caller can report memory it cannot use.
    pub fn add_free_range(&mut self, pfns: Range<u64>) -> u64 {
        let usable_end = pfns.end.min(self.capacity());
        for pfn in pfns.start..usable_end {
            if !self.is_free(pfn) {
                self.set_free(pfn, true);
            }
        }
        self.search_from_word = 0;
        pfns.end.saturating_sub(usable_end.max(pfns.start))
    }

    /// Marks frames as in use (the kernel image, boot structures, modules).
    pub fn reserve_range(&mut self, pfns: Range<u64>) {
        for pfn in pfns.start..pfns.end.min(self.capacity()) {
            if self.is_free(pfn) {
                self.set_free(pfn, false);
            }
        }
    }

    /// The lowest free frame.
    pub fn allocate(&mut self) -> Option<u64> {
        let word_index =
            (self.search_from_word..self.free_bits.len()).find(|&index| self.free_bits[index] != 0)?;
        self.search_from_word = word_index;
        let bit = self.free_bits[word_index].trailing_zeros() as u64;
        let pfn = word_index as u64 * 64 + bit;
        self.set_free(pfn, false);
        Some(pfn)
    }

    /// `count` physically contiguous frames, the first aligned to `align`
    /// frames (a power of two). Returns the first PFN.
    pub fn allocate_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        debug_assert!(align.is_power_of_two());
        if count == 0 {
            return None;
        }
        let mut start = 0;
        while start + count <= self.capacity() {
            match (start..start + count).find(|&pfn| !self.is_free(pfn)) {
                None => {
                    for pfn in start..start + count {
                        self.set_free(pfn, false);
                    }
                    return Some(start);
                }
                Some(used) => start = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    pub fn free(&mut self, pfn: u64) -> Result<(), FrameError> {
        if pfn >= self.capacity() {
            return Err(FrameError::OutOfRange(pfn));
        }
        if self.is_free(pfn) {
            return Err(FrameError::AlreadyFree(pfn));
        }
        self.set_free(pfn, true);
        self.search_from_word = self.search_from_word.min((pfn / 64) as usize);
        Ok(())
    }

    fn set_free(&mut self, pfn: u64, free: bool) {
        let word = &mut self.free_bits[(pfn / 64) as usize];
        let mask = 1u64 << (pfn % 64);
        if free {
            *word |= mask;
            self.free_frames += 1;
        } else {
            *word &= !mask;
            self.free_frames -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_frame_and_reuses_freed_ones() {
        let mut frames = FrameAllocator::<4>::new();
        frames.add_free_range(10..20);
        frames.reserve_range(12..13);
        assert_eq!(frames.free_frames(), 9);
        assert_eq!(frames.allocate(), Some(10));
        assert_eq!(frames.allocate(), Some(11));
        assert_eq!(frames.allocate(), Some(13));
        frames.free(10).unwrap();
        assert_eq!(frames.allocate(), Some(10));
        assert_eq!(frames.free_frames(), 6);
    }

    #[test]
    fn exhaustion_returns_none() {
        let mut frames = FrameAllocator::<1>::new();
        frames.add_free_range(0..2);
        assert!(frames.allocate().is_some());
        assert!(frames.allocate().is_some());
        assert_eq!(frames.allocate(), None);
    }

    #[test]
    fn double_free_and_out_of_range_are_refused() {
        let mut frames = FrameAllocator::<1>::new();
        frames.add_free_range(0..8);
        let pfn = frames.allocate().unwrap();
        frames.free(pfn).unwrap();
        assert_eq!(frames.free(pfn), Err(FrameError::AlreadyFree(pfn)));
        assert_eq!(frames.free(64), Err(FrameError::OutOfRange(64)));
    }

    #[test]
    fn contiguous_allocation_respects_alignment_and_holes() {
        let mut frames = FrameAllocator::<4>::new();
        frames.add_free_range(1..200);
        frames.reserve_range(70..71);
        let first = frames.allocate_contiguous(64, 64).unwrap();
        assert_eq!(first, 128, "0 is not free and 64..128 has a hole at 70");
        assert!((128..192).all(|pfn| !frames.is_free(pfn)));
        assert_eq!(frames.allocate_contiguous(64, 64), None);
        assert_eq!(frames.allocate_contiguous(3, 1), Some(1));
    }

    #[test]
    fn memory_beyond_capacity_is_reported() {
        let mut frames = FrameAllocator::<1>::new();
        assert_eq!(frames.add_free_range(60..100), 36);
        assert_eq!(frames.free_frames(), 4);
    }
}
