//! Secondary nodes: loading the image into a partition, writing the boot
//! parameters and entry page tables, starting the CPU with INIT-SIPI-SIPI,
//! connecting its channels through the core handshake, watching its
//! heartbeat with the core watchdog, and fencing it again with INIT.

use crate::error::Error;
use crate::physmem::ram_slice_mut;
use crate::trampoline::{self, Launch};
use bootparse::acpi::Madt;
use bootparse::bootparams::{self, BootParams};
use bootparse::bundle::MAX_IMAGES;
use bootparse::cmdline::Config;
use bootparse::elf::{self, LoadPlan};
use bootparse::layout::{self, Range, control as c, names};
use bootparse::wire::KNOWN_FEATURES;
use core::sync::atomic::Ordering;
use mkipc::doorbell::{Notifier, Sleeper, SpinPolicy, WakeFlag};
use mkipc::handshake::{Agreement, ConnectError, Hello, LinkStatus, Receiver, Sender};
use mkipc::lifecycle::{Fence, LocalNode, PeerStatus, Watchdog};
use mkipc::manifest::{Manifest, NodeInfo};
use mkipc::pool::{PoolLayout, PoolReceiver};
use mkipc::spsc::RingLayout;
use mkipc::{MessageType, Region};
use platform::cell::RacyCell;
use platform::channels::{pool_geometry, request_type, response_type};
use platform::control::Control;
use platform::doorbell::IpiDoorbell;
use platform::doorbell::IpiWaiter;
use platform::paging::{Builder, NO_CACHE, WRITABLE, WRITE_THROUGH};
use platform::{cpu, lapic, println, tsc, wait};

/// One secondary kernel as kernel0 tracks it.
pub struct Node {
    /// Node id (1-based).
    pub id: u32,
    /// Local APIC id of its CPU.
    pub apic_id: u32,
    /// Its physical partition.
    pub partition: Range,
    /// The epoch the node runs under (its `LocalNode::boot` counts it in
    /// its own section; kernel0 expects one more per start).
    pub epoch: u64,
    /// Last request sequence number kernel0 issued.
    pub seq: u64,
    /// Kernel0's ends of the node's rings, connected through the core
    /// handshake at the first start and kept (reclaimed, reconnected)
    /// across restarts.
    pub link: Option<Link>,
    /// Kernel0's (receiving) end of the node's bulk pool, once started.
    pub pool: Option<PoolReceiver>,
    /// Kernel0's watchdog on the node's heartbeat (core lifecycle).
    pub watch: Option<Watchdog>,
    /// Index of the image (in the boot module) it runs.
    pub image: usize,
    /// Build number from its last hello (0 before the first).
    pub build: u64,
    /// Feature bits negotiated in its last handshake (both rings agree).
    pub features: u64,
    /// Virtual address of its stack guard page, from its last hello.
    pub stack_guard: u64,
    /// Doorbells rung / suppressed towards kernel0 on the response ring by
    /// its earlier epochs.
    pub bells_past: (u64, u64),
    /// The same for its fan-in lane.
    pub fanin_bells_past: (u64, u64),
    /// Handshakes completed (both rings connected), one per start.
    pub connects: u64,
}

/// Kernel0's ends of one node's ring pair, connected through mkipc's
/// handshake (`Sender` offers the request ring, `Receiver` accepts the
/// node's offer of the response ring), with mkipc's need-wakeup protocol
/// on top: kernel0 rings the node only when the node announced a sleep on
/// its request ring, and announces its own sleeps on the response ring.
pub struct Link {
    /// Producer of the request ring.
    pub tx: Sender,
    /// Rings the node's doorbell when it sleeps on the request ring.
    pub tx_bell: Notifier<IpiDoorbell>,
    /// Consumer of the response ring.
    pub rx: Receiver,
    /// Sleeps on the response ring until the node's doorbell.
    pub rx_sleep: Sleeper<IpiWaiter>,
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
            watch: None,
            image: 0,
            build: 0,
            features: 0,
            stack_guard: 0,
            bells_past: (0, 0),
            fanin_bells_past: (0, 0),
            connects: 0,
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
    /// The mkipc region (header, manifest, channels), after the control page.
    pub region: Region,
    /// The manifest kernel0 wrote into it.
    pub manifest: Manifest,
    /// Kernel0's own node entry (its section's liveness words).
    pub kernel0: LocalNode,
    /// Kernel0's APIC id.
    pub kernel0_apic: u32,
}

/// Timings and hello of one start.
pub struct Started {
    /// Microseconds from INIT to the long-mode ack.
    pub ack_us: u64,
    /// Microseconds from INIT to the node's ready state (its handshakes
    /// done).
    pub ready_us: u64,
    /// Feature bits it gained compared to the previous build.
    pub new_features: u64,
    /// What the two handshakes agreed (request ring, response ring).
    pub agreed: (Agreement, Agreement),
}

/// Fences a node with INIT: its CPU drops whatever it was doing and waits
/// for a SIPI, so it can no longer write shared memory.
struct InitFence {
    apic_id: u32,
    failed: Option<Error>,
}

impl Fence for InitFence {
    fn fence(&mut self, _node: &NodeInfo, _epoch: u64) -> bool {
        match lapic::send_init(self.apic_id) {
            Ok(()) => {
                // Give the INIT time to land before anything is reclaimed.
                tsc::delay_us(10_000);
                true
            }
            Err(e) => {
                self.failed = Some(Error::Apic(e));
                false
            }
        }
    }
}

/// Kernel0's clock for the core's timeouts: TSC cycles.
pub fn now() -> u64 {
    cpu::rdtsc()
}

/// The hello kernel0 brings to every handshake: every feature it knows.
fn hello(message_type: MessageType) -> Hello {
    Hello::new(message_type).with_features(KNOWN_FEATURES)
}

impl Starter<'_> {
    /// Index of the newest image in the boot module.
    pub fn newest(&self) -> usize {
        self.images.iter().rposition(Option::is_some).unwrap_or(0)
    }

    /// Loads image `which` and starts `node` under a new epoch. Its CPU
    /// must be in the wait-for-SIPI state: never started, or fenced with
    /// [`fence`]. Waits for both handshakes and checks the node's hello
    /// (see [`Self::accept_hello`]).
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
            let (rung, suppressed) = fanin_bells_of(&self.ctl, node.id);
            node.fanin_bells_past.0 += rung;
            node.fanin_bells_past.1 += suppressed;
        }
        node.epoch += 1;
        self.reset_control(node.id);
        if node.link.is_none() {
            node.link = Some(self.link(node.id, node.apic_id)?);
        }
        if node.watch.is_none() {
            let timeout = tsc::cycles_from_us(self.config.dead_ms * 1000);
            let w = Watchdog::new(&self.manifest, node.id, timeout, now())
                .map_err(|e| Error::Lifecycle(node.id, e))?;
            node.watch = Some(w);
        }
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
        let t0 = cpu::rdtsc();
        let ack_us = self.init_sipi_sipi(node, t0)?;
        let agreed = self.await_connected(node)?;
        let ready_us = tsc::ns_from_cycles(cpu::rdtsc() - t0) / 1000;
        let new_features = self.accept_hello(node, agreed)?;
        node.connects += 1;
        Ok(Started {
            ack_us,
            ready_us,
            new_features,
            agreed,
        })
    }

    /// Kernel0's ends of node `id`'s rings, found in the manifest by name:
    /// offers the request ring (the node may accept it whenever it boots)
    /// and opens the response ring for the node's offer.
    fn link(&self, id: u32, apic_id: u32) -> Result<Link, Error> {
        let (req, resp, _) = names::channels(id).ok_or(Error::Layout("node id"))?;
        let m = &self.manifest;
        let tx = Sender::connect(m, &self.kernel0, req, hello(request_type()))
            .map_err(|e| Error::Connect(id, req, e))?;
        let rx = Receiver::open(m, &self.kernel0, resp, hello(response_type()))
            .map_err(|e| Error::Connect(id, resp, e))?;
        let ring = |name, e| Error::Connect(id, name, ConnectError::Ring(e));
        let find = |name| {
            m.find_channel(name)
                .map_err(|e| Error::Connect(id, name, ConnectError::Manifest(e)))
        };
        let request =
            RingLayout::read(&self.region, find(req)?.offset).map_err(|e| ring(req, e))?;
        let response =
            RingLayout::read(&self.region, find(resp)?.offset).map_err(|e| ring(resp, e))?;
        let bell = IpiDoorbell::new(apic_id, platform::IPI_VECTOR)?;
        let tx_bell = Notifier::new(self.region.clone(), request.need_wakeup_word(), bell)
            .map_err(Error::Region)?;
        let waiter = wait::waiter().ok_or(Error::Layout("IDT not loaded"))?;
        let flag = WakeFlag::new(self.region.clone(), response.need_wakeup_word())
            .map_err(Error::Region)?;
        // No spinning before a sleep: in IPI mode every wait announces a
        // sleep at once, so the round trips measure the doorbell path.
        let rx_sleep = Sleeper::new(flag, waiter, SpinPolicy::sleep_at_once());
        Ok(Link {
            tx,
            tx_bell,
            rx,
            rx_sleep,
            request,
        })
    }

    /// After the long-mode ack: waits (bounded by `handshake_ms`) until the
    /// watchdog sees the node alive under the expected epoch, kernel0 has
    /// accepted the node's offer of the response ring, the node has
    /// accepted kernel0's offer of the request ring (both for this epoch),
    /// and the node reports ready. Returns the two agreements.
    fn await_connected(&self, node: &mut Node) -> Result<(Agreement, Agreement), Error> {
        let id = node.id;
        let (req, resp, _) = names::channels(id).ok_or(Error::Layout("node id"))?;
        let (link, watch) = match (node.link.as_mut(), node.watch.as_mut()) {
            (Some(l), Some(w)) => (l, w),
            _ => return Err(Error::NoLink(id)),
        };
        let epoch = node.epoch;
        let (mut alive, mut accepted, mut connected) = (false, None, None);
        let mut failed = None;
        let mut step = || -> Result<bool, Error> {
            match watch.observe(now()).map_err(|e| Error::Lifecycle(id, e))? {
                PeerStatus::Alive { epoch: e } | PeerStatus::Restarted { new: e, .. } => {
                    if e != epoch {
                        return Err(Error::Liveness(id, "booted under an unexpected epoch"));
                    }
                    alive = true;
                }
                // The previous incarnation's verdict stays latched until the
                // node boots its next epoch.
                PeerStatus::NotBooted => {}
                PeerStatus::Dead { epoch: e } | PeerStatus::Fenced { epoch: e } if e < epoch => {}
                _ => return Err(Error::Liveness(id, "dead or stopped while starting")),
            }
            if accepted.is_none() {
                match link.rx.try_accept() {
                    Ok(a) if a.peer_epoch == epoch => accepted = Some(a),
                    Ok(_) => return Err(Error::Liveness(id, "offer from another epoch")),
                    Err(ConnectError::NoOffer | ConnectError::StaleEpoch { .. }) => {}
                    Err(e) => return Err(Error::Connect(id, resp, e)),
                }
            }
            if connected.is_none() {
                match link.tx.poll().map_err(|e| Error::Connect(id, req, e))? {
                    LinkStatus::Connected(a) if a.peer_epoch == epoch => connected = Some(a),
                    LinkStatus::PeerClosed => {
                        return Err(Error::Connect(id, req, ConnectError::PeerClosed));
                    }
                    _ => {}
                }
            }
            // Acquire pairs with the node's Release store of STATE_READY.
            let serving = self.ctl.node(id, c::STATE).load(Ordering::Acquire) == c::STATE_READY
                && self.ctl.node(id, c::EPOCH).load(Ordering::Relaxed) == epoch;
            Ok(alive && accepted.is_some() && connected.is_some() && serving)
        };
        let deadline = tsc::deadline_after_us(self.config.handshake_ms * 1000);
        let ready = wait::until(deadline, || {
            step().unwrap_or_else(|e| {
                failed = Some(e);
                true
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        match (ready, connected, accepted) {
            (true, Some(req), Some(resp)) => Ok((req, resp)),
            _ => {
                println!(
                    "node {id}: handshake incomplete after {} ms: alive {alive}, response ring accepted {}, request ring accepted by the node {}",
                    self.config.handshake_ms,
                    accepted.is_some(),
                    connected.is_some()
                );
                Err(Error::NotReady(id))
            }
        }
    }

    /// Reads the hello a ready node wrote (build, features, stack guard)
    /// and decides whether to accept it: the features both handshakes
    /// agreed must be the same, and exactly the ones the hello announced
    /// (kernel0 offers every known bit, so the agreement is the node's
    /// set); on a restart no older build and no lost feature. Returns the
    /// features gained.
    fn accept_hello(&self, node: &mut Node, agreed: (Agreement, Agreement)) -> Result<u64, Error> {
        let word = |f| self.ctl.node(node.id, f).load(Ordering::Relaxed);
        let (build, announced, guard) = (word(c::BUILD), word(c::FEATURES), word(c::STACK_GUARD));
        let features = agreed.0.features;
        if features != agreed.1.features || features != announced {
            return Err(Error::Features(
                node.id,
                agreed.0.features,
                agreed.1.features,
                announced,
            ));
        }
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
                "node {}: a newer image reconnected: build {build} (was {old_build}), negotiated features {features:#x} (new {:#x}); accepted",
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
            c::EPOCH,
            c::WAKEUPS,
            c::FAULT_VECTOR,
            c::FAULT_ADDR,
            c::BUILD,
            c::FEATURES,
            c::STACK_GUARD,
            c::RUNG,
            c::SUPPRESSED,
            c::FANIN_RUNG,
            c::FANIN_SUPPRESSED,
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

    /// Formats the node's bulk pool (found in the manifest by name) afresh
    /// under the new epoch (buffers a dead node lent are discarded with
    /// it) and attaches kernel0's receiving end.
    fn fresh_pool(&self, id: u32) -> Result<PoolReceiver, Error> {
        let (_, _, name) = names::channels(id).ok_or(Error::Layout("node id"))?;
        let ch = self
            .manifest
            .find_channel(name)
            .map_err(Error::ManifestRead)?;
        let geometry = pool_geometry();
        let fits = geometry.pool_size().is_ok_and(|s| s <= ch.size);
        if !fits {
            return Err(Error::Layout("bulk pool larger than its manifest entry"));
        }
        let kind = MessageType::bytes(layout::POOL_BUFFER_SIZE);
        let pool = |e| Error::Pool(id, e);
        PoolLayout::create(&self.region, ch.offset, geometry, kind).map_err(pool)?;
        PoolReceiver::attach(self.region.clone(), ch.offset).map_err(pool)
    }

    /// INIT, SIPI, SIPI; returns the microseconds from `t0` (just before
    /// the INIT) to the long-mode ack.
    fn init_sipi_sipi(&self, node: &Node, t0: u64) -> Result<u64, Error> {
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
        Ok(tsc::ns_from_cycles(cpu::rdtsc() - t0) / 1000)
    }
}

/// Doorbells node `id` reports it rang to kernel0 on its response ring and
/// suppressed, in its current epoch.
pub fn bells_of(ctl: &Control, id: u32) -> (u64, u64) {
    (
        ctl.node(id, c::RUNG).load(Ordering::Relaxed),
        ctl.node(id, c::SUPPRESSED).load(Ordering::Relaxed),
    )
}

/// The same for its fan-in lane.
pub fn fanin_bells_of(ctl: &Control, id: u32) -> (u64, u64) {
    (
        ctl.node(id, c::FANIN_RUNG).load(Ordering::Relaxed),
        ctl.node(id, c::FANIN_SUPPRESSED).load(Ordering::Relaxed),
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

/// Fences `node` once its watchdog has declared it dead: INIT through the
/// watchdog's [`Fence`] hook (its CPU drops whatever it was doing and
/// waits for a SIPI), after which the watchdog reports the incarnation
/// gone, so kernel0 may reclaim its channel ends and rewrite its
/// partition. The bulk pool's receiving end stays, so kernel0 can account
/// for the buffers the dead node had in flight before [`Starter::start`]
/// formats the pool afresh.
pub fn fence(node: &mut Node) -> Result<(), Error> {
    let watch = node.watch.as_mut().ok_or(Error::NoLink(node.id))?;
    let mut hook = InitFence {
        apic_id: node.apic_id,
        failed: None,
    };
    match watch.fence(&mut hook) {
        PeerStatus::Fenced { .. } => Ok(()),
        _ => Err(hook
            .failed
            .unwrap_or(Error::Liveness(node.id, "fence refused: not declared dead"))),
    }
}
