//! The node's own page tables: its partition at `partition_virt` (but for
//! the guard page below the stack), the local
//! APIC page uncached, and from the shared region only the pages granted
//! below, each read-only or writable. Nothing else is mapped, so a stray
//! access (kernel0, another partition, another node's pages, low memory)
//! faults, and so does a write to a page only kernel0 may write.

use bootparse::bootparams::BootParams;
use bootparse::layout::{self, control as c};
use core::ops::Range;
use mkipc::pool::PoolLayout;
use mkipc::spsc::RingLayout;
use platform::cell::RacyCell;
use platform::paging::{Builder, NO_CACHE, PagingError, WRITABLE, WRITE_THROUGH};

const POOL_FRAMES: usize = 16;
const PAGE: u64 = 0x1000;

#[repr(C, align(4096))]
struct Pool([u8; POOL_FRAMES * 4096]);

static POOL: RacyCell<Pool> = RacyCell::new(Pool([0; POOL_FRAMES * 4096]));

/// A page-aligned range of the shared region this node may access.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    /// Offset from the start of the shared region.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether the node may write it.
    pub writable: bool,
}

/// Most grants a node holds.
pub const MAX_GRANTS: usize = 32;

/// Where the parts of the mkipc region this node may use lie (region
/// offsets, all from the validated manifest and the channel descriptors).
pub struct Shape {
    /// The region header and the manifest tables (read-only).
    pub tables: Range<usize>,
    /// Kernel0's node section: its liveness words and the connect words of
    /// its channel ends (read-only).
    pub kernel0_section: Range<usize>,
    /// This node's section (writable: its liveness and connect words).
    pub own_section: Range<usize>,
    /// The request ring (the node consumes).
    pub request: RingLayout,
    /// The response ring (the node produces).
    pub response: RingLayout,
    /// The bulk pool's validated layout.
    pub pool: PoolLayout,
    /// Its submission ring (the node produces).
    pub submit: RingLayout,
    /// Its completion ring (the node consumes).
    pub completion: RingLayout,
    /// The fan-in channel's descriptor and consumer control words (read
    /// only).
    pub fanin_head: Range<usize>,
    /// This node's lane of the fan-in channel.
    pub fanin_lane: RingLayout,
}

/// Collects grants into a fixed array.
struct Grants {
    all: [Grant; MAX_GRANTS],
    len: usize,
}

impl Grants {
    /// A range of the mkipc region (region offsets).
    fn region(&mut self, r: &Range<usize>, writable: bool) {
        let base = layout::RING_REGION_OFFSET;
        self.push(base + r.start as u64, (r.end - r.start) as u64, writable);
    }

    fn push(&mut self, offset: u64, len: u64, writable: bool) {
        if len == 0 {
            return;
        }
        // MAX_GRANTS covers every grant `grants` pushes; an overflow would
        // drop a grant, and the node would then fault on that page.
        if let Some(g) = self.all.get_mut(self.len) {
            *g = Grant {
                offset,
                len,
                writable,
            };
            self.len += 1;
        }
    }

    /// A ring: only this node's own section writable.
    fn ring(&mut self, r: &RingLayout, consumer: bool) {
        let base = layout::RING_REGION_OFFSET;
        let own = if consumer {
            r.consumer_section()
        } else {
            r.producer_section()
        };
        let (start, end) = (r.offset() as u64, (r.offset() + r.size()) as u64);
        let (own_start, own_end) = (own.start as u64, own.end as u64);
        self.push(base + start, own_start - start, false);
        self.push(base + own_start, own_end - own_start, true);
        self.push(base + own_end, end - own_end, false);
    }
}

/// The shared pages of node `p.node_id`: the console lock and its status
/// page writable, its command page read-only; of the mkipc region the
/// header and manifest tables and kernel0's node section read-only, its
/// own node section writable (no other node's section); in each of its
/// rings only its own section writable; of its bulk pool the descriptor
/// read-only (kernel0 formats it), its own ring sections and the buffers
/// writable; of the MPSC fan-in channel the descriptor and the consumer's
/// control words read-only and only its own lane (producer section
/// writable), no other node's lane.
pub fn grants(p: &BootParams, s: &Shape) -> [Grant; MAX_GRANTS] {
    let node = c::node_word(u64::from(p.node_id), 0);
    let mut g = Grants {
        all: [Grant {
            offset: 0,
            len: 0,
            writable: false,
        }; MAX_GRANTS],
        len: 0,
    };
    g.push(c::CONSOLE_LOCK, PAGE, true);
    g.push(node, PAGE, false);
    g.push(node + c::STATUS_PAGE, PAGE, true);
    g.region(&s.tables, false);
    g.region(&s.kernel0_section, false);
    g.region(&s.own_section, true);
    g.ring(&s.request, true);
    g.ring(&s.response, false);
    let desc_start = s.pool.offset();
    let desc_end = s.pool.submit_ring().min(s.pool.completion_ring());
    g.region(&(desc_start..desc_end.max(desc_start)), false);
    g.ring(&s.submit, false);
    g.ring(&s.completion, true);
    g.region(&s.pool.buffer_area(), true);
    g.region(&s.fanin_head, false);
    g.ring(&s.fanin_lane, false);
    g.all
}

/// Builds the tables and loads them into CR3.
pub fn switch_to_own_tables(p: &BootParams, grants: &[Grant]) -> Result<(), PagingError> {
    let virt = POOL.get() as u64;
    // The pool is in our image, hence inside the partition mapped at
    // partition_virt: translate by the partition offset.
    let phys = virt - p.partition_virt + p.partition_phys;
    // SAFETY: the pool is a static of this image, used only here, on this
    // CPU, and mapped writable by both the entry tables and the new ones.
    let mut b = unsafe { Builder::new(virt, phys, (POOL_FRAMES * 4096) as u64)? };
    // The whole partition except the stack's guard page.
    let guard = crate::entry::stack_guard();
    let below = guard
        .checked_sub(p.partition_virt)
        .filter(|&b| b + PAGE <= p.partition_size)
        .ok_or(PagingError::Unaligned)?;
    b.map(p.partition_virt, p.partition_phys, below, WRITABLE)?;
    b.map(
        guard + PAGE,
        p.partition_phys + below + PAGE,
        p.partition_size - below - PAGE,
        WRITABLE,
    )?;
    for g in grants.iter().filter(|g| g.len != 0) {
        if g.offset
            .checked_add(g.len)
            .is_none_or(|end| end > p.shared_size)
        {
            return Err(PagingError::Unaligned);
        }
        let flags = if g.writable { WRITABLE } else { 0 };
        b.map(
            p.shared_virt + g.offset,
            p.shared_phys + g.offset,
            g.len,
            flags,
        )?;
    }
    b.map(
        p.lapic_phys,
        p.lapic_phys,
        0x1000,
        WRITABLE | NO_CACHE | WRITE_THROUGH,
    )?;
    // SAFETY: the new tables map this code, stack, statics, the granted
    // shared pages and the APIC at the same virtual addresses as the entry
    // tables; nothing used from here on lies elsewhere.
    unsafe { platform::cpu::write_cr3(b.root()) };
    Ok(())
}
