//! Fisher's exact test on a 2×2 table, two-sided (the sum of the probabilities of all tables
//! with the same margins that are no more likely than the observed one). Exact at the counts
//! this lab produces, which matters here: a racy outcome seen 3 times in 200 runs is far below
//! where a chi-square approximation holds.
//!
//! Cost is bounded for any input, u64::MAX counts included. The tables with fixed margins
//! form a hypergeometric distribution, which is log-concave: from its mode the probabilities
//! only fall, each step by the ratio of two products, so they are summed in one walk outward
//! from the mode (one logarithm per table, no factorials) that stops where a table is
//! `e^-800` of the mode's — below the smallest f64, and by log-concavity so is the rest of
//! that tail. That walk is about 40 standard deviations long. Where it would exceed
//! [`MAX_EXACT_STEPS`] per side (a standard deviation above ~50 000 runs, so at least
//! ~10^10 runs in the table) the normal approximation replaces it: the hypergeometric's
//! skewness there is below 1/50 000, which puts the approximation's relative error under
//! 0.1 % out to p ≈ 10^-9, far finer than any `--alpha` decision needs.

/// At most this many tables are walked on each side of the mode (≈ 20 ms in all).
const MAX_EXACT_STEPS: u64 = 1 << 21;

/// A table this far below the mode's log-probability no longer counts (e^-800 < f64::MIN).
const NEGLIGIBLE_LN: f64 = -800.0;

/// Tables as likely as the observed one count too; this relative tolerance (R's) absorbs
/// rounding between two tables of equal probability.
const TIE_TOLERANCE: f64 = 1e-7;

/// Two-sided p-value of Fisher's exact test for the table `[[a, b], [c, d]]`.
pub fn two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    match Margins::of(a, b, c, d) {
        None => 1.0,
        Some(m) => m.exact(a).unwrap_or_else(|| m.normal(a)),
    }
}

/// The table's fixed margins: rows `r1 = a + b`, `r2 = c + d`, first column `c1 = a + c`.
/// Held in u128 because four u64 counts can sum past u64::MAX.
struct Margins {
    r1: u128,
    r2: u128,
    c1: u128,
}

impl Margins {
    /// None when only one table has these margins (an empty row or column): p = 1.
    fn of(a: u64, b: u64, c: u64, d: u64) -> Option<Self> {
        let (a, b, c, d) = (a as u128, b as u128, c as u128, d as u128);
        let m = Margins {
            r1: a + b,
            r2: c + d,
            c1: a + c,
        };
        (m.r1 > 0 && m.r2 > 0 && m.c1 > 0 && b + d > 0).then_some(m)
    }

    fn n(&self) -> u128 {
        self.r1 + self.r2
    }

    /// ln P(x + 1) − ln P(x), where x is the top-left cell.
    fn ln_ratio_up(&self, x: u128) -> f64 {
        let d = self.r2 + x - self.c1; // bottom-right cell of table x (≥ 0 on the support)
        let num = (self.r1 - x) as f64 * (self.c1 - x) as f64;
        let den = (x + 1) as f64 * (d + 1) as f64;
        (num / den).ln()
    }

    /// The exact sum, or None where the walk would exceed [`MAX_EXACT_STEPS`].
    fn exact(&self, observed: u64) -> Option<f64> {
        let n = self.n();
        // Every count below is then exact in f64 and every product fits in u128.
        if n > 1 << 53 || 40.0 * self.variance().sqrt() > MAX_EXACT_STEPS as f64 {
            return None;
        }
        let lo = self.c1.saturating_sub(self.r2);
        let hi = self.r1.min(self.c1);
        let mode = ((self.r1 + 1) * (self.c1 + 1) / (n + 2)).clamp(lo, hi);
        let observed = observed as u128;
        // The observed table's ln P − ln P(mode), by walking to it; beyond the negligible
        // point its probability, and so the p-value, is below the smallest f64.
        let mut ln_observed = None;
        let reached = self.walk(mode, lo, hi, observed < mode, |x, lw| {
            if x == observed {
                ln_observed = Some(lw);
            }
        })?;
        let Some(ln_observed) = ln_observed.or((observed == mode).then_some(0.0)) else {
            return reached.then_some(0.0);
        };
        let threshold = ln_observed + TIE_TOLERANCE * ln_observed.abs().max(1.0);
        let (mut total, mut tail) = (1.0, if threshold >= 0.0 { 1.0 } else { 0.0 });
        for down in [true, false] {
            self.walk(mode, lo, hi, down, |_, lw| {
                let w = lw.exp();
                total += w;
                if lw <= threshold {
                    tail += w;
                }
            })?;
        }
        Some((tail / total).min(1.0))
    }

    /// Walks from the mode down to `lo` (or up to `hi`) until the tables are negligible,
    /// handing each table's x and ln P(x) − ln P(mode) to `each`. Some(true) when it stopped
    /// at a negligible table, Some(false) at the end of the support, None past the step bound.
    fn walk(
        &self,
        mode: u128,
        lo: u128,
        hi: u128,
        down: bool,
        mut each: impl FnMut(u128, f64),
    ) -> Option<bool> {
        let (mut x, mut lw) = (mode, 0.0);
        for _ in 0..MAX_EXACT_STEPS {
            if lw <= NEGLIGIBLE_LN {
                return Some(true);
            }
            if down {
                if x == lo {
                    return Some(false);
                }
                x -= 1;
                lw -= self.ln_ratio_up(x);
            } else {
                if x == hi {
                    return Some(false);
                }
                lw += self.ln_ratio_up(x);
                x += 1;
            }
            each(x, lw);
        }
        None
    }

    /// The hypergeometric variance r1·r2·c1·c2 / (n²(n−1)), in an order that cannot overflow.
    fn variance(&self) -> f64 {
        let (r1, r2, c1) = (self.r1 as f64, self.r2 as f64, self.c1 as f64);
        let n = r1 + r2;
        (r1 / n) * (r2 / n) * (c1 / (n - 1.0)) * (n - c1)
    }

    /// The normal approximation with continuity correction, for tables too large to walk.
    fn normal(&self, observed: u64) -> f64 {
        let mean = self.r1 as f64 * (self.c1 as f64 / self.n() as f64);
        let z = ((observed as f64 - mean).abs() - 0.5).max(0.0) / self.variance().sqrt();
        erfc(z / std::f64::consts::SQRT_2).min(1.0)
    }
}

/// The complementary error function, to a relative error below 1.2·10^-7 for every x ≥ 0
/// (the Chebyshev fit of erfc(x)·e^(x²) in t = 1/(1 + x/2), Press et al., Numerical Recipes
/// §6.2); the normal approximation above needs no more.
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    const C: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let poly = C.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let r = t * (-x * x + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.max(1e-12) + 1e-12
    }

    /// The definition, summed the slow way (every table, factorials as sums of logs): the
    /// oracle for the walk on tables small enough for it.
    fn by_definition(a: u64, b: u64, c: u64, d: u64) -> f64 {
        fn ln_fact(n: u64) -> f64 {
            (2..=n).map(|k| (k as f64).ln()).sum()
        }
        let ln_p = |a, b, c, d| {
            ln_fact(a + b) + ln_fact(c + d) + ln_fact(a + c) + ln_fact(b + d)
                - ln_fact(a)
                - ln_fact(b)
                - ln_fact(c)
                - ln_fact(d)
                - ln_fact(a + b + c + d)
        };
        let (r1, c1, n) = (a + b, a + c, a + b + c + d);
        if n == 0 {
            return 1.0;
        }
        let observed = ln_p(a, b, c, d);
        let mut p = 0.0;
        for x in c1.saturating_sub(n - r1)..=r1.min(c1) {
            let lp = ln_p(x, r1 - x, c1 - x, n + x - r1 - c1);
            if lp <= observed + 1e-7 {
                p += lp.exp();
            }
        }
        p.min(1.0)
    }

    #[test]
    fn textbook_values() {
        // Fisher's tea-tasting table: p = 0.4857 (two-sided).
        assert!(close(two_sided(3, 1, 1, 3), 0.485_714_285_7));
        // R: fisher.test(matrix(c(1, 9, 11, 3), 2)) → p = 0.002759
        assert!(close(two_sided(1, 11, 9, 3), 0.002_759_456));
        assert!(close(two_sided(0, 0, 0, 0), 1.0));
        assert!(close(two_sided(20, 0, 20, 0), 1.0));
    }

    #[test]
    fn the_walk_agrees_with_the_definition() {
        let cells = [0, 1, 2, 3, 5, 8, 13, 40, 97];
        for a in cells {
            for b in cells {
                for c in cells {
                    for d in cells {
                        let (got, want) = (two_sided(a, b, c, d), by_definition(a, b, c, d));
                        assert!(
                            (got - want).abs() <= 1e-9 * want.max(1e-300),
                            "[[{a}, {b}], [{c}, {d}]]: walk {got:e}, definition {want:e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn seen_shifts_are_significant_and_noise_is_not() {
        // 196/200 vs 106/200 (the seed-zero-delay shift between host and a TCG guest).
        assert!(two_sided(196, 4, 106, 94) < 1e-20);
        // 190/200 vs 186/200: noise.
        assert!(two_sided(190, 10, 186, 14) > 0.3);
        // A deterministic outcome flipping in one of 20 runs is not significant on its own.
        assert!(two_sided(20, 0, 19, 1) > 0.9);
    }

    /// Issue 20 item 3: large counts took seconds (O(n²)) and u64::MAX never ended (or
    /// overflowed). Every case must end, within a bound generous enough for a busy machine.
    #[test]
    fn any_counts_end_with_a_p_value() {
        let m = u64::MAX;
        let cases = [
            (3000, 3000, 1500, 4500),
            (10_000, 10_000, 5000, 15_000),
            (1_000_000, 1_000_000, 999_000, 1_001_000),
            (m, m, m, m),
            (m, 0, 0, m),
            (m, 1, 1, m),
            (0, m, m, 0),
            (m / 2, m / 2, m / 3, m - m / 3),
            (1 << 40, 1 << 40, 1 << 39, 3 << 39),
            (m, m, 0, 1),
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (a, b, c, d) in cases {
                let started = Instant::now();
                let p = two_sided(a, b, c, d);
                tx.send(((a, b, c, d), p, started.elapsed())).unwrap();
            }
        });
        for _ in cases {
            let (table, p, took) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("a Fisher test still running after 30 s");
            assert!((0.0..=1.0).contains(&p), "{table:?}: p = {p}");
            assert!(took < Duration::from_secs(30), "{table:?} took {took:?}");
        }
        // Shifts that large are significant; equal shares are not.
        assert!(two_sided(3000, 3000, 1500, 4500) < 1e-100);
        assert!(two_sided(m, m, m, m) > 0.99);
        assert!(two_sided(m, 0, 0, m) == 0.0);
    }

    #[test]
    fn the_normal_approximation_meets_the_walk_where_it_takes_over() {
        // σ ≈ 25 000: still walked exactly, and close to where the approximation begins.
        let (a, b, c, d) = (1_250_000_000, 1_250_000_000, 1_250_000_000, 1_250_000_000);
        for shift in [0u64, 20_000, 60_000, 120_000] {
            let m = Margins::of(a + shift, b - shift, c - shift, d + shift).unwrap();
            let exact = m.exact(a + shift).expect("σ ≈ 25 000 is walked");
            let normal = m.normal(a + shift);
            assert!(
                (exact - normal).abs() <= 1e-3 * exact + 1e-12,
                "shift {shift}: exact {exact:e}, normal {normal:e}"
            );
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!(close(erfc(0.0), 1.0));
        assert!((erfc(1.0) - 0.157_299_207_050_285).abs() < 1e-7 * 0.16);
        assert!((erfc(3.0) - 2.209_049_699_858_544e-5).abs() < 1.2e-7 * 2.3e-5);
        assert!(close(erfc(-1.0), 2.0 - 0.157_299_207_050_285));
    }
}
