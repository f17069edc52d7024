//! The messages kernel0 and a node exchange over their pair of mkipc rings
//! (little-endian words). Received bytes come from the peer and are decoded
//! into values or errors, never trusted.

use crate::bytes::{put, u64_at};

/// Request: answer `arg` with [`ping_answer`].
pub const OP_PING: u64 = 1;
/// Request: write to `arg`, an address outside the node's partition
/// (a deliberate crash that the node's page tables must catch).
pub const OP_CRASH: u64 = 2;
/// Request: acknowledge with `arg`, then answer `arg` rounds of the raw
/// cache-line ping-pong on the control page's FLOOR words.
pub const OP_FLOOR: u64 = 3;
/// Request: recurse until the stack runs into its guard page (a deliberate
/// crash that the double-fault IST stack must report).
pub const OP_OVERFLOW: u64 = 4;
/// Request (images with [`FEATURE_CHECKSUM`] only): answer
/// [`checksum`]`(arg)`.
pub const OP_CHECKSUM: u64 = 5;
/// Feature bit: the image answers [`OP_CHECKSUM`].
pub const FEATURE_CHECKSUM: u64 = 1 << 0;
/// Every feature bit this version of the protocol defines.
pub const KNOWN_FEATURES: u64 = FEATURE_CHECKSUM;
/// The answer to [`OP_CHECKSUM`]: FNV-1a over the eight LE bytes of `arg`.
pub fn checksum(arg: u64) -> u64 {
    arg.to_le_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Encoded request size.
pub const REQUEST_LEN: usize = 24;
/// Encoded response size.
pub const RESPONSE_LEN: usize = 16;

/// A decoding failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The message has the wrong length.
    BadLength(usize),
}

/// Kernel0 to node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `OP_*`.
    pub op: u64,
    /// Sequence number, echoed in the response.
    pub seq: u64,
    /// Operand.
    pub arg: u64,
}

/// Node to kernel0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Sequence number of the request answered.
    pub seq: u64,
    /// Result.
    pub val: u64,
}

impl Request {
    /// Encodes the request.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        let _ = put(&mut b, 0, &self.op.to_le_bytes());
        let _ = put(&mut b, 8, &self.seq.to_le_bytes());
        let _ = put(&mut b, 16, &self.arg.to_le_bytes());
        b
    }

    /// Decodes a received request.
    pub fn decode(b: &[u8]) -> Result<Request, WireError> {
        if b.len() != REQUEST_LEN {
            return Err(WireError::BadLength(b.len()));
        }
        let w = |o| u64_at(b, o).ok_or(WireError::BadLength(b.len()));
        Ok(Request {
            op: w(0)?,
            seq: w(8)?,
            arg: w(16)?,
        })
    }
}

impl Response {
    /// Encodes the response.
    pub fn encode(&self) -> [u8; RESPONSE_LEN] {
        let mut b = [0u8; RESPONSE_LEN];
        let _ = put(&mut b, 0, &self.seq.to_le_bytes());
        let _ = put(&mut b, 8, &self.val.to_le_bytes());
        b
    }

    /// Decodes a received response.
    pub fn decode(b: &[u8]) -> Result<Response, WireError> {
        if b.len() != RESPONSE_LEN {
            return Err(WireError::BadLength(b.len()));
        }
        let w = |o| u64_at(b, o).ok_or(WireError::BadLength(b.len()));
        Ok(Response {
            seq: w(0)?,
            val: w(8)?,
        })
    }
}

/// The answer node `node` gives to a ping carrying `arg`, so that kernel0
/// can check the node really computed it.
pub const fn ping_answer(node: u64, arg: u64) -> u64 {
    arg.rotate_left(17) ^ (0x9e37_79b9_7f4a_7c15 ^ node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let r = Request {
            op: OP_CRASH,
            seq: 7,
            arg: 0x10_0000,
        };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let a = Response {
            seq: 7,
            val: ping_answer(1, 5),
        };
        assert_eq!(Response::decode(&a.encode()), Ok(a));
        assert_ne!(ping_answer(1, 5), ping_answer(2, 5));
    }

    #[test]
    fn rejects_wrong_lengths() {
        let r = Request {
            op: 1,
            seq: 2,
            arg: 3,
        }
        .encode();
        for n in [0, 8, 23, 25] {
            let mut v = r.to_vec();
            v.resize(n, 0);
            assert_eq!(Request::decode(&v), Err(WireError::BadLength(n)));
        }
        assert_eq!(Response::decode(&[0u8; 15]), Err(WireError::BadLength(15)));
        assert_eq!(Response::decode(&[0u8; 24]), Err(WireError::BadLength(24)));
    }
}
