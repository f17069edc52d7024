//! Shared memory for regions: a sealed memfd, a named file under /dev/shm, a
//! file on hugetlbfs, a physical window of /dev/mem, a PCI BAR resource file
//! (ivshmem) and a UIO map.
//!
//! Each constructor maps the memory shared and read-write and hands back a
//! [`SharedMemory`] that owns the file and the mapping; its [`Region`] handles
//! keep the mapping alive.
//!
//! A peer that can shrink a file mapped by us makes our next access to the lost
//! pages raise SIGBUS. A memfd sealed against shrinking and growing is immune
//! (and [`SharedMemory::from_memfd`] refuses one that is not sealed); a named
//! file is only as safe as the peer that can open it.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mkipc::{Region, WORD};

/// `statfs` magic of hugetlbfs (linux/magic.h).
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// Seals every memfd region carries: its size is fixed, and no more seals can be
/// added (so a peer cannot add a write seal either).
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// Why shared memory could not be created, opened or mapped.
#[derive(Debug)]
pub enum MemoryError {
    /// A system call failed while doing `what`.
    Io {
        /// What we were doing, naming the file.
        what: String,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// The length is zero or not a multiple of 8 bytes.
    BadLength(usize),
    /// A name with a `/` or a NUL byte, or empty.
    BadName(String),
    /// A memfd received from a peer lacks the shrink and grow seals.
    NotSealed {
        /// The seals found.
        seals: i32,
    },
    /// No hugetlbfs is mounted (or the path is not on one).
    NoHugetlbfs(String),
    /// A /dev/mem window whose offset is not page-aligned.
    Misaligned {
        /// The offset asked for.
        offset: u64,
        /// The page size.
        page: usize,
    },
    /// The path is not a PCI BAR resource file or UIO device.
    NotADevice(String),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::Io { what, source } => write!(f, "{what}: {source}"),
            MemoryError::BadLength(len) => write!(
                f,
                "a region of {len} bytes is impossible: use a non-zero multiple of {WORD}"
            ),
            MemoryError::BadName(name) => write!(
                f,
                "`{name}` is not a usable shared-memory name: use a non-empty name without `/` or NUL"
            ),
            MemoryError::NotSealed { seals } => write!(
                f,
                "the memfd is not sealed against shrink and grow (seals {seals:#x}): a peer could \
                 truncate it under our mapping; create it with SharedMemory::memfd"
            ),
            MemoryError::NoHugetlbfs(why) => write!(f, "{why}"),
            MemoryError::Misaligned { offset, page } => write!(
                f,
                "physical offset {offset:#x} is not a multiple of the {page}-byte page size"
            ),
            MemoryError::NotADevice(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for MemoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MemoryError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> MemoryError {
    let what = what.into();
    move |source| MemoryError::Io { what, source }
}

fn last_err(what: impl Into<String>) -> MemoryError {
    io_err(what)(io::Error::last_os_error())
}

/// Where a [`SharedMemory`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// An anonymous memfd, sealed against shrink and grow.
    Memfd,
    /// A named file under /dev/shm (or another tmpfs path).
    Shm(PathBuf),
    /// A file on a hugetlbfs mount.
    HugeTlb(PathBuf),
    /// A window of physical memory through /dev/mem.
    DevMem {
        /// Physical address of the window.
        offset: u64,
    },
    /// A PCI BAR resource file (`/sys/bus/pci/devices/.../resource2`).
    PciResource(PathBuf),
    /// Map `map` of a UIO device (`/dev/uioN`).
    Uio {
        /// The device.
        device: PathBuf,
        /// The map index.
        map: usize,
    },
}

/// A shared mapping and the file behind it.
#[derive(Debug)]
pub struct SharedMemory {
    region: Region,
    file: File,
    backing: Backing,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

fn check_len(len: usize) -> Result<(), MemoryError> {
    if len == 0 || !len.is_multiple_of(WORD) {
        return Err(MemoryError::BadLength(len));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<CString, MemoryError> {
    if name.is_empty() || name.contains('/') {
        return Err(MemoryError::BadName(name.to_string()));
    }
    CString::new(name).map_err(|_| MemoryError::BadName(name.escape_default().to_string()))
}

/// Maps `len` bytes of `file` from `offset`, shared and read-write.
fn map(file: &File, offset: u64, len: usize, what: &str) -> Result<Region, MemoryError> {
    super::region::map_range(file, offset, len, &[]).map_err(io_err(format!("cannot map {what}")))
}

impl SharedMemory {
    /// A new anonymous memfd of `len` bytes, zero-filled, sealed against shrink
    /// and grow. Pass [`SharedMemory::fd`] to the peer (over a Unix socket or by
    /// inheritance); it maps it with [`SharedMemory::from_memfd`].
    pub fn memfd(name: &str, len: usize) -> Result<SharedMemory, MemoryError> {
        check_len(len)?;
        let cname = check_name(name)?;
        // SAFETY: `cname` is a NUL-terminated string live for the call.
        let fd = unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(last_err(format!("cannot create memfd `{name}`")));
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(len as u64)
            .map_err(io_err(format!("cannot size memfd `{name}` to {len} bytes")))?;
        // SAFETY: F_ADD_SEALS takes an int argument; the fd is open.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
            return Err(last_err(format!("cannot seal memfd `{name}`")));
        }
        let region = map(&file, 0, len, &format!("memfd `{name}`"))?;
        Ok(SharedMemory {
            region,
            file,
            backing: Backing::Memfd,
        })
    }

    /// Maps a memfd received from the peer, whole, after checking that it is
    /// sealed against shrink and grow (else the peer could truncate it and make
    /// our accesses fault).
    pub fn from_memfd(fd: OwnedFd) -> Result<SharedMemory, MemoryError> {
        let file = File::from(fd);
        // SAFETY: F_GET_SEALS takes no argument; the fd is open.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 {
            return Err(last_err(
                "cannot read the seals of the received fd (is it a memfd?)",
            ));
        }
        let needed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        if seals & needed != needed {
            return Err(MemoryError::NotSealed { seals });
        }
        let len = file
            .metadata()
            .map_err(io_err("cannot stat the received memfd"))?
            .len();
        let len = usize::try_from(len).map_err(|_| MemoryError::BadLength(usize::MAX))?;
        check_len(len)?;
        let region = map(&file, 0, len, "the received memfd")?;
        Ok(SharedMemory {
            region,
            file,
            backing: Backing::Memfd,
        })
    }

    /// Creates `/dev/shm/NAME` with `len` zero bytes (fails if it exists).
    pub fn create_shm(name: &str, len: usize) -> Result<SharedMemory, MemoryError> {
        check_len(len)?;
        check_name(name)?;
        let path = Path::new("/dev/shm").join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(format!("cannot create {}", path.display())))?;
        file.set_len(len as u64).map_err(io_err(format!(
            "cannot size {} to {len} bytes",
            path.display()
        )))?;
        let region = map(&file, 0, len, &path.display().to_string())?;
        Ok(SharedMemory {
            region,
            file,
            backing: Backing::Shm(path),
        })
    }

    /// Opens the existing `/dev/shm/NAME` and maps all of it.
    pub fn open_shm(name: &str) -> Result<SharedMemory, MemoryError> {
        check_name(name)?;
        Self::open_file(Path::new("/dev/shm").join(name), Backing::Shm)
    }

    /// Creates `NAME` on the first hugetlbfs mount with `len` bytes rounded up
    /// to the huge page size; fails with [`MemoryError::NoHugetlbfs`] when none is
    /// mounted.
    pub fn create_hugetlbfs(name: &str, len: usize) -> Result<SharedMemory, MemoryError> {
        check_name(name)?;
        let mount = hugetlbfs_mount()?;
        Self::create_hugetlbfs_at(&mount.join(name), len)
    }

    /// Creates the file `path` (which must lie on hugetlbfs) with `len` bytes
    /// rounded up to the huge page size.
    pub fn create_hugetlbfs_at(path: &Path, len: usize) -> Result<SharedMemory, MemoryError> {
        check_len(len)?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let huge_page = hugetlbfs_page_size(dir)?;
        let len = len.next_multiple_of(huge_page);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(format!("cannot create {}", path.display())))?;
        let sized = file.set_len(len as u64).map_err(io_err(format!(
            "cannot size {} to {len} bytes (are huge pages reserved in /proc/sys/vm/nr_hugepages?)",
            path.display()
        )));
        let region = sized.and_then(|()| {
            map(
                &file,
                0,
                len,
                &format!(
                    "{} (are enough huge pages reserved in /proc/sys/vm/nr_hugepages?)",
                    path.display()
                ),
            )
        });
        match region {
            Ok(region) => Ok(SharedMemory {
                region,
                file,
                backing: Backing::HugeTlb(path.to_path_buf()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Maps `len` bytes of physical memory at `offset` through /dev/mem (root,
    /// and a kernel that allows the window: `CONFIG_STRICT_DEVMEM` refuses RAM).
    pub fn dev_mem(offset: u64, len: usize) -> Result<SharedMemory, MemoryError> {
        check_len(len)?;
        let page = page_size();
        if !offset.is_multiple_of(page as u64) {
            return Err(MemoryError::Misaligned { offset, page });
        }
        let file = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_SYNC)
            .open("/dev/mem")
            .map_err(io_err(
                "cannot open /dev/mem (needs root, or CAP_SYS_RAWIO)",
            ))?;
        let what = format!(
            "/dev/mem at {offset:#x}+{len:#x} (the kernel may forbid this window: \
             CONFIG_STRICT_DEVMEM, or boot with iomem=relaxed)"
        );
        let region = map(&file, offset, len, &what)?;
        Ok(SharedMemory {
            region,
            file,
            backing: Backing::DevMem { offset },
        })
    }

    /// Maps a whole PCI BAR resource file, as ivshmem exposes its shared memory
    /// (`/sys/bus/pci/devices/0000:00:04.0/resource2`).
    pub fn pci_resource(path: &Path) -> Result<SharedMemory, MemoryError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let index = name.strip_prefix("resource").unwrap_or("");
        let index = index.strip_suffix("_wc").unwrap_or(index);
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MemoryError::NotADevice(format!(
                "{} is not a PCI BAR resource file: expected a path like \
                 /sys/bus/pci/devices/0000:00:04.0/resource2",
                path.display()
            )));
        }
        Self::open_file(path.to_path_buf(), Backing::PciResource)
    }

    /// Maps map `map` of a UIO device (`/dev/uio0`), whose size the kernel
    /// publishes in `/sys/class/uio/uio0/maps/mapN/size`.
    pub fn uio(device: &Path, map_index: usize) -> Result<SharedMemory, MemoryError> {
        let name = device.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("uio") {
            return Err(MemoryError::NotADevice(format!(
                "{} is not a UIO device: expected a path like /dev/uio0",
                device.display()
            )));
        }
        let size_path = format!("/sys/class/uio/{name}/maps/map{map_index}/size");
        let text = std::fs::read_to_string(&size_path).map_err(io_err(format!(
            "cannot read the size of UIO map {map_index} ({size_path})"
        )))?;
        let text = text.trim();
        let len = usize::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|_| {
            MemoryError::NotADevice(format!("{size_path} holds `{text}`, not a hex size"))
        })?;
        check_len(len)?;
        let file = File::options()
            .read(true)
            .write(true)
            .open(device)
            .map_err(io_err(format!("cannot open {}", device.display())))?;
        // UIO selects map N by the mmap offset N pages.
        let offset = (map_index * page_size()) as u64;
        let region = map(
            &file,
            offset,
            len,
            &format!("{} map {map_index}", device.display()),
        )?;
        Ok(SharedMemory {
            region,
            file,
            backing: Backing::Uio {
                device: device.to_path_buf(),
                map: map_index,
            },
        })
    }

    fn open_file(
        path: PathBuf,
        backing: fn(PathBuf) -> Backing,
    ) -> Result<SharedMemory, MemoryError> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("cannot open {}", path.display())))?;
        let len = file
            .metadata()
            .map_err(io_err(format!("cannot stat {}", path.display())))?
            .len();
        let len = usize::try_from(len).map_err(|_| MemoryError::BadLength(usize::MAX))?;
        check_len(len)?;
        let region = map(&file, 0, len, &path.display().to_string())?;
        Ok(SharedMemory {
            region,
            file,
            backing: backing(path),
        })
    }

    /// A handle on the mapped region (clones share the mapping).
    pub fn region(&self) -> Region {
        self.region.clone()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Always false: a mapping is never empty.
    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// Where the memory comes from.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The file (to pass a memfd to the peer, say).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Removes the name of a /dev/shm or hugetlbfs file (the mapping stays).
    pub fn unlink(&self) -> Result<(), MemoryError> {
        match &self.backing {
            Backing::Shm(p) | Backing::HugeTlb(p) => {
                std::fs::remove_file(p).map_err(io_err(format!("cannot remove {}", p.display())))
            }
            _ => Ok(()),
        }
    }
}

/// The first hugetlbfs mount point in /proc/mounts.
pub fn hugetlbfs_mount() -> Result<PathBuf, MemoryError> {
    let mounts = std::fs::read_to_string("/proc/mounts")
        .map_err(io_err("cannot read /proc/mounts to find a hugetlbfs mount"))?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "hugetlbfs").then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .next()
        .ok_or_else(|| {
            MemoryError::NoHugetlbfs(
                "no hugetlbfs is mounted: mount one (`mount -t hugetlbfs none /dev/hugepages`) \
                 and reserve pages (`echo 64 > /proc/sys/vm/nr_hugepages`)"
                    .into(),
            )
        })
}

/// The huge page size of the hugetlbfs holding `dir`, or an error if it is not one.
fn hugetlbfs_page_size(dir: &Path) -> Result<usize, MemoryError> {
    use std::os::unix::ffi::OsStrExt;
    let cdir = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| MemoryError::BadName(dir.display().to_string()))?;
    // SAFETY: `statfs` is plain data for which all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cdir` is NUL-terminated and `st` writable, both live for the call.
    if unsafe { libc::statfs(cdir.as_ptr(), &mut st) } < 0 {
        return Err(last_err(format!("cannot statfs {}", dir.display())));
    }
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = i64::from(st.f_type as i64);
    if magic != HUGETLBFS_MAGIC {
        return Err(MemoryError::NoHugetlbfs(format!(
            "{} is not on hugetlbfs (filesystem magic {magic:#x}); use a hugetlbfs mount",
            dir.display()
        )));
    }
    Ok(usize::try_from(st.f_bsize)
        .unwrap_or(2 << 20)
        .max(page_size()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkipc::spsc::{self, Geometry};
    use std::io::Write;

    /// Says out loud (past the test harness's capture) why a test did not run.
    fn skip(test: &str, reason: impl fmt::Display) {
        let _ = writeln!(io::stderr(), "SKIPPED {test}: {reason}");
    }

    const G: Geometry = Geometry::new(8, 56);

    fn ring_round_trip(a: Region, b: Region) {
        let (mut tx, _) = spsc::channel(&a, 0, G).unwrap();
        let mut rx = spsc::Consumer::attach(b, 0).unwrap();
        tx.push(b"through shared memory").unwrap();
        let mut buf = [0u8; 56];
        let n = rx.pop(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"through shared memory");
    }

    #[test]
    fn memfd_is_sealed_and_shared_through_its_fd() {
        let len = G.ring_size().unwrap();
        let mem = SharedMemory::memfd("mkipc-test", len).unwrap();
        assert_eq!(mem.len(), len);
        let file = File::from(mem.fd().try_clone_to_owned().unwrap());
        assert!(file.set_len(len as u64 / 2).is_err(), "shrink is sealed");
        assert!(file.set_len(len as u64 * 2).is_err(), "grow is sealed");
        let peer = SharedMemory::from_memfd(file.into()).unwrap();
        ring_round_trip(mem.region(), peer.region());
    }

    #[test]
    fn an_unsealed_memfd_is_refused() {
        let name = CString::new("unsealed").unwrap();
        // SAFETY: `name` is NUL-terminated and live for the call.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fresh fd owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(4096).unwrap();
        let err = SharedMemory::from_memfd(file.into()).unwrap_err();
        assert!(matches!(err, MemoryError::NotSealed { .. }), "{err}");
        assert!(err.to_string().contains("truncate"));
    }

    #[test]
    fn named_shm_is_created_opened_and_unlinked() {
        let name = format!("mkipc-test-{}", std::process::id());
        let len = G.ring_size().unwrap();
        let a = SharedMemory::create_shm(&name, len).unwrap();
        let b = SharedMemory::open_shm(&name).unwrap();
        assert!(
            SharedMemory::create_shm(&name, len).is_err(),
            "create refuses an existing name"
        );
        ring_round_trip(a.region(), b.region());
        a.unlink().unwrap();
        assert!(SharedMemory::open_shm(&name).is_err());
    }

    #[test]
    fn bad_input_is_named() {
        assert!(matches!(
            SharedMemory::memfd("x", 0),
            Err(MemoryError::BadLength(0))
        ));
        assert!(matches!(
            SharedMemory::memfd("x", 12),
            Err(MemoryError::BadLength(12))
        ));
        assert!(matches!(
            SharedMemory::create_shm("a/b", 64),
            Err(MemoryError::BadName(_))
        ));
        assert!(matches!(
            SharedMemory::dev_mem(123, 4096),
            Err(MemoryError::Misaligned { offset: 123, .. })
        ));
        let e = SharedMemory::pci_resource(Path::new("/sys/bus/pci/devices/x/config")).unwrap_err();
        assert!(e.to_string().contains("resource2"), "{e}");
        let e = SharedMemory::uio(Path::new("/dev/null"), 0).unwrap_err();
        assert!(e.to_string().contains("/dev/uio0"), "{e}");
        let e =
            SharedMemory::create_hugetlbfs_at(Path::new("/tmp/mkipc-not-huge"), 4096).unwrap_err();
        assert!(e.to_string().contains("not on hugetlbfs"), "{e}");
    }

    #[test]
    fn hugetlbfs_region_where_mounted() {
        let name = format!("mkipc-test-{}", std::process::id());
        match SharedMemory::create_hugetlbfs(&name, 4096) {
            Ok(mem) => {
                mem.unlink().unwrap();
                assert!(mem.len() >= 4096);
                ring_round_trip(mem.region(), mem.region());
            }
            Err(e @ MemoryError::NoHugetlbfs(_)) => skip("hugetlbfs_region_where_mounted", e),
            Err(e @ MemoryError::Io { .. }) => skip(
                "hugetlbfs_region_where_mounted",
                format!("hugetlbfs is mounted but unusable here: {e}"),
            ),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn dev_mem_window_where_allowed() {
        // Read-only use of the first page (real-mode IVT/BIOS data: STRICT_DEVMEM
        // allows it); never written.
        match SharedMemory::dev_mem(0, 4096) {
            Ok(mem) => {
                let r = mem.region();
                r.load(0, std::sync::atomic::Ordering::Relaxed).unwrap();
                assert!(matches!(mem.backing(), Backing::DevMem { offset: 0 }));
            }
            Err(e) => skip("dev_mem_window_where_allowed", e),
        }
    }

    #[test]
    fn ivshmem_bar_where_present() {
        let Ok(devices) = std::fs::read_dir("/sys/bus/pci/devices") else {
            return skip("ivshmem_bar_where_present", "no /sys/bus/pci/devices");
        };
        let ivshmem = devices.flatten().map(|d| d.path()).find(|d| {
            let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
            read("vendor").trim() == "0x1af4" && read("device").trim() == "0x1110"
        });
        let Some(dev) = ivshmem else {
            return skip(
                "ivshmem_bar_where_present",
                "no ivshmem PCI device (vendor 0x1af4, device 0x1110) on this machine",
            );
        };
        let mem = SharedMemory::pci_resource(&dev.join("resource2")).unwrap();
        assert!(!mem.is_empty());
        let r = mem.region();
        r.load(0, std::sync::atomic::Ordering::Relaxed).unwrap();
    }
}
