//! The node's main loop: beat the heartbeat, answer kernel0's requests from
//! the request ring on the response ring, and wait for the next one by
//! spinning (poll mode) or in `hlt` until the doorbell IPI (IPI mode).
//! Both directions follow mkipc's need-wakeup protocol: the node announces
//! its sleeps in the request ring's `need_wakeup` word (kernel0 rings only
//! then) and rings kernel0 only when kernel0 announced a sleep on the
//! response ring.

use bootparse::bootparams::BootParams;
use bootparse::layout::{self, control as c, names};
use bootparse::wire::{
    FEATURE_CHECKSUM, FanIn, OP_BULK, OP_CHECKSUM, OP_CRASH, OP_FANIN, OP_FLOOR, OP_OVERFLOW,
    OP_PING, Request, Response, checksum, ping_answer,
};
use core::sync::atomic::Ordering;
use core::time::Duration;
use mkipc::Region;
use mkipc::doorbell::{Notifier, Sleeper, SpinPolicy, WaitError, WakeFlag};
use mkipc::handshake::{ConnectError, Hello, LinkStatus, Receiver, Sender};
use mkipc::lifecycle::LocalNode;
use mkipc::manifest::{ChannelInfo, ChannelKind, End, Manifest, Rights};
use mkipc::mpsc;
use mkipc::pool::PoolSender;
use mkipc::spsc::{ConsumeError, RingLayout};
use platform::channels::{fanin_lane, has_message, request_type, response_type};
use platform::control::Control;
use platform::doorbell::{IpiDoorbell, IpiWaiter};
use platform::{cpu, idt, println, tsc, wait};

/// Heartbeat period.
const BEAT_US: u64 = 1_000;
/// Bound on the wait for one floor round.
const FLOOR_ROUND_TIMEOUT_US: u64 = 100_000;
/// Bound on each half of the handshake (kernel0's offer is there before
/// the node starts; its accept follows within its own `handshake_ms`).
const CONNECT_TIMEOUT_US: u64 = 2_000_000;

/// The node's heartbeat: its liveness words in its manifest section (the
/// core's `LocalNode`), beaten every [`BEAT_US`].
pub struct Heart {
    /// This node's liveness words.
    pub node: LocalNode,
    ctl: Control,
    next: u64,
}

impl Heart {
    /// Beats if due (also publishes the count of doorbell IPIs taken).
    pub fn beat_if_due(&mut self) {
        let now = cpu::rdtsc();
        if now < self.next {
            return;
        }
        // A beat that cannot be written leaves the heartbeat frozen: kernel0
        // then declares this node dead, which is the right outcome.
        let _ = self.node.beat();
        let me = self.node.info().id;
        self.ctl
            .node(me, c::WAKEUPS)
            .store(idt::ipi_count(), Ordering::Relaxed);
        self.next = now + tsc::cycles_from_us(BEAT_US);
    }

    /// When the next beat is due (TSC).
    pub fn next_due(&self) -> u64 {
        self.next
    }
}

/// Everything a request handler needs.
struct Node<'a> {
    ctl: &'a Control,
    me: u32,
    image: &'a crate::Image,
}

/// This node's ends of its channels.
pub struct Link {
    /// Consumer of the request ring (accepted kernel0's offer).
    pub rx: Receiver,
    /// Sleeps on the request ring until kernel0's doorbell.
    pub rx_sleep: Sleeper<IpiWaiter>,
    /// Producer of the response ring (offered to kernel0, accepted).
    pub tx: Sender,
    /// Rings kernel0's doorbell when it sleeps on the response ring.
    pub tx_bell: Notifier<IpiDoorbell>,
    /// Sending end of the node's bulk pool.
    pub pool: PoolSender,
    /// This node's producer lane of the MPSC fan-in channel.
    pub fanin: mpsc::Producer,
    /// Rings kernel0's doorbell when it sleeps on the fan-in channel.
    pub fanin_bell: Notifier<IpiDoorbell>,
    /// Next fan-in sequence number in the lane's epoch.
    pub fanin_seq: u64,
    /// The heartbeat.
    pub heart: Heart,
}

/// What the node found in the manifest before it switched to its own page
/// tables: its channels, attached where the core has no handshake (pool,
/// fan-in lane), and where everything lies (for its page grants).
pub struct Opened {
    /// The validated manifest.
    pub manifest: Manifest,
    /// This node's liveness words, booted into its new epoch.
    pub heart: Heart,
    /// The request ring's manifest entry and layout.
    pub request: (ChannelInfo, RingLayout),
    /// The response ring's manifest entry and layout.
    pub response: (ChannelInfo, RingLayout),
    /// Sending end of the bulk pool.
    pub pool: PoolSender,
    /// The fan-in lane.
    pub fanin: mpsc::Producer,
    /// Where the shared pages this node may use lie.
    pub shape: crate::memory::Shape,
}

/// Looks up `name`, checks its kind and that this node holds `end` of it
/// with `rights`.
fn channel(
    m: &Manifest,
    me: u32,
    name: &str,
    kind: ChannelKind,
    end: End,
    rights: Rights,
) -> Result<ChannelInfo, &'static str> {
    let ch = m.find_channel(name).map_err(|e| {
        println!("manifest has no usable channel `{name}`: {e}");
        "channel"
    })?;
    if ch.kind != kind {
        println!(
            "manifest channel `{name}` is {:?}, expected {kind:?}",
            ch.kind
        );
        return Err("channel kind");
    }
    let node = m.find_node(me).map_err(|_| "own node entry")?;
    let granted = m
        .grant_of(node.index, ch.index, end)
        .map_err(|_| "grant table")?
        .is_some_and(|g| g.rights.contains(rights));
    if !granted {
        println!("manifest grants this node no {rights} on the {end:?} end of `{name}`");
        return Err("grant");
    }
    Ok(ch)
}

/// Opens the mkipc region kernel0 wrote: validates the header and the
/// manifest (the peer is untrusted: every count, offset, name and grant is
/// checked), boots this node's epoch in its own section, finds its
/// channels by name and attaches its pool and fan-in lane. The heartbeat
/// publishes its wake-up count through `ctl`.
pub fn open(p: &BootParams, ctl: Control) -> Result<Opened, &'static str> {
    let base = p.shared_virt + layout::RING_REGION_OFFSET;
    // SAFETY: the shared region is mapped at shared_virt for this kernel's
    // life (the granted pages of it, memory.rs); everyone accesses the
    // mkipc region with aligned atomic or volatile word operations only,
    // through mkipc.
    let region =
        unsafe { Region::from_raw_parts(base as *mut u8, layout::RING_REGION_SIZE as usize) }
            .map_err(|_| "bad ring region")?;
    let manifest = match Manifest::open(&region) {
        Ok(m) => m,
        Err(e) => {
            println!("region manifest refused: {e}");
            return Err("manifest");
        }
    };
    let me = p.node_id;
    let (req, resp, pool_name) = names::channels(me).ok_or("no channels for this node id")?;
    let request = channel(
        &manifest,
        me,
        req,
        ChannelKind::Spsc,
        End::Consumer,
        Rights::RECEIVE,
    )?;
    let response = channel(
        &manifest,
        me,
        resp,
        ChannelKind::Spsc,
        End::Producer,
        Rights::SEND,
    )?;
    let pool_ch = channel(
        &manifest,
        me,
        pool_name,
        ChannelKind::Pool,
        End::Producer,
        Rights::SEND | Rights::LOAN,
    )?;
    let fanin_ch = channel(
        &manifest,
        me,
        names::FANIN,
        ChannelKind::Mpsc,
        End::Producer,
        Rights::SEND,
    )?;
    let node = LocalNode::boot(&manifest, me).map_err(|e| {
        println!("cannot boot this node's liveness words: {e}");
        "node section"
    })?;
    if node.epoch() != p.epoch {
        println!(
            "booted epoch {} in the node section, kernel0 expects {}; halting",
            node.epoch(),
            p.epoch
        );
        return Err("epoch");
    }
    let ring = |ch: &ChannelInfo| RingLayout::read(&region, ch.offset).map_err(|_| "ring layout");
    let (req_ring, resp_ring) = (ring(&request)?, ring(&response)?);
    let pool = match PoolSender::attach(region.clone(), pool_ch.offset) {
        Ok(s) => s,
        Err(e) => {
            println!("bulk pool `{pool_name}` refused: {e}");
            return Err("bulk pool");
        }
    };
    let lane = fanin_lane(&manifest, fanin_ch.index, me)
        .map_err(|_| "grant table")?
        .ok_or("no fan-in lane")?;
    let fanin = match mpsc::Producer::attach(region.clone(), fanin_ch.offset, lane) {
        Ok(f) => f,
        Err(e) => {
            println!("fan-in lane {lane} refused: {e}");
            return Err("fan-in lane");
        }
    };
    let own = manifest.find_node(me).map_err(|_| "own node entry")?;
    let kernel0 = manifest.find_node(0).map_err(|_| "kernel0's node entry")?;
    let section = manifest.section_size();
    let shape = crate::memory::Shape {
        // The header and the manifest tables end where the node sections
        // begin (page-aligned by the builder).
        tables: 0..manifest.node_section(0).map_err(|_| "sections")?.start,
        kernel0_section: kernel0.section..kernel0.section + section,
        own_section: own.section..own.section + section,
        request: req_ring,
        response: resp_ring,
        pool: *pool.layout(),
        submit: RingLayout::read(&region, pool.layout().submit_ring())
            .map_err(|_| "pool submission ring")?,
        completion: RingLayout::read(&region, pool.layout().completion_ring())
            .map_err(|_| "pool completion ring")?,
        fanin_head: fanin.channel().offset()..fanin.channel().control_section().end,
        fanin_lane: *fanin.lane_layout(),
    };
    Ok(Opened {
        manifest,
        heart: Heart { node, ctl, next: 0 },
        request: (request, req_ring),
        response: (response, resp_ring),
        pool,
        fanin,
        shape,
    })
}

/// Connects both rings through the core handshake, beating meanwhile:
/// accepts kernel0's offer of the request ring, then offers the response
/// ring and waits for kernel0's accept. Each hello carries this build's
/// feature bits; the agreements are the intersection with kernel0's.
/// Returns the link and the features agreed on (requests, responses).
pub fn connect(
    p: &BootParams,
    opened: Opened,
    image: &crate::Image,
) -> Result<(Link, u64, u64), &'static str> {
    let Opened {
        manifest,
        mut heart,
        request,
        response,
        pool,
        fanin,
        ..
    } = opened;
    let (req, resp, _) = names::channels(p.node_id).ok_or("no channels for this node id")?;
    let region = manifest.region().clone();
    let deadline = tsc::deadline_after_us(CONNECT_TIMEOUT_US);
    let hello = |t| Hello::new(t).with_features(image.features);
    let mut rx =
        Receiver::open(&manifest, &heart.node, req, hello(request_type())).map_err(|e| {
            println!("cannot open `{req}`: {e}");
            "request ring"
        })?;
    let rx_agreed = loop {
        heart.beat_if_due();
        match rx.try_accept() {
            Ok(a) => break a,
            Err(ConnectError::NoOffer | ConnectError::StaleEpoch { .. })
                if !tsc::passed(deadline) =>
            {
                cpu::pause()
            }
            Err(e) => {
                println!("`{req}`: kernel0's offer refused: {e}");
                return Err("request ring handshake");
            }
        }
    };
    let mut tx = loop {
        heart.beat_if_due();
        match Sender::connect(&manifest, &heart.node, resp, hello(response_type())) {
            Ok(s) => break s,
            Err(ConnectError::ReclaimPending { .. }) if !tsc::passed(deadline) => cpu::pause(),
            Err(e) => {
                println!("`{resp}`: cannot offer: {e}");
                return Err("response ring handshake");
            }
        }
    };
    let tx_agreed = loop {
        heart.beat_if_due();
        match tx.poll() {
            Ok(LinkStatus::Connected(a)) => break a,
            Ok(LinkStatus::Pending) if !tsc::passed(deadline) => cpu::pause(),
            Ok(s) => {
                println!("`{resp}`: kernel0 did not accept: {s:?}");
                return Err("response ring handshake");
            }
            Err(e) => {
                println!("`{resp}`: {e}");
                return Err("response ring handshake");
            }
        }
    };
    let vector = u8::try_from(p.ipi_vector).map_err(|_| "IPI vector out of range")?;
    let bell = || IpiDoorbell::new(p.kernel0_apic_id, vector).map_err(|_| "IPI vector reserved");
    let waiter = wait::waiter().ok_or("IDT not loaded")?;
    let flag = WakeFlag::new(region.clone(), request.1.need_wakeup_word())
        .map_err(|_| "request ring wake flag")?;
    // In IPI mode announce the sleep at once: the round trips kernel0
    // measures then go through the doorbell every time.
    let rx_sleep = Sleeper::new(flag, waiter, SpinPolicy::sleep_at_once());
    let tx_bell = Notifier::new(region.clone(), response.1.need_wakeup_word(), bell()?)
        .map_err(|_| "response ring")?;
    let fanin_bell = Notifier::new(region, fanin.channel().need_wakeup_word(), bell()?)
        .map_err(|_| "fan-in channel")?;
    Ok((
        Link {
            rx,
            rx_sleep,
            tx,
            tx_bell,
            pool,
            fanin,
            fanin_bell,
            fanin_seq: 0,
            heart,
        },
        rx_agreed.features,
        tx_agreed.features,
    ))
}

/// Serves requests for ever. Stops (halts, so kernel0 sees the heartbeat
/// stall and restarts us) if kernel0 breaks a ring.
pub fn serve(ctl: &Control, p: &BootParams, image: &crate::Image, mut link: Link) -> ! {
    let me = p.node_id;
    let node = Node { ctl, me, image };
    let mut buf = [0u8; layout::RING_SLOT_SIZE as usize];
    loop {
        link.heart.beat_if_due();
        let popped = match link.rx.consumer() {
            Some(rx) => rx.pop(&mut buf),
            None => {
                println!("request ring: not connected; stopping");
                cpu::halt_forever()
            }
        };
        match popped {
            Ok(n) => match buf.get(..n).map(Request::decode) {
                Some(Ok(req)) => handle(&node, &mut link, req),
                _ => println!("undecodable request of {n} bytes; ignored"),
            },
            Err(ConsumeError::Empty) => idle(ctl, me, &mut link),
            Err(e) => {
                println!("request ring: {e}; stopping");
                cpu::halt_forever()
            }
        }
    }
}

/// Waits for the next request until the next heartbeat is due: spins in
/// poll mode; in IPI mode announces the sleep and sleeps in `hlt` until
/// kernel0's doorbell (mkipc's Sleeper).
fn idle(ctl: &Control, me: u32, link: &mut Link) {
    if ctl.node(me, c::MODE).load(Ordering::Relaxed) == c::MODE_POLL {
        cpu::pause();
        return;
    }
    let until = link.heart.next_due();
    let left = until.saturating_sub(cpu::rdtsc());
    let timeout = Duration::from_nanos(tsc::ns_from_cycles(left));
    let rx = &mut link.rx;
    match link
        .rx_sleep
        .wait_until(|| has_message(rx.consumer()), timeout)
    {
        // A broken ring is found again (and reported) by the next pop.
        Ok(()) | Err(WaitError::TimedOut) | Err(WaitError::Check(_)) => {}
        Err(WaitError::Waiter(e)) => {
            println!("waiting for kernel0's doorbell: {e}");
            wait::until(until, || false);
        }
    }
}

/// Pushes a response and notifies kernel0 (the doorbell rings only if
/// kernel0 announced a sleep); false when the ring refused it.
fn respond(link: &mut Link, resp: Response) -> bool {
    if let Err(e) = link.tx.send(&resp.encode()) {
        println!("response ring: {e}");
        return false;
    }
    if let Err(e) = link.tx_bell.notify() {
        println!("doorbell to kernel0 failed: {e}");
    }
    true
}

/// Pushes an answer and notifies kernel0, then publishes the doorbell
/// counters.
fn answer(node: &Node, link: &mut Link, seq: u64, val: u64) {
    respond(link, Response { seq, val });
    publish_bells(node, link);
}

/// Publishes the doorbell counters of the response ring and the fan-in
/// lane in the status page.
fn publish_bells(node: &Node, link: &Link) {
    let word = |f| node.ctl.node(node.me, f);
    let s = link.tx_bell.stats();
    word(c::RUNG).store(s.rung, Ordering::Relaxed);
    word(c::SUPPRESSED).store(s.suppressed, Ordering::Relaxed);
    let s = link.fanin_bell.stats();
    word(c::FANIN_RUNG).store(s.rung, Ordering::Relaxed);
    word(c::FANIN_SUPPRESSED).store(s.suppressed, Ordering::Relaxed);
}

fn handle(node: &Node, link: &mut Link, req: Request) {
    let (ctl, me) = (node.ctl, node.me);
    match req.op {
        OP_PING => answer(node, link, req.seq, ping_answer(u64::from(me), req.arg)),
        OP_CHECKSUM if node.image.features & FEATURE_CHECKSUM != 0 => {
            answer(node, link, req.seq, checksum(req.arg))
        }
        OP_FLOOR => {
            ctl.node(me, c::FLOOR_PONG).store(0, Ordering::Relaxed);
            let ack = Response {
                seq: req.seq,
                val: req.arg,
            };
            let pushed = respond(link, ack);
            publish_bells(node, link);
            if pushed {
                floor(ctl, me, req.arg);
            }
        }
        OP_BULK => {
            let val = crate::bulk::send(&mut link.heart, &mut link.pool, req.arg);
            answer(node, link, req.seq, val)
        }
        OP_FANIN => fan_in(node, link, req.arg),
        OP_CRASH => stray_write(req.arg),
        OP_OVERFLOW => {
            println!("recursing until the stack hits its guard page, as asked");
            let depth = recurse(0);
            println!("recursion returned at depth {depth} without faulting; halting");
            cpu::halt_forever()
        }
        op => println!("unknown request {op} (seq {}); ignored", req.seq),
    }
}

/// Longest wait for room in the fan-in lane.
const FANIN_FULL_TIMEOUT_US: u64 = 500_000;

/// Pushes `count` sequenced messages into this node's fan-in lane, waiting
/// (bounded, heartbeat going) while the lane is full. After each push it
/// notifies kernel0 under the need-wakeup protocol: the doorbell rings only
/// when kernel0 announced a sleep on the channel, once per sleep.
fn fan_in(node: &Node, link: &mut Link, count: u64) {
    let epoch = link.fanin.epoch();
    for _ in 0..count {
        let msg = FanIn::new(u64::from(node.me), epoch, link.fanin_seq).encode();
        let deadline = tsc::deadline_after_us(FANIN_FULL_TIMEOUT_US);
        loop {
            match link.fanin.push(&msg) {
                Ok(()) => break,
                Err(mkipc::spsc::ProduceError::Full) if !tsc::passed(deadline) => {
                    link.heart.beat_if_due();
                    cpu::pause();
                }
                Err(e) => {
                    println!("fan-in lane: {e}; burst abandoned");
                    publish_bells(node, link);
                    return;
                }
            }
        }
        if let Err(e) = link.fanin_bell.notify() {
            println!("fan-in doorbell to kernel0 failed: {e}");
        }
        link.fanin_seq += 1;
    }
    publish_bells(node, link);
}

/// Echoes `rounds` rounds of the raw one-word ping-pong (see kernel0's
/// floor.rs); gives up after a bounded wait for any round.
fn floor(ctl: &Control, me: u32, rounds: u64) {
    let ping = ctl.node(me, c::FLOOR_PING);
    let pong = ctl.node(me, c::FLOOR_PONG);
    for i in 1..=rounds {
        let deadline = tsc::deadline_after_us(FLOOR_ROUND_TIMEOUT_US);
        let mut spins = 0u32;
        // Acquire pairs with kernel0's Release store of FLOOR_PING.
        while ping.load(Ordering::Acquire) != i {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && tsc::passed(deadline) {
                println!("floor round {i} of {rounds} never came; back to serving");
                return;
            }
            cpu::pause();
        }
        // Release pairs with kernel0's Acquire load of FLOOR_PONG.
        pong.store(i, Ordering::Release);
    }
}

/// Writes outside the partition on kernel0's request, to prove the page
/// tables fence it: the write faults and the exception handler halts us.
fn stray_write(addr: u64) -> ! {
    println!("writing to {addr:#x} (outside this partition) as asked");
    // SAFETY: deliberately not sound if it succeeded: the address is not
    // mapped in this node's tables, so the write raises #PF before touching
    // memory. Should it ever be mapped, kernel0 detects the change.
    unsafe { (addr as *mut u64).write_volatile(0xdead_beef) };
    println!("stray write to {addr:#x} did not fault; halting");
    cpu::halt_forever()
}

/// Recurses (512 bytes of frame per level) until the stack runs into its
/// guard page; the bound only exists so the function can return in theory.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth > 1 << 20 {
        return depth;
    }
    let mut frame = core::hint::black_box([0u8; 512]);
    frame[depth as usize % 512] = depth as u8;
    let below = recurse(depth + 1);
    below.wrapping_add(u64::from(
        core::hint::black_box(frame)[depth as usize % 512],
    ))
}
