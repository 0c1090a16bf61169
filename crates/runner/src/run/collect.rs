//! Reading a run's packets: the capture configuration of a one-run capture, and reading until
//! the capture shows the teardown complete.

use std::time::{Duration, Instant};

use tcplab_capture::{CaptureConfig, DropStats, LiveCapture, Record};
use tcplab_trace::{Analysis, TeardownKind, Warning};

use crate::outcome::COMPLETE_TIMEOUT;

/// Once the captures show the teardown complete, how long to wait for `also_done` (the
/// kernel trace's record of both sockets' ends, which follows the final ACK within a
/// millisecond). A record that never comes must not hold every run for [`COMPLETE_TIMEOUT`]:
/// the run then reports the missing record instead.
pub(crate) const RECORD_GRACE: Duration = Duration::from_millis(250);

/// The longest a reader waits for a packet before it looks again (at the clock, at the
/// other captures, at the kernel trace).
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_millis(1);

/// The capture of one run (fresh namespace or link).
pub(crate) fn fresh_capture_config() -> CaptureConfig {
    CaptureConfig {
        // A run is about ten frames; a small ring is quicker to map and tear down.
        buffer_bytes: 256 << 10,
        ..CaptureConfig::default()
    }
}

/// True when the capture shows the run's teardown complete: every connection in it (one, or
/// two when the client connects again on the same 4-tuple) is over. A close by FINs is over
/// at its final ACK, or at an RST after both FINs (`late-rst`): an orphan that died before
/// the peer's FIN came answers it with an RST, and no final ACK ever follows (waiting for
/// one held each such run for [`COMPLETE_TIMEOUT`]). The kernel trace's record of both
/// sockets' ends (`also_done`) still has to agree before the reading stops.
pub(crate) fn teardown_complete(a: &Analysis) -> bool {
    !a.connections.is_empty()
        && a.connections.iter().all(|c| match c.teardown.kind {
            TeardownKind::Reset => true,
            TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Simultaneous => {
                c.teardown.final_ack || c.warnings.contains(&Warning::LateRst)
            }
            TeardownKind::Incomplete | TeardownKind::Open => false,
        })
}

pub(crate) fn analyze_pcap(pcap: &[u8], source: &str) -> Result<Analysis, String> {
    tcplab_trace::analyze(pcap, source).map_err(|e| format!("analysing the capture: {e}"))
}

pub(crate) fn to_pcap(link_type: u32, snaplen: u32, records: Vec<Record>) -> Vec<u8> {
    tcplab_capture::Packets {
        link_type,
        snaplen,
        records,
        stats: DropStats::default(),
    }
    .to_pcap()
}

/// The newest capture time among `records` (CLOCK_REALTIME ns; 0 without any).
pub(crate) fn captured_until_ns(records: &[Record]) -> u64 {
    records
        .iter()
        .map(|r| u64::from(r.ts_sec) * 1_000_000_000 + u64::from(r.ts_nsec))
        .max()
        .unwrap_or(0)
}

/// What one capture of a run gave.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The frames.
    pub records: Vec<Record>,
    /// Packets the kernel dropped from the capture.
    pub drops: u64,
    /// A read error that ended the wait.
    pub error: Option<String>,
}

/// Read the captures until each shows the whole teardown and `also_done` agrees (the kernel
/// trace has both sockets' ends), or [`COMPLETE_TIMEOUT`] passes. One result per capture.
pub(crate) fn collect_until_complete(
    caps: &mut [&mut LiveCapture],
    snaplen: u32,
    also_done: impl FnMut() -> bool,
) -> Vec<Collected> {
    collect_until_settled(caps, snaplen, also_done, || true)
}

/// [`collect_until_complete`], and also until `settled` (the link's script has put its last
/// segment on the wire and the answer had time to come): a scripted segment may be due
/// after the teardown looks complete (an RST into TIME_WAIT). The grace for `also_done`
/// starts once both hold; [`COMPLETE_TIMEOUT`] still bounds the whole wait.
pub(crate) fn collect_until_settled(
    caps: &mut [&mut LiveCapture],
    snaplen: u32,
    mut also_done: impl FnMut() -> bool,
    mut settled: impl FnMut() -> bool,
) -> Vec<Collected> {
    let mut out: Vec<Collected> = caps.iter().map(|_| Collected::default()).collect();
    let readable: Vec<Option<tcplab_capture::Readable>> =
        caps.iter().map(|c| c.readable().ok()).collect();
    let mut complete = vec![false; caps.len()];
    let mut deadline = Instant::now() + COMPLETE_TIMEOUT;
    let mut grace_started = false;
    loop {
        let mut failed = false;
        for ((cap, c), done) in caps.iter_mut().zip(&mut out).zip(&mut complete) {
            match cap.take() {
                Ok(p) => {
                    c.drops += u64::from(p.stats.dropped) + u64::from(p.stats.if_dropped);
                    if !p.records.is_empty() {
                        c.records.extend(p.records);
                        let pcap = to_pcap(cap.link_type(), snaplen, c.records.clone());
                        *done = analyze_pcap(&pcap, "capture.pcap")
                            .map(|a| teardown_complete(&a))
                            .unwrap_or(false);
                    }
                }
                Err(e) => {
                    c.error = Some(format!("capture: {e}"));
                    failed = true;
                }
            }
        }
        let all = complete.iter().all(|d| *d) && settled();
        if failed || (all && also_done()) || Instant::now() >= deadline {
            break;
        }
        if all && !grace_started {
            grace_started = true;
            deadline = deadline.min(Instant::now() + RECORD_GRACE);
        }
        // Wake when the first incomplete capture has a packet (not at a sleep's next tick);
        // once all are complete, only the kernel trace is awaited: it follows within µs.
        match complete
            .iter()
            .position(|d| !*d)
            .and_then(|i| readable[i].as_ref())
        {
            Some(r) => r.wait(POLL_TIMEOUT),
            None if all => std::thread::sleep(Duration::from_micros(50)),
            None => std::thread::sleep(Duration::from_micros(500)),
        }
    }
    out
}
