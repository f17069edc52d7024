//! Everything that can stop kernel0's run, with enough detail to say why.

use bootparse::{acpi::AcpiError, elf::ElfError, pvh::PvhError};
use mkipc::spsc::ConsumeError;
use platform::{lapic::ApicError, paging::PagingError, tsc::CalibrateError};

/// A failed step of the run.
#[derive(Debug, Clone, Copy)]
pub enum Error {
    /// The PVH start_info or its tables are malformed.
    Pvh(PvhError),
    /// The ACPI tables are malformed or lack a MADT.
    Acpi(AcpiError),
    /// The secondary image was refused.
    Elf(ElfError),
    /// A local APIC operation failed.
    Apic(ApicError),
    /// Building a node's boot page tables failed.
    Paging(PagingError),
    /// TSC calibration failed.
    Tsc(CalibrateError),
    /// A fixed region of the layout is not usable RAM or collides.
    Layout(&'static str),
    /// No `-initrd` module was passed.
    NoModule,
    /// The MADT lists no enabled CPU besides kernel0's.
    NoSecondary,
    /// A CPU never reached long mode after INIT-SIPI-SIPI.
    NoAck(u32),
    /// A node reached long mode but never reported ready.
    NotReady(u32),
    /// The mkipc region could not be set up.
    Region(mkipc::AccessError),
    /// A node has no ring endpoints (never started).
    NoLink(u32),
    /// Receiving a response failed (includes a ring the node broke).
    Receive(u32, ConsumeError),
    /// A response did not decode.
    BadResponse(u32, u64),
    /// A ping got no answer in time.
    PingTimeout(u32, u64),
    /// A ping got a wrong answer.
    WrongAnswer(u32, u64, u64),
    /// IPI accounting does not match the pings sent.
    IpiCount(u64, u64),
    /// A node kept beating after it was told to crash.
    NotDead(u32),
    /// A crashed node reported no fault, or another one than expected.
    WrongFault(u32, u64, u64),
    /// Memory outside a crashed node's partition changed.
    Corrupted(u64),
    /// The kernel command line is malformed.
    Cmdline(bootparse::cmdline::CmdlineError),
    /// The kernel command line could not be read.
    CmdlineRead(bootparse::cmdline::ReadError),
    /// The boot module is neither an image nor a valid bundle.
    Bundle(bootparse::bundle::BundleError),
    /// A node's hello is malformed: (node, build, features).
    Hello(u32, u64, u64),
    /// A restarted node runs an older build or lost a feature:
    /// (node, previous build, new build).
    Downgrade(u32, u64, u64),
    /// Requests sent before a crash command were not all answered:
    /// (node, sent, answered).
    LostBeforeCrash(u32, u64, u64),
    /// While a node was down, the others answered nothing.
    OthersStalled(u32),
    /// A node's bulk pool could not be created or attached.
    Pool(u32, mkipc::pool::PoolError),
    /// Receiving or returning a bulk buffer failed (includes a pool the
    /// node broke).
    BulkRecv(u32, mkipc::pool::RecvError),
    /// A bulk message failed its check: (node, message, what).
    BulkCorrupt(u32, u32, bootparse::wire::BulkError),
    /// A bulk message has the wrong length: (node, message, length).
    BulkLength(u32, u32, usize),
    /// A bulk message did not arrive in time: (node, message).
    BulkTimeout(u32, u32),
    /// The node's answer to a bulk transfer disagrees with what kernel0
    /// verified: (node, answer, kernel0's fold).
    BulkTotal(u32, u64, u64),
    /// After a crash, the buffers in flight do not add up: (node, sent,
    /// reclaimed).
    Reclaim(u32, u64, u64),
    /// The MPSC fan-in channel could not be created.
    FanInSetup(mkipc::mpsc::ChannelError),
    /// Receiving from the fan-in channel failed (a lane broken).
    FanIn(mkipc::mpsc::RecvError),
    /// Fencing or resetting a fan-in lane failed.
    FanInLane(mkipc::mpsc::LaneError),
    /// A fan-in message failed its check: (node, expected sequence, why).
    FanInMessage(u64, u64, &'static str),
    /// Writing the region manifest failed.
    Manifest(mkipc::manifest::BuildError),
    /// A manifest lookup failed.
    ManifestRead(mkipc::manifest::ManifestError),
    /// Connecting one of a node's channels through the core handshake
    /// failed: (node, channel, why).
    Connect(u32, &'static str, mkipc::handshake::ConnectError),
    /// Sending on a connected channel failed.
    HandshakeSend(u32, mkipc::handshake::SendError),
    /// Reclaiming a dead node's channel end failed: (node, channel, why).
    ReclaimEnd(u32, &'static str, mkipc::handshake::ReclaimError),
    /// Booting kernel0's node entry or watching a node failed.
    Lifecycle(u32, mkipc::lifecycle::LifecycleError),
    /// A node's two connections agreed on different features, or on bits
    /// its build did not announce: (node, request ring, response ring,
    /// announced).
    Features(u32, u64, u64, u64),
    /// The watchdog saw a node that should be alive dead, or a restart
    /// under an unexpected epoch: (node, what).
    Liveness(u32, &'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::Pvh(e) => write!(f, "PVH boot information refused: {e:?}"),
            Error::Acpi(e) => write!(f, "ACPI tables refused: {e:?}"),
            Error::Elf(e) => write!(f, "secondary image refused: {e:?}"),
            Error::Apic(e) => write!(f, "local APIC: {e:?}"),
            Error::Paging(e) => write!(f, "entry page tables: {e:?}"),
            Error::Tsc(e) => write!(f, "TSC calibration: {e:?}"),
            Error::Layout(why) => write!(f, "layout: {why}"),
            Error::NoModule => write!(f, "no boot module (pass the secondary with -initrd)"),
            Error::NoSecondary => write!(f, "no secondary CPU (run with -smp 2 or more)"),
            Error::NoAck(n) => write!(
                f,
                "node {n}: CPU did not reach long mode after INIT-SIPI-SIPI"
            ),
            Error::NotReady(n) => write!(f, "node {n}: reached long mode but never reported ready"),
            Error::Region(e) => write!(f, "mkipc region: {e}"),
            Error::NoLink(n) => write!(f, "node {n}: no ring endpoints"),
            Error::Receive(n, e) => write!(f, "node {n}: response ring: {e}"),
            Error::BadResponse(n, seq) => write!(f, "node {n}: undecodable response to {seq}"),
            Error::PingTimeout(n, seq) => write!(f, "node {n}: no answer to command {seq}"),
            Error::WrongAnswer(n, seq, got) => {
                write!(f, "node {n}: wrong answer {got:#x} to command {seq}")
            }
            Error::IpiCount(want, got) => write!(
                f,
                "nodes rang kernel0's doorbell {want} times, kernel0 took {got} IPIs (more than merges into a pending IPI explain, or spurious ones)"
            ),
            Error::NotDead(n) => write!(f, "node {n}: still beating after the crash command"),
            Error::WrongFault(n, v, a) => {
                write!(
                    f,
                    "node {n}: fault report vector {v:#x} address {a:#x}, expected #PF at the stray address"
                )
            }
            Error::Corrupted(a) => write!(f, "kernel0 memory at {a:#x} changed"),
            Error::Cmdline(e) => write!(
                f,
                "kernel command line: {e} (pass e.g. -append \"dead_ms=200 ap_start_ms=1000 handshake_ms=3000 crash_cycles=4\")"
            ),
            Error::CmdlineRead(e) => write!(f, "kernel command line unreadable: {e:?}"),
            Error::Bundle(e) => write!(
                f,
                "boot module refused: {e:?} (pass the secondary ELF or the bundle kernels/run.sh builds)"
            ),
            Error::Hello(n, b, feat) => write!(
                f,
                "node {n}: hello refused: build {b}, features {feat:#x} (build must be nonzero, features known, stack guard inside the partition)"
            ),
            Error::Downgrade(n, old, new) => write!(
                f,
                "node {n}: restarted with build {new} after build {old}, or lost a feature; refused"
            ),
            Error::LostBeforeCrash(n, sent, got) => write!(
                f,
                "node {n}: only {got} of the {sent} requests sent before the crash command were answered"
            ),
            Error::OthersStalled(n) => {
                write!(f, "while node {n} was down, no other node answered a ping")
            }
            Error::Pool(n, e) => write!(f, "node {n}: bulk pool set-up: {e}"),
            Error::BulkRecv(n, e) => write!(f, "node {n}: bulk pool: {e}"),
            Error::BulkCorrupt(n, m, e) => {
                write!(f, "node {n}: bulk message {m} failed its check: {e:?}")
            }
            Error::BulkLength(n, m, len) => write!(
                f,
                "node {n}: bulk message {m} has {len} bytes, expected one full pool buffer"
            ),
            Error::BulkTimeout(n, m) => write!(f, "node {n}: bulk message {m} never arrived"),
            Error::BulkTotal(n, got, want) => write!(
                f,
                "node {n}: answered bulk checksum {got:#x}, kernel0 verified {want:#x}"
            ),
            Error::FanInSetup(e) => write!(f, "fan-in channel set-up: {e}"),
            Error::FanIn(e) => write!(f, "fan-in channel: {e}"),
            Error::FanInLane(e) => write!(f, "fan-in lane recovery: {e}"),
            Error::FanInMessage(n, seq, why) => {
                write!(f, "node {n}: fan-in message {seq}: {why}")
            }
            Error::Manifest(e) => write!(f, "writing the region manifest: {e}"),
            Error::ManifestRead(e) => write!(f, "region manifest: {e}"),
            Error::Connect(n, ch, e) => write!(f, "node {n}: channel {ch}: handshake: {e}"),
            Error::HandshakeSend(n, e) => write!(f, "node {n}: request ring: {e}"),
            Error::ReclaimEnd(n, ch, e) => write!(f, "node {n}: reclaiming channel {ch}: {e}"),
            Error::Lifecycle(n, e) => write!(f, "node {n}: liveness words: {e}"),
            Error::Features(n, req, resp, hello) => write!(
                f,
                "node {n}: negotiated features {req:#x} (requests) and {resp:#x} (responses) disagree with each other or with the {hello:#x} its hello announced"
            ),
            Error::Liveness(n, what) => write!(f, "node {n}: watchdog: {what}"),
            Error::Reclaim(n, sent, got) => write!(
                f,
                "node {n}: {sent} bulk buffers were in flight at the crash, {got} reclaimed"
            ),
        }
    }
}

macro_rules! from {
    ($($t:ty => $v:ident),*) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e)
            }
        })*
    };
}

from!(PvhError => Pvh, AcpiError => Acpi, ElfError => Elf, ApicError => Apic,
      PagingError => Paging, CalibrateError => Tsc,
      bootparse::cmdline::CmdlineError => Cmdline, bootparse::cmdline::ReadError => CmdlineRead,
      bootparse::bundle::BundleError => Bundle);
