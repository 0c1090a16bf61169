//! JUnit XML for CI systems: one `<testcase>` per scenario, the mismatch as `<failure>`.

use std::fmt::Write;

/// One scenario's result, as JUnit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Scenario name.
    pub name: String,
    /// The file it came from (JUnit `classname`).
    pub file: String,
    /// Wall time, seconds.
    pub time_s: f64,
    /// `None`: passed. `Some((message, details))`: failed.
    pub failure: Option<(String, String)>,
    /// `Some(why)`: cut short (Ctrl-C, SIGTERM), or the kernel cannot run it: reported as
    /// skipped, neither pass nor failure.
    pub skipped: Option<String>,
    /// Outcome counts and other notes for `<system-out>`.
    pub output: String,
}

impl Case {
    /// A scenario the kernel could not run (`run`'s and `run --kernel`'s skip line): neither
    /// pass nor failure.
    pub fn skipped(rec: &crate::record::SkippedRecord) -> Case {
        Case {
            name: rec.scenario.clone(),
            file: rec.file.clone(),
            time_s: 0.0,
            failure: None,
            skipped: Some(rec.skipped.clone()),
            output: format!("skipped: {}", rec.skipped),
        }
    }
}

/// Escape text for XML attributes and content (also drops characters XML 1.0 forbids).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// The whole document for a list of cases: one suite named `suite`.
pub fn render(suite: &str, cases: &[Case]) -> String {
    render_suites(suite, &[(suite.to_owned(), cases.to_vec())])
}

/// The whole document with several suites (`run --kernel`: one per kernel).
pub fn render_suites(name: &str, suites: &[(String, Vec<Case>)]) -> String {
    let all = || suites.iter().flat_map(|(_, c)| c);
    let (tests, failures, time) = (
        all().count(),
        all()
            .filter(|c| c.failure.is_some() && c.skipped.is_none())
            .count(),
        all().map(|c| c.time_s).sum::<f64>(),
    );
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" time=\"{3:.3}\">",
        escape(name),
        tests,
        failures,
        time
    );
    for (suite, cases) in suites {
        suite_xml(&mut x, suite, cases);
    }
    x.push_str("</testsuites>\n");
    x
}

fn suite_xml(x: &mut String, suite: &str, cases: &[Case]) {
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let failures = cases
        .iter()
        .filter(|c| c.failure.is_some() && c.skipped.is_none())
        .count();
    let time: f64 = cases.iter().map(|c| c.time_s).sum();
    let _ = writeln!(
        x,
        "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" skipped=\"{4}\" time=\"{3:.3}\">",
        escape(suite),
        cases.len(),
        failures,
        time,
        skipped
    );
    for c in cases {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\">",
            escape(&c.name),
            escape(&c.file),
            c.time_s
        );
        x.push('\n');
        if let Some(why) = &c.skipped {
            let _ = writeln!(x, "      <skipped message=\"{}\"/>", escape(why));
        } else if let Some((msg, details)) = &c.failure {
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"mismatch\">{}</failure>",
                escape(msg),
                escape(details)
            );
        }
        if !c.output.is_empty() {
            let _ = writeln!(x, "      <system-out>{}</system-out>", escape(&c.output));
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_pass_and_failure() {
        let cases = vec![
            Case {
                name: "seed-three-way".into(),
                file: "scenarios/seed/seed-three-way.toml".into(),
                time_s: 0.5,
                failure: None,
                skipped: None,
                output: "three-way/server: 20".into(),
            },
            Case {
                name: "x<y>".into(),
                file: "f".into(),
                time_s: 1.0,
                failure: Some((
                    "run 3: expected reset, got \"four-way\"".into(),
                    "narration & more\u{1}".into(),
                )),
                skipped: None,
                output: String::new(),
            },
            Case {
                name: "cut".into(),
                file: "g".into(),
                time_s: 0.1,
                failure: Some(("no run finished".into(), String::new())),
                skipped: Some("interrupted after 0 of 20 runs".into()),
                output: String::new(),
            },
        ];
        let x = render("tcplab run", &cases);
        assert!(x.contains("tests=\"3\" failures=\"1\""), "{x}");
        assert!(x.contains("skipped=\"1\""), "{x}");
        assert!(
            x.contains("<skipped message=\"interrupted after 0 of 20 runs\"/>"),
            "{x}"
        );
        assert!(!x.contains("<failure message=\"no run finished"), "{x}");
        assert!(x.contains("<testcase name=\"x&lt;y&gt;\""), "{x}");
        assert!(
            x.contains("message=\"run 3: expected reset, got &quot;four-way&quot;\""),
            "{x}"
        );
        assert!(x.contains(">narration &amp; more</failure>"), "{x}");
        assert!(
            x.contains("<system-out>three-way/server: 20</system-out>"),
            "{x}"
        );
    }
}
