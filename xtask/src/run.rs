//! Running commands with clear failure messages.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo ARGS` in the workspace root, through the rustup proxy so that
/// `+toolchain` arguments work.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args).current_dir(root());
    cmd
}

/// Runs a command and turns a failure into a message naming it.
pub trait StatusOk {
    /// Runs to completion; `Err` names `what` and how it failed.
    fn status_ok(&mut self, what: &str) -> Result<(), String>;
}

impl StatusOk for Command {
    fn status_ok(&mut self, what: &str) -> Result<(), String> {
        let shown = format!("{self:?}");
        match self.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{what} failed ({s}); command: {shown}")),
            Err(e) => Err(format!("{what}: cannot start {shown}: {e}")),
        }
    }
}
