//! A batch's page (its runs' table and the numbers over them) and each run's page in it.

use crate::annotate::annotate;
use crate::diagram::{InjectedMark, KernelTimes};
use crate::error::{io, ReportError};
use crate::html::{esc, page};
use crate::layout::{
    run_dirs, ANALYSIS_FILE, PAGE_FILE, PCAPNG_FILE, PCAP_FILE, RUN_PAGES_MAX, SERVER_PCAP_FILE,
    SUMMARY_FILE,
};
use crate::run::{run_page, Capture, RunFacts};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;
use tcplab_trace::render::human::duration;
use tcplab_trace::render::Lang;
use tcplab_trace::{Analysis, Side, TcpState};

/// Rows per page of a batch's run table.
const ROWS_PER_PAGE: usize = 500;

fn analyze_file(path: &Path) -> Result<Analysis, ReportError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    tcplab_trace::analyze(std::io::BufReader::new(f), &name).map_err(|e| ReportError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// The part of a run's analysis.json the page needs: the kernel's states with their times.
#[derive(Debug, Deserialize)]
struct AnalysisFile {
    kernel: Option<KernelFile>,
    /// The link's forged/replayed segments (`[[link.inject]]` runs only).
    #[serde(default)]
    injected: Vec<InjectedFile>,
}

#[derive(Debug, Deserialize)]
struct InjectedFile {
    to: String,
    flags: String,
    seq: u32,
    ack: u32,
    len: u32,
}

/// The segments the link injected in a run, as the diagram marks them.
fn injected_marks(run: &Path) -> Vec<InjectedMark> {
    let Ok(text) = std::fs::read_to_string(run.join(ANALYSIS_FILE)) else {
        return Vec::new();
    };
    let Ok(a) = serde_json::from_str::<AnalysisFile>(&text) else {
        return Vec::new();
    };
    a.injected
        .iter()
        .map(|i| InjectedMark {
            // Sent to one end, it claims to come from the other.
            from: if i.to == "client" {
                Side::Server
            } else {
                Side::Client
            },
            seq: i.seq,
            ack: i.ack,
            // packetdrill's letters, as the record spells them.
            flags: i.flags.chars().fold(0u8, |f, c| {
                f | match c {
                    'F' => 0x01,
                    'S' => 0x02,
                    'R' => 0x04,
                    'P' => 0x08,
                    '.' => 0x10,
                    _ => 0,
                }
            }),
            len: i.len,
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct KernelFile {
    #[serde(default)]
    client: Vec<KernelStateFile>,
    #[serde(default)]
    server: Vec<KernelStateFile>,
    recorded_by: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KernelStateFile {
    state: String,
    ts_ns: i64,
}

fn kernel_times(run: &Path) -> (Option<KernelTimes>, Option<String>) {
    let Ok(text) = std::fs::read_to_string(run.join(ANALYSIS_FILE)) else {
        return (None, None);
    };
    let Ok(a) = serde_json::from_str::<AnalysisFile>(&text) else {
        return (None, None);
    };
    let Some(k) = a.kernel else {
        return (None, None);
    };
    let conv = |v: &[KernelStateFile]| {
        v.iter()
            .filter_map(|s| TcpState::from_name(&s.state).map(|st| (s.ts_ns, st)))
            .collect::<Vec<_>>()
    };
    let times = KernelTimes {
        client: conv(&k.client),
        server: conv(&k.server),
    };
    (Some(times), k.recorded_by)
}

/// One run as the batch table shows it.
#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    name: String,
    pub(crate) outcome: String,
    server_outcome: Option<String>,
    fin_ack_delay_ns: Option<i64>,
    close_ns: Option<i64>,
    packets: u64,
    page: bool,
}

fn outcome(a: &Analysis) -> String {
    match a.connections.as_slice() {
        [c] => match c.teardown.active_closer {
            Some(cl) => format!("{}/{}", c.teardown.kind.as_str(), cl.as_str()),
            None => c.teardown.kind.as_str().to_owned(),
        },
        [] => "no connection".to_owned(),
        many => format!("{} connections", many.len()),
    }
}

/// Write `run/report.html` (and `run/capture.pcapng`); the run's row.
pub(crate) fn run_report(run: &Path, lang: Lang, write_page: bool) -> Result<RunRow, ReportError> {
    let client_path = run.join(PCAP_FILE);
    let server_path = run.join(SERVER_PCAP_FILE);
    let client = analyze_file(&client_path)?;
    let server = if server_path.is_file() {
        Some(analyze_file(&server_path)?)
    } else {
        None
    };
    let name = run
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let first = client.connections.first();
    let row = RunRow {
        name: name.clone(),
        outcome: outcome(&client),
        server_outcome: server.as_ref().map(outcome),
        fin_ack_delay_ns: first.and_then(|c| c.teardown.fin_ack_delay_ns),
        close_ns: first.and_then(|c| c.teardown.close_duration_ns),
        packets: client.file.packets,
        page: write_page,
    };
    if !write_page {
        return Ok(row);
    }
    let (kernel, recorded_by) = kernel_times(run);
    let injected = injected_marks(run);
    let mut facts = RunFacts {
        title: format!("tcplab: {}", run.display()),
        kernel,
        same_clock: true,
        injected,
        ..Default::default()
    };
    if !facts.injected.is_empty() {
        facts.facts.push(format!(
            "{} segment(s) injected by the link (forged or replayed; drawn ◆ dash-dot)",
            facts.injected.len()
        ));
    }
    facts.facts.push(format!("outcome: {}", row.outcome));
    if let Some(s) = &row.server_outcome {
        facts.facts.push(format!("the server end's capture: {s}"));
        if *s != row.outcome {
            facts
                .facts
                .push("FLAG: the two ends' captures disagree".to_owned());
        }
    }
    if let Some(r) = recorded_by {
        facts.facts.push(format!("kernel states (ᵏ): {r}"));
    }
    if let Some(d) = row.fin_ack_delay_ns {
        facts
            .facts
            .push(format!("FIN → ACK delay: {}", duration(d, lang)));
    }
    facts.facts.push(format!(
        "{PCAPNG_FILE}: this capture with each packet's narration as a comment (open it in Wireshark)"
    ));
    let mut caps = vec![Capture {
        analysis: &client,
        href: PCAP_FILE,
    }];
    if let Some(s) = &server {
        caps.push(Capture {
            analysis: s,
            href: SERVER_PCAP_FILE,
        });
    }
    let html = run_page(&caps, &facts, lang);
    let p = run.join(PAGE_FILE);
    std::fs::write(&p, html).map_err(io(&p))?;
    let mut buf = Vec::new();
    if annotate(&client_path, &client, lang, &mut buf).is_ok() {
        let p = run.join(PCAPNG_FILE);
        std::fs::write(&p, buf).map_err(io(&p))?;
    }
    Ok(row)
}

/// What a batch directory is part of: a batch of `tcplab run` (its summary.json is read),
/// or one point of a sweep (its runs are the point's kept samples; the point's counts come
/// from the sweep's point file).
#[derive(Debug, Clone, Copy)]
pub(crate) enum BatchOf<'a> {
    /// `tcplab run`'s batch.
    Run,
    /// A sweep's point.
    SweepPoint(&'a SweepPoint),
}

/// A sweep point as its batch page shows it.
#[derive(Debug, Clone)]
pub(crate) struct SweepPoint {
    /// `server.close_delay_ms=40 ms`.
    pub label: String,
    /// Every run of the point (not only the kept ones): outcome → count.
    pub counts: Vec<(String, u64)>,
    /// The sweep's page, relative to the batch directory.
    pub sweep_page: String,
}

pub(crate) fn batch_report(
    dir: &Path,
    lang: Lang,
    of: BatchOf<'_>,
) -> Result<(Vec<RunRow>, String), ReportError> {
    let runs = run_dirs(dir);
    let mut rows = Vec::with_capacity(runs.len());
    let small = runs.len() <= RUN_PAGES_MAX;
    for (i, r) in runs.iter().enumerate() {
        // Every run of a small batch; of a large one the first runs (and below, any run
        // whose two ends disagree).
        let mut row = run_report(r, lang, small || i < RUN_PAGES_MAX)?;
        if !row.page
            && row
                .server_outcome
                .as_ref()
                .is_some_and(|s| *s != row.outcome)
        {
            row = run_report(r, lang, true)?;
        }
        rows.push(row);
    }
    // The batch's record (summary.json, through tcplab_record's typed reader): the
    // expectation, the verdict and the programs' timing. A killed batch has none.
    let summary_path = dir.join(SUMMARY_FILE);
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|t| tcplab_record::parse::<tcplab_record::Summary>(&summary_path, &t).ok());
    let html = batch_page(dir, &rows, summary.as_ref().map(|s| &s.batch), of, lang);
    let p = dir.join(PAGE_FILE);
    std::fs::write(&p, &html).map_err(io(&p))?;
    Ok((rows, html))
}

fn quantiles(mut v: Vec<i64>, lang: Lang) -> String {
    if v.is_empty() {
        return "–".to_owned();
    }
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "min {} · p50 {} · p99 {} · max {}",
        duration(v[0], lang),
        duration(q(0.5), lang),
        duration(q(0.99), lang),
        duration(v[v.len() - 1], lang)
    )
}

fn ms_quantiles(q: Option<&tcplab_record::Quantiles>) -> String {
    let Some(q) = q else { return "–".to_owned() };
    let f = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3} ms"));
    format!(
        "min {} · p50 {} · p99 {} · max {} ({} runs)",
        f(q.min),
        f(q.p50),
        f(q.p99),
        f(q.max),
        q.n
    )
}

fn batch_page(
    dir: &Path,
    rows: &[RunRow],
    record: Option<&tcplab_record::BatchRecord>,
    of: BatchOf<'_>,
    lang: Lang,
) -> String {
    let mut b = String::new();
    if let BatchOf::SweepPoint(p) = of {
        let _ = write!(
            b,
            "<p><a href=\"{}\">← the sweep</a></p><h1>tcplab sweep point: {}</h1>",
            esc(&p.sweep_page),
            esc(&p.label)
        );
        let runs: u64 = p.counts.iter().map(|c| c.1).sum();
        b.push_str("<h2>outcomes of all the point's runs</h2>");
        b.push_str(&crate::parts::distribution(&p.counts, runs));
        let _ = write!(
            b,
            "<p class=\"note\">The sweep ran this point {runs} times; below are the runs whose files it kept (with <code>--pcaps sample</code>, the default, one run of each outcome).</p>"
        );
    } else {
        let _ = write!(
            b,
            "<h1>tcplab batch: {}</h1>",
            esc(&dir.display().to_string())
        );
    }
    match record {
        None if matches!(of, BatchOf::SweepPoint(_)) => {}
        Some(r) => {
            let _ = write!(
                b,
                "<p class=\"verdict {}\">{}: {}</p>",
                if r.passed { "pass" } else { "fail" },
                esc(&r.scenario),
                if r.cancelled {
                    "CANCELLED"
                } else if r.passed {
                    "PASS"
                } else if r.inconclusive {
                    "INCONCLUSIVE"
                } else {
                    "FAIL"
                }
            );
            let expect = serde_json::to_string(&r.expect).unwrap_or_default();
            let _ = write!(b, "<p>expectation: <code>{}</code> (scenario <code>{}</code>)</p>", esc(&expect), esc(&r.file));
            match &r.mismatch {
                Some(m) if r.inconclusive => {
                    let _ = write!(b, "<p class=\"fail\">inconclusive, not a verdict on the kernel: {}</p>", esc(m));
                }
                Some(m) => {
                    let _ = write!(b, "<p class=\"fail\">why it failed: {}</p>", esc(m));
                }
                None if r.passed => {
                    let _ = write!(b, "<p class=\"pass\">every counted run met the expectation ({} runs, {} drops, {} errors; {} timing-miss runs not counted)</p>", r.runs, r.drops, r.errors, r.timing_miss_runs);
                }
                None => {}
            }
            if let Some(t) = &r.timing {
                let _ = write!(
                    b,
                    "<h3>the programs' timing (summary.json)</h3><ul><li>server close delay: {}</li><li>client close delay: {}</li><li>FIN → ACK: {}</li><li>server ran late: {}</li><li>client ran late: {}</li></ul>",
                    esc(&ms_quantiles(t.server_close_delay_ms.as_ref())),
                    esc(&ms_quantiles(t.client_close_delay_ms.as_ref())),
                    esc(&ms_quantiles(t.fin_ack_delay_ms.as_ref())),
                    esc(&ms_quantiles(t.server_wake_late_ms.as_ref())),
                    esc(&ms_quantiles(t.client_wake_late_ms.as_ref()))
                );
            }
        }
        None => b.push_str("<p class=\"warn\">no summary.json: the batch did not finish (killed, or still running); the runs below are what it left</p>"),
    }
    let _ = write!(
        b,
        "<p>{} kept, each classified from its own capture.</p>",
        match rows.len() {
            1 => "1 run".to_owned(),
            n => format!("{n} runs"),
        }
    );
    // Outcome distribution.
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rows {
        *counts.entry(r.outcome.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    b.push_str(if matches!(of, BatchOf::SweepPoint(_)) {
        "<h2>outcomes of the kept runs</h2><table class=\"dist\"><tr><th>outcome</th><th>runs</th><th>share</th><th></th></tr>"
    } else {
        "<h2>outcomes</h2><table class=\"dist\"><tr><th>outcome</th><th>runs</th><th>share</th><th></th></tr>"
    });
    for (o, n) in &counts {
        let share = *n as f64 / rows.len().max(1) as f64;
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td class=\"num\">{n}</td><td class=\"num\">{:.1}%</td><td><span class=\"bar\" style=\"width:{:.0}px\"></span></td></tr>",
            esc(o),
            share * 100.0,
            share * 400.0
        );
    }
    b.push_str("</table>");
    let disagree = rows
        .iter()
        .filter(|r| r.server_outcome.as_ref().is_some_and(|s| *s != r.outcome))
        .count();
    if disagree > 0 {
        let _ = write!(
            b,
            "<p class=\"warn\">{disagree} runs whose two ends' captures disagree</p>"
        );
    }
    b.push_str("<h2>timing</h2><ul>");
    let _ = write!(
        b,
        "<li>FIN → separate ACK delay: {}</li><li>close duration (first FIN to last ACK): {}</li></ul>",
        esc(&quantiles(rows.iter().filter_map(|r| r.fin_ack_delay_ns).collect(), lang)),
        esc(&quantiles(rows.iter().filter_map(|r| r.close_ns).collect(), lang))
    );
    // The runs, paged without script: each page a section shown when its anchor is the target
    // (the first when none is), all of them when printed.
    b.push_str("<h2>runs</h2>");
    let pages: Vec<&[RunRow]> = rows.chunks(ROWS_PER_PAGE).collect();
    if pages.len() > 1 {
        b.push_str("<nav class=\"pages\">pages: ");
        for i in 0..pages.len() {
            let _ = write!(b, "<a href=\"#p{n}\">{n}</a>", n = i + 1);
        }
        b.push_str("</nav>");
    }
    if rows.len() > RUN_PAGES_MAX {
        let _ = write!(
            b,
            "<p class=\"note\">Diagrams are drawn for the first {RUN_PAGES_MAX} runs and for any run whose two ends disagree; every run links to its capture.</p>"
        );
    }
    // Later pages first in the document, so that `:target ~ .first` can hide the first.
    let order: Vec<usize> = (1..pages.len()).chain(std::iter::once(0)).collect();
    for i in order {
        let _ = write!(
            b,
            "<section class=\"page{}\" id=\"p{}\"><table><tr><th>run</th><th>outcome</th><th>server end</th><th>FIN→ACK</th><th>close</th><th>packets</th><th>capture</th></tr>",
            if i == 0 { " first" } else { "" },
            i + 1
        );
        for r in pages[i] {
            let name = esc(&r.name);
            let link = if r.page {
                format!("<a href=\"{name}/{PAGE_FILE}\">{name}</a>")
            } else {
                name.clone()
            };
            let _ = write!(
                b,
                "<tr><td>{link}</td><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><a href=\"{name}/{PCAP_FILE}\">pcap</a></td></tr>",
                esc(&r.outcome),
                esc(r.server_outcome.as_deref().unwrap_or("")),
                r.fin_ack_delay_ns.map(|d| duration(d, lang)).unwrap_or_default(),
                r.close_ns.map(|d| duration(d, lang)).unwrap_or_default(),
                r.packets
            );
        }
        b.push_str("</table></section>");
    }
    page(&format!("tcplab batch {}", dir.display()), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> RunRow {
        RunRow {
            name: name.to_owned(),
            outcome: "four-way/client".to_owned(),
            server_outcome: None,
            fin_ack_delay_ns: None,
            close_ns: None,
            packets: 7,
            page: false,
        }
    }

    /// The batch page counts its kept runs in words that agree with the number.
    #[test]
    fn batch_page_says_one_run_or_n_runs() {
        let dir = Path::new("b");
        let one = batch_page(dir, &[row("run-0001")], None, BatchOf::Run, Lang::En);
        assert!(one.contains("<p>1 run kept, "), "{one}");
        let two = batch_page(
            dir,
            &[row("run-0001"), row("run-0002")],
            None,
            BatchOf::Run,
            Lang::En,
        );
        assert!(two.contains("<p>2 runs kept, "), "{two}");
    }
}
