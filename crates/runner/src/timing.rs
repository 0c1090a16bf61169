//! Timing misses: a run whose programs did not keep their own close delays shows the
//! scheduler, not the kernel's TCP, so it is not counted as the kernel's outcome.
//!
//! A knob promises "this side closes `close_delay_ms` after its last data" (sent or read).
//! What the run actually did is measured on the wire, from the run's own capture: the time
//! from the last data segment (either direction) before the side's first FIN or RST to that
//! FIN/RST. A side that sent neither (the peer reset first) is not measured. When a measured
//! delay is off its knob by more than the scenario's `timing_tolerance_ms` (default
//! [`crate::scenario::DEFAULT_TIMING_TOLERANCE_MS`]), the run is a timing miss: the driver
//! runs it again (at most [`MAX_TIMING_RETRIES`] times), and a run that still misses is
//! reported apart from the outcome counts.
//!
//! The same numbers, with the kernel's separate-ACK delay, are summarised per batch
//! ([`TimingStats`]: min / p50 / p99 / max), so drift — a loaded CI runner, a slow VM guest —
//! is visible in the results instead of hiding in the outcomes.

use std::collections::BTreeMap;

use tcplab_trace::{Connection, Side};

use crate::run::RunOutcome;
use crate::scenario::Scenario;

/// How often one run is tried again after a timing miss before it is reported as one.
pub const MAX_TIMING_RETRIES: u32 = 3;

/// Each side's close delay as the capture shows it, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    /// Server: last data segment to its first FIN/RST.
    pub server_close_delay_ns: Option<i64>,
    /// Client: last data segment to its first FIN/RST.
    pub client_close_delay_ns: Option<i64>,
}

/// Measure both sides' close delays in a classified connection.
pub fn measure(c: &Connection) -> Measured {
    let side = |who: Side| -> Option<i64> {
        let close = c
            .packets
            .iter()
            .position(|p| p.from == who && (p.flags.fin() || p.flags.rst()))?;
        let closing = &c.packets[close];
        if closing.len > 0 {
            // The FIN rode on the last data: no delay at all.
            return Some(0);
        }
        let last_data = c.packets[..close].iter().rev().find(|p| p.len > 0)?;
        Some(closing.ts_ns - last_data.ts_ns)
    };
    Measured {
        server_close_delay_ns: side(Side::Server),
        client_close_delay_ns: side(Side::Client),
    }
}

/// Why `m` misses `s`'s knobs by more than its tolerance, in words; `None` when on time.
pub fn miss(s: &Scenario, m: &Measured) -> Option<String> {
    let tolerance = s.timing_tolerance_ms;
    for (who, knob, got) in [
        ("server", s.server.close_delay_ms.0, m.server_close_delay_ns),
        ("client", s.client.close_delay_ms.0, m.client_close_delay_ns),
    ] {
        let Some(ns) = got else { continue };
        let ms = ns as f64 / 1e6;
        if (ms - knob).abs() > tolerance {
            return Some(format!(
                "timing miss: the {who} closed {ms:.3} ms after its last data, its knob says {knob} ms (tolerance {tolerance} ms)"
            ));
        }
    }
    None
}

/// A log-bucketed histogram of non-negative microsecond values: quantiles to within 1/64
/// (1.6 %) in constant memory, whatever the number of samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
    n: u64,
    min: Option<i64>,
    max: Option<i64>,
}

/// Values below this many µs get a bucket each.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 6;

fn bucket(us: u64) -> u32 {
    if us < LINEAR {
        return us as u32;
    }
    let e = 63 - us.leading_zeros(); // >= 7
    let m = (us >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as u32 + (e - 7) * (1 << SUB_BITS) + m as u32
}

fn bucket_low(b: u32) -> u64 {
    if u64::from(b) < LINEAR {
        return u64::from(b);
    }
    let k = b - LINEAR as u32;
    let e = 7 + k / (1 << SUB_BITS);
    let m = u64::from(k % (1 << SUB_BITS));
    (1u64 << e) + (m << (e - SUB_BITS))
}

impl Histogram {
    /// Add one sample, ns (negative ones count as 0).
    pub fn add_ns(&mut self, ns: i64) {
        let ns = ns.max(0);
        *self.buckets.entry(bucket(ns as u64 / 1000)).or_insert(0) += 1;
        self.n += 1;
        self.min = Some(self.min.map_or(ns, |m| m.min(ns)));
        self.max = Some(self.max.map_or(ns, |m| m.max(ns)));
    }

    /// Samples so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `q` quantile (0..=1), ms, to bucket precision (exact min and max at the ends).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (b, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                let low_ms = bucket_low(*b) as f64 / 1e3;
                let (min, max) = (self.min? as f64 / 1e6, self.max? as f64 / 1e6);
                return Some(low_ms.clamp(min, max));
            }
        }
        self.max.map(|m| m as f64 / 1e6)
    }

    /// `{"n", "min", "p50", "p99", "max"}` in ms, or null when empty.
    pub fn to_json(&self) -> serde_json::Value {
        if self.n == 0 {
            return serde_json::Value::Null;
        }
        serde_json::json!({
            "n": self.n,
            "min": self.min.map(|m| m as f64 / 1e6),
            "p50": self.quantile_ms(0.5),
            "p99": self.quantile_ms(0.99),
            "max": self.max.map(|m| m as f64 / 1e6),
        })
    }
}

/// A batch's measured timings: both programs' close delays and the kernel's separate-ACK
/// delay (four-way closes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimingStats {
    /// Server close delays.
    pub server_close_delay: Histogram,
    /// Client close delays.
    pub client_close_delay: Histogram,
    /// First FIN to its separate ACK.
    pub fin_ack_delay: Histogram,
}

impl TimingStats {
    /// Add one run.
    pub fn add(&mut self, o: &RunOutcome) {
        if let Some(ns) = o.server_close_delay_ns {
            self.server_close_delay.add_ns(ns);
        }
        if let Some(ns) = o.client_close_delay_ns {
            self.client_close_delay.add_ns(ns);
        }
        if let Some(ns) = o.fin_ack_delay_ns {
            self.fin_ack_delay.add_ns(ns);
        }
    }

    /// The `timing` object of summary.json and `tcplab run --json`.
    pub fn to_json(&self, tolerance_ms: f64) -> serde_json::Value {
        serde_json::json!({
            "tolerance_ms": tolerance_ms,
            "server_close_delay_ms": self.server_close_delay.to_json(),
            "client_close_delay_ms": self.client_close_delay.to_json(),
            "fin_ack_delay_ms": self.fin_ack_delay.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn buckets_round_trip_within_a_sixty_fourth() {
        for us in [
            0u64, 1, 127, 128, 129, 1000, 40_000, 52_345, 1_000_000, 60_000_000,
        ] {
            let low = bucket_low(bucket(us));
            assert!(low <= us, "{us}: {low}");
            assert!((us - low) as f64 <= us as f64 / 64.0, "{us}: {low}");
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for i in 1..=1000 {
            h.add_ns(i * 100_000); // 0.1 .. 100 ms
        }
        assert_eq!(h.len(), 1000);
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!((p50 - 50.0).abs() <= 50.0 / 64.0 + 0.1, "{p50}");
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p99 - 99.0).abs() <= 99.0 / 64.0 + 0.1, "{p99}");
        let j = h.to_json();
        assert_eq!(j["min"], 0.1);
        assert_eq!(j["max"], 100.0);
        assert_eq!(Histogram::default().to_json(), serde_json::Value::Null);
    }

    #[test]
    fn a_close_off_its_knob_by_more_than_the_tolerance_is_a_miss() {
        let s = Scenario::parse(
            "[client]\nclose_delay_ms = 20\n[expect]\nkind = \"three-way\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(s.timing_tolerance_ms, 5.0);
        let on_time = Measured {
            server_close_delay_ns: Some(100_000),
            client_close_delay_ns: Some(24_000_000),
        };
        assert_eq!(miss(&s, &on_time), None);
        let late = Measured {
            client_close_delay_ns: Some(52_000_000),
            ..on_time
        };
        let m = miss(&s, &late).unwrap();
        assert!(m.contains("the client closed 52.000 ms after its last data, its knob says 20 ms (tolerance 5 ms)"), "{m}");
        let unmeasured = Measured::default();
        assert_eq!(miss(&s, &unmeasured), None);
    }
}
