//! A capture socket without libpcap's ring: `AF_PACKET`/`SOCK_RAW`, a classic BPF filter,
//! one `recvmsg` per frame with its timestamp (`SO_TIMESTAMPNS`) and its direction.
//!
//! Why: libpcap maps a ring (`PACKET_RX_RING`), and setting up or tearing down a ring makes
//! the kernel wait for an RCU grace period (`synchronize_net` in `packet_set_ring`): 8–40 ms
//! of latency on a busy machine, on every fresh run's critical path, for a capture of about
//! ten frames. A plain socket, hooked once at bind, pays no such wait to open.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// An unbound `AF_PACKET` socket (protocol 0: it sees nothing until [`bind_all`], so the
/// filter is in place before the first frame and binding hooks it only once), non-blocking.
pub(crate) fn socket_unbound() -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set an integer socket option.
pub(crate) fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Attach a classic BPF program (`SO_ATTACH_FILTER`).
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, program: &[BpfInsn]) -> io::Result<()> {
    let mut insns: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: the kernel copies `prog.len` instructions from `prog.filter`, which points into
    // `insns`, alive and unmoved until after the call; `prog` itself is a live local.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bind to every protocol (`ETH_P_ALL`) on interface `ifindex`: from here on the socket
/// receives each frame that crosses it, in both directions.
pub(crate) fn bind_all(fd: BorrowedFd<'_>, ifindex: i32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value to start from.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: bind reads `size_of::<sockaddr_ll>()` bytes from a live, initialised local.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One frame read by [`recv_frame`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo {
    /// Bytes copied into the buffer.
    pub caplen: usize,
    /// Length of the frame on the wire.
    pub len: usize,
    /// The kernel's copy of a frame this host sent (`PACKET_OUTGOING`).
    pub outgoing: bool,
    /// Receive timestamp (CLOCK_REALTIME): seconds, nanoseconds.
    pub ts: (i64, i64),
}

/// Read one frame into `buf` without blocking; `Ok(None)` when none is queued.
pub(crate) fn recv_frame(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<FrameInfo>> {
    // SAFETY: all-zero is a valid sockaddr_ll and msghdr.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    // Room for one SCM_TIMESTAMPNS (a timespec) with its header, u64-aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` points to a live local (or `buf`) of the length given
    // next to it, all of which outlive the call; the kernel writes at most those lengths.
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(None),
            _ => Err(e),
        };
    }
    let len = usize::try_from(n).unwrap_or(0);
    let mut ts = None;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel just filled, within
    // `msg.msg_controllen`; each header they return points into `control`. The data of an
    // SCM_TIMESTAMPNS message is one `timespec`, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                ts = Some((t.tv_sec, t.tv_nsec));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let ts = match ts {
        Some(t) => t,
        // SO_TIMESTAMPNS is set at open, so the kernel always attaches one; should it not,
        // the time of reading is the next best.
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (
                i64::try_from(now.as_secs()).unwrap_or(0),
                i64::from(now.subsec_nanos()),
            )
        }
    };
    Ok(Some(FrameInfo {
        caplen: len.min(buf.len()),
        len,
        outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
        ts,
    }))
}

/// The kernel's counters since the previous call (`PACKET_STATISTICS` resets them):
/// frames that passed the filter, and those dropped for want of buffer space.
pub(crate) fn take_stats(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live local `st` and updates
    // `len`, also a live local.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok((st.tp_packets, st.tp_drops))
    } else {
        Err(io::Error::last_os_error())
    }
}
