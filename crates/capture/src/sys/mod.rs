//! The crate's only `unsafe`: system calls that neither `nix` nor `std` wrap.
#![allow(unsafe_code)]

use std::io;

/// Put the calling thread under `SCHED_FIFO` at `priority` (sched(7)).
///
/// Why: the experiments promise ±1 ms between a send and a close. On a loaded machine (a
/// compiler on every core), a normal thread that wakes from its sleep can wait several ms for a
/// CPU; a real-time thread preempts normal ones at once. The only busy loop these threads run
/// is the ≤200 µs spin before a deadline, and the kernel's RT throttling
/// (`kernel.sched_rt_runtime_us`) bounds the worst case anyway.
pub(crate) fn set_fifo_priority(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `sched_setscheduler` reads one `sched_param` through the pointer, which points to
    // a live, initialized local for the duration of the call. pid 0 means the calling thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
