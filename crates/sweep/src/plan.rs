//! The grid of points a sweep visits, and how `--shard I/N` splits it.

use crate::knob::{KnobValue, Vary};
use std::fmt;

/// One point of the grid: one value per varied knob.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the full (unsharded) grid: the first knob varies slowest.
    pub index: usize,
    /// `(key, value)` per knob, in `--vary` order.
    pub values: Vec<(String, KnobValue)>,
}

impl Point {
    /// Stable name of the point, used for its file on disk: `server.close_delay_ms=35`, or
    /// `a=1,b=2` for a grid. It depends on the values only, not on the grid, so a re-run with a
    /// wider or finer grid still finds (and reuses) the points it already has.
    pub fn id(&self) -> String {
        let raw = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={}", v.text))
            .collect::<Vec<_>>()
            .join(",");
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=' | ',') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// Human label: `server.close_delay_ms=35 ms`.
    pub fn label(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| {
                let unit = crate::knob::unit_of(k);
                if unit.is_empty() || v.num.is_none() {
                    format!("{k}={v}")
                } else {
                    format!("{k}={v} {unit}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The cartesian product of one or two knobs' values.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// The knobs, in `--vary` order.
    pub knobs: Vec<Vary>,
}

/// Sweeps are charted as a line (one knob) or a phase diagram (two knobs); more would need
/// a picture nobody can read.
pub const MAX_KNOBS: usize = 2;

/// The most points one sweep may have (the product of the knobs' value counts). A 300 × 300
/// phase diagram fits; a grid past this is a typo in a step, and at even one run per point
/// it would take days.
pub const MAX_POINTS: usize = 100_000;

impl Grid {
    /// A grid of one or two knobs with distinct names.
    pub fn new(knobs: Vec<Vary>) -> Result<Grid, GridError> {
        if knobs.is_empty() || knobs.len() > MAX_KNOBS {
            return Err(GridError::KnobCount(knobs.len()));
        }
        if knobs.len() == 2 && knobs[0].key == knobs[1].key {
            return Err(GridError::SameKnob(knobs[0].key.clone()));
        }
        let sizes: Vec<usize> = knobs.iter().map(|k| k.values.len()).collect();
        let product = sizes.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        if product.is_none_or(|p| p > MAX_POINTS) {
            return Err(GridError::TooManyPoints {
                sizes: sizes
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" × "),
                points: sizes.iter().map(|&n| n as u128).product(),
            });
        }
        Ok(Grid { knobs })
    }

    /// The point at `index` (first knob slowest), built on demand: planning never holds the
    /// whole grid. `None` past the end.
    pub fn point(&self, index: usize) -> Option<Point> {
        if index >= self.len() {
            return None;
        }
        let mut values = Vec::with_capacity(self.knobs.len());
        let mut stride = self.len();
        let mut rest = index;
        for knob in &self.knobs {
            stride /= knob.values.len();
            let i = rest / stride;
            rest %= stride;
            values.push((knob.key.clone(), knob.values[i].clone()));
        }
        Some(Point { index, values })
    }

    /// Every point, in index order, one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Point> + '_ {
        (0..self.len()).filter_map(|i| self.point(i))
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.knobs.iter().map(|k| k.values.len()).product()
    }

    /// Whether the grid has no point (never true for a grid built by [`Grid::new`] from
    /// parsed knobs, which have at least one value each).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point, in index order, as a vector (small grids, tests; see [`Grid::iter`]).
    pub fn points(&self) -> Vec<Point> {
        let mut out = vec![Point {
            index: 0,
            values: Vec::new(),
        }];
        for knob in &self.knobs {
            out = out
                .into_iter()
                .flat_map(|p| {
                    knob.values.iter().map(move |v| {
                        let mut values = p.values.clone();
                        values.push((knob.key.clone(), v.clone()));
                        Point { index: 0, values }
                    })
                })
                .collect();
        }
        for (i, p) in out.iter_mut().enumerate() {
            p.index = i;
        }
        out
    }
}

/// A grid that cannot be swept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    /// Zero or more than two `--vary`.
    #[error("a sweep varies 1 or {MAX_KNOBS} knobs, got {0}")]
    KnobCount(usize),
    /// The same knob twice.
    #[error("knob {0} is varied twice")]
    SameKnob(String),
    /// The grid's product is over [`MAX_POINTS`].
    #[error("the grid has {points} points ({sizes}), more than the limit of {MAX_POINTS}: use a coarser step (a..b:STEP) or fewer values")]
    TooManyPoints {
        /// The value counts, `10000 × 10000`.
        sizes: String,
        /// Their product.
        points: u128,
    },
}

/// `--shard I/N`: this process runs the points whose index `% N == I`.
///
/// `I` is **0-based** (`0/4` … `3/4`) so that Kubernetes' `JOB_COMPLETION_INDEX` (0-based) can
/// be passed straight through. Points are dealt round-robin, so every shard gets a similar mix
/// of short and long delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parse `I/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::Syntax(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(ShardError::ZeroCount);
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Whether the point with this grid index belongs to this shard.
    pub fn owns(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--shard` value that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("--shard {0:?}: expected I/N with 0 <= I < N, e.g. 0/4")]
    Syntax(String),
    /// N = 0.
    #[error("--shard: the number of shards must be at least 1")]
    ZeroCount,
    /// I >= N.
    #[error("--shard {index}/{count}: the shard index is 0-based, so it must be 0..={}", count - 1)]
    OutOfRange {
        /// I.
        index: usize,
        /// N.
        count: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(args: &[&str]) -> Grid {
        Grid::new(args.iter().map(|a| Vary::parse(a).unwrap()).collect()).unwrap()
    }

    #[test]
    fn grid_first_knob_varies_slowest() {
        let g = grid(&["a=1,2", "b=10..30:10"]);
        assert_eq!(g.len(), 6);
        let ids: Vec<String> = g.points().iter().map(Point::id).collect();
        assert_eq!(
            ids,
            ["a=1,b=10", "a=1,b=20", "a=1,b=30", "a=2,b=10", "a=2,b=20", "a=2,b=30"]
        );
        assert_eq!(g.points()[4].index, 4);
        let lazy: Vec<Point> = g.iter().collect();
        assert_eq!(lazy, g.points());
        assert_eq!(g.point(g.len()), None);
        assert_eq!(g.points()[4].label(), "a=2, b=20");
    }

    #[test]
    fn point_id_is_a_safe_file_name() {
        let g = grid(&["server.close_delay_ms=2.5", "client.how=a/b c"]);
        let id = g.points()[0].id();
        assert_eq!(id, "server.close_delay_ms=2.5,client.how=a_b_c");
        assert_eq!(
            g.points()[0].label(),
            "server.close_delay_ms=2.5 ms, client.how=a/b c"
        );
    }

    #[test]
    fn grid_rejects_zero_three_or_repeated_knobs() {
        assert_eq!(Grid::new(vec![]), Err(GridError::KnobCount(0)));
        let k = Vary::parse("a=1").unwrap();
        assert_eq!(
            Grid::new(vec![k.clone(), k.clone()]),
            Err(GridError::SameKnob("a".into()))
        );
        let (b, c) = (Vary::parse("b=1").unwrap(), Vary::parse("c=1").unwrap());
        assert_eq!(Grid::new(vec![k, b, c]), Err(GridError::KnobCount(3)));
    }

    #[test]
    fn grid_product_is_capped_before_any_point_exists() {
        let a = Vary::parse("server.close_delay_ms=0..9999:1").unwrap();
        let b = Vary::parse("client.close_delay_ms=0..9999:1").unwrap();
        let e = Grid::new(vec![a, b]).unwrap_err();
        assert!(matches!(
            e,
            GridError::TooManyPoints {
                points: 100_000_000,
                ..
            }
        ));
        let msg = e.to_string();
        assert!(
            msg.starts_with("the grid has 100000000 points (10000 × 10000)"),
            "{msg}"
        );
        assert!(msg.contains("limit of 100000"), "{msg}");
        let ok = grid(&["a=0..299:1", "b=0..299:1"]);
        assert_eq!(ok.len(), 90_000);
        assert_eq!(
            ok.point(89_999).map(|p| p.label()),
            Some("a=299, b=299".into())
        );
    }

    #[test]
    fn shards_partition_the_grid() {
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for index in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(index)).count(), 1);
        }
        assert!(Shard::ALL.owns(17));
        assert_eq!(Shard::parse("1/4").unwrap().to_string(), "1/4");
    }

    #[test]
    fn shard_index_is_zero_based() {
        assert_eq!(
            Shard::parse("4/4"),
            Err(ShardError::OutOfRange { index: 4, count: 4 })
        );
        assert!(Shard::parse("4/4")
            .unwrap_err()
            .to_string()
            .contains("0..=3"));
        assert_eq!(Shard::parse("0/0"), Err(ShardError::ZeroCount));
        assert!(matches!(Shard::parse("1"), Err(ShardError::Syntax(_))));
        assert!(matches!(Shard::parse("-1/2"), Err(ShardError::Syntax(_))));
    }
}
