//! The IDT: exception stubs that report and stop, and the three local APIC
//! vectors (IPI doorbell, timer, spurious) that count and return.

use crate::cell::RacyCell;
use crate::{IPI_VECTOR, SPURIOUS_VECTOR, TIMER_VECTOR, cpu, doorbell, gdt, lapic, println};
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    off_lo: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    off_mid: u16,
    off_hi: u32,
    zero: u32,
}

const MISSING: Gate = Gate {
    off_lo: 0,
    selector: 0,
    ist: 0,
    attr: 0,
    off_mid: 0,
    off_hi: 0,
    zero: 0,
};

static IDT: RacyCell<[Gate; 256]> = RacyCell::new([MISSING; 256]);
static LOADED: AtomicBool = AtomicBool::new(false);
static TIMERS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static EXIT_ON_FATAL: AtomicBool = AtomicBool::new(false);
static FAULT_REPORT: AtomicUsize = AtomicUsize::new(0);

/// Registers saved by the exception stubs, lowest address first.
#[repr(C)]
pub struct ExceptionFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

unsafe extern "C" {
    static isr_exception_table: [u64; 32];
    fn isr_ipi();
    fn isr_timer();
    fn isr_spurious();
}

// Exceptions 8, 10-14, 17, 21, 29 and 30 push an error code; the others
// get a zero so that every frame has the same shape.
macro_rules! exception_stubs {
    ($($n:literal $err:literal),*) => {
        global_asm!(
            ".section .text.isr, \"ax\"",
            $(
                concat!("isr_exception_", $n, ":"),
                concat!(".if ", $err, " == 0"),
                "push 0",
                ".endif",
                concat!("push ", $n),
                "jmp isr_exception_common",
            )*
            "isr_exception_common:",
            "push rax", "push rbx", "push rcx", "push rdx", "push rsi",
            "push rdi", "push rbp", "push r8", "push r9", "push r10",
            "push r11", "push r12", "push r13", "push r14", "push r15",
            "cld",
            "mov rdi, rsp",
            "and rsp, -16",
            "call {handler}",
            "ud2",
            ".section .rodata.isr, \"a\"",
            ".balign 8",
            ".global isr_exception_table",
            "isr_exception_table:",
            $(concat!(".quad isr_exception_", $n),)*
            ".text",
            handler = sym exception_entry,
        );
    };
}

exception_stubs!(
    0 0, 1 0, 2 0, 3 0, 4 0, 5 0, 6 0, 7 0, 8 1, 9 0, 10 1, 11 1, 12 1, 13 1, 14 1, 15 0,
    16 0, 17 1, 18 0, 19 0, 20 0, 21 1, 22 0, 23 0, 24 0, 25 0, 26 0, 27 0, 28 0, 29 1,
    30 1, 31 0
);

// Interrupt stubs save the caller-saved registers (the Rust handler keeps
// the rest); nine pushes on top of the 40-byte frame keep rsp 16-aligned.
macro_rules! irq_stub {
    ($name:literal, $handler:ident) => {
        global_asm!(
            ".section .text.isr, \"ax\"",
            concat!(".global ", $name),
            concat!($name, ":"),
            "push rax", "push rcx", "push rdx", "push rsi", "push rdi",
            "push r8", "push r9", "push r10", "push r11",
            "cld",
            "call {handler}",
            "pop r11", "pop r10", "pop r9", "pop r8", "pop rdi",
            "pop rsi", "pop rdx", "pop rcx", "pop rax",
            "iretq",
            ".text",
            handler = sym $handler,
        );
    };
}

irq_stub!("isr_ipi", ipi_entry);
irq_stub!("isr_timer", timer_entry);
irq_stub!("isr_spurious", spurious_entry);

extern "C" fn ipi_entry() {
    doorbell::acknowledge();
}

extern "C" fn timer_entry() {
    TIMERS.fetch_add(1, Ordering::Relaxed);
    lapic::eoi();
}

extern "C" fn spurious_entry() {
    // Spurious interrupts take no EOI.
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}

fn gate(handler: u64, ist: u8) -> Gate {
    Gate {
        off_lo: handler as u16,
        selector: crate::gdt::CODE_SEL,
        ist,
        attr: 0x8e, // present, ring 0, 64-bit interrupt gate
        off_mid: (handler >> 16) as u16,
        off_hi: (handler >> 32) as u32,
        zero: 0,
    }
}

/// IST slot (1-based) of the exceptions that must not run on the stack
/// they interrupted: a double fault (the stack may have overflowed), NMI
/// and machine check (they can hit anywhere, even mid stack switch).
fn ist_of(vector: usize) -> u8 {
    match vector {
        2 => gdt::IST_NMI,
        8 => gdt::IST_DOUBLE_FAULT,
        18 => gdt::IST_MACHINE_CHECK,
        _ => 0,
    }
}

/// Fills and loads the IDT. Call once, with interrupts masked, after
/// [`crate::gdt::load`] (which loads the TSS holding the IST stacks).
pub fn load() {
    // SAFETY: the table is only written here, on one CPU, before interrupts
    // are enabled; the assembly tables are immutable.
    unsafe {
        let idt = &mut *IDT.get();
        let table = &*core::ptr::addr_of!(isr_exception_table);
        for (v, (slot, &stub)) in idt.iter_mut().zip(table.iter()).enumerate() {
            *slot = gate(stub, ist_of(v));
        }
        idt[usize::from(IPI_VECTOR)] = gate(isr_ipi as *const () as u64, 0);
        idt[usize::from(TIMER_VECTOR)] = gate(isr_timer as *const () as u64, 0);
        idt[usize::from(SPURIOUS_VECTOR)] = gate(isr_spurious as *const () as u64, 0);
    }
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: IDT.get() as u64,
    };
    // SAFETY: the IDT is a static filled above with valid gates.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
    LOADED.store(true, Ordering::Release);
}

/// True once [`load`] has run: the doorbell, timer and spurious vectors
/// are handled.
pub fn loaded() -> bool {
    LOADED.load(Ordering::Acquire)
}

/// Makes fatal exceptions end the QEMU run (kernel0) instead of halting the
/// CPU (the default, which a secondary wants so kernel0 can notice).
pub fn exit_on_fatal(yes: bool) {
    EXIT_ON_FATAL.store(yes, Ordering::Relaxed);
}

/// Publishes fatal exceptions as two words at `words`, for the node that
/// restarts this one: `1 << 63 | error_code << 16 | vector`, then the
/// faulting address (CR2).
///
/// # Safety
/// `words` must point to two 8-aligned `u64`s that stay mapped and are only
/// accessed atomically for the rest of the kernel's life.
pub unsafe fn report_faults_to(words: *mut u64) {
    FAULT_REPORT.store(words as usize, Ordering::Release);
}

/// Doorbell IPIs taken on this CPU.
pub fn ipi_count() -> u64 {
    doorbell::taken()
}

/// Timer interrupts taken on this CPU.
pub fn timer_count() -> u64 {
    TIMERS.load(Ordering::Relaxed)
}

fn name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        2 => "NMI",
        6 => "#UD invalid opcode",
        8 => "#DF double fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        18 => "#MC machine check",
        _ => "exception",
    }
}

extern "C" fn exception_entry(frame: *const ExceptionFrame) -> ! {
    // SAFETY: the common stub passes the frame it just pushed on this stack.
    let f = unsafe { &*frame };
    let cr2 = cpu::cr2();
    let report = FAULT_REPORT.load(Ordering::Acquire);
    if report != 0 {
        let words = report as *mut u64;
        // SAFETY: `report_faults_to`'s contract: two atomic words.
        unsafe {
            AtomicU64::from_ptr(words.add(1)).store(cr2, Ordering::Relaxed);
            // Release pairs with the reader's Acquire load of the vector.
            let report = 1 << 63 | (f.error & 0xffff) << 16 | (f.vector & 0xff);
            AtomicU64::from_ptr(words).store(report, Ordering::Release);
        }
    }
    println!(
        "FATAL {} (vector {}) error={:#x} rip={:#x} cr2={:#x} rsp={:#x} rflags={:#x}",
        name(f.vector),
        f.vector,
        f.error,
        f.rip,
        cr2,
        f.rsp,
        f.rflags
    );
    println!(
        "  rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x} cs={:#x} ss={:#x}",
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.cs, f.ss
    );
    let _ = (f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15);
    if EXIT_ON_FATAL.load(Ordering::Relaxed) {
        crate::exit::exit(crate::exit::EXCEPTION);
    }
    cpu::halt_forever()
}
