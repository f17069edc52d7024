//! The hidden `--serve` entry point: the server side of a cross-process pair, run
//! in the child that `ringbench --cross-process` starts.
//!
//! ```text
//! ringbench --serve NAME [--cpu N]
//! ```
//!
//! The descriptors the server needs arrive as its stdin, stdout and fd 3 (see each
//! contender's module). Exit status: 0 after the stop message, 2 for bad arguments
//! or descriptors, 1 when serving failed; the reason goes to stderr.

use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use mkipc_sys::linux::pin_current_thread;

use super::{XP_ALL, XpContender};

/// The first argument that selects the server entry point.
pub const SERVE_FLAG: &str = "--serve";

/// Why a server failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ServeError {
    /// The arguments are wrong.
    Usage(String),
    /// A handed-over descriptor is missing or of the wrong kind.
    Handover {
        /// The descriptor number.
        fd: i32,
        /// What it is for.
        role: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
    /// Serving failed.
    Failed(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Usage(m) => write!(f, "{m}"),
            ServeError::Handover {
                fd,
                role,
                expected,
                found,
            } => write!(f, "fd {fd} must be {expected} ({role}), but it is {found}"),
            ServeError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// What `--serve` was asked to do.
#[derive(Debug)]
pub struct ServeArgs {
    /// The contender to serve.
    pub contender: &'static XpContender,
    /// The CPU to pin to.
    pub cpu: Option<usize>,
}

/// Parses the arguments after [`SERVE_FLAG`].
pub fn parse(args: &[String]) -> Result<ServeArgs, ServeError> {
    let names = || {
        XP_ALL
            .iter()
            .map(|c| c.server)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut args = args.iter();
    let name = args.next().ok_or_else(|| {
        ServeError::Usage(format!(
            "{SERVE_FLAG} needs a contender name; choose from {}",
            names()
        ))
    })?;
    let contender = XP_ALL.iter().find(|c| c.server == name).ok_or_else(|| {
        ServeError::Usage(format!(
            "no cross-process server named `{name}`; choose from {}",
            names()
        ))
    })?;
    let mut cpu = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cpu" => {
                let v = args
                    .next()
                    .ok_or_else(|| ServeError::Usage("--cpu needs a CPU number".into()))?;
                cpu = Some(v.parse().map_err(|_| {
                    ServeError::Usage(format!("--cpu needs a CPU number, got `{v}`"))
                })?);
            }
            other => {
                return Err(ServeError::Usage(format!(
                    "unknown argument `{other}` after {SERVE_FLAG} {name}"
                )));
            }
        }
    }
    Ok(ServeArgs { contender, cpu })
}

/// Runs the server named in `args` (the arguments after [`SERVE_FLAG`]).
pub fn main(args: &[String]) -> ExitCode {
    let parsed = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "ringbench {SERVE_FLAG}: {e}\n(this is the server side of \
                 `ringbench --cross-process`, which starts it with the shared memory and \
                 descriptors it needs)"
            );
            return ExitCode::from(2);
        }
    };
    let name = parsed.contender.server;
    // SAFETY: getppid has no preconditions.
    PARENT.store(unsafe { libc::getppid() }, Ordering::Relaxed);
    let result = match parsed.cpu.map(pin_current_thread).transpose() {
        Ok(_) => (parsed.contender.serve)(),
        Err(e) => Err(ServeError::Failed(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (ServeError::Usage(_) | ServeError::Handover { .. })) => {
            eprintln!(
                "ringbench {SERVE_FLAG} {name}: {e}\n(this is the server side of \
                 `ringbench --cross-process`, which hands it these descriptors)"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ringbench {SERVE_FLAG} {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The process that started this server.
static PARENT: AtomicI32 = AtomicI32::new(0);

/// Spins between two checks that the parent still lives.
const PARENT_CHECK_EVERY: u32 = 1 << 20;

/// Whether the process that started this server is still its parent (a server
/// whose parent died is re-parented).
pub(super) fn parent_alive() -> bool {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    parent == PARENT.load(Ordering::Relaxed)
}

/// Spins until `poll` yields. The wait is bounded by the parent's life: the parent
/// kills a server that stops answering, and a server whose parent is gone gives up.
#[inline(always)]
pub(super) fn spin_until<T>(
    mut poll: impl FnMut() -> Result<Option<T>, ServeError>,
) -> Result<T, ServeError> {
    let mut spins: u32 = 0;
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(PARENT_CHECK_EVERY) && !parent_alive() {
            return Err(ServeError::Failed(
                "the client process is gone; giving up".into(),
            ));
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<ServeArgs, ServeError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_names_and_cpus() {
        let a = parse_strs(&["mkipc-spsc", "--cpu", "1"]).unwrap();
        assert_eq!(a.contender.name, "mkipc-spsc/xp");
        assert_eq!(a.cpu, Some(1));
        assert_eq!(parse_strs(&["floor"]).unwrap().cpu, None);
    }

    #[test]
    fn bad_arguments_name_the_problem() {
        let err = |args: &[&str]| parse_strs(args).unwrap_err().to_string();
        assert!(err(&[]).contains("needs a contender name"));
        assert!(err(&[]).contains("mkipc-spsc"));
        assert!(err(&["nope"]).contains("`nope`"));
        assert!(err(&["floor/xp"]).contains("`floor/xp`"));
        assert!(err(&["floor", "--cpu"]).contains("--cpu needs"));
        assert!(err(&["floor", "--cpu", "one"]).contains("`one`"));
        assert!(err(&["floor", "--frob"]).contains("`--frob`"));
    }
}
