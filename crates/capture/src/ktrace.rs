//! The kernel's own TCP states during a run.
//!
//! **Source.** The `sock:inet_sock_set_state` tracepoint reports every state change of every
//! TCP socket of the machine, exactly, with the socket's address (`skaddr`);
//! `tcp:tcp_destroy_sock` reports a socket's end with its *cookie* (the id `SO_COOKIE`
//! returns); `tcp:tcp_retransmit_skb` each retransmission, `tcp:tcp_send_reset` each RST a
//! socket sends. They are read from a private ftrace instance ([`KernelTrace`],
//! `crate::tracefs`): the kernel's own trace ring buffer, one per CPU, stamped on
//! CLOCK_MONOTONIC and moved to CLOCK_REALTIME (the clock of pcap timestamps) by the offset
//! measured at the start. The instance is removed when the trace ends.
//!
//! **Why not perf.** The first version read the same tracepoints with perf_event_open(2)
//! (one event per CPU into mmap'd rings). On an idle 2-CPU guest (6.18, NO_HZ_IDLE) perf
//! silently missed about one run in three's events caused by a packet a kernel timer sent
//! (delayed ACK, RTO), handled in softirq on the idle task — no PERF_RECORD_LOST, no
//! THROTTLE — while an ftrace instance with the same events recorded every one. perf
//! remains the fallback where no instance can be made.
//!
//! The tracepoint ids and field offsets come from tracefs, which is mounted only in a
//! *private mount namespace* of a short-lived helper thread (`unshare(CLONE_NEWNS)`, `/`
//! made private first so nothing propagates): the host's mount table is never touched, and
//! the mount disappears with the thread and the files it left open ([`formats`]).
//!
//! **Attribution.** The tracepoints see every namespace at once, and parallel runs use the
//! same addresses and ports, so a 4-tuple does not say whose socket it is. The programs
//! report their sockets' cookies; [`socket_events`] finds the destroy event carrying a cookie,
//! takes its `skaddr`, and keeps that address's events after the previous socket at that
//! address was destroyed: exact, whatever else runs on the machine.
//!
//! **TIME_WAIT.** A full socket never enters TIME_WAIT on that tracepoint: the kernel swaps
//! in a timewait socket and the full one goes to CLOSE. The timewait socket keeps the
//! cookie, so a sock_diag dump of the run's namespace ([`time_wait_cookies`]) confirms it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use crate::sys::perf::{self, Ring};

/// Why the kernel's states could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// tracefs could not be mounted or read (no tracefs, or a missing tracepoint).
    #[error("tracefs: {0}")]
    Tracefs(String),
    /// perf_event_open or its set-up failed.
    #[error("{op}: {source}")]
    Perf {
        /// The failing step.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Where a field lies in a tracepoint's raw record.
#[derive(Debug, Clone, Copy, Default)]
struct Field {
    offset: usize,
    size: usize,
}

#[derive(Debug, Clone, Default)]
struct EventFormat {
    id: u64,
    fields: HashMap<String, Field>,
    /// The names the format's `print fmt` gives the `reason` field's values
    /// (`__print_symbolic(REC->reason, { 0, "NOT_SPECIFIED" }, …)`): `enum sk_rst_reason`.
    reason_names: Vec<(u64, String)>,
}

impl EventFormat {
    fn parse(id: u64, text: &str) -> EventFormat {
        let reason_names = text
            .lines()
            .find_map(|l| l.strip_prefix("print fmt:"))
            .map(|fmt| print_symbolic(fmt, "REC->reason"))
            .unwrap_or_default();
        let mut fields = HashMap::new();
        for line in text.lines() {
            // "\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;"
            let mut name = None;
            let mut f = Field::default();
            for part in line.trim().split(';') {
                let part = part.trim();
                if let Some(decl) = part.strip_prefix("field:") {
                    name = decl
                        .split_whitespace()
                        .last()
                        .map(|n| n.split('[').next().unwrap_or(n).to_owned());
                } else if let Some(v) = part.strip_prefix("offset:") {
                    f.offset = v.parse().unwrap_or(0);
                } else if let Some(v) = part.strip_prefix("size:") {
                    f.size = v.parse().unwrap_or(0);
                }
            }
            if let Some(n) = name {
                fields.insert(n, f);
            }
        }
        EventFormat {
            id,
            fields,
            reason_names,
        }
    }

    /// A port: the host-order field `port` (up to 6.9), else the port inside the
    /// `sockaddr_in`/`sockaddr_in6` field `sockaddr` (6.10 on: family, then the port in
    /// network order).
    fn port(&self, raw: &[u8], port: &str, sockaddr: &str) -> u16 {
        if let Some(p) = self.get(raw, port) {
            return p as u16;
        }
        self.fields
            .get(sockaddr)
            .filter(|f| f.size >= 4)
            .and_then(|f| raw.get(f.offset + 2..f.offset + 4))
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn get(&self, raw: &[u8], name: &str) -> Option<u64> {
        let f = self.fields.get(name)?;
        let b = raw.get(f.offset..f.offset + f.size)?;
        Some(match f.size {
            1 => u64::from(b[0]),
            2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
            4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
            8 => u64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }
}

/// The `{ value, "NAME" }` pairs of the `__print_symbolic(FIELD, …)` in a `print fmt` line.
fn print_symbolic(fmt: &str, field: &str) -> Vec<(u64, String)> {
    let Some(at) = fmt.find(&format!("__print_symbolic({field},")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = &fmt[at..];
    // Pairs follow until the call's closing parenthesis (one outside any brace).
    while let Some(open) = rest.find(['{', ')']) {
        if rest.as_bytes()[open] == b')' {
            break;
        }
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let pair = &rest[open + 1..open + close];
        if let Some((v, name)) = pair.split_once(',') {
            let name = name.trim().trim_matches('"');
            if let Ok(v) = v.trim().parse::<u64>() {
                out.push((v, name.to_owned()));
            }
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// The tracepoints' ids and layouts.
#[derive(Debug, Clone)]
struct Formats {
    set_state: EventFormat,
    destroy: EventFormat,
    retransmit: EventFormat,
    send_reset: EventFormat,
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// Read the formats once per process (see the module docs for the private mount).
fn formats() -> Result<&'static Formats, TraceError> {
    static FORMATS: OnceLock<Result<Formats, String>> = OnceLock::new();
    FORMATS
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("tcplab-tracefs".into())
                .spawn(read_formats_privately)
                .map_err(|e| e.to_string())?
                .join()
                .map_err(|_| "the tracefs thread panicked".to_owned())?
        })
        .as_ref()
        .map_err(|e| TraceError::Tracefs(e.clone()))
}

fn read_formats_privately() -> Result<Formats, String> {
    crate::tracefs::mount_privately()?;
    let read = |ev: &str| -> Result<EventFormat, String> {
        let dir = format!("{TRACEFS}/events/{ev}");
        let id = fs::read_to_string(format!("{dir}/id"))
            .map_err(|e| format!("{dir}/id: {e}"))?
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("{dir}/id: {e}"))?;
        let text = fs::read_to_string(format!("{dir}/format"))
            .map_err(|e| format!("{dir}/format: {e}"))?;
        Ok(EventFormat::parse(id, &text))
    };
    // The thread ends here; its mount namespace (and the tracefs mount) go with it.
    Ok(Formats {
        set_state: read("sock/inet_sock_set_state")?,
        destroy: read("tcp/tcp_destroy_sock")?,
        retransmit: read("tcp/tcp_retransmit_skb")?,
        send_reset: read("tcp/tcp_send_reset")?,
    })
}

/// What a kernel event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelEventKind {
    /// `inet_sock_set_state`: kernel state numbers (`TCP_ESTABLISHED` = 1 ...).
    SetState {
        /// Before.
        old: u8,
        /// After.
        new: u8,
    },
    /// `tcp_destroy_sock`, with the socket's cookie.
    Destroy {
        /// `SO_COOKIE` of the socket.
        cookie: u64,
    },
    /// `tcp_retransmit_skb`, in state `state`.
    Retransmit {
        /// The socket's state then.
        state: u8,
    },
    /// `tcp_send_reset`: an RST sent, by a socket (in state `state`) or, from 6.10 on, also
    /// without one (`skaddr` 0, `state` 0: no socket, or a timewait/request socket).
    SendReset {
        /// The socket's state then (0: none).
        state: u8,
        /// The kernel's reason (`enum sk_rst_reason`, 6.10 on); `None` on kernels whose
        /// event has no `reason` field ([`reset_reasons_reported`]).
        reason: Option<u32>,
    },
}

/// Whether this kernel's `tcp:tcp_send_reset` carries a `reason` (6.10 and later); `None`
/// when the tracepoint's format could not be read.
pub fn reset_reasons_reported() -> Option<bool> {
    formats()
        .ok()
        .map(|f| f.send_reset.fields.contains_key("reason"))
}

/// The kernel's name for an RST reason value, as its `tcp_send_reset` prints it
/// (`NO_SOCKET`, `TCP_ABORT_ON_LINGER` … : `enum sk_rst_reason` without `SK_RST_REASON_`).
pub fn reset_reason_name(value: u32) -> Option<&'static str> {
    let f = formats().ok()?;
    f.send_reset
        .reason_names
        .iter()
        .find(|(v, _)| *v == u64::from(value))
        .map(|(_, n)| n.as_str())
}

/// One kernel event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelEvent {
    /// CLOCK_REALTIME, ns (the clock of pcap timestamps).
    pub ts_ns: u64,
    /// The socket's kernel address (identity while it lives).
    pub skaddr: u64,
    /// Local port (0 before one is bound).
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// What happened.
    pub kind: KernelEventKind,
}

/// The kernel's spelling of a state number (`include/net/tcp_states.h`), RFC style.
pub fn kernel_state_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECEIVED",
        4 => "FIN_WAIT_1",
        5 => "FIN_WAIT_2",
        6 => "TIME_WAIT",
        7 => "CLOSED",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => return None,
    })
}

/// The kernel's `TCP_TIME_WAIT`.
pub const TCP_TIME_WAIT: u8 = 6;

/// Data pages per CPU ring: a run makes about 15 events of ~100 bytes, and one trace may
/// serve a whole batch of parallel runs between two reads.
const RING_PAGES: usize = 64;

/// A recording of the four tracepoints on every CPU, filtered to some ports.
#[derive(Debug)]
pub struct KernelTrace {
    source: Source,
    formats: &'static Formats,
    /// Added to a sample's time to get CLOCK_REALTIME (0 when perf stamps it directly).
    clock_offset_ns: i64,
    buf: Vec<u8>,
    /// Every event since the start, in time order (unless [`KernelTrace::stop_log`]).
    events: Vec<KernelEvent>,
    log: bool,
    /// The same events by socket, for attribution without a scan ([`KernelTrace::socket`]).
    index: SocketIndex,
    lost: u64,
    /// Why the tracefs instance could not be made, when perf records instead.
    tracefs_error: Option<String>,
    /// CLOCK_REALTIME when the latest read of the rings began: every event stamped
    /// before it is read ([`KernelTrace::read_after`]).
    read_at_ns: u64,
}

/// The trace's events filed by socket as they are read, so that finding a socket's events
/// costs one hash lookup, whatever the length of the batch.
///
/// A socket's events are serialised by its lock, so each is in its CPU's ring before the
/// next one (on any CPU) begins; but one read of the rings goes CPU by CPU, and can find a
/// socket's destroy on a later CPU while an earlier event of it, on a CPU read before, was
/// not there yet. That event is in its ring before the destroy was, so the next read of all
/// rings has it: a destroy is acted on only after one more read of every CPU.
#[derive(Debug, Default)]
struct SocketIndex {
    /// Events of sockets not (yet) seen destroyed, by kernel address, in time order.
    open: HashMap<u64, Vec<KernelEvent>>,
    /// Destroys read by the latest read of the rings: acted on after the next one.
    dying: Vec<KernelEvent>,
    /// Destroyed sockets by cookie: the destroy's time and the socket's other events.
    ended: HashMap<u64, (u64, Vec<KernelEvent>)>,
    /// Every RST sent (`tcp_send_reset`), in time order, found by ports and time
    /// ([`KernelTrace::resets`]): an RST sent without a full socket (no socket left, a
    /// timewait socket) belongs to no destroyed socket.
    resets: Vec<KernelEvent>,
}

impl SocketIndex {
    /// File one read's events (in time order); act on the previous read's destroys.
    fn add(&mut self, new: &[KernelEvent]) {
        let ready = std::mem::take(&mut self.dying);
        for e in new {
            if let KernelEventKind::Destroy { .. } = e.kind {
                self.dying.push(*e);
                continue;
            }
            if let KernelEventKind::SendReset { .. } = e.kind {
                let at = self.resets.partition_point(|x| x.ts_ns <= e.ts_ns);
                self.resets.insert(at, *e);
                if e.skaddr == 0 {
                    continue; // sent without a socket: no socket's event
                }
            }
            let v = self.open.entry(e.skaddr).or_default();
            // In time order: rings are read one CPU after another.
            let at = v.partition_point(|x| x.ts_ns <= e.ts_ns);
            v.insert(at, *e);
        }
        for d in ready {
            let KernelEventKind::Destroy { cookie } = d.kind else {
                continue;
            };
            let Some(v) = self.open.get_mut(&d.skaddr) else {
                continue; // a socket on no traced port (destroys are not filtered)
            };
            // Events after the destroy belong to the next socket at this address.
            let n = v.partition_point(|x| x.ts_ns <= d.ts_ns);
            let mine: Vec<KernelEvent> = v.drain(..n).collect();
            if v.is_empty() {
                self.open.remove(&d.skaddr);
            }
            // A socket with only unfiltered events (RSTs) on no traced port is not ours.
            let traced = mine.iter().any(|e| {
                matches!(
                    e.kind,
                    KernelEventKind::SetState { .. } | KernelEventKind::Retransmit { .. }
                )
            });
            if traced {
                self.ended.insert(cookie, (d.ts_ns, mine));
            }
        }
    }

    /// Forget sockets destroyed, or silent, since before `ts_ns`.
    fn prune_before(&mut self, ts_ns: u64) {
        let old = self.resets.partition_point(|e| e.ts_ns < ts_ns);
        self.resets.drain(..old);
        self.ended.retain(|_, (destroyed, _)| *destroyed >= ts_ns);
        self.open
            .retain(|_, v| v.last().is_some_and(|e| e.ts_ns >= ts_ns));
    }
}

/// Where the events come from.
#[derive(Debug)]
enum Source {
    /// A private ftrace instance (the first choice: it loses nothing).
    Tracefs(crate::tracefs::Instance),
    /// perf rings, one per CPU (where tracefs instances cannot be made).
    Perf(Vec<(Vec<OwnedFd>, Ring)>),
}

/// How a [`KernelTrace`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceBackend {
    /// A private tracefs (ftrace) instance.
    Tracefs,
    /// perf_event_open rings.
    Perf,
}

impl KernelTrace {
    /// Start recording the events of TCP sockets whose local or remote port is in `ports`.
    pub fn start(ports: &[u16]) -> Result<KernelTrace, TraceError> {
        KernelTrace::start_ports_and_ranges(ports, &[])
    }

    /// Start recording the events of TCP sockets with a local or remote port in `ports`.
    pub fn start_port_range(ports: std::ops::Range<u16>) -> Result<KernelTrace, TraceError> {
        KernelTrace::start_ports_and_ranges(&[], &[ports])
    }

    /// Start recording the events of TCP sockets whose local or remote port is one of
    /// `ports` or in one of `ranges`: one trace for every place of a process (a fresh
    /// namespace's port and the pooled namespace's range), made once.
    pub fn start_ports_and_ranges(
        ports: &[u16],
        ranges: &[std::ops::Range<u16>],
    ) -> Result<KernelTrace, TraceError> {
        let singles = ports
            .iter()
            .map(|p| format!("sport == {p} || dport == {p}"));
        let spans = ranges.iter().map(|r| {
            let (lo, hi) = (r.start, r.end);
            format!("(sport >= {lo} && sport < {hi}) || (dport >= {lo} && dport < {hi})")
        });
        let filter = singles.chain(spans).collect::<Vec<_>>().join(" || ");
        KernelTrace::start_filtered(&filter)
    }

    /// Why no tracefs instance could be made, when the trace fell back to perf.
    pub fn tracefs_error(&self) -> Option<&str> {
        self.tracefs_error.as_deref()
    }

    /// How this trace records.
    pub fn backend(&self) -> TraceBackend {
        match self.source {
            Source::Tracefs(_) => TraceBackend::Tracefs,
            Source::Perf(_) => TraceBackend::Perf,
        }
    }

    fn start_filtered(filter: &str) -> Result<KernelTrace, TraceError> {
        let formats = formats()?;
        // Destroys are not filtered: an aborted socket (SO_LINGER 0 → tcp_disconnect) has its
        // remote port cleared by then, and attribution needs its destroy. tcp_send_reset has
        // no port fields. Both are one event per socket at most.
        let filter = (!filter.is_empty()).then_some(filter);
        let specs = [
            crate::tracefs::EventSpec {
                path: "sock/inet_sock_set_state",
                filter,
            },
            crate::tracefs::EventSpec {
                path: "tcp/tcp_destroy_sock",
                filter: None,
            },
            crate::tracefs::EventSpec {
                path: "tcp/tcp_retransmit_skb",
                filter,
            },
            crate::tracefs::EventSpec {
                path: "tcp/tcp_send_reset",
                filter: None,
            },
        ];
        let tracefs_err = match crate::tracefs::Instance::create(&specs, &online_cpus()) {
            Ok(inst) => {
                return Ok(KernelTrace {
                    source: Source::Tracefs(inst),
                    formats,
                    // trace_clock "mono" is CLOCK_MONOTONIC.
                    clock_offset_ns: realtime_minus_monotonic(),
                    buf: Vec::new(),
                    events: Vec::new(),
                    log: true,
                    index: SocketIndex::default(),
                    lost: 0,
                    tracefs_error: None,
                    read_at_ns: 0,
                });
            }
            Err(e) => e,
        };
        let mut trace =
            KernelTrace::start_perf(formats, filter.unwrap_or("")).map_err(|e| match e {
                TraceError::Perf { op, source } => TraceError::Perf {
                    op,
                    source: io::Error::new(
                        source.kind(),
                        format!("{source} (tracefs instance: {tracefs_err})"),
                    ),
                },
                e => e,
            })?;
        trace.tracefs_error = Some(tracefs_err);
        Ok(trace)
    }

    fn start_perf(formats: &'static Formats, filter: &str) -> Result<KernelTrace, TraceError> {
        let perr = |op| move |source| TraceError::Perf { op, source };
        let ncpu = online_cpus();
        // CLOCK_REALTIME if perf allows it for tracepoints; else CLOCK_MONOTONIC plus the
        // offset between the two clocks, measured now.
        let mut clock = Some(libc::CLOCK_REALTIME);
        let mut cpus = Vec::new();
        for cpu in ncpu {
            let mut fds = Vec::new();
            for ev in [
                &formats.set_state,
                &formats.destroy,
                &formats.retransmit,
                &formats.send_reset,
            ] {
                let fd = match perf::open_tracepoint(ev.id, cpu, clock) {
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && clock.is_some() => {
                        clock = Some(libc::CLOCK_MONOTONIC);
                        perf::open_tracepoint(ev.id, cpu, clock)
                    }
                    r => r,
                }
                .map_err(perr("perf_event_open(tracepoint)"))?;
                let filtered = ev.id == formats.set_state.id || ev.id == formats.retransmit.id;
                if !filter.is_empty() && filtered {
                    perf::set_filter(&fd, filter).map_err(perr("PERF_EVENT_IOC_SET_FILTER"))?;
                }
                fds.push(fd);
            }
            let ring = Ring::map(&fds[0], RING_PAGES).map_err(perr("mmap(perf ring)"))?;
            for fd in &fds[1..] {
                perf::set_output(fd, &fds[0]).map_err(perr("PERF_EVENT_IOC_SET_OUTPUT"))?;
            }
            cpus.push((fds, ring));
        }
        let clock_offset_ns = if clock == Some(libc::CLOCK_REALTIME) {
            0
        } else {
            realtime_minus_monotonic()
        };
        for (fds, _) in &cpus {
            for fd in fds {
                perf::enable(fd).map_err(perr("PERF_EVENT_IOC_ENABLE"))?;
            }
        }
        Ok(KernelTrace {
            source: Source::Perf(cpus),
            formats,
            clock_offset_ns,
            buf: Vec::new(),
            events: Vec::new(),
            log: true,
            index: SocketIndex::default(),
            lost: 0,
            tracefs_error: None,
            read_at_ns: 0,
        })
    }

    /// Read what the rings hold so far; all events since the start, in time order (none
    /// after [`KernelTrace::stop_log`]). A read that finds a destroy reads every ring once
    /// more, so the destroyed sockets' events are complete ([`KernelTrace::socket`]).
    pub fn poll(&mut self) -> &[KernelEvent] {
        let mut new = self.read_rings();
        self.index.add(&new);
        if !self.index.dying.is_empty() {
            let again = self.read_rings();
            self.index.add(&again);
            new.extend(again);
            new.sort_by_key(|e| e.ts_ns);
        }
        if self.log {
            let in_order = match (self.events.last(), new.first()) {
                (Some(l), Some(f)) => l.ts_ns <= f.ts_ns,
                _ => true,
            };
            self.events.extend(new);
            if !in_order {
                self.events.sort_by_key(|e| e.ts_ns);
            }
        }
        &self.events
    }

    /// Keep no log of all events (only the per-socket index): a trace serving a long batch
    /// then holds only the sockets not yet asked for.
    pub fn stop_log(&mut self) {
        self.log = false;
        self.events = Vec::new();
    }

    /// The events of the destroyed socket whose cookie is `cookie` (without its destroy), in
    /// time order, as of the last [`KernelTrace::poll`]; `None` while its destroy is not read.
    pub fn socket(&self, cookie: u64) -> Option<&[KernelEvent]> {
        self.index.ended.get(&cookie).map(|(_, v)| v.as_slice())
    }

    /// Make sure every event stamped before `ts_ns` (CLOCK_REALTIME) has been read: read the
    /// rings again unless a read began after it. An RST a capture saw at `ts_ns` was traced
    /// before it went out, so it is then in [`KernelTrace::resets`].
    pub fn read_after(&mut self, ts_ns: u64) {
        if self.read_at_ns <= ts_ns {
            self.poll();
        }
    }

    /// The RSTs sent (`tcp_send_reset`, by a socket or without one) between the ports `a`
    /// and `b` (either way) at or after `since_ns`, in time order, as of the last read.
    pub fn resets(&self, a: u16, b: u16, since_ns: u64) -> Vec<KernelEvent> {
        let from = self.index.resets.partition_point(|e| e.ts_ns < since_ns);
        self.index.resets[from..]
            .iter()
            .filter(|e| (e.sport, e.dport) == (a, b) || (e.sport, e.dport) == (b, a))
            .copied()
            .collect()
    }

    /// Forget the socket `cookie` (its run has its events).
    pub fn forget(&mut self, cookie: u64) {
        self.index.ended.remove(&cookie);
    }

    /// One read of every CPU's ring: the new events, in time order.
    fn read_rings(&mut self) -> Vec<KernelEvent> {
        self.read_at_ns = realtime_ns();
        let mut out = Vec::new();
        match &mut self.source {
            Source::Perf(cpus) => {
                for (_, ring) in cpus {
                    self.buf.clear();
                    ring.drain(&mut self.buf);
                    let (events, lost) =
                        parse_records(&self.buf, self.formats, self.clock_offset_ns);
                    out.extend(events);
                    self.lost += lost;
                }
            }
            Source::Tracefs(inst) => {
                let mut pages = Vec::new();
                inst.read_pages(page_size(), &mut pages);
                let (f, offset) = (self.formats, self.clock_offset_ns);
                for page in &pages {
                    self.lost += crate::tracefs::parse_page(page, |ts, raw| {
                        let ts_ns = (ts as i64).saturating_add(offset).max(0) as u64;
                        if let Some(e) = decode(raw, f, ts_ns) {
                            out.push(e);
                        }
                    });
                }
            }
        }
        out.sort_by_key(|e| e.ts_ns);
        out
    }

    /// Records the kernel lost so far (ring full).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Forget events older than `ts_ns` (a trace that serves a long batch stays small). A
    /// socket's events all precede its destroy, so whole sockets are forgotten, oldest first.
    pub fn prune_before(&mut self, ts_ns: u64) {
        let keep = self.events.partition_point(|e| e.ts_ns < ts_ns);
        self.events.drain(..keep);
        self.index.prune_before(ts_ns);
    }

    /// Stop, read the rest, and return every event in time order and the count of records
    /// the kernel lost (ring full).
    pub fn finish(mut self) -> (Vec<KernelEvent>, u64) {
        if let Source::Perf(cpus) = &self.source {
            for (fds, _) in cpus {
                for fd in fds {
                    let _ = perf::disable(fd);
                }
            }
        }
        self.poll();
        (std::mem::take(&mut self.events), self.lost)
    }

    /// True once the destroy of every socket in `cookies` has been recorded (after reading
    /// the rings, if one is missing).
    pub fn destroyed(&mut self, cookies: &[u64]) -> bool {
        let all = |t: &KernelTrace| cookies.iter().all(|c| t.index.ended.contains_key(c));
        if all(self) {
            return true;
        }
        self.poll();
        all(self)
    }
}

/// The tracefs instances this process has now (each live [`KernelTrace`] that records
/// through tracefs has one; none is left once they are finished or dropped).
pub fn own_tracefs_instances() -> Result<Vec<String>, TraceError> {
    crate::tracefs::own_instances().map_err(TraceError::Tracefs)
}

fn online_cpus() -> Vec<i32> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut v = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.split('-').map(|n| n.parse::<i32>().ok());
        match (ends.next().flatten(), ends.next().flatten()) {
            (Some(a), Some(b)) => v.extend(a..=b),
            (Some(a), None) => v.push(a),
            _ => {}
        }
    }
    if v.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        v.extend(0..i32::try_from(n).unwrap_or(1));
    }
    v
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

fn realtime_minus_monotonic() -> i64 {
    use nix::time::{clock_gettime, ClockId};
    let ns = |c| {
        clock_gettime(c)
            .map(|t| t.tv_sec() * 1_000_000_000 + t.tv_nsec())
            .unwrap_or(0)
    };
    ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_MONOTONIC)
}

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;

/// Decode perf records (sample_type TIME | RAW) into events; also the lost-record count.
fn parse_records(buf: &[u8], f: &Formats, offset_ns: i64) -> (Vec<KernelEvent>, u64) {
    let mut out = Vec::new();
    let mut lost = 0;
    let mut at = 0usize;
    let u16_at = |i: usize| buf.get(i..i + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        buf.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    let u64_at = |i: usize| {
        buf.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    while let (Some(ty), Some(size)) = (u32_at(at), u16_at(at + 6)) {
        let size = usize::from(size);
        if size < 8 {
            break;
        }
        match ty {
            PERF_RECORD_LOST => lost += u64_at(at + 16).unwrap_or(0),
            PERF_RECORD_SAMPLE => {
                let time = u64_at(at + 8).unwrap_or(0);
                let raw_len = u32_at(at + 16).unwrap_or(0) as usize;
                if let Some(raw) = buf.get(at + 20..at + 20 + raw_len) {
                    let ts_ns = (time as i64).saturating_add(offset_ns).max(0) as u64;
                    if let Some(e) = decode(raw, f, ts_ns) {
                        out.push(e);
                    }
                }
            }
            _ => {}
        }
        at += size;
    }
    (out, lost)
}

fn decode(raw: &[u8], f: &Formats, ts_ns: u64) -> Option<KernelEvent> {
    let ty = u64::from(u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]));
    let (fmt, kind) = if ty == f.set_state.id {
        let s = &f.set_state;
        (
            s,
            KernelEventKind::SetState {
                old: s.get(raw, "oldstate")? as u8,
                new: s.get(raw, "newstate")? as u8,
            },
        )
    } else if ty == f.destroy.id {
        let d = &f.destroy;
        (
            d,
            KernelEventKind::Destroy {
                cookie: d.get(raw, "sock_cookie")?,
            },
        )
    } else if ty == f.retransmit.id {
        let r = &f.retransmit;
        (
            r,
            KernelEventKind::Retransmit {
                state: r.get(raw, "state")? as u8,
            },
        )
    } else if ty == f.send_reset.id {
        let r = &f.send_reset;
        (
            r,
            KernelEventKind::SendReset {
                state: r.get(raw, "state")? as u8,
                reason: r.get(raw, "reason").map(|v| v as u32),
            },
        )
    } else {
        return None;
    };
    Some(KernelEvent {
        ts_ns,
        skaddr: fmt.get(raw, "skaddr")?,
        sport: fmt.port(raw, "sport", "saddr"),
        dport: fmt.port(raw, "dport", "daddr"),
        kind,
    })
}

/// The events of the socket whose cookie is `cookie` (without its destroy event), in time
/// order; `None` when its destroy was not recorded. `events` must be in time order.
pub fn socket_events(events: &[KernelEvent], cookie: u64) -> Option<Vec<KernelEvent>> {
    let end = events
        .iter()
        .position(|e| e.kind == KernelEventKind::Destroy { cookie })?;
    let sk = events[end].skaddr;
    // The previous socket at this address (if any) was destroyed before ours was made.
    let start = events[..end]
        .iter()
        .rposition(|e| e.skaddr == sk && matches!(e.kind, KernelEventKind::Destroy { .. }))
        .map_or(0, |i| i + 1);
    Some(
        events[start..end]
            .iter()
            .filter(|e| e.skaddr == sk)
            .copied()
            .collect(),
    )
}

/// Cookies of the TCP sockets in TIME_WAIT in the calling thread's network namespace
/// (sock_diag, `ss -tan state time-wait`), IPv4 and IPv6.
pub fn time_wait_cookies() -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        out.extend(
            diag_dump(family, 1 << TCP_TIME_WAIT)?
                .into_iter()
                .map(|(c, _)| c),
        );
    }
    Ok(out)
}

/// The kernel state of the TCP socket `local` → `remote` whose cookie is `cookie`, in the
/// calling thread's network namespace: one exact sock_diag lookup (the kernel's 4-tuple hash,
/// O(1)), where a dump would walk every socket of the machine's hash table. A timewait socket
/// keeps the full socket's cookie and reports its sub-state. `None`: no such socket (closed,
/// or another socket now holds the 4-tuple).
pub fn socket_state(
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    cookie: u64,
) -> io::Result<Option<u8>> {
    let sock = diag_socket()?;
    Ok(exact_lookup(&sock, local, remote, cookie)?.map(|a| a.state))
}

/// A sock_diag netlink socket in the calling thread's namespace (for exact lookups and dumps).
fn diag_socket() -> io::Result<std::os::fd::OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?)
}

/// A socket the namespace holds in TIME_WAIT, with the kernel's own figure for how long it
/// has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitSocket {
    /// The full socket's cookie (the timewait socket keeps it).
    pub cookie: u64,
    /// `idiag_expires`: ms until the timewait socket's timer fires (its end).
    pub remaining_ms: u32,
    /// When the kernel answered, CLOCK_REALTIME ns (the capture's and the trace's clock).
    pub looked_up_ns: u64,
}

impl TimeWaitSocket {
    /// How long the TIME_WAIT is set to last from `entered_ns` (CLOCK_REALTIME ns): what was
    /// left at the lookup plus what had passed by then, in whole ms (the kernel's figure is
    /// whole ms of jiffies).
    pub fn lasts_ms(&self, entered_ns: u64) -> u64 {
        u64::from(self.remaining_ms)
            + (self.looked_up_ns.saturating_sub(entered_ns) + 500_000) / 1_000_000
    }
}

/// Of `sockets` (local, remote, cookie), the ones the calling thread's namespace holds in
/// TIME_WAIT, with their remaining time (exact lookups, see [`socket_state`]).
pub fn time_wait_of(
    sockets: &[(std::net::SocketAddr, std::net::SocketAddr, u64)],
) -> io::Result<Vec<TimeWaitSocket>> {
    let sock = diag_socket()?;
    let mut out = Vec::new();
    for &(local, remote, cookie) in sockets {
        if let Some(DiagAnswer {
            state: TCP_TIME_WAIT,
            expires_ms,
        }) = exact_lookup(&sock, local, remote, cookie)?
        {
            out.push(TimeWaitSocket {
                cookie,
                remaining_ms: expires_ms,
                looked_up_ns: realtime_ns(),
            });
        }
    }
    Ok(out)
}

/// What an exact lookup tells about one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiagAnswer {
    /// The kernel's state number (a timewait socket: its sub-state).
    state: u8,
    /// `idiag_expires`: ms until the socket's pending timer fires (0: none).
    expires_ms: u32,
}

/// One `inet_diag_req_v2` without NLM_F_DUMP: the kernel answers with the one socket
/// (`inet_diag_find_one_icsk`) or an error (ENOENT, ESTALE when the cookie differs).
fn exact_lookup(
    sock: &OwnedFd,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    cookie: u64,
) -> io::Result<Option<DiagAnswer>> {
    use std::net::{IpAddr, SocketAddr};
    let family = match local {
        SocketAddr::V4(_) => libc::AF_INET as u8,
        SocketAddr::V6(_) => libc::AF_INET6 as u8,
    };
    let mut m = [0u8; 72];
    m[0..4].copy_from_slice(&72u32.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m[16] = family;
    m[17] = libc::IPPROTO_TCP as u8;
    m[20..24].copy_from_slice(&0xfffu32.to_ne_bytes());
    // inet_diag_sockid at 24: sport, dport (big-endian), src[16], dst[16], if, cookie[2].
    m[24..26].copy_from_slice(&local.port().to_be_bytes());
    m[26..28].copy_from_slice(&remote.port().to_be_bytes());
    let put = |m: &mut [u8; 72], at: usize, ip: IpAddr| match ip {
        IpAddr::V4(a) => m[at..at + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => m[at..at + 16].copy_from_slice(&a.octets()),
    };
    put(&mut m, 28, local.ip());
    put(&mut m, 44, remote.ip());
    m[64..68].copy_from_slice(&(cookie as u32).to_ne_bytes());
    m[68..72].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
    socket::sendto(
        sock.as_raw_fd(),
        &m,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 2048];
    let n = socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    if n < 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sock_diag: short answer",
        ));
    }
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    if ty == NLMSG_ERROR {
        let code = buf
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i32::from_ne_bytes);
        return match -code {
            0 | libc::ENOENT | libc::ESTALE => Ok(None),
            e => Err(io::Error::from_raw_os_error(e)),
        };
    }
    Ok(parse_diag_msg(&buf[..n]))
}

/// The state and timer of the `inet_diag_msg` after a 16-byte netlink header: family (16),
/// state (17), timer, retrans, the 48-byte socket id, then `idiag_expires` (68..72).
fn parse_diag_msg(msg: &[u8]) -> Option<DiagAnswer> {
    let state = *msg.get(17)?;
    let expires_ms = msg
        .get(68..72)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes);
    Some(DiagAnswer { state, expires_ms })
}

/// Every TCP socket of the calling thread's namespace: (cookie, kernel state number); a
/// timewait socket reports its sub-state (FIN_WAIT_2 or TIME_WAIT).
pub fn socket_states() -> io::Result<Vec<(u64, u8)>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        out.extend(diag_dump(family, 0xfff)?);
    }
    Ok(out)
}

/// Samples of a [`DiagPoller`]: per cookie, (CLOCK_REALTIME ns, kernel state) at each change;
/// a socket that disappeared gets state `CLOSED` (7) at the first dump without it.
pub type DiagSamples = HashMap<u64, Vec<(u64, u8)>>;

/// The fallback when tracepoints are not available (no CAP_PERFMON, e.g. in an unprivileged
/// user namespace): sock_diag dumps of the run's namespaces every `interval`. States that
/// last less than the interval can be missed; retransmissions are not seen.
#[derive(Debug)]
pub struct DiagPoller {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<DiagSamples>>,
    threads: Vec<crate::netns::NsThread<Option<String>>>,
}

impl DiagPoller {
    /// Start one polling thread in each namespace.
    pub fn start(
        namespaces: &[&crate::Netns],
        interval: std::time::Duration,
    ) -> Result<DiagPoller, crate::NetnsError> {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(DiagSamples::new()));
        let mut threads = Vec::new();
        for ns in namespaces {
            let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
            threads.push(ns.spawn("tcplab-diag-poll", move || {
                let mut mine: Vec<u64> = Vec::new();
                loop {
                    let last_round = stop.load(Ordering::Acquire);
                    let dump = match socket_states() {
                        Ok(d) => d,
                        Err(e) => return Some(format!("sock_diag: {e}")),
                    };
                    let now = realtime_ns();
                    if let Ok(mut m) = samples.lock() {
                        for (cookie, state) in &dump {
                            let v = m.entry(*cookie).or_default();
                            if v.last().map(|l| l.1) != Some(*state) {
                                v.push((now, *state));
                            }
                            if !mine.contains(cookie) {
                                mine.push(*cookie);
                            }
                        }
                        for c in &mine {
                            if dump.iter().all(|(d, _)| d != c) {
                                let v = m.entry(*c).or_default();
                                if v.last().map(|l| l.1) != Some(7) {
                                    v.push((now, 7));
                                }
                            }
                        }
                    }
                    if last_round {
                        return None;
                    }
                    std::thread::sleep(interval);
                }
            })?);
        }
        Ok(DiagPoller {
            stop,
            samples,
            threads,
        })
    }

    /// The samples so far.
    pub fn samples(&self) -> DiagSamples {
        self.samples.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Stop after one last dump; the samples, or the first error a poller met.
    pub fn finish(self) -> Result<DiagSamples, String> {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            match t.join() {
                Ok(None) => {}
                Ok(Some(e)) => return Err(e),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(self.samples.lock().map(|m| m.clone()).unwrap_or_default())
    }
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// One `inet_diag_req_v2` dump of TCP sockets in `states`: (cookie, state).
fn diag_dump(family: u8, states: u32) -> io::Result<Vec<(u64, u8)>> {
    let sock = diag_socket()?;
    // nlmsghdr (16) + inet_diag_req_v2 { family, protocol, ext, pad, states u32,
    // inet_diag_sockid (48 bytes) } = 72 bytes.
    let mut m = vec![0u8; 72];
    m[0..4].copy_from_slice(&72u32.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m[16] = family;
    m[17] = libc::IPPROTO_TCP as u8;
    m[20..24].copy_from_slice(&states.to_ne_bytes());
    socket::sendto(
        sock.as_raw_fd(),
        &m,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    recv_cookies(&sock)
}

fn recv_cookies(sock: &OwnedFd) -> io::Result<Vec<(u64, u8)>> {
    let mut cookies = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        let mut at = 0usize;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
            let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if len < 16 || at + len > n {
                return Ok(cookies);
            }
            match ty {
                NLMSG_DONE => return Ok(cookies),
                NLMSG_ERROR => {
                    let code = buf
                        .get(at + 16..at + 20)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, i32::from_ne_bytes);
                    return Err(io::Error::from_raw_os_error(-code));
                }
                _ => {
                    // inet_diag_msg: family, state, timer, retrans, then inet_diag_sockid
                    // { sport, dport, src[16], dst[16], if u32, cookie[2] u32 }: the cookie
                    // is at bytes 44..52 of the message body.
                    let body = at + 16;
                    if let (Some(c), Some(st)) = (buf.get(body + 44..body + 52), buf.get(body + 1))
                    {
                        let lo = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                        let hi = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
                        cookies.push((u64::from(hi) << 32 | u64::from(lo), *st));
                    }
                }
            }
            at += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: u64, sk: u64, kind: KernelEventKind) -> KernelEvent {
        KernelEvent {
            ts_ns: ts,
            skaddr: sk,
            sport: 60000,
            dport: 40000,
            kind,
        }
    }

    #[test]
    fn format_files_parse() {
        let text = "name: inet_sock_set_state\nID: 2287\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;\n";
        let f = EventFormat::parse(2287, text);
        assert_eq!(f.fields["skaddr"].offset, 8);
        assert_eq!(f.fields["oldstate"].size, 4);
        assert_eq!(f.fields["saddr"].offset, 32);
        let mut raw = vec![0u8; 40];
        raw[16..20].copy_from_slice(&4i32.to_ne_bytes());
        assert_eq!(f.get(&raw, "oldstate"), Some(4));
        assert_eq!(f.get(&raw[..10], "oldstate"), None);
    }

    #[test]
    fn attribution_follows_the_cookie_not_the_address() {
        use KernelEventKind::*;
        let events = vec![
            // Another run's socket at the same address, destroyed before ours existed.
            ev(1, 0xA, SetState { old: 7, new: 2 }),
            ev(2, 0xA, Destroy { cookie: 99 }),
            // Ours.
            ev(3, 0xA, SetState { old: 7, new: 2 }),
            ev(4, 0xB, SetState { old: 7, new: 2 }),
            ev(5, 0xA, SetState { old: 2, new: 1 }),
            ev(6, 0xA, Retransmit { state: 4 }),
            ev(7, 0xA, Destroy { cookie: 42 }),
            // The address reused after ours.
            ev(8, 0xA, SetState { old: 7, new: 2 }),
        ];
        let ours = socket_events(&events, 42).expect("destroy recorded");
        assert_eq!(
            ours.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
            vec![3, 5, 6]
        );
        assert!(socket_events(&events, 7).is_none());
    }

    #[test]
    fn reset_reasons_come_from_the_print_fmt() {
        // As 6.18 writes it (the state's symbols cut short).
        let text = "name: tcp_send_reset\nID: 2280\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;\n\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;\n\nprint fmt: \"skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s\", REC->skbaddr, REC->skaddr, REC->saddr, REC->daddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, \"TCP_ESTABLISHED\" }) : \"UNKNOWN\", __print_symbolic(REC->reason, { 0, \"NOT_SPECIFIED\" }, { 1, \"NO_SOCKET\" }, { 12, \"TCP_ABORT_ON_LINGER\" }, { 25, \"MAX\" })\n";
        let f = EventFormat::parse(2280, text);
        assert_eq!(f.fields["reason"].offset, 28);
        assert_eq!(
            f.reason_names,
            [
                (0, "NOT_SPECIFIED".to_owned()),
                (1, "NO_SOCKET".to_owned()),
                (12, "TCP_ABORT_ON_LINGER".to_owned()),
                (25, "MAX".to_owned()),
            ]
        );
        // The ports come from the sockaddr fields: family, then the port in network order.
        let mut raw = vec![0u8; 88];
        raw[28..32].copy_from_slice(&12u32.to_ne_bytes());
        raw[32..34].copy_from_slice(&2u16.to_ne_bytes());
        raw[34..36].copy_from_slice(&40000u16.to_be_bytes());
        raw[62..64].copy_from_slice(&60000u16.to_be_bytes());
        assert_eq!(f.get(&raw, "reason"), Some(12));
        assert_eq!(f.port(&raw, "sport", "saddr"), 40000);
        assert_eq!(f.port(&raw, "dport", "daddr"), 60000);
        // 6.1's event: host-order port fields, no reason, no names.
        let old = "format:\n\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;\n\nprint fmt: \"family=%s sport=%hu\", __print_symbolic(REC->family, { 2, \"AF_INET\" })\n";
        let f = EventFormat::parse(1, old);
        assert!(f.reason_names.is_empty());
        let mut raw = vec![0u8; 40];
        raw[28..30].copy_from_slice(&40000u16.to_ne_bytes());
        assert_eq!(f.port(&raw, "sport", "saddr"), 40000);
        assert_eq!(f.get(&raw, "reason"), None);
    }

    #[test]
    fn state_names() {
        assert_eq!(kernel_state_name(11), Some("CLOSING"));
        assert_eq!(kernel_state_name(7), Some("CLOSED"));
        assert_eq!(kernel_state_name(0), None);
    }

    #[test]
    fn diag_msg_gives_state_and_timer() {
        // nlmsghdr (16) + inet_diag_msg: a timewait socket with 59 996 ms left.
        let mut msg = vec![0u8; 88];
        msg[16] = libc::AF_INET as u8;
        msg[17] = TCP_TIME_WAIT;
        msg[18] = 3; // idiag_timer 3: the timewait timer
        msg[68..72].copy_from_slice(&59_996u32.to_ne_bytes());
        assert_eq!(
            parse_diag_msg(&msg),
            Some(DiagAnswer {
                state: TCP_TIME_WAIT,
                expires_ms: 59_996
            })
        );
        // Cut before the timer: the state alone; cut before the state: nothing.
        assert_eq!(parse_diag_msg(&msg[..40]).map(|a| a.expires_ms), Some(0));
        assert_eq!(parse_diag_msg(&msg[..17]), None);
    }

    #[test]
    fn time_wait_lasts_remaining_plus_elapsed() {
        let tw = TimeWaitSocket {
            cookie: 1,
            remaining_ms: 59_950,
            looked_up_ns: 10_050_000_000,
        };
        assert_eq!(tw.lasts_ms(10_000_000_000), 60_000);
        // An entry "after" the lookup (clock step) counts nothing elapsed.
        assert_eq!(tw.lasts_ms(20_000_000_000), 59_950);
    }
}
