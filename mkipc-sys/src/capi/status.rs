//! Status codes: what every ABI function returns.

use core::ffi::c_char;

/// The result of every mkipc C function: `MKIPC_STATUS_OK` (0) or a negative
/// error. Functions return it as an `int32_t`.
///
/// "Retry" codes (`FULL`, `EMPTY`, `NO_BUFFER`, `NOT_INITIALIZED`, `TIMED_OUT`)
/// change nothing; `BROKEN` is latched: every later call on that endpoint
/// returns it again.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    Null = -1,
    /// The handle is not open: never opened, already closed, of another kind
    /// (a consumer passed as a producer), or not 8-byte aligned.
    BadHandle = -2,
    /// The handle storage given to an open/attach function already holds an open
    /// handle; close it first (zero-initialise fresh storage).
    InUse = -3,
    /// An argument is out of range: geometry (slot count, sizes), flags, an offset
    /// not aligned to its section alignment, a memory block that is not 8-byte
    /// aligned or not a multiple of 8 bytes long, or a path that is not UTF-8.
    InvalidArgument = -4,
    /// The ring, channel or access does not fit inside the region: use a larger
    /// region or a smaller geometry.
    DoesNotFit = -5,
    /// Nothing has been created there yet (region header, ring or channel
    /// descriptor all zero): the owner has not formatted it; retry later.
    NotInitialized = -6,
    /// The region header or the descriptor at that offset was written by an
    /// incompatible build (magic, ABI version, layout hash), records another
    /// region size than the one mapped, or describes another kind of object
    /// (a ring where a channel was expected).
    Incompatible = -7,
    /// The channel carries another message type (a typed Rust channel, not a byte
    /// channel; or, when connecting, a type other than the manifest's): both ends
    /// must agree on the message type.
    TypeMismatch = -8,
    /// The ring has no free slot: retry once the peer has taken messages.
    Full = -9,
    /// No complete message is waiting: retry later.
    Empty = -10,
    /// Every pool buffer is loaned or lent: retry once the receiver returns some.
    NoBuffer = -11,
    /// The message is longer than a slot or than the channel carries (when
    /// connecting: the end's message type is larger than the channel's maximum).
    TooLarge = -12,
    /// The caller's buffer is shorter than the message, which stays queued; the
    /// length it needs was stored in the function's length out-argument.
    BufferTooSmall = -13,
    /// The next message is inline or spans several buffers, so it cannot be held
    /// in place: receive it with `mkipc_receiver_recv` (it stays queued).
    NeedsCopy = -14,
    /// The loan or held buffer was not handed out by this endpoint, or was already
    /// sent, cancelled or given back.
    Foreign = -15,
    /// The peer broke the protocol (a corrupted index, stamp, length or buffer
    /// offset). The endpoint is latched broken and counts the fault; close it.
    Broken = -16,
    /// The deadline passed before the call could complete.
    TimedOut = -17,
    /// A timed call with a non-zero timeout needs a clock: install hooks with
    /// `now_ns` (builds with `std` fall back to the monotonic clock).
    NoClock = -18,
    /// The operating system refused to open, size or map the file (see `errno`).
    Io = -19,
    /// This build does not offer the function (opening a file needs `std`).
    Unsupported = -20,
    /// A bug in mkipc was caught at the boundary (a panic); please report it.
    Internal = -21,
    /// The manifest lists no channel by that name (or the name is not 1-32
    /// printable ASCII bytes): check the name against the region's manifest.
    NoSuchChannel = -22,
    /// The manifest lists no node by that name or id.
    NoSuchNode = -23,
    /// The manifest grants this node no such channel end with the needed right
    /// (`send` for a producer, `receive` for a consumer), or grants the other end
    /// to no node: connect as the node the manifest names, or fix the manifest.
    NotGranted = -24,
    /// The peer did not offer (consumer) or accept (producer) within the timeout:
    /// start the peer, or retry with a longer timeout.
    PeerNotReady = -25,
    /// The peer's connect words belong to an earlier incarnation than the one its
    /// node now runs: wait for the current incarnation to connect, then retry.
    StaleEpoch = -26,
    /// The channel still holds the state of this producer node's previous
    /// incarnation; the consumer must reclaim it (after draining) before this
    /// incarnation can connect: retry once it has.
    ReclaimPending = -27,
    /// The peer closed the channel (a consumer gets it after every queued
    /// message was received). Close this endpoint.
    Closed = -28,
    /// The region's manifest, or a node's liveness words, fail validation
    /// (checksum, an entry, a state or epoch word): recreate the region.
    BadManifest = -29,
}

impl Status {
    /// A short, NUL-terminated description saying what to do.
    pub const fn message(self) -> &'static core::ffi::CStr {
        match self {
            Status::Ok => c"ok",
            Status::Null => c"a required pointer argument is NULL",
            Status::BadHandle => {
                c"handle is not open (never opened, closed, misaligned, or of another kind)"
            }
            Status::InUse => c"handle storage already holds an open handle; close it first",
            Status::InvalidArgument => {
                c"argument out of range (geometry, flags, offset alignment, memory alignment)"
            }
            Status::DoesNotFit => c"does not fit in the region; use a larger region",
            Status::NotInitialized => {
                c"nothing created there yet; retry after the owner creates it"
            }
            Status::Incompatible => {
                c"region or descriptor from an incompatible build, or another kind of object"
            }
            Status::TypeMismatch => c"channel carries another message type",
            Status::Full => c"ring full; retry after the peer takes messages",
            Status::Empty => c"no message waiting; retry later",
            Status::NoBuffer => {
                c"every pool buffer is in use; retry after the receiver returns one"
            }
            Status::TooLarge => c"message larger than the slot or channel carries",
            Status::BufferTooSmall => c"buffer too small; the needed length was stored",
            Status::NeedsCopy => c"message cannot be held in place; receive it with a copy",
            Status::Foreign => c"loan or held buffer not handed out by this endpoint",
            Status::Broken => c"peer broke the protocol; endpoint latched broken, close it",
            Status::TimedOut => c"deadline passed",
            Status::NoClock => c"timed call needs a clock hook (now_ns)",
            Status::Io => c"the operating system refused to open, size or map the file",
            Status::Unsupported => c"not available in this build (needs std)",
            Status::Internal => c"internal error in mkipc (a bug); please report it",
            Status::NoSuchChannel => c"the manifest lists no channel by that name",
            Status::NoSuchNode => c"the manifest lists no node by that name or id",
            Status::NotGranted => {
                c"the manifest grants this node no such channel end; connect as the node it names"
            }
            Status::PeerNotReady => {
                c"the peer did not offer or accept in time; start it or wait longer"
            }
            Status::StaleEpoch => {
                c"the peer's words are from an earlier incarnation; retry once it reconnects"
            }
            Status::ReclaimPending => {
                c"the consumer must reclaim this node's previous incarnation first; retry later"
            }
            Status::Closed => c"the peer closed the channel; close this endpoint",
            Status::BadManifest => c"manifest or node words fail validation; recreate the region",
        }
    }

    /// The status with this code, if any.
    pub const fn from_code(code: i32) -> Option<Status> {
        const ALL: [Status; 30] = [
            Status::Ok,
            Status::Null,
            Status::BadHandle,
            Status::InUse,
            Status::InvalidArgument,
            Status::DoesNotFit,
            Status::NotInitialized,
            Status::Incompatible,
            Status::TypeMismatch,
            Status::Full,
            Status::Empty,
            Status::NoBuffer,
            Status::TooLarge,
            Status::BufferTooSmall,
            Status::NeedsCopy,
            Status::Foreign,
            Status::Broken,
            Status::TimedOut,
            Status::NoClock,
            Status::Io,
            Status::Unsupported,
            Status::Internal,
            Status::NoSuchChannel,
            Status::NoSuchNode,
            Status::NotGranted,
            Status::PeerNotReady,
            Status::StaleEpoch,
            Status::ReclaimPending,
            Status::Closed,
            Status::BadManifest,
        ];
        if code > 0 || code < -(ALL.len() as i32 - 1) {
            return None;
        }
        Some(ALL[(-code) as usize])
    }
}

/// A static, NUL-terminated description of a status code (never NULL; unknown
/// codes get "unknown mkipc status").
#[unsafe(no_mangle)]
pub extern "C" fn mkipc_status_str(status: i32) -> *const c_char {
    match Status::from_code(status) {
        Some(s) => s.message().as_ptr(),
        None => c"unknown mkipc status".as_ptr(),
    }
}

/// Lets `?` turn core errors into statuses inside ABI bodies.
pub(crate) type Result<T> = core::result::Result<T, Status>;

use mkipc::AccessError;
use mkipc::handshake::ConnectError;
use mkipc::header::HeaderError;
use mkipc::lifecycle::LifecycleError;
use mkipc::manifest::ManifestError;
use mkipc::pool::{PoolError, RecvError, SendError};
use mkipc::spsc::{ConsumeError, ProduceError, RingError};
use mkipc::typed::ChannelError;

impl From<AccessError> for Status {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::OutOfBounds { .. } => Status::DoesNotFit,
            AccessError::Misaligned { .. } | AccessError::BadBacking { .. } => {
                Status::InvalidArgument
            }
        }
    }
}

impl From<HeaderError> for Status {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Access(e) => e.into(),
            HeaderError::NotInitialized => Status::NotInitialized,
            HeaderError::BadMagic { .. }
            | HeaderError::VersionMismatch { .. }
            | HeaderError::LayoutMismatch { .. }
            | HeaderError::SizeMismatch { .. } => Status::Incompatible,
        }
    }
}

impl From<RingError> for Status {
    fn from(e: RingError) -> Self {
        match e {
            RingError::Access(e) => e.into(),
            RingError::Geometry(_) | RingError::Misplaced { .. } => Status::InvalidArgument,
            RingError::NotInitialized => Status::NotInitialized,
            RingError::BadMagic { .. } | RingError::LayoutMismatch { .. } => Status::Incompatible,
            RingError::DoesNotFit { .. } => Status::DoesNotFit,
        }
    }
}

impl From<PoolError> for Status {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Access(e) => e.into(),
            PoolError::Ring(e) => e.into(),
            PoolError::Geometry(_) | PoolError::Misplaced { .. } => Status::InvalidArgument,
            PoolError::NotInitialized => Status::NotInitialized,
            PoolError::BadMagic { .. } | PoolError::LayoutMismatch { .. } => Status::Incompatible,
            PoolError::DoesNotFit { .. } => Status::DoesNotFit,
        }
    }
}

impl From<ChannelError> for Status {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Pool(e) => e.into(),
            ChannelError::TypeMismatch { .. } => Status::TypeMismatch,
            ChannelError::TooLarge { .. } => Status::InvalidArgument,
        }
    }
}

impl From<ProduceError> for Status {
    fn from(e: ProduceError) -> Self {
        match e {
            ProduceError::Full => Status::Full,
            ProduceError::TooLarge { .. } => Status::TooLarge,
            ProduceError::Broken(_) => Status::Broken,
        }
    }
}

impl From<ConsumeError> for Status {
    fn from(e: ConsumeError) -> Self {
        match e {
            ConsumeError::Empty => Status::Empty,
            ConsumeError::BufferTooSmall { .. } => Status::BufferTooSmall,
            ConsumeError::Broken(_) => Status::Broken,
        }
    }
}

impl From<SendError> for Status {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NoBuffer => Status::NoBuffer,
            SendError::Full => Status::Full,
            SendError::TooLarge { .. } => Status::TooLarge,
            SendError::ForeignLoan => Status::Foreign,
            SendError::Broken(_) => Status::Broken,
        }
    }
}

impl From<RecvError> for Status {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Empty => Status::Empty,
            RecvError::NeedsCopy => Status::NeedsCopy,
            RecvError::BufferTooSmall { .. } => Status::BufferTooSmall,
            RecvError::ForeignHandle => Status::Foreign,
            RecvError::Broken(_) => Status::Broken,
        }
    }
}

impl From<ManifestError> for Status {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Header(e) => e.into(),
            ManifestError::Access(e) => e.into(),
            ManifestError::NotInitialized => Status::NotInitialized,
            ManifestError::NoSuchChannel => Status::NoSuchChannel,
            ManifestError::NoSuchNode { .. } => Status::NoSuchNode,
            _ => Status::BadManifest,
        }
    }
}

impl From<LifecycleError> for Status {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Manifest(e) => e.into(),
            LifecycleError::Access(e) => e.into(),
            LifecycleError::BadState { .. } | LifecycleError::BadEpoch { .. } => {
                Status::BadManifest
            }
        }
    }
}

impl From<ConnectError> for Status {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Manifest(e) => e.into(),
            ConnectError::Access(e) => e.into(),
            ConnectError::Peer(_) | ConnectError::WrongKind(_) => Status::Incompatible,
            ConnectError::NotGranted { .. } | ConnectError::NoPeer => Status::NotGranted,
            ConnectError::IncompatibleType { .. } => Status::TypeMismatch,
            ConnectError::TooLarge { .. } => Status::TooLarge,
            ConnectError::NoOffer | ConnectError::PeerNotReady { .. } => Status::PeerNotReady,
            ConnectError::StaleEpoch { .. } => Status::StaleEpoch,
            ConnectError::ReclaimPending { .. } => Status::ReclaimPending,
            ConnectError::PeerClosed => Status::Closed,
            ConnectError::BadWord { .. } => Status::Broken,
            ConnectError::Ring(e) => e.into(),
        }
    }
}
