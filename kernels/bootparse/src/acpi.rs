//! ACPI discovery of the processors: RSDP, RSDT/XSDT and the MADT.

use crate::PhysMem;
use crate::bytes::{array, sum, u8_at, u32_at, u64_at};

/// Upper bound on the processors [`parse_madt`] records.
pub const MAX_CPUS: usize = 16;
/// Upper bound on the entries read from the RSDT/XSDT.
pub const MAX_ROOT_ENTRIES: usize = 64;
/// Size of the common table header.
pub const SDT_HEADER_LEN: usize = 36;
const RSDP_SIG: &[u8; 8] = b"RSD PTR ";
const RSDP_V1_LEN: usize = 20;
const RSDP_V2_LEN: usize = 36;
const MADT_ENTRIES_OFFSET: usize = 44;

/// Why the ACPI tables were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// A table lies in unreadable memory.
    Unreadable,
    /// The RSDP signature is missing.
    NoRsdp,
    /// The RSDP (or its extended part) does not sum to zero.
    BadRsdpChecksum,
    /// A table has another signature than the one expected.
    BadSignature([u8; 4]),
    /// A table's length is below its header or above the caller's buffer.
    BadLength([u8; 4], u32),
    /// A table does not sum to zero.
    BadChecksum([u8; 4]),
    /// The root table does not list the wanted table.
    NotFound([u8; 4]),
    /// The root table lists more than [`MAX_ROOT_ENTRIES`] tables.
    TooManyRootEntries,
    /// A MADT entry is truncated or has a length below its type's size.
    BadMadtEntry {
        /// Offset of the entry inside the MADT.
        offset: usize,
    },
    /// The MADT lists more than [`MAX_CPUS`] processors.
    TooManyCpus,
}

impl From<crate::MemError> for AcpiError {
    fn from(_: crate::MemError) -> Self {
        AcpiError::Unreadable
    }
}

/// The root pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0, 2 or more when the XSDT address is present.
    pub revision: u8,
    /// Physical address of the RSDT.
    pub rsdt: u32,
    /// Physical address of the XSDT, when the revision carries one.
    pub xsdt: Option<u64>,
}

/// Finds a checksummed RSDP inside a memory area (e.g. the BIOS area
/// 0xE0000..0x100000) that starts at physical `area_base`.
pub fn scan_rsdp(area: &[u8], area_base: u64) -> Option<u64> {
    (0..area.len())
        .step_by(16)
        .find(|&off| {
            area.get(off..off + RSDP_V1_LEN)
                .is_some_and(|b| b.starts_with(RSDP_SIG) && sum(b) == 0)
        })
        .map(|off| area_base + off as u64)
}

/// Reads and validates the RSDP at `paddr`.
pub fn read_rsdp(mem: &impl PhysMem, paddr: u64) -> Result<Rsdp, AcpiError> {
    let mut b = [0u8; RSDP_V2_LEN];
    mem.read(paddr, &mut b[..RSDP_V1_LEN])?;
    if !b.starts_with(RSDP_SIG) {
        return Err(AcpiError::NoRsdp);
    }
    if sum(&b[..RSDP_V1_LEN]) != 0 {
        return Err(AcpiError::BadRsdpChecksum);
    }
    let revision = u8_at(&b, 15).ok_or(AcpiError::Unreadable)?;
    let rsdt = u32_at(&b, 16).ok_or(AcpiError::Unreadable)?;
    let mut xsdt = None;
    if revision >= 2 {
        mem.read(paddr, &mut b)?;
        let len = u32_at(&b, 20).ok_or(AcpiError::Unreadable)?;
        if (len as usize) < RSDP_V2_LEN || sum(&b) != 0 {
            return Err(AcpiError::BadRsdpChecksum);
        }
        xsdt = u64_at(&b, 24).filter(|&a| a != 0);
    }
    Ok(Rsdp {
        revision,
        rsdt,
        xsdt,
    })
}

/// Reads the table at `paddr` into `buf`, checking signature, length and
/// checksum; returns the table bytes.
pub fn read_table<'b>(
    mem: &impl PhysMem,
    paddr: u64,
    sig: &[u8; 4],
    buf: &'b mut [u8],
) -> Result<&'b [u8], AcpiError> {
    let header = read_header(mem, paddr)?;
    let found: [u8; 4] = array(&header, 0).ok_or(AcpiError::Unreadable)?;
    if &found != sig {
        return Err(AcpiError::BadSignature(found));
    }
    let len = u32_at(&header, 4).ok_or(AcpiError::Unreadable)?;
    let n = len as usize;
    if n < SDT_HEADER_LEN || n > buf.len() {
        return Err(AcpiError::BadLength(*sig, len));
    }
    let table = buf.get_mut(..n).ok_or(AcpiError::BadLength(*sig, len))?;
    mem.read(paddr, table)?;
    if sum(table) != 0 {
        return Err(AcpiError::BadChecksum(*sig));
    }
    Ok(table)
}

fn read_header(mem: &impl PhysMem, paddr: u64) -> Result<[u8; SDT_HEADER_LEN], AcpiError> {
    let mut header = [0u8; SDT_HEADER_LEN];
    mem.read(paddr, &mut header)?;
    Ok(header)
}

/// Finds the table with signature `sig` through the XSDT (or the RSDT when
/// there is no XSDT) and reads it into `buf`.
pub fn find_table<'b>(
    mem: &impl PhysMem,
    rsdp: &Rsdp,
    sig: &[u8; 4],
    buf: &'b mut [u8],
) -> Result<&'b [u8], AcpiError> {
    let mut addrs = [0u64; MAX_ROOT_ENTRIES];
    let count = {
        let (root, width) = match rsdp.xsdt {
            Some(x) => (read_table(mem, x, b"XSDT", buf)?, 8),
            None => (read_table(mem, u64::from(rsdp.rsdt), b"RSDT", buf)?, 4),
        };
        let entries = root.get(SDT_HEADER_LEN..).unwrap_or(&[]);
        let count = entries.len() / width;
        if count > MAX_ROOT_ENTRIES {
            return Err(AcpiError::TooManyRootEntries);
        }
        for (i, slot) in addrs.iter_mut().take(count).enumerate() {
            let v = if width == 8 {
                u64_at(entries, i * 8)
            } else {
                u32_at(entries, i * 4).map(u64::from)
            };
            *slot = v.ok_or(AcpiError::Unreadable)?;
        }
        count
    };
    for &addr in addrs.iter().take(count) {
        // Skip entries we cannot read instead of failing the whole walk:
        // the wanted table may still be listed further on.
        let Ok(header) = read_header(mem, addr) else {
            continue;
        };
        if header.starts_with(sig) {
            return read_table(mem, addr, sig, buf);
        }
    }
    Err(AcpiError::NotFound(*sig))
}

/// One processor local APIC from the MADT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cpu {
    /// The local APIC id (8-bit for type 0 entries, 32-bit for x2APIC ones).
    pub apic_id: u32,
    /// ACPI processor id / UID.
    pub uid: u32,
    /// Usable now (flag bit 0).
    pub enabled: bool,
    /// Can be brought online later (flag bit 1).
    pub online_capable: bool,
}

/// What the MADT says about the processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the local APIC registers (override applied).
    pub lapic_addr: u64,
    /// MADT flags (bit 0: dual 8259 PICs present).
    pub flags: u32,
    cpus: [Cpu; MAX_CPUS],
    count: usize,
}

impl Madt {
    /// All processor entries, in table order.
    pub fn cpus(&self) -> &[Cpu] {
        self.cpus.get(..self.count).unwrap_or(&[])
    }
}

/// Parses a MADT (as returned by [`read_table`] or [`find_table`]).
pub fn parse_madt(table: &[u8]) -> Result<Madt, AcpiError> {
    let bad = |offset| AcpiError::BadMadtEntry { offset };
    let mut madt = Madt {
        lapic_addr: u32_at(table, 36).map(u64::from).ok_or(bad(36))?,
        flags: u32_at(table, 40).ok_or(bad(40))?,
        cpus: [Cpu::default(); MAX_CPUS],
        count: 0,
    };
    let mut off = MADT_ENTRIES_OFFSET;
    while off < table.len() {
        let kind = u8_at(table, off).ok_or(bad(off))?;
        let len = usize::from(u8_at(table, off + 1).ok_or(bad(off))?);
        let entry = table.get(off..off + len).ok_or(bad(off))?;
        let cpu = match (kind, len) {
            (0, 8..) => Some(Cpu {
                uid: u32::from(entry[2]),
                apic_id: u32::from(entry[3]),
                enabled: entry[4] & 1 != 0,
                online_capable: entry[4] & 2 != 0,
            }),
            (9, 16..) => {
                let flags = u32_at(entry, 8).ok_or(bad(off))?;
                Some(Cpu {
                    apic_id: u32_at(entry, 4).ok_or(bad(off))?,
                    uid: u32_at(entry, 12).ok_or(bad(off))?,
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                })
            }
            (5, 12..) => {
                madt.lapic_addr = u64_at(entry, 4).ok_or(bad(off))?;
                None
            }
            (0 | 9 | 5, _) | (_, 0..=1) => return Err(bad(off)),
            _ => None,
        };
        if let Some(cpu) = cpu {
            let slot = madt
                .cpus
                .get_mut(madt.count)
                .ok_or(AcpiError::TooManyCpus)?;
            *slot = cpu;
            madt.count += 1;
        }
        off += len;
    }
    Ok(madt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SliceMem;

    const BASE: u64 = 0xe_0000;

    fn fix_checksum(t: &mut [u8], at: usize) {
        t[at] = 0;
        t[at] = 0u8.wrapping_sub(sum(t));
    }

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; SDT_HEADER_LEN];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t[8] = 1;
        fix_checksum(&mut t, 9);
        t
    }

    fn madt_body(entries: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            b.extend_from_slice(e);
        }
        b
    }

    /// RSDP at +0x100 (rev 2), XSDT at +0x200 listing FACP (+0x300) then
    /// APIC (+0x400), RSDT at +0x280 listing the same.
    fn memory(madt: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 0x1000];
        let facp = table(b"FACP", &[0u8; 8]);
        m[0x300..0x300 + facp.len()].copy_from_slice(&facp);
        m[0x400..0x400 + madt.len()].copy_from_slice(madt);
        let mut xs = Vec::new();
        xs.extend_from_slice(&(BASE + 0x300).to_le_bytes());
        xs.extend_from_slice(&(BASE + 0x400).to_le_bytes());
        let xsdt = table(b"XSDT", &xs);
        m[0x200..0x200 + xsdt.len()].copy_from_slice(&xsdt);
        let mut rs = Vec::new();
        rs.extend_from_slice(&((BASE + 0x300) as u32).to_le_bytes());
        rs.extend_from_slice(&((BASE + 0x400) as u32).to_le_bytes());
        let rsdt = table(b"RSDT", &rs);
        m[0x280..0x280 + rsdt.len()].copy_from_slice(&rsdt);
        let r = &mut m[0x100..0x100 + RSDP_V2_LEN];
        r[..8].copy_from_slice(RSDP_SIG);
        r[15] = 2;
        r[16..20].copy_from_slice(&((BASE + 0x280) as u32).to_le_bytes());
        r[20..24].copy_from_slice(&(RSDP_V2_LEN as u32).to_le_bytes());
        r[24..32].copy_from_slice(&(BASE + 0x200).to_le_bytes());
        fix_checksum(&mut r[..RSDP_V1_LEN], 8);
        fix_checksum(r, 32);
        m
    }

    fn good_madt() -> Vec<u8> {
        let lapic0 = [0u8, 8, 0, 0, 1, 0, 0, 0];
        let lapic1 = [0u8, 8, 1, 1, 1, 0, 0, 0];
        let lapic_off = [0u8, 8, 2, 7, 0, 0, 0, 0];
        let ioapic = [1u8, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
        let mut x2 = [0u8; 16];
        x2[0] = 9;
        x2[1] = 16;
        x2[4..8].copy_from_slice(&300u32.to_le_bytes());
        x2[8] = 3;
        x2[12..16].copy_from_slice(&9u32.to_le_bytes());
        table(
            b"APIC",
            &madt_body(&[&lapic0, &ioapic, &lapic1, &lapic_off, &x2]),
        )
    }

    #[test]
    fn finds_cpus_through_xsdt_and_rsdt() {
        let m = memory(&good_madt());
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(scan_rsdp(&m, BASE), Some(BASE + 0x100));
        let mut rsdp = read_rsdp(&mem, BASE + 0x100).unwrap();
        assert_eq!(rsdp.xsdt, Some(BASE + 0x200));
        for _ in 0..2 {
            let mut buf = [0u8; 1024];
            let t = find_table(&mem, &rsdp, b"APIC", &mut buf).unwrap();
            let madt = parse_madt(t).unwrap();
            assert_eq!(madt.lapic_addr, 0xfee0_0000);
            let ids: Vec<(u32, bool)> =
                madt.cpus().iter().map(|c| (c.apic_id, c.enabled)).collect();
            assert_eq!(ids, vec![(0, true), (1, true), (7, false), (300, true)]);
            assert!(madt.cpus()[3].online_capable);
            rsdp.xsdt = None; // second pass walks the RSDT
        }
    }

    #[test]
    fn lapic_address_override() {
        let mut ov = [0u8; 12];
        ov[0] = 5;
        ov[1] = 12;
        ov[4..12].copy_from_slice(&0x1_0000_0000u64.to_le_bytes());
        let t = table(b"APIC", &madt_body(&[&ov]));
        assert_eq!(parse_madt(&t).unwrap().lapic_addr, 0x1_0000_0000);
    }

    #[test]
    fn rejects_bad_rsdp() {
        let mut m = memory(&good_madt());
        m[0x100 + 10] ^= 0x55; // v1 checksum covers byte 10
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(
            read_rsdp(&mem, BASE + 0x100),
            Err(AcpiError::BadRsdpChecksum)
        );
        assert_eq!(scan_rsdp(&m, BASE), None);
        let mut m = memory(&good_madt());
        m[0x100 + 33] ^= 0x55; // only the extended checksum covers byte 33
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(
            read_rsdp(&mem, BASE + 0x100),
            Err(AcpiError::BadRsdpChecksum)
        );
        assert_eq!(read_rsdp(&mem, BASE + 0x110), Err(AcpiError::NoRsdp));
        assert_eq!(read_rsdp(&mem, BASE + 0xff8), Err(AcpiError::Unreadable));
    }

    #[test]
    fn rejects_bad_tables() {
        let mut madt = good_madt();
        madt[20] ^= 1;
        let m = memory(&madt);
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        let rsdp = read_rsdp(&mem, BASE + 0x100).unwrap();
        let mut buf = [0u8; 1024];
        assert_eq!(
            find_table(&mem, &rsdp, b"APIC", &mut buf),
            Err(AcpiError::BadChecksum(*b"APIC"))
        );
        assert_eq!(
            find_table(&mem, &rsdp, b"HPET", &mut buf),
            Err(AcpiError::NotFound(*b"HPET"))
        );
        let mut small = [0u8; 40];
        assert!(matches!(
            find_table(&mem, &rsdp, b"APIC", &mut small),
            Err(AcpiError::BadLength(..))
        ));
        assert_eq!(
            read_table(&mem, BASE + 0x300, b"APIC", &mut buf),
            Err(AcpiError::BadSignature(*b"FACP"))
        );
        // A length field smaller than the header.
        let mut m2 = m.clone();
        m2[0x404..0x408].copy_from_slice(&10u32.to_le_bytes());
        let mem2 = SliceMem {
            base: BASE,
            bytes: &m2,
        };
        assert_eq!(
            read_table(&mem2, BASE + 0x400, b"APIC", &mut buf),
            Err(AcpiError::BadLength(*b"APIC", 10))
        );
        // A table running past the end of memory.
        let mut m3 = m.clone();
        m3[0x404..0x408].copy_from_slice(&0x1000u32.to_le_bytes());
        let mem3 = SliceMem {
            base: BASE,
            bytes: &m3,
        };
        let mut big = [0u8; 0x2000];
        assert_eq!(
            read_table(&mem3, BASE + 0x400, b"APIC", &mut big),
            Err(AcpiError::Unreadable)
        );
    }

    #[test]
    fn rejects_malformed_madt_entries() {
        let zero_len = [0u8, 0, 0, 0];
        let t = table(b"APIC", &madt_body(&[&zero_len]));
        assert_eq!(parse_madt(&t), Err(AcpiError::BadMadtEntry { offset: 44 }));
        let short_lapic = [0u8, 4, 0, 0];
        let t = table(b"APIC", &madt_body(&[&short_lapic]));
        assert_eq!(parse_madt(&t), Err(AcpiError::BadMadtEntry { offset: 44 }));
        let overrun = [0u8, 200, 0, 0, 1, 0, 0, 0];
        let t = table(b"APIC", &madt_body(&[&overrun]));
        assert_eq!(parse_madt(&t), Err(AcpiError::BadMadtEntry { offset: 44 }));
        assert!(parse_madt(&[0u8; 20]).is_err());
        let lapic = [0u8, 8, 0, 0, 1, 0, 0, 0];
        let many: Vec<&[u8]> = (0..MAX_CPUS + 1).map(|_| &lapic[..]).collect();
        let t = table(b"APIC", &madt_body(&many));
        assert_eq!(parse_madt(&t), Err(AcpiError::TooManyCpus));
    }

    #[test]
    fn truncations_never_panic() {
        let t = good_madt();
        for n in 0..t.len() {
            let _ = parse_madt(&t[..n]);
        }
        let m = memory(&t);
        for n in 0..m.len() {
            let mem = SliceMem {
                base: BASE,
                bytes: &m[..n],
            };
            if let Ok(r) = read_rsdp(&mem, BASE + 0x100) {
                let mut buf = [0u8; 1024];
                let _ = find_table(&mem, &r, b"APIC", &mut buf);
            }
        }
    }
}
