//! The boot module kernel0 receives (`-initrd`): either one secondary ELF
//! image, or a bundle of several builds of it, oldest first, so that a node
//! can be restarted with a newer build than it first ran.
//!
//! ```text
//! 0   magic  "MKIMGBN1"
//! 8   count  u32 LE (1..=MAX_IMAGES)
//! 12  zero   u32
//! 16  count x { offset u64 LE, size u64 LE }   (from the bundle's start)
//! ..  the images: inside the bundle, after the table, disjoint, non-empty
//! ```
//!
//! The bundle comes from outside kernel0; every field is checked and each
//! image is still validated as an ELF by [`crate::elf::plan`] afterwards.

use crate::bytes::{u32_at, u64_at};

/// Magic at the start of a bundle.
pub const MAGIC: [u8; 8] = *b"MKIMGBN1";
/// Most images in one bundle.
pub const MAX_IMAGES: usize = 4;
const HEADER: usize = 16;
const ENTRY: usize = 16;
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// What is wrong with the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleError {
    /// Neither a bundle nor an ELF image (pass the secondary, or a bundle
    /// built by `kernels/run.sh`).
    NotAnImage,
    /// The header or its table is cut short.
    Truncated,
    /// The image count is 0 or above [`MAX_IMAGES`].
    BadCount(u32),
    /// The reserved header word is not zero.
    Reserved(u32),
    /// Image `n` is empty.
    Empty(usize),
    /// Image `n` reaches past the bundle or into its header/table.
    OutOfBounds(usize),
    /// Image `n` overlaps an earlier one.
    Overlaps(usize),
}

/// The images of a module, oldest build first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Images<'a> {
    slots: [&'a [u8]; MAX_IMAGES],
    count: usize,
}

impl<'a> Images<'a> {
    /// The images, oldest first (at least one).
    pub fn all(&self) -> &[&'a [u8]] {
        self.slots.get(..self.count).unwrap_or(&[])
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a parsed module holds at least one image.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Splits `module` into its images: a bare ELF is one image.
pub fn parse(module: &[u8]) -> Result<Images<'_>, BundleError> {
    let mut slots: [&[u8]; MAX_IMAGES] = [&[]; MAX_IMAGES];
    if module.starts_with(&ELF_MAGIC) {
        slots[0] = module;
        return Ok(Images { slots, count: 1 });
    }
    if !module.starts_with(&MAGIC) {
        return Err(BundleError::NotAnImage);
    }
    let count = u32_at(module, 8).ok_or(BundleError::Truncated)?;
    let reserved = u32_at(module, 12).ok_or(BundleError::Truncated)?;
    if count == 0 || count as usize > MAX_IMAGES {
        return Err(BundleError::BadCount(count));
    }
    if reserved != 0 {
        return Err(BundleError::Reserved(reserved));
    }
    let n = count as usize;
    let table_end = (HEADER + n * ENTRY) as u64;
    if (module.len() as u64) < table_end {
        return Err(BundleError::Truncated);
    }
    let mut spans = [(0u64, 0u64); MAX_IMAGES];
    for i in 0..n {
        let at = HEADER + i * ENTRY;
        let off = u64_at(module, at).ok_or(BundleError::Truncated)?;
        let size = u64_at(module, at + 8).ok_or(BundleError::Truncated)?;
        if size == 0 {
            return Err(BundleError::Empty(i));
        }
        let end = off
            .checked_add(size)
            .filter(|&e| off >= table_end && e <= module.len() as u64)
            .ok_or(BundleError::OutOfBounds(i))?;
        if spans[..i].iter().any(|&(a, b)| off < b && a < end) {
            return Err(BundleError::Overlaps(i));
        }
        spans[i] = (off, end);
        slots[i] = module
            .get(off as usize..end as usize)
            .ok_or(BundleError::OutOfBounds(i))?;
    }
    Ok(Images { slots, count: n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(images: &[&[u8]]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend((images.len() as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        let mut off = (HEADER + images.len() * ENTRY) as u64;
        for im in images {
            out.extend(off.to_le_bytes());
            out.extend((im.len() as u64).to_le_bytes());
            off += im.len() as u64;
        }
        for im in images {
            out.extend_from_slice(im);
        }
        out
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn bare_elf_and_bundles() {
        let elf = b"\x7fELF rest of an image";
        let one = parse(elf).unwrap();
        assert_eq!(one.all(), &[&elf[..]]);
        let b = bundle(&[b"\x7fELF old", b"\x7fELF newer"]);
        let two = parse(&b).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two.all()[0], b"\x7fELF old");
        assert_eq!(two.all()[1], b"\x7fELF newer");
    }

    #[test]
    fn rejects_malformed_bundles() {
        assert_eq!(parse(b""), Err(BundleError::NotAnImage));
        assert_eq!(parse(b"MZ\x90\x00"), Err(BundleError::NotAnImage));
        assert_eq!(parse(b"MKIMGBN1\x01\0\0"), Err(BundleError::Truncated));
        let good = bundle(&[b"aaaa", b"bbbb"]);
        // Table cut short.
        assert_eq!(parse(&good[..HEADER + ENTRY]), Err(BundleError::Truncated));
        let mut b = good.clone();
        b[8] = 0;
        assert_eq!(parse(&b), Err(BundleError::BadCount(0)));
        b[8] = 5;
        assert_eq!(parse(&b), Err(BundleError::BadCount(5)));
        let mut b = good.clone();
        b[12] = 1;
        assert_eq!(parse(&b), Err(BundleError::Reserved(1)));
        let mut b = good.clone();
        set_u64(&mut b, HEADER + 8, 0);
        assert_eq!(parse(&b), Err(BundleError::Empty(0)));
        // Past the end, into the table, wrapping.
        for off in [good.len() as u64 - 3, 8, u64::MAX - 1] {
            let mut b = good.clone();
            set_u64(&mut b, HEADER + ENTRY, off);
            assert_eq!(parse(&b), Err(BundleError::OutOfBounds(1)), "{off}");
        }
        let mut b = good.clone();
        set_u64(&mut b, HEADER + ENTRY + 8, u64::MAX);
        assert_eq!(parse(&b), Err(BundleError::OutOfBounds(1)));
        // Second image overlapping the first.
        let mut b = good.clone();
        let first = u64::from_le_bytes(b[HEADER..HEADER + 8].try_into().unwrap());
        set_u64(&mut b, HEADER + ENTRY, first + 2);
        assert_eq!(parse(&b), Err(BundleError::Overlaps(1)));
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let good = bundle(&[b"\x7fELF one", b"\x7fELF two", b"three"]);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                if let Ok(images) = parse(&b) {
                    for im in images.all() {
                        assert!(!im.is_empty());
                    }
                }
            }
        }
    }
}
