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
/// Request: send `count` messages of one full pool buffer each through the
/// node's bulk pool (`arg` = [`bulk_arg`]`(count, seed)`), every buffer
/// filled by [`BulkWriter`]; answer with the fold of the messages'
/// checksums ([`bulk_fold`]), or [`BULK_FAILED`] if the node gave up.
pub const OP_BULK: u64 = 6;
/// Request (no answer on the response ring): push `arg` [`FanIn`]
/// messages into the node's lane of the MPSC fan-in channel, continuing its
/// lane sequence.
pub const OP_FANIN: u64 = 7;
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

/// The answer to [`OP_BULK`] when the node could not send every message
/// (no buffer came back in time, or the pool broke).
pub const BULK_FAILED: u64 = u64::MAX;
/// Start value of [`bulk_fold`].
pub const BULK_FOLD_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// The argument of an [`OP_BULK`] request.
pub const fn bulk_arg(count: u32, seed: u32) -> u64 {
    (seed as u64) << 32 | count as u64
}

/// `(count, seed)` of an [`OP_BULK`] argument.
pub const fn bulk_decode(arg: u64) -> (u32, u32) {
    (arg as u32, (arg >> 32) as u32)
}

/// The checksum step over 64-bit words (order-dependent).
pub const fn bulk_fold(acc: u64, word: u64) -> u64 {
    (acc ^ word).wrapping_mul(0x0100_0000_01b3).rotate_left(29)
}

/// Word 0 of bulk message `msg` of the transfer with `seed`.
pub const fn bulk_header(seed: u32, msg: u32) -> u64 {
    (seed as u64) << 32 | msg as u64
}

/// Produces the words of one bulk message: the header, `words - 2`
/// pseudo-random payload words, and last the [`bulk_fold`] of all the
/// words before it.
#[derive(Debug, Clone, Copy)]
pub struct BulkWriter {
    words: usize,
    header: u64,
    state: u64,
    acc: u64,
}

impl BulkWriter {
    /// The writer for message `msg` of `words` words (at least 2).
    pub const fn new(seed: u32, msg: u32, words: usize) -> BulkWriter {
        BulkWriter {
            words,
            header: bulk_header(seed, msg),
            state: bulk_header(seed, msg) ^ 0x9e37_79b9_7f4a_7c15,
            acc: BULK_FOLD_INIT,
        }
    }

    /// Word `i`; must be called for `i = 0, 1, ..` in order.
    pub fn word(&mut self, i: usize) -> u64 {
        let w = if i == 0 {
            self.header
        } else if i + 1 == self.words {
            return self.acc;
        } else {
            // splitmix64 step
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        self.acc = bulk_fold(self.acc, w);
        w
    }

    /// The checksum the last word carries (valid once every word before
    /// it was produced).
    pub fn checksum(&self) -> u64 {
        self.acc
    }
}

/// Verifies one bulk message word by word, as read in place.
#[derive(Debug, Clone, Copy)]
pub struct BulkCheck {
    words: usize,
    header: u64,
    before_last: u64,
    acc: u64,
    last: u64,
}

/// What is wrong with a received bulk message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkError {
    /// It has this many words, fewer than 2.
    TooShort(usize),
    /// Word 0 is not the expected header (found value).
    Header(u64),
    /// The last word does not match the checksum of the others
    /// (found, computed).
    Checksum(u64, u64),
}

impl Default for BulkCheck {
    fn default() -> Self {
        BulkCheck::new()
    }
}

impl BulkCheck {
    /// A fresh check.
    pub const fn new() -> BulkCheck {
        BulkCheck {
            words: 0,
            header: 0,
            before_last: BULK_FOLD_INIT,
            acc: BULK_FOLD_INIT,
            last: 0,
        }
    }

    /// Takes the next word.
    pub fn push(mut self, w: u64) -> BulkCheck {
        if self.words == 0 {
            self.header = w;
        }
        self.before_last = self.acc;
        self.acc = bulk_fold(self.acc, w);
        self.last = w;
        self.words += 1;
        self
    }

    /// Checks the header of message `msg` and the checksum word; returns
    /// the checksum.
    pub fn finish(&self, seed: u32, msg: u32) -> Result<u64, BulkError> {
        if self.words < 2 {
            return Err(BulkError::TooShort(self.words));
        }
        if self.header != bulk_header(seed, msg) {
            return Err(BulkError::Header(self.header));
        }
        if self.last != self.before_last {
            return Err(BulkError::Checksum(self.last, self.before_last));
        }
        Ok(self.last)
    }
}

/// Encoded [`FanIn`] size.
pub const FANIN_LEN: usize = 32;

/// One fan-in message: who sent it, in which lane epoch, its place in the
/// lane's sequence and a value derived from all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanIn {
    /// Sending node id.
    pub node: u64,
    /// Lane epoch the node attached in.
    pub epoch: u64,
    /// Sequence number within the lane epoch, from 0.
    pub seq: u64,
    /// [`fanin_value`] of the three.
    pub val: u64,
}

/// The value a fan-in message carries.
pub const fn fanin_value(node: u64, epoch: u64, seq: u64) -> u64 {
    ping_answer(node ^ epoch << 32, seq)
}

impl FanIn {
    /// Message `seq` of `node` in lane epoch `epoch`.
    pub const fn new(node: u64, epoch: u64, seq: u64) -> FanIn {
        FanIn {
            node,
            epoch,
            seq,
            val: fanin_value(node, epoch, seq),
        }
    }

    /// Encodes the message.
    pub fn encode(&self) -> [u8; FANIN_LEN] {
        let mut b = [0u8; FANIN_LEN];
        for (i, w) in [self.node, self.epoch, self.seq, self.val]
            .iter()
            .enumerate()
        {
            let _ = put(&mut b, i * 8, &w.to_le_bytes());
        }
        b
    }

    /// Decodes a received message (the value is not checked here).
    pub fn decode(b: &[u8]) -> Result<FanIn, WireError> {
        if b.len() != FANIN_LEN {
            return Err(WireError::BadLength(b.len()));
        }
        let w = |o| u64_at(b, o).ok_or(WireError::BadLength(b.len()));
        Ok(FanIn {
            node: w(0)?,
            epoch: w(8)?,
            seq: w(16)?,
            val: w(24)?,
        })
    }
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

    fn message(seed: u32, msg: u32, words: usize) -> Vec<u64> {
        let mut w = BulkWriter::new(seed, msg, words);
        (0..words).map(|i| w.word(i)).collect()
    }

    #[test]
    fn bulk_messages_verify_and_corruption_is_caught() {
        assert_eq!(bulk_decode(bulk_arg(64, 0xdead_beef)), (64, 0xdead_beef));
        let words = message(7, 3, 512);
        let check = words.iter().fold(BulkCheck::new(), |c, &w| c.push(w));
        let sum = check.finish(7, 3).unwrap();
        assert_eq!(sum, words[511]);
        assert_eq!(
            check.finish(7, 4),
            Err(BulkError::Header(bulk_header(7, 3)))
        );
        assert_ne!(
            message(7, 4, 512)[1],
            words[1],
            "payload differs per message"
        );
        for i in [0, 1, 255, 510, 511] {
            let mut bad = words.clone();
            bad[i] ^= 1 << (i % 64);
            let c = bad.iter().fold(BulkCheck::new(), |c, &w| c.push(w));
            assert!(c.finish(7, 3).is_err(), "flip in word {i} undetected");
        }
        let short = [bulk_header(7, 3)];
        let c = short.iter().fold(BulkCheck::new(), |c, &w| c.push(w));
        assert_eq!(c.finish(7, 3), Err(BulkError::TooShort(1)));
        assert_eq!(BulkCheck::new().finish(7, 3), Err(BulkError::TooShort(0)));
    }

    #[test]
    fn fanin_round_trips_and_values_differ() {
        let m = FanIn::new(3, 1, 42);
        assert_eq!(FanIn::decode(&m.encode()), Ok(m));
        assert_ne!(fanin_value(3, 1, 42), fanin_value(3, 2, 42));
        assert_ne!(fanin_value(3, 1, 42), fanin_value(2, 1, 42));
        assert_eq!(FanIn::decode(&[0; 31]), Err(WireError::BadLength(31)));
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
