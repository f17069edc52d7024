//! Set-up records (descriptors) of rings, channels and pools.
//!
//! A descriptor is written once by its creator, magic last with a release store,
//! and read once by each endpoint, which acquires the magic, copies the record out
//! and recomputes every derived field from the recorded geometry. This module holds
//! that procedure once; each structure keeps its own public error type, whose
//! variants of the same names [`impl_from_descriptor_error!`] fills in.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::shm::{AccessError, Region, WORD};
use crate::sync::Ordering;

/// What reading or placing a descriptor found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DescriptorError {
    Access(AccessError),
    NotInitialized,
    BadMagic {
        found: u64,
    },
    LayoutMismatch {
        field: &'static str,
        found: u64,
        expected: u64,
    },
    Misplaced {
        offset: usize,
        align: usize,
    },
    DoesNotFit {
        offset: usize,
        size: usize,
        region_len: usize,
    },
}

impl From<AccessError> for DescriptorError {
    fn from(e: AccessError) -> Self {
        DescriptorError::Access(e)
    }
}

/// `impl From<DescriptorError> for $error`, for an error enum with variants of the
/// same names and fields.
macro_rules! impl_from_descriptor_error {
    ($error:ident) => {
        impl From<$crate::descriptor::DescriptorError> for $error {
            fn from(e: $crate::descriptor::DescriptorError) -> Self {
                use $crate::descriptor::DescriptorError as D;
                match e {
                    D::Access(e) => $error::Access(e),
                    D::NotInitialized => $error::NotInitialized,
                    D::BadMagic { found } => $error::BadMagic { found },
                    D::LayoutMismatch {
                        field,
                        found,
                        expected,
                    } => $error::LayoutMismatch {
                        field,
                        found,
                        expected,
                    },
                    D::Misplaced { offset, align } => $error::Misplaced { offset, align },
                    D::DoesNotFit {
                        offset,
                        size,
                        region_len,
                    } => $error::DoesNotFit {
                        offset,
                        size,
                        region_len,
                    },
                }
            }
        }
    };
}
pub(crate) use impl_from_descriptor_error;

/// Writes `descriptor` at `offset` behind its first word, then publishes `magic`
/// in that word.
pub(crate) fn publish<D: IntoBytes + Immutable>(
    region: &Region,
    offset: usize,
    magic: u64,
    descriptor: &D,
) -> Result<(), AccessError> {
    region.copy_in(offset + WORD, &descriptor.as_bytes()[WORD..])?;
    // Release: pairs with the Acquire load of the magic in `read`, so an endpoint
    // that sees the magic sees the descriptor and everything the creator wrote
    // before it (the zeroed or formatted structure).
    region.store(offset, magic, Ordering::Release)
}

/// Reads the descriptor at `offset` once, if its first word is `magic`.
pub(crate) fn read<D: FromBytes + IntoBytes>(
    region: &Region,
    offset: usize,
    magic: u64,
) -> Result<D, DescriptorError> {
    region.check(offset, size_of::<D>())?;
    // Acquire: pairs with the Release store of the magic in `publish`.
    match region.load(offset, Ordering::Acquire)? {
        0 => return Err(DescriptorError::NotInitialized),
        m if m == magic => {}
        found => return Err(DescriptorError::BadMagic { found }),
    }
    let mut d = D::new_zeroed();
    region.copy_out(offset, d.as_mut_bytes())?;
    // The copy read the magic word again; keep the value that was checked.
    d.as_mut_bytes()[..WORD].copy_from_slice(&magic.to_le_bytes());
    Ok(d)
}

/// A recorded derived field must equal what the recorded geometry implies.
pub(crate) fn expect(
    field: &'static str,
    found: u64,
    expected: usize,
) -> Result<(), DescriptorError> {
    if found == expected as u64 {
        Ok(())
    } else {
        Err(DescriptorError::LayoutMismatch {
            field,
            found,
            expected: expected as u64,
        })
    }
}

/// A structure of `size` bytes at `offset` must be `align`-aligned and fit the region.
pub(crate) fn check_place(
    region: &Region,
    offset: usize,
    align: usize,
    size: usize,
) -> Result<(), DescriptorError> {
    if !offset.is_multiple_of(align) {
        return Err(DescriptorError::Misplaced { offset, align });
    }
    region
        .check(offset, size)
        .map_err(|_| DescriptorError::DoesNotFit {
            offset,
            size,
            region_len: region.len(),
        })
}
