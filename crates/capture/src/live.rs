//! Live capture with libpcap on `lo` inside a [`Netns`].
//!
//! **When is a capture ready?** [`LiveCapture::open`] returns after `pcap_activate` and
//! `pcap_setfilter`. On Linux, activation creates the PF_PACKET socket, binds it to the device
//! (which registers the packet tap at once) and maps the ring; setfilter attaches the BPF program
//! with `SO_ATTACH_FILTER` before it returns. A packet sent on `lo` passes the tap synchronously
//! in the sender's own `dev_queue_xmit` path, so every packet whose sending syscall starts after
//! `open` returns is in the ring. No probe packet is needed; the `netns_*` tests check that each
//! capture's first packet is the SYN, and `netns_capture_ready_before_first_syn` repeats that
//! over many fresh handles.
//!
//! **When is it complete?** Only the caller knows when its sockets are done; it then calls
//! [`LiveCapture::drain`] / [`LiveCapture::finish`], which keep reading until no packet has
//! arrived for a quiet period (choose it longer than any timer still pending in the experiment,
//! e.g. the 40 ms minimum delayed ACK).
//!
//! **Pooled mode.** Opening and closing a handle costs kernel time (measured by
//! [`LiveCapture::open_latency`] and [`Finished::close_latency`]). A handle can stay open for
//! many runs: call [`LiveCapture::take`] after each run and split by port with
//! [`Packets::retain_port`].

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{Netns, NetnsError};

/// DLT_EN10MB: what libpcap reports for Linux `lo` (a zeroed Ethernet header on each frame).
pub const DLT_EN10MB: u32 = 1;

/// LINKTYPE_RAW: bare IPv4/IPv6 packets, what a capture on a TUN device (the delay link's
/// `tun-c`) holds. libpcap reports such a device as DLT_RAW, which is 12 on Linux; a file
/// must say 101 (libpcap's own `pcap_dump` maps it the same way), so [`LiveCapture`] does.
pub const LINKTYPE_RAW: u32 = 101;

/// Classic pcap magic for nanosecond timestamps (written native-endian, as libpcap does).
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// libpcap refused for lack of privilege (CAP_NET_RAW).
    #[error("opening a capture on {device}: permission denied (needs CAP_NET_RAW): {message}")]
    PermissionDenied {
        /// The device.
        device: String,
        /// libpcap's message.
        message: String,
    },
    /// libpcap failed to create or activate the handle.
    #[error("opening a capture on {device}: {source}")]
    Open {
        /// The device.
        device: String,
        /// libpcap's error.
        #[source]
        source: pcap::Error,
    },
    /// The BPF filter did not compile or could not be attached.
    #[error("setting capture filter `{filter}`: {source}")]
    Filter {
        /// The filter expression.
        filter: String,
        /// libpcap's error.
        #[source]
        source: pcap::Error,
    },
    /// Reading packets or statistics failed.
    #[error("{op} on the capture: {source}")]
    Read {
        /// `pcap_next_ex` or `pcap_stats`.
        op: &'static str,
        /// libpcap's error.
        #[source]
        source: pcap::Error,
    },
    /// A call on the ring-less capture socket failed ([`LiveCapture::open_socket`]).
    #[error("{op} on the capture socket: {source}")]
    Socket {
        /// The system call.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing a pcap file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// True when the failure is a missing privilege.
    pub fn is_permission_denied(&self) -> bool {
        match self {
            CaptureError::PermissionDenied { .. } => true,
            CaptureError::Netns(e) => e.is_permission_denied(),
            _ => false,
        }
    }
}

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Device inside the namespace.
    pub device: String,
    /// BPF filter, e.g. `tcp port 60000` or `tcp portrange 40000-40999`; empty = everything.
    pub filter: String,
    /// Bytes kept per packet; 256 keeps every Ethernet + IP + TCP header with options.
    pub snaplen: u32,
    /// Kernel ring size in bytes. Each frame takes about snaplen + 100 bytes of ring.
    pub buffer_bytes: u32,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            device: "lo".into(),
            filter: "tcp".into(),
            snaplen: 256,
            // ~100k frames: thousands of pooled runs of ~10 packets between two takes.
            buffer_bytes: 32 << 20,
        }
    }
}

/// Kernel counters for a capture (pcap_stats(3pcap)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropStats {
    /// Packets that passed the kernel filter (including dropped ones). On Linux `lo` each
    /// packet passes twice (outgoing and incoming copy) and libpcap discards the outgoing copy
    /// in user space, so this is about twice the number of packets delivered.
    pub received: u32,
    /// Packets dropped because the ring was full.
    pub dropped: u32,
    /// Packets dropped by the interface or driver.
    pub if_dropped: u32,
}

impl DropStats {
    /// No packet lost.
    pub fn is_clean(&self) -> bool {
        self.dropped == 0 && self.if_dropped == 0
    }

    fn since(&self, earlier: &DropStats) -> DropStats {
        DropStats {
            received: self.received.wrapping_sub(earlier.received),
            dropped: self.dropped.wrapping_sub(earlier.dropped),
            if_dropped: self.if_dropped.wrapping_sub(earlier.if_dropped),
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Seconds since the Unix epoch (CLOCK_REALTIME).
    pub ts_sec: u32,
    /// Nanoseconds within the second.
    pub ts_nsec: u32,
    /// Length on the wire (`data` may be shorter: snaplen).
    pub orig_len: u32,
    /// The captured bytes, starting at the link layer.
    pub data: Vec<u8>,
}

impl Record {
    /// Timestamp in nanoseconds since the Unix epoch.
    pub fn ts_ns(&self) -> u64 {
        u64::from(self.ts_sec) * 1_000_000_000 + u64::from(self.ts_nsec)
    }

    /// TCP source and destination ports, for an Ethernet frame carrying IPv4/IPv6 + TCP
    /// (no IPv6 extension headers: loopback traffic from our sockets has none).
    pub fn tcp_ports(&self) -> Option<(u16, u16)> {
        self.tcp_ports_for(DLT_EN10MB)
    }

    /// [`Record::tcp_ports`] for a frame of `link_type`: [`DLT_EN10MB`] (`lo`) or
    /// [`LINKTYPE_RAW`] (the delay link's TUN device); `None` for any other.
    pub fn tcp_ports_for(&self, link_type: u32) -> Option<(u16, u16)> {
        let d = &self.data;
        let be16 =
            |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?])) };
        let (ip, ether_type) = match link_type {
            DLT_EN10MB => (14, be16(12)?),
            LINKTYPE_RAW => match d.first()? >> 4 {
                4 => (0, 0x0800),
                6 => (0, 0x86dd),
                _ => return None,
            },
            _ => return None,
        };
        let tcp = match ether_type {
            0x0800 => {
                let ihl = usize::from(d.get(ip)? & 0x0f) * 4;
                (*d.get(ip + 9)? == 6).then_some(ip + ihl)?
            }
            0x86dd => (*d.get(ip + 6)? == 6).then_some(ip + 40)?,
            _ => return None,
        };
        Some((be16(tcp)?, be16(tcp + 2)?))
    }
}

/// Packets taken from a capture, with the counters for the same interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packets {
    /// Link type as libpcap reports it (DLT_EN10MB on Linux `lo`).
    pub link_type: u32,
    /// The snaplen of the capture.
    pub snaplen: u32,
    /// The frames, in capture order.
    pub records: Vec<Record>,
    /// Kernel counters for this interval. When several [`Packets`] are split from one take,
    /// each carries the counters of the whole take.
    pub stats: DropStats,
}

impl Packets {
    /// Keep only TCP segments with `port` as source or destination port (pooled mode: one
    /// capture, many runs on distinct ports).
    pub fn retain_port(&self, port: u16) -> Packets {
        Packets {
            records: self
                .records
                .iter()
                .filter(|r| {
                    r.tcp_ports_for(self.link_type)
                        .is_some_and(|(s, d)| s == port || d == port)
                })
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Serialize as a classic pcap file with nanosecond timestamps.
    pub fn to_pcap(&self) -> Vec<u8> {
        let body: usize = self.records.iter().map(|r| 16 + r.data.len()).sum();
        let mut out = Vec::with_capacity(24 + body);
        out.extend_from_slice(&PCAP_MAGIC_NANOS.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes()); // version 2.4
        out.extend_from_slice(&4u16.to_ne_bytes());
        out.extend_from_slice(&0i32.to_ne_bytes()); // thiszone: timestamps are UTC
        out.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        out.extend_from_slice(&self.snaplen.to_ne_bytes());
        out.extend_from_slice(&self.link_type.to_ne_bytes());
        for r in &self.records {
            let incl = u32::try_from(r.data.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&r.ts_sec.to_ne_bytes());
            out.extend_from_slice(&r.ts_nsec.to_ne_bytes());
            out.extend_from_slice(&incl.to_ne_bytes());
            out.extend_from_slice(&r.orig_len.to_ne_bytes());
            out.extend_from_slice(&r.data);
        }
        out
    }

    /// Write [`Packets::to_pcap`] to `path`.
    pub fn write_pcap(&self, path: &Path) -> Result<(), CaptureError> {
        std::fs::write(path, self.to_pcap()).map_err(|source| CaptureError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// The end of a capture: the last packets and what closing the handle cost.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Packets since the last take.
    pub packets: Packets,
    /// Counters over the whole life of the handle.
    pub total: DropStats,
    /// Time spent in `pcap_close` (the kernel tears down the packet socket and its ring).
    pub close_latency: Duration,
}

/// What a [`LiveCapture`] reads from.
enum Handle {
    /// libpcap: its ring holds many frames between reads (pooled batches, links).
    Pcap(pcap::Capture<pcap::Active>),
    /// A plain packet socket ([`LiveCapture::open_socket`]): no ring to set up or tear down.
    Socket {
        fd: std::os::fd::OwnedFd,
        /// Counters so far (the kernel's reset on each read).
        received: u32,
        dropped: u32,
        buf: Vec<u8>,
    },
}

/// An open capture. Reading is non-blocking; the caller decides when to read.
pub struct LiveCapture {
    handle: Handle,
    link_type: u32,
    snaplen: u32,
    pending: Vec<Record>,
    stats_at_take: DropStats,
    open_latency: Duration,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("link_type", &self.link_type)
            .field("snaplen", &self.snaplen)
            .field("pending", &self.pending.len())
            .field("open_latency", &self.open_latency)
            .finish_non_exhaustive()
    }
}

/// Waits for a capture to have packets (see [`LiveCapture::readable`]).
#[derive(Debug)]
pub struct Readable(std::os::fd::OwnedFd);

impl Readable {
    /// Block until the capture has a packet to read or `timeout` passes (poll(2)): a reader
    /// wakes when a packet arrives instead of at the next tick of a sleep loop.
    pub fn wait(&self, timeout: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

impl LiveCapture {
    /// Open, activate and filter a capture on `config.device` inside `netns`.
    ///
    /// The handle is created on a thread inside the namespace; afterwards it is an ordinary fd
    /// bound to that namespace's device, usable from any thread. It is ready on return (see the
    /// module docs).
    pub fn open(netns: &Netns, config: &CaptureConfig) -> Result<LiveCapture, CaptureError> {
        let start = Instant::now();
        let (cap, link_type) = netns.run(|| open_here(config))??;
        Ok(LiveCapture {
            handle: Handle::Pcap(cap),
            link_type,
            snaplen: config.snaplen,
            pending: Vec::new(),
            stats_at_take: DropStats::default(),
            open_latency: start.elapsed(),
        })
    }

    /// [`LiveCapture::open`] for a short capture on `lo`: a plain packet socket with the
    /// same BPF filter (compiled by libpcap), read one frame per `recvmsg`, instead of
    /// libpcap's ring. Setting up a ring costs the kernel an RCU grace period
    /// (`synchronize_net`, 8–40 ms on a busy machine) before the capture is ready; this one
    /// is ready as soon as it is bound, with nothing to wait for. The socket buffer
    /// (`config.buffer_bytes`, at least 8 MiB) holds the frames between reads; the outgoing copy of each
    /// loopback frame is skipped, as libpcap does. Any other device is opened with libpcap.
    pub fn open_socket(netns: &Netns, config: &CaptureConfig) -> Result<LiveCapture, CaptureError> {
        if config.device != "lo" {
            return LiveCapture::open(netns, config);
        }
        let start = Instant::now();
        let program = compile_filter(&config.filter)?;
        keep_rx_timestamps_wanted();
        let fd = netns.run(|| {
            rx_timestamps_on()?;
            socket_here(config, &program)
        })??;
        let snaplen = config.snaplen.max(64);
        Ok(LiveCapture {
            handle: Handle::Socket {
                fd,
                received: 0,
                dropped: 0,
                buf: vec![0; snaplen as usize],
            },
            link_type: DLT_EN10MB,
            snaplen: config.snaplen,
            pending: Vec::new(),
            stats_at_take: DropStats::default(),
            open_latency: start.elapsed(),
        })
    }

    /// A handle to wait on for packets ([`Readable::wait`]) without holding the capture: a
    /// duplicate of its socket's descriptor, so several threads can wait while one reads.
    pub fn readable(&self) -> io::Result<Readable> {
        use std::os::fd::AsFd;
        let fd = match &self.handle {
            Handle::Pcap(cap) => cap.as_fd(),
            Handle::Socket { fd, .. } => fd.as_fd(),
        };
        Ok(Readable(fd.try_clone_to_owned()?))
    }

    /// Time from the call to [`LiveCapture::open`] until the capture was ready (includes the
    /// thread that enters the namespace, pcap_activate, and setfilter).
    pub fn open_latency(&self) -> Duration {
        self.open_latency
    }

    /// The link type libpcap reports.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Move every packet available right now into the internal buffer; returns how many.
    pub fn poll(&mut self) -> Result<usize, CaptureError> {
        let cap = match &mut self.handle {
            Handle::Pcap(cap) => cap,
            Handle::Socket { fd, buf, .. } => {
                use std::os::fd::AsFd;
                let mut n = 0;
                loop {
                    match crate::sys::packet::recv_frame(fd.as_fd(), buf) {
                        Ok(Some(f)) => {
                            // `lo` shows each frame twice: as sent and as received.
                            if f.outgoing {
                                continue;
                            }
                            self.pending.push(Record {
                                ts_sec: u32::try_from(f.ts.0).unwrap_or(0),
                                ts_nsec: u32::try_from(f.ts.1).unwrap_or(0),
                                orig_len: u32::try_from(f.len).unwrap_or(u32::MAX),
                                data: buf[..f.caplen.min(self.snaplen as usize)].to_vec(),
                            });
                            n += 1;
                        }
                        Ok(None) => return Ok(n),
                        Err(e) => {
                            return Err(CaptureError::Socket {
                                op: "recvmsg",
                                source: e,
                            })
                        }
                    }
                }
            }
        };
        let mut n = 0;
        loop {
            match cap.next_packet() {
                Ok(p) => {
                    let h = p.header;
                    self.pending.push(Record {
                        // With Precision::Nano, libpcap stores nanoseconds in `tv_usec`.
                        ts_sec: u32::try_from(h.ts.tv_sec).unwrap_or(0),
                        ts_nsec: u32::try_from(h.ts.tv_usec).unwrap_or(0),
                        orig_len: h.len,
                        data: p.data.to_vec(),
                    });
                    n += 1;
                }
                Err(pcap::Error::TimeoutExpired) => return Ok(n),
                Err(source) => {
                    return Err(CaptureError::Read {
                        op: "pcap_next_ex",
                        source,
                    })
                }
            }
        }
    }

    /// Read until no packet has arrived for `quiet`, or until `max` has passed.
    /// Returns how many packets were read.
    pub fn drain(&mut self, quiet: Duration, max: Duration) -> Result<usize, CaptureError> {
        let start = Instant::now();
        let mut last = start;
        let mut total = 0;
        loop {
            let n = self.poll()?;
            let now = Instant::now();
            if n > 0 {
                total += n;
                last = now;
            }
            if now - last >= quiet || now - start >= max {
                return Ok(total);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kernel counters since the handle was opened.
    pub fn stats(&mut self) -> Result<DropStats, CaptureError> {
        let cap = match &mut self.handle {
            Handle::Pcap(cap) => cap,
            Handle::Socket {
                fd,
                received,
                dropped,
                ..
            } => {
                use std::os::fd::AsFd;
                let (r, d) = crate::sys::packet::take_stats(fd.as_fd()).map_err(|source| {
                    CaptureError::Socket {
                        op: "getsockopt(PACKET_STATISTICS)",
                        source,
                    }
                })?;
                // The kernel counts a frame in tp_packets whether or not it was dropped.
                *received = received.wrapping_add(r);
                *dropped = dropped.wrapping_add(d);
                return Ok(DropStats {
                    received: *received,
                    dropped: *dropped,
                    if_dropped: 0,
                });
            }
        };
        let s = cap.stats().map_err(|source| CaptureError::Read {
            op: "pcap_stats",
            source,
        })?;
        Ok(DropStats {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        })
    }

    /// Return the packets read so far (after one more [`LiveCapture::poll`]) and the counters
    /// since the previous take, keeping the capture open.
    pub fn take(&mut self) -> Result<Packets, CaptureError> {
        self.poll()?;
        let now = self.stats()?;
        let stats = now.since(&self.stats_at_take);
        self.stats_at_take = now;
        Ok(Packets {
            link_type: self.link_type,
            snaplen: self.snaplen,
            records: std::mem::take(&mut self.pending),
            stats,
        })
    }

    /// Drain with `quiet` (at most `max`), take the rest, and close the handle.
    pub fn finish(mut self, quiet: Duration, max: Duration) -> Result<Finished, CaptureError> {
        self.drain(quiet, max)?;
        let packets = self.take()?;
        let total = self.stats_at_take;
        let start = Instant::now();
        drop(self.handle);
        Ok(Finished {
            packets,
            total,
            close_latency: start.elapsed(),
        })
    }
}

/// `filter` compiled by libpcap for Ethernet frames (what `lo` carries), as instructions for
/// `SO_ATTACH_FILTER`; empty: accept every frame.
fn compile_filter(filter: &str) -> Result<Vec<crate::sys::packet::BpfInsn>, CaptureError> {
    let err = |source| CaptureError::Filter {
        filter: filter.to_owned(),
        source,
    };
    let text = if filter.is_empty() { "" } else { filter };
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(err)?;
    let program = dead.compile(text, true).map_err(err)?;
    // The pcap crate shows each instruction's fields as "code jt jf k" and gives no other
    // access to them.
    program
        .get_instructions()
        .iter()
        .map(|i| {
            let text = i.to_string();
            let f: Vec<&str> = text.split(' ').collect();
            match f.as_slice() {
                [code, jt, jf, k] => {
                    let code: u16 = code.parse().ok()?;
                    let mut k: u32 = k.parse().ok()?;
                    // `ret #snaplen` of an accepting path: keep the whole frame instead, so
                    // that recvmsg reports its length on the wire (the copy is cut at our
                    // snaplen in user space).
                    if code == BPF_RET_K && k != 0 {
                        k = MAX_FRAME;
                    }
                    Some(crate::sys::packet::BpfInsn {
                        code,
                        jt: jt.parse().ok()?,
                        jf: jf.parse().ok()?,
                        k,
                    })
                }
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            err(pcap::Error::PcapError(
                "libpcap's compiled program could not be read back".into(),
            ))
        })
}

/// A socket that asks for receive timestamps for the rest of the process (the kernel closes
/// it at exit): a packet socket that is never bound, so it receives nothing.
///
/// Why: a ring-less capture's frame carries the timestamp the kernel gave the packet when it
/// passed the device, but the kernel stamps packets only while some socket wants it
/// (`net_enable_timestamp`), and the first socket that asks turns stamping on through a
/// deferred work item. A frame that arrives before that has no stamp and is stamped when it
/// is *read*: a capture read 50 ms late showed the handshake 50 ms after the FIN's ACK. With
/// this socket open, stamping never turns off between runs.
fn keep_rx_timestamps_wanted() {
    static KEEPER: std::sync::OnceLock<Option<std::os::fd::OwnedFd>> = std::sync::OnceLock::new();
    KEEPER.get_or_init(|| {
        use std::os::fd::AsFd;
        let s = crate::sys::packet::socket_unbound().ok()?;
        crate::sys::packet::set_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).ok()?;
        Some(s)
    });
}

/// Wait (in the capture's namespace, before each ring-less capture) until the kernel stamps
/// packets as they pass (see [`keep_rx_timestamps_wanted`]): a datagram to itself on `lo`,
/// read 300 µs after it was sent, must carry the time it was sent, not the time it was read.
/// Checked once per process, a batch still showed read-time stamps in some runs; checked
/// before each capture (about 0.3 ms), 16 batches under load showed none.
fn rx_timestamps_on() -> Result<(), CaptureError> {
    use std::os::fd::AsFd;
    let err = |op: &'static str| move |source: io::Error| CaptureError::Socket { op, source };
    let s = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .map_err(err("bind(timestamp probe)"))?;
    crate::sys::packet::set_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
        .map_err(err("SO_TIMESTAMPNS(timestamp probe)"))?;
    let to = s
        .local_addr()
        .map_err(err("getsockname(timestamp probe)"))?;
    let mut buf = [0u8; 64];
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    };
    // At most about a second: the work item that turns stamping on runs within
    // milliseconds even on a busy machine; past that, capture anyway (as before this check).
    for _ in 0..400 {
        let sent = now_ns();
        s.send_to(b"t", to).map_err(err("send(timestamp probe)"))?;
        std::thread::sleep(Duration::from_micros(300));
        while let Some(f) = crate::sys::packet::recv_frame(s.as_fd(), &mut buf)
            .map_err(err("recvmsg(timestamp probe)"))?
        {
            let ts = u128::try_from(f.ts.0).unwrap_or(0) * 1_000_000_000
                + u128::try_from(f.ts.1).unwrap_or(0);
            if ts < sent + 200_000 {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// BPF_RET | BPF_K: return a constant (0 drops the frame, else the bytes to keep).
const BPF_RET_K: u16 = 0x06;

/// Longer than any frame on `lo` (MTU 65536).
const MAX_FRAME: u32 = 256 * 1024;

/// Socket buffer of a ring-less capture, at least: the kernel queues whole frames (a
/// loopback TCP frame can be 64 KiB), where libpcap's ring keeps only `snaplen` of each.
const MIN_SOCKET_BUFFER: u32 = 8 << 20;

/// The ring-less capture socket, opened in the calling thread's namespace.
fn socket_here(
    config: &CaptureConfig,
    program: &[crate::sys::packet::BpfInsn],
) -> Result<std::os::fd::OwnedFd, CaptureError> {
    use crate::sys::packet;
    use std::os::fd::AsFd;
    let sock_err = |op: &'static str| {
        move |source: io::Error| {
            if source.kind() == io::ErrorKind::PermissionDenied {
                CaptureError::PermissionDenied {
                    device: "lo".into(),
                    message: format!("{op}: {source}"),
                }
            } else {
                CaptureError::Socket { op, source }
            }
        }
    };
    let fd = packet::socket_unbound().map_err(sock_err("socket(AF_PACKET)"))?;
    // The filter first: the socket is hooked at bind, and from then on sees only its frames.
    packet::attach_filter(fd.as_fd(), program).map_err(sock_err("SO_ATTACH_FILTER"))?;
    let rcvbuf = i32::try_from(config.buffer_bytes.max(MIN_SOCKET_BUFFER)).unwrap_or(i32::MAX);
    // SO_RCVBUFFORCE may exceed net.core.rmem_max (we are root); SO_RCVBUF is capped by it.
    if packet::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf).is_err() {
        packet::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf)
            .map_err(sock_err("SO_RCVBUF"))?;
    }
    packet::set_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
        .map_err(sock_err("SO_TIMESTAMPNS"))?;
    let ifindex = nix::net::if_::if_nametoindex("lo")
        .map_err(|e| sock_err("if_nametoindex(lo)")(io::Error::from(e)))?;
    packet::bind_all(fd.as_fd(), i32::try_from(ifindex).unwrap_or(1))
        .map_err(sock_err("bind(AF_PACKET)"))?;
    Ok(fd)
}

fn open_here(config: &CaptureConfig) -> Result<(pcap::Capture<pcap::Active>, u32), CaptureError> {
    let device = config.device.as_str();
    let open_err = |source: pcap::Error| {
        let message = source.to_string();
        let lower = message.to_ascii_lowercase();
        if lower.contains("permission") || lower.contains("not permitted") {
            CaptureError::PermissionDenied {
                device: device.to_owned(),
                message,
            }
        } else {
            CaptureError::Open {
                device: device.to_owned(),
                source,
            }
        }
    };
    let snaplen = i32::try_from(config.snaplen).unwrap_or(i32::MAX);
    let buffer = i32::try_from(config.buffer_bytes).unwrap_or(i32::MAX);
    let cap = pcap::Capture::from_device(device)
        .map_err(open_err)?
        .snaplen(snaplen)
        .buffer_size(buffer)
        .promisc(false)
        // Deliver each packet as soon as it arrives instead of batching a buffer's worth;
        // with TPACKET_V3 batching, a quiet-period drain would stop too early.
        .immediate_mode(true)
        .precision(pcap::Precision::Nano)
        .open()
        .map_err(open_err)?;
    let mut cap = cap.setnonblock().map_err(open_err)?;
    if !config.filter.is_empty() {
        cap.filter(&config.filter, true)
            .map_err(|source| CaptureError::Filter {
                filter: config.filter.clone(),
                source,
            })?;
    }
    let link_type = match u32::try_from(cap.get_datalink().0).unwrap_or(0) {
        // DLT_RAW on Linux (see LINKTYPE_RAW).
        12 => LINKTYPE_RAW,
        n => n,
    };
    Ok((cap, link_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ether_type: u16, ip: &[u8]) -> Record {
        let mut data = vec![0u8; 12];
        data.extend_from_slice(&ether_type.to_be_bytes());
        data.extend_from_slice(ip);
        Record {
            ts_sec: 1,
            ts_nsec: 2,
            orig_len: data.len() as u32,
            data,
        }
    }

    fn ipv4_tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&dport.to_be_bytes());
        ip
    }

    #[test]
    fn tcp_ports_of_ipv4_and_ipv6_frames() {
        assert_eq!(
            frame(0x0800, &ipv4_tcp(60000, 41000)).tcp_ports(),
            Some((60000, 41000))
        );
        let mut ip6 = vec![0u8; 40];
        ip6[0] = 0x60;
        ip6[6] = 6;
        ip6.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        assert_eq!(frame(0x86dd, &ip6).tcp_ports(), Some((40000, 80)));
        assert_eq!(frame(0x0806, &[0u8; 28]).tcp_ports(), None);
        assert_eq!(
            frame(0x0800, &[0x45]).tcp_ports(),
            None,
            "truncated must not panic"
        );
    }

    #[test]
    fn tcp_ports_of_raw_ip_packets() {
        let raw = |ip: Vec<u8>| Record {
            ts_sec: 1,
            ts_nsec: 2,
            orig_len: ip.len() as u32,
            data: ip,
        };
        assert_eq!(
            raw(ipv4_tcp(60000, 41000)).tcp_ports_for(LINKTYPE_RAW),
            Some((60000, 41000))
        );
        let mut ip6 = vec![0u8; 40];
        ip6[0] = 0x60;
        ip6[6] = 6;
        ip6.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        assert_eq!(raw(ip6).tcp_ports_for(LINKTYPE_RAW), Some((40000, 80)));
        assert_eq!(raw(vec![0x45]).tcp_ports_for(LINKTYPE_RAW), None);
        assert_eq!(raw(vec![]).tcp_ports_for(LINKTYPE_RAW), None);
        assert_eq!(raw(ipv4_tcp(1, 2)).tcp_ports_for(999), None);
    }

    #[test]
    fn pcap_layout_and_port_split() {
        let p = Packets {
            link_type: DLT_EN10MB,
            snaplen: 256,
            records: vec![
                frame(0x0800, &ipv4_tcp(1, 2)),
                frame(0x0800, &ipv4_tcp(3, 4)),
            ],
            stats: DropStats::default(),
        };
        let bytes = p.to_pcap();
        assert_eq!(&bytes[0..4], &PCAP_MAGIC_NANOS.to_ne_bytes());
        assert_eq!(&bytes[20..24], &DLT_EN10MB.to_ne_bytes());
        assert_eq!(bytes.len(), 24 + 2 * (16 + 38));
        assert_eq!(&bytes[24..28], &1u32.to_ne_bytes());
        assert_eq!(&bytes[28..32], &2u32.to_ne_bytes());
        let only = p.retain_port(4);
        assert_eq!(only.records.len(), 1);
        assert_eq!(only.records[0].tcp_ports(), Some((3, 4)));
    }
}
