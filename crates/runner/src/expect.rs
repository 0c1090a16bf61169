//! Checking expectations: each run on its own ([`check_run`]), then the batch ([`verdict`]).

use std::collections::BTreeMap;

use tcplab_trace::{TcpState, TeardownKind};

use crate::outcome::RunOutcome;
use crate::run::kernel::is_subsequence;
use crate::run::kernel::KernelStates;
use crate::scenario::{
    Expect, FinalAck, MsRange, Outcome, ProgramExpect, DEFAULT_KERNEL_END,
    DEFAULT_MAX_CLOSE_DURATION_MS,
};
use tcplab_client::{CallResult, Calls};

/// What a run showed, as far as expectations are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed<'a> {
    /// Kind and closer.
    pub outcome: Outcome,
    /// Four-way: first FIN to its separate ACK.
    pub fin_ack_delay_ns: Option<i64>,
    /// Client states inferred from the capture.
    pub client_states: &'a [TcpState],
    /// Server states inferred from the capture.
    pub server_states: &'a [TcpState],
    /// FIN retransmissions seen.
    pub fin_retransmits: u32,
    /// The kernel's own states, if they were recorded.
    pub kernel: Option<&'a KernelStates>,
    /// The close's final ACK was captured.
    pub final_ack: bool,
    /// First FIN/RST to the end of the close, ns.
    pub close_duration_ns: Option<i64>,
    /// The analysis's warnings (contract codes).
    pub warnings: &'a [String],
    /// The link may lose or disturb segments on purpose.
    pub link_impaired: bool,
    /// What the client's calls returned (None: the client did not report).
    pub client_calls: Option<&'a Calls>,
    /// What the server's calls returned.
    pub server_calls: Option<&'a Calls>,
    /// How long the client's close(2) blocked, ns.
    pub client_close_blocked_ns: Option<i64>,
    /// How long the server's close(2) blocked, ns.
    pub server_close_blocked_ns: Option<i64>,
    /// Segments and RSTs per sender.
    pub shape: Option<crate::outcome::PacketShape>,
    /// How long the client's second connect(2) took (`reconnect_after_ms`), ns.
    pub reconnect_connect_ns: Option<i64>,
}

impl<'a> Observed<'a> {
    /// What run `o` showed.
    pub fn of(o: &'a RunOutcome) -> Observed<'a> {
        Observed {
            outcome: o.outcome(),
            fin_ack_delay_ns: o.fin_ack_delay_ns,
            client_states: &o.client_states,
            server_states: &o.server_states,
            fin_retransmits: o.fin_retransmits,
            kernel: o.kernel.as_ref(),
            final_ack: o.final_ack,
            close_duration_ns: o.close_duration_ns,
            warnings: &o.warnings,
            link_impaired: o.link_impaired,
            client_calls: o.client_calls.as_ref(),
            server_calls: o.server_calls.as_ref(),
            client_close_blocked_ns: o.client_close_blocked_ns,
            server_close_blocked_ns: o.server_close_blocked_ns,
            shape: o.shape,
            reconnect_connect_ns: o.reconnect.and_then(|r| r.connect_ns),
        }
    }
}

/// Is `warning` (e.g. `fin-inferred:client`) one of `allowed` (`fin-inferred:client`, or
/// `fin-inferred` for any side)?
fn warning_allowed(warning: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        warning == a
            || warning
                .strip_prefix(a.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// The call results of one program against `[expect.client]` / `[expect.server]`.
fn check_program(
    side: &str,
    want: &ProgramExpect,
    calls: Option<&Calls>,
    blocked_ns: Option<i64>,
) -> Option<String> {
    let named = want.calls();
    if named.iter().any(|(_, c)| c.is_some()) {
        let Some(calls) = calls else {
            return Some(format!("{side} calls: the {side} did not report"));
        };
        let got: [(&str, Option<CallResult>); 11] = [
            ("connect", calls.connect),
            ("send", calls.send),
            ("recv", calls.recv),
            ("shutdown", calls.shutdown),
            ("recv_after_shutdown", calls.recv_after_shutdown),
            ("send_after_shutdown", calls.send_after_shutdown),
            ("close", calls.close),
            ("disconnect", calls.disconnect),
            ("reconnect_bind", calls.reconnect_bind),
            ("reconnect_connect", calls.reconnect_connect),
            ("reconnect_recv", calls.reconnect_recv),
        ];
        for ((name, w), (_, g)) in named.iter().zip(got) {
            let Some(w) = w else { continue };
            match g {
                Some(g) if w.0.contains(&g) => {}
                Some(g) => return Some(format!("{side} {name}: expected {w}, got {g}")),
                None => {
                    return Some(format!(
                        "{side} {name}: expected {w}, but it was not called"
                    ))
                }
            }
        }
    }
    if let Some(r) = &want.close_blocked_ms {
        match blocked_ns {
            Some(ns) if r.contains_ns(ns) => {}
            Some(ns) => {
                return Some(format!(
                    "{side} close blocked {:.3} ms, outside {r}",
                    ns as f64 / 1e6
                ))
            }
            None => return Some(format!("{side} close: not measured")),
        }
    }
    None
}

/// The full shape of the close that every scenario states unless it relaxes a part:
/// no unexpected warning, the final ACK of a FIN close, no FIN retransmission without link
/// faults, a bounded duration, and both sockets ending CLOSED or in TIME_WAIT.
fn check_shape(e: &Expect, o: &Observed<'_>) -> Option<String> {
    if let Some(w) = o
        .warnings
        .iter()
        .find(|w| !warning_allowed(w, &e.allow_warnings))
    {
        return Some(format!(
            "unexpected warning `{w}` (allow it with allow_warnings = [\"{}\"])",
            w.split(':').next().unwrap_or(w)
        ));
    }
    let fin_close = matches!(
        o.outcome.kind,
        TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Simultaneous
    );
    match (e.final_ack, o.final_ack) {
        (None, false) if fin_close => {
            return Some("no final ACK captured (set final_ack = \"any\" to allow it)".into())
        }
        (Some(FinalAck::Required), false) => return Some("no final ACK captured".into()),
        (Some(FinalAck::Absent), true) => {
            return Some("a final ACK was captured, expected none".into())
        }
        _ => {}
    }
    if e.fin_retransmits.is_none() && !o.link_impaired && o.fin_retransmits > 0 {
        return Some(format!(
            "{} FIN retransmission(s) without link faults (expected none; set fin_retransmits to allow them)",
            o.fin_retransmits
        ));
    }
    let bound = e.close_duration_ms.unwrap_or(MsRange {
        min: None,
        max: Some(DEFAULT_MAX_CLOSE_DURATION_MS),
    });
    if let Some(ns) = o.close_duration_ns {
        if !bound.contains_ns(ns) {
            return Some(format!(
                "close took {:.3} ms, outside {bound}",
                ns as f64 / 1e6
            ));
        }
    }
    let recorded = o.kernel.filter(|k| k.source.is_some());
    for (side, want, client) in [
        ("client", &e.kernel_end_client, true),
        ("server", &e.kernel_end_server, false),
    ] {
        let (want, explicit) = match want {
            Some(w) => (w.as_slice(), true),
            None => (DEFAULT_KERNEL_END, false),
        };
        if want.is_empty() {
            continue;
        }
        let Some(k) = recorded else {
            if explicit {
                let why = o
                    .kernel
                    .and_then(|k| k.error.clone())
                    .unwrap_or_else(|| "not recorded".into());
                return Some(format!("kernel {side} end state: {why}"));
            }
            continue;
        };
        let have = k.states(client);
        match have.last() {
            Some(last) if want.contains(last) => {}
            Some(last) => {
                return Some(format!(
                    "kernel {side} socket ended in {}, expected {} (kernel_end.{side} relaxes it)",
                    last.as_str(),
                    states_text(want)
                ))
            }
            None if explicit => return Some(format!("kernel {side} end state: no states")),
            None => {}
        }
    }
    None
}

/// The per-run part of an expectation. Returns the first mismatch, in words.
pub fn check_run(e: &Expect, o: &Observed<'_>) -> Option<String> {
    let got = o.outcome;
    if let Some(k) = e.kind {
        if got.kind != k {
            return Some(format!("expected {}, got {got}", expected_text(e)));
        }
    }
    if let Some(c) = e.active_closer {
        if got.closer != Some(c) {
            return Some(format!("expected {}, got {got}", expected_text(e)));
        }
    }
    if let Some(ks) = &e.kinds {
        if !ks.contains(&got.kind) {
            return Some(format!("expected one of {}, got {got}", expected_text(e)));
        }
    }
    if let Some(r) = &e.fin_ack_delay_ms {
        // Only a four-way close has a separate ACK of the first FIN to time.
        if got.kind == TeardownKind::FourWay {
            match o.fin_ack_delay_ns {
                Some(ns) if r.contains_ns(ns) => {}
                Some(ns) => {
                    return Some(format!(
                        "fin_ack_delay {:.3} ms outside {r}",
                        ns as f64 / 1e6
                    ))
                }
                None => return Some("fin_ack_delay not measured".into()),
            }
        }
    }
    if let Some(r) = &e.fin_retransmits {
        if !r.contains(o.fin_retransmits) {
            return Some(format!("fin_retransmits {} outside {r}", o.fin_retransmits));
        }
    }
    for (side, want, client) in [
        ("client", &e.kernel_client_states, true),
        ("server", &e.kernel_server_states, false),
    ] {
        let Some(want) = want else { continue };
        let Some(k) = o.kernel.filter(|k| k.source.is_some()) else {
            let why = o
                .kernel
                .and_then(|k| k.error.clone())
                .unwrap_or_else(|| "not recorded".into());
            return Some(format!("kernel states: {why}"));
        };
        let have = k.states(client);
        if !is_subsequence(want, &have) {
            let missing = k
                .error
                .as_deref()
                .map_or(String::new(), |e| format!(" ({e})"));
            return Some(format!(
                "kernel {side} states: expected {} in order, got {}{missing}",
                states_text(want),
                states_text(&have)
            ));
        }
    }
    for (side, want, have) in [
        ("client", &e.client_states, o.client_states),
        ("server", &e.server_states, o.server_states),
    ] {
        if let Some(want) = want {
            if !want.iter().any(|w| w.as_slice() == have) {
                let v: Vec<String> = want.iter().map(|w| states_text(w)).collect();
                return Some(format!(
                    "{side} states: expected {}, got {}",
                    v.join(" or "),
                    states_text(have)
                ));
            }
        }
    }
    for (i, side, want) in [(0, "client", &e.client.rsts), (1, "server", &e.server.rsts)] {
        let Some(r) = want else { continue };
        match o.shape {
            Some(sh) if r.contains(sh.rsts[i]) => {}
            Some(sh) => return Some(format!("{side} sent {} RST(s), outside {r}", sh.rsts[i])),
            None => return Some(format!("{side} RSTs: no connection captured")),
        }
    }
    if let Some(r) = &e.client.reconnect_connect_ms {
        match o.reconnect_connect_ns {
            Some(ns) if r.contains_ns(ns) => {}
            Some(ns) => {
                return Some(format!(
                    "client's second connect took {:.3} ms, outside {r}",
                    ns as f64 / 1e6
                ))
            }
            None => return Some("client's second connect: it did not connect".into()),
        }
    }
    for (i, side, want) in [
        (0, "client", &e.client.time_wait_ms),
        (1, "server", &e.server.time_wait_ms),
    ] {
        let Some(r) = want else { continue };
        let Some(k) = o.kernel.filter(|k| k.source.is_some()) else {
            let why = o
                .kernel
                .and_then(|k| k.error.clone())
                .unwrap_or_else(|| "not recorded".into());
            return Some(format!("{side} time_wait_ms: {why}"));
        };
        match k.time_wait_ms[i] {
            Some(ms) if r.contains_ns(ms as i64 * 1_000_000) => {}
            Some(ms) => return Some(format!("{side} TIME_WAIT set to last {ms} ms, outside {r}")),
            None => {
                return Some(format!(
                    "{side} time_wait_ms: the socket was not in TIME_WAIT when the run ended"
                ))
            }
        }
    }
    for (i, side, want) in [
        (0, "client", &e.client.segments),
        (1, "server", &e.server.segments),
    ] {
        let Some(r) = want else { continue };
        match o.shape {
            Some(sh) if r.contains(sh.segments[i]) => {}
            Some(sh) => {
                return Some(format!(
                    "{side} sent {} segment(s), outside {r}",
                    sh.segments[i]
                ))
            }
            None => return Some(format!("{side} segments: no connection captured")),
        }
    }
    if let Some(m) = check_program(
        "client",
        &e.client,
        o.client_calls,
        o.client_close_blocked_ns,
    ) {
        return Some(m);
    }
    if let Some(m) = check_program(
        "server",
        &e.server,
        o.server_calls,
        o.server_close_blocked_ns,
    ) {
        return Some(m);
    }
    check_shape(e, o)
}

fn states_text(s: &[TcpState]) -> String {
    let v: Vec<&str> = s.iter().map(|s| s.as_str()).collect();
    format!("[{}]", v.join(", "))
}

/// The expectation in a few words: `three-way/server`, `{three-way, simultaneous}`.
pub fn expected_text(e: &Expect) -> String {
    let mut parts = Vec::new();
    if let Some(k) = e.kind {
        parts.push(match e.active_closer {
            Some(c) => format!("{}/{}", k.as_str(), c.as_str()),
            None => k.as_str().to_owned(),
        });
    }
    if let Some(ks) = &e.kinds {
        let v: Vec<&str> = ks.iter().map(|k| k.as_str()).collect();
        parts.push(match e.active_closer {
            Some(c) => format!("{{{}}}/{}", v.join(", "), c.as_str()),
            None => format!("{{{}}}", v.join(", ")),
        });
    }
    for (o, r) in &e.min_ratio {
        parts.push(format!("{o} >= {:.0}%", r * 100.0));
    }
    for (o, r) in &e.max_ratio {
        parts.push(format!("{o} <= {:.0}%", r * 100.0));
    }
    parts.join(" and ")
}

/// The verdict on a batch of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Runs that finished.
    pub runs: u64,
    /// Outcome counts, `three-way/server` → n.
    pub counts: BTreeMap<String, u64>,
    /// Captured packets lost, over all runs.
    pub drops: u64,
    /// Runs that failed to run (error) — these never pass.
    pub errors: u64,
    /// Every expectation held.
    pub passed: bool,
    /// Position (in the batch's outcomes, in index order) of the first run that did not hold.
    pub first_failure: Option<usize>,
    /// That run itself (its narration explains the failure).
    pub first_failure_run: Option<Box<RunOutcome>>,
    /// Why the batch failed (first reason), if it did.
    pub message: Option<String>,
    /// Tries that were timing misses, retried ones included ([`crate::timing`]).
    pub timing_misses: u64,
    /// Runs still a timing miss after their retries: not in `runs` or `counts`.
    pub timing_miss_runs: u64,
    /// Every finished run was a timing miss: nothing was counted, so the batch says nothing
    /// about the kernel (the machine was too busy). Not passed, and not a failure: `run`
    /// tries such a scenario again at the suite's end, and reports it inconclusive if it
    /// still cannot time a run.
    pub inconclusive: bool,
    /// Measured close delays and separate-ACK delays of every finished run.
    pub timing: crate::timing::TimingStats,
    /// The kernel's reasons for the RSTs of the counted runs, `client TCP_STATE` → n
    /// (sender, then the reason's name or why there is none).
    pub rst_reasons: BTreeMap<String, u64>,
}

/// The verdict built one run at a time: memory is bounded by the number of distinct
/// outcomes, not by the number of runs, so a batch can stream its runs to disk.
#[derive(Debug, Clone)]
pub struct Tally {
    expect: Expect,
    runs: u64,
    by_outcome: BTreeMap<Outcome, u64>,
    drops: u64,
    errors: u64,
    first_mismatch: Option<(usize, RunOutcome, String)>,
    /// Per `min_ratio` target: the first run that was not it (narrated when its share falls short).
    first_other: BTreeMap<Outcome, (usize, RunOutcome)>,
    /// Per `max_ratio` bound: the first run that was it (narrated when its share is too large).
    first_of: BTreeMap<Outcome, (usize, RunOutcome)>,
    finished: u64,
    timing_misses: u64,
    timing_miss_runs: u64,
    timing: crate::timing::TimingStats,
    rst_reasons: BTreeMap<String, u64>,
}

impl Tally {
    /// An empty tally for `e`.
    pub fn new(e: &Expect) -> Tally {
        Tally {
            expect: e.clone(),
            runs: 0,
            by_outcome: BTreeMap::new(),
            drops: 0,
            errors: 0,
            first_mismatch: None,
            first_other: BTreeMap::new(),
            first_of: BTreeMap::new(),
            finished: 0,
            timing_misses: 0,
            timing_miss_runs: 0,
            timing: crate::timing::TimingStats::default(),
            rst_reasons: BTreeMap::new(),
        }
    }

    /// Count one run (runs must come in index order for "first" to mean first).
    pub fn add(&mut self, o: &RunOutcome) {
        self.finished += 1;
        self.timing.add(o);
        self.timing_misses += u64::from(o.timing_retries);
        if o.timing_miss().is_some() {
            // The programs missed their knobs even after retries: not the kernel's outcome.
            self.timing_misses += 1;
            self.timing_miss_runs += 1;
            return;
        }
        let pos = self.runs as usize;
        self.runs += 1;
        let out = o.outcome();
        *self.by_outcome.entry(out).or_insert(0) += 1;
        self.drops += o.drops;
        if o.error().is_some() {
            self.errors += 1;
        }
        for (sender, reasons) in ["client", "server"].iter().zip(&o.rst_reasons) {
            for r in reasons {
                *self
                    .rst_reasons
                    .entry(format!("{sender} {}", r.text()))
                    .or_insert(0) += 1;
            }
        }
        if self.first_mismatch.is_none() {
            if let Some(m) = o.mismatch() {
                self.first_mismatch = Some((pos, o.clone(), format!("run {}: {m}", o.index + 1)));
            }
        }
        for want in self.expect.min_ratio.keys() {
            if *want != out && !self.first_other.contains_key(want) {
                self.first_other.insert(*want, (pos, o.clone()));
            }
        }
        if self.expect.max_ratio.contains_key(&out) && !self.first_of.contains_key(&out) {
            self.first_of.insert(out, (pos, o.clone()));
        }
    }

    /// Runs counted as the kernel's outcome so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Runs finished so far, timing misses included.
    pub fn finished(&self) -> u64 {
        self.finished
    }

    /// The verdict on what was counted. An empty batch (cancelled before any run finished)
    /// does not pass.
    pub fn verdict(&self) -> Verdict {
        let runs = self.runs;
        let counts = self.by_outcome.iter().map(|(o, n)| (o.key(), *n)).collect();
        let mut first = self
            .first_mismatch
            .as_ref()
            .map(|(i, r, _)| (*i, r.clone()));
        let mut message = self.first_mismatch.as_ref().map(|(_, _, m)| m.clone());
        let inconclusive = message.is_none() && runs == 0 && self.timing_miss_runs > 0;
        if message.is_none() {
            if inconclusive {
                message = Some(format!(
                    "every run ({}) missed its timing even after {} retries: the machine is too busy for this scenario (see timing in summary.json)",
                    self.timing_miss_runs,
                    crate::timing::MAX_TIMING_RETRIES
                ));
            } else if runs == 0 {
                message = Some("no run finished".into());
            } else if let Some((m, run)) = self
                .share_miss(Bound::AtLeast)
                .or_else(|| self.share_miss(Bound::AtMost))
            {
                message = Some(m);
                first = run;
            }
        }
        Verdict {
            runs,
            counts,
            drops: self.drops,
            errors: self.errors,
            passed: message.is_none(),
            first_failure: first.as_ref().map(|(i, _)| *i),
            first_failure_run: first.map(|(_, r)| Box::new(r)),
            message,
            timing_misses: self.timing_misses,
            timing_miss_runs: self.timing_miss_runs,
            inconclusive,
            timing: self.timing.clone(),
            rst_reasons: self.rst_reasons.clone(),
        }
    }
}

/// Which way a share is bounded: `min_ratio` or `max_ratio`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    AtLeast,
    AtMost,
}

impl Tally {
    /// The first outcome whose share of the runs is outside its `bound` (`min_ratio` or
    /// `max_ratio`): what to say, and the run to narrate (for a share too small, the first
    /// run that was not the outcome; too large, the first that was). `self.runs` > 0.
    fn share_miss(&self, bound: Bound) -> Option<(String, Option<(usize, RunOutcome)>)> {
        let (bounds, runs_to_narrate, word) = match bound {
            Bound::AtLeast => (&self.expect.min_ratio, &self.first_other, "at least"),
            Bound::AtMost => (&self.expect.max_ratio, &self.first_of, "at most"),
        };
        let runs = self.runs;
        bounds.iter().find_map(|(outcome, ratio)| {
            let n = self.by_outcome.get(outcome).copied().unwrap_or(0);
            let share = n as f64 / runs as f64;
            let outside = match bound {
                Bound::AtLeast => share + 1e-12 < *ratio,
                Bound::AtMost => share > *ratio + 1e-12,
            };
            outside.then(|| {
                let message = format!(
                    "{outcome}: {n} of {runs} runs ({:.1}%), expected {word} {:.1}%",
                    share * 100.0,
                    ratio * 100.0
                );
                (message, runs_to_narrate.get(outcome).cloned())
            })
        })
    }
}

/// Check the whole batch: every run's own check, then the `min_ratio` and `max_ratio` shares.
/// An empty batch (cancelled before any run finished) does not pass.
pub fn verdict(e: &Expect, outcomes: &[RunOutcome]) -> Verdict {
    let mut t = Tally::new(e);
    for o in outcomes {
        t.add(o);
    }
    t.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcplab_trace::Closer;

    fn obs(kind: TeardownKind, closer: Option<Closer>) -> Observed<'static> {
        Observed {
            outcome: Outcome { kind, closer },
            fin_ack_delay_ns: Some(40_000_000),
            client_states: &[],
            server_states: &[TcpState::FinWait1],
            fin_retransmits: 0,
            kernel: None,
            final_ack: true,
            close_duration_ns: Some(40_000_000),
            warnings: &[],
            link_impaired: false,
            client_calls: None,
            server_calls: None,
            client_close_blocked_ns: None,
            server_close_blocked_ns: None,
            shape: None,
            reconnect_connect_ns: None,
        }
    }

    #[test]
    fn fin_retransmits_and_kernel_states_are_checked() {
        use crate::run::KernelState;
        use crate::scenario::CountRange;
        let e = Expect {
            kind: Some(TeardownKind::FourWay),
            fin_retransmits: Some(CountRange {
                min: Some(1),
                max: None,
            }),
            kernel_server_states: Some(vec![TcpState::LastAck, TcpState::Closed]),
            ..Default::default()
        };
        let mut o = obs(TeardownKind::FourWay, Some(Closer::Client));
        let m = check_run(&e, &o).expect("no retransmit");
        assert!(m.contains("fin_retransmits 0 outside >= 1"), "{m}");
        o.fin_retransmits = 2;
        let m = check_run(&e, &o).expect("no kernel states");
        assert!(m.starts_with("kernel states: not recorded"), "{m}");
        let st = |state| KernelState {
            ts_ns: 0,
            state,
            via_sock_diag: false,
        };
        let short = KernelStates {
            source: Some("test"),
            server: vec![st(TcpState::CloseWait), st(TcpState::LastAck)],
            ..Default::default()
        };
        o.kernel = Some(&short);
        let m = check_run(&e, &o).expect("CLOSED missing");
        assert!(m.contains("expected [LAST_ACK, CLOSED] in order"), "{m}");
        let mut full = short.clone();
        full.server.push(st(TcpState::Closed));
        o.kernel = Some(&full);
        assert_eq!(check_run(&e, &o), None);
    }

    #[test]
    fn kind_and_closer_must_match() {
        let e = Expect {
            kind: Some(TeardownKind::ThreeWay),
            active_closer: Some(Closer::Server),
            ..Default::default()
        };
        assert_eq!(
            check_run(&e, &obs(TeardownKind::ThreeWay, Some(Closer::Server))),
            None
        );
        let m = check_run(&e, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert_eq!(m, "expected three-way/server, got four-way/client");
        assert!(check_run(&e, &obs(TeardownKind::ThreeWay, Some(Closer::Client))).is_some());
    }

    fn run(index: u32, kind: TeardownKind, closer: Closer) -> RunOutcome {
        let mut o = crate::run::finish::RunId::new(index, crate::IpVersion::Ipv4, 1).blank();
        o.kind = kind;
        o.active_closer = Some(closer);
        o
    }

    #[test]
    fn timing_misses_are_counted_apart_from_the_kernel_outcomes() {
        let e = Expect {
            kind: Some(TeardownKind::ThreeWay),
            active_closer: Some(Closer::Server),
            ..Default::default()
        };
        let good = run(0, TeardownKind::ThreeWay, Closer::Server);
        let mut retried = run(1, TeardownKind::ThreeWay, Closer::Server);
        retried.timing_retries = 2;
        retried.measured.client_close_delay_ns = Some(20_100_000);
        // Still late after its retries: a four-way that the kernel did not choose.
        let mut late = run(2, TeardownKind::FourWay, Closer::Server);
        late.timing_retries = 3;
        late.problems = vec![
            crate::Problem::Mismatch {
                detail: "expected three-way/server, got four-way/server".into(),
            },
            crate::Problem::TimingMiss {
                side: crate::record::Side::Client,
                measured_ms: 52.0,
                knob_ms: 20.0,
                tolerance_ms: 5.0,
            },
        ];
        let v = verdict(&e, &[good, retried, late]);
        assert!(v.passed, "{:?}", v.message);
        assert_eq!(v.runs, 2);
        assert_eq!(v.counts.get("three-way/server"), Some(&2));
        assert_eq!(v.counts.get("four-way/server"), None);
        assert_eq!(v.timing_misses, 6);
        assert_eq!(v.timing_miss_runs, 1);
        assert_eq!(v.timing.client_close_delay.len(), 1);
        let mut only_late = run(0, TeardownKind::FourWay, Closer::Server);
        only_late.problems = vec![crate::Problem::TimingLate {
            side: crate::record::Side::Server,
            late_ms: 9.0,
            tolerance_ms: 5.0,
        }];
        let v = verdict(&e, &[only_late]);
        assert!(!v.passed);
        assert!(v
            .message
            .unwrap()
            .starts_with("every run (1) missed its timing"));
    }

    #[test]
    fn kinds_set_delay_and_states() {
        let e = Expect {
            kinds: Some(vec![TeardownKind::ThreeWay, TeardownKind::Simultaneous]),
            ..Default::default()
        };
        assert!(check_run(&e, &obs(TeardownKind::Simultaneous, Some(Closer::Both))).is_none());
        assert!(check_run(&e, &obs(TeardownKind::Reset, Some(Closer::Both))).is_some());
        let e = Expect {
            kind: Some(TeardownKind::FourWay),
            fin_ack_delay_ms: Some(crate::scenario::MsRange {
                min: Some(30.0),
                max: Some(35.0),
            }),
            server_states: Some(vec![vec![TcpState::FinWait1]]),
            ..Default::default()
        };
        let m = check_run(&e, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert!(
            m.starts_with("fin_ack_delay 40.000 ms outside 30..35 ms"),
            "{m}"
        );
        let e = Expect {
            server_states: Some(vec![vec![TcpState::FinWait2]]),
            ..e
        };
        let e = Expect {
            fin_ack_delay_ms: None,
            ..e
        };
        let m = check_run(&e, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert_eq!(m, "server states: expected [FIN_WAIT_2], got [FIN_WAIT_1]");
        // Several sequences: any one of them, exactly.
        let either = Expect {
            server_states: Some(vec![
                vec![TcpState::FinWait2],
                vec![TcpState::FinWait1, TcpState::TimeWait],
            ]),
            ..e.clone()
        };
        let m = check_run(&either, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert_eq!(
            m,
            "server states: expected [FIN_WAIT_2] or [FIN_WAIT_1, TIME_WAIT], got [FIN_WAIT_1]"
        );
        let either = Expect {
            server_states: Some(vec![vec![TcpState::FinWait2], vec![TcpState::FinWait1]]),
            ..e
        };
        assert_eq!(
            check_run(&either, &obs(TeardownKind::FourWay, Some(Closer::Client))),
            None
        );
    }

    #[test]
    fn kinds_with_a_closer_check_both() {
        let e = Expect {
            kinds: Some(vec![TeardownKind::ThreeWay, TeardownKind::FourWay]),
            active_closer: Some(Closer::Server),
            ..Default::default()
        };
        for k in [TeardownKind::ThreeWay, TeardownKind::FourWay] {
            assert_eq!(check_run(&e, &obs(k, Some(Closer::Server))), None);
        }
        let m = check_run(&e, &obs(TeardownKind::ThreeWay, Some(Closer::Client))).unwrap();
        assert_eq!(
            m,
            "expected {three-way, four-way}/server, got three-way/client"
        );
        assert!(check_run(&e, &obs(TeardownKind::Reset, Some(Closer::Server))).is_some());
    }

    /// A server-closed outcome of `kind`.
    fn server(kind: TeardownKind) -> Outcome {
        Outcome {
            kind,
            closer: Some(Closer::Server),
        }
    }

    /// Eight server-closed runs: four-way where `four(index)`, three-way elsewhere.
    fn eight_runs(four: impl Fn(u32) -> bool) -> Vec<RunOutcome> {
        (0..8)
            .map(|i| {
                let k = if four(i) {
                    TeardownKind::FourWay
                } else {
                    TeardownKind::ThreeWay
                };
                run(i, k, Closer::Server)
            })
            .collect()
    }

    #[test]
    fn max_ratio_bounds_an_outcome_and_narrates_its_first_run() {
        let e = Expect {
            kinds: Some(vec![TeardownKind::ThreeWay, TeardownKind::FourWay]),
            active_closer: Some(Closer::Server),
            max_ratio: [(server(TeardownKind::FourWay), 0.25)]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        // The last `fours` runs are four-way.
        let batch = |fours: u32| eight_runs(|i| i >= 8 - fours);
        for fours in [0, 1, 2] {
            let v = verdict(&e, &batch(fours));
            assert!(v.passed, "{fours}: {:?}", v.message);
        }
        let v = verdict(&e, &batch(3));
        assert!(!v.passed);
        assert_eq!(
            v.message.as_deref(),
            Some("four-way/server: 3 of 8 runs (37.5%), expected at most 25.0%")
        );
        assert_eq!(v.first_failure, Some(5), "the first four-way is narrated");
        assert_eq!(
            expected_text(&e),
            "{three-way, four-way}/server and four-way/server <= 25%"
        );
    }

    /// `min_ratio` is the mirror image: a share below it fails, naming the first run that
    /// was something else; `max_ratio` is checked after it.
    #[test]
    fn min_ratio_bounds_an_outcome_from_below_and_narrates_the_first_other_run() {
        let e = Expect {
            kinds: Some(vec![TeardownKind::ThreeWay, TeardownKind::FourWay]),
            active_closer: Some(Closer::Server),
            min_ratio: [(server(TeardownKind::ThreeWay), 0.75)]
                .into_iter()
                .collect(),
            max_ratio: [(server(TeardownKind::FourWay), 0.5)].into_iter().collect(),
            ..Default::default()
        };
        // Four-way at these run indices.
        let batch = |fours: &[u32]| eight_runs(|i| fours.contains(&i));
        assert!(verdict(&e, &batch(&[1, 6])).passed);
        let v = verdict(&e, &batch(&[2, 4, 7]));
        assert!(!v.passed);
        assert_eq!(
            v.message.as_deref(),
            Some("three-way/server: 5 of 8 runs (62.5%), expected at least 75.0%")
        );
        assert_eq!(v.first_failure, Some(2), "the first other run is narrated");
        // Both bounds missed: the lower one is the one reported.
        let v = verdict(&e, &batch(&[3, 4, 5, 6, 7]));
        assert_eq!(
            v.message.as_deref(),
            Some("three-way/server: 3 of 8 runs (37.5%), expected at least 75.0%")
        );
        assert_eq!(v.first_failure, Some(3));
    }

    /// A run record whose close is broken in each way the full shape names fails with
    /// that reason; the same record with the part relaxed passes.
    #[test]
    fn the_full_shape_of_a_close_is_checked_by_default() {
        use crate::run::KernelState;
        let e = Expect {
            kind: Some(TeardownKind::ThreeWay),
            ..Default::default()
        };
        let good = obs(TeardownKind::ThreeWay, Some(Closer::Server));
        assert_eq!(check_run(&e, &good), None);

        // The final ACK answered by an RST (`late-rst`, no final ACK).
        let warned = ["late-rst".to_owned()];
        let o = Observed {
            warnings: &warned,
            ..good.clone()
        };
        let m = check_run(&e, &o).expect("warning");
        assert!(m.starts_with("unexpected warning `late-rst`"), "{m}");
        let relaxed = Expect {
            allow_warnings: vec!["late-rst".into()],
            ..e.clone()
        };
        assert_eq!(check_run(&relaxed, &o), None);
        let sided = ["fin-inferred:client".to_owned()];
        let o = Observed {
            warnings: &sided,
            ..good.clone()
        };
        let any_side = Expect {
            allow_warnings: vec!["fin-inferred".into()],
            ..e.clone()
        };
        assert_eq!(check_run(&any_side, &o), None);
        let other_code = Expect {
            allow_warnings: vec!["fin".into()],
            ..e.clone()
        };
        assert!(
            check_run(&other_code, &o).is_some(),
            "a prefix of a code is not the code"
        );

        let o = Observed {
            final_ack: false,
            ..good.clone()
        };
        let m = check_run(&e, &o).expect("final ack");
        assert!(m.starts_with("no final ACK captured"), "{m}");
        let any = Expect {
            final_ack: Some(FinalAck::Any),
            ..e.clone()
        };
        assert_eq!(check_run(&any, &o), None);
        let absent = Expect {
            final_ack: Some(FinalAck::Absent),
            ..e.clone()
        };
        assert_eq!(check_run(&absent, &o), None);
        assert!(check_run(&absent, &good).is_some());
        // A reset has no final ACK to miss.
        let reset = Expect {
            kind: Some(TeardownKind::Reset),
            ..Default::default()
        };
        let o = Observed {
            final_ack: false,
            ..obs(TeardownKind::Reset, Some(Closer::Client))
        };
        assert_eq!(check_run(&reset, &o), None);

        // Every peer retransmitting its FIN: fails on loopback, not across a lossy link.
        let o = Observed {
            fin_retransmits: 3,
            ..good.clone()
        };
        let m = check_run(&e, &o).expect("retransmits");
        assert!(
            m.starts_with("3 FIN retransmission(s) without link faults"),
            "{m}"
        );
        let lossy = Observed {
            link_impaired: true,
            ..o.clone()
        };
        assert_eq!(check_run(&e, &lossy), None);

        // A close that took 7 s.
        let o = Observed {
            close_duration_ns: Some(7_000_000_000),
            ..good.clone()
        };
        let m = check_run(&e, &o).expect("duration");
        assert!(
            m.starts_with("close took 7000.000 ms, outside <= 1000 ms"),
            "{m}"
        );
        let long = Expect {
            close_duration_ms: Some(MsRange {
                min: Some(5000.0),
                max: None,
            }),
            ..e.clone()
        };
        assert_eq!(check_run(&long, &o), None);
        assert!(check_run(&long, &good).is_some(), "a lower bound holds too");

        // The passive closer stuck in LAST_ACK.
        let st = |state| KernelState {
            ts_ns: 0,
            state,
            via_sock_diag: false,
        };
        let stuck = KernelStates {
            source: Some("test"),
            client: vec![st(TcpState::LastAck)],
            server: vec![st(TcpState::FinWait2), st(TcpState::TimeWait)],
            ..Default::default()
        };
        let o = Observed {
            kernel: Some(&stuck),
            ..good.clone()
        };
        let m = check_run(&e, &o).expect("LAST_ACK");
        assert!(
            m.starts_with("kernel client socket ended in LAST_ACK, expected [CLOSED, TIME_WAIT]"),
            "{m}"
        );
        let relaxed = Expect {
            kernel_end_client: Some(vec![]),
            ..e.clone()
        };
        assert_eq!(check_run(&relaxed, &o), None);
        // Which side holds TIME_WAIT can be named.
        let tw_client = Expect {
            kernel_end_client: Some(vec![TcpState::TimeWait]),
            kernel_end_server: Some(vec![TcpState::Closed]),
            ..e.clone()
        };
        let fine = KernelStates {
            source: Some("test"),
            client: vec![st(TcpState::TimeWait)],
            server: vec![st(TcpState::Closed)],
            ..Default::default()
        };
        let o = Observed {
            kernel: Some(&fine),
            ..good.clone()
        };
        assert_eq!(check_run(&tw_client, &o), None);
        let m = check_run(
            &tw_client,
            &Observed {
                kernel: Some(&stuck),
                ..good.clone()
            },
        )
        .expect("mismatch");
        assert!(m.contains("client socket ended in LAST_ACK"), "{m}");
        // Named explicitly, missing kernel states fail; by default they are skipped.
        let m = check_run(&tw_client, &good).expect("not recorded");
        assert!(
            m.starts_with("kernel client end state: not recorded"),
            "{m}"
        );

        // How long TIME_WAIT is set to last: the kernel's 60 s passes, a halved one fails,
        // and a side not in TIME_WAIT cannot pass.
        let lasts = Expect {
            client: ProgramExpect {
                time_wait_ms: Some(MsRange {
                    min: Some(59_000.0),
                    max: Some(61_000.0),
                }),
                ..Default::default()
            },
            ..e.clone()
        };
        let with = |ms| KernelStates {
            time_wait_ms: [ms, None],
            ..fine.clone()
        };
        let (sixty, thirty, none) = (with(Some(60_018)), with(Some(30_002)), with(None));
        let obs = |k| Observed {
            kernel: Some(k),
            ..good.clone()
        };
        assert_eq!(check_run(&lasts, &obs(&sixty)), None);
        let m = check_run(&lasts, &obs(&thirty)).expect("halved");
        assert_eq!(
            m,
            "client TIME_WAIT set to last 30002 ms, outside 59000..61000 ms"
        );
        let m = check_run(&lasts, &obs(&none)).expect("not in TIME_WAIT");
        assert!(m.contains("not in TIME_WAIT"), "{m}");
        let m = check_run(&lasts, &good).expect("not recorded");
        assert!(m.starts_with("client time_wait_ms: "), "{m}");

        // The second connection's connect(2): at once passes, after the 1 s SYN RTO fails,
        // none at all fails.
        let quick = Expect {
            client: ProgramExpect {
                reconnect_connect_ms: Some(MsRange {
                    min: None,
                    max: Some(500.0),
                }),
                ..Default::default()
            },
            ..e.clone()
        };
        let took = |ns| Observed {
            reconnect_connect_ns: ns,
            ..good.clone()
        };
        assert_eq!(check_run(&quick, &took(Some(150_000))), None);
        assert_eq!(
            check_run(&quick, &took(Some(1_003_000_000))).as_deref(),
            Some("client's second connect took 1003.000 ms, outside <= 500 ms")
        );
        assert!(check_run(&quick, &took(None)).is_some());
    }

    #[test]
    fn what_each_program_saw_is_checked() {
        use crate::scenario::CallExpect;
        let e = Expect {
            kind: Some(TeardownKind::Reset),
            client: ProgramExpect {
                recv: Some(CallExpect(vec![CallResult::Errno(libc::ECONNRESET)])),
                ..Default::default()
            },
            server: ProgramExpect {
                close_blocked_ms: Some(MsRange {
                    min: Some(900.0),
                    max: Some(1100.0),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reset = Calls {
            recv: Some(CallResult::Errno(libc::ECONNRESET)),
            ..Default::default()
        };
        let eof = Calls {
            recv: Some(CallResult::Eof),
            ..Default::default()
        };
        let base = Observed {
            client_calls: Some(&reset),
            server_calls: Some(&eof),
            server_close_blocked_ns: Some(1_000_000_000),
            ..obs(TeardownKind::Reset, Some(Closer::Server))
        };
        assert_eq!(check_run(&e, &base), None);
        let m = check_run(
            &e,
            &Observed {
                client_calls: Some(&eof),
                ..base.clone()
            },
        )
        .expect("eof");
        assert_eq!(m, "client recv: expected ECONNRESET, got eof");
        let none = Calls::default();
        let m = check_run(
            &e,
            &Observed {
                client_calls: Some(&none),
                ..base.clone()
            },
        )
        .expect("not called");
        assert_eq!(m, "client recv: expected ECONNRESET, but it was not called");
        let m = check_run(
            &e,
            &Observed {
                client_calls: None,
                ..base.clone()
            },
        )
        .expect("no report");
        assert_eq!(m, "client calls: the client did not report");
        let m = check_run(
            &e,
            &Observed {
                server_close_blocked_ns: Some(20_000),
                ..base.clone()
            },
        )
        .expect("did not block");
        assert_eq!(m, "server close blocked 0.020 ms, outside 900..1100 ms");
        // Who sent the RSTs.
        let e = Expect {
            kind: Some(TeardownKind::FourWay),
            client: ProgramExpect {
                rsts: Some(crate::scenario::CountRange {
                    min: Some(1),
                    max: None,
                }),
                ..Default::default()
            },
            server: ProgramExpect {
                rsts: Some(crate::scenario::CountRange {
                    min: None,
                    max: Some(0),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let shape = |c, s| crate::outcome::PacketShape {
            segments: [6, 5],
            rsts: [c, s],
        };
        let base = obs(TeardownKind::FourWay, Some(Closer::Client));
        let with = |sh| Observed {
            shape: Some(sh),
            ..base.clone()
        };
        assert_eq!(check_run(&e, &with(shape(1, 0))), None);
        assert_eq!(
            check_run(&e, &with(shape(0, 0))).unwrap(),
            "client sent 0 RST(s), outside >= 1"
        );
        assert_eq!(
            check_run(&e, &with(shape(1, 1))).unwrap(),
            "server sent 1 RST(s), outside <= 0"
        );
        assert_eq!(
            check_run(&e, &base).unwrap(),
            "client RSTs: no connection captured"
        );
    }
}
