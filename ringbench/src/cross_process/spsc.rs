//! mkipc SPSC across processes: a request ring and a reply ring in a memfd both
//! processes map. The client creates both rings; the server attaches to them
//! (`Consumer::attach`, `Producer::attach`), which validates the descriptors it
//! finds as it would a hostile peer's.
//!
//! Handover: the memfd as the server's stdin. Request ring at offset 0, reply ring
//! right after it, both of [`GEOMETRY`].

use std::path::Path;

use mkipc::spsc::{ConsumeError, Consumer, Geometry, ProduceError, Producer, RingLayout};

use super::serve::{self, ServeError};
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, check_echo, launch, spin_until};
use crate::contenders::{RTT_CAPACITY, SMALL, message};
use crate::harness::Cpus;

/// The in-process `mkipc-spsc` round-trip geometry: 56 payload bytes (one line per
/// message with the slot tag), [`RTT_CAPACITY`] slots.
const GEOMETRY: Geometry = Geometry::new(RTT_CAPACITY as u32, 56);

/// Bytes of one ring, and the reply ring's offset.
fn ring_size() -> usize {
    GEOMETRY
        .ring_size()
        .expect("the round-trip geometry is valid")
}

/// Sends on the request ring, waits on the reply ring.
struct SpscClient {
    tx: Producer,
    rx: Consumer,
}

impl SpscClient {
    #[inline]
    fn send(&mut self, msg: &[u8], watch: &Watch) -> Result<(), XpError> {
        spin_until(watch, || match self.tx.push(msg) {
            Ok(()) => Ok(Some(())),
            Err(ProduceError::Full) => Ok(None),
            Err(e) => Err(XpError::Push(e)),
        })
    }
}

impl XpClient for SpscClient {
    #[inline]
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError> {
        self.send(&message::<SMALL>(seq), watch)?;
        let mut buf = [0u8; SMALL];
        let n = spin_until(watch, || match self.rx.pop(&mut buf) {
            Ok(n) => Ok(Some(n)),
            Err(ConsumeError::Empty) => Ok(None),
            Err(e) => Err(XpError::Pop(e)),
        })?;
        check_echo(&buf[..n], seq)
    }

    fn stop(&mut self) -> Result<(), XpError> {
        // The stop message: empty (echoes are never empty). The server exits
        // after reading it, so this wait is bounded by the server's life too.
        let mut spins = 0u32;
        loop {
            match self.tx.push(&[]) {
                Ok(()) => return Ok(()),
                Err(ProduceError::Full) if spins < 1 << 24 => {
                    spins += 1;
                    std::hint::spin_loop();
                }
                Err(e) => return Err(XpError::Push(e)),
            }
        }
    }
}

/// Creates both rings in a fresh memfd, starts the server process and its client.
pub fn start(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let ring = ring_size();
    let (file, region) = shared::shared_memory(2 * ring)?;
    RingLayout::create(&region, 0, GEOMETRY).map_err(XpError::Attach)?;
    RingLayout::create(&region, ring, GEOMETRY).map_err(XpError::Attach)?;
    let client = SpscClient {
        tx: Producer::attach(region.clone(), 0).map_err(XpError::Attach)?,
        rx: Consumer::attach(region, ring).map_err(XpError::Attach)?,
    };
    let handover = Handover {
        stdin: Some(file.into()),
        ..Handover::default()
    };
    launch(exe, "mkipc-spsc", cpus, handover, None, client)
}

/// The server: attaches to both rings and echoes until the empty stop message.
pub fn serve() -> Result<(), ServeError> {
    let file = shared::take_fd(0, FdKind::SharedMemory, "the region holding both rings")?;
    let region = shared::map_handed(&file)?;
    let ring = ring_size();
    let mut rx = Consumer::attach(region.clone(), 0)
        .map_err(|e| ServeError::Failed(format!("cannot attach the request ring: {e}")))?;
    let mut tx = Producer::attach(region, ring)
        .map_err(|e| ServeError::Failed(format!("cannot attach the reply ring: {e}")))?;
    let mut buf = [0u8; SMALL];
    loop {
        let n = serve::spin_until(|| match rx.pop(&mut buf) {
            Ok(n) => Ok(Some(n)),
            Err(ConsumeError::Empty) => Ok(None),
            Err(e) => Err(ServeError::Failed(format!("request ring: {e}"))),
        })?;
        if n == 0 {
            return Ok(());
        }
        serve::spin_until(|| match tx.push(&buf[..n]) {
            Ok(()) => Ok(Some(())),
            Err(ProduceError::Full) => Ok(None),
            Err(e) => Err(ServeError::Failed(format!("reply ring: {e}"))),
        })?;
    }
}
