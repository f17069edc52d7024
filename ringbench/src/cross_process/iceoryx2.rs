//! iceoryx2 across processes: the in-process `iceoryx2` contender (a
//! publish-subscribe service each way over its shared-memory transport, polling
//! `receive`, payload copied in and out) with the server in its own process.
//!
//! Handover: a pipe as the server's stdin carrying the pair's service name base
//! (one line); iceoryx2 finds its shared memory by name. The client creates its
//! node, services and ports first; a request is re-sent until it reached the
//! server's subscriber. A killed server leaves a dead iceoryx2 node, which the
//! client removes when it is dropped.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use iceoryx2::node::Node;
use iceoryx2::prelude::ipc;

use super::serve::{self, ServeError};
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, check_echo, launch, spin_until};
use crate::contenders::iceoryx2_pubsub::{Names, Pub, Sub, try_open};
use crate::contenders::{STOP, Small, is_stop, message};
use crate::harness::Cpus;

/// The longest service name base a server accepts.
const MAX_NAME: usize = 200;

/// Formats an iceoryx2 error as "what: error".
fn because<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e:?}")
}

/// Publishes requests, polls for replies.
struct IceoryxClient {
    tx: Pub,
    rx: Sub,
    // Ports drop before the node (declaration order).
    node: Node<ipc::Service>,
}

impl IceoryxClient {
    #[inline]
    fn send(&self, msg: Small, watch: &Watch) -> Result<(), XpError> {
        spin_until(watch, || match self.tx.send_copy(msg) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(())),
            Err(e) => Err(XpError::Iceoryx(format!("sending a request: {e:?}"))),
        })
    }
}

impl XpClient for IceoryxClient {
    #[inline]
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError> {
        self.send(message(seq), watch)?;
        let echo = spin_until(watch, || match self.rx.receive() {
            Ok(Some(sample)) => Ok(Some(*sample.payload())),
            Ok(None) => Ok(None),
            Err(e) => Err(XpError::Iceoryx(format!("receiving an echo: {e:?}"))),
        })?;
        check_echo(&echo, seq)
    }

    fn stop(&mut self) -> Result<(), XpError> {
        // The server's subscriber exists (it has echoed the warm-up), so one send
        // reaches it.
        match self.tx.send_copy(message(STOP)) {
            Ok(0) => Err(XpError::Iceoryx(
                "the stop message reached no subscriber".into(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(XpError::Iceoryx(format!("sending the stop message: {e:?}"))),
        }
    }
}

impl Drop for IceoryxClient {
    fn drop(&mut self) {
        // A server that was killed left its node behind; a clean one removed it.
        self.node.try_cleanup_dead_nodes();
    }
}

/// Creates the pair's services and the client's ports, starts the server process
/// and hands it the name.
pub fn start(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let base = Names::unique_base("ringbench-xp");
    let ep = try_open(&Names::from_base(&base)).map_err(XpError::Iceoryx)?;
    let client = IceoryxClient {
        tx: ep
            .req
            .publisher_builder()
            .create()
            .map_err(|e| XpError::Iceoryx(because("cannot create the request publisher")(e)))?,
        rx: ep
            .rep
            .subscriber_builder()
            .create()
            .map_err(|e| XpError::Iceoryx(because("cannot create the reply subscriber")(e)))?,
        node: ep.node,
    };
    let setup = |what| move |source| XpError::Setup { what, source };
    let (name_rx, mut name_tx) = std::io::pipe().map_err(setup("creating the name pipe"))?;
    // A pipe holds far more than one short line: this write never blocks.
    writeln!(name_tx, "{base}").map_err(setup("writing the service name"))?;
    drop(name_tx);
    let handover = Handover {
        stdin: Some(OwnedFd::from(name_rx)),
        ..Handover::default()
    };
    launch(exe, "iceoryx2", cpus, handover, None, client)
}

/// The server: reads the service name base from stdin, opens the services and
/// its ports, echoes until the stop message.
pub fn serve() -> Result<(), ServeError> {
    let pipe = shared::take_fd(0, FdKind::Pipe, "the pipe carrying the service name")?;
    let mut line = String::new();
    pipe.take(MAX_NAME as u64 + 1)
        .read_to_string(&mut line)
        .map_err(|e| ServeError::Failed(format!("cannot read the service name: {e}")))?;
    let base = line.trim_end_matches('\n');
    if base.is_empty() || base.len() > MAX_NAME || base.contains('\n') {
        return Err(ServeError::Failed(format!(
            "stdin must carry one iceoryx2 service name of 1 to {MAX_NAME} bytes, got {line:?}"
        )));
    }
    let ep = try_open(&Names::from_base(base)).map_err(ServeError::Failed)?;
    let rx = ep
        .req
        .subscriber_builder()
        .create()
        .map_err(|e| ServeError::Failed(because("cannot create the request subscriber")(e)))?;
    let tx = ep
        .rep
        .publisher_builder()
        .create()
        .map_err(|e| ServeError::Failed(because("cannot create the reply publisher")(e)))?;
    loop {
        let msg = serve::spin_until(|| match rx.receive() {
            Ok(Some(sample)) => Ok(Some(*sample.payload())),
            Ok(None) => Ok(None),
            Err(e) => Err(ServeError::Failed(because("receiving a request")(e))),
        })?;
        if is_stop(&msg) {
            return Ok(());
        }
        serve::spin_until(|| match tx.send_copy(msg) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(())),
            Err(e) => Err(ServeError::Failed(because("sending an echo")(e))),
        })?;
    }
}
