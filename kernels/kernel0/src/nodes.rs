//! Secondary nodes: loading the image into a partition, writing the boot
//! parameters and entry page tables, starting the CPU with INIT-SIPI-SIPI,
//! and fencing it again with INIT.

use crate::error::Error;
use crate::physmem::ram_slice_mut;
use crate::trampoline::{self, Launch};
use bootparse::acpi::Madt;
use bootparse::bootparams::{self, BootParams};
use bootparse::bundle::MAX_IMAGES;
use bootparse::cmdline::Config;
use bootparse::elf::{self, LoadPlan};
use bootparse::layout::{self, Range, control as c};
use bootparse::wire::KNOWN_FEATURES;
use core::sync::atomic::Ordering;
use mkipc::doorbell::{BlockingConsumer, NotifyStats, NotifyingProducer, SpinPolicy, WaitStats};
use mkipc::pool::{PoolGeometry, PoolLayout, PoolReceiver};
use mkipc::spsc::{Geometry, RingLayout};
use mkipc::{MessageType, Region};
use platform::cell::RacyCell;
use platform::control::Control;
use platform::doorbell::IpiDoorbell;
use platform::doorbell::IpiWaiter;
use platform::paging::{Builder, NO_CACHE, WRITABLE, WRITE_THROUGH};
use platform::{lapic, println, tsc, wait};

/// One secondary kernel as kernel0 tracks it.
pub struct Node {
    /// Node id (1-based).
    pub id: u32,
    /// Local APIC id of its CPU.
    pub apic_id: u32,
    /// Its physical partition.
    pub partition: Range,
    /// Boot epoch: 1 on first start, +1 per restart.
    pub epoch: u64,
    /// Last request sequence number kernel0 issued.
    pub seq: u64,
    /// Kernel0's ends of the node's rings, once started.
    pub link: Option<Link>,
    /// Kernel0's (receiving) end of the node's bulk pool, once started.
    pub pool: Option<PoolReceiver>,
    /// The node's doorbell, once started.
    pub doorbell: Option<IpiDoorbell>,
    /// Index of the image (in the boot module) it runs.
    pub image: usize,
    /// Build number from its last hello (0 before the first).
    pub build: u64,
    /// Feature bits from its last hello.
    pub features: u64,
    /// Virtual address of its stack guard page, from its last hello.
    pub stack_guard: u64,
    /// Doorbells rung / suppressed towards kernel0 by its earlier epochs.
    pub bells_past: (u64, u64),
    /// Kernel0's notifications to the node over earlier links (rings
    /// re-created at restarts).
    pub sent_past: NotifyStats,
    /// Kernel0's waits on the node's earlier response rings.
    pub waits_past: WaitStats,
}

/// Kernel0's ends of one node's ring pair, with mkipc's need-wakeup
/// protocol: kernel0 rings the node only when the node announced a sleep
/// on its request ring, and announces its own sleeps on the response ring.
pub struct Link {
    /// Producer of the request ring, ringing the node's doorbell.
    pub tx: NotifyingProducer<IpiDoorbell>,
    /// Consumer of the response ring, sleeping in the IPI waiter.
    pub rx: BlockingConsumer<IpiWaiter>,
    /// Layout of the request ring.
    pub request: RingLayout,
}

/// Most secondaries (node ids 1..MAX_NODES).
pub const MAX_SECONDARIES: usize = layout::MAX_NODES - 1;

static NODES: RacyCell<[Node; MAX_SECONDARIES]> = RacyCell::new(
    [const {
        Node {
            id: 0,
            apic_id: 0,
            partition: Range { base: 0, size: 0 },
            epoch: 0,
            seq: 0,
            link: None,
            pool: None,
            doorbell: None,
            image: 0,
            build: 0,
            features: 0,
            stack_guard: 0,
            bells_past: (0, 0),
            sent_past: NotifyStats {
                rung: 0,
                suppressed: 0,
            },
            waits_past: WaitStats {
                spin_hits: 0,
                spins: 0,
                rechecks_ready: 0,
                sleeps: 0,
                woken: 0,
                spurious: 0,
                timeouts: 0,
            },
        }
    }; MAX_SECONDARIES],
);

/// Assigns node ids 1, 2, ... and partitions to the enabled CPUs of the
/// MADT other than kernel0's own, in table order.
pub fn claim(madt: &Madt, kernel0_apic: u32) -> Result<&'static mut [Node], Error> {
    // SAFETY: called once, on the only CPU kernel0 runs on; the returned
    // borrow is the only reference to the table.
    let all = unsafe { &mut *NODES.get() };
    let mut count = 0;
    for cpu in madt
        .cpus()
        .iter()
        .filter(|c| c.enabled && c.apic_id != kernel0_apic)
    {
        let Some(slot) = all.get_mut(count) else {
            platform::println!(
                "ignoring CPU with APIC id {} (no partition left)",
                cpu.apic_id
            );
            continue;
        };
        let id = count as u32 + 1;
        slot.id = id;
        slot.apic_id = cpu.apic_id;
        slot.partition = layout::partition(id).ok_or(Error::Layout("partition"))?;
        count += 1;
    }
    if count == 0 {
        return Err(Error::NoSecondary);
    }
    Ok(&mut all[..count])
}

/// One build of the secondary image, validated.
#[derive(Clone, Copy)]
pub struct LoadableImage<'a> {
    /// The ELF bytes.
    pub bytes: &'a [u8],
    /// Its validated load plan.
    pub plan: LoadPlan,
}

/// What kernel0 needs to (re)start any node.
pub struct Starter<'a> {
    /// The builds of the secondary image in the boot module, oldest first
    /// (`count` of them).
    pub images: [Option<LoadableImage<'a>>; MAX_IMAGES],
    /// Settings from the command line.
    pub config: Config,
    /// The control page.
    pub ctl: Control,
    /// The mkipc region (rings), after the control page.
    pub region: Region,
    /// Kernel0's APIC id.
    pub kernel0_apic: u32,
}

/// Timings and hello of one start.
pub struct Started {
    /// Microseconds from INIT to the long-mode ack.
    pub ack_us: u64,
    /// Microseconds from INIT to the node's ready state.
    pub ready_us: u64,
    /// Feature bits it gained compared to the previous build.
    pub new_features: u64,
}

impl Starter<'_> {
    /// Index of the newest image in the boot module.
    pub fn newest(&self) -> usize {
        self.images.iter().rposition(Option::is_some).unwrap_or(0)
    }

    /// Loads image `which` and starts `node` under a new epoch. Its CPU
    /// must be in the wait-for-SIPI state: never started, or fenced with
    /// [`fence`]. Checks the node's hello (see [`Self::accept_hello`]).
    pub fn start(&self, node: &mut Node, which: usize) -> Result<Started, Error> {
        let image = self
            .images
            .get(which)
            .copied()
            .flatten()
            .ok_or(Error::Layout("no such image in the boot module"))?;
        node.image = which;
        if node.epoch != 0 {
            let (rung, suppressed) = bells_of(&self.ctl, node.id);
            node.bells_past.0 += rung;
            node.bells_past.1 += suppressed;
        }
        node.epoch += 1;
        node.seq = 0;
        self.reset_control(node.id);
        node.doorbell = Some(IpiDoorbell::new(node.apic_id, platform::IPI_VECTOR)?);
        node.link = Some(self.fresh_rings(node.id, node.apic_id)?);
        node.pool = Some(self.fresh_pool(node.id)?);
        let part = node.partition;
        // SAFETY: the partition is RAM below 4 GiB (checked by
        // `check_layout`) and its CPU is halted in wait-for-SIPI, so nothing
        // else touches it until the SIPI below.
        let mem = unsafe { ram_slice_mut(part.base, part.size) };
        mem.fill(0);
        let image_dest = mem
            .get_mut(layout::SEC_IMAGE_OFFSET as usize..)
            .ok_or(Error::Layout("partition smaller than image offset"))?;
        elf::load(image.bytes, &image.plan, image_dest)?;
        let params = BootParams {
            node_id: node.id,
            apic_id: node.apic_id,
            kernel0_apic_id: self.kernel0_apic,
            ipi_vector: u32::from(platform::IPI_VECTOR),
            epoch: node.epoch,
            partition_phys: part.base,
            partition_virt: layout::SEC_PART_VIRT,
            partition_size: part.size,
            shared_phys: layout::SHARED_PHYS,
            shared_virt: layout::SEC_SHARED_VIRT,
            shared_size: layout::SHARED_SIZE,
            lapic_phys: layout::LAPIC_PHYS,
            tsc_hz: tsc::hz(),
        }
        .encode();
        let p = layout::SEC_PARAMS_OFFSET as usize;
        mem.get_mut(p..p + bootparams::SIZE)
            .ok_or(Error::Layout("parameter block outside partition"))?
            .copy_from_slice(&params);
        let cr3 = build_entry_tables(part)?;
        // SAFETY: the trampoline page is identity-mapped RAM owned by
        // kernel0 (checked by `check_layout`); nodes start one at a time,
        // so no AP runs from it now.
        unsafe {
            trampoline::install(&Launch {
                cr3,
                entry: image.plan.entry,
                arg: layout::SEC_PART_VIRT + layout::SEC_PARAMS_OFFSET,
            })
        };
        let (ack_us, ready_us) = self.init_sipi_sipi(node)?;
        let new_features = self.accept_hello(node)?;
        Ok(Started {
            ack_us,
            ready_us,
            new_features,
        })
    }

    /// Reads the hello a ready node wrote (build, features, stack guard)
    /// and decides whether to accept it: no unknown feature bits, and on a
    /// restart no older build and no lost feature. Returns the features
    /// gained.
    fn accept_hello(&self, node: &mut Node) -> Result<u64, Error> {
        let word = |f| self.ctl.node(node.id, f).load(Ordering::Relaxed);
        let (build, features, guard) = (word(c::BUILD), word(c::FEATURES), word(c::STACK_GUARD));
        let (old_build, old_features) = (node.build, node.features);
        if build == 0 || features & !KNOWN_FEATURES != 0 {
            return Err(Error::Hello(node.id, build, features));
        }
        if build < old_build || features & old_features != old_features {
            return Err(Error::Downgrade(node.id, old_build, build));
        }
        let part = layout::SEC_PART_VIRT..layout::SEC_PART_VIRT + layout::PARTITION_SIZE;
        if !part.contains(&guard) || !guard.is_multiple_of(0x1000) {
            return Err(Error::Hello(node.id, build, features));
        }
        node.build = build;
        node.features = features;
        node.stack_guard = guard;
        if old_build != 0 && build > old_build {
            println!(
                "node {}: hello from a newer image: build {build} (was {old_build}), features {features:#x} (new {:#x}); accepted",
                node.id,
                features & !old_features
            );
        }
        Ok(features & !old_features)
    }

    /// Clears the node's control lines; the node is down, so kernel0 may
    /// write its lines too.
    fn reset_control(&self, id: u32) {
        for f in [
            c::HEARTBEAT,
            c::EPOCH,
            c::WAKEUPS,
            c::FAULT_VECTOR,
            c::FAULT_ADDR,
            c::BUILD,
            c::FEATURES,
            c::STACK_GUARD,
            c::RUNG,
            c::SUPPRESSED,
        ] {
            self.ctl.node(id, f).store(0, Ordering::Relaxed);
        }
        self.ctl
            .node(id, c::MODE)
            .store(c::MODE_IPI, Ordering::Relaxed);
        // Release: the node's first Acquire read of its lines sees zeros.
        self.ctl
            .node(id, c::STATE)
            .store(c::STATE_DOWN, Ordering::Release);
    }

    /// Formats the node's request and response rings afresh (anything a
    /// dead node left in them is discarded) and attaches kernel0's ends.
    fn fresh_rings(&self, id: u32, apic_id: u32) -> Result<Link, Error> {
        let (req, resp) = layout::ring_offsets(id).ok_or(Error::Layout("ring offsets"))?;
        let (req, resp) = (req as usize, resp as usize);
        let geometry = Geometry::new(layout::RING_SLOTS, layout::RING_SLOT_SIZE);
        let fits = geometry
            .ring_size()
            .is_ok_and(|s| s as u64 <= layout::RING_STRIDE);
        if !fits {
            return Err(Error::Layout("ring larger than its stride"));
        }
        let ring = |e| Error::Ring(id, e);
        let request = RingLayout::create(&self.region, req, geometry).map_err(ring)?;
        RingLayout::create(&self.region, resp, geometry).map_err(ring)?;
        let bell = IpiDoorbell::new(apic_id, platform::IPI_VECTOR)?;
        let waiter = wait::waiter().ok_or(Error::Layout("IDT not loaded"))?;
        // No spinning before a sleep: in IPI mode every wait announces a
        // sleep at once, so the round trips measure the doorbell path.
        let no_spin = SpinPolicy::sleep_at_once();
        Ok(Link {
            tx: NotifyingProducer::attach(self.region.clone(), req, bell).map_err(ring)?,
            rx: BlockingConsumer::attach(self.region.clone(), resp, waiter, no_spin)
                .map_err(ring)?,
            request,
        })
    }

    /// Formats the node's bulk pool afresh under the new epoch (buffers a
    /// dead node lent are discarded with it) and attaches kernel0's
    /// receiving end.
    fn fresh_pool(&self, id: u32) -> Result<PoolReceiver, Error> {
        let at = layout::pool_offset(id).ok_or(Error::Layout("pool offset"))? as usize;
        let geometry = PoolGeometry::new(layout::POOL_BUFFERS, layout::POOL_BUFFER_SIZE);
        let fits = geometry
            .pool_size()
            .is_ok_and(|s| s as u64 <= layout::POOL_STRIDE);
        if !fits {
            return Err(Error::Layout("bulk pool larger than its stride"));
        }
        let kind = MessageType::bytes(layout::POOL_BUFFER_SIZE);
        let pool = |e| Error::Pool(id, e);
        PoolLayout::create(&self.region, at, geometry, kind).map_err(pool)?;
        PoolReceiver::attach(self.region.clone(), at).map_err(pool)
    }

    /// Returns the microseconds from INIT to the ack and to ready.
    fn init_sipi_sipi(&self, node: &Node) -> Result<(u64, u64), Error> {
        let t0 = platform::cpu::rdtsc();
        let page = (layout::TRAMPOLINE_PHYS >> 12) as u8;
        lapic::send_init(node.apic_id)?;
        tsc::delay_us(10_000);
        // SAFETY: the CPU was just put into wait-for-SIPI by INIT and the
        // trampoline page holds the start-up code `start` installed.
        unsafe { lapic::send_sipi(node.apic_id, page)? };
        tsc::delay_us(200);
        if trampoline::acks() == 0 {
            // SAFETY: as above; a second SIPI is ignored by a started CPU.
            unsafe { lapic::send_sipi(node.apic_id, page)? };
        }
        let ack_timeout_us = self.config.ap_start_ms * 1000;
        let acked = wait::until(tsc::deadline_after_us(ack_timeout_us), || {
            trampoline::acks() != 0
        });
        if !acked {
            return Err(Error::NoAck(node.id));
        }
        let ack_us = tsc::ns_from_cycles(platform::cpu::rdtsc() - t0) / 1000;
        let handshake_us = self.config.handshake_ms * 1000;
        let ready = wait::until(tsc::deadline_after_us(handshake_us), || {
            // Acquire pairs with the node's Release store of STATE_READY.
            self.ctl.node(node.id, c::STATE).load(Ordering::Acquire) == c::STATE_READY
                && self.ctl.node(node.id, c::EPOCH).load(Ordering::Relaxed) == node.epoch
        });
        if !ready {
            return Err(Error::NotReady(node.id));
        }
        let ready_us = tsc::ns_from_cycles(platform::cpu::rdtsc() - t0) / 1000;
        Ok((ack_us, ready_us))
    }
}

/// Doorbells node `id` reports it rang to kernel0 and suppressed, in its
/// current epoch.
pub fn bells_of(ctl: &Control, id: u32) -> (u64, u64) {
    (
        ctl.node(id, c::RUNG).load(Ordering::Relaxed),
        ctl.node(id, c::SUPPRESSED).load(Ordering::Relaxed),
    )
}

/// The tables an AP runs on from the trampoline until it builds its own:
/// the trampoline page (identity), its partition, the shared region and the
/// local APIC, at the addresses the secondary's own tables will use too.
fn build_entry_tables(part: Range) -> Result<u32, Error> {
    let pool = part.base + layout::SEC_BOOT_TABLES_OFFSET;
    // SAFETY: the pool lies in the (zeroed, fenced) partition, which is
    // identity-mapped in kernel0 and owned by it until the SIPI.
    let mut b = unsafe { Builder::new(pool, pool, layout::SEC_BOOT_TABLES_SIZE)? };
    let tramp = layout::TRAMPOLINE_PHYS;
    b.map(tramp, tramp, 0x1000, WRITABLE)?;
    b.map(layout::SEC_PART_VIRT, part.base, part.size, WRITABLE)?;
    b.map(
        layout::SEC_SHARED_VIRT,
        layout::SHARED_PHYS,
        layout::SHARED_SIZE,
        WRITABLE,
    )?;
    b.map(
        layout::LAPIC_PHYS,
        layout::LAPIC_PHYS,
        0x1000,
        WRITABLE | NO_CACHE | WRITE_THROUGH,
    )?;
    u32::try_from(b.root()).map_err(|_| Error::Layout("entry tables above 4 GiB"))
}

/// Stops `node`'s CPU with INIT: it drops whatever it was doing and waits
/// for a SIPI. Kernel0 may then rewrite the partition and its rings. The
/// bulk pool's receiving end stays, so kernel0 can account for the
/// buffers the dead node had in flight before [`Starter::start`] formats
/// the pool afresh.
pub fn fence(node: &mut Node) -> Result<(), Error> {
    if let Some(link) = node.link.take() {
        let (s, w) = (link.tx.stats(), link.rx.stats());
        node.sent_past.rung += s.rung;
        node.sent_past.suppressed += s.suppressed;
        let p = &mut node.waits_past;
        p.spin_hits += w.spin_hits;
        p.rechecks_ready += w.rechecks_ready;
        p.sleeps += w.sleeps;
        p.woken += w.woken;
        p.spurious += w.spurious;
        p.timeouts += w.timeouts;
    }
    node.doorbell = None;
    lapic::send_init(node.apic_id)?;
    // Give the INIT time to land before the partition is rewritten.
    tsc::delay_us(10_000);
    Ok(())
}
