//! kernel0: the partition manager. Boots through PVH on the bootstrap CPU,
//! discovers the machine, carves partitions, loads the secondary image into
//! each secondary's partition, starts one secondary per remaining CPU, and
//! drives the checks: round trips over the mkipc rings against the raw
//! floor (polling, then IPIs), then several crash/restart cycles of nodes in
//! the middle of traffic (detection, fencing, restart on a newer image)
//! while the others keep answering. Prints the summary lines a script
//! checks (`kernels:`, `handshake:`, `traffic:`, `latency:`, `recovery:`)
//! and ends the QEMU run through isa-debug-exit: `platform::exit::SUCCESS`
//! only when every check passed.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod bench;
mod boot;
mod bulk;
mod error;
mod fanin;
mod floor;
mod machine;
mod manifest;
mod nodes;
mod physmem;
mod pingpong;
mod recovery;
mod stats;
mod trampoline;

use bootparse::bundle::{self, MAX_IMAGES};
use bootparse::cmdline::{self, Config};
use bootparse::elf;
use bootparse::layout;
use bootparse::wire::{OP_CHECKSUM, checksum};
use core::sync::atomic::Ordering;
use error::Error;
use mkipc::Region;
use mkipc::lifecycle::LocalNode;
use nodes::{LoadableImage, Starter};
use pingpong::Mode;
use platform::cell::RacyCell;
use platform::control::Control;
use platform::{console, exit, gdt, idt, lapic, pic, println, tsc};
use stats::Samples;

/// Fan-in messages each node sends in the measured round at start-up.
const FANIN_ROUND: u64 = 1_000;
/// Rounds of one fan-in message per node, each waited for asleep.
const FANIN_TRICKLE: u64 = 50;
/// Fan-in messages each node sends in the round after each restart.
const FANIN_AFTER_RESTART: u64 = 200;

/// Measured bulk transfers per node at start-up.
const BULK_REPS: usize = 3;

/// Checksum requests sent to each node whose build offers them.
const CHECKSUMS: u64 = 16;

/// Pings (poll, IPI) that must pass after each restart.
const AFTER_RESTART: (usize, usize) = (200, 50);

/// A raw one-word round trip slower than this cannot be a cache-line
/// transfer: the host took the CPU away mid-measurement.
const NOISY_FLOOR_NS: u64 = 20_000;

static SAMPLES: RacyCell<Samples> = RacyCell::new(Samples::new(0));

unsafe extern "C" {
    static __kernel0_end: u8;
}

/// Entered from `boot.rs` in long mode with the physical address of the PVH
/// start_info.
extern "C" fn kernel0_main(start_info: u64) -> ! {
    console::init(0);
    println!("mkipc kernel0: PVH entry, long mode, start_info at {start_info:#x}");
    gdt::load();
    idt::load();
    idt::exit_on_fatal(true);
    let guard = boot::guard_stack();
    println!("boot stack guard page {guard:#x} unmapped; #DF, NMI and #MC run on IST stacks");
    match run(start_info) {
        Ok(()) => {
            println!("RESULT: PASS (all checks verified)");
            exit::exit(exit::SUCCESS)
        }
        Err(e) => {
            println!("RESULT: FAIL: {e}");
            exit::exit(exit::FAILURE)
        }
    }
}

fn run(start_info: u64) -> Result<(), Error> {
    let m = machine::discover(start_info)?;
    let mut line = [0u8; cmdline::MAX_LEN];
    let text = cmdline::read(&physmem::Identity, m.start_info.cmdline_paddr, &mut line)?;
    let config = cmdline::parse(text).inspect_err(|e| println!("kernel command line: {e}"))?;
    println!(
        "config: dead_ms={} ap_start_ms={} handshake_ms={} crash_cycles={} (command line \"{}\")",
        config.dead_ms,
        config.ap_start_ms,
        config.handshake_ms,
        config.crash_cycles,
        core::str::from_utf8(text).unwrap_or("<not UTF-8>")
    );
    pic::disable();
    // SAFETY: kernel0 owns PIT channel 2 and port 0x61 (nothing else runs).
    let hz = unsafe { tsc::calibrate()? };
    println!("TSC calibrated against PIT channel 2: {} kHz", hz / 1000);
    if m.madt.lapic_addr != layout::LAPIC_PHYS {
        return Err(Error::Layout("local APIC not at 0xfee00000"));
    }
    // SAFETY: boot.rs identity-maps the APIC page uncached (top GiB).
    let mode = unsafe {
        lapic::init(
            layout::LAPIC_PHYS,
            layout::LAPIC_PHYS,
            platform::SPURIOUS_VECTOR,
        )?
    };
    let me = lapic::id();
    let per_ms = lapic::calibrate_timer(platform::TIMER_VECTOR)?;
    println!("local APIC: {mode:?}, id {me}, timer {per_ms} ticks/ms (div 16)");

    let nodes = nodes::claim(&m.madt, me)?;
    let count = nodes.len();
    let image_end = core::ptr::addr_of!(__kernel0_end) as u64;
    machine::check_layout(&m, count as u32, image_end)?;
    println!(
        "layout: kernel0 {:#x}..{:#x} (image ends {image_end:#x}), shared {:#x}..{:#x}, trampoline {:#x}",
        layout::KERNEL0_BASE,
        layout::KERNEL0_END,
        layout::SHARED_PHYS,
        layout::SHARED_PHYS + layout::SHARED_SIZE,
        layout::TRAMPOLINE_PHYS
    );

    // SAFETY: check_layout verified the module is RAM below 4 GiB, clear of
    // every region kernel0 writes; nothing else writes it.
    let module = unsafe { physmem::ram_slice(m.module.paddr, m.module.size) };
    let found = bundle::parse(module)?;
    let mut images = [None; MAX_IMAGES];
    for (i, (slot, &bytes)) in images.iter_mut().zip(found.all()).enumerate() {
        let plan = elf::plan(bytes, layout::image_window())?;
        println!(
            "secondary image {i} ({} bytes): entry {:#x}, {} segment(s)",
            bytes.len(),
            plan.entry,
            plan.segments().len()
        );
        for s in plan.segments() {
            println!(
                "  segment: file {:#x}+{:#x} -> partition +{:#x} mem {:#x} flags {}",
                s.file_offset,
                s.file_size,
                layout::SEC_IMAGE_OFFSET + s.dest_offset as u64,
                s.mem_size,
                s.flags
            );
        }
        *slot = Some(LoadableImage { bytes, plan });
    }

    // SAFETY: the shared region is RAM below 4 GiB (check_layout), identity
    // mapped, and from now on only accessed atomically through `Control`.
    let ctl = unsafe { Control::new(layout::SHARED_PHYS as *mut u8) };
    ctl.init();
    console::attach(&ctl);
    let ring_base = layout::SHARED_PHYS + layout::RING_REGION_OFFSET;
    // SAFETY: the ring area of the shared region stays mapped for kernel0's
    // life and every party (kernel0 and the nodes, through mkipc) accesses
    // it with aligned atomic or volatile word operations only.
    let region = unsafe {
        Region::from_raw_parts(ring_base as *mut u8, layout::RING_REGION_SIZE as usize)
            .map_err(Error::Region)?
    };
    let (manifest, shape) = manifest::write(&region, count as u32)?;
    println!(
        "mkipc region {ring_base:#x}..{:#x}: header and manifest written (generation 1): {} nodes, {} SPSC rings, {} pools, {} MPSC channel, {} grants; node sections of {} bytes, page-aligned; layout uses {} KiB",
        ring_base + layout::RING_REGION_SIZE,
        shape.nodes,
        shape.spsc,
        shape.pools,
        shape.mpsc,
        shape.grants,
        shape.section_size,
        shape.used / 1024
    );
    let kernel0 = LocalNode::boot(&manifest, 0).map_err(|e| Error::Lifecycle(0, e))?;
    let mut fanin = fanin::FanIn::create(&region, &manifest, nodes)?;
    println!(
        "mkipc MPSC fan-in channel `{}` at region +{:#x}: {} producer lanes of {} x {}-byte slots, each node's lane from its grant",
        layout::names::FANIN,
        fanin.offset(),
        nodes::MAX_SECONDARIES,
        layout::FANIN_SLOTS,
        layout::FANIN_SLOT_SIZE
    );
    let starter = Starter {
        images,
        config,
        ctl,
        region,
        manifest,
        kernel0,
        kernel0_apic: me,
    };

    let mut boot_ready_us = 0;
    let mut boot_features = (u64::MAX, 0);
    let mut boot_builds = (u64::MAX, 0);
    for n in nodes.iter_mut() {
        let s = starter.start(n, 0)?;
        boot_ready_us = boot_ready_us.max(s.ready_us);
        boot_features = (
            boot_features.0.min(n.features),
            boot_features.1.max(n.features),
        );
        boot_builds = (boot_builds.0.min(n.build), boot_builds.1.max(n.build));
        let (req, resp, _) = layout::names::channels(n.id).ok_or(Error::NoSecondary)?;
        println!(
            "node {} (apic {}) partition {:#x}..{:#x}: long mode after {} us; connected through the handshake after {} us under epoch {}: `{req}` accepted by the node, `{resp}` accepted by kernel0, features agreed {:#x}/{:#x} (build {})",
            n.id,
            n.apic_id,
            n.partition.base,
            n.partition.base + n.partition.size,
            s.ack_us,
            s.ready_us,
            n.epoch,
            s.agreed.0.features,
            s.agreed.1.features,
            n.build
        );
    }

    // SAFETY: only this CPU touches SAMPLES, and only through this reference.
    let samples = unsafe { &mut *SAMPLES.get() };
    let mut figures = [bench::Figures::default(); nodes::MAX_SECONDARIES];
    for (i, n) in nodes.iter_mut().enumerate() {
        figures[i] = bench::measure(&ctl, n, samples)?;
        pingpong::set_mode(&ctl, n, Mode::Ipi);
        let f = &figures[i];
        f.floor
            .print(format_args!("node {} floor (1 word each way)", n.id));
        f.poll
            .print(format_args!("node {} ring round trip, poll", n.id));
        f.ipi
            .print(format_args!("node {} ring round trip, IPI", n.id));
    }
    let mut bulk_totals = bulk::Totals::default();
    for n in nodes.iter_mut() {
        for _ in 0..BULK_REPS {
            let t = bulk::transfer(&ctl, n, bulk::MESSAGES)?;
            println!(
                "node {}: bulk {} x {} KiB through the pool, read in place and verified: {} bytes in {} us = {} MB/s",
                n.id,
                bulk::MESSAGES,
                layout::POOL_BUFFER_SIZE / 1024,
                t.bytes,
                tsc::ns_from_cycles(t.cycles) / 1000,
                t.bytes_per_s() / 1_000_000
            );
            bulk_totals.add(t);
        }
        pingpong::set_mode(&ctl, n, Mode::Ipi);
    }
    let round = fanin.round(nodes, FANIN_ROUND, Mode::Poll)?;
    let fanin_first = round.messages;
    let fanin_rate = round.messages * 1_000_000_000 / tsc::ns_from_cycles(round.cycles).max(1);
    println!(
        "MPSC fan-in, kernel0 polling: {} nodes x {FANIN_ROUND} sequenced messages at once, all verified per producer in {} us = {fanin_rate} msg/s",
        nodes.len(),
        tsc::ns_from_cycles(round.cycles) / 1000
    );
    let before = pingpong::check_bells(&ctl, nodes, fanin.wait_stats())?;
    let round = fanin.round(nodes, FANIN_ROUND, Mode::Ipi)?;
    let fanin_ipi_rate = round.messages * 1_000_000_000 / tsc::ns_from_cycles(round.cycles).max(1);
    let trickled = fanin.trickle(nodes, FANIN_TRICKLE)?;
    let b = pingpong::check_bells(&ctl, nodes, fanin.wait_stats())?;
    println!(
        "MPSC fan-in, kernel0 asleep on the channel's need_wakeup word between pumps: {} nodes x {FANIN_ROUND} messages at once verified in {} us = {fanin_ipi_rate} msg/s, then {FANIN_TRICKLE} rounds of one message per node ({trickled} verified); kernel0 slept {} times ({} woken by a doorbell, {} re-checks found messages); nodes rang {} doorbells and suppressed {} notifications",
        nodes.len(),
        tsc::ns_from_cycles(round.cycles) / 1000,
        b.fanin.sleeps - before.fanin.sleeps,
        b.fanin.woken - before.fanin.woken,
        b.fanin.rechecks_ready - before.fanin.rechecks_ready,
        b.fanin_rung - before.fanin_rung,
        b.fanin_suppressed - before.fanin_suppressed
    );
    println!(
        "doorbells (need-wakeup): kernel0 took {} IPIs of the {} the nodes rang ({} suppressed; {} merged into a pending one); kernel0 rang nodes {} times, suppressed {}",
        b.taken,
        b.rung_to_kernel0(),
        b.to_kernel0_suppressed + b.fanin_suppressed,
        b.rung_to_kernel0() - b.taken,
        b.to_nodes_rung,
        b.to_nodes_suppressed
    );
    for n in nodes.iter() {
        let w = ctl
            .node(n.id, layout::control::WAKEUPS)
            .load(Ordering::Relaxed);
        println!(
            "node {} reports {w} doorbell IPIs taken (as of its last heartbeat)",
            n.id
        );
    }
    let recovery = crash_cycles(&starter, nodes, samples, &mut bulk_totals, &mut fanin)?;
    let fanin_summary = FanInSummary {
        first_round: fanin_first,
        rate: fanin_rate,
        verified: fanin.verified,
        resets: fanin.resets,
        drained: fanin.drained_after_fence,
    };
    let checksums = checksum_traffic(nodes)?;
    let bells = pingpong::check_bells(&ctl, nodes, fanin.wait_stats())?;
    let boot = Boot {
        hz,
        kernel0_apic: me,
        mode,
        config,
        images: found.len(),
        boot_ready_us,
        boot_features,
        boot_builds,
        shape,
        fanin_ipi_rate,
    };
    summary(
        &boot,
        nodes,
        &figures,
        &Traffic {
            bells,
            checksums,
            bulk: bulk_totals,
            fan: fanin_summary,
        },
        &recovery,
    );
    Ok(())
}

/// Traffic beyond the ping-pong, for the summary.
struct Traffic {
    bells: pingpong::Bells,
    checksums: u64,
    bulk: bulk::Totals,
    fan: FanInSummary,
}

/// What the MPSC fan-in verified, for the summary.
struct FanInSummary {
    first_round: u64,
    rate: u64,
    verified: u64,
    resets: u64,
    drained: u64,
}

/// Facts of the boot the summary reports.
struct Boot {
    hz: u64,
    kernel0_apic: u32,
    mode: lapic::Mode,
    config: Config,
    images: usize,
    boot_ready_us: u64,
    /// Lowest and highest features agreed at the first start.
    boot_features: (u64, u64),
    /// Lowest and highest build at the first start.
    boot_builds: (u64, u64),
    shape: manifest::Shape,
    fanin_ipi_rate: u64,
}

/// Sends [`CHECKSUMS`] checksum requests to every node whose build
/// advertises them, checking each answer; returns how many were verified.
fn checksum_traffic(nodes: &mut [nodes::Node]) -> Result<u64, Error> {
    let mut verified = 0;
    for n in nodes.iter_mut() {
        if n.features & bootparse::wire::FEATURE_CHECKSUM == 0 {
            continue;
        }
        for i in 0..CHECKSUMS {
            let arg = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(n.id);
            let (val, _) = pingpong::call(n, Mode::Ipi, OP_CHECKSUM, arg)?;
            if val != checksum(arg) {
                return Err(Error::WrongAnswer(n.id, n.seq, val));
            }
            verified += 1;
        }
    }
    Ok(verified)
}

/// What the crash/restart cycles observed, for the summary.
#[derive(Default)]
struct Recovery {
    cycles: u64,
    page_faults: u64,
    double_faults: u64,
    detect_min_us: u64,
    detect_max_us: u64,
    restart_max_us: u64,
    others_answered: u64,
    answered_before: u64,
    behind_answered: u64,
    upgrades: u64,
    newest_build: u64,
    nodes_hit: u32,
    reclaimed_held: u64,
    reclaimed_queued: u64,
    bulk_after_restart: u64,
    fanin_before: u64,
    fanin_others: u64,
    fanin_rounds_after: u64,
    /// Lowest and highest epoch a restart reconnected under.
    epochs: (u64, u64),
    /// Features agreed on reconnects (all restarts: OR of the sets).
    restart_features: u64,
    /// Reconnects whose agreement gained feature bits.
    features_gained: u64,
}

/// `config.crash_cycles` crash/restart cycles, rotating over the nodes and
/// the kinds of stray access, each followed by verified traffic with the
/// restarted node.
fn crash_cycles(
    starter: &Starter,
    nodes: &mut [nodes::Node],
    samples: &mut Samples,
    bulk_totals: &mut bulk::Totals,
    fanin: &mut fanin::FanIn,
) -> Result<Recovery, Error> {
    let mut r = Recovery {
        detect_min_us: u64::MAX,
        epochs: (u64::MAX, 0),
        ..Recovery::default()
    };
    for k in 0..starter.config.crash_cycles as usize {
        let kind = recovery::Stray::ALL[k % recovery::Stray::ALL.len()];
        let target = k % nodes.len();
        let c = recovery::cycle(starter, nodes, target, kind, fanin)?;
        println!(
            "crash cycle {}: node {} told {kind:?} after {} pings, with {} bulk buffers lent ({} held by kernel0, {} queued): vector {} error {:#x} at {:#x}, {}; watchdog declared epoch {} dead after {} us; {} queued pings answered before the crash; others answered {} pings meanwhile; fenced (INIT), both rings reclaimed (responses resume at {}), reloaded build {} (was {}), reconnected under epoch {} after {} us with features {:#x}/{:#x} (gained {:#x}); the {} requests queued behind the crash answered by the new epoch",
            k + 1,
            c.node,
            recovery::BEFORE_CRASH,
            c.reclaimed.held + c.reclaimed.queued,
            c.reclaimed.held,
            c.reclaimed.queued,
            c.vector,
            c.fault_error,
            c.fault_addr,
            if kind == recovery::Stray::StackOverflow {
                "inside its stack guard page, reported from the #DF IST stack"
            } else {
                "target memory unchanged"
            },
            c.dead_epoch,
            c.detect_us,
            c.answered_before,
            c.others_answered,
            c.resumed_at,
            c.new_build,
            c.old_build,
            c.epoch,
            c.restart_us,
            c.agreed.0.features,
            c.agreed.1.features,
            c.new_features,
            c.behind_answered
        );
        r.cycles += 1;
        if c.vector == 8 {
            r.double_faults += 1;
        } else {
            r.page_faults += 1;
        }
        r.detect_min_us = r.detect_min_us.min(c.detect_us);
        r.detect_max_us = r.detect_max_us.max(c.detect_us);
        r.restart_max_us = r.restart_max_us.max(c.restart_us);
        r.others_answered += c.others_answered;
        r.answered_before += c.answered_before;
        r.behind_answered += c.behind_answered;
        r.epochs = (r.epochs.0.min(c.epoch), r.epochs.1.max(c.epoch));
        r.restart_features |= c.agreed.0.features;
        if c.new_features != 0 {
            r.features_gained += 1;
        }
        r.nodes_hit |= 1 << c.node;
        if c.new_build > c.old_build {
            r.upgrades += 1;
        }
        r.newest_build = r.newest_build.max(c.new_build);
        r.reclaimed_held += c.reclaimed.held;
        r.reclaimed_queued += c.reclaimed.queued;
        r.fanin_before += c.fanin_before;
        r.fanin_others += c.fanin_others;
        println!(
            "  fan-in lane {}: {} messages sent before the crash all delivered in sequence ({} of them drained after the fence); lane reset to epoch {}; other lanes delivered {} verified messages meanwhile",
            c.node - 1,
            c.fanin_before,
            c.fanin_drained,
            c.fanin_epoch,
            c.fanin_others
        );
        let n = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
        samples.reset(AFTER_RESTART.0);
        pingpong::run(&starter.ctl, n, Mode::Poll, 5, samples)?;
        samples
            .summary()
            .print(format_args!("  after restart, poll"));
        samples.reset(AFTER_RESTART.1);
        pingpong::run(&starter.ctl, n, Mode::Ipi, 2, samples)?;
        samples
            .summary()
            .print(format_args!("  after restart, IPI"));
        let t = bulk::transfer(&starter.ctl, n, bulk::MESSAGES)?;
        println!(
            "  after restart, bulk: {} x {} KiB verified in place, {} MB/s",
            bulk::MESSAGES,
            layout::POOL_BUFFER_SIZE / 1024,
            t.bytes_per_s() / 1_000_000
        );
        bulk_totals.add(t);
        r.bulk_after_restart += 1;
        fanin.round(nodes, FANIN_AFTER_RESTART, Mode::Ipi)?;
        r.fanin_rounds_after += 1;
        let n = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
        pingpong::set_mode(&starter.ctl, n, Mode::Ipi);
    }
    Ok(r)
}

/// Prints a summary line at the start of the line (no node prefix).
macro_rules! summary_line {
    ($($arg:tt)*) => {
        console::print_bare_line(format_args!($($arg)*))
    };
}

fn summary(
    boot: &Boot,
    nodes: &[nodes::Node],
    figures: &[bench::Figures],
    t: &Traffic,
    r: &Recovery,
) {
    let (bells, checksums, bulk, fan) = (&t.bells, t.checksums, &t.bulk, &t.fan);
    let ns = tsc::ns_from_cycles;
    let cfg = &boot.config;
    summary_line!(
        "kernels: kernel0 (apic {}) + {} secondary kernel(s) on their own CPUs, each in a 16 MiB partition under its own page tables (peer sections read-only, the rest unmapped); local APIC {:?}; TSC {} kHz (PIT-calibrated); {} image build(s) in the boot module; timeouts: dead {} ms, AP start {} ms, handshake {} ms",
        boot.kernel0_apic,
        nodes.len(),
        boot.mode,
        boot.hz / 1000,
        boot.images,
        cfg.dead_ms,
        cfg.ap_start_ms,
        cfg.handshake_ms
    );
    let builds = nodes.iter().fold((u64::MAX, 0), |(lo, hi), n| {
        (lo.min(n.build), hi.max(n.build))
    });
    let connects: u64 = nodes.iter().map(|n| n.connects).sum();
    let sh = &boot.shape;
    summary_line!(
        "handshake: core manifest + handshake: kernel0 wrote the region header and manifest ({} nodes = kernel0 + {} secondaries; {} SPSC rings, {} pools, {} MPSC fan-in channel; {} grants; {}-byte node sections, page-aligned: each secondary maps its own writable, kernel0's and the manifest read-only, other nodes' not at all); each secondary validated the manifest, booted its epoch in its own section, found its channels by name and connected both SPSC rings through mkipc::handshake (kernel0 offers requests, the node offers responses; message type, max size, ABI and layout checked; features = intersection): {} of {} nodes connected at boot within {} us of INIT, {} connects in all ({} ring handshakes); pools and fan-in lanes found through the manifest (lane = position of the node's grant); {} restart(s) reclaimed both rings and reconnected under new epochs {}..{}; negotiated features: {:#x}..{:#x} at boot (builds {}..{}), {:#x} after restarts ({} reconnect(s) gained bits, builds now {}..{}); liveness: mkipc::lifecycle Watchdog on every node's heartbeat",
        sh.nodes,
        nodes.len(),
        sh.spsc,
        sh.pools,
        sh.mpsc,
        sh.grants,
        sh.section_size,
        nodes.len(),
        nodes.len(),
        boot.boot_ready_us,
        connects,
        2 * connects,
        r.cycles,
        if r.cycles == 0 { 0 } else { r.epochs.0 },
        r.epochs.1,
        boot.boot_features.0,
        boot.boot_features.1,
        boot.boot_builds.0,
        boot.boot_builds.1,
        r.restart_features,
        r.features_gained,
        builds.0,
        builds.1
    );
    let (poll, ipi) = pingpong::verified();
    summary_line!(
        "traffic: {} ping round trips verified over the mkipc SPSC rings ({poll} polling, {ipi} with IPI doorbells), {checksums} checksum requests to newer builds verified; doorbells under mkipc's need-wakeup protocol (ring only a peer that announced its sleep): nodes -> kernel0 {} rung, {} suppressed on response rings, {} rung, {} suppressed on the fan-in channel; kernel0 took {} IPIs ({} merged by the APIC into one still pending, within what re-checks and concurrent fan-in rings explain, none spurious); kernel0 -> nodes {} rung, {} suppressed; kernel0 slept {} times on response rings ({} woken with the answer, {} re-checks found it before sleeping, {} spurious) and {} times on the fan-in channel ({} woken, {} re-checks found messages); bulk: {} zero-copy pool transfers of {} x {} KiB ({} messages, {} MiB) read in place with every checksum verified, {} bytes/s ({} MB/s aggregate, best transfer {} MB/s); MPSC fan-in: {} messages from {} producer lanes verified per producer (lane = sender, lane epoch, sequence without loss, duplicate or reordering, value), first round {} messages at {} msg/s polling, {} msg/s with kernel0 asleep between doorbells",
        poll + ipi,
        bells.to_kernel0_rung,
        bells.to_kernel0_suppressed,
        bells.fanin_rung,
        bells.fanin_suppressed,
        bells.taken,
        bells.rung_to_kernel0() - bells.taken,
        bells.to_nodes_rung,
        bells.to_nodes_suppressed,
        bells.sleeps,
        bells.woken,
        bells.rechecks_ready,
        bells.spurious,
        bells.fanin.sleeps,
        bells.fanin.woken,
        bells.fanin.rechecks_ready,
        bulk.transfers,
        bulk::MESSAGES,
        layout::POOL_BUFFER_SIZE / 1024,
        bulk.messages,
        bulk.bytes >> 20,
        bulk.bytes_per_s(),
        bulk.bytes_per_s() / 1_000_000,
        bulk.best_bps / 1_000_000,
        fan.verified,
        nodes.len(),
        fan.first_round,
        fan.rate,
        boot.fanin_ipi_rate
    );
    summary_line!(
        "latency: round trip kernel0 <-> node, p50/p99 in TSC cycles and ns, median of {} repetitions; `= Nx` is the p50 over the floor's",
        bench::REPS
    );
    summary_line!(
        "  node | floor (1 word each way)     | ring, polling                       | ring + IPI"
    );
    for (n, f) in nodes.iter().zip(figures) {
        let cell = |s: &stats::Summary, floor: Option<u64>| {
            let mut b = Cell::default();
            let _ = core::fmt::Write::write_fmt(
                &mut b,
                format_args!("{}/{} cyc {}/{} ns", s.p50, s.p99, ns(s.p50), ns(s.p99)),
            );
            if let Some(fl) = floor {
                let (w, t) = bench::ratio(s.p50, fl);
                let _ = core::fmt::Write::write_fmt(&mut b, format_args!(" = {w}.{t}x"));
            }
            b
        };
        summary_line!(
            "  {:>4} | {:<27} | {:<35} | {}",
            n.id,
            cell(&f.floor, None).as_str(),
            cell(&f.poll, Some(f.floor.p50)).as_str(),
            cell(&f.ipi, Some(f.floor.p50)).as_str()
        );
    }
    summary_line!(
        "recovery: {} crash/restart cycle(s) in the middle of traffic on {} node(s) ({} #PF from stray writes, {} #DF from stack overflow reported on the IST stack); death declared {}..{} us after the crash command (dead_ms={}); {} pings queued before the crashes answered; fenced with INIT (the watchdog's fence hook), both rings reclaimed through the core handshake, reloaded and reconnected within {} us, {} requests queued behind the crashes answered by the new epochs; other nodes answered {} pings while one was down; {} pool buffer loans of dead nodes reclaimed after the fence ({} held by kernel0, {} still queued and verified), pools re-created under the new epoch, {} bulk transfer(s) after restarts verified; fan-in: {} lane(s) of dead nodes fenced, drained ({} messages sent before the crashes delivered in sequence, {} of them after the fence) and reset into a new lane epoch, re-attached by the restarted nodes, {} fan-in round(s) over all lanes after restarts verified, other lanes delivered {} messages while a node was down",
        r.cycles,
        r.nodes_hit.count_ones(),
        r.page_faults,
        r.double_faults,
        r.detect_min_us,
        r.detect_max_us,
        cfg.dead_ms,
        r.answered_before,
        r.restart_max_us,
        r.behind_answered,
        r.others_answered,
        r.reclaimed_held + r.reclaimed_queued,
        r.reclaimed_held,
        r.reclaimed_queued,
        r.bulk_after_restart,
        fan.resets,
        r.fanin_before,
        fan.drained,
        r.fanin_rounds_after,
        r.fanin_others
    );
    let noisy = figures
        .iter()
        .take(nodes.len())
        .any(|f| tsc::ns_from_cycles(f.floor.p50) > NOISY_FLOOR_NS);
    if noisy {
        println!(
            "note: a floor p50 above {} us means the host descheduled the virtual CPUs; this run's figures are not meaningful",
            NOISY_FLOOR_NS / 1000
        );
    }
    if console::broken_locks() != 0 {
        println!(
            "note: {} console lines waited out the lock",
            console::broken_locks()
        );
    }
}

/// A small formatting buffer for one table cell.
struct Cell {
    buf: [u8; 64],
    len: usize,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Cell {
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl core::fmt::Write for Cell {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {info}");
    exit::exit(exit::PANIC)
}
