//! SPSC rings: the fast path for small messages (up to one slot each).
//!
//! An end either attaches to the ring at an offset (`mkipc_*_attach`: the
//! caller laid out the region) or connects to a channel by name through the
//! region's manifest (`mkipc_*_connect`: the core handshake, with its refusals as
//! statuses). Either way, producers ring the consumer's doorbell only when it
//! announced a sleep, and timed pops sleep through the need-wakeup protocol
//! (see `hooks.rs`).

use core::ffi::c_char;

use mkipc::doorbell::Notifier;
use mkipc::handshake::{self, Hello, LinkStatus};
use mkipc::spsc::{ConsumeError, Consumer, Geometry, ProduceError, Producer, RingLayout};
use mkipc::{MessageType, Region};

use super::handle::{self, CONSUMER, PRODUCER, fits};
use super::hooks::{HookBell, MkipcHooks, WakeSide};
use super::node::{MkipcNode, c_str, node_ref};
use super::region::{MkipcRegion, region_ref};
use super::status::{Result, Status};
use super::{bytes, bytes_mut, guard, put};

/// Layout flag: slots packed back to back (8-byte aligned) instead of one per
/// 128 bytes; better for streams, worse for round trips. Rings only.
pub const MKIPC_LAYOUT_DENSE: u32 = 1;
/// Layout flag: sections aligned to 128 bytes instead of 4096 (smaller, but a
/// platform cannot map each side's section with its own protection).
pub const MKIPC_LAYOUT_COMPACT: u32 = 2;

/// The producing end of an SPSC ring (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcProducer {
    opaque: [u64; 160],
}

/// The consuming end of an SPSC ring (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcConsumer {
    opaque: [u64; 160],
}

/// The identity of a channel's message type, checked by the connect handshake:
/// both ends and the manifest must agree on all three fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MkipcMessageType {
    /// Size of a message (a fixed-size type), or the longest byte message.
    pub size: u32,
    /// Alignment of the type (1 for byte messages).
    pub align: u32,
    /// FNV-1a 64 of the type's name (`"[u8]"` for byte messages).
    pub name_hash: u64,
}

impl From<MkipcMessageType> for MessageType {
    fn from(t: MkipcMessageType) -> MessageType {
        MessageType {
            size: t.size,
            align: t.align,
            name_hash: t.name_hash,
        }
    }
}

impl From<MessageType> for MkipcMessageType {
    fn from(t: MessageType) -> MkipcMessageType {
        MkipcMessageType {
            size: t.size,
            align: t.align,
            name_hash: t.name_hash,
        }
    }
}

/// Messages between the publish-side polls of the consumer's connect words.
const POLL_EVERY: u32 = 256;

// No allocator to box the large variant: the caller's storage fits the largest.
#[allow(clippy::large_enum_variant)]
enum ProducerEnd {
    Attached(Producer),
    /// Connected by name; `since_poll` counts pushes since the last look at the
    /// consumer's connect words (its close).
    Connected {
        sender: handshake::Sender,
        since_poll: u32,
    },
}

struct ProducerHandle {
    end: ProducerEnd,
    notifier: Notifier<HookBell>,
    hooks: MkipcHooks,
}

// As for `ProducerEnd`.
#[allow(clippy::large_enum_variant)]
enum ConsumerEnd {
    Attached(Consumer),
    Connected(handshake::Receiver),
}

struct ConsumerHandle {
    end: ConsumerEnd,
    wake: WakeSide,
    hooks: MkipcHooks,
}

impl ProducerHandle {
    fn new(region: &Region, mut end: ProducerEnd, hooks: MkipcHooks) -> Result<ProducerHandle> {
        let ring = match &mut end {
            ProducerEnd::Attached(p) => *p.layout(),
            ProducerEnd::Connected { sender, .. } => *sender.producer().layout(),
        };
        let bell = HookBell::new(region, &ring);
        bell.set(hooks);
        let notifier = Notifier::new(region.clone(), ring.need_wakeup_word(), bell)?;
        Ok(ProducerHandle {
            end,
            notifier,
            hooks,
        })
    }

    fn set_hooks(&mut self, hooks: MkipcHooks) {
        self.hooks = hooks;
        self.notifier.doorbell().set(hooks);
    }

    fn producer(&mut self) -> &mut Producer {
        match &mut self.end {
            ProducerEnd::Attached(p) => p,
            ProducerEnd::Connected { sender, .. } => sender.producer(),
        }
    }

    /// One push attempt; a connected end looks at the consumer's close now and
    /// then, and whenever the ring is full.
    fn push(&mut self, msg: &[u8]) -> Result<()> {
        match &mut self.end {
            ProducerEnd::Attached(p) => Ok(p.push(msg)?),
            ProducerEnd::Connected { sender, since_poll } => {
                *since_poll += 1;
                if *since_poll >= POLL_EVERY {
                    *since_poll = 0;
                    poll_closed(sender)?;
                }
                match sender.send(msg) {
                    Ok(()) => Ok(()),
                    Err(handshake::SendError::Ring(ProduceError::Full)) => {
                        poll_closed(sender)?;
                        Err(Status::Full)
                    }
                    Err(e) => Err(send_status(e)),
                }
            }
        }
    }
}

fn poll_closed(sender: &mut handshake::Sender) -> Result<()> {
    match sender.poll()? {
        LinkStatus::PeerClosed => Err(Status::Closed),
        LinkStatus::Pending | LinkStatus::Connected(_) => Ok(()),
    }
}

fn send_status(e: handshake::SendError) -> Status {
    match e {
        handshake::SendError::PeerClosed => Status::Closed,
        handshake::SendError::TooLarge { .. } => Status::TooLarge,
        handshake::SendError::Ring(e) => e.into(),
    }
}

impl ConsumerHandle {
    fn new(region: &Region, mut end: ConsumerEnd, hooks: MkipcHooks) -> Result<ConsumerHandle> {
        let ring = match &mut end {
            ConsumerEnd::Attached(c) => *c.layout(),
            // Accepted before the handle is made, so the ring is attached.
            ConsumerEnd::Connected(r) => match r.consumer() {
                Some(c) => *c.layout(),
                None => return Err(Status::Internal),
            },
        };
        Ok(ConsumerHandle {
            wake: WakeSide::new(region, &ring)?,
            end,
            hooks,
        })
    }

    fn consumer(&mut self) -> Option<&mut Consumer> {
        match &mut self.end {
            ConsumerEnd::Attached(c) => Some(c),
            ConsumerEnd::Connected(r) => r.consumer(),
        }
    }
}

/// One pop attempt: the length, or `Err(needed)` when `dst` is too short.
fn pop_once(end: &mut ConsumerEnd, dst: &mut [u8]) -> Result<core::result::Result<usize, usize>> {
    let popped = match end {
        ConsumerEnd::Attached(c) => c.pop(dst),
        ConsumerEnd::Connected(r) => match r.recv(dst) {
            Ok(n) => Ok(n),
            Err(handshake::RecvError::Ring(e)) => Err(e),
            Err(handshake::RecvError::Empty | handshake::RecvError::NotConnected) => {
                Err(ConsumeError::Empty)
            }
            Err(handshake::RecvError::Closed) => return Err(Status::Closed),
        },
    };
    match popped {
        Ok(n) => Ok(Ok(n)),
        Err(ConsumeError::BufferTooSmall { needed }) => Ok(Err(needed)),
        Err(e) => Err(e.into()),
    }
}

const _: () = assert!(fits::<MkipcProducer, ProducerHandle>());
const _: () = assert!(fits::<MkipcConsumer, ConsumerHandle>());

fn geometry(slot_count: u32, slot_size: u32, flags: u32) -> Result<Geometry> {
    if flags & !(MKIPC_LAYOUT_DENSE | MKIPC_LAYOUT_COMPACT) != 0 {
        return Err(Status::InvalidArgument);
    }
    let mut g = Geometry::new(slot_count, slot_size);
    if flags & MKIPC_LAYOUT_DENSE != 0 {
        g = g.dense();
    }
    if flags & MKIPC_LAYOUT_COMPACT != 0 {
        g = g.compact();
    }
    g.ring_size().map_err(|_| Status::InvalidArgument)?;
    Ok(g)
}

/// Stores in `*out_size` the bytes a ring of `slot_count` slots (a power of two)
/// of `slot_size` payload bytes (a multiple of 8) occupies with `flags`
/// (`MKIPC_LAYOUT_*`).
///
/// # Safety
///
/// `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_ring_size(
    slot_count: u32,
    slot_size: u32,
    flags: u32,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        if out_size.is_null() {
            return Err(Status::Null);
        }
        let size = geometry(slot_count, slot_size, flags)?
            .ring_size()
            .map_err(|_| Status::InvalidArgument)?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, size) };
        Ok(())
    })
}

/// Formats a ring at `offset` (a multiple of its section alignment): done once by
/// the region's owner, before either end attaches.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_ring_create(
    region: *const MkipcRegion,
    offset: usize,
    slot_count: u32,
    slot_size: u32,
    flags: u32,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        RingLayout::create(region, offset, geometry(slot_count, slot_size, flags)?)?;
        Ok(())
    })
}

/// Attaches the producing end of the ring at `offset`.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_producer`
/// storage; `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_attach(
    out: *mut MkipcProducer,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let producer = Producer::attach(region.clone(), offset)?;
        let handle = ProducerHandle::new(
            region,
            ProducerEnd::Attached(producer),
            MkipcHooks::default(),
        )?;
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, PRODUCER, handle) }
    })
}

/// Attaches the consuming end of the ring at `offset`.
///
/// # Safety
///
/// As for `mkipc_producer_attach`, with `mkipc_consumer` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_attach(
    out: *mut MkipcConsumer,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let consumer = Consumer::attach(region.clone(), offset)?;
        let handle = ConsumerHandle::new(
            region,
            ConsumerEnd::Attached(consumer),
            MkipcHooks::default(),
        )?;
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, CONSUMER, handle) }
    })
}

/// Connects to channel `channel` of the node's manifest as its producer: finds
/// the channel, this node's grant for the producer end (with the `send` right)
/// and the consumer's, and offers the channel (the core handshake: ABI version,
/// layout hash, epoch, message type, maximum size, feature bits).
///
/// `type` is the message type this end speaks; NULL means byte messages up to
/// the channel's maximum (what `mkipc create` lays out). `features` are the
/// feature bits this end supports (the connection uses the intersection).
///
/// Messages may be pushed as soon as this returns: they queue until the
/// consumer accepts. With `timeout_ns` 0 it returns right after the offer
/// (`MKIPC_STATUS_RECLAIM_PENDING` if the consumer has not yet reclaimed this
/// node's previous incarnation); otherwise it waits up to `timeout_ns` on the
/// node's clock for the reclaim and for the consumer's accept
/// (`MKIPC_STATUS_PEER_NOT_READY` when none came, `MKIPC_STATUS_STALE_EPOCH` when
/// only an earlier incarnation's answer is there). Other refusals:
/// `NO_SUCH_CHANNEL`, `NOT_GRANTED`, `TYPE_MISMATCH` (type differs from the
/// manifest's), `TOO_LARGE` (type larger than the channel's maximum),
/// `INCOMPATIBLE` (not an SPSC channel, or the peer's build differs), `BROKEN`
/// (the peer wrote an impossible word), `CLOSED`. On any error nothing is opened.
///
/// The endpoint starts with the node's hooks. Close it with
/// `mkipc_producer_close`, which tells the consumer after everything pushed.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_producer`
/// storage; `node` is null or points to a live `mkipc_node` no other thread
/// writes; `channel` is null or NUL-terminated; `type` is null or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_connect(
    out: *mut MkipcProducer,
    node: *const MkipcNode,
    channel: *const c_char,
    r#type: *const MkipcMessageType,
    features: u64,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let n = unsafe { node_ref(node)? };
        // SAFETY: forwarded contract.
        let name = unsafe { c_str(channel)? };
        // SAFETY: forwarded contract.
        let hello = unsafe { hello_for(&n.manifest, name, r#type, features)? };
        let hooks = n.hooks;
        // Out of time, each wait reports what it was still waiting for.
        let mut sender = hooks.poll_last(
            timeout_ns,
            |s| s == Status::ReclaimPending,
            || {
                Ok(handshake::Sender::connect(
                    &n.manifest,
                    &n.node,
                    name,
                    hello,
                )?)
            },
        )?;
        if timeout_ns > 0 {
            hooks.poll_last(
                timeout_ns,
                |s| s == Status::PeerNotReady,
                || match sender.poll()? {
                    LinkStatus::Connected(_) => Ok(()),
                    LinkStatus::PeerClosed => Err(Status::Closed),
                    LinkStatus::Pending => Err(Status::PeerNotReady),
                },
            )?;
        }
        let end = ProducerEnd::Connected {
            sender,
            since_poll: 0,
        };
        let handle = ProducerHandle::new(n.manifest.region(), end, hooks)?;
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, PRODUCER, handle) }
    })
}

/// Connects to channel `channel` of the node's manifest as its consumer: finds
/// the channel and this node's grant for the consumer end (with the `receive`
/// right), then waits up to `timeout_ns` on the node's clock for the producer's
/// offer and accepts it after checking it (ABI version, layout hash, the
/// producer node's current epoch, message type, maximum size; the agreed
/// features are the intersection). `timeout_ns` 0 looks once.
///
/// Refusals: `PEER_NOT_READY` (no offer in time), `STALE_EPOCH` (only an offer
/// from an earlier incarnation of the producer node), `RECLAIM_PENDING` (the
/// channel holds the state of a producer incarnation that must be reclaimed
/// first; the C ABI cannot reclaim yet: a Rust consumer with the `admin` right
/// can), and as for `mkipc_producer_connect`. On any error nothing is opened.
///
/// `mkipc_consumer_pop` then returns `MKIPC_STATUS_CLOSED` once the producer
/// closed the channel and every message it queued was received.
///
/// # Safety
///
/// As for `mkipc_producer_connect`, with `mkipc_consumer` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_connect(
    out: *mut MkipcConsumer,
    node: *const MkipcNode,
    channel: *const c_char,
    r#type: *const MkipcMessageType,
    features: u64,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let n = unsafe { node_ref(node)? };
        // SAFETY: forwarded contract.
        let name = unsafe { c_str(channel)? };
        // SAFETY: forwarded contract.
        let hello = unsafe { hello_for(&n.manifest, name, r#type, features)? };
        let hooks = n.hooks;
        let mut receiver = handshake::Receiver::open(&n.manifest, &n.node, name, hello)?;
        // Out of time: no offer, or only a stale one, as the last look found.
        hooks.poll_last(
            timeout_ns,
            |s| s == Status::PeerNotReady || s == Status::StaleEpoch,
            || match receiver.try_accept() {
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            },
        )?;
        let end = ConsumerEnd::Connected(receiver);
        let handle = ConsumerHandle::new(n.manifest.region(), end, hooks)?;
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, CONSUMER, handle) }
    })
}

/// The hello of one end: the caller's message type (or the channel's byte
/// messages), its maximum size, its features.
///
/// # Safety
///
/// `ty` is null or readable.
unsafe fn hello_for(
    manifest: &mkipc::manifest::Manifest,
    channel: &str,
    ty: *const MkipcMessageType,
    features: u64,
) -> Result<Hello> {
    let ty = if ty.is_null() {
        MessageType::bytes(manifest.find_channel(channel)?.max_message)
    } else {
        // SAFETY: non-null and readable by the contract; plain integers.
        MessageType::from(unsafe { ty.read() })
    };
    Ok(Hello::new(ty).with_features(features))
}

/// Stores in `*out_type` the identity of byte messages of at most `max_len`
/// bytes: what `mkipc create` and the Rust `ChannelSpec::spsc` give a channel
/// whose slots hold `max_len` bytes.
///
/// # Safety
///
/// `out_type` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_message_type_bytes(
    max_len: u32,
    out_type: *mut MkipcMessageType,
) -> i32 {
    guard(|| {
        if out_type.is_null() {
            return Err(Status::Null);
        }
        let t = MkipcMessageType::from(MessageType::bytes(max_len));
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_type, t) };
        Ok(())
    })
}

/// Closes a producer. A connected producer first marks the channel closed (after
/// everything it pushed), so the consumer drains and then sees
/// `MKIPC_STATUS_CLOSED`.
///
/// # Safety
///
/// `producer` is null or points to `mkipc_producer` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_close(producer: *mut MkipcProducer) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p: ProducerHandle = unsafe { handle::take(producer, PRODUCER)? };
        match p.end {
            ProducerEnd::Connected { sender, .. } => Ok(sender.close()?),
            ProducerEnd::Attached(_) => Ok(()),
        }
    })
}

/// Closes a consumer. A connected consumer marks the channel closed: the
/// producer's next look at it refuses further pushes (`MKIPC_STATUS_CLOSED`);
/// messages still queued stay in the ring.
///
/// # Safety
///
/// `consumer` is null or points to `mkipc_consumer` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_close(consumer: *mut MkipcConsumer) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c: ConsumerHandle = unsafe { handle::take(consumer, CONSUMER)? };
        match c.end {
            ConsumerEnd::Connected(mut r) => Ok(r.close()?),
            ConsumerEnd::Attached(_) => Ok(()),
        }
    })
}

/// # Safety
///
/// `p` is null or points to `mkipc_producer` storage no other thread uses.
unsafe fn producer_of<'a>(p: *mut MkipcProducer) -> Result<&'a mut ProducerHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(p, PRODUCER) }
}

/// # Safety
///
/// `c` is null or points to `mkipc_consumer` storage no other thread uses.
unsafe fn consumer_of<'a>(c: *mut MkipcConsumer) -> Result<&'a mut ConsumerHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(c, CONSUMER) }
}

/// Installs platform hooks on a producer (copied; NULL removes them). After
/// publishing, the producer rings the doorbell when the consumer announced a
/// sleep (once per announced sleep).
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `hooks` is null or readable, and its
/// functions may be called with its `ctx` until the producer is closed or its
/// hooks are replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_set_hooks(
    producer: *mut MkipcProducer,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        // SAFETY: forwarded contract.
        p.set_hooks(unsafe { MkipcHooks::from_ptr(hooks) });
        Ok(())
    })
}

/// Installs platform hooks on a consumer (copied; NULL removes them). The
/// consumer uses the clock, `wait_prepare`/`wait` (or `relax`) in
/// `mkipc_consumer_pop_timeout`.
///
/// # Safety
///
/// As for `mkipc_producer_set_hooks`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_set_hooks(
    consumer: *mut MkipcConsumer,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        // SAFETY: forwarded contract.
        c.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        Ok(())
    })
}

/// Copies `len` bytes from `data` into the next slot and publishes it, waiting up
/// to `timeout_ns` for a free slot (0: no waiting, `MKIPC_STATUS_FULL`), then
/// rings the consumer if it announced a sleep. A connected producer returns
/// `MKIPC_STATUS_CLOSED` once it sees the consumer closed the channel (it looks
/// every 256 messages and whenever the ring is full).
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `data` is readable for `len` bytes
/// (NULL only when `len` is 0) and not inside a shared region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_push_timeout(
    producer: *mut MkipcProducer,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        // SAFETY: forwarded contract.
        let msg = unsafe { bytes(data, len)? };
        let hooks = p.hooks;
        hooks.poll(timeout_ns, |s| s == Status::Full, || p.push(msg))?;
        // Infallible: a failed ring only leaves the consumer to its timeout.
        let _ = p.notifier.notify();
        Ok(())
    })
}

/// `mkipc_producer_push_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_producer_push_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_push(
    producer: *mut MkipcProducer,
    data: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_producer_push_timeout(producer, data, len, 0) }
}

/// Stores the payload capacity of one slot in `*out_size`: the longest message.
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_slot_size(
    producer: *mut MkipcProducer,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        if out_size.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, p.producer().slot_size()) };
        Ok(())
    })
}

/// Copies the next message into `buf` (`cap` bytes), stores its length in
/// `*out_len` and releases its slot, waiting up to `timeout_ns` for one (0: no
/// waiting, `MKIPC_STATUS_EMPTY`). A message longer than `cap` stays queued:
/// `MKIPC_STATUS_BUFFER_TOO_SMALL` with the needed length in `*out_len`.
///
/// While waiting it spins for a bounded budget, then announces a sleep and
/// sleeps in the `wait` hook (or the futex fallback), so producers ring only
/// then. A connected consumer returns `MKIPC_STATUS_CLOSED` once the producer
/// closed the channel and everything it sent was received (a close is not
/// rung: a sleeping pop sees it at its deadline at the latest).
///
/// # Safety
///
/// `consumer` as for `mkipc_consumer_close`; `buf` is writable for `cap` bytes
/// (NULL only when `cap` is 0) and not inside a shared region; `out_len` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_pop_timeout(
    consumer: *mut MkipcConsumer,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        if out_len.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let dst = unsafe { bytes_mut(buf, cap)? };
        let hooks = c.hooks;
        let ConsumerHandle { end, wake, .. } = c;
        let popped = hooks.wait_for(wake, timeout_ns, || pop_once(end, dst))?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_len, popped.unwrap_or_else(|needed| needed)) };
        popped.map(drop).map_err(|_| Status::BufferTooSmall)
    })
}

/// `mkipc_consumer_pop_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_consumer_pop_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_pop(
    consumer: *mut MkipcConsumer,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_consumer_pop_timeout(consumer, buf, cap, out_len, 0) }
}

/// Stores in `*out_count` how many protocol faults the producer has detected in
/// the consumer's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_fault_count(
    producer: *mut MkipcProducer,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, p.producer().fault_count()) };
        Ok(())
    })
}

/// Stores in `*out_count` how many protocol faults the consumer has detected in
/// the producer's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `consumer` as for `mkipc_consumer_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_fault_count(
    consumer: *mut MkipcConsumer,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        let count = c.consumer().map_or(0, |c| c.fault_count());
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, count) };
        Ok(())
    })
}
