//! kernel0: the partition manager. Boots through PVH on the bootstrap CPU,
//! discovers the machine, carves partitions, loads the secondary image into
//! each secondary's partition, starts one secondary per remaining CPU, and
//! drives the checks: round trips over the mkipc rings against the raw
//! floor (polling, then IPIs), then crash, detection, fencing and restart of
//! a node. Ends the QEMU run through isa-debug-exit:
//! `platform::exit::SUCCESS` only when every check passed.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod bench;
mod boot;
mod error;
mod floor;
mod machine;
mod nodes;
mod physmem;
mod pingpong;
mod recovery;
mod stats;
mod trampoline;

use bootparse::elf;
use bootparse::layout;
use core::sync::atomic::Ordering;
use error::Error;
use mkipc::Region;
use nodes::Starter;
use pingpong::Mode;
use platform::cell::RacyCell;
use platform::control::Control;
use platform::{console, exit, gdt, idt, lapic, pic, println, tsc};
use stats::Samples;

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
    let image = unsafe { physmem::ram_slice(m.module.paddr, m.module.size) };
    let plan = elf::plan(image, layout::image_window())?;
    println!(
        "secondary image: entry {:#x}, {} segment(s)",
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
    mkipc::header::write_header(&region, 1).map_err(Error::Region)?;
    println!(
        "mkipc region {ring_base:#x}..{:#x}: header written; per node a request and a response SPSC ring of {} x {}-byte slots",
        ring_base + layout::RING_REGION_SIZE,
        layout::RING_SLOTS,
        layout::RING_SLOT_SIZE
    );
    let starter = Starter {
        image,
        plan,
        ctl,
        region,
        kernel0_apic: me,
    };

    for n in nodes.iter_mut() {
        let s = starter.start(n)?;
        println!(
            "node {} (apic {}) partition {:#x}..{:#x}: long mode after {} us, ready after {} us",
            n.id,
            n.apic_id,
            n.partition.base,
            n.partition.base + n.partition.size,
            s.ack_us,
            s.ready_us
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
    let taken = pingpong::check_ipis_received()?;
    println!("IPI accounting: kernel0 took {taken} doorbell IPIs, one per IPI-mode answer");
    for n in nodes.iter() {
        let w = ctl
            .node(n.id, layout::control::WAKEUPS)
            .load(Ordering::Relaxed);
        println!(
            "node {} reports {w} doorbell IPIs taken (as of its last heartbeat)",
            n.id
        );
    }
    crash_cycles(&starter, nodes, samples)?;
    let taken = pingpong::check_ipis_received()?;
    summary(nodes, &figures, hz, taken);
    Ok(())
}

/// One crash/restart cycle of node 1 per kind of stray write, each followed
/// by verified traffic with the restarted node.
fn crash_cycles(
    starter: &Starter,
    nodes: &mut [nodes::Node],
    samples: &mut Samples,
) -> Result<(), Error> {
    let strays = [
        recovery::Stray::Kernel0Image,
        recovery::Stray::RequestRingProducer,
        recovery::Stray::OtherNodeStatus,
    ];
    for (k, kind) in strays.into_iter().enumerate() {
        let c = recovery::cycle(starter, nodes, 0, kind)?;
        println!(
            "crash cycle {}: node 1 told to write {kind:?}: #PF at {:#x} error {:#x}, memory unchanged; heartbeat stalled at {}, declared dead after {} us; others answered {} pings meanwhile; fenced (INIT), reloaded, epoch {} ready after {} us",
            k + 1,
            c.fault_addr,
            c.fault_error,
            c.last_beat,
            c.detect_us,
            c.others_answered,
            c.epoch,
            c.restart_us
        );
        let n = nodes.get_mut(0).ok_or(Error::NoSecondary)?;
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
    }
    Ok(())
}

fn summary(nodes: &[nodes::Node], figures: &[bench::Figures], hz: u64, ipis: u64) {
    println!(
        "SUMMARY: {} secondary node(s), TSC {} kHz, 3 crash/restart cycles, {ipis} IPIs accounted",
        nodes.len(),
        hz / 1000
    );
    for (n, f) in nodes.iter().zip(figures) {
        let ns = tsc::ns_from_cycles;
        let (pw, pt) = bench::ratio(f.poll.p50, f.floor.p50);
        let (iw, it) = bench::ratio(f.ipi.p50, f.floor.p50);
        println!(
            "SUMMARY node {}: p50 (p99) floor {} ({}) ns | ring poll {} ({}) ns = {pw}.{pt}x floor | ring+IPI {} ({}) ns = {iw}.{it}x floor | epoch {}",
            n.id,
            ns(f.floor.p50),
            ns(f.floor.p99),
            ns(f.poll.p50),
            ns(f.poll.p99),
            ns(f.ipi.p50),
            ns(f.ipi.p99),
            n.epoch
        );
    }
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {info}");
    exit::exit(exit::PANIC)
}
