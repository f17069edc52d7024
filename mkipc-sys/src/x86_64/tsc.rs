//! Time from the TSC, calibrated against PIT channel 2.

use super::cpu::{pause, rdtsc};
use super::port::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};

/// Frequency assumed before calibration (only bounds early waits).
const FALLBACK_HZ: u64 = 3_000_000_000;
const PIT_HZ: u64 = 1_193_182;
/// Calibration window: 10 ms of PIT ticks.
const PIT_TICKS: u16 = 11_932;
/// Bound on status polls while waiting for the PIT (far above 10 ms worth).
const PIT_POLL_LIMIT: u32 = 50_000_000;

static HZ: AtomicU64 = AtomicU64::new(0);

/// Why calibration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrateError {
    /// The PIT output never rose (no PIT, or port 0x61 absent).
    PitTimeout,
    /// The measured frequency is outside 100 MHz..20 GHz.
    Implausible(u64),
}

/// The TSC frequency in Hz (a fallback guess before calibration).
pub fn hz() -> u64 {
    match HZ.load(Ordering::Relaxed) {
        0 => FALLBACK_HZ,
        h => h,
    }
}

/// Sets the TSC frequency (a kernel that did not calibrate itself gets it
/// from the one that did).
pub fn set_hz(hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
}

/// Measures the TSC frequency over five 10 ms PIT windows and records it.
/// Each window's TSC span can only be stretched (by the CPU being held up
/// around the port accesses, as a virtual CPU often is), never shortened, so
/// the shortest window is the best estimate.
///
/// # Safety
/// Ring 0 only. The caller owns PIT channel 2 and the gate port 0x61:
/// nothing else programs them while this runs (the speaker stays off).
pub unsafe fn calibrate() -> Result<u64, CalibrateError> {
    let mut best = u64::MAX;
    for _ in 0..5 {
        // SAFETY: the caller owns the PIT channel 2 ports.
        best = best.min(unsafe { pit_window() }?);
    }
    let hz = best * PIT_HZ / u64::from(PIT_TICKS);
    if !(100_000_000..=20_000_000_000).contains(&hz) {
        return Err(CalibrateError::Implausible(hz));
    }
    set_hz(hz);
    Ok(hz)
}

/// TSC cycles elapsed during one PIT channel 2 one-shot countdown.
///
/// # Safety
/// As for [`calibrate`].
unsafe fn pit_window() -> Result<u64, CalibrateError> {
    // SAFETY: ports 0x61/0x42/0x43 are the PIT channel 2 gate and counter,
    // which the caller owns; the speaker stays disabled (bit 1 clear).
    unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) & !0x01);
        outb(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, (PIT_TICKS & 0xff) as u8);
        outb(0x42, (PIT_TICKS >> 8) as u8);
    }
    // Read the TSC before the gate opens: any delay then lengthens the
    // measured span instead of shortening it.
    let start = rdtsc();
    // SAFETY: as above; gate high starts the countdown.
    unsafe { outb(0x61, (inb(0x61) & !0x02) | 0x01) };
    for _ in 0..PIT_POLL_LIMIT {
        // SAFETY: reading port 0x61 has no side effects.
        if unsafe { inb(0x61) } & 0x20 != 0 {
            return Ok(rdtsc() - start);
        }
    }
    Err(CalibrateError::PitTimeout)
}

/// Cycles in `us` microseconds.
pub fn cycles_from_us(us: u64) -> u64 {
    ((u128::from(us) * u128::from(hz())) / 1_000_000) as u64
}

/// Nanoseconds in `cycles` TSC cycles.
pub fn ns_from_cycles(cycles: u64) -> u64 {
    ((u128::from(cycles) * 1_000_000_000) / u128::from(hz())) as u64
}

/// A TSC value `us` microseconds from now.
pub fn deadline_after_us(us: u64) -> u64 {
    rdtsc().saturating_add(cycles_from_us(us))
}

/// True once the TSC has reached `deadline`.
pub fn passed(deadline: u64) -> bool {
    rdtsc() >= deadline
}

/// Busy-waits for `us` microseconds.
pub fn delay_us(us: u64) {
    let deadline = deadline_after_us(us);
    while !passed(deadline) {
        pause();
    }
}
