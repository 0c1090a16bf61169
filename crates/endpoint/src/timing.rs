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

/// A duration knob in milliseconds (`close_delay_ms`, `timing_tolerance_ms`, the programs'
/// timeouts ...): one type with one limit for the scenario files, `--set`/`--vary`, the
/// `server`/`client` flags and these programs' own checks. Fractions are kept (µs precision).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Millis(pub f64);

impl Millis {
    /// The longest any `*_ms` knob may be: one hour is far beyond any teardown experiment,
    /// so a bigger value is a typo.
    pub const MAX: f64 = 3_600_000.0;

    /// No delay.
    pub const ZERO: Millis = Millis(0.0);

    /// `v` if it lies in 0 ..= [`Millis::MAX`]; else why not ("must be between 0 and
    /// 3600000 ms, got -5").
    pub fn new(v: f64) -> Result<Millis, String> {
        if v.is_finite() && (0.0..=Millis::MAX).contains(&v) {
            Ok(Millis(v))
        } else {
            Err(format!(
                "must be between 0 and {} ms, got {}",
                Millis::MAX,
                shown_number(v)
            ))
        }
    }

    /// True for no delay at all (a knob left at its default is not written out).
    pub fn is_zero(&self) -> bool {
        self.0 == 0.0
    }

    /// As a [`Duration`] (already checked: never panics).
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0.clamp(0.0, Millis::MAX) / 1000.0)
    }
}

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = deserialize_number(d)?;
        Millis::new(v).map_err(|e| serde::de::Error::custom(format!("a delay {e}")))
    }
}

/// An integer or a float as `f64`, naming what it wanted otherwise ("a number of
/// milliseconds (e.g. 20 or 2.5)"; an untagged enum would say "data did not match any
/// variant").
pub fn deserialize_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct NumberVisitor;
    impl serde::de::Visitor<'_> for NumberVisitor {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of milliseconds (e.g. 20 or 2.5)")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
    }
    d.deserialize_any(NumberVisitor)
}

/// A number as a message shows it: as written for everyday sizes, in exponent form past
/// 10^15 (1e308 is not printed as 309 digits) and for tiny fractions.
pub fn shown_number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-6..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Convert a `*_ms` knob to a [`Duration`], rejecting negative, NaN and absurd values
/// ([`Millis::new`]).
pub fn duration_from_ms(name: &'static str, ms: f64) -> Result<Duration, InvalidOption> {
    Millis::new(ms)
        .map(Millis::duration)
        .map_err(|reason| InvalidOption { name, reason })
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
        // Never early, whatever the load. Precise when the thread gets its CPU: on a busy
        // machine a wake-up can be late by any amount, so of several tries one must land
        // within a millisecond (a sleep that overshoots by design never does).
        for ms in [0.0, 1.0, 5.0, 20.0] {
            let d = duration_from_ms("close_delay_ms", ms).expect("valid");
            let mut best = Duration::MAX;
            for _ in 0..20 {
                let start = Instant::now();
                sleep_until(start + d);
                let took = start.elapsed();
                assert!(took >= d, "{ms} ms: woke early after {took:?}");
                best = best.min(took);
                if best < d + Duration::from_millis(1) {
                    break;
                }
            }
            assert!(
                best < d + Duration::from_millis(1),
                "{ms} ms: overslept in every try, at best to {best:?}"
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
