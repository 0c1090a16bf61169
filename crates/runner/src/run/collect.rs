//! Reading a run's packets: the capture configuration of a one-run capture, and reading until
//! the capture shows the teardown complete.

use std::time::{Duration, Instant};

use tcplab_capture::{CaptureConfig, DropStats, LiveCapture, Record};
use tcplab_trace::{Analysis, TeardownKind};

use super::COMPLETE_TIMEOUT;

/// The capture of one run (fresh namespace or link).
pub(crate) fn fresh_capture_config() -> CaptureConfig {
    CaptureConfig {
        // A run is about ten frames; a small ring is quicker to map and tear down.
        buffer_bytes: 256 << 10,
        ..CaptureConfig::default()
    }
}

/// True when the capture shows the run's teardown complete.
pub(crate) fn teardown_complete(a: &Analysis) -> bool {
    match a.connections.as_slice() {
        [c] => match c.teardown.kind {
            TeardownKind::Reset => true,
            TeardownKind::ThreeWay | TeardownKind::FourWay | TeardownKind::Simultaneous => {
                c.teardown.final_ack
            }
            TeardownKind::Incomplete | TeardownKind::Open => false,
        },
        _ => false,
    }
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

/// Read the capture until it shows the whole teardown (or [`COMPLETE_TIMEOUT`] passes):
/// the frames, the kernel's drop count, and a read error if one ended the wait.
pub(crate) fn collect_until_complete(
    cap: &mut LiveCapture,
    snaplen: u32,
) -> (Vec<Record>, u64, Option<String>) {
    let mut records = Vec::new();
    let mut drops = 0u64;
    let deadline = Instant::now() + COMPLETE_TIMEOUT;
    let mut capture_error = None;
    loop {
        match cap.take() {
            Ok(p) => {
                drops += u64::from(p.stats.dropped) + u64::from(p.stats.if_dropped);
                records.extend(p.records);
            }
            Err(e) => {
                capture_error = Some(format!("capture: {e}"));
                break;
            }
        }
        let pcap = to_pcap(cap.link_type(), snaplen, records.clone());
        let done = analyze_pcap(&pcap, "capture.pcap")
            .map(|a| teardown_complete(&a))
            .unwrap_or(false);
        if done || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    (records, drops, capture_error)
}
