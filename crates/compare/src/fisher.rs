//! Fisher's exact test on a 2×2 table, two-sided (the sum of the probabilities of all tables
//! with the same margins that are no more likely than the observed one). Exact at any count,
//! which matters here: a racy outcome seen 3 times in 200 runs is far below where a
//! chi-square approximation holds.

/// ln(n!) for the hypergeometric probabilities (a sum of logs: n is at most a few thousand
/// runs, and this is not a hot path).
fn ln_factorial(n: u64) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

/// P(table) for rows (a, b) / (c, d) under fixed margins.
fn ln_p(a: u64, b: u64, c: u64, d: u64) -> f64 {
    ln_factorial(a + b) + ln_factorial(c + d) + ln_factorial(a + c) + ln_factorial(b + d)
        - ln_factorial(a)
        - ln_factorial(b)
        - ln_factorial(c)
        - ln_factorial(d)
        - ln_factorial(a + b + c + d)
}

/// Two-sided p-value of Fisher's exact test for the table `[[a, b], [c, d]]`.
pub fn two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (r1, c1, n) = (a + b, a + c, a + b + c + d);
    if n == 0 {
        return 1.0;
    }
    let observed = ln_p(a, b, c, d);
    let lo = c1.saturating_sub(n - r1);
    let hi = r1.min(c1);
    // Tables as likely as the observed one count too; the epsilon absorbs rounding.
    let tol = 1e-7;
    let mut p = 0.0;
    for x in lo..=hi {
        let lp = ln_p(x, r1 - x, c1 - x, n + x - r1 - c1);
        if lp <= observed + tol {
            p += lp.exp();
        }
    }
    p.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.max(1e-12) + 1e-12
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
    fn seen_shifts_are_significant_and_noise_is_not() {
        // 196/200 vs 106/200 (the seed-zero-delay shift between host and a TCG guest).
        assert!(two_sided(196, 4, 106, 94) < 1e-20);
        // 190/200 vs 186/200: noise.
        assert!(two_sided(190, 10, 186, 14) > 0.3);
        // A deterministic outcome flipping in one of 20 runs is not significant on its own.
        assert!(two_sided(20, 0, 19, 1) > 0.9);
    }
}
