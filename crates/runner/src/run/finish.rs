//! The end of every run, wherever it happened: classify the capture, check the expectation,
//! write the run's files. Also the mapping of setup errors to batch-fatal [`RunError`]s.

use std::time::Instant;

use tcplab_capture::{CaptureError, End, LinkError, NetnsError, ScriptReport};
use tcplab_trace::render::{human, TextOptions};
use tcplab_trace::{Analysis, Side, TcpState, TeardownKind};

use super::collect::analyze_pcap;
use super::kernel::{self, KernelStates};
use super::program::Programs;
use crate::expect::{check_run, Observed};
use crate::outcome::{Measured, RunError, RunOptions, RunOutcome, ViewVerdict};
use crate::results;
use crate::scenario::{IpVersion, Outcome, Scenario};
use crate::Problem;

/// Which run this is: its place in the batch, family, server port and start time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunId {
    pub index: u32,
    pub ip: IpVersion,
    pub port: u16,
    pub start: Instant,
}

impl RunId {
    pub fn new(index: u32, ip: IpVersion, port: u16) -> RunId {
        RunId {
            index,
            ip,
            port,
            start: Instant::now(),
        }
    }

    /// A run that could not be carried out: `open`, with `error` as its problem.
    pub fn failed(&self, error: String) -> RunOutcome {
        let mut o = self.blank();
        o.problems.push(Problem::RunFailed { error });
        o
    }

    /// The run before anything was observed: `open`, no problems.
    pub fn blank(&self) -> RunOutcome {
        RunOutcome {
            index: self.index,
            ip: self.ip,
            port: self.port,
            kind: TeardownKind::Open,
            active_closer: None,
            fin_ack_delay_ns: None,
            close_duration_ns: None,
            final_ack: false,
            packets: 0,
            drops: 0,
            client_states: Vec::new(),
            server_states: Vec::new(),
            warnings: Vec::new(),
            problems: Vec::new(),
            pcap: None,
            dir: None,
            narration: None,
            elapsed: self.start.elapsed(),
            measured: Measured::default(),
            timing_retries: 0,
            fin_retransmits: 0,
            server_view: None,
            views_disagree: false,
            kernel: None,
            kernel_explained: Vec::new(),
            kernel_disagreements: Vec::new(),
            link_impaired: false,
            client_calls: None,
            server_calls: None,
            client_close_blocked_ns: None,
            server_close_blocked_ns: None,
            shape: None,
            rst_reasons: [Vec::new(), Vec::new()],
            reconnect: None,
            injected: Vec::new(),
        }
    }
}

/// A run's packets as read from its capture(s), and the kernel's states.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// Classic pcap bytes: the client's view (`capture.pcap`).
    pub pcap: Vec<u8>,
    /// Packets the kernel dropped from the capture(s) during the run.
    pub drops: u64,
    /// Problems that make the run untrustworthy even if it classifies (capture read error,
    /// link relay stopped ...): each becomes the run's error and mismatch.
    pub errors: Vec<String>,
    /// On a link: the server's view (`capture-server.pcap`) and its drops.
    pub server_view: Option<(Vec<u8>, u64)>,
    /// The kernel's own states, where they were recorded.
    pub kernel: Option<KernelStates>,
    /// On a link with `[[link.inject]]`/`[[link.hold]]`: what the script did.
    pub script: Option<ScriptReport>,
}

/// What a run showed, before any judgement: each capture read and analysed, what the two
/// programs reported, the kernel's states, and whether the machine stalled meanwhile.
#[derive(Debug)]
pub(crate) struct Observation {
    /// Classic pcap bytes: the client's view (`capture.pcap`).
    pub pcap: Vec<u8>,
    /// Its analysis (or why there is none).
    pub analysis: Result<Analysis, String>,
    /// Packets the kernel dropped from the client's (or only) capture.
    pub drops: u64,
    /// On a link: the server's view.
    pub server_view: Option<ServerCapture>,
    /// What the programs reported.
    pub programs: Programs,
    /// The kernel's own states, where they were recorded.
    pub kernel: Option<KernelStates>,
    /// The stall meter's finding for the run's span ([`crate::stall`]).
    pub stall: Option<Problem>,
    /// Its finding for the whole run, from the programs' start: a run that failed to run
    /// (a program's 5 s timeout) during a stall failed on the machine's clock.
    pub stall_in_run: Option<Problem>,
    /// Problems found once the run's files were written (capture reader, link relay).
    pub late_errors: Vec<String>,
    /// On a link with a script: the segments it put on the wire, and what it missed.
    pub script: Option<ScriptReport>,
}

/// On a link: the server's capture and its analysis.
#[derive(Debug)]
pub(crate) struct ServerCapture {
    /// `capture-server.pcap`.
    pub pcap: Vec<u8>,
    /// Packets it dropped.
    pub drops: u64,
    /// Its analysis.
    pub analysis: Result<Analysis, String>,
}

/// Where a run's timing decides its outcome, in the capture (ns since the epoch): from the
/// last data segment (the I/O the close delays count from; the first packet when none
/// carried data) to the connection's last packet. `None` unless the capture holds exactly
/// one connection (then the whole run is judged).
fn close_span(analysis: &Result<Analysis, String>) -> Option<(u64, u64)> {
    let [c] = analysis.as_ref().ok()?.connections.as_slice() else {
        return None;
    };
    let first = c.packets.first()?.ts_ns;
    let last = c.packets.last()?.ts_ns;
    let from = c
        .packets
        .iter()
        .rev()
        .find(|p| p.len > 0)
        .map_or(first, |p| p.ts_ns);
    Some((u64::try_from(from).ok()?, u64::try_from(last).ok()?))
}

/// On loopback (no `[link]`), a FIN retransmitted after the peer's ACK covering it was
/// captured. An ACK on loopback reaches its socket within microseconds, so a retransmission
/// timer firing in between was overdue: the ACK timer and it fired in one batch after the
/// machine stalled past both (seen under two busy loops: a delayed ACK due at 10 ms left at
/// 18.9 ms and the FIN went again 32 µs later). That is the machine's timing, not the
/// kernel's rule. A kernel that really retransmits (its ACK comes later than its RTO) sends
/// the FIN again *before* any ACK of it, and that still counts.
fn timers_crossed(s: &Scenario, c: &tcplab_trace::Connection) -> Option<Problem> {
    if s.link.is_some() {
        // On a link the ACK is in flight for delay_ms: a crossing is ordinary there.
        return None;
    }
    c.packets.iter().enumerate().find_map(|(i, p)| {
        if p.role != tcplab_trace::Role::FinRetransmit {
            return None;
        }
        let fin_end = p.seq.plus(p.len).plus(1);
        let ack = c.packets[..i]
            .iter()
            .find(|q| q.from != p.from && q.flags.ack() && q.ack.covers(fin_end))?;
        Some(Problem::TimersCrossed {
            side: p.from,
            after_ack_us: (p.ts_ns - ack.ts_ns) as f64 / 1e3,
        })
    })
}

/// Read what the run left: analyse the capture(s), ask the stall meter.
pub(crate) fn observe(s: &Scenario, captured: Captured, programs: Programs) -> Observation {
    let analysis = analyze_pcap(&captured.pcap, results::PCAP_FILE);
    let server_view = captured.server_view.map(|(pcap, drops)| ServerCapture {
        analysis: analyze_pcap(&pcap, results::SERVER_PCAP_FILE)
            .map_err(|e| format!("server's capture: {e}")),
        pcap,
        drops,
    });
    // A guest stalled by its host: the kernel's timers were late too.
    let since = [
        programs.server.as_ref().map(|r| r.start_unix_ns),
        programs.client.as_ref().map(|r| r.start_unix_ns),
    ]
    .into_iter()
    .flatten()
    .min();
    let stall_in_run = since.and_then(|t| crate::stall::miss_since(t, s.timing_tolerance_ms));
    let stall = match close_span(&analysis) {
        Some((from, to)) => crate::stall::miss_within(from, to, s.timing_tolerance_ms),
        None => stall_in_run.clone(),
    };
    Observation {
        pcap: captured.pcap,
        analysis,
        drops: captured.drops,
        server_view,
        programs,
        kernel: captured.kernel,
        stall,
        stall_in_run,
        late_errors: captured.errors,
        script: captured.script,
    }
}

/// The verdict on an observation: what the run showed and what went wrong, in order. Pure:
/// no clock, no files, no privileges (tested with tables of captures as tcpdump text).
pub(crate) fn judge(s: &Scenario, id: RunId, obs: &Observation) -> RunOutcome {
    let programs = &obs.programs;
    let mut o = id.blank();
    // The run's own failures, in the order found; the first is its `error`.
    let mut failed: Vec<String> = programs.error.iter().cloned().collect();
    let mut timing = None;
    o.drops = obs.drops;
    o.link_impaired = s.link.as_ref().is_some_and(|l| l.impaired());
    let blocked = |c: &tcplab_client::CloseReport| (c.blocked_us() * 1e3).round() as i64;
    if let Some(c) = &programs.client {
        o.client_calls = Some(c.calls.clone());
        o.client_close_blocked_ns = Some(blocked(&c.close));
    }
    if let Some(r) = &programs.server {
        o.server_calls = Some(r.calls.clone());
        o.server_close_blocked_ns = Some(blocked(&r.close));
    }
    match &obs.analysis {
        Err(e) => failed.push(e.clone()),
        Ok(a) => {
            o.packets = a.file.packets;
            // A client that connected twice (`reconnect_after_ms`): the run is the first
            // connection, the second one's outcome is recorded beside it.
            let reconnecting = s.client.reconnect_after_ms.is_some();
            // A forged SYN (`[[link.inject]]` flags "S") after the close opens a connection
            // of the script's on the same 4-tuple: the run is the first one.
            let scripted_syn = s.link.as_ref().is_some_and(|l| l.forges_syn());
            let (connections, second) = match a.connections.as_slice() {
                [first, second] if reconnecting => (std::slice::from_ref(first), Some(second)),
                [first, _, ..] if scripted_syn => (std::slice::from_ref(first), None),
                cs => (cs, None),
            };
            if reconnecting {
                o.reconnect = Some(crate::outcome::ReconnectSeen {
                    connect_ns: programs
                        .client
                        .as_ref()
                        .and_then(|c| c.reconnect.as_ref())
                        .and_then(|r| r.connect_took_us)
                        .map(|us| (us * 1e3).round() as i64),
                    outcome: second.map(|c| crate::scenario::Outcome {
                        kind: c.teardown.kind,
                        closer: c.teardown.active_closer,
                    }),
                });
            }
            match connections {
                [c] => {
                    o.kind = c.teardown.kind;
                    o.active_closer = c.teardown.active_closer;
                    o.fin_ack_delay_ns = c.teardown.fin_ack_delay_ns;
                    o.close_duration_ns = c.teardown.close_duration_ns;
                    o.final_ack = c.teardown.final_ack;
                    o.fin_retransmits = c.teardown.fin_retransmits;
                    o.shape = Some(crate::outcome::PacketShape::of(c));
                    o.client_states = c.states[Side::Client.idx()].states();
                    o.server_states = c.states[Side::Server.idx()].states();
                    o.warnings = c.warnings.iter().map(|w| w.to_string()).collect();
                    let link_delay_ns = s.link.as_ref().map_or(0, |l| l.delay().as_nanos() as i64);
                    let server_view = obs
                        .server_view
                        .as_ref()
                        .and_then(|v| v.analysis.as_ref().ok())
                        .and_then(|a| match a.connections.as_slice() {
                            [sc] => Some(sc),
                            _ => None,
                        });
                    let m = crate::timing::measure(
                        c,
                        server_view,
                        programs.server.as_ref(),
                        programs.client.as_ref(),
                        link_delay_ns,
                        s.client.read_delay_ms.0,
                    );
                    o.measured = m;
                    if failed.is_empty() && obs.drops == 0 {
                        timing = crate::timing::miss(s, &m)
                            .or_else(|| obs.stall.clone())
                            .or_else(|| timers_crossed(s, c));
                    }
                }
                [] => failed.push("no connection captured".into()),
                many => failed.push(format!("{} connections captured, expected 1", many.len())),
            }
        }
    }
    let server_analysis = obs.server_view.as_ref().map(|v| {
        o.drops += v.drops;
        match &v.analysis {
            Ok(a) => {
                let scripted_syn = s.link.as_ref().is_some_and(|l| l.forges_syn());
                let connections = match a.connections.as_slice() {
                    [first, _, ..] if scripted_syn => std::slice::from_ref(first),
                    cs => cs,
                };
                match connections {
                    [c] => {
                        o.server_view = Some(ViewVerdict {
                            kind: c.teardown.kind,
                            active_closer: c.teardown.active_closer,
                            final_ack: c.teardown.final_ack,
                            fin_retransmits: c.teardown.fin_retransmits,
                            packets: a.file.packets,
                            drops: v.drops,
                        })
                    }
                    cs => failed.push(format!(
                        "server's capture: {} connections, expected 1",
                        cs.len()
                    )),
                }
                Some(a)
            }
            Err(e) => {
                failed.push(e.clone());
                None
            }
        }
    });
    // The link's own promise (each packet `delay_ms` on the wire), seen in both captures: a
    // run whose relay held a packet past it by more than the tolerance shows the machine's
    // scheduler, not the kernel (a FIN held ~10 ms turns crossing FINs into a three-way
    // close), so it is a timing miss of the link, before any of the programs'.
    if let (Some(link), Ok(a), Some(Some(sa))) = (&s.link, &obs.analysis, server_analysis) {
        let plain = !o.link_impaired && obs.script.is_none();
        if let ([c], [sc], true) = (a.connections.as_slice(), sa.connections.as_slice(), plain) {
            let late = crate::timing::link_late_ns(c, sc, link.delay().as_nanos() as i64);
            if failed.is_empty() && o.drops == 0 {
                timing = crate::timing::link_miss(s, late).or(timing);
            }
        }
    }
    // The link's script: its segments are recorded, and kept out of the kernels' counts.
    let mut missed = None;
    if let Some(script) = &obs.script {
        o.injected = script.injected.clone();
        if let Some(sh) = &mut o.shape {
            // In the client's capture, a segment sent to the client looks sent by the server.
            for inj in script.injected.iter().filter(|i| i.to == End::Client) {
                sh.segments[1] = sh.segments[1].saturating_sub(1);
                if inj.flags.rst() {
                    sh.rsts[1] = sh.rsts[1].saturating_sub(1);
                }
            }
        }
        missed = script.never_fired.first().map(|k| {
            let at = s
                .link
                .as_ref()
                .and_then(|l| l.injects.get(*k))
                .map_or(String::new(), |i| format!(" (at {} #{})", i.0.at, i.0.nth));
            format!(
                "link.inject {}{at} never went out: its segment did not cross the link",
                k + 1
            )
        });
    }
    if let Some(v) = &o.server_view {
        o.views_disagree = v.kind != o.kind;
        o.fin_retransmits = o.fin_retransmits.max(v.fin_retransmits);
    }
    let mut kernel = obs.kernel.clone();
    if let Some(k) = &mut kernel {
        time_wait_at_peer_fin(k, obs.analysis.as_ref().ok(), server_analysis.flatten());
    }
    if let Some(k) = kernel.as_ref().filter(|k| k.source.is_some()) {
        for (side, capture, client) in [
            ("client", &o.client_states, true),
            ("server", &o.server_states, false),
        ] {
            let ks = k.states(client);
            if ks.is_empty() {
                continue;
            }
            let (explained, flagged) = kernel::compare(side, capture, &ks);
            o.kernel_explained.extend(explained);
            o.kernel_disagreements.extend(flagged);
        }
    }
    if let Some(k) = &kernel {
        o.rst_reasons = rst_reasons(obs.analysis.as_ref().ok(), server_analysis.flatten(), k);
    }
    o.kernel = kernel;
    // The first failing problem is the run's mismatch: its own failure, else lost packets,
    // else the expectation; a timing problem comes last (it does not fail the run).
    o.problems = failed
        .into_iter()
        .map(|error| Problem::RunFailed { error })
        .collect();
    let judged = if !o.problems.is_empty() {
        None
    } else if o.drops > 0 {
        Some(Problem::CaptureDropped { packets: o.drops })
    } else if let Some(detail) = missed {
        Some(Problem::Mismatch { detail })
    } else {
        check_run(&s.expect, &Observed::of(&o)).map(|detail| Problem::Mismatch { detail })
    };
    o.problems.extend(judged);
    // A run that failed to run while the machine stalled (seen in a TCG guest whose clock
    // raced 7× ahead under two busy loops: "no connection within 5000 ms") failed on the
    // machine's clock: a timing miss, retried. An error that is the kernel's comes back in
    // the retry without a stall, and counts then.
    let ran_into_a_stall = o
        .problems
        .iter()
        .any(|p| matches!(p, Problem::RunFailed { .. }));
    if timing.is_none() && ran_into_a_stall {
        timing = obs.stall_in_run.clone();
    }
    o.problems.extend(timing);
    o
}

/// Write the run's files (when `opts` keeps them) and keep its narration when it failed.
fn write(
    id: RunId,
    mut obs: Observation,
    mut o: RunOutcome,
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let mut analysis = obs.analysis.ok();
    let mut server_analysis = obs
        .server_view
        .as_mut()
        .and_then(|v| std::mem::replace(&mut v.analysis, Err(String::new())).ok());
    if let Some(k) = &o.kernel {
        merge_kernel(analysis.as_mut(), server_analysis.as_mut(), k);
    }
    for a in [analysis.as_mut(), server_analysis.as_mut()]
        .into_iter()
        .flatten()
    {
        attach_rst_reasons(a, &o.rst_reasons);
    }
    let narration = analysis.as_ref().map(|a| {
        let mut buf = Vec::new();
        let _ = human::render(a, &TextOptions::default(), &mut buf);
        let mut text = String::from_utf8_lossy(&buf).into_owned();
        text.push_str(&views_and_kernel_text(&o));
        text
    });
    // A timing miss is tried again under the same directory name: keep its files only when
    // all are kept (the retry then overwrites them).
    let keep = opts.keep_pcaps
        || (opts.keep_failed && o.mismatch().is_some() && o.timing_miss().is_none());
    if let (Some(batch), true) = (&opts.out_dir, keep) {
        let dir = batch.join(results::run_dir_name(id.index));
        results::write_run(
            &dir,
            &obs.pcap,
            analysis.as_ref(),
            narration.as_deref().unwrap_or(""),
            &o,
            obs.programs.server.as_ref(),
            obs.programs.client.as_ref(),
        )?;
        if let Some(v) = &obs.server_view {
            results::write_server_view(&dir, &v.pcap, server_analysis.as_ref())?;
        }
        o.pcap = Some(dir.join(results::PCAP_FILE));
        o.dir = Some(dir);
    }
    if o.mismatch().is_some() {
        o.narration = narration;
    }
    Ok(o)
}

/// Observe, judge, write: the end of every run.
pub(crate) fn finish_run(
    s: &Scenario,
    id: RunId,
    captured: Captured,
    programs: Programs,
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let mut obs = observe(s, captured, programs);
    let o = judge(s, id, &obs);
    // Found by the capture's reader or the link's relay: they fail the run, but come after
    // its files were decided and written (as they always have).
    let late = std::mem::take(&mut obs.late_errors);
    let mut o = write(id, obs, o, opts)?;
    o.problems
        .extend(late.into_iter().map(|error| Problem::RunFailed { error }));
    o.elapsed = id.start.elapsed();
    Ok(o)
}

/// When a socket was handed to a timewait socket from FIN_WAIT_2 (an orphaned socket does
/// that as soon as its FIN is acknowledged), the timewait socket is still in FIN_WAIT_2 and
/// enters TIME_WAIT only when the peer's FIN arrives, which no tracepoint reports. Date that
/// TIME_WAIT (confirmed by sock_diag) by the peer's FIN in this end's own capture.
fn time_wait_at_peer_fin(
    k: &mut KernelStates,
    client: Option<&Analysis>,
    server: Option<&Analysis>,
) {
    for side in [Side::Client, Side::Server] {
        let (states, view) = match side {
            Side::Client => (&mut k.client, client),
            Side::Server => (&mut k.server, server.or(client)),
        };
        let n = states.len();
        if n < 2 || !states[n - 1].via_sock_diag || states[n - 2].state != TcpState::FinWait2 {
            continue;
        }
        let Some([c]) = view.map(|a| a.connections.as_slice()) else {
            continue;
        };
        let peer_fin = c
            .packets
            .iter()
            .find(|p| p.from != side && p.flags.fin())
            .and_then(|p| u64::try_from(p.ts_ns).ok());
        if let Some(ts) = peer_fin {
            if ts > states[n - 1].ts_ns {
                states[n - 1].ts_ns = ts;
            }
        }
    }
}

/// Put the kernel's states into both views' timelines, marked `source: "kernel"`. Each end's
/// states are placed on that end's own time line: after the last packet *its* capture saw
/// before the state (same clock), carried into the other view through the packet that is the
/// same transmission there (issue 17: on a link, placing the server's states by time in the
/// client's capture made them go backwards). Then [`Timeline::merge_kernel`] aligns them
/// with the capture's inferred states.
///
/// [`Timeline::merge_kernel`]: tcplab_trace::Timeline::merge_kernel
fn merge_kernel(client: Option<&mut Analysis>, server: Option<&mut Analysis>, k: &KernelStates) {
    let one = |a: &Option<&mut Analysis>| match a.as_deref().map(|a| a.connections.as_slice()) {
        Some([c]) => Some(c.clone()),
        _ => None,
    };
    let (cv, sv) = (one(&client), one(&server));
    for (view, analysis) in [(cv.as_ref(), client), (sv.as_ref(), server)] {
        let (Some(view), Some(a)) = (view, analysis) else {
            continue;
        };
        let [c] = a.connections.as_mut_slice() else {
            continue;
        };
        for (side, states) in [(Side::Client, &k.client), (Side::Server, &k.server)] {
            let own = match side {
                Side::Client => cv.as_ref().or(sv.as_ref()),
                Side::Server => sv.as_ref().or(cv.as_ref()),
            };
            let Some(own) = own else { continue };
            let placed = place_on_own_line(view, own, states);
            c.states[side.idx()].merge_kernel(&placed);
        }
    }
}

/// How much later than its `tcp_send_reset` event the sender's own capture may stamp an RST
/// (the event fires just before the packet goes out; a busy guest can hold it back).
const RST_EVENT_SLACK_NS: i64 = 20_000_000;

/// How much earlier than the RST its event may be (a capture clock a little behind).
const RST_EVENT_LEAD_NS: i64 = 5_000_000;

/// The sending kernel's own reason (`tcp:tcp_send_reset`) for each RST the client and the
/// server sent, in order. Each RST is matched in its sender's own capture (same clock, no
/// link delay in between) to the sender's next unused event between the same ports, stamped
/// at most [`RST_EVENT_SLACK_NS`] before it. A kernel whose event has no reason field is
/// "not reported"; one that names reasons but has no event for an RST, "not recorded".
/// Pure: the views and the kernel's record in, the reasons out.
pub(crate) fn rst_reasons(
    client: Option<&Analysis>,
    server: Option<&Analysis>,
    k: &KernelStates,
) -> [Vec<tcplab_trace::KernelReason>; 2] {
    use tcplab_trace::KernelReason;
    fn one(a: Option<&Analysis>) -> Option<&tcplab_trace::Connection> {
        match a.map(|a| a.connections.as_slice()) {
            Some([c]) => Some(c),
            _ => None,
        }
    }
    let (cv, sv) = (one(client), one(server));
    let mut reasons: [Vec<KernelReason>; 2] = [Vec::new(), Vec::new()];
    for side in [Side::Client, Side::Server] {
        let own = match side {
            Side::Client => cv.or(sv),
            Side::Server => sv.or(cv),
        };
        let Some(own) = own else { continue };
        let (port, peer) = (own.addr(side).port(), own.addr(side.peer()).port());
        let mut events = k
            .rsts_sent
            .iter()
            .filter(|e| (e.sport, e.dport) == (port, peer))
            .peekable();
        for r in own.rst.iter().filter(|r| r.from == side) {
            let ts = own
                .packets
                .iter()
                .find(|p| p.number == r.packet)
                .map_or(0, |p| p.ts_ns);
            // Events too old for this RST belong to none the capture holds.
            while events
                .peek()
                .is_some_and(|e| (e.ts_ns as i64) < ts - RST_EVENT_SLACK_NS)
            {
                events.next();
            }
            let matched = events.next_if(|e| (e.ts_ns as i64) <= ts + RST_EVENT_LEAD_NS);
            reasons[side.idx()].push(match matched {
                Some(e) => match e.reason {
                    Some(value) => KernelReason::Reported {
                        value,
                        name: e.reason_name,
                    },
                    None => KernelReason::NotReported,
                },
                None if k.reasons_reported == Some(false) => KernelReason::NotReported,
                None => KernelReason::NotRecorded,
            });
        }
    }
    reasons
}

/// Put `reasons` (per sender, in order: [`rst_reasons`]) on the view's RSTs.
fn attach_rst_reasons(a: &mut Analysis, reasons: &[Vec<tcplab_trace::KernelReason>; 2]) {
    let [c] = a.connections.as_mut_slice() else {
        return;
    };
    let mut next = [0usize; 2];
    for r in &mut c.rst {
        let i = r.from.idx();
        r.kernel = reasons[i].get(next[i]).copied();
        next[i] += 1;
    }
}

/// Each of `states` (one end's, on the clock of `own`, that end's capture) as the packet of
/// `view` after which the end entered it: the last packet `own` saw before it, or the latest
/// earlier one `view` also has (0: before every packet).
fn place_on_own_line(
    view: &tcplab_trace::Connection,
    own: &tcplab_trace::Connection,
    states: &[kernel::KernelState],
) -> Vec<(u64, TcpState)> {
    let same = std::ptr::eq(view, own) || view.packets == own.packets;
    let to_view = if same {
        None
    } else {
        Some(tcplab_trace::vantage::match_views(own, view).a_to_b)
    };
    states
        .iter()
        .map(|st| {
            let ts = i64::try_from(st.ts_ns).unwrap_or(i64::MAX);
            let seen = own.packets.partition_point(|p| p.ts_ns <= ts);
            let packet = match &to_view {
                None => seen.checked_sub(1).map_or(0, |i| own.packets[i].number),
                Some(map) => map[..seen]
                    .iter()
                    .rev()
                    .find_map(|j| *j)
                    .map_or(0, |j| view.packets[j].number),
            };
            (packet, st.state)
        })
        .collect()
}

/// The report's lines on both ends' views and the kernel's states.
fn views_and_kernel_text(o: &RunOutcome) -> String {
    let mut t = String::new();
    if !o.injected.is_empty() {
        t.push_str("\ninjected by the link (not sent by either kernel):\n");
        for i in &o.injected {
            t.push_str(&format!(
                "  link.inject {}: {} to the {}, seq {}{}, {} byte(s)\n",
                i.index + 1,
                if i.replay {
                    format!("replayed [{}]", i.flags)
                } else {
                    format!("forged [{}]", i.flags)
                },
                i.to.as_str(),
                i.seq,
                if i.flags.ack() {
                    format!(" ack {}", i.ack)
                } else {
                    String::new()
                },
                i.len
            ));
        }
    }
    if let Some(v) = &o.server_view {
        t.push_str("\nboth ends' view:\n");
        let line = |name: &str, file: &str, kind: Outcome, final_ack: bool, fr: u32| {
            format!(
                "  {name} ({file}): {kind}, final ACK {}, FIN retransmits {fr}\n",
                if final_ack { "seen" } else { "not seen" }
            )
        };
        t.push_str(&line(
            "client",
            results::PCAP_FILE,
            o.outcome(),
            o.final_ack,
            o.fin_retransmits,
        ));
        t.push_str(&line(
            "server",
            results::SERVER_PCAP_FILE,
            v.outcome(),
            v.final_ack,
            v.fin_retransmits,
        ));
        if o.views_disagree {
            t.push_str("  FLAG: the two views disagree on the kind\n");
        }
    }
    if let Some(k) = &o.kernel {
        t.push_str("\nkernel states");
        match k.source {
            Some(src) => t.push_str(&format!(" ({src}):\n")),
            None => t.push_str(":\n"),
        }
        for (side, states, rt, rst) in [
            ("client", &k.client, k.retransmits[0], k.resets[0]),
            ("server", &k.server, k.retransmits[1], k.resets[1]),
        ] {
            let start = states.first().map_or(0, |s| s.ts_ns);
            let v: Vec<String> = states
                .iter()
                .map(|s| {
                    let ms = (s.ts_ns.saturating_sub(start)) as f64 / 1e6;
                    let mark = if s.via_sock_diag { ", sock_diag" } else { "" };
                    format!("{}(+{ms:.3} ms{mark})", s.state)
                })
                .collect();
            t.push_str(&format!(
                "  {side}: {} ; retransmits {rt}, RSTs sent {rst}\n",
                if v.is_empty() {
                    "(none)".to_owned()
                } else {
                    v.join(" → ")
                }
            ));
        }
        if let Some(e) = &k.error {
            t.push_str(&format!("  missing: {e}\n"));
        }
        for e in &o.kernel_explained {
            t.push_str(&format!("  expected difference: {e}\n"));
        }
        for e in &o.kernel_disagreements {
            t.push_str(&format!("  FLAG: {e}\n"));
        }
        t.push_str("  (the timelines above merge both, each end's on its own time line: `Nk` is a state only the kernel shows, `N+k` one the kernel confirms)\n");
    }
    t
}

pub(crate) fn netns_fatal(e: NetnsError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot create a private network namespace: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

pub(crate) fn capture_fatal(e: CaptureError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot capture packets: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

pub(crate) fn link_fatal(e: LinkError) -> RunError {
    if e.is_permission_denied() {
        RunError::PermissionDenied(format!("cannot build the delay link: {e}"))
    } else {
        RunError::Setup(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FOUR_WAY: &str = include_str!("../../../trace/tests/data/seed/four-way-close.txt");
    const THREE_WAY: &str = include_str!("../../../trace/tests/data/seed/three-way-close.txt");

    /// What a run of `capture` (tcpdump text) would have shown, with nothing else known.
    fn observed(capture: &str) -> Observation {
        Observation {
            pcap: Vec::new(),
            analysis: analyze_pcap(capture.as_bytes(), "capture.txt"),
            drops: 0,
            server_view: None,
            programs: Programs::default(),
            kernel: None,
            stall: None,
            stall_in_run: None,
            late_errors: Vec::new(),
            script: None,
        }
    }

    fn scenario(expect: &str) -> Scenario {
        Scenario::parse(&format!("[expect]\n{expect}\n"), Path::new("t.toml")).unwrap()
    }

    /// The judge's verdict: outcome key and every problem's text.
    fn verdict(expect: &str, obs: &Observation) -> (String, Vec<String>) {
        let o = judge(
            &scenario(expect),
            RunId::new(0, IpVersion::Ipv4, 60000),
            obs,
        );
        (
            o.outcome().key(),
            o.problems.iter().map(|p| p.to_string()).collect(),
        )
    }

    /// FOUR_WAY with the client's FIN sent again at `ts` (same sequence, a new timestamp).
    fn four_way_with_fin_again_at(ts: &str) -> String {
        let again = format!(
            "20:01:49.{ts} IP 172.16.196.142.41424 > 172.16.196.145.60000: Flags [F.], seq 3935290887, ack 3178165018, win 115, options [nop,nop,TS val 1524954600 ecr 1538293349], length 0"
        );
        let mut lines: Vec<String> = FOUR_WAY.lines().map(str::to_owned).collect();
        let at = lines
            .iter()
            .position(|l| l.as_str() > again.as_str())
            .unwrap_or(lines.len());
        lines.insert(at, again);
        lines.join("\n") + "\n"
    }

    #[test]
    fn a_fin_sent_again_after_its_ack_left_on_loopback_is_a_timing_miss() {
        let expect =
            "kind = \"four-way\"\nactive_closer = \"client\"\nfin_retransmits = { max = 0 }";
        // The server's ACK of the FIN left at .291441; the FIN went again 32 µs later: both
        // timers fired in one batch after a stall. Not counted, retried.
        // (The check's words are kept, as for a stall: the miss makes the run not count.)
        let crossed = observed(&four_way_with_fin_again_at("291473"));
        let o = judge(
            &scenario(expect),
            RunId::new(0, IpVersion::Ipv4, 60000),
            &crossed,
        );
        assert_eq!(
            o.timing_miss().map(|p| p.to_string()).as_deref(),
            Some("timing miss: the client retransmitted its FIN 32 µs after the ACK of it left, on loopback: both timers fired at once after this machine stalled"),
            "{:?}",
            o.problems
        );
        // Sent again before any ACK of it: the kernel's retransmission, judged as ever.
        let before = observed(&four_way_with_fin_again_at("271000"));
        let o = judge(
            &scenario(expect),
            RunId::new(0, IpVersion::Ipv4, 60000),
            &before,
        );
        assert!(o.timing_miss().is_none(), "{:?}", o.problems);
        let (key, problems) = verdict(expect, &before);
        assert_eq!(key, "four-way/client");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("fin_retransmits 1"), "{problems:?}");
        // On a link the ACK is in flight for delay_ms: a crossing there is ordinary.
        let link = Scenario::parse(
            &format!("[link]\ndelay_ms = 5\n[expect]\n{expect}\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        let o = judge(
            &link,
            RunId::new(0, IpVersion::Ipv4, 60000),
            &observed(&four_way_with_fin_again_at("291473")),
        );
        assert!(o.timing_miss().is_none(), "{:?}", o.problems);
    }

    #[test]
    fn a_forged_syn_after_the_close_leaves_the_run_the_first_connection() {
        // Two connections in one capture, as when a forged SYN follows the close.
        let two = format!("{FOUR_WAY}\n{THREE_WAY}");
        let obs = observed(&two);
        let plain = scenario("kind = \"four-way\"\nactive_closer = \"client\"");
        let id = RunId::new(0, IpVersion::Ipv4, 60000);
        let o = judge(&plain, id, &obs);
        let problems: Vec<String> = o.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("2 connections captured")),
            "{problems:?}"
        );
        let forging = Scenario::parse(
            "[link]\ndelay_ms = 5\n[[link.inject]]\nat = \"client FIN\"\nto = \"server\"\n\
             flags = \"S\"\n[expect]\nkind = \"four-way\"\nactive_closer = \"client\"\n\
             allow_warnings = [\"roles-guessed\", \"handshake-not-captured\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let o = judge(&forging, id, &obs);
        assert_eq!(o.outcome().key(), "four-way/client");
        let problems: Vec<String> = o.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            !problems.iter().any(|p| p.contains("connections captured")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_judge_reads_captures_and_ranks_problems() {
        let four = "kind = \"four-way\"\nactive_closer = \"client\"";
        let dropped = || Observation {
            drops: 3,
            ..observed(FOUR_WAY)
        };
        let program_failed = || {
            let mut o = observed(FOUR_WAY);
            o.programs.error = Some("client: connect: ECONNREFUSED".into());
            o
        };
        let stalled = || Observation {
            stall: Some(Problem::Stalled {
                stalled_ms: 25.0,
                limit_ms: 10.0,
            }),
            ..observed(FOUR_WAY)
        };
        let two = format!("{FOUR_WAY}\n{THREE_WAY}");
        let cases: Vec<(&str, Observation, &str, Vec<&str>)> = vec![
            ("meets it", observed(FOUR_WAY), "four-way/client", vec![]),
            (
                "another kind",
                observed(THREE_WAY),
                "three-way/server",
                vec!["expected four-way/client, got three-way/server"],
            ),
            (
                "drops hide the kind: not checked, not trusted",
                dropped(),
                "four-way/client",
                vec!["the capture dropped 3 packet(s): classification not trusted"],
            ),
            (
                "a program's failure comes first and stops the check",
                program_failed(),
                "four-way/client",
                vec!["client: connect: ECONNREFUSED"],
            ),
            (
                "nothing captured",
                observed(""),
                "open/none",
                vec!["analysing the capture: "],
            ),
            (
                "two connections",
                observed(&two),
                "open/none",
                vec!["2 connections captured, expected 1"],
            ),
            (
                "a stall is a timing miss, after the check",
                stalled(),
                "four-way/client",
                vec!["timing miss: stall: this machine ran nothing for 25.0 ms"],
            ),
        ];
        for (what, obs, outcome, problems) in cases {
            let (got_outcome, got) = verdict(four, &obs);
            assert_eq!(got_outcome, outcome, "{what}");
            assert_eq!(got.len(), problems.len(), "{what}: {got:?}");
            for (g, want) in got.iter().zip(&problems) {
                assert!(
                    g.starts_with(want),
                    "{what}: {g:?} does not start with {want:?}"
                );
            }
        }
    }

    #[test]
    fn a_run_that_failed_to_run_during_a_stall_is_a_timing_miss() {
        let stalled = Some(Problem::Stalled {
            stalled_ms: 4000.0,
            limit_ms: 10.0,
        });
        let failed = |stall_in_run: Option<Problem>| {
            let mut obs = Observation {
                stall_in_run,
                ..observed("")
            };
            obs.programs.error =
                Some("server: no connection on 192.0.2.2:60000 within 5000 ms".into());
            judge(
                &scenario("kind = \"four-way\""),
                RunId::new(0, IpVersion::Ipv4, 60000),
                &obs,
            )
        };
        let o = failed(stalled);
        assert!(
            matches!(o.timing_miss(), Some(Problem::Stalled { .. })),
            "{:?}",
            o.problems
        );
        // Without a stall the error is the run's: it fails.
        let o = failed(None);
        assert!(o.timing_miss().is_none(), "{:?}", o.problems);
        assert!(matches!(o.mismatch(), Some(Problem::RunFailed { .. })));
    }

    #[test]
    fn a_stall_counts_only_for_a_run_that_otherwise_stands() {
        let obs = Observation {
            drops: 1,
            stall: Some(Problem::Stalled {
                stalled_ms: 25.0,
                limit_ms: 10.0,
            }),
            ..observed(FOUR_WAY)
        };
        let o = judge(
            &scenario("kind = \"four-way\""),
            RunId::new(0, IpVersion::Ipv4, 60000),
            &obs,
        );
        assert!(o.timing_miss().is_none(), "{:?}", o.problems);
        assert!(matches!(
            o.mismatch(),
            Some(Problem::CaptureDropped { packets: 1 })
        ));
    }

    /// Both ends' captures of a 10 ms link (server closes 10 ms after answering, client at
    /// once), as in scenarios/link/simultaneous.toml, where the relay wrote the server's
    /// answer to the client `answer_at` (the answer left the server at .030400, so it was due
    /// at .040400) and the server's FIN right after it: the client read the answer late, and
    /// closed after the server's FIN had come in.
    fn over_link(syn_at: &str, answer_at: &str) -> Observation {
        let client_side = format!(
            "\
{syn_at} IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [S], seq 1000, win 65495, length 0
10:00:00.020000 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [S.], seq 5000, ack 1001, win 65483, length 0
10:00:00.020100 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [.], ack 5001, win 512, length 0
10:00:00.020200 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [P.], seq 1001:1004, ack 5001, win 512, length 3
10:00:00.{answer_at} IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [P.], seq 5001:5007, ack 1004, win 512, length 6
10:00:00.052010 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [F.], seq 5007, ack 1004, win 512, length 0
10:00:00.052100 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [F.], seq 1004, ack 5008, win 512, length 0
10:00:00.072150 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [.], ack 1005, win 512, length 0
"
        );
        let server_side = "\
10:00:00.010000 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [S], seq 1000, win 65495, length 0
10:00:00.010050 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [S.], seq 5000, ack 1001, win 65483, length 0
10:00:00.030100 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [.], ack 5001, win 512, length 0
10:00:00.030200 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [P.], seq 1001:1004, ack 5001, win 512, length 3
10:00:00.030400 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [P.], seq 5001:5007, ack 1004, win 512, length 6
10:00:00.040400 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [F.], seq 5007, ack 1004, win 512, length 0
10:00:00.062100 IP 192.0.2.1.40000 > 192.0.2.2.60000: Flags [F.], seq 1004, ack 5008, win 512, length 0
10:00:00.062150 IP 192.0.2.2.60000 > 192.0.2.1.40000: Flags [.], ack 1005, win 512, length 0
";
        Observation {
            server_view: Some(ServerCapture {
                pcap: Vec::new(),
                drops: 0,
                analysis: analyze_pcap(server_side.as_bytes(), "capture-server.txt"),
            }),
            ..observed(&client_side)
        }
    }

    #[test]
    fn a_link_that_held_a_packet_past_its_delay_is_a_timing_miss() {
        let s = Scenario::parse(
            "[link]\ndelay_ms = 10\n[server]\nclose_delay_ms = 10\n\
             [expect]\nkind = \"simultaneous\"\nactive_closer = \"both\"\n",
            Path::new("simultaneous.toml"),
        )
        .unwrap();
        let id = RunId::new(0, IpVersion::Ipv4, 60000);
        // The answer 11.6 ms past its delay (seen under load: a relay at normal priority
        // waiting for a CPU): the three-way close is the link's miss, not the kernel's.
        let held = judge(&s, id, &over_link("10:00:00.000000", "052000"));
        assert_eq!(held.outcome().key(), "three-way/server");
        let texts: Vec<String> = held.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            texts,
            [
                "expected simultaneous/both, got three-way/server",
                "timing miss: the link delivered a packet 11.600 ms later than its 10 ms delay \
                 (both ends' captures) (tolerance 5 ms)",
            ],
        );
        assert!(held.timing_miss().is_some());
        // The server's answer left at .030400 by its own end's capture; the client side saw
        // it only at .052000. The server's write is judged against the first.
        let (Ok(a), Some(Ok(sa))) = (
            &over_link("10:00:00.000000", "052000").analysis,
            over_link("10:00:00.000000", "052000")
                .server_view
                .map(|v| v.analysis),
        ) else {
            panic!("both captures read");
        };
        let at = |hms_us: i64| 36_000_000_000_000 + hms_us * 1000;
        let (arrivals, departures) =
            crate::timing::server_wire(&a.connections[0], Some(&sa.connections[0]), 10_000_000);
        assert_eq!(departures, [at(30_400)]);
        assert_eq!(arrivals, [at(30_200)]);
        let (_, shifted) = crate::timing::server_wire(&a.connections[0], None, 10_000_000);
        assert_eq!(shifted, [at(42_000)], "the client side's view, 10 ms back");
        // The answer 0.1 ms past its delay and the FIN 1.6 ms (within the tolerance): the
        // run counts, and its outcome is the kernel's.
        let on_time = judge(&s, id, &over_link("10:00:00.000000", "040500"));
        assert!(on_time.timing_miss().is_none(), "{:?}", on_time.problems);
        assert!(matches!(on_time.mismatch(), Some(Problem::Mismatch { .. })));
        // A SYN held 20 ms only shifts the exchange: the close is judged from the last data.
        let late_syn = judge(&s, id, &over_link("09:59:59.980000", "040500"));
        assert!(late_syn.timing_miss().is_none(), "{:?}", late_syn.problems);
    }

    /// A linger-0 reset by the client at 10:00:00.003 (tcpdump text: ns since midnight).
    const LINGER0: &str = "\
10:00:00.000000 IP 127.0.0.1.40000 > 127.0.0.1.60000: Flags [S], seq 1000, win 65495, length 0
10:00:00.001000 IP 127.0.0.1.60000 > 127.0.0.1.40000: Flags [S.], seq 5000, ack 1001, win 65483, length 0
10:00:00.002000 IP 127.0.0.1.40000 > 127.0.0.1.60000: Flags [.], ack 5001, win 512, length 0
10:00:00.003000 IP 127.0.0.1.40000 > 127.0.0.1.60000: Flags [R.], seq 1001, ack 5001, win 512, length 0
";

    fn kernel_rst(ts_ns: u64, sport: u16, dport: u16, reason: Option<u32>) -> kernel::KernelRst {
        kernel::KernelRst {
            ts_ns,
            sport,
            dport,
            reason,
            reason_name: reason.map(|_| "TCP_STATE"),
        }
    }

    #[test]
    fn rst_reasons_match_the_senders_event_by_ports_and_time() {
        use tcplab_trace::KernelReason::*;
        let a = analyze_pcap(LINGER0.as_bytes(), "capture.txt").unwrap();
        let rst_at: u64 = 10 * 3600 * 1_000_000_000 + 3_000_000;
        let with = |rsts: Vec<kernel::KernelRst>, named: Option<bool>| KernelStates {
            source: Some(kernel::SOURCE_TRACEPOINT),
            rsts_sent: rsts,
            reasons_reported: named,
            ..Default::default()
        };
        let reported = Reported {
            value: 14,
            name: Some("TCP_STATE"),
        };
        // The client's event, 40 µs before the capture saw its RST.
        let k = with(
            vec![kernel_rst(rst_at - 40_000, 40000, 60000, Some(14))],
            Some(true),
        );
        assert_eq!(rst_reasons(Some(&a), None, &k), [vec![reported], vec![]]);
        // The same ports the other way round, or an event far older than the RST (another
        // run's on the same ports): not this RST's.
        for other in [
            kernel_rst(rst_at - 40_000, 60000, 40000, Some(14)),
            kernel_rst(rst_at - 900_000_000, 40000, 60000, Some(14)),
        ] {
            let k = with(vec![other], Some(true));
            assert_eq!(rst_reasons(Some(&a), None, &k), [vec![NotRecorded], vec![]]);
        }
        // A kernel whose event has no reason field (6.1): not reported, matched or not.
        let k = with(vec![kernel_rst(rst_at, 40000, 60000, None)], Some(false));
        assert_eq!(rst_reasons(Some(&a), None, &k), [vec![NotReported], vec![]]);
        let k = with(vec![], Some(false));
        assert_eq!(rst_reasons(Some(&a), None, &k), [vec![NotReported], vec![]]);
        // Attached to the view, it is in the JSON and the narration.
        let mut a = a;
        attach_rst_reasons(&mut a, &[vec![reported], vec![]]);
        let v = tcplab_trace::render::json::to_value(&a);
        assert_eq!(
            v["connections"][0]["rst_cause"][0]["kernel_reason"],
            serde_json::json!({"reason": "TCP_STATE", "value": 14, "missing": null})
        );
        let mut text = Vec::new();
        human::render(&a, &TextOptions::default(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("kernel's reason: TCP_STATE"), "{text}");
    }

    #[test]
    fn forged_segments_are_recorded_and_not_counted_as_the_kernels() {
        // The seed's four-way close, then an RST "from the server" 50 ms after the final
        // ACK that the link forged.
        let rst = "20:01:49.402041 IP 172.16.196.145.60000 > 172.16.196.142.41424: Flags [R], seq 3178165019, win 0, length 0\n";
        let capture = format!("{FOUR_WAY}{rst}");
        let forged = tcplab_capture::InjectedSegment {
            index: 0,
            to: End::Client,
            flags: "R".parse().unwrap(),
            seq: 3178165019,
            ack: 0,
            len: 0,
            replay: false,
            unix_ns: 0,
        };
        let with = |script| Observation {
            script,
            ..observed(&capture)
        };
        let rsts = "kind = \"four-way\"\nserver.rsts = { max = 0 }\nallow_warnings = [\"late-rst\"]\nfinal_ack = \"any\"\nkernel_end.client = []\nkernel_end.server = []";
        // Without the script's record the RST is the server kernel's, and fails the run.
        let (_, problems) = verdict(rsts, &with(None));
        assert!(
            problems.iter().any(|p| p.contains("server sent 1 RST(s)")),
            "{problems:?}"
        );
        let report = ScriptReport {
            injected: vec![forged.clone()],
            finished: true,
            never_fired: vec![],
            last_sent: None,
        };
        let o = judge(
            &scenario(rsts),
            RunId::new(0, IpVersion::Ipv4, 60000),
            &with(Some(report.clone())),
        );
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        assert_eq!(o.shape.map(|s| s.rsts), Some([0, 0]));
        let rec = o.record();
        assert_eq!(rec.injected.len(), 1);
        assert_eq!(
            (rec.injected[0].to.as_str(), rec.injected[0].flags.as_str()),
            ("client", "R")
        );
        // An injection whose moment never came fails the run, naming it.
        let missed = ScriptReport {
            injected: vec![],
            finished: false,
            never_fired: vec![0],
            last_sent: None,
        };
        let (_, problems) = verdict(rsts, &with(Some(missed)));
        assert!(
            problems[0].contains("link.inject 1") && problems[0].contains("never went out"),
            "{problems:?}"
        );
    }
}
