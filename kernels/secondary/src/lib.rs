//! A secondary kernel: one per CPU besides kernel0's. Entered in long mode
//! from kernel0's trampoline on entry page tables kernel0 built; it then
//! validates the region manifest kernel0 wrote, boots its epoch in its own
//! node section, builds its own tables mapping only its partition, the
//! shared pages granted to it and the local APIC page (so any other access
//! faults), connects its rings through the core handshake and serves
//! kernel0's requests, beating its heartbeat.
//!
//! The code is a library; each binary in `src/bin` is one build of the
//! image ([`image!`] gives it its build number and feature bits), so kernel0
//! can restart a node with a newer build than it first ran.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

mod bulk;
mod entry;
mod memory;
mod serve;

use bootparse::bootparams::{self, BootParams};
use bootparse::layout::control as c;
use core::sync::atomic::Ordering;
use platform::control::Control;
use platform::{console, cpu, gdt, idt, lapic, println, tsc};

/// What one build of the image says about itself in its hello.
#[derive(Debug, Clone, Copy)]
pub struct Image {
    /// Build number: higher is newer.
    pub build: u64,
    /// `bootparse::wire::FEATURE_*` bits this build supports.
    pub features: u64,
}

/// Defines the image's main function for a binary: `image!(build = N,
/// features = BITS)`. `entry.rs` calls it with the parameter block address.
#[macro_export]
macro_rules! image {
    (build = $build:expr, features = $features:expr) => {
        /// Called by the entry code with the parameter block address.
        #[unsafe(no_mangle)]
        extern "C" fn secondary_image_main(params_virt: u64) -> ! {
            $crate::run(
                params_virt,
                $crate::Image {
                    build: $build,
                    features: $features,
                },
            )
        }
    };
}

/// The node's life: entered from `entry.rs` (through the binary's
/// [`image!`] main) with the virtual address of the parameter block.
pub fn run(params_virt: u64, image: Image) -> ! {
    let mut raw = [0u8; bootparams::SIZE];
    for (i, b) in raw.iter_mut().enumerate() {
        // SAFETY: kernel0 maps the parameter block at this address in the
        // entry tables (start of our partition) and no longer writes it.
        *b = unsafe { ((params_virt + i as u64) as *const u8).read_volatile() };
    }
    let params = match BootParams::decode(&raw) {
        Ok(p) => p,
        Err(e) => {
            console::init(99);
            println!("boot parameters refused: {e:?}; halting");
            cpu::halt_forever()
        }
    };
    console::init(params.node_id);
    gdt::load();
    idt::load();
    // SAFETY: the entry tables map the shared region at shared_virt; our own
    // tables map the pages used through this handle (console lock, our
    // command and status pages) at the same addresses for the rest of this
    // kernel's life. Control only accesses it atomically.
    let ctl = unsafe { Control::new(params.shared_virt as *mut u8) };
    console::attach(&ctl);
    tsc::set_hz(params.tsc_hz);
    // Open the manifest while the entry tables still map the whole shared
    // region: the channel layouts it gives decide which shared pages we
    // keep.
    let opened = match serve::open(&params, ctl) {
        Ok(o) => o,
        Err(why) => {
            println!("cannot use the mkipc region: {why}; halting");
            cpu::halt_forever()
        }
    };
    let grants = memory::grants(&params, &opened.shape);
    if let Err(e) = memory::switch_to_own_tables(&params, &grants) {
        println!("own page tables failed: {e:?}; halting");
        cpu::halt_forever()
    }
    // SAFETY: the fault words are two words of our status page, mapped
    // writable for good and accessed atomically by the handler.
    unsafe {
        idt::report_faults_to(ctl.node(params.node_id, c::FAULT_VECTOR).as_ptr());
    }
    // SAFETY: memory.rs maps the local APIC page uncached at lapic_phys.
    let apic = unsafe {
        lapic::init(
            params.lapic_phys,
            params.lapic_phys,
            platform::SPURIOUS_VECTOR,
        )
    };
    let timer = apic.and_then(|_| lapic::calibrate_timer(platform::TIMER_VECTOR));
    let (mode, per_ms) = match (apic, timer) {
        (Ok(m), Ok(t)) => (m, t),
        (a, t) => {
            println!("local APIC set-up failed: {a:?} {t:?}; halting");
            cpu::halt_forever()
        }
    };
    let id = lapic::id();
    if id != params.apic_id {
        println!(
            "running on APIC id {id}, expected {}; halting",
            params.apic_id
        );
        cpu::halt_forever()
    }
    let epoch = opened.heart.node.epoch();
    let (req, resp, _) = bootparse::layout::names::channels(params.node_id).unwrap_or(("", "", ""));
    // The handshake runs on our own tables: it reads only the manifest,
    // kernel0's section and the rings, and writes only our own section.
    let (link, req_features, resp_features) = match serve::connect(&params, opened, &image) {
        Ok(l) => l,
        Err(why) => {
            println!("handshake failed: {why}; halting");
            cpu::halt_forever()
        }
    };
    let pages = |w: bool| -> u64 {
        grants
            .iter()
            .filter(|g| g.writable == w)
            .map(|g| g.len / 0x1000)
            .sum()
    };
    println!(
        "up: build {} features {:#x}, epoch {epoch} booted in its manifest section; `{req}` and `{resp}` connected through the handshake, features agreed {req_features:#x}/{resp_features:#x}; apic id {id} ({mode:?}, timer {per_ms}/ms), partition phys {:#x} at virt {:#x}, shared phys {:#x} at virt {:#x}: {} pages writable, {} read-only, rest unmapped",
        image.build,
        image.features,
        params.partition_phys,
        params.partition_virt,
        params.shared_phys,
        params.shared_virt,
        pages(true),
        pages(false)
    );
    // The hello: which build this is, what it supports, where its stack
    // guard is, and the epoch it was started under.
    let me = params.node_id;
    ctl.node(me, c::BUILD).store(image.build, Ordering::Relaxed);
    ctl.node(me, c::FEATURES)
        .store(image.features, Ordering::Relaxed);
    ctl.node(me, c::STACK_GUARD)
        .store(entry::stack_guard(), Ordering::Relaxed);
    ctl.node(me, c::EPOCH).store(epoch, Ordering::Relaxed);
    // Release pairs with kernel0's Acquire load of STATE.
    ctl.node(params.node_id, c::STATE)
        .store(c::STATE_READY, Ordering::Release);
    serve::serve(&ctl, &params, &image, link)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {info}");
    cpu::halt_forever()
}
