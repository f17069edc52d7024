//! ELF64 loader for the secondary kernel image: validates the headers and
//! program headers against a destination window, then copies the segments.

use crate::bytes::{u16_at, u32_at, u64_at};

/// Most program headers accepted.
pub const MAX_PHDRS: usize = 16;
/// Most loadable segments accepted.
pub const MAX_SEGMENTS: usize = 8;
const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the ELF header.
    Truncated,
    /// Not `\x7fELF`.
    BadMagic,
    /// Not ELFCLASS64.
    WrongClass(u8),
    /// Not little-endian.
    WrongEndian(u8),
    /// Header version is not 1.
    BadVersion,
    /// Not a static executable (`ET_EXEC`).
    WrongType(u16),
    /// Not x86_64.
    WrongMachine(u16),
    /// Program header entry size is not 56.
    BadPhentsize(u16),
    /// No program headers, or more than [`MAX_PHDRS`].
    BadPhnum(u16),
    /// The program header table lies outside the file.
    PhdrsOutOfFile,
    /// The image needs an interpreter, dynamic linking or TLS.
    Unsupported(u32),
    /// A segment's file size exceeds its memory size.
    FileszOverMemsz(usize),
    /// A segment's file bytes lie outside the file.
    SegmentOutOfFile(usize),
    /// A segment does not fit inside the destination window.
    SegmentOutOfWindow(usize),
    /// Two loadable segments overlap.
    Overlap(usize, usize),
    /// No loadable segment at all, or more than [`MAX_SEGMENTS`].
    BadSegmentCount,
    /// The entry point is not inside an executable segment.
    EntryOutsideText(u64),
    /// The destination buffer is smaller than the window.
    DestinationTooSmall,
}

/// The virtual range a segment may occupy; offsets in the plan are relative
/// to `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First allowed virtual address.
    pub base: u64,
    /// Size of the allowed range in bytes.
    pub size: u64,
}

/// One validated loadable segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Offset of the bytes in the file.
    pub file_offset: usize,
    /// Bytes copied from the file.
    pub file_size: usize,
    /// Offset of the segment in the window.
    pub dest_offset: usize,
    /// Bytes occupied in memory (the tail past `file_size` is zeroed).
    pub mem_size: usize,
    /// `PF_*` flags.
    pub flags: u32,
}

/// A validated image: where each segment goes and where execution starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    /// Virtual entry address.
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl LoadPlan {
    /// The loadable segments, in file order.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.count).unwrap_or(&[])
    }

    /// One past the highest window offset any segment occupies.
    pub fn end_offset(&self) -> usize {
        self.segments()
            .iter()
            .map(|s| s.dest_offset + s.mem_size)
            .max()
            .unwrap_or(0)
    }
}

struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn phdr(image: &[u8], at: usize) -> Option<Phdr> {
    Some(Phdr {
        kind: u32_at(image, at)?,
        flags: u32_at(image, at + 4)?,
        offset: u64_at(image, at + 8)?,
        vaddr: u64_at(image, at + 16)?,
        filesz: u64_at(image, at + 32)?,
        memsz: u64_at(image, at + 40)?,
    })
}

/// Validates `image` for loading into `window`.
pub fn plan(image: &[u8], window: Window) -> Result<LoadPlan, ElfError> {
    if image.len() < EHDR_LEN {
        return Err(ElfError::Truncated);
    }
    let t = ElfError::Truncated;
    if !image.starts_with(b"\x7fELF") {
        return Err(ElfError::BadMagic);
    }
    match image.get(4).copied().ok_or(t)? {
        2 => {}
        c => return Err(ElfError::WrongClass(c)),
    }
    match image.get(5).copied().ok_or(t)? {
        1 => {}
        d => return Err(ElfError::WrongEndian(d)),
    }
    if image.get(6).copied() != Some(1) || u32_at(image, 20) != Some(1) {
        return Err(ElfError::BadVersion);
    }
    let e_type = u16_at(image, 16).ok_or(t)?;
    if e_type != ET_EXEC {
        return Err(ElfError::WrongType(e_type));
    }
    let machine = u16_at(image, 18).ok_or(t)?;
    if machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(machine));
    }
    let entry = u64_at(image, 24).ok_or(t)?;
    let phoff = u64_at(image, 32).ok_or(t)?;
    let phentsize = u16_at(image, 54).ok_or(t)?;
    let phnum = u16_at(image, 56).ok_or(t)?;
    if usize::from(phentsize) != PHDR_LEN {
        return Err(ElfError::BadPhentsize(phentsize));
    }
    if phnum == 0 || usize::from(phnum) > MAX_PHDRS {
        return Err(ElfError::BadPhnum(phnum));
    }
    let table_end = usize::try_from(phoff)
        .ok()
        .and_then(|o| o.checked_add(usize::from(phnum) * PHDR_LEN).map(|e| (o, e)))
        .filter(|&(_, e)| e <= image.len())
        .ok_or(ElfError::PhdrsOutOfFile)?;

    let mut out = LoadPlan {
        entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: 0,
    };
    for i in 0..usize::from(phnum) {
        let p = phdr(image, table_end.0 + i * PHDR_LEN).ok_or(ElfError::PhdrsOutOfFile)?;
        match p.kind {
            PT_LOAD => {}
            PT_INTERP | PT_DYNAMIC | PT_TLS => return Err(ElfError::Unsupported(p.kind)),
            _ => continue,
        }
        let seg = check_segment(image, window, &p, i)?;
        let slot = out
            .segments
            .get_mut(out.count)
            .ok_or(ElfError::BadSegmentCount)?;
        *slot = seg;
        out.count += 1;
    }
    if out.count == 0 {
        return Err(ElfError::BadSegmentCount);
    }
    check_overlaps(out.segments())?;
    let entry_off = entry.wrapping_sub(window.base);
    let in_text = out.segments().iter().any(|s| {
        s.flags & PF_X != 0
            && entry >= window.base
            && entry_off >= s.dest_offset as u64
            && entry_off < (s.dest_offset + s.file_size) as u64
    });
    if !in_text {
        return Err(ElfError::EntryOutsideText(entry));
    }
    Ok(out)
}

fn check_segment(image: &[u8], window: Window, p: &Phdr, i: usize) -> Result<Segment, ElfError> {
    if p.filesz > p.memsz {
        return Err(ElfError::FileszOverMemsz(i));
    }
    let file_end = p.offset.checked_add(p.filesz);
    if file_end.is_none_or(|e| e > image.len() as u64) {
        return Err(ElfError::SegmentOutOfFile(i));
    }
    let out_of_window = ElfError::SegmentOutOfWindow(i);
    let dest = p.vaddr.checked_sub(window.base).ok_or(out_of_window)?;
    let dest_end = dest.checked_add(p.memsz).ok_or(out_of_window)?;
    if dest_end > window.size {
        return Err(out_of_window);
    }
    let conv = |v: u64| usize::try_from(v).map_err(|_| out_of_window);
    Ok(Segment {
        file_offset: conv(p.offset)?,
        file_size: conv(p.filesz)?,
        dest_offset: conv(dest)?,
        mem_size: conv(p.memsz)?,
        flags: p.flags,
    })
}

fn check_overlaps(segs: &[Segment]) -> Result<(), ElfError> {
    for (i, a) in segs.iter().enumerate() {
        for (j, b) in segs.iter().enumerate().skip(i + 1) {
            let disjoint = a.dest_offset + a.mem_size <= b.dest_offset
                || b.dest_offset + b.mem_size <= a.dest_offset;
            if !disjoint && a.mem_size != 0 && b.mem_size != 0 {
                return Err(ElfError::Overlap(i, j));
            }
        }
    }
    Ok(())
}

/// Copies every segment of a validated plan into `dest` (the window's
/// memory) and zeroes each segment's tail. `dest` must cover the window.
pub fn load(image: &[u8], plan: &LoadPlan, dest: &mut [u8]) -> Result<(), ElfError> {
    if dest.len() < plan.end_offset() {
        return Err(ElfError::DestinationTooSmall);
    }
    for (i, s) in plan.segments().iter().enumerate() {
        let src = image
            .get(s.file_offset..s.file_offset + s.file_size)
            .ok_or(ElfError::SegmentOutOfFile(i))?;
        let dst = dest
            .get_mut(s.dest_offset..s.dest_offset + s.mem_size)
            .ok_or(ElfError::DestinationTooSmall)?;
        let (head, tail) = dst.split_at_mut(s.file_size);
        head.copy_from_slice(src);
        tail.fill(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x4010_0000;
    const WIN: Window = Window {
        base: BASE,
        size: 0x10_0000,
    };

    struct P {
        kind: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
    }

    fn load_seg(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> P {
        P {
            kind: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
        }
    }

    fn build(entry: u64, phdrs: &[P], file_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; file_len];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, p) in phdrs.iter().enumerate() {
            let o = 64 + i * 56;
            f[o..o + 4].copy_from_slice(&p.kind.to_le_bytes());
            f[o + 4..o + 8].copy_from_slice(&p.flags.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&p.offset.to_le_bytes());
            f[o + 16..o + 24].copy_from_slice(&p.vaddr.to_le_bytes());
            f[o + 24..o + 32].copy_from_slice(&p.vaddr.to_le_bytes());
            f[o + 32..o + 40].copy_from_slice(&p.filesz.to_le_bytes());
            f[o + 40..o + 48].copy_from_slice(&p.memsz.to_le_bytes());
        }
        f
    }

    fn good() -> Vec<u8> {
        let mut f = build(
            BASE + 0x10,
            &[
                load_seg(PF_X | 4, 0x1000, BASE, 0x100, 0x100),
                load_seg(PF_W | 4, 0x1100, BASE + 0x1000, 0x10, 0x2000),
            ],
            0x1200,
        );
        f[0x1000..0x1100].fill(0xc3);
        f[0x1100..0x1110].fill(0xab);
        f
    }

    #[test]
    fn plans_and_loads_a_good_image() {
        let f = good();
        let p = plan(&f, WIN).unwrap();
        assert_eq!(p.entry, BASE + 0x10);
        assert_eq!(p.segments().len(), 2);
        assert_eq!(p.end_offset(), 0x3000);
        let mut dest = vec![0x55u8; 0x3000];
        load(&f, &p, &mut dest).unwrap();
        assert!(dest[..0x100].iter().all(|&b| b == 0xc3));
        assert!(dest[0x100..0x1000].iter().all(|&b| b == 0x55));
        assert!(dest[0x1000..0x1010].iter().all(|&b| b == 0xab));
        assert!(dest[0x1010..0x3000].iter().all(|&b| b == 0));
        let mut short = vec![0u8; 0x2fff];
        assert_eq!(load(&f, &p, &mut short), Err(ElfError::DestinationTooSmall));
    }

    #[test]
    fn rejects_bad_headers() {
        let g = good();
        assert_eq!(plan(&g[..63], WIN), Err(ElfError::Truncated));
        let mut f = g.clone();
        f[1] = b'X';
        assert_eq!(plan(&f, WIN), Err(ElfError::BadMagic));
        let mut f = g.clone();
        f[4] = 1;
        assert_eq!(plan(&f, WIN), Err(ElfError::WrongClass(1)));
        let mut f = g.clone();
        f[5] = 2;
        assert_eq!(plan(&f, WIN), Err(ElfError::WrongEndian(2)));
        let mut f = g.clone();
        f[6] = 0;
        assert_eq!(plan(&f, WIN), Err(ElfError::BadVersion));
        let mut f = g.clone();
        f[16] = 3;
        assert_eq!(plan(&f, WIN), Err(ElfError::WrongType(3)));
        let mut f = g.clone();
        f[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(plan(&f, WIN), Err(ElfError::WrongMachine(183)));
        let mut f = g.clone();
        f[54] = 32;
        assert_eq!(plan(&f, WIN), Err(ElfError::BadPhentsize(32)));
        let mut f = g.clone();
        f[56] = 0;
        assert_eq!(plan(&f, WIN), Err(ElfError::BadPhnum(0)));
        let mut f = g.clone();
        f[56] = 200;
        assert_eq!(plan(&f, WIN), Err(ElfError::BadPhnum(200)));
        let mut f = g.clone();
        f[32..40].copy_from_slice(&0x11c0u64.to_le_bytes());
        assert_eq!(plan(&f, WIN), Err(ElfError::PhdrsOutOfFile));
        let mut f = g.clone();
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(plan(&f, WIN), Err(ElfError::PhdrsOutOfFile));
    }

    #[test]
    fn rejects_bad_segments() {
        let one = |p: P| build(BASE, &[p], 0x1200);
        let f = one(load_seg(PF_X, 0x1000, BASE, 0x200, 0x100));
        assert_eq!(plan(&f, WIN), Err(ElfError::FileszOverMemsz(0)));
        let f = one(load_seg(PF_X, 0x1100, BASE, 0x200, 0x200));
        assert_eq!(plan(&f, WIN), Err(ElfError::SegmentOutOfFile(0)));
        let f = one(load_seg(PF_X, u64::MAX - 1, BASE, 0x10, 0x10));
        assert_eq!(plan(&f, WIN), Err(ElfError::SegmentOutOfFile(0)));
        let f = one(load_seg(PF_X, 0x1000, BASE - 0x1000, 0x10, 0x10));
        assert_eq!(plan(&f, WIN), Err(ElfError::SegmentOutOfWindow(0)));
        let f = one(load_seg(PF_X, 0x1000, BASE + 0xf_f000, 0x10, 0x2000));
        assert_eq!(plan(&f, WIN), Err(ElfError::SegmentOutOfWindow(0)));
        let f = one(load_seg(PF_X, 0x1000, u64::MAX - 0x10, 0x10, 0x100));
        assert_eq!(plan(&f, WIN), Err(ElfError::SegmentOutOfWindow(0)));
        let f = one(P {
            kind: PT_INTERP,
            ..load_seg(0, 0, 0, 0, 0)
        });
        assert_eq!(plan(&f, WIN), Err(ElfError::Unsupported(PT_INTERP)));
        let f = build(
            BASE,
            &[P {
                kind: 6,
                ..load_seg(0, 0, 0, 0, 0)
            }],
            0x1200,
        );
        assert_eq!(plan(&f, WIN), Err(ElfError::BadSegmentCount));
        let nine: Vec<P> = (0..9u64)
            .map(|i| load_seg(PF_X, 0x1000, BASE + i * 0x1000, 0x10, 0x10))
            .collect();
        assert_eq!(
            plan(&build(BASE, &nine, 0x1200), WIN),
            Err(ElfError::BadSegmentCount)
        );
    }

    #[test]
    fn rejects_overlaps_and_bad_entries() {
        let f = build(
            BASE,
            &[
                load_seg(PF_X, 0x1000, BASE, 0x100, 0x100),
                load_seg(PF_W, 0x1000, BASE + 0xff, 0x10, 0x10),
            ],
            0x1200,
        );
        assert_eq!(plan(&f, WIN), Err(ElfError::Overlap(0, 1)));
        let segs = [
            load_seg(PF_X, 0x1000, BASE, 0x100, 0x200),
            load_seg(PF_W, 0x1000, BASE + 0x1000, 0x10, 0x10),
        ];
        // Entry past the text's file bytes, in data, below the window.
        for entry in [BASE + 0x100, BASE + 0x1000, BASE - 4, 0] {
            let f = build(entry, &segs, 0x1200);
            assert_eq!(plan(&f, WIN), Err(ElfError::EntryOutsideText(entry)));
        }
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let g = good();
        for n in 0..g.len() {
            let _ = plan(&g[..n], WIN);
        }
        for i in 0..(64 + 2 * 56) {
            for bit in 0..8 {
                let mut f = g.clone();
                f[i] ^= 1 << bit;
                if let Ok(p) = plan(&f, WIN) {
                    let mut dest = vec![0u8; WIN.size as usize];
                    load(&f, &p, &mut dest).unwrap();
                }
            }
        }
    }
}
