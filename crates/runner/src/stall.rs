//! Stalls: stretches when this machine did not run tcplab at all. In a TCG guest on a busy
//! host the vCPU thread waits for a host CPU while the guest's clock (QEMU's virtual clock
//! follows the host's) runs on, so the kernel's own timers fire late by the stall: a 40 ms
//! delayed ACK is seen after 61 ms, a FIN leaves late and the delay measured to its ACK
//! shrinks. Comparing the guest's clock with the host's cannot show it (they agree); a thread
//! that sleeps 2 ms in a loop and notes each wake-up that came late can.
//!
//! The meter runs where `TCPLAB_STALL_METER` is set: the guest's `/init` sets it for its
//! `tcplab run`. A run during which the meter saw a stall longer than the scenario's timing
//! tolerance (at least [`MIN_STALL_MS`]) is a timing miss: retried, never counted as the
//! kernel's outcome, and reported with the stall's length.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that turns the meter on.
pub const ENV: &str = "TCPLAB_STALL_METER";

/// The meter's sleep.
const TICK: Duration = Duration::from_millis(2);

/// Lateness below this is not recorded (ordinary wake-up latency).
const RECORD_NS: u64 = 3_000_000;

/// A stall shorter than this never makes a timing miss (a guest's own scheduling noise).
pub const MIN_STALL_MS: f64 = 10.0;

/// Stalls kept (the oldest go first).
const KEEP: usize = 4096;

/// One late wake-up: when it ended (ns since the epoch) and how late it was (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stall {
    end_unix_ns: u64,
    late_ns: u64,
}

fn stalls() -> &'static Mutex<VecDeque<Stall>> {
    static S: OnceLock<Mutex<VecDeque<Stall>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(VecDeque::new()))
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Start the meter (once per process) when [`ENV`] is set; true when it runs.
pub fn start_if_wanted() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        if std::env::var_os(ENV).is_none() {
            return false;
        }
        std::thread::Builder::new()
            .name("stall-meter".into())
            .spawn(|| loop {
                let t = Instant::now();
                std::thread::sleep(TICK);
                let late = t.elapsed().saturating_sub(TICK).as_nanos() as u64;
                if late >= RECORD_NS {
                    if let Ok(mut s) = stalls().lock() {
                        if s.len() >= KEEP {
                            s.pop_front();
                        }
                        s.push_back(Stall {
                            end_unix_ns: unix_ns(),
                            late_ns: late,
                        });
                    }
                }
            })
            .is_ok()
    })
}

/// The longest stall that ended after `since_unix_ns` (ms), if the meter saw one.
pub fn longest_since(since_unix_ns: u64) -> Option<f64> {
    let s = stalls().lock().ok()?;
    s.iter()
        .filter(|x| x.end_unix_ns > since_unix_ns)
        .map(|x| x.late_ns)
        .max()
        .map(|ns| ns as f64 / 1e6)
}

/// The timing miss for a run that started at `since_unix_ns`, when a stall longer than
/// `tolerance_ms` (at least [`MIN_STALL_MS`]) happened during it.
pub fn miss_since(since_unix_ns: u64, tolerance_ms: f64) -> Option<crate::Problem> {
    judge(longest_since(since_unix_ns), tolerance_ms)
}

/// The longest stall that overlapped `from_unix_ns..=to_unix_ns` (ms), if the meter saw one.
/// A stall is the span before its late wake-up: its lateness plus the tick it slept.
pub fn longest_within(from_unix_ns: u64, to_unix_ns: u64) -> Option<f64> {
    let s = stalls().lock().ok()?;
    longest_overlapping(&s, from_unix_ns, to_unix_ns)
}

fn longest_overlapping(s: &VecDeque<Stall>, from: u64, to: u64) -> Option<f64> {
    let tick = TICK.as_nanos() as u64;
    s.iter()
        .filter(|x| x.end_unix_ns >= from && x.end_unix_ns.saturating_sub(x.late_ns + tick) <= to)
        .map(|x| x.late_ns)
        .max()
        .map(|ns| ns as f64 / 1e6)
}

/// The timing miss for a run whose close happened in `from_unix_ns..=to_unix_ns` (from
/// the last data segment to the connection's last packet, in the capture): a stall outside
/// it (the handshake, the request, the wait for the capture) only shifts the exchange or
/// delays tcplab's own bookkeeping, and leaves the close as the kernel made it. On a host
/// busy enough that a TCG guest stalls in every run, judging the whole run made every run
/// of some batches a timing miss (all 20 of simultaneous, all 100 of seed-simultaneous at
/// load 15), a failure that was the machine's, not the kernel's.
pub fn miss_within(
    from_unix_ns: u64,
    to_unix_ns: u64,
    tolerance_ms: f64,
) -> Option<crate::Problem> {
    judge(longest_within(from_unix_ns, to_unix_ns), tolerance_ms)
}

fn judge(longest_ms: Option<f64>, tolerance_ms: f64) -> Option<crate::Problem> {
    let limit_ms = tolerance_ms.max(MIN_STALL_MS);
    let stalled_ms = longest_ms?;
    (stalled_ms > limit_ms).then_some(crate::Problem::Stalled {
        stalled_ms,
        limit_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stall_past_the_limit_is_a_miss() {
        assert_eq!(judge(None, 5.0), None);
        assert_eq!(judge(Some(8.0), 5.0), None, "below MIN_STALL_MS");
        let m = judge(Some(21.5), 5.0).unwrap().to_string();
        assert!(m.starts_with("timing miss: stall:"), "{m}");
        assert!(m.contains("21.5 ms"), "{m}");
        assert_eq!(
            judge(Some(21.5), 30.0),
            None,
            "within the scenario's tolerance"
        );
    }

    #[test]
    fn only_a_stall_overlapping_the_close_counts() {
        let ms = 1_000_000u64;
        // A 30 ms stall that ended at 100 ms covered 68..100 ms (with the 2 ms tick).
        let s: VecDeque<Stall> = [Stall {
            end_unix_ns: 100 * ms,
            late_ns: 30 * ms,
        }]
        .into();
        assert_eq!(longest_overlapping(&s, 90 * ms, 200 * ms), Some(30.0));
        assert_eq!(longest_overlapping(&s, 0, 70 * ms), Some(30.0));
        assert_eq!(
            longest_overlapping(&s, 101 * ms, 200 * ms),
            None,
            "before the close"
        );
        assert_eq!(longest_overlapping(&s, 0, 60 * ms), None, "after the close");
    }

    #[test]
    fn the_meter_sees_a_stall_of_the_whole_process() {
        // Without the variable nothing runs; the recording itself is checked directly.
        let before = unix_ns();
        stalls().lock().unwrap().push_back(Stall {
            end_unix_ns: unix_ns() + 1,
            late_ns: 25_000_000,
        });
        assert_eq!(longest_since(before), Some(25.0));
        assert_eq!(longest_since(unix_ns() + 1_000_000_000), None);
    }
}
