//! Exit codes: a public interface that scripts and CI rely on (also listed in the README).

/// Namespace for documented exit codes.
#[derive(Debug)]
pub enum Exit {}

impl Exit {
    /// Everything held (`analyze`: the input was read; `run`: every expectation held).
    pub const OK: u8 = 0;
    /// A scenario ran but an expectation failed.
    pub const MISMATCH: u8 = 1;
    /// Unreadable input, bad usage or an invalid scenario; also missing privileges for a
    /// live run (one line says what is missing).
    pub const USAGE: u8 = 2;
    /// `run`: no scenario failed, but one was inconclusive: every run of it missed its
    /// timing, also when tried again at the end of the suite (the machine was too busy to
    /// judge the kernel). A failure elsewhere wins: 1.
    pub const INCONCLUSIVE: u8 = 3;
    /// `run --kselftest` only: this environment cannot run the tests (no namespaces, no
    /// privileges, no QEMU) — kselftest's skip code, so kernel CI counts it as skipped.
    pub const KSELFTEST_SKIP: u8 = 4;
    /// Interrupted (Ctrl-C, SIGTERM or SIGHUP: one path) after partial results were saved.
    pub const INTERRUPTED: u8 = 130;
}
