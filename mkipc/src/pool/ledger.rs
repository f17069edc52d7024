//! Private, fixed-size records of buffer ownership (no allocator, never shared).

use super::layout::MAX_BUFFERS;

const WORDS: usize = (MAX_BUFFERS as usize).div_ceil(64);

/// A fixed-capacity bit set of buffer indices below [`MAX_BUFFERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitSet {
    words: [u64; WORDS],
}

impl BitSet {
    pub(crate) const fn empty() -> BitSet {
        BitSet { words: [0; WORDS] }
    }

    /// The set `0..n` (`n <= MAX_BUFFERS`).
    pub(crate) fn first(n: usize) -> BitSet {
        let mut s = BitSet::empty();
        for i in 0..n.min(MAX_BUFFERS as usize) {
            s.insert(i);
        }
        s
    }

    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// Lowest member, if any.
    #[inline]
    pub(crate) fn lowest(&self) -> Option<usize> {
        self.words
            .iter()
            .position(|&w| w != 0)
            .map(|k| k * 64 + self.words[k].trailing_zeros() as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Moves every member of `other` into `self`; `other` becomes empty.
    pub(crate) fn absorb(&mut self, other: &mut BitSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter_mut()) {
            *a |= *b;
            *b = 0;
        }
    }
}

/// The sender's record of every buffer: free, loaned to its own writer, or lent
/// to the receiver. Only lent buffers may come back through the completion ring.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ledger {
    free: BitSet,
    lent: BitSet,
    count: usize,
}

impl Ledger {
    pub(crate) fn new(count: usize) -> Ledger {
        Ledger {
            free: BitSet::first(count),
            lent: BitSet::empty(),
            count,
        }
    }

    /// Takes a free buffer for writing.
    pub(crate) fn take(&mut self) -> Option<usize> {
        let i = self.free.lowest()?;
        self.free.remove(i);
        Some(i)
    }

    /// Whether `i` is loaned to the sender's own writer (neither free nor lent).
    pub(crate) fn is_loaned(&self, i: usize) -> bool {
        i < self.count && !self.free.contains(i) && !self.lent.contains(i)
    }

    /// A loaned buffer that was not sent goes back to the free set.
    pub(crate) fn cancel(&mut self, i: usize) {
        self.free.insert(i);
    }

    /// A loaned buffer is now the receiver's.
    pub(crate) fn lend(&mut self, i: usize) {
        self.lent.insert(i);
    }

    /// The receiver gives `i` back: accepted only when it is lent.
    pub(crate) fn accept_return(&mut self, i: usize) -> bool {
        if !self.lent.contains(i) {
            return false;
        }
        self.lent.remove(i);
        self.free.insert(i);
        true
    }

    /// Every lent buffer becomes free (the receiver is fenced); returns how many.
    pub(crate) fn reclaim_lent(&mut self) -> usize {
        let n = self.lent.len();
        self.free.absorb(&mut self.lent);
        n
    }

    pub(crate) fn free_count(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn lent_count(&self) -> usize {
        self.lent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_move_free_loaned_lent_free() {
        let mut l = Ledger::new(70);
        assert_eq!(l.free_count(), 70);
        let a = l.take().unwrap();
        assert!(l.is_loaned(a));
        assert!(!l.accept_return(a), "loaned, not lent");
        l.lend(a);
        assert!(!l.is_loaned(a));
        assert!(l.accept_return(a));
        assert!(!l.accept_return(a), "double return");
        for _ in 0..70 {
            let i = l.take().unwrap();
            l.lend(i);
        }
        assert_eq!(l.take(), None);
        assert!(!l.is_loaned(70) && !l.accept_return(70) && !l.accept_return(5000));
        assert_eq!(l.reclaim_lent(), 70);
        assert_eq!((l.free_count(), l.lent_count()), (70, 0));
    }
}
