//! What client and server share: an anonymous memory file (memfd) both map,
//! eventfds, and the server's checks that the descriptors it was handed are what
//! its contender needs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;

use mkipc::Region;
use mkipc_sys::linux::map_file;

use super::XpError;
use super::serve::ServeError;

/// A memfd of `len` zero bytes mapped here; returns the file (to hand to the
/// server) and the mapping.
pub fn shared_memory(len: usize) -> Result<(File, Region), XpError> {
    let setup = |what| move |source| XpError::Setup { what, source };
    // SAFETY: the name is a NUL-terminated literal; memfd_create reads nothing else.
    let fd = unsafe { libc::memfd_create(c"ringbench-xp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(setup("creating the shared memfd")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: a non-negative result is a new descriptor nobody else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let region = map_file(&file, len).map_err(setup("mapping the shared memfd"))?;
    Ok((file, region))
}

/// A new eventfd (counter zero, blocking) as a file: `write` of 8 bytes adds,
/// `read` of 8 bytes waits for non-zero and resets.
pub fn eventfd() -> Result<File, XpError> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(XpError::Setup {
            what: "creating an eventfd",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a non-negative result is a new descriptor nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Adds one to an eventfd's counter.
pub fn ring(bell: &mut File) -> io::Result<()> {
    bell.write_all(&1u64.to_ne_bytes())
}

/// Blocks until an eventfd's counter is non-zero, and resets it.
pub fn wait(bell: &mut File) -> io::Result<()> {
    let mut v = [0u8; 8];
    bell.read_exact(&mut v)
}

/// A duplicate of `fd` for the server's [`Handover`](super::Handover) (the parent keeps its own).
pub fn dup(fd: &impl AsFd, what: &'static str) -> Result<OwnedFd, XpError> {
    fd.as_fd()
        .try_clone_to_owned()
        .map_err(|source| XpError::Setup { what, source })
}

/// What a handed-over descriptor must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FdKind {
    /// The shared memory file (a memfd or a file under /dev/shm).
    SharedMemory,
    /// One end of a pipe.
    Pipe,
    /// A Unix socket.
    Socket,
    /// An eventfd.
    EventFd,
}

impl FdKind {
    fn name(self) -> &'static str {
        match self {
            FdKind::SharedMemory => "a shared memory file",
            FdKind::Pipe => "a pipe",
            FdKind::Socket => "a Unix socket",
            FdKind::EventFd => "an eventfd",
        }
    }
}

/// What `/proc/self/fd/N` says the descriptor is.
fn describe(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Takes ownership of the server's descriptor `fd` (0, 1 or 3), checking that it
/// is open and of `kind`; `role` names it in errors.
pub fn take_fd(fd: RawFd, kind: FdKind, role: &'static str) -> Result<File, ServeError> {
    let mismatch = |found: String| ServeError::Handover {
        fd,
        role,
        expected: kind.name(),
        found,
    };
    // SAFETY: F_GETFD reads the descriptor's flags; no pointers.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(mismatch("nothing (the descriptor is closed)".into()));
    }
    // SAFETY: `fd` is open (checked above); it was handed to this process for this
    // role alone, and nothing else in the process owns or uses it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let meta = file
        .metadata()
        .map_err(|e| mismatch(format!("unreadable ({e})")))?;
    let t = meta.file_type();
    let ok = match kind {
        FdKind::SharedMemory => t.is_file() && meta.len() > 0,
        FdKind::Pipe => t.is_fifo(),
        FdKind::Socket => t.is_socket(),
        FdKind::EventFd => describe(fd) == "anon_inode:[eventfd]",
    };
    if ok {
        Ok(file)
    } else {
        let what = describe(fd);
        Err(mismatch(if t.is_file() && meta.len() == 0 {
            format!("an empty file ({what})")
        } else {
            what
        }))
    }
}

/// Maps the whole shared memory file the server was handed.
pub fn map_handed(file: &File) -> Result<Region, ServeError> {
    let len = file
        .metadata()
        .map_err(|e| ServeError::Failed(format!("cannot stat the shared memory file: {e}")))?
        .len();
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_SHARED)
        .ok_or_else(|| {
            ServeError::Failed(format!(
                "the shared memory file holds {len} bytes, more than the {MAX_SHARED} \
                 any cross-process contender uses"
            ))
        })?;
    map_file(file, len)
        .map_err(|e| ServeError::Failed(format!("cannot map the shared memory file: {e}")))
}

/// The largest shared memory file a server maps.
const MAX_SHARED: usize = 1 << 20;
