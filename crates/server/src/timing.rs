//! Clock helpers: a precise sleep and event timestamps.
//!
//! Precision matters more than CPU here: a scenario such as "the server closes 100 ms after
//! sending" must show up in the capture as 100 ms ± 1 ms between the data segment and the FIN.
//! `thread::sleep` alone overshoots by the timer slack (50 µs default, more under load), so we
//! sleep until shortly before the deadline and spin for the rest. This runs on the dedicated
//! blocking thread that owns the socket; an async timer would add scheduler latency.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long before the deadline we stop sleeping and start spinning.
const SPIN_WINDOW: Duration = Duration::from_micros(200);

/// Block the calling thread until `deadline` (CLOCK_MONOTONIC via [`Instant`]).
pub fn sleep_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN_WINDOW {
            std::thread::sleep(left - SPIN_WINDOW);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Convert a `*_ms` knob to a [`Duration`], rejecting negative, NaN and absurd values.
pub fn duration_from_ms(name: &'static str, ms: f64) -> Result<Duration, InvalidOption> {
    // One hour is far beyond any teardown experiment; a bigger value is a typo.
    const MAX_MS: f64 = 3_600_000.0;
    if !(0.0..=MAX_MS).contains(&ms) {
        return Err(InvalidOption {
            name,
            reason: format!("must be between 0 and {MAX_MS} ms, got {ms}"),
        });
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// An option value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid option `{name}`: {reason}")]
pub struct InvalidOption {
    /// Field name as written in a scenario file.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The origin that event times in a report are measured from.
///
/// Offsets are taken from the monotonic clock (precise, immune to clock steps);
/// `start_unix_ns` is the wall clock (CLOCK_REALTIME) at the origin, which is the clock libpcap
/// stamps packets with, so `start_unix_ns + offset` can be lined up with a capture.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    instant: Instant,
    unix_ns: u64,
}

impl Origin {
    /// Take the origin now.
    pub fn now() -> Origin {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Origin {
            instant: Instant::now(),
            unix_ns,
        }
    }

    /// The origin on the wall clock, nanoseconds since the Unix epoch.
    pub fn unix_ns(&self) -> u64 {
        self.unix_ns
    }

    /// The origin on the monotonic clock.
    pub fn instant(&self) -> Instant {
        self.instant
    }

    /// Microseconds from the origin to `t` (0 if `t` is earlier).
    pub fn offset_us(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.instant).as_secs_f64() * 1e6
    }

    /// Microseconds from the origin to now.
    pub fn elapsed_us(&self) -> f64 {
        self.offset_us(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_is_within_a_millisecond() {
        for ms in [0.0, 1.0, 5.0, 20.0] {
            let d = duration_from_ms("close_delay_ms", ms).expect("valid");
            let start = Instant::now();
            sleep_until(start + d);
            let took = start.elapsed();
            assert!(took >= d, "{ms} ms: woke early after {took:?}");
            assert!(
                took < d + Duration::from_millis(1),
                "{ms} ms: overslept to {took:?}"
            );
        }
    }

    #[test]
    fn duration_from_ms_rejects_bad_values() {
        assert!(duration_from_ms("x", -1.0).is_err());
        assert!(duration_from_ms("x", f64::NAN).is_err());
        assert!(duration_from_ms("x", f64::INFINITY).is_err());
        assert_eq!(
            duration_from_ms("x", 1.5).expect("valid"),
            Duration::from_micros(1500)
        );
    }
}
