//! What socket2 and nix do not wrap: the socket option `TCP_LINGER2` (tcp(7)) and
//! `connect(AF_UNSPEC)` (tcp_disconnect).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// `setsockopt(IPPROTO_TCP, TCP_LINGER2, secs)`: how long an orphaned socket stays in
/// FIN_WAIT_2 (0: `net.ipv4.tcp_fin_timeout`; < 0: not at all — the kernel closes it as soon
/// as its FIN is acknowledged, tcp_rcv_state_process).
pub(crate) fn set_tcp_linger2(sock: &impl AsRawFd, secs: i32) -> io::Result<()> {
    let val: libc::c_int = secs;
    // SAFETY: the fd is open for the borrow's lifetime; `val` is a live c_int and the length
    // passed is exactly its size, which is what the kernel reads for TCP_LINGER2.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_LINGER2,
            std::ptr::addr_of!(val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `connect(2)` to an address of family `AF_UNSPEC`: on a TCP socket, tcp_disconnect()
/// (an established connection is answered with RST and the socket becomes unconnected).
pub(crate) fn disconnect(sock: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: sockaddr is plain old data, so all-zero is a valid value of it.
    let mut addr: libc::sockaddr = unsafe { std::mem::zeroed() };
    addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: the fd is open for the borrow's lifetime; `addr` is a live sockaddr and the
    // length passed is exactly its size.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            std::ptr::addr_of!(addr),
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn linger2_set_and_read_back() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let s = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        super::set_tcp_linger2(&s, -1).expect("setsockopt");
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as above, reading back into a live c_int of the given length.
        let rc = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::IPPROTO_TCP,
                libc::TCP_LINGER2,
                std::ptr::addr_of_mut!(v).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(v, -1);
    }
}
