//! The node's main loop: beat the heartbeat, answer kernel0's requests from
//! the request ring on the response ring, and wait for the next one by
//! spinning (poll mode) or in `hlt` until the doorbell IPI (IPI mode).
//! Both directions follow mkipc's need-wakeup protocol: the node announces
//! its sleeps in the request ring's `need_wakeup` word (kernel0 rings only
//! then) and rings kernel0 only when kernel0 announced a sleep on the
//! response ring.

use bootparse::bootparams::BootParams;
use bootparse::layout::{self, control as c};
use bootparse::wire::{
    FEATURE_CHECKSUM, FanIn, OP_BULK, OP_CHECKSUM, OP_CRASH, OP_FANIN, OP_FLOOR, OP_OVERFLOW,
    OP_PING, Request, Response, checksum, ping_answer,
};
use core::sync::atomic::Ordering;
use core::time::Duration;
use mkipc::Region;
use mkipc::doorbell::{BlockingConsumer, NotifyingProducer, RecvError, SendError, SpinPolicy};
use mkipc::mpsc;
use mkipc::pool::PoolSender;
use mkipc::spsc::{ConsumeError, RingLayout};
use platform::control::Control;
use platform::doorbell::{IpiDoorbell, IpiWaiter};
use platform::{cpu, idt, println, tsc, wait};

/// Heartbeat period.
const BEAT_US: u64 = 1_000;
/// Bound on the wait for one floor round.
const FLOOR_ROUND_TIMEOUT_US: u64 = 100_000;

/// Beats the heartbeat if due; returns when the next beat is due.
pub fn beat_if_due(ctl: &Control, me: u32, next_beat: u64) -> u64 {
    let now = cpu::rdtsc();
    if now < next_beat {
        return next_beat;
    }
    ctl.node(me, c::HEARTBEAT).fetch_add(1, Ordering::Relaxed);
    ctl.node(me, c::WAKEUPS)
        .store(idt::ipi_count(), Ordering::Relaxed);
    now + tsc::cycles_from_us(BEAT_US)
}

/// Everything a request handler needs.
struct Node<'a> {
    ctl: &'a Control,
    me: u32,
    image: &'a crate::Image,
}

/// This node's ends of its ring pair.
pub struct Link {
    /// Consumer of the request ring, sleeping in the IPI waiter.
    pub rx: BlockingConsumer<IpiWaiter>,
    /// Producer of the response ring, ringing kernel0's doorbell.
    pub tx: NotifyingProducer<IpiDoorbell>,
    /// Sending end of the node's bulk pool.
    pub pool: PoolSender,
    /// This node's producer lane of the MPSC fan-in channel.
    pub fanin: mpsc::Producer,
    /// Next fan-in sequence number in the lane's epoch.
    pub fanin_seq: u64,
}

/// Attaches to the mkipc region kernel0 formatted, to this node's rings and
/// to its bulk pool; also returns the pool's shape for the page grants.
pub fn connect(p: &BootParams) -> Result<(Link, crate::memory::PoolShape), &'static str> {
    let base = p.shared_virt + layout::RING_REGION_OFFSET;
    // SAFETY: the shared region is mapped at shared_virt for this kernel's
    // life (memory.rs); everyone accesses the ring area with aligned atomic
    // or volatile word operations only, through mkipc.
    let region =
        unsafe { Region::from_raw_parts(base as *mut u8, layout::RING_REGION_SIZE as usize) }
            .map_err(|_| "bad ring region")?;
    if let Err(e) = mkipc::header::read_header(&region) {
        println!("mkipc region header refused: {e}");
        return Err("region header");
    }
    let (req, resp) = layout::ring_offsets(p.node_id).ok_or("no rings for this node id")?;
    let vector = u8::try_from(p.ipi_vector).map_err(|_| "IPI vector out of range")?;
    let kernel0 = IpiDoorbell::new(p.kernel0_apic_id, vector).map_err(|_| "IPI vector reserved")?;
    let waiter = platform::wait::waiter().ok_or("IDT not loaded")?;
    // In IPI mode announce the sleep at once: the round trips kernel0
    // measures then go through the doorbell every time.
    let rx = BlockingConsumer::attach(
        region.clone(),
        req as usize,
        waiter,
        SpinPolicy::sleep_at_once(),
    )
    .map_err(|_| "request ring")?;
    let tx = NotifyingProducer::attach(region.clone(), resp as usize, kernel0)
        .map_err(|_| "response ring")?;
    let at = layout::pool_offset(p.node_id).ok_or("no pool for this node id")? as usize;
    let pool = match PoolSender::attach(region.clone(), at) {
        Ok(s) => s,
        Err(e) => {
            println!("bulk pool refused: {e}");
            return Err("bulk pool");
        }
    };
    let lane = p.node_id as usize - 1;
    let fanin = match mpsc::Producer::attach(region.clone(), layout::FANIN_OFFSET as usize, lane) {
        Ok(f) => f,
        Err(e) => {
            println!("fan-in lane {lane} refused: {e}");
            return Err("fan-in lane");
        }
    };
    let shape = crate::memory::PoolShape {
        layout: *pool.layout(),
        submit: RingLayout::read(&region, pool.layout().submit_ring())
            .map_err(|_| "pool submission ring")?,
        completion: RingLayout::read(&region, pool.layout().completion_ring())
            .map_err(|_| "pool completion ring")?,
        fanin_head: fanin.channel().offset()..fanin.channel().control_section().end,
        fanin_lane: *fanin.lane_layout(),
    };
    Ok((
        Link {
            rx,
            tx,
            pool,
            fanin,
            fanin_seq: 0,
        },
        shape,
    ))
}

/// Serves requests for ever. Stops (halts, so kernel0 sees the heartbeat
/// stall and restarts us) if kernel0 breaks a ring.
pub fn serve(ctl: &Control, p: &BootParams, image: &crate::Image, mut link: Link) -> ! {
    let me = p.node_id;
    let node = Node { ctl, me, image };
    let mut next_beat = 0u64;
    let mut buf = [0u8; layout::RING_SLOT_SIZE as usize];
    loop {
        next_beat = beat_if_due(ctl, me, next_beat);
        match link.rx.consumer().pop(&mut buf) {
            Ok(n) => match buf.get(..n).map(Request::decode) {
                Some(Ok(req)) => handle(&node, &mut link, req),
                _ => println!("undecodable request of {n} bytes; ignored"),
            },
            Err(ConsumeError::Empty) => idle(ctl, me, &mut link.rx, next_beat),
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
fn idle(ctl: &Control, me: u32, rx: &mut BlockingConsumer<IpiWaiter>, until: u64) {
    if ctl.node(me, c::MODE).load(Ordering::Relaxed) == c::MODE_POLL {
        cpu::pause();
        return;
    }
    let left = until.saturating_sub(cpu::rdtsc());
    let timeout = Duration::from_nanos(tsc::ns_from_cycles(left));
    match rx.wait(timeout) {
        // A broken ring is found again (and reported) by the next pop.
        Ok(()) | Err(RecvError::TimedOut) | Err(RecvError::Consume(_)) => {}
        Err(RecvError::Waiter(e)) => {
            println!("waiting for kernel0's doorbell: {e}");
            wait::until(until, || false);
        }
    }
}

/// Pushes an answer and notifies kernel0 (the doorbell rings only if
/// kernel0 announced a sleep), then publishes the doorbell counters.
fn answer(node: &Node, link: &mut Link, seq: u64, val: u64) {
    let resp = Response { seq, val };
    match link.tx.push(&resp.encode()) {
        Ok(()) => {}
        Err(SendError::Produce(e)) => println!("response ring: {e}"),
        Err(SendError::Doorbell(e)) => println!("doorbell to kernel0 failed: {e}"),
    }
    publish_bells(node, link);
}

/// Publishes the doorbell counters of the response ring in the status page.
fn publish_bells(node: &Node, link: &Link) {
    let s = link.tx.stats();
    node.ctl
        .node(node.me, c::RUNG)
        .store(s.rung, Ordering::Relaxed);
    node.ctl
        .node(node.me, c::SUPPRESSED)
        .store(s.suppressed, Ordering::Relaxed);
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
            let pushed = link.tx.push(&ack.encode()).is_ok();
            publish_bells(node, link);
            if pushed {
                floor(ctl, me, req.arg);
            }
        }
        OP_BULK => {
            let val = crate::bulk::send(node.ctl, me, &mut link.pool, req.arg);
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
/// (bounded, heartbeat going) while the lane is full.
fn fan_in(node: &Node, link: &mut Link, count: u64) {
    let mut next_beat = 0;
    let epoch = link.fanin.epoch();
    for _ in 0..count {
        let msg = FanIn::new(u64::from(node.me), epoch, link.fanin_seq).encode();
        let deadline = tsc::deadline_after_us(FANIN_FULL_TIMEOUT_US);
        loop {
            match link.fanin.push(&msg) {
                Ok(()) => break,
                Err(mkipc::spsc::ProduceError::Full) if !tsc::passed(deadline) => {
                    next_beat = beat_if_due(node.ctl, node.me, next_beat);
                    cpu::pause();
                }
                Err(e) => {
                    println!("fan-in lane: {e}; burst abandoned");
                    return;
                }
            }
        }
        link.fanin_seq += 1;
    }
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
