//! The end of every run, wherever it happened: classify the capture, check the expectation,
//! write the run's files. Also the mapping of setup errors to batch-fatal [`RunError`]s.

use std::time::Instant;

use tcplab_capture::{CaptureError, LinkError, NetnsError};
use tcplab_trace::render::{human, TextOptions};
use tcplab_trace::{Side, TeardownKind};

use super::collect::analyze_pcap;
use super::program::Programs;
use super::{RunError, RunOptions, RunOutcome};
use crate::expect::{check_run, Observed};
use crate::results;
use crate::scenario::{IpVersion, Scenario};

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

    /// A run that could not be carried out: `open`, with `error` as its mismatch.
    pub fn failed(&self, error: String) -> RunOutcome {
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
            mismatch: Some(error.clone()),
            error: Some(error),
            pcap: None,
            dir: None,
            narration: None,
            elapsed: self.start.elapsed(),
            server_close_delay_ns: None,
            client_close_delay_ns: None,
            server_wake_late_ns: None,
            client_wake_late_ns: None,
            timing_miss: None,
            timing_retries: 0,
        }
    }
}

/// A run's packets as read from its capture.
#[derive(Debug)]
pub(crate) struct Captured {
    /// Classic pcap bytes.
    pub pcap: Vec<u8>,
    /// Packets the kernel dropped from the capture during the run.
    pub drops: u64,
    /// Problems that make the run untrustworthy even if it classifies (capture read error,
    /// link relay stopped ...): each becomes the run's error and mismatch.
    pub errors: Vec<String>,
}

/// Classify, check, write the run's files.
pub(crate) fn finish_run(
    s: &Scenario,
    id: RunId,
    captured: Captured,
    programs: Programs,
    opts: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let Captured {
        pcap,
        drops,
        errors,
    } = captured;
    let mut o = id.failed(String::new());
    o.mismatch = None;
    o.error = programs.error.clone();
    o.drops = drops;
    let analysis = match analyze_pcap(&pcap, "capture.pcap") {
        Ok(a) => Some(a),
        Err(e) => {
            o.error.get_or_insert(e);
            None
        }
    };
    if let Some(a) = &analysis {
        o.packets = a.file.packets;
        match a.connections.as_slice() {
            [c] => {
                o.kind = c.teardown.kind;
                o.active_closer = c.teardown.active_closer;
                o.fin_ack_delay_ns = c.teardown.fin_ack_delay_ns;
                o.close_duration_ns = c.teardown.close_duration_ns;
                o.final_ack = c.teardown.final_ack;
                o.client_states = c.states[Side::Client.idx()].states();
                o.server_states = c.states[Side::Server.idx()].states();
                o.warnings = c.warnings.iter().map(|w| w.to_string()).collect();
                let link_delay_ns = s.link.as_ref().map_or(0, |l| l.delay().as_nanos() as i64);
                let m = crate::timing::measure(
                    c,
                    programs.server.as_ref(),
                    programs.client.as_ref(),
                    link_delay_ns,
                );
                o.server_close_delay_ns = m.server_close_delay_ns;
                o.client_close_delay_ns = m.client_close_delay_ns;
                o.server_wake_late_ns = m.server_wake_late_ns;
                o.client_wake_late_ns = m.client_wake_late_ns;
                if o.error.is_none() && drops == 0 {
                    o.timing_miss = crate::timing::miss(s, &m);
                }
            }
            [] => {
                o.error
                    .get_or_insert_with(|| "no connection captured".into());
            }
            many => {
                o.error.get_or_insert_with(|| {
                    format!("{} connections captured, expected 1", many.len())
                });
            }
        }
    }
    o.mismatch = if let Some(e) = &o.error {
        Some(e.clone())
    } else if o.drops > 0 {
        Some(format!(
            "the capture dropped {} packet(s): classification not trusted",
            o.drops
        ))
    } else {
        check_run(
            &s.expect,
            &Observed {
                outcome: o.outcome(),
                fin_ack_delay_ns: o.fin_ack_delay_ns,
                client_states: &o.client_states,
                server_states: &o.server_states,
            },
        )
    };
    let narration = analysis.as_ref().map(|a| {
        let mut buf = Vec::new();
        let _ = human::render(a, &TextOptions::default(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    // A timing miss is tried again under the same directory name: keep its files only when
    // all are kept (the retry then overwrites them).
    let keep =
        opts.keep_pcaps || (opts.keep_failed && o.mismatch.is_some() && o.timing_miss.is_none());
    if let (Some(batch), true) = (&opts.out_dir, keep) {
        let dir = batch.join(results::run_dir_name(id.index));
        results::write_run(
            &dir,
            &pcap,
            analysis.as_ref(),
            narration.as_deref().unwrap_or(""),
            &o,
            programs.server.as_ref(),
            programs.client.as_ref(),
        )?;
        o.pcap = Some(dir.join(results::PCAP_FILE));
        o.dir = Some(dir);
    }
    if o.mismatch.is_some() {
        o.narration = narration;
    }
    for e in errors {
        o.error.get_or_insert(e.clone());
        o.mismatch.get_or_insert(e);
    }
    o.elapsed = id.start.elapsed();
    Ok(o)
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
