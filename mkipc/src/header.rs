//! Writing and checking the region header at offset 0.

use core::fmt;
use core::mem::size_of;

use zerocopy::{FromBytes, FromZeros};

use crate::descriptor;
use crate::layout::{ABI_VERSION, LAYOUT_HASH, REGION_MAGIC, RegionHeader};
use crate::shm::{AccessError, Region};
use crate::sync::Ordering;

/// Feature bits this build understands (none are defined yet beyond the base ABI).
pub const FEATURES: u64 = 0;

/// Why a region header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The region is smaller than a header, or an access failed.
    Access(AccessError),
    /// No header yet: the owner has not initialised the region (or wrote zeros).
    NotInitialized,
    /// The first word is not the mkipc magic: this is not an mkipc region.
    BadMagic {
        /// The word found at offset 0.
        found: u64,
    },
    /// The writer speaks another ABI version.
    VersionMismatch {
        /// Our ABI version.
        ours: u32,
        /// The writer's.
        theirs: u32,
    },
    /// Same version, but the builds disagree about the layout (hash or header size).
    LayoutMismatch {
        /// Our layout hash.
        ours: u64,
        /// The writer's.
        theirs: u64,
    },
    /// The header's recorded size disagrees with the memory we mapped.
    SizeMismatch {
        /// Size recorded in the header.
        recorded: u64,
        /// Size of our mapping.
        mapped: u64,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::Access(e) => write!(f, "cannot read the region header: {e}"),
            HeaderError::NotInitialized => write!(
                f,
                "the region has no mkipc header yet; create it first (or wait for its owner)"
            ),
            HeaderError::BadMagic { found } => write!(
                f,
                "not an mkipc region: magic {found:#018x}, expected {REGION_MAGIC:#018x}"
            ),
            HeaderError::VersionMismatch { ours, theirs } => write!(
                f,
                "ABI version mismatch: region has version {theirs}, this build speaks {ours}; \
                 rebuild both sides from compatible releases"
            ),
            HeaderError::LayoutMismatch { ours, theirs } => write!(
                f,
                "layout hash mismatch: region {theirs:#018x}, this build {ours:#018x}; \
                 both sides must be built from the same wire layout"
            ),
            HeaderError::SizeMismatch { recorded, mapped } => write!(
                f,
                "region header records {recorded} bytes but {mapped} are mapped; \
                 map the whole region"
            ),
        }
    }
}

impl core::error::Error for HeaderError {}

impl From<AccessError> for HeaderError {
    fn from(e: AccessError) -> Self {
        HeaderError::Access(e)
    }
}

/// Writes a fresh header for the whole region with the given generation.
///
/// The magic is stored last with `Release`; it pairs with the `Acquire` load in
/// [`read_header`], so a reader that sees the magic sees every other field.
pub fn write_header(region: &Region, generation: u64) -> Result<RegionHeader, AccessError> {
    let mut header = RegionHeader::new_zeroed();
    header.abi_version.set(ABI_VERSION);
    header.header_size.set(size_of::<RegionHeader>() as u32);
    header.layout_hash.set(LAYOUT_HASH);
    header.features.set(FEATURES);
    header.region_size.set(region.len() as u64);
    header.generation.set(generation);
    region.check(0, size_of::<RegionHeader>())?;
    region.store(0, 0, Ordering::Relaxed)?;
    descriptor::publish(region, 0, REGION_MAGIC, &header)?;
    header.magic.set(REGION_MAGIC);
    Ok(header)
}

/// Reads the header once, then validates the private copy.
pub fn read_header(region: &Region) -> Result<RegionHeader, HeaderError> {
    region.check(0, size_of::<RegionHeader>())?;
    // Acquire: pairs with the Release store of the magic in `descriptor::publish`.
    let magic = region.load(0, Ordering::Acquire)?;
    match magic {
        0 => return Err(HeaderError::NotInitialized),
        REGION_MAGIC => {}
        found => return Err(HeaderError::BadMagic { found }),
    }
    let mut bytes = [0u8; size_of::<RegionHeader>()];
    region.copy_out(0, &mut bytes)?;
    let mut header =
        RegionHeader::read_from_bytes(&bytes).map_err(|_| HeaderError::NotInitialized)?;
    header.magic.set(magic);
    validate(&header, region.len())?;
    Ok(header)
}

fn validate(h: &RegionHeader, mapped: usize) -> Result<(), HeaderError> {
    if h.abi_version.get() != ABI_VERSION {
        return Err(HeaderError::VersionMismatch {
            ours: ABI_VERSION,
            theirs: h.abi_version.get(),
        });
    }
    if h.layout_hash.get() != LAYOUT_HASH
        || h.header_size.get() as usize != size_of::<RegionHeader>()
    {
        return Err(HeaderError::LayoutMismatch {
            ours: LAYOUT_HASH,
            theirs: h.layout_hash.get(),
        });
    }
    if h.region_size.get() != mapped as u64 {
        return Err(HeaderError::SizeMismatch {
            recorded: h.region_size.get(),
            mapped: mapped as u64,
        });
    }
    Ok(())
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::layout::RegionHeader;
    use core::mem::offset_of;

    #[test]
    fn header_round_trips() {
        let r = Region::new_heap(8192);
        let written = write_header(&r, 3).unwrap();
        let read = read_header(&r).unwrap();
        assert_eq!(written, read);
        assert_eq!(read.generation.get(), 3);
        assert_eq!(read.region_size.get(), 8192);
    }

    #[test]
    fn each_bad_field_gets_its_own_error() {
        let r = Region::new_heap(8192);
        assert_eq!(read_header(&r), Err(HeaderError::NotInitialized));
        write_header(&r, 1).unwrap();
        r.store(0, 0x1234, Ordering::Relaxed).unwrap();
        assert_eq!(
            read_header(&r),
            Err(HeaderError::BadMagic { found: 0x1234 })
        );

        write_header(&r, 1).unwrap();
        let theirs = u64::from(ABI_VERSION) + 1;
        r.store(8, theirs | (128 << 32), Ordering::Relaxed).unwrap();
        assert!(matches!(
            read_header(&r),
            Err(HeaderError::VersionMismatch { theirs: t, .. }) if u64::from(t) == theirs
        ));

        write_header(&r, 1).unwrap();
        r.store(offset_of!(RegionHeader, layout_hash), 99, Ordering::Relaxed)
            .unwrap();
        assert!(matches!(
            read_header(&r),
            Err(HeaderError::LayoutMismatch { theirs: 99, .. })
        ));

        write_header(&r, 1).unwrap();
        r.store(
            offset_of!(RegionHeader, region_size),
            1 << 40,
            Ordering::Relaxed,
        )
        .unwrap();
        assert!(matches!(
            read_header(&r),
            Err(HeaderError::SizeMismatch { .. })
        ));

        let tiny = Region::new_heap(64);
        assert!(matches!(read_header(&tiny), Err(HeaderError::Access(_))));
    }
}
