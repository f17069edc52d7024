//! Access to memory that another kernel or process can write at any moment.
//!
//! This module is the only place in the core that touches raw pointers. Its rules:
//!
//! * The region is an array of 8-byte words, and **every** access is an atomic
//!   access to one whole word. Concurrent writes by a peer are therefore never a
//!   data race in Rust's memory model, whatever the peer does.
//! * No `&u8`, `&[u8]`, `&mut [u8]` or `&T` to plain data in the region is ever
//!   formed; payload bytes are copied in and out word by word.
//! * Every access is bounds-checked against the region length and returns an
//!   [`AccessError`] instead of touching memory outside it.
//! * Words are little-endian in memory on every host (the region is a wire format).
//!
//! Everything above this module (rings, pool, handshake) is safe code working with
//! offsets.

use core::fmt;
use core::ptr::NonNull;

use crate::sync::{AtomicU64, Ordering};

/// Size of one region word in bytes: the unit of every shared access.
pub const WORD: usize = 8;

/// A shared-memory region: a bounds-checked window of atomic words.
///
/// Cloning a `Region` gives another handle to the same memory (one per endpoint).
pub struct Region {
    base: NonNull<AtomicU64>,
    len: usize,
    /// Keeps heap or mapped backing memory alive while any handle exists.
    #[cfg(feature = "alloc")]
    owner: Option<alloc::sync::Arc<dyn Send + Sync>>,
}

// SAFETY: the region is only ever accessed through atomic operations on whole words,
// so handles may be sent to and shared between threads; the constructor's contract
// keeps the memory valid while any handle exists.
unsafe impl Send for Region {}
// SAFETY: see `Send`: all accesses through `&Region` are atomic.
unsafe impl Sync for Region {}

impl Clone for Region {
    fn clone(&self) -> Self {
        Region {
            base: self.base,
            len: self.len,
            #[cfg(feature = "alloc")]
            owner: self.owner.clone(),
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish()
    }
}

/// Why a region access or a region construction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// The range `offset..offset + len` does not lie inside the region.
    OutOfBounds {
        /// First byte of the refused range.
        offset: usize,
        /// Length of the refused range.
        len: usize,
        /// Length of the region.
        region_len: usize,
    },
    /// A word access at an offset that is not a multiple of 8.
    Misaligned {
        /// The refused offset.
        offset: usize,
    },
    /// The memory handed to [`Region::from_raw_parts`] is null, not 8-byte aligned,
    /// empty, or its length is not a multiple of 8.
    BadBacking {
        /// Address of the refused memory.
        addr: usize,
        /// Length of the refused memory.
        len: usize,
    },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AccessError::OutOfBounds {
                offset,
                len,
                region_len,
            } => write!(
                f,
                "range {offset:#x}+{len:#x} lies outside the {region_len:#x}-byte region"
            ),
            AccessError::Misaligned { offset } => {
                write!(f, "word access at {offset:#x} is not 8-byte aligned")
            }
            AccessError::BadBacking { addr, len } => write!(
                f,
                "region memory at {addr:#x} ({len} bytes) must be non-null, 8-byte aligned, \
                 non-empty and a multiple of 8 bytes long"
            ),
        }
    }
}

impl core::error::Error for AccessError {}

impl Region {
    /// Wraps memory that is shared with peers.
    ///
    /// # Safety
    ///
    /// * `ptr..ptr + len` must stay mapped, readable and writable for as long as this
    ///   handle or any clone of it exists.
    /// * Every party that writes this memory (including peers in other kernels or
    ///   processes) must do so with whole, aligned 8-byte atomic or volatile stores,
    ///   as this module does; nothing in this process may access it otherwise.
    #[cfg(not(loom))]
    pub unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Result<Region, AccessError> {
        let addr = ptr.addr();
        let bad = AccessError::BadBacking { addr, len };
        if len == 0 || !len.is_multiple_of(WORD) || !addr.is_multiple_of(WORD) {
            return Err(bad);
        }
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or(bad)?;
        Ok(Region {
            base,
            len,
            #[cfg(feature = "alloc")]
            owner: None,
        })
    }

    /// Like [`Region::from_raw_parts`], keeping `owner` (say, the mapping) alive for
    /// as long as any handle exists.
    ///
    /// # Safety
    ///
    /// As for [`Region::from_raw_parts`], where "as long as" is guaranteed by `owner`
    /// keeping the memory mapped until it is dropped.
    #[cfg(all(feature = "alloc", not(loom)))]
    pub unsafe fn from_raw_parts_owned(
        ptr: *mut u8,
        len: usize,
        owner: alloc::sync::Arc<dyn Send + Sync>,
    ) -> Result<Region, AccessError> {
        // SAFETY: forwarded contract; `owner` keeps the memory alive.
        let mut region = unsafe { Region::from_raw_parts(ptr, len)? };
        region.owner = Some(owner);
        Ok(region)
    }

    /// A zero-filled, page-aligned region on the heap (for in-process channels and tests).
    ///
    /// `len` is rounded up to a multiple of 8 (and to at least 8).
    #[cfg(feature = "alloc")]
    pub fn new_heap(len: usize) -> Region {
        let len = len.max(WORD).next_multiple_of(WORD);
        let block = heap::Block::zeroed(len);
        let base = block.base();
        Region {
            base,
            len,
            owner: Some(alloc::sync::Arc::new(block)),
        }
    }

    /// Length of the region in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never true for a constructed region).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The word at byte offset `offset`, after checking alignment and bounds.
    #[inline]
    fn word(&self, offset: usize) -> Result<&AtomicU64, AccessError> {
        if !offset.is_multiple_of(WORD) {
            return Err(AccessError::Misaligned { offset });
        }
        self.check(offset, WORD)?;
        // SAFETY: `offset` is 8-aligned and `offset + 8 <= len`, so the word lies
        // inside the memory the constructor's contract keeps alive. A shared
        // reference to an atomic is sound even while peers write it: all mutation
        // goes through atomic operations (interior mutability).
        Ok(unsafe { &*self.base.as_ptr().add(offset / WORD) })
    }

    /// Checks that `offset..offset + len` lies inside the region.
    #[inline]
    pub fn check(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(AccessError::OutOfBounds {
                offset,
                len,
                region_len: self.len,
            }),
        }
    }

    /// Atomically loads the little-endian word at `offset`.
    #[inline]
    pub fn load(&self, offset: usize, order: Ordering) -> Result<u64, AccessError> {
        Ok(u64::from_le(self.word(offset)?.load(order)))
    }

    /// Atomically stores `value` little-endian at `offset`.
    #[inline]
    pub fn store(&self, offset: usize, value: u64, order: Ordering) -> Result<(), AccessError> {
        self.word(offset)?.store(value.to_le(), order);
        Ok(())
    }

    /// Atomically swaps the word at `offset` for `value`, returning the old value.
    #[inline]
    pub fn swap(&self, offset: usize, value: u64, order: Ordering) -> Result<u64, AccessError> {
        Ok(u64::from_le(self.word(offset)?.swap(value.to_le(), order)))
    }

    /// Atomically adds `value` (wrapping) to the word at `offset`, returning the
    /// old value.
    #[inline]
    pub fn fetch_add(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, AccessError> {
        let word = self.word(offset)?;
        #[cfg(target_endian = "little")]
        let old = word.fetch_add(value, order);
        // Big-endian hosts hold the word byte-swapped: add in a CAS loop. It may
        // retry while a peer keeps changing the word, never otherwise.
        #[cfg(target_endian = "big")]
        let old = {
            let mut current = word.load(Ordering::Relaxed);
            loop {
                let new = u64::from_le(current).wrapping_add(value).to_le();
                match word.compare_exchange_weak(current, new, order, Ordering::Relaxed) {
                    Ok(old) => break old,
                    Err(actual) => current = actual,
                }
            }
        };
        Ok(u64::from_le(old))
    }

    /// Atomic compare-and-exchange of the word at `offset`.
    ///
    /// `Ok(previous)` on success, `Ok(Err(actual))` when the word held another value.
    #[inline]
    pub fn compare_exchange(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u64, u64>, AccessError> {
        let word = self.word(offset)?;
        Ok(word
            .compare_exchange(current.to_le(), new.to_le(), success, failure)
            .map(u64::from_le)
            .map_err(u64::from_le))
    }

    /// Address of the word at `offset`, for kernel wait primitives that sleep on a
    /// word's value (a Linux futex). Checked like every access; never dereferenced
    /// here, so no reference into the region is formed.
    #[inline]
    pub fn word_address(&self, offset: usize) -> Result<*const u8, AccessError> {
        Ok(core::ptr::from_ref(self.word(offset)?).cast::<u8>())
    }

    /// Copies `dst.len()` bytes starting at `offset` out of the region.
    ///
    /// Each word is loaded once with `Relaxed` ordering; the caller orders the copy
    /// with the acquire load that told it the bytes were ready. A peer writing
    /// concurrently can make the copy inconsistent, never unsound.
    #[inline]
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> Result<(), AccessError> {
        self.check(offset, dst.len())?;
        let lead = (WORD - offset % WORD) % WORD;
        let (head, body) = dst.split_at_mut(lead.min(dst.len()));
        if !head.is_empty() {
            let skip = offset % WORD;
            let bytes = self.load_in_range(offset - skip).to_le_bytes();
            copy_bytes(head, &bytes[skip..]);
        }
        let start = offset + head.len();
        let (words, tail) = body.as_chunks_mut::<WORD>();
        let shared_words = self.words_in_range(start, words.len());
        for (word, shared) in words.iter_mut().zip(shared_words) {
            *word = u64::from_le(shared.load(Ordering::Relaxed)).to_le_bytes();
        }
        if !tail.is_empty() {
            let at = start + words.len() * WORD;
            copy_bytes(tail, &self.load_in_range(at).to_le_bytes());
        }
        Ok(())
    }

    /// Copies `src` into the region at `offset`.
    ///
    /// Whole words are stored with `Relaxed` ordering; a partial word at either end
    /// is read, merged and written back, so the caller must own every byte of those
    /// edge words (true for the sections an endpoint writes). The caller publishes
    /// the bytes with a later release store.
    #[inline]
    pub fn copy_in(&self, offset: usize, src: &[u8]) -> Result<(), AccessError> {
        self.check(offset, src.len())?;
        let lead = (WORD - offset % WORD) % WORD;
        let (head, body) = src.split_at(lead.min(src.len()));
        if !head.is_empty() {
            let skip = offset % WORD;
            let mut bytes = self.load_in_range(offset - skip).to_le_bytes();
            copy_bytes(&mut bytes[skip..], head);
            self.store_in_range(offset - skip, u64::from_le_bytes(bytes));
        }
        let start = offset + head.len();
        let (words, tail) = body.as_chunks::<WORD>();
        for (word, shared) in words.iter().zip(self.words_in_range(start, words.len())) {
            shared.store(u64::from_le_bytes(*word).to_le(), Ordering::Relaxed);
        }
        if !tail.is_empty() {
            let at = start + words.len() * WORD;
            let mut bytes = self.load_in_range(at).to_le_bytes();
            copy_bytes(&mut bytes, tail);
            self.store_in_range(at, u64::from_le_bytes(bytes));
        }
        Ok(())
    }

    /// Stores `f(i)` into word `i` of the `words`-word range at the 8-aligned
    /// `offset`, checking the range once (for writing whole buffers in place).
    ///
    /// Stores are `Relaxed`; the caller publishes them with a later release store.
    #[inline]
    pub fn store_words(
        &self,
        offset: usize,
        words: usize,
        mut f: impl FnMut(usize) -> u64,
    ) -> Result<(), AccessError> {
        for (i, word) in self.words(offset, words)?.iter().enumerate() {
            word.store(f(i).to_le(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Folds `f` over the `words`-word range at the 8-aligned `offset`, loading
    /// each word once (`Relaxed`; ordered by the caller's earlier acquire load).
    #[inline]
    pub fn fold_words<A>(
        &self,
        offset: usize,
        words: usize,
        init: A,
        mut f: impl FnMut(A, u64) -> A,
    ) -> Result<A, AccessError> {
        let words = self.words(offset, words)?;
        Ok(words.iter().fold(init, |acc, word| {
            f(acc, u64::from_le(word.load(Ordering::Relaxed)))
        }))
    }

    /// The `count` words from `offset`, after checking alignment and bounds once.
    #[inline]
    fn words(&self, offset: usize, count: usize) -> Result<&[AtomicU64], AccessError> {
        if !offset.is_multiple_of(WORD) {
            return Err(AccessError::Misaligned { offset });
        }
        self.check(offset, count.saturating_mul(WORD))?;
        Ok(self.words_in_range(offset, count))
    }

    /// The word at `offset`, inside a range the caller has already checked.
    #[inline(always)]
    fn word_in_range(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(WORD) && offset + WORD <= self.len);
        // SAFETY: callers pass an 8-aligned `offset` inside a range they checked
        // with `check` (the copy loops derive every offset from a checked range),
        // so the word lies inside the memory the constructor keeps alive. As in
        // `word`, a shared reference to an atomic is sound under concurrent writes.
        unsafe { &*self.base.as_ptr().add(offset / WORD) }
    }

    /// The `count` words from `offset`, inside a range the caller has already checked.
    #[inline(always)]
    fn words_in_range(&self, offset: usize, count: usize) -> &[AtomicU64] {
        debug_assert!(
            count == 0 || (offset.is_multiple_of(WORD) && offset + count * WORD <= self.len)
        );
        // SAFETY: as in `word_in_range`, for each of the `count` words: callers
        // pass an 8-aligned `offset` with `offset + count * 8` inside a range they
        // checked, and a slice of atomics is sound under concurrent atomic writes.
        unsafe { core::slice::from_raw_parts(self.base.as_ptr().add(offset / WORD), count) }
    }

    #[inline(always)]
    fn load_in_range(&self, offset: usize) -> u64 {
        u64::from_le(self.word_in_range(offset).load(Ordering::Relaxed))
    }

    #[inline(always)]
    fn store_in_range(&self, offset: usize, value: u64) {
        self.word_in_range(offset)
            .store(value.to_le(), Ordering::Relaxed);
    }

    /// Sets `len` bytes at the 8-aligned `offset` to zero (`len` a multiple of 8).
    pub fn zero(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        if !offset.is_multiple_of(WORD) || !len.is_multiple_of(WORD) {
            return Err(AccessError::Misaligned { offset });
        }
        for word in self.words(offset, len / WORD)? {
            word.store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Copies the first `dst.len()` bytes of `src` (at most 7: no `memcpy` call).
#[inline(always)]
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

#[cfg(feature = "alloc")]
mod heap {
    //! Heap backing for [`Region::new_heap`](super::Region::new_heap).

    use core::ptr::NonNull;

    use crate::sync::AtomicU64;

    /// Zeroed words owned by a region's handles.
    pub(super) struct Block {
        #[cfg(not(loom))]
        ptr: NonNull<AtomicU64>,
        #[cfg(not(loom))]
        layout: core::alloc::Layout,
        // loom atomics carry model state, so they must be constructed, not zeroed.
        #[cfg(loom)]
        words: alloc::boxed::Box<[AtomicU64]>,
    }

    // SAFETY: the block is plain memory accessed only through atomics.
    unsafe impl Send for Block {}
    // SAFETY: as for `Send`.
    unsafe impl Sync for Block {}

    /// Page alignment, so that sections laid out from offset 0 are page-aligned too.
    #[cfg(not(loom))]
    const ALIGN: usize = 4096;

    impl Block {
        #[cfg(not(loom))]
        pub(super) fn zeroed(len: usize) -> Block {
            let layout = core::alloc::Layout::from_size_align(len, ALIGN)
                .expect("heap region length overflows a Layout");
            // SAFETY: `layout` has a non-zero size (the caller rounds `len` up to >= 8).
            let raw = unsafe { alloc::alloc::alloc_zeroed(layout) };
            let Some(ptr) = NonNull::new(raw.cast::<AtomicU64>()) else {
                alloc::alloc::handle_alloc_error(layout)
            };
            Block { ptr, layout }
        }

        #[cfg(loom)]
        pub(super) fn zeroed(len: usize) -> Block {
            let words = (0..len / super::WORD).map(|_| AtomicU64::new(0)).collect();
            Block { words }
        }

        #[cfg(not(loom))]
        pub(super) fn base(&self) -> NonNull<AtomicU64> {
            self.ptr
        }

        #[cfg(loom)]
        pub(super) fn base(&self) -> NonNull<AtomicU64> {
            NonNull::from(&self.words[0])
        }
    }

    #[cfg(not(loom))]
    impl Drop for Block {
        fn drop(&mut self) {
            // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed only here.
            unsafe { alloc::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_little_endian() {
        let r = Region::new_heap(64);
        r.store(8, 0x0102_0304_0506_0708, Ordering::Relaxed)
            .unwrap();
        assert_eq!(r.load(8, Ordering::Relaxed).unwrap(), 0x0102_0304_0506_0708);
        let mut b = [0u8; 8];
        r.copy_out(8, &mut b).unwrap();
        assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn fetch_add_wraps_and_word_address_is_checked() {
        let r = Region::new_heap(64);
        r.store(16, u64::MAX, Ordering::Relaxed).unwrap();
        assert_eq!(r.fetch_add(16, 2, Ordering::Relaxed).unwrap(), u64::MAX);
        assert_eq!(r.load(16, Ordering::Relaxed).unwrap(), 1);
        assert!(r.fetch_add(64, 1, Ordering::Relaxed).is_err());
        let base = r.word_address(0).unwrap();
        assert_eq!(r.word_address(16).unwrap().addr() - base.addr(), 16);
        assert!(r.word_address(60).is_err());
        assert!(r.word_address(4).is_err());
    }

    #[test]
    fn unaligned_copies_keep_neighbours() {
        let r = Region::new_heap(64);
        r.copy_in(0, &[0xAA; 32]).unwrap();
        r.copy_in(3, b"hello, shared world").unwrap();
        let mut out = [0u8; 32];
        r.copy_out(0, &mut out).unwrap();
        assert_eq!(&out[..3], &[0xAA; 3]);
        assert_eq!(&out[3..22], b"hello, shared world");
        assert_eq!(&out[22..], &[0xAA; 10]);
        let mut mid = [0u8; 5];
        r.copy_out(10, &mut mid).unwrap();
        assert_eq!(&mid, b"share");
    }

    #[test]
    fn copies_round_trip_at_every_alignment() {
        // Lengths around a cache line, at offsets that put partial words before
        // and after the whole ones; the canary around the copy must survive.
        let r = Region::new_heap(512);
        for offset in [0, 3, 8, 61] {
            for len in [63, 64, 65, 72, 130, 200] {
                r.copy_in(0, &[0xEE; 512]).unwrap();
                let src: [u8; 200] = core::array::from_fn(|i| i as u8 ^ 0x5A);
                r.copy_in(offset, &src[..len]).unwrap();
                let mut out = [0u8; 512];
                r.copy_out(0, &mut out).unwrap();
                assert_eq!(&out[offset..offset + len], &src[..len], "{offset}+{len}");
                assert!(out[..offset].iter().all(|&b| b == 0xEE));
                assert!(out[offset + len..].iter().all(|&b| b == 0xEE));
            }
        }
        assert!(r.copy_in(512 - 63, &[0; 64]).is_err());
    }

    #[test]
    fn out_of_bounds_and_misaligned_are_errors() {
        let r = Region::new_heap(64);
        assert!(matches!(
            r.load(64, Ordering::Relaxed),
            Err(AccessError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.load(4, Ordering::Relaxed),
            Err(AccessError::Misaligned { offset: 4 })
        ));
        assert!(r.copy_out(60, &mut [0u8; 5]).is_err());
        assert!(r.copy_in(usize::MAX - 2, &[1, 2, 3, 4]).is_err());
        assert!(r.zero(8, 3).is_err());
        assert!(r.copy_out(64, &mut []).is_ok());
    }

    #[test]
    fn whole_word_ranges_store_and_fold() {
        let r = Region::new_heap(64);
        r.store_words(8, 6, |i| i as u64 + 1).unwrap();
        assert_eq!(r.fold_words(8, 6, 0, |a, w| a + w).unwrap(), 21);
        assert_eq!(r.load(0, Ordering::Relaxed).unwrap(), 0);
        assert_eq!(r.load(56, Ordering::Relaxed).unwrap(), 0);
        assert!(r.store_words(8, 8, |_| 1).is_err());
        assert!(r.fold_words(4, 1, 0, |a, _| a).is_err());
        assert!(r.fold_words(8, usize::MAX, 0, |a, _| a).is_err());
    }

    #[test]
    fn raw_backing_is_validated() {
        let mut words = [0u64; 4];
        let p = words.as_mut_ptr().cast::<u8>();
        // SAFETY: `words` outlives every use of the regions below and is only
        // accessed through them.
        unsafe {
            assert!(Region::from_raw_parts(p, 0).is_err());
            assert!(Region::from_raw_parts(p, 12).is_err());
            assert!(Region::from_raw_parts(p.add(4), 16).is_err());
            assert!(Region::from_raw_parts(core::ptr::null_mut(), 16).is_err());
            let r = Region::from_raw_parts(p, 32).unwrap();
            r.store(24, 7, Ordering::Relaxed).unwrap();
            assert_eq!(r.load(24, Ordering::Relaxed).unwrap(), 7);
        }
    }
}
