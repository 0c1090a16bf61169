//! Private, anonymous network namespaces.
//!
//! A network namespace belongs to a *thread*, not to the process: `unshare(CLONE_NEWNET)` and
//! `setns(2)` change only the calling thread (setns(2), network_namespaces(7)). So a
//! [`Netns`] is created on a short-lived helper thread, which brings `lo` up and opens
//! `/proc/thread-self/ns/net`; the open file keeps the namespace alive after the helper exits.
//! Work runs in the namespace on fresh threads that `setns` first ([`Netns::spawn`],
//! [`Netns::run`]); the caller's thread (and the process's main thread) never changes namespace.
//!
//! The namespace is anonymous: it is never named with `ip netns add` and never bind-mounted,
//! so the kernel frees it when the last reference is gone: the [`Netns`] fd, every thread that
//! entered it, and every socket created in it (sockets pin their namespace). Nothing outlives
//! the process, whether it ends normally, by panic, or by Ctrl-C.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::thread::{self, JoinHandle};

use nix::errno::Errno;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// Path of the calling thread's network namespace.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Why a namespace could not be created, entered or configured.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The process lacks a capability. The CLI maps this to "unsuitable environment".
    #[error("{op} failed: permission denied (needs {needs}; run as root or grant the capability)")]
    PermissionDenied {
        /// The refused operation, e.g. `unshare(CLONE_NEWNET)`.
        op: &'static str,
        /// The capability that is missing.
        needs: &'static str,
    },
    /// A system call failed for another reason.
    #[error("{op} failed: {source}")]
    Sys {
        /// The failing operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bringing `lo` up was refused by the kernel (netlink error reply).
    #[error("bringing lo up via netlink RTM_NEWLINK: {0}")]
    LinkUp(Errno),
    /// A thread meant to be inside the namespace is not (defence before writing sysctls).
    #[error("thread is in netns {actual}, expected {expected}")]
    WrongNamespace {
        /// Inode of the namespace we set up.
        expected: u64,
        /// Inode of the namespace the thread is in.
        actual: u64,
    },
    /// A sysctl name that is not a per-namespace `net.*` key, or contains path tricks.
    #[error("sysctl `{name}` rejected: {reason}")]
    BadSysctl {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Reading or writing a sysctl inside the namespace failed.
    #[error("sysctl {name}: {source}")]
    Sysctl {
        /// The sysctl name.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The value read back differs from the value written.
    #[error("sysctl {name}: wrote {wrote:?} but reads back {read:?}")]
    SysctlMismatch {
        /// The sysctl name.
        name: String,
        /// The value written.
        wrote: String,
        /// The value read back.
        read: String,
    },
    /// A thread running in the namespace panicked.
    #[error("thread `{name}` in the namespace panicked: {message}")]
    Panicked {
        /// The thread's name.
        name: String,
        /// The panic payload, if it was a string.
        message: String,
    },
}

impl NetnsError {
    fn sys(op: &'static str, needs: &'static str) -> impl FnOnce(Errno) -> NetnsError {
        move |e| match e {
            Errno::EPERM | Errno::EACCES => NetnsError::PermissionDenied { op, needs },
            e => NetnsError::Sys {
                op,
                source: io::Error::from(e),
            },
        }
    }

    /// True when the failure is a missing privilege (the environment, not the code, is at fault).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, NetnsError::PermissionDenied { .. })
    }
}

/// An anonymous network namespace with `lo` up. Dropping it releases the namespace once no
/// thread or socket uses it any more.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    inode: u64,
}

impl Netns {
    /// Create a fresh namespace and bring its `lo` up (which also gives it 127.0.0.1/8 and ::1).
    pub fn new() -> Result<Netns, NetnsError> {
        let helper = thread::Builder::new()
            .name("tcplab-netns-new".into())
            .spawn(|| -> Result<Netns, NetnsError> {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(NetnsError::sys("unshare(CLONE_NEWNET)", "CAP_SYS_ADMIN"))?;
                let file = File::open(THREAD_NETNS).map_err(|source| NetnsError::Sys {
                    op: "open /proc/thread-self/ns/net",
                    source,
                })?;
                let inode = inode_of(&file)?;
                set_lo_up()?;
                Ok(Netns {
                    fd: file.into(),
                    inode,
                })
            })
            .map_err(|source| NetnsError::Sys {
                op: "spawning the namespace thread",
                source,
            })?;
        join_named(helper, "tcplab-netns-new")?
    }

    /// A new fd of the namespace (for `IFLA_NET_NS_FD`: moving an interface into it).
    pub(crate) fn dup_fd(&self) -> Result<OwnedFd, NetnsError> {
        self.fd.try_clone().map_err(|source| NetnsError::Sys {
            op: "dup(netns fd)",
            source,
        })
    }

    /// Inode number of the namespace (what `readlink /proc/PID/ns/net` shows as `net:[N]`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Spawn a thread named `name` that enters the namespace, then runs `f`.
    ///
    /// Returns only after the thread has entered the namespace, so a `setns` failure is
    /// reported here and `f` never runs outside the namespace.
    pub fn spawn<F, T>(&self, name: &str, f: F) -> Result<NsThread<T>, NetnsError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(name, Priority::Normal, f)
    }

    /// [`Netns::spawn`] with a scheduling priority for the thread (see [`Priority`]).
    pub fn spawn_with<F, T>(
        &self,
        name: &str,
        priority: Priority,
        f: F,
    ) -> Result<NsThread<T>, NetnsError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let fd = self.fd.try_clone().map_err(|source| NetnsError::Sys {
            op: "dup(netns fd)",
            source,
        })?;
        let inode = self.inode;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(), NetnsError>>(1);
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let entered = enter(&fd, inode).and_then(|()| priority.apply());
                drop(fd);
                let ok = entered.is_ok();
                // The receiver lives until it got this message; a send error cannot happen.
                let _ = tx.send(entered);
                ok.then(f)
            })
            .map_err(|source| NetnsError::Sys {
                op: "spawning a namespace thread",
                source,
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(NsThread {
                handle,
                name: name.to_owned(),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            // The thread died before reporting: only a panic inside `enter` could do that.
            Err(_) => match handle.join() {
                Err(p) => Err(panicked(name, p)),
                Ok(_) => Err(NetnsError::Sys {
                    op: "setns(CLONE_NEWNET)",
                    source: io::Error::other("namespace thread ended without reporting"),
                }),
            },
        }
    }

    /// Run `f` on a new thread inside the namespace and wait for it. `f` may borrow.
    pub fn run<F, T>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let fd = self.fd.try_clone().map_err(|source| NetnsError::Sys {
            op: "dup(netns fd)",
            source,
        })?;
        let inode = self.inode;
        thread::scope(|s| {
            let h = thread::Builder::new()
                .name("tcplab-netns-run".into())
                .spawn_scoped(s, move || -> Result<T, NetnsError> {
                    enter(&fd, inode)?;
                    drop(fd);
                    Ok(f())
                })
                .map_err(|source| NetnsError::Sys {
                    op: "spawning a namespace thread",
                    source,
                })?;
            match h.join() {
                Ok(r) => r,
                Err(p) => Err(panicked("tcplab-netns-run", p)),
            }
        })
    }

    /// Write a per-namespace sysctl, e.g. `set_sysctl("net.ipv4.tcp_no_metrics_save", "1")`,
    /// from a thread inside the namespace, and read it back.
    ///
    /// `/proc/sys/net` resolves against the *writing thread's* namespace, so this never touches
    /// the host's value (checked by `netns_sysctl_is_private`). Only `net.*` names are accepted.
    pub fn set_sysctl(&self, name: &str, value: &str) -> Result<(), NetnsError> {
        let path = sysctl_path(name)?;
        let inode = self.inode;
        self.run(|| -> Result<(), NetnsError> {
            // Defence in depth: never write unless this thread is provably in our namespace.
            let actual = current_inode()?;
            if actual != inode {
                return Err(NetnsError::WrongNamespace {
                    expected: inode,
                    actual,
                });
            }
            let err = |source| NetnsError::Sysctl {
                name: name.to_owned(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(err)?;
            f.write_all(value.as_bytes()).map_err(err)?;
            drop(f);
            let read = read_sysctl_file(&path).map_err(err)?;
            if norm(&read) != norm(value) {
                return Err(NetnsError::SysctlMismatch {
                    name: name.to_owned(),
                    wrote: value.to_owned(),
                    read,
                });
            }
            Ok(())
        })?
    }

    /// Read a sysctl as seen from inside the namespace (trailing newline removed).
    pub fn sysctl(&self, name: &str) -> Result<String, NetnsError> {
        let path = sysctl_path(name)?;
        self.run(|| {
            read_sysctl_file(&path).map_err(|source| NetnsError::Sysctl {
                name: name.to_owned(),
                source,
            })
        })?
    }
}

/// Scheduling class of a thread spawned in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Inherit the caller's (normally SCHED_OTHER).
    #[default]
    Normal,
    /// SCHED_FIFO at a low real-time priority (needs CAP_SYS_NICE). For the server and client
    /// threads of an experiment: their wake-ups must not wait behind other processes, or a
    /// 100 ms close delay shows up as 103 ms on the wire. See `src/sys/mod.rs` for the reasoning.
    Realtime,
}

impl Priority {
    /// SCHED_FIFO priority used for [`Priority::Realtime`]: above every normal thread, below
    /// the kernel's own real-time threads (which use 50 and up).
    pub const FIFO_PRIORITY: i32 = 10;

    fn apply(self) -> Result<(), NetnsError> {
        match self {
            Priority::Normal => Ok(()),
            Priority::Realtime => {
                crate::sys::set_fifo_priority(Self::FIFO_PRIORITY).map_err(|source| {
                    match source.kind() {
                        io::ErrorKind::PermissionDenied => NetnsError::PermissionDenied {
                            op: "sched_setscheduler(SCHED_FIFO)",
                            needs: "CAP_SYS_NICE",
                        },
                        _ => NetnsError::Sys {
                            op: "sched_setscheduler(SCHED_FIFO)",
                            source,
                        },
                    }
                })
            }
        }
    }
}

/// True when this process may run threads under SCHED_FIFO ([`Priority::Realtime`]); probed
/// once, on a short-lived thread (root has it; an unprivileged user namespace does not).
pub fn realtime_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| {
        thread::Builder::new()
            .name("tcplab-rt-probe".into())
            .spawn(|| crate::sys::set_fifo_priority(Priority::FIFO_PRIORITY).is_ok())
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or(false)
    })
}

/// A thread running inside a [`Netns`].
#[derive(Debug)]
pub struct NsThread<T> {
    handle: JoinHandle<Option<T>>,
    name: String,
}

impl<T> NsThread<T> {
    /// Wait for the thread; a panic becomes [`NetnsError::Panicked`].
    pub fn join(self) -> Result<T, NetnsError> {
        match self.handle.join() {
            Ok(Some(t)) => Ok(t),
            // `spawn` only returns an NsThread after the thread entered the namespace, and then
            // the thread always runs `f`.
            Ok(None) => Err(NetnsError::Sys {
                op: "setns(CLONE_NEWNET)",
                source: io::Error::other("thread did not enter the namespace"),
            }),
            Err(p) => Err(panicked(&self.name, p)),
        }
    }

    /// True once the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// The calling thread's network namespace inode (for checks and tests).
pub fn current_inode() -> Result<u64, NetnsError> {
    let f = File::open(THREAD_NETNS).map_err(|source| NetnsError::Sys {
        op: "open /proc/thread-self/ns/net",
        source,
    })?;
    inode_of(&f)
}

fn inode_of(f: &File) -> Result<u64, NetnsError> {
    f.metadata()
        .map(|m| m.ino())
        .map_err(|source| NetnsError::Sys {
            op: "fstat(netns fd)",
            source,
        })
}

fn enter(fd: &OwnedFd, inode: u64) -> Result<(), NetnsError> {
    setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(NetnsError::sys("setns(CLONE_NEWNET)", "CAP_SYS_ADMIN"))?;
    let actual = current_inode()?;
    if actual != inode {
        return Err(NetnsError::WrongNamespace {
            expected: inode,
            actual,
        });
    }
    Ok(())
}

fn join_named<T>(h: JoinHandle<T>, name: &str) -> Result<T, NetnsError> {
    h.join().map_err(|p| panicked(name, p))
}

fn panicked(name: &str, p: Box<dyn std::any::Any + Send>) -> NetnsError {
    let message = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    NetnsError::Panicked {
        name: name.to_owned(),
        message,
    }
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_sysctl_file(path: &str) -> io::Result<String> {
    let mut s = String::new();
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s.trim_end_matches('\n').to_owned())
}

/// `net.ipv4.tcp_sack` -> `/proc/sys/net/ipv4/tcp_sack`. Only `net.*` keys: those are the
/// per-namespace ones (others would reach host-wide settings).
fn sysctl_path(name: &str) -> Result<String, NetnsError> {
    let bad = |reason| NetnsError::BadSysctl {
        name: name.to_owned(),
        reason,
    };
    let mut parts = name.split('.');
    if parts.next() != Some("net") {
        return Err(bad("only per-namespace `net.*` sysctls may be set"));
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return Err(bad("missing key after `net.`"));
    }
    for p in &rest {
        let ok = !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(bad("components must be [A-Za-z0-9_-]+"));
        }
    }
    Ok(format!("/proc/sys/net/{}", rest.join("/")))
}

// ---------------------------------------------------------------------------------------------
// Bringing `lo` up: one RTM_NEWLINK request on a NETLINK_ROUTE socket (rtnetlink(7)).
// Hand-built, because it is 32 bytes and a netlink crate would be a large dependency for it.
// `link.rs` reuses the request/ack plumbing for its TUN devices (up, addresses).
// ---------------------------------------------------------------------------------------------

pub(crate) const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
const IFF_UP: u32 = 0x1;

/// The request: `struct nlmsghdr` then `struct ifinfomsg { family, pad, type, index, flags,
/// change }`, native endian. `change = IFF_UP` means "only touch the UP bit".
pub(crate) fn newlink_up_msg(ifindex: i32, seq: u32) -> [u8; NLMSG_HDRLEN + IFINFOMSG_LEN] {
    let mut m = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN];
    let len = (NLMSG_HDRLEN + IFINFOMSG_LEN) as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: addressed to the kernel. ifi_family AF_UNSPEC (0), pad, ifi_type 0.
    m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    m[24..28].copy_from_slice(&IFF_UP.to_ne_bytes());
    m[28..32].copy_from_slice(&IFF_UP.to_ne_bytes());
    m
}

/// Parse the kernel's reply: an NLMSG_ERROR message whose `error` field is 0 (ack) or -errno.
#[cfg(test)]
fn parse_ack(reply: &[u8], seq: u32) -> Result<(), NetnsError> {
    lo_up_verdict(ack_errno(reply, seq)?)
}

/// The kernel's verdict on bringing `lo` up, as an error.
fn lo_up_verdict(errno: Option<Errno>) -> Result<(), NetnsError> {
    match errno {
        None => Ok(()),
        Some(Errno::EPERM | Errno::EACCES) => Err(NetnsError::PermissionDenied {
            op: "RTM_NEWLINK lo up",
            needs: "CAP_NET_ADMIN",
        }),
        Some(e) => Err(NetnsError::LinkUp(e)),
    }
}

/// The `error` field of the kernel's NLMSG_ERROR reply to request `seq`: `None` for an ack,
/// `Some(errno)` for a refusal. A reply that is not that message is malformed.
pub(crate) fn ack_errno(reply: &[u8], seq: u32) -> Result<Option<Errno>, NetnsError> {
    let field = |r: std::ops::Range<usize>| reply.get(r).map(|b| b.to_vec());
    let malformed = || NetnsError::Sys {
        op: "reading the netlink reply",
        source: io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply"),
    };
    let ty = field(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(malformed)?;
    let rseq = field(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(malformed)?;
    if ty != NLMSG_ERROR || rseq != seq {
        return Err(malformed());
    }
    let code = field(16..20)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or_else(malformed)?;
    Ok(match code {
        0 => None,
        c => Some(Errno::from_raw(c.saturating_neg())),
    })
}

/// Index of interface `name` in the calling thread's namespace.
pub(crate) fn ifindex(name: &str) -> Result<i32, NetnsError> {
    let ifindex = nix::net::if_::if_nametoindex(name)
        .map_err(NetnsError::sys("if_nametoindex", "CAP_NET_ADMIN"))?;
    i32::try_from(ifindex).map_err(|_| NetnsError::Sys {
        op: "if_nametoindex",
        source: io::Error::other("interface index out of range"),
    })
}

/// Send one request (with NLM_F_ACK, sequence number `seq`) on a fresh NETLINK_ROUTE socket
/// of the calling thread's namespace and return the kernel's verdict (see [`ack_errno`]).
pub(crate) fn netlink_request(msg: &[u8], seq: u32) -> Result<Option<Errno>, NetnsError> {
    let sock = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(NetnsError::sys(
        "socket(AF_NETLINK, NETLINK_ROUTE)",
        "CAP_NET_ADMIN",
    ))?;
    socket::sendto(
        sock.as_raw_fd(),
        msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(NetnsError::sys("sendto(netlink)", "CAP_NET_ADMIN"))?;
    let mut reply = [0u8; 1024];
    let n = socket::recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty())
        .map_err(NetnsError::sys("recv(netlink ack)", "CAP_NET_ADMIN"))?;
    ack_errno(reply.get(..n).unwrap_or_default(), seq)
}

/// Route metrics tcplab sets on the namespace's `local 127.0.0.1` route (what `ip route
/// change local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 …`
/// would add). The /32 route wins over `127.0.0.0/8`, so it is the one every IPv4 loopback
/// connection uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopbackRouteMetrics {
    /// `quickack 1`: no delayed ACKs on the path. Unlike TCP_QUICKACK on a socket, which the
    /// kernel clears again, a route metric holds for the whole connection.
    pub quickack: bool,
    /// `rto_min N ms` (locked, as `ip route` always sends it: tcp_rto_min() reads the route's
    /// value only when it is locked): the least retransmission timeout, and from Linux 6.7 on
    /// also the longest delayed ACK.
    pub rto_min_ms: Option<u32>,
}

impl LoopbackRouteMetrics {
    /// True when there is nothing to set (the route stays as the kernel made it).
    pub fn is_empty(&self) -> bool {
        !self.quickack && self.rto_min_ms.is_none()
    }
}

/// Turn delayed ACKs off for every connection over `127.0.0.1` in the calling thread's
/// namespace: the `quickack 1` route metric (see [`set_loopback_route_metrics_here`]).
pub fn set_loopback_quickack_here() -> Result<(), NetnsError> {
    set_loopback_route_metrics_here(LoopbackRouteMetrics {
        quickack: true,
        rto_min_ms: None,
    })
}

/// Set `metrics` on the `local 127.0.0.1` route of the calling thread's namespace (one
/// RTM_NEWROUTE replacing the route, so the metrics given are the route's only ones).
pub fn set_loopback_route_metrics_here(metrics: LoopbackRouteMetrics) -> Result<(), NetnsError> {
    let seq = 4;
    let msg = route_metrics_msg(ifindex("lo")?, seq, metrics);
    match netlink_request(&msg, seq)? {
        None => Ok(()),
        Some(Errno::EPERM | Errno::EACCES) => Err(NetnsError::PermissionDenied {
            op: "RTM_NEWROUTE local 127.0.0.1 (route metrics)",
            needs: "CAP_NET_ADMIN",
        }),
        Some(e) => Err(NetnsError::Sys {
            op: "RTM_NEWROUTE local 127.0.0.1 (route metrics)",
            source: io::Error::from(e),
        }),
    }
}

const RTM_NEWROUTE: u16 = 24;
const NLM_F_REPLACE: u16 = 0x100;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_KERNEL: u8 = 2;
const RT_SCOPE_HOST: u8 = 254;
const RTN_LOCAL: u8 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTAX_LOCK: u16 = 1;
const RTAX_RTO_MIN: u16 = 13;
const RTAX_QUICKACK: u16 = 15;

/// RTM_NEWROUTE with NLM_F_REPLACE: `rtmsg { AF_INET, dst_len 32, src_len 0, tos 0,
/// table local, proto kernel, scope host, type local, flags 0 }`, then RTA_DST, RTA_OIF,
/// RTA_PREFSRC and RTA_METRICS { RTAX_LOCK (rto_min's bit), RTAX_RTO_MIN, RTAX_QUICKACK }
/// (each only when set).
fn route_metrics_msg(lo: i32, seq: u32, metrics: LoopbackRouteMetrics) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDRLEN];
    m.extend_from_slice(&[
        libc::AF_INET as u8,
        32,
        0,
        0,
        RT_TABLE_LOCAL,
        RTPROT_KERNEL,
        RT_SCOPE_HOST,
        RTN_LOCAL,
    ]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    let attr = |m: &mut Vec<u8>, ty: u16, payload: &[u8]| {
        let len = 4 + payload.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(m.len() + (4 - len % 4) % 4, 0);
    };
    let localhost = [127, 0, 0, 1];
    attr(&mut m, RTA_DST, &localhost);
    attr(&mut m, RTA_OIF, &lo.to_ne_bytes());
    attr(&mut m, RTA_PREFSRC, &localhost);
    let mut metric = Vec::new();
    if let Some(ms) = metrics.rto_min_ms {
        attr(
            &mut metric,
            RTAX_LOCK,
            &(1u32 << RTAX_RTO_MIN).to_ne_bytes(),
        );
        attr(&mut metric, RTAX_RTO_MIN, &ms.to_ne_bytes());
    }
    if metrics.quickack {
        attr(&mut metric, RTAX_QUICKACK, &1u32.to_ne_bytes());
    }
    attr(&mut m, RTA_METRICS, &metric);
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWROUTE.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// Bring the calling thread's `lo` up.
fn set_lo_up() -> Result<(), NetnsError> {
    let seq = 1;
    let msg = newlink_up_msg(ifindex("lo")?, seq);
    lo_up_verdict(netlink_request(&msg, seq)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_map_to_proc_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.tcp_sack").expect("valid"),
            "/proc/sys/net/ipv4/tcp_sack"
        );
        assert_eq!(
            sysctl_path("net.ipv6.conf.lo.disable_ipv6").expect("valid"),
            "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
        );
        for bad in [
            "kernel.pid_max",
            "net",
            "net..x",
            "net.ipv4/../../x",
            "net.ipv4.a b",
            "",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn route_quickack_message_layout() {
        let quickack = LoopbackRouteMetrics {
            quickack: true,
            rto_min_ms: None,
        };
        let m = route_metrics_msg(1, 4, quickack);
        // 16 header + 12 rtmsg + dst 8 + oif 8 + prefsrc 8 + metrics (4 + 8).
        assert_eq!(m.len(), 64);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWROUTE);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 0x105);
        assert_eq!(&m[16..24], &[2, 32, 0, 0, 255, 2, 254, 2]);
        assert_eq!(&m[52..64], &[12, 0, 8, 0, 8, 0, 15, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn route_rto_min_message_locks_the_metric() {
        let m = route_metrics_msg(
            1,
            4,
            LoopbackRouteMetrics {
                quickack: true,
                rto_min_ms: Some(10),
            },
        );
        // 16 header + 12 rtmsg + dst 8 + oif 8 + prefsrc 8 + metrics (4 + 3 × 8).
        assert_eq!(m.len(), 80);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 80);
        // RTAX_LOCK with bit 13 (rto_min), RTAX_RTO_MIN = 10 ms, RTAX_QUICKACK = 1.
        assert_eq!(&m[52..56], &[28, 0, 8, 0]);
        assert_eq!(&m[56..64], &[8, 0, 1, 0, 0, 0x20, 0, 0]);
        assert_eq!(&m[64..72], &[8, 0, 13, 0, 10, 0, 0, 0]);
        assert_eq!(&m[72..80], &[8, 0, 15, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn newlink_message_layout() {
        let m = newlink_up_msg(1, 7);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 32);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 0x5);
        assert_eq!(u32::from_ne_bytes([m[8], m[9], m[10], m[11]]), 7);
        assert_eq!(i32::from_ne_bytes([m[20], m[21], m[22], m[23]]), 1);
        assert_eq!(u32::from_ne_bytes([m[24], m[25], m[26], m[27]]), IFF_UP);
    }

    #[test]
    fn netlink_ack_parsing() {
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse_ack(&ack, 3).is_ok());
        assert!(parse_ack(&ack, 4).is_err());
        ack[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        assert!(parse_ack(&ack, 3)
            .expect_err("EPERM")
            .is_permission_denied());
        ack[16..20].copy_from_slice(&(-19i32).to_ne_bytes());
        assert!(matches!(
            parse_ack(&ack, 3),
            Err(NetnsError::LinkUp(Errno::ENODEV))
        ));
        assert!(parse_ack(&ack[..10], 3).is_err());
    }
}
