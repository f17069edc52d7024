//! iceoryx2: a publish-subscribe service each way over its shared-memory
//! transport (`ipc::Service`), polling `receive`, payload copied in and out
//! (`send_copy`, then a copy of the received sample).
//!
//! iceoryx2's `ipc` ports are not `Send`, so the server opens its node and ports
//! on its own thread when it starts serving.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use iceoryx2::node::Node;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use super::{STOP, Small, check, is_stop, message};
use crate::harness::{Client, Server};

pub(crate) type Pub = Publisher<ipc::Service, Small, ()>;
pub(crate) type Sub = Subscriber<ipc::Service, Small, ()>;

/// Publishes requests, polls for replies.
pub struct IceoryxClient {
    tx: Pub,
    rx: Sub,
    // Declared last: ports drop before their services and node.
    _services: (
        PubSub<ipc::Service, Small, ()>,
        PubSub<ipc::Service, Small, ()>,
    ),
    _node: Node<ipc::Service>,
}

/// Opens the server's ports on its own thread, then echoes.
pub struct IceoryxServer {
    names: Names,
}

/// Service names unique to one pair (process id and a counter).
#[derive(Clone)]
pub(crate) struct Names {
    pub(crate) req: String,
    pub(crate) rep: String,
}

impl Names {
    /// A service name base unique to this process and call: `prefix/pid/n`.
    pub(crate) fn unique_base(prefix: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Relaxed: only uniqueness matters, no other memory is published with it.
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}/{}/{id}", std::process::id())
    }

    /// The request and reply services of the pair whose names start with `base`.
    pub(crate) fn from_base(base: &str) -> Names {
        Names {
            req: format!("{base}/req"),
            rep: format!("{base}/rep"),
        }
    }
}

pub(crate) fn quiet() {
    static ONCE: Once = Once::new();
    // iceoryx2 warns on stderr that it runs without a config file; defaults are
    // what we want.
    ONCE.call_once(|| set_log_level(LogLevel::Error));
}

/// A node and the two services of one pair.
pub(crate) struct Endpoint {
    pub(crate) node: Node<ipc::Service>,
    pub(crate) req: PubSub<ipc::Service, Small, ()>,
    pub(crate) rep: PubSub<ipc::Service, Small, ()>,
}

/// Opens (or creates) a node and the services called `names` (panics on failure,
/// for the in-process harness; the cross-process mode uses [`try_open`]).
fn open(names: &Names) -> Endpoint {
    try_open(names).unwrap_or_else(|e| panic!("{e}"))
}

/// Opens (or creates) a node and the services called `names`.
pub(crate) fn try_open(names: &Names) -> Result<Endpoint, String> {
    quiet();
    let node = NodeBuilder::new()
        .create::<ipc::Service>()
        .map_err(|e| format!("cannot create an iceoryx2 node: {e:?}"))?;
    let service = |name: &str| {
        let service: ServiceName = name
            .try_into()
            .map_err(|e| format!("`{name}` is no iceoryx2 service name: {e:?}"))?;
        node.service_builder(&service)
            .publish_subscribe::<Small>()
            .open_or_create()
            .map_err(|e| format!("cannot open the iceoryx2 service `{name}`: {e:?}"))
    };
    let req = service(&names.req)?;
    let rep = service(&names.rep)?;
    Ok(Endpoint { node, req, rep })
}

/// A connected echo pair; the client's ports exist on return, the server's once
/// it serves.
pub fn pair() -> (IceoryxClient, IceoryxServer) {
    let names = Names::from_base(&Names::unique_base("ringbench"));
    let ep = open(&names);
    let tx = ep.req.publisher_builder().create().expect("publisher");
    let rx = ep.rep.subscriber_builder().create().expect("subscriber");
    (
        IceoryxClient {
            tx,
            rx,
            _services: (ep.req, ep.rep),
            _node: ep.node,
        },
        IceoryxServer { names },
    )
}

/// Publishes `msg`, retrying until it reached the one subscriber: the peer's
/// subscriber may not exist yet when the first message goes out.
#[inline]
fn send(tx: &Pub, msg: Small) {
    while tx.send_copy(msg).expect("iceoryx2 send") == 0 {
        std::hint::spin_loop();
    }
}

#[inline]
fn recv(rx: &Sub) -> Small {
    loop {
        if let Some(sample) = rx.receive().expect("iceoryx2 receive") {
            return *sample.payload();
        }
        std::hint::spin_loop();
    }
}

impl Client for IceoryxClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        send(&self.tx, message(seq));
        check(&recv(&self.rx), seq);
    }

    fn stop(&mut self) {
        send(&self.tx, message(STOP));
    }
}

impl Server for IceoryxServer {
    fn serve(&mut self) {
        let ep = open(&self.names);
        let rx = ep.req.subscriber_builder().create().expect("subscriber");
        let tx = ep.rep.publisher_builder().create().expect("publisher");
        loop {
            let msg = recv(&rx);
            if is_stop(&msg) {
                return;
            }
            send(&tx, msg);
        }
    }
}
