//! CPU instructions: TSC, CPUID, MSRs, control registers, interrupts, halt.
//! Ring 0 only, except [`rdtsc`], [`cpuid`] and [`pause`].

use core::arch::asm;

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: rdtsc only reads the counter (CR4.TSD is clear in ring 0).
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The four registers CPUID returns.
#[derive(Debug, Clone, Copy)]
pub struct Cpuid {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// Executes CPUID for `leaf` / `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    // CPUID is available on every x86_64 CPU and has no side effects.
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    Cpuid {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (otherwise #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: the caller guarantees the MSR exists.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it; MSRs change how
/// the CPU behaves.
pub unsafe fn wrmsr(msr: u32, v: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Reads CR2 (the faulting address of the last page fault).
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects in ring 0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR3 (the physical address of the top-level page table).
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects in ring 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3.
///
/// # Safety
/// `pml4_phys` must be a valid top-level table that maps the currently
/// executing code, the stack and everything the caller will touch next.
pub unsafe fn write_cr3(pml4_phys: u64) {
    // SAFETY: the caller guarantees the new tables map all live memory.
    unsafe { asm!("mov cr3, {}", in(reg) pml4_phys, options(nostack, preserves_flags)) };
}

/// Disables maskable interrupts.
#[inline(always)]
pub fn cli() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Enables interrupts and halts until one arrives, atomically: the one
/// instruction `sti` shadow covers `hlt`, so an interrupt that became
/// pending while interrupts were masked still wakes this `hlt`.
/// Interrupts stay enabled on return.
///
/// # Safety
/// An IDT must be loaded whose gates handle every vector that can arrive
/// (and save every register they use).
#[inline(always)]
pub unsafe fn sti_hlt() {
    // SAFETY: the caller guarantees a loaded IDT covering every vector.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

/// True when maskable interrupts are enabled (RFLAGS.IF).
#[inline(always)]
pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: pushfq/pop only reads RFLAGS through the stack.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags & (1 << 9) != 0
}

/// Spin-wait hint.
#[inline(always)]
pub fn pause() {
    core::hint::spin_loop();
}

/// Halts this CPU for good with interrupts masked (NMI/INIT still reach it).
pub fn halt_forever() -> ! {
    loop {
        cli();
        // SAFETY: hlt with interrupts masked just stops the CPU.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}
