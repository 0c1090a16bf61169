//! Ctrl-C, SIGTERM and SIGHUP, handled the same way from the first instruction of `main` to
//! the last: exit 130 ("interrupted"), or, in a command that [`claim`]s them, a flag it
//! checks so that finished work is kept first.
//!
//! The one handler (ctrlc's) needs a thread, and `run`/`sweep` may still have to enter a user
//! namespace, which only a single-threaded process can. So `main` first [`hold`]s the
//! signals (blocks them: one arriving now waits, pending), and the handler is installed, and
//! the signals released, once the command is past that point: at once for every other
//! command ([`install`]), after the namespace for `run` and `sweep` ([`claim`]). A signal in
//! between is delivered on release, not lost and not fatal (it used to exit 143).

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, OnceLock};

use crate::exit::Exit;

/// Set once a command has said it stops cleanly on a signal.
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// Raised by a signal after [`claim`].
static CANCEL: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static INSTALL: Once = Once::new();

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

fn cancel() -> &'static Arc<AtomicBool> {
    CANCEL.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Block the three signals (first thing in `main`): until [`install`], one waits, pending.
pub fn hold() {
    // Fails only for an invalid `how`; then the signals keep their default, as before.
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals()), None);
}

/// Install the handler (once) and release the held signals; a pending one is handled now.
/// Unclaimed, a signal exits 130 at once. Starts a thread: after any user-namespace entry.
pub fn install() {
    INSTALL.call_once(|| {
        let flag = Arc::clone(cancel());
        let installed = ctrlc::set_handler(move || {
            if CLAIMED.load(Ordering::SeqCst) {
                flag.store(true, Ordering::SeqCst);
            } else {
                std::process::exit(i32::from(Exit::INTERRUPTED));
            }
        });
        if let Err(e) = installed {
            eprintln!("tcplab: warning: Ctrl-C will not stop cleanly: {e}");
        }
    });
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&signals()), None);
}

/// For a command that keeps finished work on a signal: from now on a signal raises the
/// returned flag instead of exiting (also one that arrived while held).
pub fn claim() -> Arc<AtomicBool> {
    CLAIMED.store(true, Ordering::SeqCst);
    install();
    Arc::clone(cancel())
}
