//! KTAP (TAP version 13 with the kernel's conventions) for kernel CI: netdev's bots,
//! KernelCI and LKFT read kselftest output, not JUnit.
//!
//! A document is `TAP version 13`, the plan `1..N`, then per test its diagnostic lines
//! (`# …`) followed by `ok N - name` / `not ok N - name` (`# SKIP reason` for a skipped one),
//! and `# Totals: pass:… fail:… xfail:0 xpass:0 skip:… error:0` at the end, as kselftest.h
//! prints it. The header, each test and the totals render separately, so a caller can stream
//! them as the tests finish (the kselftest runner prefixes and forwards output unbuffered).

use std::fmt::Write;

use crate::junit;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KtapResult {
    /// `ok`.
    Pass,
    /// `not ok`.
    Fail,
    /// `ok … # SKIP reason`: neither a pass nor a failure (the kernel lacks what the test
    /// needs, or the run was interrupted).
    Skip(String),
}

/// One test line and the diagnostics printed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KtapTest {
    /// The description after `ok N - ` (`#` and line breaks are replaced: they would end it).
    pub name: String,
    /// How it ended.
    pub result: KtapResult,
    /// Diagnostic lines (each printed as `# line`; a multi-line entry becomes several lines).
    pub diagnostics: Vec<String>,
}

/// The document's first two lines: the version and the plan.
pub fn header(planned: usize) -> String {
    format!("TAP version 13\n1..{planned}\n")
}

/// The document of an environment that cannot run any test (kselftest's "skip all"):
/// `1..0 # SKIP reason`.
pub fn skip_all(reason: &str) -> String {
    format!("TAP version 13\n1..0 # SKIP {}\n", one_line(reason))
}

/// One test (diagnostics, then its result line), numbered `number` (from 1).
pub fn test(number: usize, t: &KtapTest) -> String {
    let mut s = String::new();
    for d in &t.diagnostics {
        for line in d.lines() {
            let _ = writeln!(s, "# {}", line.trim_end());
        }
    }
    let name = one_line(&t.name).replace('#', "_");
    let _ = match &t.result {
        KtapResult::Pass => writeln!(s, "ok {number} - {name}"),
        KtapResult::Fail => writeln!(s, "not ok {number} - {name}"),
        KtapResult::Skip(why) => writeln!(s, "ok {number} - {name} # SKIP {}", one_line(why)),
    };
    s
}

/// The closing `# Totals:` line, in kselftest.h's format.
pub fn totals(tests: &[KtapTest]) -> String {
    let count = |f: fn(&KtapResult) -> bool| tests.iter().filter(|t| f(&t.result)).count();
    format!(
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0\n",
        count(|r| *r == KtapResult::Pass),
        count(|r| *r == KtapResult::Fail),
        count(|r| matches!(r, KtapResult::Skip(_)))
    )
}

/// A whole document.
pub fn render(tests: &[KtapTest]) -> String {
    let mut s = header(tests.len());
    for (i, t) in tests.iter().enumerate() {
        s.push_str(&test(i + 1, t));
    }
    s.push_str(&totals(tests));
    s
}

/// Collapse line breaks (a result line is one line).
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

impl KtapTest {
    /// The KTAP view of a scenario's JUnit case: the same verdict; the counts, the mismatch
    /// and where the results are as diagnostics. `suffix` names the place (` [6.1.0-…]` for
    /// `run --kernel`), empty for a plain run.
    pub fn from_case(c: &junit::Case, suffix: &str) -> KtapTest {
        let name = format!("{}{suffix}", c.name);
        let mut diagnostics = Vec::new();
        let mut lines = c.output.lines();
        if let Some(counts) = lines.next().filter(|l| !l.is_empty()) {
            diagnostics.push(format!("{name}: {counts} ({:.1} s)", c.time_s));
        }
        let result = if let Some(why) = &c.skipped {
            KtapResult::Skip(why.clone())
        } else if let Some((mismatch, _)) = &c.failure {
            diagnostics.push(format!("mismatch: {mismatch}"));
            KtapResult::Fail
        } else {
            KtapResult::Pass
        };
        diagnostics.extend(lines.filter(|l| !l.is_empty()).map(str::to_owned));
        KtapTest {
            name,
            result,
            diagnostics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, failure: Option<&str>, skipped: Option<&str>) -> junit::Case {
        junit::Case {
            name: name.into(),
            file: format!("scenarios/{name}.toml"),
            time_s: 0.25,
            failure: failure.map(|m| (m.into(), "narration".into())),
            skipped: skipped.map(Into::into),
            output: "three-way/server ×20\nresults: results/x/20261204T000000Z".into(),
        }
    }

    #[test]
    fn a_document_has_plan_results_diagnostics_and_totals() {
        let tests = [
            KtapTest::from_case(&case("seed-three-way", None, None), ""),
            KtapTest::from_case(
                &case(
                    "seed-four-way",
                    Some("run 3: expected four-way, got three-way"),
                    None,
                ),
                "",
            ),
            KtapTest::from_case(
                &case("lost-fin", None, Some("kernel has no TUN\n(CONFIG_TUN)")),
                " [6.1.0-57-cloud-amd64]",
            ),
        ];
        let doc = render(&tests);
        let expected = "TAP version 13\n\
            1..3\n\
            # seed-three-way: three-way/server ×20 (0.2 s)\n\
            # results: results/x/20261204T000000Z\n\
            ok 1 - seed-three-way\n\
            # seed-four-way: three-way/server ×20 (0.2 s)\n\
            # mismatch: run 3: expected four-way, got three-way\n\
            # results: results/x/20261204T000000Z\n\
            not ok 2 - seed-four-way\n\
            # lost-fin [6.1.0-57-cloud-amd64]: three-way/server ×20 (0.2 s)\n\
            # results: results/x/20261204T000000Z\n\
            ok 3 - lost-fin [6.1.0-57-cloud-amd64] # SKIP kernel has no TUN / (CONFIG_TUN)\n\
            # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n";
        assert_eq!(doc, expected);
    }

    #[test]
    fn names_cannot_open_a_directive_or_break_the_line() {
        let t = KtapTest {
            name: "a # SKIP b\nc".into(),
            result: KtapResult::Pass,
            diagnostics: vec!["two\nlines".into()],
        };
        assert_eq!(test(7, &t), "# two\n# lines\nok 7 - a _ SKIP b / c\n");
        assert_eq!(
            skip_all("no QEMU:\nqemu-system-x86_64 not found"),
            "TAP version 13\n1..0 # SKIP no QEMU: / qemu-system-x86_64 not found\n"
        );
    }
}
