//! A point-to-point link with a fixed one-way delay between two private namespaces.
//!
//! **Why.** On `lo` a segment is delivered within microseconds, so a simultaneous close (both
//! FINs in flight at once, RFC 9293 §3.6 case 3) needs the two `close(2)` calls aligned to a
//! few µs and stays a race. Across a link with a one-way delay `d`, each FIN is in flight for
//! `d`: two closes less than `d` apart cross every time. The kernel here has no `netem` qdisc,
//! so the delay is made in user space.
//!
//! **How.** [`DelayLink::new`] creates two anonymous namespaces ([`Netns`]): the *client side*
//! and the *server side*. Each gets a TUN device (`tun-c`, `tun-s`; `IFF_TUN | IFF_NO_PI`, so a
//! read or write on its fd is one bare IP packet), created from a thread inside that namespace
//! (a TUN device is born in the namespace the `/dev/net/tun` file was opened in). The devices
//! are brought up and numbered with point-to-point addresses from the documentation ranges
//! (RFC 5737, RFC 3849): `192.0.2.1` ⇄ `192.0.2.2` and `2001:db8::1` ⇄ `2001:db8::2`, each
//! with the peer as `IFA_ADDRESS`, so the kernel installs the /32 (/128) route to the peer.
//! IPv6 addresses are added with `IFA_F_NODAD`: usable at once, no duplicate address detection.
//!
//! A relay thread waits on both TUN fds with `ppoll(2)` (nanosecond timeout), stamps every
//! packet it reads with *due = now + delay* (± jitter, + a fault's extra delay; see
//! [`crate::impair`] for loss, jitter and targeted faults), and writes it to the other fd
//! when due. Each direction's queue is kept in due order; without jitter or faults it is a
//! plain FIFO (a real wire does not reorder either). The thread runs SCHED_FIFO when
//! allowed, so a busy machine does not add milliseconds to the delay
//! (the runner measures each packet's delay on the wire from the captures at both ends:
//! `tcplab_runner::timing::link_late_ns`).
//!
//! **Lifetime.** Dropping the [`DelayLink`] closes the wake pipe, the relay thread sees the
//! hang-up, closes both TUN fds (which deletes the devices: they are not persistent) and is
//! joined; then the namespaces go. Nothing is named or mounted, so nothing outlives the process.
//!
//! **Capture.** libpcap captures on `tun-c` in [`DelayLink::client_ns`]: it sees each packet
//! once (the client's packets as they leave, the server's as the relay delivers them), as raw
//! IP ([`crate::live::LINKTYPE_RAW`]). Timestamps are the client's view of the wire.
//!
//! ```no_run
//! use std::time::Duration;
//! use tcplab_capture::{CaptureConfig, DelayLink, LiveCapture};
//!
//! let link = DelayLink::new(Duration::from_millis(10))?;
//! let cap = LiveCapture::open(link.client_ns(), &CaptureConfig {
//!     device: link.capture_device().into(),
//!     ..Default::default()
//! })?;
//! // server: bind link.server_addr() inside link.server_ns();
//! // client: connect from inside link.client_ns().
//! let stats = link.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;

use crate::impair::{End, Impairer, Impairments, TcpView};
use crate::netns::{self, Netns, Priority};
use crate::script::{Forward, InjectedSegment, Script, ScriptState};
use crate::veth::{self, CLIENT_VETH, SERVER_VETH};

// The error, the delay bound and the TUN device names live beneath this module and `veth.rs`
// (`link_error.rs`); these are their public paths.
pub use crate::link_error::{LinkError, CLIENT_DEVICE, MAX_DELAY, SERVER_DEVICE};

/// Client-side IPv4 address (RFC 5737 TEST-NET-1).
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Server-side IPv4 address (RFC 5737 TEST-NET-1).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Client-side IPv6 address (RFC 3849 documentation prefix).
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Server-side IPv6 address (RFC 3849 documentation prefix).
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Packets a direction may hold in flight before the link drops (a wire has finite capacity;
/// this bounds memory if a peer floods). An experiment sends about ten packets.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Largest packet read from a TUN fd (the device MTU is 1500; headroom for a larger one).
const READ_BUF: usize = 65_536;

/// What the relay did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets lost on purpose: random loss ([`Impairments`] `loss_*`).
    pub lost: u64,
    /// Targeted faults applied (drop, delay or duplicate of one segment).
    pub faults: u64,
    /// Extra copies delivered by `duplicate` faults.
    pub duplicated: u64,
    /// Packets delivered client → server.
    pub to_server: u64,
    /// Packets delivered server → client.
    pub to_client: u64,
    /// Packets dropped (queue full, or the kernel refused the write).
    pub dropped: u64,
    /// Packets put in flight (copies and scripted segments included): delivered once due,
    /// unless the link is closed first.
    pub queued: u64,
    /// The relay thread runs SCHED_FIFO (false: it lacked CAP_SYS_NICE and runs at normal
    /// priority, so on a busy machine deliveries can be late by milliseconds).
    pub realtime: bool,
}

#[derive(Debug, Default)]
struct Counters {
    lost: AtomicU64,
    faults: AtomicU64,
    duplicated: AtomicU64,
    to_server: AtomicU64,
    to_client: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    realtime: AtomicBool,
    script: Mutex<ScriptReport>,
}

/// What the link's script ([`crate::script`]) did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptReport {
    /// The segments it put on the wire.
    pub injected: Vec<InjectedSegment>,
    /// Every injection fired and every held segment was released.
    pub finished: bool,
    /// Injections (0-based) whose named segment has not crossed the link (yet).
    pub never_fired: Vec<usize>,
    /// When the last scripted segment entered the link.
    pub last_sent: Option<Instant>,
}

impl Counters {
    fn snapshot(&self) -> LinkStats {
        LinkStats {
            lost: self.lost.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            to_server: self.to_server.load(Ordering::Relaxed),
            to_client: self.to_client.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            realtime: self.realtime.load(Ordering::Relaxed),
        }
    }

    fn set_script(&self, st: &ScriptState, sent: bool) {
        if let Ok(mut r) = self.script.lock() {
            r.injected = st.injected().to_vec();
            r.finished = st.finished();
            r.never_fired = st.never_fired();
            if sent {
                r.last_sent = Some(Instant::now());
            }
        }
    }
}

/// Two namespaces joined by a delayed point-to-point link (see the module docs).
#[derive(Debug)]
pub struct DelayLink {
    // Field order is drop order: stop the relay first (closing the TUN fds or packet
    // sockets), then the namespaces.
    relay: Relay,
    client: Netns,
    server: Netns,
    /// Without root: the namespace of the veth pairs' middle ends (see [`crate::veth`]).
    middle: Option<Netns>,
    /// Capture devices: client side, server side.
    devices: [&'static str; 2],
    delay: Duration,
}

#[derive(Debug)]
struct Relay {
    /// Closing it wakes the relay thread (POLLHUP on the read end), which then exits.
    wake: Option<OwnedFd>,
    handle: Option<JoinHandle<Result<(), String>>>,
    counters: Arc<Counters>,
}

impl Relay {
    fn stop(&mut self) -> Result<(), LinkError> {
        drop(self.wake.take());
        match self.handle.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(LinkError::Relay(e)),
            Some(Err(_)) => Err(LinkError::Relay("the relay thread panicked".into())),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // An error here was already visible as missing packets; `close` reports it.
        let _ = self.stop();
    }
}

impl DelayLink {
    /// Build the two namespaces, the TUN devices and their addresses, and start the relay.
    /// Every packet crosses the link `delay` after it was sent (± the relay's latency, see
    /// the module's notes).
    pub fn new(delay: Duration) -> Result<DelayLink, LinkError> {
        DelayLink::with_impairments(delay, Impairments::default())
    }

    /// [`DelayLink::new`] with loss, jitter and targeted faults on top of the delay
    /// (see [`crate::impair`]).
    pub fn with_impairments(
        delay: Duration,
        impairments: Impairments,
    ) -> Result<DelayLink, LinkError> {
        DelayLink::with_script(delay, impairments, Script::default())
    }

    /// [`DelayLink::with_impairments`] with scripted segments: forged or replayed ones at
    /// named moments, and segments held behind others (see [`crate::script`]).
    pub fn with_script(
        delay: Duration,
        impairments: Impairments,
        script: Script,
    ) -> Result<DelayLink, LinkError> {
        if delay > MAX_DELAY {
            return Err(LinkError::BadDelay(delay));
        }
        let client = Netns::new()?;
        let server = Netns::new()?;
        let v4 = [(CLIENT_V4, SERVER_V4), (SERVER_V4, CLIENT_V4)];
        let v6 = [(CLIENT_V6, SERVER_V6), (SERVER_V6, CLIENT_V6)];
        let tun = client.run(|| setup_side(CLIENT_DEVICE, v4[0], v6[0]))?;
        let (fds, middle, devices) = match tun {
            Ok(client_fd) => {
                let server_fd = server.run(|| setup_side(SERVER_DEVICE, v4[1], v6[1]))??;
                ([client_fd, server_fd], None, [CLIENT_DEVICE, SERVER_DEVICE])
            }
            // No TUN for us (an unprivileged user namespace): veth pairs and packet sockets.
            Err(LinkError::Tun {
                op: "open /dev/net/tun",
                source,
                ..
            }) if matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound
            ) =>
            {
                let middle = Netns::new()?;
                let (cns, sns) = (client.dup_fd()?, server.dup_fd()?);
                let socks = middle.run(|| veth::setup_middle(&cns, &sns))??;
                drop((cns, sns));
                for (ns, dev, i) in [(&client, CLIENT_VETH, 0), (&server, SERVER_VETH, 1)] {
                    ns.run(|| {
                        let index = veth::outer_up(dev)?;
                        add_addresses(dev, index, v4[i], v6[i])
                    })??;
                }
                (socks, Some(middle), [CLIENT_VETH, SERVER_VETH])
            }
            Err(e) => return Err(e),
        };
        let [client_fd, server_fd] = fds;
        let packet = middle.is_some();
        let (wake_rx, wake_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| LinkError::Relay(format!("pipe2: {e}")))?;
        let counters = Arc::new(Counters::default());
        let state = ScriptState::new(script, packet);
        counters.set_script(&state, false);
        let c = Arc::clone(&counters);
        // The relay needs no namespace: the fds work from anywhere.
        let handle = std::thread::Builder::new()
            .name("tcplab-link-relay".into())
            .spawn(move || {
                // One above the experiment's threads: the wire must not wait behind them.
                let rt = crate::sys::set_fifo_priority(Priority::FIFO_PRIORITY + 1).is_ok();
                c.realtime.store(rt, Ordering::Relaxed);
                relay(
                    [client_fd, server_fd],
                    packet,
                    wake_rx,
                    delay,
                    impairments,
                    state,
                    &c,
                )
            })
            .map_err(|e| LinkError::Relay(format!("spawning the relay thread: {e}")))?;
        Ok(DelayLink {
            relay: Relay {
                wake: Some(wake_tx),
                handle: Some(handle),
                counters,
            },
            client,
            server,
            middle,
            devices,
            delay,
        })
    }

    /// The client-side namespace (run the client here; capture here).
    pub fn client_ns(&self) -> &Netns {
        &self.client
    }

    /// The server-side namespace (bind the server here).
    pub fn server_ns(&self) -> &Netns {
        &self.server
    }

    /// The client side's IPv4 address, 192.0.2.1.
    pub fn client_addr(&self) -> Ipv4Addr {
        CLIENT_V4
    }

    /// The server side's IPv4 address, 192.0.2.2.
    pub fn server_addr(&self) -> Ipv4Addr {
        SERVER_V4
    }

    /// The client side's IPv6 address, 2001:db8::1.
    pub fn client_addr_v6(&self) -> Ipv6Addr {
        CLIENT_V6
    }

    /// The server side's IPv6 address, 2001:db8::2.
    pub fn server_addr_v6(&self) -> Ipv6Addr {
        SERVER_V6
    }

    /// The device to capture on, inside [`DelayLink::client_ns`]: `tun-c`.
    pub fn capture_device(&self) -> &'static str {
        self.devices[0]
    }

    /// The device to capture the server's view on, inside [`DelayLink::server_ns`]: `tun-s`.
    pub fn server_capture_device(&self) -> &'static str {
        self.devices[1]
    }

    /// True when the link is veth pairs + packet sockets (no TUN: unprivileged).
    pub fn is_veth(&self) -> bool {
        self.middle.is_some()
    }

    /// The one-way delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// What the relay did so far.
    pub fn stats(&self) -> LinkStats {
        self.relay.counters.snapshot()
    }

    /// What the script did so far: the segments it put on the wire, and whether it is done.
    pub fn script(&self) -> ScriptReport {
        self.relay
            .counters
            .script
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// True once the script has nothing left to do and its last segment had time to arrive
    /// and be answered: two link delays plus `answer` after it entered the link.
    pub fn script_settled(&self, answer: Duration) -> bool {
        let r = self.script();
        r.finished
            && r.last_sent
                .is_none_or(|t| t.elapsed() >= 2 * self.delay + answer)
    }

    /// True while the relay thread runs (it stops only on drop or on an error).
    pub fn is_running(&self) -> bool {
        self.relay.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stop the relay (packets still in flight are lost, as on a cut wire), remove the
    /// devices and namespaces, and report the final counters or the relay's error.
    pub fn close(mut self) -> Result<LinkStats, LinkError> {
        self.relay.stop()?;
        Ok(self.relay.counters.snapshot())
    }
}

/// In the calling thread's namespace: create TUN device `name`, bring it up, and give it
/// `local` with `peer` as the point-to-point address, for both families.
fn setup_side(
    name: &'static str,
    v4: (Ipv4Addr, Ipv4Addr),
    v6: (Ipv6Addr, Ipv6Addr),
) -> Result<OwnedFd, LinkError> {
    let tun_err = |op| {
        move |source| LinkError::Tun {
            device: name,
            op,
            source,
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(tun_err("open /dev/net/tun"))?;
    let fd: OwnedFd = file.into();
    crate::sys::tun_set_iff(fd.as_fd(), name).map_err(tun_err("ioctl(TUNSETIFF)"))?;
    let index = netns::ifindex(name)?;
    let kernel = |op: &'static str, errno: Option<Errno>| match errno {
        None => Ok(()),
        Some(e) => Err(tun_err(op)(io::Error::from(e))),
    };
    kernel(
        "RTM_NEWLINK up",
        netns::netlink_request(&netns::newlink_up_msg(index, 1), 1)?,
    )?;
    add_addresses(name, index, v4, v6)?;
    Ok(fd)
}

/// Give device `name` (index `index`, calling thread's namespace) `local` with `peer` as the
/// point-to-point address, for both families.
fn add_addresses(
    name: &'static str,
    index: i32,
    v4: (Ipv4Addr, Ipv4Addr),
    v6: (Ipv6Addr, Ipv6Addr),
) -> Result<(), LinkError> {
    let kernel = |op: &'static str, errno: Option<Errno>| match errno {
        None => Ok(()),
        Some(e) => Err(LinkError::Tun {
            device: name,
            op,
            source: io::Error::from(e),
        }),
    };
    kernel(
        "RTM_NEWADDR (IPv4)",
        netns::netlink_request(&newaddr_msg(index, &v4.0.octets(), &v4.1.octets(), 2), 2)?,
    )?;
    kernel(
        "RTM_NEWADDR (IPv6)",
        netns::netlink_request(&newaddr_msg(index, &v6.0.octets(), &v6.1.octets(), 3), 3)?,
    )?;
    Ok(())
}

const RTM_NEWADDR: u16 = 20;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_PERMANENT: u8 = 0x80;

/// RTM_NEWADDR (rtnetlink(7)): `nlmsghdr`, `ifaddrmsg { family, prefixlen, flags, scope,
/// index }`, then attributes `IFA_LOCAL = local` and `IFA_ADDRESS = peer` (a point-to-point
/// address: the kernel adds a host route to the peer) and, for IPv6, `IFA_FLAGS = NODAD`.
/// `local` and `peer` are both 4 (IPv4) or both 16 (IPv6) bytes; the prefix is a host prefix.
fn newaddr_msg(ifindex: i32, local: &[u8], peer: &[u8], seq: u32) -> Vec<u8> {
    let v6 = local.len() == 16;
    let (family, prefix) = if v6 {
        (libc::AF_INET6 as u8, 128u8)
    } else {
        (libc::AF_INET as u8, 32u8)
    };
    let mut m = vec![0u8; netns::NLMSG_HDRLEN];
    m.extend_from_slice(&[family, prefix, IFA_F_PERMANENT, 0]); // scope 0: universe
    m.extend_from_slice(&ifindex.to_ne_bytes());
    let mut attr = |ty: u16, payload: &[u8]| {
        // rtattr { len, type } + payload, padded to 4 bytes (RTA_ALIGN).
        let len = 4 + payload.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(m.len() + (4 - len % 4) % 4, 0);
    };
    attr(IFA_LOCAL, local);
    attr(IFA_ADDRESS, peer);
    if v6 {
        attr(IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWADDR.to_ne_bytes());
    let flags = netns::NLM_F_REQUEST | netns::NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// A packet in flight and when it is due at the far end, in due order.
type InFlight = VecDeque<(Instant, Vec<u8>)>;

const ETH_HLEN: usize = 14;
const PACKET_OUTGOING: u8 = 4;

/// The IP packet inside `frame` (an Ethernet frame when `packet`).
fn ip_part(frame: &[u8], packet: bool) -> &[u8] {
    if !packet {
        return frame;
    }
    match frame.get(12..14) {
        Some([0x08, 0x00]) | Some([0x86, 0xdd]) => frame.get(ETH_HLEN..).unwrap_or_default(),
        _ => &[],
    }
}

/// Read one packet (TUN) or frame (packet socket) into `buf`: `Some(len)`, `Some(0)` at
/// the end, `None` for a frame to skip (one the relay itself sent, seen going out).
fn read_frame(fd: &OwnedFd, packet: bool, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
    use std::os::fd::AsRawFd;
    if !packet {
        return nix::unistd::read(fd.as_fd(), buf).map(Some);
    }
    let (n, from) = nix::sys::socket::recvfrom::<nix::sys::socket::LinkAddr>(fd.as_raw_fd(), buf)?;
    if from.is_some_and(|a| a.pkttype() == PACKET_OUTGOING) {
        return Ok(None);
    }
    Ok(Some(n.max(1)))
}

/// Queue `pkt` due at `due`, after every packet due at or before it.
fn enqueue(q: &mut InFlight, due: Instant, pkt: Vec<u8>, counters: &Counters) {
    counters.queued.fetch_add(1, Ordering::Relaxed);
    let at = q.partition_point(|(d, _)| *d <= due);
    q.insert(at, (due, pkt));
}

/// The relay loop: `fds[0]` is the client side, `fds[1]` the server side. Returns when the
/// wake pipe hangs up (the link is dropped), or with an error.
fn relay(
    fds: [OwnedFd; 2],
    packet: bool,
    wake: OwnedFd,
    delay: Duration,
    impairments: Impairments,
    mut script: ScriptState,
    counters: &Counters,
) -> Result<(), String> {
    // queues[i]: read from fds[i], to be written to fds[1 - i], sorted by due time.
    let mut queues: [InFlight; 2] = [VecDeque::new(), VecDeque::new()];
    // Per direction: the due time of the last packet that keeps FIFO order.
    let mut last_fifo: [Option<Instant>; 2] = [None; 2];
    let mut impairer = Impairer::new(impairments);
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let now = Instant::now();
        // Scripted segments enter the link in the middle: one delay to their recipient.
        let scripted = script.due(now);
        if !scripted.is_empty() {
            counters.set_script(&script, true);
        }
        for (sender, mut frame) in scripted {
            if packet {
                // A replayed frame is as read: its checksum may be the sender's partial one.
                if let Some(ip) = frame.get_mut(ETH_HLEN..) {
                    veth::fix_tcp_checksum(ip);
                }
            }
            let q = &mut queues[usize::from(sender == End::Server)];
            if q.len() < MAX_IN_FLIGHT {
                enqueue(q, now + delay, frame, counters);
            } else {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        for (i, q) in queues.iter_mut().enumerate() {
            while q.front().is_some_and(|(due, _)| *due <= now) {
                let Some((_, pkt)) = q.pop_front() else {
                    break;
                };
                let out = &fds[1 - i];
                match nix::unistd::write(out.as_fd(), &pkt) {
                    Ok(_) => {
                        let c = if i == 0 {
                            &counters.to_server
                        } else {
                            &counters.to_client
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    // The kernel refuses a malformed packet (EINVAL) or is out of memory:
                    // the packet is lost, as on a real wire.
                    Err(_) => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let next_due = queues
            .iter()
            .filter_map(|q| q.front().map(|(due, _)| *due))
            .chain(script.next_wake())
            .min();
        let timeout = next_due.map(|d| TimeSpec::from_duration(d.saturating_duration_since(now)));
        let mut pfds = [
            PollFd::new(fds[0].as_fd(), PollFlags::POLLIN),
            PollFd::new(fds[1].as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match ppoll(&mut pfds, timeout, None) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("ppoll: {e}")),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        if ready(&pfds[2]) {
            return Ok(());
        }
        let readable = [ready(&pfds[0]), ready(&pfds[1])];
        // Held segments a reorder releases: (direction, due, frame), queued after the reads.
        let mut released: Vec<(usize, Instant, Vec<u8>)> = Vec::new();
        for (i, q) in queues.iter_mut().enumerate() {
            if !readable[i] {
                continue;
            }
            let from = if i == 0 { End::Client } else { End::Server };
            loop {
                match read_frame(&fds[i], packet, &mut buf) {
                    Ok(None) => continue,
                    Ok(Some(0)) => break,
                    Ok(Some(n)) => {
                        let pkt = buf.get(..n).unwrap_or_default();
                        let read_at = Instant::now();
                        // Packet sockets carry Ethernet frames: decide on the IP packet.
                        let d = impairer.decide(from, ip_part(pkt, packet));
                        if d.fault.is_some() {
                            counters.faults.fetch_add(1, Ordering::Relaxed);
                        }
                        if d.random_loss {
                            counters.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        if d.copies == 0 {
                            continue;
                        }
                        let ip = ip_part(pkt, packet);
                        let kinds = TcpView::parse(ip)
                            .map(|seg| impairer.kinds(from, &seg))
                            .unwrap_or_default();
                        let behind = match script.forwarded(from, &kinds, pkt, read_at) {
                            Forward::Hold => {
                                counters.set_script(&script, false);
                                continue;
                            }
                            Forward::Pass(r) => r,
                        };
                        if !behind.is_empty() {
                            counters.set_script(&script, false);
                        }
                        let base = read_at + delay;
                        let mut due = if d.extra_ns >= 0 {
                            base + Duration::from_nanos(d.extra_ns.unsigned_abs())
                        } else {
                            base.checked_sub(Duration::from_nanos(d.extra_ns.unsigned_abs()))
                                .unwrap_or(read_at)
                                .max(read_at)
                        };
                        if d.keep_order {
                            // Jitter without reordering: never before the previous packet.
                            if let Some(prev) = last_fifo[i] {
                                due = due.max(prev);
                            }
                            last_fifo[i] = Some(due);
                        }
                        for copy in 0..d.copies {
                            if q.len() >= MAX_IN_FLIGHT {
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if copy > 0 {
                                counters.duplicated.fetch_add(1, Ordering::Relaxed);
                            }
                            let mut frame = pkt.to_vec();
                            if packet {
                                if let Some(ip) = frame.get_mut(ETH_HLEN..) {
                                    veth::fix_tcp_checksum(ip);
                                }
                            }
                            enqueue(q, due, frame, counters);
                        }
                        for (sender, mut frame) in behind {
                            if packet {
                                if let Some(ip) = frame.get_mut(ETH_HLEN..) {
                                    veth::fix_tcp_checksum(ip);
                                }
                            }
                            released.push((usize::from(sender == End::Server), due, frame));
                        }
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        let side = if i == 0 { CLIENT_DEVICE } else { SERVER_DEVICE };
                        return Err(format!("read({side}): {e}"));
                    }
                }
            }
        }
        for (i, due, frame) in released {
            if queues[i].len() < MAX_IN_FLIGHT {
                enqueue(&mut queues[i], due, frame, counters);
            } else {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(m: &[u8], i: usize) -> u16 {
        u16::from_ne_bytes([m[i], m[i + 1]])
    }

    #[test]
    fn newaddr_ipv4_layout() {
        let m = newaddr_msg(7, &CLIENT_V4.octets(), &SERVER_V4.octets(), 2);
        // 16 header + 8 ifaddrmsg + 2 × (4 + 4) attributes.
        assert_eq!(m.len(), 40);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 40);
        assert_eq!(u16_at(&m, 4), RTM_NEWADDR);
        assert_eq!(u16_at(&m, 6), 0x605);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 32, IFA_F_PERMANENT, 0]);
        assert_eq!(i32::from_ne_bytes([m[20], m[21], m[22], m[23]]), 7);
        assert_eq!((u16_at(&m, 24), u16_at(&m, 26)), (8, IFA_LOCAL));
        assert_eq!(&m[28..32], &[192, 0, 2, 1]);
        assert_eq!((u16_at(&m, 32), u16_at(&m, 34)), (8, IFA_ADDRESS));
        assert_eq!(&m[36..40], &[192, 0, 2, 2]);
    }

    #[test]
    fn newaddr_ipv6_has_nodad() {
        let m = newaddr_msg(3, &SERVER_V6.octets(), &CLIENT_V6.octets(), 3);
        // 16 + 8 + 2 × (4 + 16) + (4 + 4).
        assert_eq!(m.len(), 72);
        assert_eq!(m[16], libc::AF_INET6 as u8);
        assert_eq!(m[17], 128);
        assert_eq!(&m[28..44], &SERVER_V6.octets());
        assert_eq!(&m[48..64], &CLIENT_V6.octets());
        assert_eq!((u16_at(&m, 64), u16_at(&m, 66)), (8, IFA_FLAGS));
        assert_eq!(&m[68..72], &IFA_F_NODAD.to_ne_bytes());
    }

    #[test]
    fn addresses_are_documentation_ranges() {
        for a in [CLIENT_V4, SERVER_V4] {
            assert_eq!(&a.octets()[..3], &[192, 0, 2]);
        }
        for a in [CLIENT_V6, SERVER_V6] {
            assert_eq!(&a.segments()[..2], &[0x2001, 0xdb8]);
        }
    }

    #[test]
    fn too_long_a_delay_is_refused_before_any_namespace() {
        assert!(matches!(
            DelayLink::new(Duration::from_secs(2)),
            Err(LinkError::BadDelay(_))
        ));
    }
}
