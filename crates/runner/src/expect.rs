//! Checking expectations: each run on its own ([`check_run`]), then the batch ([`verdict`]).

use std::collections::BTreeMap;

use tcplab_trace::{TcpState, TeardownKind};

use crate::run::kernel::is_subsequence;
use crate::run::{KernelStates, RunOutcome};
use crate::scenario::{Expect, Outcome};

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
            if want.as_slice() != have {
                return Some(format!(
                    "{side} states: expected {}, got {}",
                    states_text(want),
                    states_text(have)
                ));
            }
        }
    }
    None
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
        parts.push(format!("{{{}}}", v.join(", ")));
    }
    for (o, r) in &e.min_ratio {
        parts.push(format!("{o} >= {:.0}%", r * 100.0));
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
    /// Index (in the outcome list) of the first run that did not hold, if any.
    pub first_failure: Option<usize>,
    /// Why the batch failed (first reason), if it did.
    pub message: Option<String>,
}

/// Check the whole batch: every run's own check, then the `min_ratio` shares.
/// An empty batch (cancelled before any run finished) does not pass.
pub fn verdict(e: &Expect, outcomes: &[RunOutcome]) -> Verdict {
    let mut counts = BTreeMap::new();
    let mut by_outcome: BTreeMap<Outcome, u64> = BTreeMap::new();
    let mut drops = 0;
    let mut errors = 0;
    let mut first_failure = None;
    let mut message = None;
    for (i, o) in outcomes.iter().enumerate() {
        let out = Outcome {
            kind: o.kind,
            closer: o.active_closer,
        };
        *counts.entry(out.key()).or_insert(0) += 1;
        *by_outcome.entry(out).or_insert(0) += 1;
        drops += o.drops;
        if o.error.is_some() {
            errors += 1;
        }
        if first_failure.is_none() {
            if let Some(m) = &o.mismatch {
                first_failure = Some(i);
                message = Some(format!("run {}: {m}", o.index + 1));
            }
        }
    }
    let runs = outcomes.len() as u64;
    if message.is_none() {
        if runs == 0 {
            message = Some("no run finished".into());
        } else {
            for (want, ratio) in &e.min_ratio {
                let n = by_outcome.get(want).copied().unwrap_or(0);
                let share = n as f64 / runs as f64;
                if share + 1e-12 < *ratio {
                    message = Some(format!(
                        "{want}: {n} of {runs} runs ({:.1}%), expected at least {:.1}%",
                        share * 100.0,
                        ratio * 100.0
                    ));
                    // Narrate the first run that was not the wanted outcome.
                    first_failure = outcomes
                        .iter()
                        .position(|o| o.kind != want.kind || o.active_closer != want.closer);
                    break;
                }
            }
        }
    }
    Verdict {
        runs,
        counts,
        drops,
        errors,
        passed: message.is_none(),
        first_failure,
        message,
    }
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
            server_states: Some(vec![TcpState::FinWait1]),
            ..Default::default()
        };
        let m = check_run(&e, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert!(
            m.starts_with("fin_ack_delay 40.000 ms outside 30..35 ms"),
            "{m}"
        );
        let e = Expect {
            server_states: Some(vec![TcpState::FinWait2]),
            ..e
        };
        let e = Expect {
            fin_ack_delay_ms: None,
            ..e
        };
        let m = check_run(&e, &obs(TeardownKind::FourWay, Some(Closer::Client))).unwrap();
        assert_eq!(m, "server states: expected [FIN_WAIT_2], got [FIN_WAIT_1]");
    }
}
