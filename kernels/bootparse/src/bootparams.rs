//! The boot parameter block kernel0 writes at the start of a secondary's
//! partition (little-endian, fixed offsets), and its validation.

use crate::bytes::{put, u32_at, u64_at};
use crate::layout::{MAX_NODES, Range};

/// Identifies a parameter block.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MKBOOTP1");
/// Layout version of the block.
pub const VERSION: u32 = 1;
/// Encoded size in bytes.
pub const SIZE: usize = 128;
const TWO_MIB: u64 = 0x20_0000;

/// What a secondary learns from kernel0 at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootParams {
    /// This node's id (1..MAX_NODES).
    pub node_id: u32,
    /// This CPU's local APIC id.
    pub apic_id: u32,
    /// Kernel0's local APIC id (where IPIs to kernel0 go).
    pub kernel0_apic_id: u32,
    /// Vector of the IPI doorbell.
    pub ipi_vector: u32,
    /// Starts at 1, incremented on every restart of this node.
    pub epoch: u64,
    /// The partition, physical.
    pub partition_phys: u64,
    /// Where the partition is mapped in the node's address space.
    pub partition_virt: u64,
    /// Partition size in bytes.
    pub partition_size: u64,
    /// The shared region, physical.
    pub shared_phys: u64,
    /// Where the node maps the shared region.
    pub shared_virt: u64,
    /// Shared region size in bytes.
    pub shared_size: u64,
    /// Physical address of the local APIC registers.
    pub lapic_phys: u64,
    /// Calibrated TSC frequency in Hz.
    pub tsc_hz: u64,
}

/// Why a parameter block was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// Fewer than [`SIZE`] bytes.
    Truncated,
    /// Wrong magic.
    BadMagic,
    /// Unknown layout version.
    BadVersion(u32),
    /// Node id out of range.
    BadNode(u32),
    /// A region is empty, unaligned, wrapping, or overlaps another.
    BadRegion,
    /// TSC frequency is zero.
    BadTsc,
    /// IPI vector below 32 or above 255.
    BadVector(u32),
}

impl BootParams {
    /// Encodes the block.
    pub fn encode(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        let words: [(usize, &[u8]); 17] = [
            (0, &MAGIC.to_le_bytes()),
            (8, &VERSION.to_le_bytes()),
            (12, &self.node_id.to_le_bytes()),
            (16, &self.apic_id.to_le_bytes()),
            (20, &self.kernel0_apic_id.to_le_bytes()),
            (24, &self.ipi_vector.to_le_bytes()),
            (28, &0u32.to_le_bytes()),
            (32, &self.epoch.to_le_bytes()),
            (40, &self.partition_phys.to_le_bytes()),
            (48, &self.partition_virt.to_le_bytes()),
            (56, &self.partition_size.to_le_bytes()),
            (64, &self.shared_phys.to_le_bytes()),
            (72, &self.shared_virt.to_le_bytes()),
            (80, &self.shared_size.to_le_bytes()),
            (88, &self.lapic_phys.to_le_bytes()),
            (96, &self.tsc_hz.to_le_bytes()),
            (104, &[0u8; 24]),
        ];
        for (off, v) in words {
            // Offsets are constants inside SIZE; a miss would only drop a field.
            let _ = put(&mut b, off, v);
        }
        b
    }

    /// Decodes and validates a block.
    pub fn decode(b: &[u8]) -> Result<BootParams, ParamError> {
        let t = ParamError::Truncated;
        if b.len() < SIZE {
            return Err(t);
        }
        if u64_at(b, 0) != Some(MAGIC) {
            return Err(ParamError::BadMagic);
        }
        let version = u32_at(b, 8).ok_or(t)?;
        if version != VERSION {
            return Err(ParamError::BadVersion(version));
        }
        let w32 = |o| u32_at(b, o).ok_or(t);
        let w64 = |o| u64_at(b, o).ok_or(t);
        let p = BootParams {
            node_id: w32(12)?,
            apic_id: w32(16)?,
            kernel0_apic_id: w32(20)?,
            ipi_vector: w32(24)?,
            epoch: w64(32)?,
            partition_phys: w64(40)?,
            partition_virt: w64(48)?,
            partition_size: w64(56)?,
            shared_phys: w64(64)?,
            shared_virt: w64(72)?,
            shared_size: w64(80)?,
            lapic_phys: w64(88)?,
            tsc_hz: w64(96)?,
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), ParamError> {
        if self.node_id == 0 || self.node_id as usize >= MAX_NODES {
            return Err(ParamError::BadNode(self.node_id));
        }
        if !(32..=255).contains(&self.ipi_vector) {
            return Err(ParamError::BadVector(self.ipi_vector));
        }
        if self.tsc_hz == 0 {
            return Err(ParamError::BadTsc);
        }
        let regions = [
            (self.partition_phys, self.partition_size),
            (self.partition_virt, self.partition_size),
            (self.shared_phys, self.shared_size),
            (self.shared_virt, self.shared_size),
        ];
        for (base, size) in regions {
            let aligned = base.is_multiple_of(TWO_MIB) && size.is_multiple_of(TWO_MIB);
            if size == 0 || !aligned || base.checked_add(size).is_none() {
                return Err(ParamError::BadRegion);
            }
        }
        let phys_p = Range {
            base: self.partition_phys,
            size: self.partition_size,
        };
        let phys_s = Range {
            base: self.shared_phys,
            size: self.shared_size,
        };
        let virt_p = Range {
            base: self.partition_virt,
            size: self.partition_size,
        };
        let virt_s = Range {
            base: self.shared_virt,
            size: self.shared_size,
        };
        let lapic = Range {
            base: self.lapic_phys,
            size: 0x1000,
        };
        if phys_p.overlaps(&phys_s)
            || virt_p.overlaps(&virt_s)
            || virt_p.overlaps(&lapic)
            || virt_s.overlaps(&lapic)
            || !self.lapic_phys.is_multiple_of(0x1000)
        {
            return Err(ParamError::BadRegion);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BootParams {
        BootParams {
            node_id: 2,
            apic_id: 2,
            kernel0_apic_id: 0,
            ipi_vector: 0xf0,
            epoch: 3,
            partition_phys: 0x500_0000,
            partition_virt: 0x4000_0000,
            partition_size: 0x100_0000,
            shared_phys: 0x200_0000,
            shared_virt: 0x5000_0000,
            shared_size: 0x20_0000,
            lapic_phys: 0xfee0_0000,
            tsc_hz: 2_000_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let p = sample();
        assert_eq!(BootParams::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn rejects_malformed_blocks() {
        let good = sample().encode();
        assert_eq!(
            BootParams::decode(&good[..SIZE - 1]),
            Err(ParamError::Truncated)
        );
        let mut b = good;
        b[0] ^= 1;
        assert_eq!(BootParams::decode(&b), Err(ParamError::BadMagic));
        let mut b = good;
        b[8] = 9;
        assert_eq!(BootParams::decode(&b), Err(ParamError::BadVersion(9)));
        let bad = |f: fn(&mut BootParams)| {
            let mut p = sample();
            f(&mut p);
            BootParams::decode(&p.encode())
        };
        assert_eq!(bad(|p| p.node_id = 0), Err(ParamError::BadNode(0)));
        assert_eq!(bad(|p| p.node_id = 8), Err(ParamError::BadNode(8)));
        assert_eq!(bad(|p| p.ipi_vector = 14), Err(ParamError::BadVector(14)));
        assert_eq!(bad(|p| p.tsc_hz = 0), Err(ParamError::BadTsc));
        assert_eq!(bad(|p| p.partition_size = 0), Err(ParamError::BadRegion));
        assert_eq!(
            bad(|p| p.partition_phys += 0x1000),
            Err(ParamError::BadRegion)
        );
        assert_eq!(
            bad(|p| p.shared_phys = 0x500_0000),
            Err(ParamError::BadRegion)
        );
        assert_eq!(
            bad(|p| p.shared_virt = 0x4020_0000),
            Err(ParamError::BadRegion)
        );
        assert_eq!(
            bad(|p| p.shared_virt = 0xfee0_0000),
            Err(ParamError::BadRegion)
        );
        assert_eq!(
            bad(|p| p.partition_virt = u64::MAX - 0x1f_ffff),
            Err(ParamError::BadRegion)
        );
    }
}
