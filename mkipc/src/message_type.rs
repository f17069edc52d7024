//! Message type identity: what both ends of a channel must agree on before they talk.
//!
//! The identity travels in shared memory (channel descriptors, the manifest, the
//! handshake) as three little-endian words; [`MessageType::to_wire`] and
//! [`MessageType::from_wire`] are the only conversions. The name hash uses
//! `core::any::type_name`, which is stable for one toolchain; builds that disagree on
//! a name refuse to connect, which errs on the safe side.

use crate::layout::fnv1a;

/// Size, alignment and name hash of a channel's message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// `size_of::<T>()`, or the maximum length for byte messages.
    pub size: u32,
    /// `align_of::<T>()`, or 1 for byte messages.
    pub align: u32,
    /// FNV-1a hash of the type's name (`"[u8]"` for byte messages).
    pub name_hash: u64,
}

/// Seed of every name hash (the FNV-1a offset basis).
const SEED: u64 = 0xcbf2_9ce4_8422_2325;

impl MessageType {
    /// The identity of a fixed-size type `T`.
    pub fn of<T>() -> Self {
        Self {
            size: size_of::<T>() as u32,
            align: align_of::<T>() as u32,
            name_hash: fnv1a(SEED, core::any::type_name::<T>().as_bytes()),
        }
    }

    /// The identity of variable-length byte messages of at most `max_len` bytes.
    pub const fn bytes(max_len: u32) -> Self {
        Self {
            size: max_len,
            align: 1,
            name_hash: fnv1a(SEED, b"[u8]"),
        }
    }

    /// The identity as it is stored in shared memory: `[size | align << 32, name_hash]`.
    pub const fn to_wire(self) -> [u64; 2] {
        [self.size as u64 | (self.align as u64) << 32, self.name_hash]
    }

    /// Decodes a stored identity (any bit pattern decodes; comparing decides).
    pub const fn from_wire(words: [u64; 2]) -> Self {
        Self {
            size: words[0] as u32,
            align: (words[0] >> 32) as u32,
            name_hash: words[1],
        }
    }

    /// Whether a receiver expecting `self` can take messages described by `offered`.
    pub fn accepts(&self, offered: &MessageType) -> bool {
        self == offered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_types_differ_and_wire_round_trips() {
        let a = MessageType::of::<u64>();
        let b = MessageType::of::<[u32; 2]>();
        assert_eq!(a.size, b.size);
        assert_ne!(a, b, "same size, different names");
        assert_eq!(MessageType::from_wire(a.to_wire()), a);
        assert_ne!(MessageType::bytes(64), MessageType::bytes(128));
        assert!(MessageType::bytes(64).accepts(&MessageType::bytes(64)));
    }
}
