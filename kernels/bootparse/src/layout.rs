//! The fixed machine layout shared by kernel0 and the secondaries: physical
//! partitions, the shared region, the secondary's virtual address map and the
//! boot control page inside the shared region.
//!
//! ```text
//! physical                                   owner
//! 0x0000_8000 .. 0x0000_9000   AP trampoline  kernel0 (copied there)
//! 0x0010_0000 .. 0x0200_0000   kernel0 image, stack, tables
//! 0x0200_0000 .. 0x0300_0000   shared region (16 MiB): control pages, then
//!                              the mkipc region (header, manifest, node
//!                              sections, every node's rings and pools)
//! 0x0400_0000 + (n-1)*16 MiB   partition of secondary node n (16 MiB)
//! ```

/// First byte of kernel0's image (its link and load address).
pub const KERNEL0_BASE: u64 = 0x10_0000;
/// End of kernel0's partition.
pub const KERNEL0_END: u64 = 0x200_0000;
/// Physical base of the shared region.
pub const SHARED_PHYS: u64 = 0x200_0000;
/// Size of the shared region.
pub const SHARED_SIZE: u64 = 0x100_0000;
/// Bytes at the start of the shared region used by the boot control page;
/// the rest is free for message rings.
pub const CONTROL_SIZE: u64 = 0x2_0000;
/// Physical base of node 1's partition.
pub const SECONDARY_PHYS: u64 = 0x400_0000;
/// Size of each secondary partition.
pub const PARTITION_SIZE: u64 = 0x100_0000;
/// Node ids run from 0 (kernel0) to `MAX_NODES - 1`.
pub const MAX_NODES: usize = 8;
/// Physical page the AP trampoline runs from (SIPI vector 0x08).
pub const TRAMPOLINE_PHYS: u64 = 0x8000;

/// Virtual base of a secondary's own partition in its address space.
pub const SEC_PART_VIRT: u64 = 0x4000_0000;
/// Partition offset of the boot parameter block.
pub const SEC_PARAMS_OFFSET: u64 = 0;
/// Partition offset of the page tables kernel0 builds for the AP's entry.
pub const SEC_BOOT_TABLES_OFFSET: u64 = 0x1000;
/// Size of that page-table area.
pub const SEC_BOOT_TABLES_SIZE: u64 = 0xf000;
/// Partition offset where the image's lowest segment may start; the
/// secondary is linked at `SEC_PART_VIRT + SEC_IMAGE_OFFSET`.
pub const SEC_IMAGE_OFFSET: u64 = 0x10_0000;
/// Virtual base of the shared region in a secondary's address space (kernel0
/// maps it at its physical address: the two differ on purpose).
pub const SEC_SHARED_VIRT: u64 = 0x5000_0000;
/// Physical (and, on every node, virtual) base of the local APIC registers.
pub const LAPIC_PHYS: u64 = 0xfee0_0000;

/// Offset of the mkipc region inside the shared region (after the control
/// page); the region header sits at its start.
pub const RING_REGION_OFFSET: u64 = CONTROL_SIZE;
/// Size of the mkipc region.
pub const RING_REGION_SIZE: u64 = SHARED_SIZE - CONTROL_SIZE;
/// Slots per ring.
pub const RING_SLOTS: u32 = 16;
/// Payload bytes per slot.
pub const RING_SLOT_SIZE: u32 = 32;

/// Buffers in each node's bulk pool (the node sends, kernel0 receives).
pub const POOL_BUFFERS: u32 = 8;
/// Bytes per bulk pool buffer.
pub const POOL_BUFFER_SIZE: u32 = 0x1_0000;

/// Slots per fan-in lane.
pub const FANIN_SLOTS: u32 = 64;
/// Payload bytes per fan-in slot.
pub const FANIN_SLOT_SIZE: u32 = 32;

/// Names in the mkipc region manifest kernel0 writes. Where each channel
/// lies is the manifest's business: both sides look channels up by these
/// names and take offsets, geometry and grants from the (validated)
/// manifest, never from constants.
pub mod names {
    use super::MAX_NODES;

    /// Node names by node id (kernel0 is node 0).
    pub const NODES: [&str; MAX_NODES] = [
        "kernel0", "node1", "node2", "node3", "node4", "node5", "node6", "node7",
    ];
    /// Request ring of node n (kernel0 produces, the node consumes).
    pub const REQUESTS: [&str; MAX_NODES] = [
        "", "req.1", "req.2", "req.3", "req.4", "req.5", "req.6", "req.7",
    ];
    /// Response ring of node n (the node produces, kernel0 consumes).
    pub const RESPONSES: [&str; MAX_NODES] = [
        "", "resp.1", "resp.2", "resp.3", "resp.4", "resp.5", "resp.6", "resp.7",
    ];
    /// Bulk pool of node n (the node loans and sends, kernel0 receives).
    pub const POOLS: [&str; MAX_NODES] = [
        "", "pool.1", "pool.2", "pool.3", "pool.4", "pool.5", "pool.6", "pool.7",
    ];
    /// The MPSC fan-in channel: one producer lane per node, kernel0 consumes.
    pub const FANIN: &str = "fanin";

    /// The name of node `id`'s entry (`None` outside 0..MAX_NODES).
    pub fn node(id: u32) -> Option<&'static str> {
        NODES.get(id as usize).copied()
    }

    /// Names of secondary node `id`'s request ring, response ring and pool.
    pub fn channels(id: u32) -> Option<(&'static str, &'static str, &'static str)> {
        if id == 0 {
            return None;
        }
        let i = id as usize;
        Some((*REQUESTS.get(i)?, *RESPONSES.get(i)?, *POOLS.get(i)?))
    }
}

/// A half-open physical or virtual range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Range {
    /// One past the last byte, `None` when it wraps.
    pub fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// True when the two ranges share a byte (a wrapping range overlaps all).
    pub fn overlaps(&self, other: &Range) -> bool {
        match (self.end(), other.end()) {
            (Some(a_end), Some(b_end)) => self.base < b_end && other.base < a_end,
            _ => true,
        }
    }

    /// True when `other` lies entirely inside `self`.
    pub fn contains(&self, other: &Range) -> bool {
        match (self.end(), other.end()) {
            (Some(a_end), Some(b_end)) => self.base <= other.base && b_end <= a_end,
            _ => false,
        }
    }
}

/// The physical partition of secondary `node` (1-based).
pub fn partition(node: u32) -> Option<Range> {
    let idx = u64::from(node.checked_sub(1)?);
    if node as usize >= MAX_NODES {
        return None;
    }
    Some(Range {
        base: SECONDARY_PHYS + idx * PARTITION_SIZE,
        size: PARTITION_SIZE,
    })
}

/// The shared region.
pub const fn shared() -> Range {
    Range {
        base: SHARED_PHYS,
        size: SHARED_SIZE,
    }
}

/// Kernel0's partition (its image and everything it allocates statically).
pub const fn kernel0() -> Range {
    Range {
        base: KERNEL0_BASE,
        size: KERNEL0_END - KERNEL0_BASE,
    }
}

/// The window the secondary image's segments must fit, in its virtual map.
pub fn image_window() -> crate::elf::Window {
    crate::elf::Window {
        base: SEC_PART_VIRT + SEC_IMAGE_OFFSET,
        size: PARTITION_SIZE - SEC_IMAGE_OFFSET,
    }
}

/// Offsets inside the boot control page at the start of the shared region.
/// Every word is a little-endian `u64` accessed atomically; each line is
/// written by one side only.
///
/// Pages are split by writer so that a node's page tables can map what
/// kernel0 writes read-only and leave other nodes' pages unmapped:
///
/// ```text
/// 0x0000  magic                          kernel0
/// 0x1000  console lock                   everyone
/// 0x2000 + n*0x2000           command page of node n     kernel0 writes
/// 0x2000 + n*0x2000 + 0x1000  status page of node n      node n writes
/// ```
pub mod control {
    /// Magic value at [`MAGIC`] once kernel0 has initialised the page.
    pub const MAGIC_VALUE: u64 = u64::from_le_bytes(*b"MKBOOTC1");
    /// Offset of the magic word.
    pub const MAGIC: u64 = 0;
    /// Offset of the console lock (owner node + 1, 0 when free), alone in
    /// its page.
    pub const CONSOLE_LOCK: u64 = 0x1000;
    /// Offset of node 0's block; node n's is at `NODE_BASE + n * NODE_STRIDE`.
    pub const NODE_BASE: u64 = 0x2000;
    /// Size of one node block: a command page and a status page.
    pub const NODE_STRIDE: u64 = 0x2000;
    /// Offset of the status page inside a node block.
    pub const STATUS_PAGE: u64 = 0x1000;

    /// Command page, written by kernel0: how the node waits for requests
    /// (`MODE_*`).
    pub const MODE: u64 = 0x00;
    /// Command page: round number of the raw cache-line ping-pong (the
    /// floor measurement).
    pub const FLOOR_PING: u64 = 0x80;
    /// Status page, written by the node: the last floor round it answered.
    pub const FLOOR_PONG: u64 = STATUS_PAGE;
    /// Status page: state (`STATE_*`).
    pub const STATE: u64 = STATUS_PAGE + 0x88;
    /// Status page: boot epoch the node runs under.
    pub const EPOCH: u64 = STATUS_PAGE + 0x90;
    /// Status page: IPI wake-ups the node has taken.
    pub const WAKEUPS: u64 = STATUS_PAGE + 0x98;
    /// Status page, written by the node's exception handler:
    /// `1 << 63 | error_code << 16 | vector`.
    pub const FAULT_VECTOR: u64 = STATUS_PAGE + 0x100;
    /// Status page: faulting address (CR2).
    pub const FAULT_ADDR: u64 = STATUS_PAGE + 0x108;
    /// Status page, part of the node's hello: build number of its image.
    pub const BUILD: u64 = STATUS_PAGE + 0xa0;
    /// Status page, part of the hello: feature bits of its image
    /// (`crate::wire::FEATURE_*`).
    pub const FEATURES: u64 = STATUS_PAGE + 0xa8;
    /// Status page, part of the hello: virtual address of the unmapped
    /// guard page below its stack.
    pub const STACK_GUARD: u64 = STATUS_PAGE + 0xb0;
    /// Status page: doorbells the node rang to kernel0 (the need-wakeup
    /// protocol's `NotifyStats::rung` of its response ring), updated right
    /// after each ring.
    pub const RUNG: u64 = STATUS_PAGE + 0xb8;
    /// Status page: notifications to kernel0 that rang nothing (kernel0
    /// was not asleep on the ring).
    pub const SUPPRESSED: u64 = STATUS_PAGE + 0xc0;
    /// Status page: doorbells the node rang to kernel0 after pushing into
    /// its fan-in lane (kernel0 had announced a sleep on the channel's
    /// `need_wakeup` word), updated after each burst.
    pub const FANIN_RUNG: u64 = STATUS_PAGE + 0xc8;
    /// Status page: fan-in notifications that rang nothing.
    pub const FANIN_SUPPRESSED: u64 = STATUS_PAGE + 0xd0;

    /// Spin on the request ring between requests.
    pub const MODE_POLL: u64 = 0;
    /// Sleep in `hlt` until an IPI; answer with an IPI.
    pub const MODE_IPI: u64 = 1;
    /// State: not running (kernel0 writes it before a start).
    pub const STATE_DOWN: u64 = 0;
    /// State: initialised and serving commands.
    pub const STATE_READY: u64 = 1;

    /// Offset of word `field` of node `node`'s block.
    pub const fn node_word(node: u64, field: u64) -> u64 {
        NODE_BASE + node * NODE_STRIDE + field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_disjoint_and_clear_of_everything() {
        let fixed = [kernel0(), shared()];
        for n in 1..MAX_NODES as u32 {
            let p = partition(n).unwrap();
            assert_eq!(p.base % 0x20_0000, 0, "2 MiB pages need alignment");
            for f in &fixed {
                assert!(!p.overlaps(f));
            }
            for m in (n + 1)..MAX_NODES as u32 {
                assert!(!p.overlaps(&partition(m).unwrap()));
            }
        }
        assert_eq!(partition(0), None);
        assert_eq!(partition(MAX_NODES as u32), None);
        assert!(!kernel0().overlaps(&shared()));
        let end = control::node_word(MAX_NODES as u64, 0);
        assert!(end <= CONTROL_SIZE);
        assert_eq!(names::channels(0), None);
        assert_eq!(names::channels(MAX_NODES as u32), None);
        assert_eq!(names::channels(3), Some(("req.3", "resp.3", "pool.3")));
        assert_eq!(names::node(7), Some("node7"));
        assert_eq!(names::node(MAX_NODES as u32), None);
        let mut all: [&str; 3 * MAX_NODES + 1] = [""; 3 * MAX_NODES + 1];
        for id in 1..MAX_NODES as u32 {
            let (a, b, c) = names::channels(id).unwrap();
            let i = 3 * id as usize;
            all[i..i + 3].copy_from_slice(&[a, b, c]);
        }
        all[0] = names::FANIN;
        for (i, a) in all.iter().enumerate().filter(|(_, a)| !a.is_empty()) {
            assert!(
                a.len() <= 32 && a.is_ascii(),
                "manifest names are 1-32 ASCII bytes"
            );
            assert!(!all[..i].contains(a), "channel names are unique");
        }
        const { assert!(SHARED_PHYS + SHARED_SIZE <= SECONDARY_PHYS) };
    }

    #[test]
    fn range_arithmetic() {
        let a = Range {
            base: 0x1000,
            size: 0x1000,
        };
        let b = Range {
            base: 0x1fff,
            size: 1,
        };
        let c = Range {
            base: 0x2000,
            size: 1,
        };
        assert!(a.overlaps(&b) && !a.overlaps(&c));
        assert!(a.contains(&b) && !a.contains(&c));
        let wrap = Range {
            base: u64::MAX,
            size: 2,
        };
        assert!(wrap.overlaps(&a));
        assert!(!a.contains(&wrap));
    }
}
