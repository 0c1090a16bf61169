//! What one run gave, and what the runs of one point add up to.

use crate::plan::Point;
use std::cmp::Ordering;
use std::fmt;
use tcplab_trace::{Closer, Summary, TeardownKind};

/// The outcome of a run as the sweep counts it: teardown kind and active closer, or a run that
/// failed before it could be classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeKey {
    /// A classified teardown.
    Teardown(TeardownKind, Option<Closer>),
    /// The run failed (its error is kept in the point file).
    Error,
}

impl OutcomeKey {
    /// Every kind in the order charts stack and legends list them: the two the seed is
    /// about first, then the rarer ones (failures come after them).
    pub const KIND_ORDER: [TeardownKind; 6] = TeardownKind::READING_ORDER;

    fn rank(&self) -> (usize, usize) {
        match *self {
            OutcomeKey::Teardown(kind, closer) => {
                let k = Self::KIND_ORDER
                    .iter()
                    .position(|x| *x == kind)
                    .unwrap_or(Self::KIND_ORDER.len());
                let c = match closer {
                    Some(Closer::Server) => 0,
                    Some(Closer::Client) => 1,
                    Some(Closer::Both) => 2,
                    None => 3,
                };
                (k, c)
            }
            OutcomeKey::Error => (Self::KIND_ORDER.len() + 1, 0),
        }
    }

    /// Parse `"three-way/server"` (the spelling of [`Summary::key`]) or `"error"`.
    pub fn parse(s: &str) -> Option<OutcomeKey> {
        if s == "error" {
            return Some(OutcomeKey::Error);
        }
        let (k, c) = s.split_once('/')?;
        let kind = TeardownKind::from_name(k)?;
        let closer = match c {
            "none" => None,
            other => Some(Closer::from_name(other)?),
        };
        Some(OutcomeKey::Teardown(kind, closer))
    }

    /// The kind, unless the run failed.
    pub fn kind(&self) -> Option<TeardownKind> {
        match self {
            OutcomeKey::Teardown(k, _) => Some(*k),
            OutcomeKey::Error => None,
        }
    }

    /// The active closer, if any.
    pub fn closer(&self) -> Option<Closer> {
        match self {
            OutcomeKey::Teardown(_, c) => *c,
            OutcomeKey::Error => None,
        }
    }
}

impl fmt::Display for OutcomeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutcomeKey::Teardown(k, c) => f.write_str(&Summary::key(*k, *c)),
            OutcomeKey::Error => f.write_str("error"),
        }
    }
}

impl Ord for OutcomeKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for OutcomeKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One run of one point.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What it was.
    pub key: OutcomeKey,
    /// ns from the first FIN to the passive side's separate ACK of it (four-way).
    pub fin_ack_delay_ns: Option<i64>,
    /// ns from the first FIN (or RST) to the packet that ended the close.
    pub close_duration_ns: Option<i64>,
    /// Packets the capture dropped (a run with drops is counted, and its drops reported).
    pub drops: u64,
    /// Why the run failed, for [`OutcomeKey::Error`].
    pub error: Option<String>,
    /// The run's pcap, relative to the sweep's out dir, when it was kept.
    pub pcap: Option<String>,
}

impl Outcome {
    /// A classified run without timing, drops or pcap (tests and examples build on this).
    pub fn teardown(kind: TeardownKind, closer: Option<Closer>) -> Outcome {
        Outcome {
            key: OutcomeKey::Teardown(kind, closer),
            fin_ack_delay_ns: None,
            close_duration_ns: None,
            drops: 0,
            error: None,
            pcap: None,
        }
    }
}

/// Order statistics of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Sample size.
    pub n: u64,
    /// Smallest.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Stats of nanosecond samples, reported in ms rounded to µs (finer is capture noise and
    /// would make the files differ between identical runs for no reason).
    pub fn from_ns(samples: impl IntoIterator<Item = i64>) -> Option<Stats> {
        let mut v: Vec<i64> = samples.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let ms = |x: f64| (x / 1e3).round() / 1e3;
        let q = |p: f64| ms(quantile(&v, p));
        Some(Stats {
            n: v.len() as u64,
            min: ms(v[0] as f64),
            p10: q(0.1),
            median: q(0.5),
            p90: q(0.9),
            max: ms(v[v.len() - 1] as f64),
        })
    }
}

/// Linear interpolation between closest ranks (numpy's default, R type 7) of a sorted,
/// non-empty sample.
fn quantile(sorted: &[i64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let (a, b) = (sorted[lo] as f64, sorted[hi.min(sorted.len() - 1)] as f64);
    a + (b - a) * (h - lo as f64)
}

/// How often one outcome occurred at a point, and its timing.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeStat {
    /// The outcome.
    pub key: OutcomeKey,
    /// Runs with this outcome.
    pub count: u64,
    /// `count / runs`.
    pub share: f64,
    /// Capture drops summed over these runs.
    pub drops: u64,
    /// FIN → separate ACK delay (four-way), over the runs that have it.
    pub fin_ack_delay: Option<Stats>,
    /// Close duration, over the runs that have it.
    pub close_duration: Option<Stats>,
}

/// The runs of one point, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSummary {
    /// The point.
    pub point: Point,
    /// Runs in total.
    pub runs: u64,
    /// One entry per observed outcome, in [`OutcomeKey`] order.
    pub outcomes: Vec<OutcomeStat>,
}

impl PointSummary {
    /// Count the runs of a point.
    pub fn new(point: Point, runs: &[Outcome]) -> PointSummary {
        let mut keys: Vec<OutcomeKey> = runs.iter().map(|r| r.key).collect();
        keys.sort();
        keys.dedup();
        let total = runs.len() as u64;
        let outcomes = keys
            .into_iter()
            .map(|key| {
                let mine: Vec<&Outcome> = runs.iter().filter(|r| r.key == key).collect();
                let count = mine.len() as u64;
                OutcomeStat {
                    key,
                    count,
                    share: round6(count as f64 / total as f64),
                    drops: mine.iter().map(|r| r.drops).sum(),
                    fin_ack_delay: Stats::from_ns(mine.iter().filter_map(|r| r.fin_ack_delay_ns)),
                    close_duration: Stats::from_ns(mine.iter().filter_map(|r| r.close_duration_ns)),
                }
            })
            .collect();
        PointSummary {
            point,
            runs: total,
            outcomes,
        }
    }

    /// The most frequent outcome; a tie goes to the outcome that comes first in
    /// [`OutcomeKey`] order, so the answer never depends on run order.
    pub fn dominant(&self) -> Option<&OutcomeStat> {
        self.outcomes
            .iter()
            .fold(None, |best: Option<&OutcomeStat>, o| match best {
                Some(b) if b.count >= o.count => Some(b),
                _ => Some(o),
            })
    }

    /// More than one outcome occurred.
    pub fn is_mixed(&self) -> bool {
        self.outcomes.len() > 1
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knob::KnobValue;

    fn point() -> Point {
        Point {
            index: 0,
            values: vec![("k".into(), KnobValue::number(1.0))],
        }
    }

    fn four_way(delay_ms: i64) -> Outcome {
        Outcome {
            fin_ack_delay_ns: Some(delay_ms * 1_000_000),
            close_duration_ns: Some(100_000_000 + delay_ms),
            ..Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
        }
    }

    #[test]
    fn keys_round_trip_and_sort_for_the_legend() {
        let mut keys = vec![OutcomeKey::Error];
        for k in TeardownKind::ALL {
            for c in [
                None,
                Some(Closer::Client),
                Some(Closer::Server),
                Some(Closer::Both),
            ] {
                keys.push(OutcomeKey::Teardown(k, c));
            }
        }
        for k in &keys {
            assert_eq!(OutcomeKey::parse(&k.to_string()), Some(*k));
        }
        keys.sort();
        assert_eq!(keys[0].to_string(), "three-way/server");
        assert_eq!(keys[1].to_string(), "three-way/client");
        assert_eq!(keys[4].to_string(), "four-way/server");
        assert_eq!(
            keys.last().map(ToString::to_string).as_deref(),
            Some("error")
        );
        assert_eq!(OutcomeKey::parse("three-way/nobody"), None);
        assert_eq!(OutcomeKey::parse("sideways/server"), None);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = Stats::from_ns((1..=11).map(|i| i * 1_000_000)).unwrap();
        assert_eq!(
            (s.n, s.min, s.p10, s.median, s.p90, s.max),
            (11, 1.0, 2.0, 6.0, 10.0, 11.0)
        );
        let s = Stats::from_ns([40_123_456, 40_000_000]).unwrap();
        assert_eq!(s.median, 40.062);
        assert_eq!(s.p10, 40.012);
        assert_eq!(Stats::from_ns([]), None);
    }

    #[test]
    fn point_summary_counts_shares_and_timing() {
        let runs = vec![
            Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server)),
            four_way(40),
            four_way(41),
            Outcome {
                drops: 3,
                ..four_way(42)
            },
        ];
        let p = PointSummary::new(point(), &runs);
        assert_eq!(p.runs, 4);
        assert_eq!(p.outcomes.len(), 2);
        assert_eq!(p.outcomes[0].key.to_string(), "three-way/server");
        assert_eq!((p.outcomes[0].count, p.outcomes[0].share), (1, 0.25));
        assert_eq!(p.outcomes[0].fin_ack_delay, None);
        let fw = &p.outcomes[1];
        assert_eq!((fw.count, fw.share, fw.drops), (3, 0.75, 3));
        assert_eq!(fw.fin_ack_delay.map(|s| s.median), Some(41.0));
        assert_eq!(p.dominant().map(|d| d.key), Some(fw.key));
        assert!(p.is_mixed());
    }

    #[test]
    fn dominant_tie_goes_to_the_first_in_legend_order() {
        let runs = vec![
            four_way(40),
            Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server)),
        ];
        let p = PointSummary::new(point(), &runs);
        assert_eq!(
            p.dominant().map(|d| d.key.to_string()).as_deref(),
            Some("three-way/server")
        );
        let empty = PointSummary::new(point(), &[]);
        assert_eq!(empty.dominant(), None);
        assert!(!empty.is_mixed());
    }
}
