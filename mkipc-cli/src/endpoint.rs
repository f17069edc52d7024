//! What `send` and `recv` share: options, timeouts and the mapping of connect
//! errors to exit statuses.

use std::time::Duration;

use mkipc::handshake::ConnectError;
use mkipc::lifecycle::LifecycleError;
use mkipc::manifest::ManifestError;

use crate::failure::Failure;

/// Options of `send` and `recv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndArgs {
    /// The channel.
    pub channel: String,
    /// Generated messages to send or to receive and verify.
    pub count: Option<u64>,
    /// How long to wait for a peer that is not there (not started, or not making
    /// room or sending while not alive).
    pub timeout: Duration,
    /// Heartbeat silence after which the peer is declared dead.
    pub dead_after: Duration,
}

/// The failure for a refused connection on `channel`.
pub fn connect_failure(channel: &str, e: ConnectError) -> Failure {
    match e {
        ConnectError::Manifest(ManifestError::NoSuchChannel) => {
            Failure::usage(format!("no channel named {channel:?}: {e}"))
        }
        ConnectError::NotGranted { .. } | ConnectError::NoPeer | ConnectError::WrongKind(_) => {
            Failure::usage(format!(
                "channel {channel:?}: {e}; the region was not made by `mkipc create`"
            ))
        }
        ConnectError::PeerNotReady { .. }
        | ConnectError::StaleEpoch { .. }
        | ConnectError::ReclaimPending { .. }
        | ConnectError::PeerClosed
        | ConnectError::NoOffer => Failure::peer(format!("channel {channel:?}: {e}")),
        ConnectError::Manifest(_)
        | ConnectError::Access(_)
        | ConnectError::Peer(_)
        | ConnectError::IncompatibleType { .. }
        | ConnectError::TooLarge { .. }
        | ConnectError::BadWord { .. }
        | ConnectError::Ring(_) => Failure::corrupt(format!(
            "channel {channel:?}: the peer's words are invalid: {e}; check that both sides run \
             the same build, or recreate the region"
        )),
    }
}

/// The failure for a peer node whose liveness words are unreadable.
pub fn liveness_failure(node: &str, e: LifecycleError) -> Failure {
    Failure::corrupt(format!(
        "node {node:?}: its liveness words are invalid: {e}; recreate the region"
    ))
}
