//! The node's main loop: beat the heartbeat, answer kernel0's commands,
//! and wait for the next one by spinning (poll mode) or in `hlt` (IPI mode).

use bootparse::bootparams::BootParams;
use bootparse::layout::control::{self as c, ping_answer};
use core::sync::atomic::Ordering;
use platform::control::Control;
use platform::{cpu, idt, lapic, println, tsc, wait};

/// Heartbeat period.
const BEAT_US: u64 = 1_000;

/// Serves commands for ever.
pub fn serve(ctl: &Control, p: &BootParams) -> ! {
    let me = p.node_id;
    let cmd = ctl.node(me, c::CMD_SEQ);
    let beat = ctl.node(me, c::HEARTBEAT);
    let beat_cycles = tsc::cycles_from_us(BEAT_US);
    // Acquire pairs with kernel0's Release store of CMD_SEQ.
    let mut seen = cmd.load(Ordering::Acquire);
    let mut next_beat = 0u64;
    loop {
        let now = cpu::rdtsc();
        if now >= next_beat {
            beat.fetch_add(1, Ordering::Relaxed);
            ctl.node(me, c::WAKEUPS)
                .store(idt::ipi_count(), Ordering::Relaxed);
            next_beat = now + beat_cycles;
        }
        let seq = cmd.load(Ordering::Acquire);
        if seq != seen {
            seen = seq;
            handle(ctl, p, seq);
            continue;
        }
        match ctl.node(me, c::CMD_MODE).load(Ordering::Relaxed) {
            c::MODE_POLL => cpu::pause(),
            _ => {
                let until = next_beat.max(cpu::rdtsc());
                wait::until(until, || cmd.load(Ordering::Acquire) != seen);
            }
        }
    }
}

fn handle(ctl: &Control, p: &BootParams, seq: u64) {
    let me = p.node_id;
    let op = ctl.node(me, c::CMD_OP).load(Ordering::Relaxed);
    let arg = ctl.node(me, c::CMD_ARG).load(Ordering::Relaxed);
    match op {
        c::OP_PING => {
            ctl.node(me, c::RESP_VAL)
                .store(ping_answer(u64::from(me), arg), Ordering::Relaxed);
            // Release pairs with kernel0's Acquire load of RESP_SEQ.
            ctl.node(me, c::RESP_SEQ).store(seq, Ordering::Release);
            if ctl.node(me, c::CMD_MODE).load(Ordering::Relaxed) == c::MODE_IPI
                && let Err(e) = lapic::send_ipi(p.kernel0_apic_id, p.ipi_vector as u8)
            {
                println!("doorbell to kernel0 failed: {e:?}");
            }
        }
        c::OP_CRASH => stray_write(arg),
        _ => {
            println!("unknown command {op} (seq {seq}); ignored");
        }
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
