//! Bounds-checked little-endian field reads from byte slices.

/// `N` bytes at `off`, or `None` when the slice is too short.
pub(crate) fn array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    b.get(off..end)?.try_into().ok()
}

pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_le_bytes)
}

/// Wrapping byte sum; ACPI tables are valid when it is zero.
pub(crate) fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |acc, &x| acc.wrapping_add(x))
}

/// Writes `v` at `off`; false when it does not fit.
pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) -> bool {
    let Some(end) = off.checked_add(v.len()) else {
        return false;
    };
    match b.get_mut(off..end) {
        Some(dst) => {
            dst.copy_from_slice(v);
            true
        }
        None => false,
    }
}
