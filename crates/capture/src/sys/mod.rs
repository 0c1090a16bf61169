//! The crate's only `unsafe`: system calls that neither `nix` nor `std` wrap
//! (`sched_setscheduler`, the TUNSETIFF ioctl, the ring-less capture socket of `packet.rs`).
#![allow(unsafe_code)]

use std::io;

pub(crate) mod packet;
pub(crate) mod perf;

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

/// `struct ifreq` as TUNSETIFF reads it: the name, then `ifr_flags` at the start of the union.
/// The kernel copies `sizeof(struct ifreq)` = 40 bytes (16 + the 24-byte union on 64-bit
/// Linux; 32 on 32-bit), so the padding makes the buffer at least that long.
#[repr(C)]
struct IfreqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

// The kernel reads at least the real `struct ifreq`: the buffer must not be shorter.
const _: () = assert!(std::mem::size_of::<IfreqFlags>() >= std::mem::size_of::<libc::ifreq>());

/// Attach the open `/dev/net/tun` file `fd` to a new TUN device called `name`
/// (`IFF_TUN | IFF_NO_PI`: each read/write is one bare IP packet). The device is created in
/// the network namespace the file was opened in and disappears when the file is closed.
pub(crate) fn tun_set_iff(fd: std::os::fd::BorrowedFd<'_>, name: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name must be 1..15 bytes without NUL",
        ));
    }
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        // IFF_TUN | IFF_NO_PI = 0x1001 fits a c_short.
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    for (dst, src) in req.name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` through the pointer; `req` is a
    // live, fully initialized, NUL-terminated (checked above, zero padded) buffer at least as
    // large as `struct ifreq` (checked at compile time) for the duration of the call. `fd` is
    // a valid open file borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfreqFlags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An `AF_PACKET`/`SOCK_RAW` socket for every protocol (`ETH_P_ALL`), bound to interface
/// `ifindex` of the calling thread's namespace, non-blocking. A read is one whole frame as it
/// crossed that interface (in either direction); a write sends one frame out of it.
pub(crate) fn packet_socket_bound(ifindex: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain integer arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(proto),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value to start from.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: bind reads `size_of::<sockaddr_ll>()` bytes from a live, initialised local.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}
