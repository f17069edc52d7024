//! The local APIC: xAPIC through its MMIO page, or x2APIC through MSRs when
//! CPUID offers it. Identification, EOI, IPIs (fixed, INIT, SIPI) and the
//! one-shot timer.
//!
//! The mode and register address are per image, not per CPU: every CPU that
//! runs one kernel image uses the same interface (CPUID answers the same on
//! all of them).

use super::cpu::{cpuid, pause, rdmsr, rdtsc, wrmsr};
use super::tsc;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

const MSR_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LO: u32 = 0x300;
const REG_ICR_HI: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CUR: u32 = 0x390;
const REG_TIMER_DIV: u32 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
const ICR_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;
const DM_INIT: u32 = 5 << 8;
const DM_STARTUP: u32 = 6 << 8;
/// Bound on delivery-status polls after an xAPIC ICR write.
const ICR_POLL_LIMIT: u32 = 1_000_000;

const MODE_NONE: u8 = 0;
const MODE_XAPIC: u8 = 1;
const MODE_X2APIC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(MODE_NONE);
static MMIO: AtomicU64 = AtomicU64::new(0);
static TIMER_TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);
static TIMER_VECTOR: AtomicU8 = AtomicU8::new(0);

/// Which programming interface is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Memory-mapped registers.
    XApic,
    /// MSR registers.
    X2Apic,
}

/// Errors from APIC operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicError {
    /// The xAPIC registers are not where the caller mapped them.
    BaseMismatch(u64),
    /// An IPI stayed pending past the poll bound.
    IpiStuck,
    /// The timer did not count during calibration.
    TimerDead,
    /// [`init`] (or, for the timer, [`calibrate_timer`]) has not run.
    NotInitialised,
    /// A vector below 32 (the CPU exceptions) was asked for.
    ReservedVector(u8),
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApicError::BaseMismatch(b) => write!(
                f,
                "the local APIC is at {b:#x}, not where its registers were mapped; map that page"
            ),
            ApicError::IpiStuck => write!(
                f,
                "an IPI stayed pending past the poll bound (is the destination APIC id right?)"
            ),
            ApicError::TimerDead => write!(f, "the APIC timer did not count during calibration"),
            ApicError::NotInitialised => {
                write!(
                    f,
                    "the local APIC (or its timer) is not initialised; call init first"
                )
            }
            ApicError::ReservedVector(v) => write!(
                f,
                "vector {v} is a CPU exception vector; use 32..=255 for interrupts"
            ),
        }
    }
}

impl core::error::Error for ApicError {}

/// True when CPUID offers x2APIC on this CPU.
pub fn has_x2apic() -> bool {
    cpuid(1, 0).ecx & (1 << 21) != 0
}

/// Enables this CPU's local APIC: x2APIC when CPUID offers it, xAPIC
/// otherwise. Masks LINT0 (the 8259 path) and the timer; spurious
/// interrupts arrive on `spurious_vector`.
///
/// # Safety
/// Ring 0 only. For xAPIC, `mmio_virt` must map the physical page
/// `mmio_phys` uncached and writable for the rest of the kernel's life.
pub unsafe fn init(mmio_phys: u64, mmio_virt: u64, spurious_vector: u8) -> Result<Mode, ApicError> {
    if spurious_vector < 32 {
        return Err(ApicError::ReservedVector(spurious_vector));
    }
    let x2 = has_x2apic();
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let base = unsafe { rdmsr(MSR_APIC_BASE) };
    let mode = if x2 {
        // SAFETY: CPUID reports x2APIC support, so setting EXTD is valid.
        unsafe { wrmsr(MSR_APIC_BASE, base | BASE_ENABLE | BASE_X2APIC) };
        MODE.store(MODE_X2APIC, Ordering::Relaxed);
        Mode::X2Apic
    } else {
        let phys = base & 0x000f_ffff_ffff_f000;
        if phys != mmio_phys {
            return Err(ApicError::BaseMismatch(phys));
        }
        // SAFETY: sets only the global enable bit of the existing base.
        unsafe { wrmsr(MSR_APIC_BASE, base | BASE_ENABLE) };
        MMIO.store(mmio_virt, Ordering::Relaxed);
        MODE.store(MODE_XAPIC, Ordering::Relaxed);
        Mode::XApic
    };
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_SVR, 0x100 | u32::from(spurious_vector));
    if mode == Mode::XApic {
        write(REG_ESR, 0);
    }
    Ok(mode)
}

fn write(reg: u32, v: u32) {
    match MODE.load(Ordering::Relaxed) {
        MODE_XAPIC => {
            let p = (MMIO.load(Ordering::Relaxed) + u64::from(reg)) as *mut u32;
            // SAFETY: `init`'s contract maps the register page at MMIO;
            // `reg` is an architectural register offset inside it.
            unsafe { p.write_volatile(v) };
        }
        MODE_X2APIC => {
            // SAFETY: x2APIC mode is enabled; 0x800 + reg/16 is the MSR of
            // an architectural register.
            unsafe { wrmsr(0x800 + (reg >> 4), u64::from(v)) };
        }
        _ => {}
    }
}

fn read(reg: u32) -> u32 {
    match MODE.load(Ordering::Relaxed) {
        MODE_XAPIC => {
            let p = (MMIO.load(Ordering::Relaxed) + u64::from(reg)) as *const u32;
            // SAFETY: as in `write`.
            unsafe { p.read_volatile() }
        }
        // SAFETY: as in `write`.
        MODE_X2APIC => unsafe { rdmsr(0x800 + (reg >> 4)) as u32 },
        _ => 0,
    }
}

/// The interface [`init`] chose, `None` before it ran.
pub fn mode() -> Option<Mode> {
    match MODE.load(Ordering::Relaxed) {
        MODE_XAPIC => Some(Mode::XApic),
        MODE_X2APIC => Some(Mode::X2Apic),
        _ => None,
    }
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    match MODE.load(Ordering::Relaxed) {
        MODE_X2APIC => read(REG_ID),
        _ => read(REG_ID) >> 24,
    }
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

fn send(dest: u32, low: u32) -> Result<(), ApicError> {
    match MODE.load(Ordering::Relaxed) {
        MODE_X2APIC => {
            let icr = (u64::from(dest) << 32) | u64::from(low);
            // SAFETY: x2APIC mode is enabled; MSR 0x830 is the ICR.
            unsafe { wrmsr(0x830, icr) };
            Ok(())
        }
        MODE_XAPIC => {
            write(REG_ICR_HI, dest << 24);
            write(REG_ICR_LO, low);
            for _ in 0..ICR_POLL_LIMIT {
                if read(REG_ICR_LO) & ICR_PENDING == 0 {
                    return Ok(());
                }
                pause();
            }
            Err(ApicError::IpiStuck)
        }
        _ => Err(ApicError::NotInitialised),
    }
}

/// Sends a fixed-vector IPI to the CPU with APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) -> Result<(), ApicError> {
    if vector < 32 {
        return Err(ApicError::ReservedVector(vector));
    }
    send(dest, ICR_ASSERT | u32::from(vector))
}

/// Sends INIT to `dest`: the CPU drops whatever it runs and waits for a
/// start-up IPI. This is how a partition manager fences a dead kernel; it
/// never touches this CPU's memory.
pub fn send_init(dest: u32) -> Result<(), ApicError> {
    send(dest, ICR_ASSERT | DM_INIT)
}

/// Sends a start-up IPI: `dest` starts in real mode at `page << 12`.
///
/// # Safety
/// `dest` must be in the wait-for-SIPI state (after INIT) and the page must
/// hold start-up code the caller prepared: whatever is there runs with full
/// access to memory.
pub unsafe fn send_sipi(dest: u32, page: u8) -> Result<(), ApicError> {
    send(dest, ICR_ASSERT | DM_STARTUP | u32::from(page))
}

/// Measures the timer rate (divide by 16) against the calibrated TSC (see
/// [`tsc`]); later one-shots fire on `vector`. Returns ticks per ms.
pub fn calibrate_timer(vector: u8) -> Result<u64, ApicError> {
    if vector < 32 {
        return Err(ApicError::ReservedVector(vector));
    }
    if mode().is_none() {
        return Err(ApicError::NotInitialised);
    }
    TIMER_VECTOR.store(vector, Ordering::Relaxed);
    write(REG_TIMER_DIV, 0x3);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(vector));
    // Scale by the TSC span between arming and reading, so a pause of this
    // CPU in between does not skew the rate.
    let t0 = rdtsc();
    write(REG_TIMER_INIT, u32::MAX);
    tsc::delay_us(10_000);
    let left = read(REG_TIMER_CUR);
    let elapsed_ns = tsc::ns_from_cycles(rdtsc() - t0).max(1);
    write(REG_TIMER_INIT, 0);
    let ticks = u128::from(u32::MAX - left);
    let per_ms = (ticks * 1_000_000 / u128::from(elapsed_ns)) as u64;
    if per_ms == 0 {
        return Err(ApicError::TimerDead);
    }
    TIMER_TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    Ok(per_ms)
}

/// Arms a one-shot timer interrupt `us` microseconds from now (needs
/// [`calibrate_timer`]).
pub fn arm_timer_us(us: u64) -> Result<(), ApicError> {
    let per_ms = TIMER_TICKS_PER_MS.load(Ordering::Relaxed);
    if per_ms == 0 {
        return Err(ApicError::NotInitialised);
    }
    let ticks = (us.saturating_mul(per_ms) / 1000).clamp(1, u64::from(u32::MAX));
    write(
        REG_LVT_TIMER,
        u32::from(TIMER_VECTOR.load(Ordering::Relaxed)),
    );
    write(REG_TIMER_INIT, ticks as u32);
    Ok(())
}

/// Cancels a pending one-shot timer.
pub fn stop_timer() {
    write(REG_TIMER_INIT, 0);
}
