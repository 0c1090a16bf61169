//! The report's pages in a real browser and its annotated pcapng in tshark (feature
//! `interop-tests`; `make deps` installs chromium and tshark; a missing tool FAILS).
//!
//! Pages are opened from file:// by headless Chromium with a fresh profile: any console
//! message fails (the pages have no script, so a message is an error: a blocked fetch, a
//! parse error), the DOM Chromium built is checked (one arrow per captured segment, FIN
//! arrows that cross or not, lost segments drawn lost), and a screenshot is saved beside the
//! test's results, under `target/tmp/interop/` (printed).
#![cfg(feature = "interop-tests")]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This test run's results: kept after the test (screenshots are looked at by people).
fn results_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("interop")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("results dir");
    d
}

/// What Chromium made of a page: the serialised DOM and every console message.
struct Opened {
    dom: String,
    console: Vec<String>,
    elapsed: Duration,
}

fn chromium(page: &Path, extra: &[String]) -> Opened {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let start = Instant::now();
    let out = std::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs (make deps installs it)");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Opened {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
        elapsed,
    }
}

/// Open `page`, fail on a console message, save a screenshot beside it; the DOM.
fn open_page(page: &Path) -> Opened {
    let o = chromium(page, &["--dump-dom".to_owned()]);
    assert!(
        o.console.is_empty(),
        "{}: console: {:?}",
        page.display(),
        o.console
    );
    assert!(o.dom.contains("</html>"), "{}: no DOM", page.display());
    eprintln!(
        "{}: {} bytes, opened and rendered by Chromium in {:.2?}",
        page.display(),
        std::fs::metadata(page).map_or(0, |m| m.len()),
        o.elapsed
    );
    let shot = page.with_extension("png");
    let s = chromium(
        page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1440,1800".to_owned(),
        ],
    );
    assert!(s.console.is_empty(), "{:?}", s.console);
    assert!(shot.exists(), "no screenshot {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
    o
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// One drawn arrow: its `<g>` attributes and its line.
#[derive(Debug)]
struct Drawn {
    class: String,
    from: String,
    flags: String,
    fate: String,
    seen: String,
    line: [f64; 4],
}

fn arrows(dom: &str) -> Vec<Drawn> {
    dom.split("<g class=\"arrow ")
        .skip(1)
        .map(|rest| {
            let g = &rest[..rest.find('>').expect("tag end")];
            let g = format!(" class=\"arrow {g}");
            let line_at = rest.find("<line class=\"seg\"").expect("arrow line");
            let l = &rest[line_at..line_at + rest[line_at..].find('>').expect("line end")];
            let n = |k: &str| attr(l, k).and_then(|v| v.parse().ok()).expect("coordinate");
            Drawn {
                class: attr(&g, "class").unwrap_or("").to_owned(),
                from: attr(&g, "data-from").unwrap_or("").to_owned(),
                flags: attr(&g, "data-flags").unwrap_or("").to_owned(),
                fate: attr(&g, "data-fate").unwrap_or("").to_owned(),
                seen: attr(&g, "data-seen").unwrap_or("").to_owned(),
                line: [n("x1"), n("y1"), n("x2"), n("y2")],
            }
        })
        .collect()
}

/// Whether two segments properly intersect.
fn intersect(a: [f64; 4], b: [f64; 4]) -> bool {
    let cross = |o: (f64, f64), p: (f64, f64), q: (f64, f64)| {
        (p.0 - o.0) * (q.1 - o.1) - (p.1 - o.1) * (q.0 - o.0)
    };
    let (a1, a2, b1, b2) = ((a[0], a[1]), (a[2], a[3]), (b[0], b[1]), (b[2], b[3]));
    let d1 = cross(b1, b2, a1);
    let d2 = cross(b1, b2, a2);
    let d3 = cross(a1, a2, b1);
    let d4 = cross(a1, a2, b2);
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

fn packets(pcap: &Path) -> usize {
    let out = tcplab()
        .arg("analyze")
        .arg("--json")
        .arg(pcap)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["connections"][0]["packet_count"].as_u64().unwrap() as usize
}

/// Run one scenario once; its run directory. A run whose programs missed their timing on
/// every try (a busy machine) is not counted and its batch fails for that reason, which says
/// nothing about the page: the batch is run again, into a fresh directory (at most 4 times).
fn run_once(scenario: &str, out: &Path) -> PathBuf {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = out.join(format!("try-{attempt}"));
        let o = tcplab()
            .arg("run")
            .arg(root().join("scenarios").join(scenario))
            .args(["--repeat", "1", "--jobs", "1"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let all_missed = String::from_utf8_lossy(&o.stdout).contains("missed its timing");
        if !o.status.success() && all_missed && attempt < 4 {
            continue;
        }
        assert!(
            o.status.success(),
            "{scenario}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        return glob_run(&out);
    }
}

fn glob_run(out: &Path) -> PathBuf {
    let mut found = Vec::new();
    for scen in std::fs::read_dir(out).unwrap().flatten() {
        for batch in std::fs::read_dir(scen.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let r = batch.path().join("run-0001");
            if r.is_dir() {
                found.push(r);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// The console check itself can fail: a page with a console error is caught.
#[test]
fn interop_console_errors_are_caught() {
    let dir = results_dir("console");
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let o = chromium(&bad, &["--dump-dom".to_owned()]);
    assert_eq!(o.console.len(), 1, "{:?}", o.console);
}

#[test]
fn interop_run_pages_in_chromium() {
    let dir = results_dir("run-pages");
    for (scenario, fins_cross) in [
        ("link/simultaneous.toml", Some(true)),
        ("seed/seed-four-way.toml", Some(false)),
        ("link/lost-fin.toml", None),
    ] {
        let out = dir.join(scenario.replace(['/', '.'], "-"));
        let run = run_once(scenario, &out);
        let client = run.join("capture.pcap");
        let server = run.join("capture-server.pcap");
        // `tcplab report RUN` (kernel states included), and `analyze --html` from the
        // captures alone: both pages draw the same arrows.
        tcplab().arg("report").arg(&run).assert().success();
        let page = run.join("report.html");
        assert!(
            run.join("capture.pcapng").is_file(),
            "the run keeps an annotated capture.pcapng"
        );
        let from_captures = run.join("page.html");
        let mut cmd = tcplab();
        cmd.arg("analyze")
            .arg("--html")
            .arg(&from_captures)
            .arg(&client);
        if server.exists() {
            cmd.arg(&server);
        }
        cmd.assert().success();
        let o = open_page(&page);
        let o2 = open_page(&from_captures);
        assert_eq!(arrows(&o2.dom).len(), arrows(&o.dom).len(), "{scenario}");
        assert!(
            o.dom.contains("data-source=\"kernel\""),
            "{scenario}: no kernel states drawn"
        );
        // The batch page and the tree's index open too, and link the run's page.
        let batch = run.parent().unwrap();
        tcplab().arg("report").arg(batch).assert().success();
        let b = open_page(&batch.join("report.html"));
        assert!(
            b.dom.contains("run-0001/report.html"),
            "{scenario}: batch page links no run"
        );
        tcplab().arg("report").arg(&out).assert().success();
        let t = open_page(&out.join("report.html"));
        assert!(
            t.dom.contains("/report.html"),
            "{scenario}: index links no batch"
        );
        let drawn = arrows(&o.dom);
        let seen_by = |who: &str| {
            drawn
                .iter()
                .filter(|a| a.seen == who || a.seen == "both" || a.seen == "single")
                .count()
        };
        assert_eq!(
            seen_by("client"),
            packets(&client),
            "{scenario}: one arrow per segment of capture.pcap"
        );
        if server.exists() {
            assert_eq!(
                seen_by("server"),
                packets(&server),
                "{scenario}: one arrow per segment of capture-server.pcap"
            );
        }
        let fins: Vec<&Drawn> = drawn
            .iter()
            .filter(|a| {
                a.flags.contains('F') && a.fate == "delivered" && !a.class.contains("retransmit")
            })
            .collect();
        match fins_cross {
            Some(cross) => {
                assert_eq!(fins.len(), 2, "{scenario}: {fins:?}");
                assert_ne!(fins[0].from, fins[1].from);
                assert_eq!(
                    intersect(fins[0].line, fins[1].line),
                    cross,
                    "{scenario}: {fins:?}"
                );
            }
            None => {
                let lost: Vec<&Drawn> = drawn.iter().filter(|a| a.fate == "lost").collect();
                assert!(
                    !lost.is_empty(),
                    "{scenario}: nothing drawn lost: {drawn:?}"
                );
                assert!(
                    lost.iter().any(|a| a.flags.contains('F')),
                    "{scenario}: the FIN is not drawn lost: {lost:?}"
                );
                assert!(o.dom.contains("class=\"cross\""), "{scenario}: no cross");
            }
        }
    }
}

#[test]
fn interop_tshark_reads_the_annotated_comments() {
    let dir = results_dir("tshark");
    let live = root().join("crates/trace/tests/data/live");
    for entry in std::fs::read_dir(&live).unwrap().flatten() {
        let input = entry.path();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.join(format!("{name}ng"));
        tcplab()
            .arg("analyze")
            .arg("--annotate")
            .arg(&out)
            .arg(&input)
            .assert()
            .success();
        // The narration line under each numbered packet line of the listing.
        let listing = tcplab()
            .arg("analyze")
            .arg("--color")
            .arg("never")
            .arg(&input)
            .output()
            .unwrap();
        let listing = String::from_utf8(listing.stdout).unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        let mut expected = std::collections::BTreeMap::new();
        for w in lines.windows(2) {
            let first = w[0].split_whitespace().next().unwrap_or("");
            if let Ok(n) = first.parse::<u64>() {
                if w[0].contains(" > ") {
                    expected.insert(n, w[1].trim().to_owned());
                }
            }
        }
        assert!(!expected.is_empty(), "{name}: no listing");
        let t = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&out)
            .args([
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "frame.comment",
                "-e",
                "frame.packet_flags_direction",
            ])
            .output()
            .expect("tshark runs (make deps installs it)");
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let text = String::from_utf8(t.stdout).unwrap();
        let mut checked = 0;
        for line in text.lines() {
            let mut f = line.split('\t');
            let n: u64 = f.next().unwrap().parse().unwrap();
            let comment = f.next().unwrap_or("");
            let dir_flags = f.next().unwrap_or("");
            if let Some(want) = expected.get(&n) {
                assert!(
                    comment.contains(want.as_str()),
                    "{name} frame {n}: tshark shows {comment:?}, want {want:?}"
                );
                assert!(
                    dir_flags == "0x00000001" || dir_flags == "0x00000002",
                    "{name} frame {n}: direction {dir_flags:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, expected.len(), "{name}:\n{text}");
        // The section header's comment holds the verdicts.
        let c = std::process::Command::new("capinfos").arg(&out).output();
        if let Ok(c) = c {
            assert!(
                String::from_utf8_lossy(&c.stdout).contains("connection 1:"),
                "{name}"
            );
        }
    }
}

/// A 10,000-run batch: the page stays a few MB, pages its table, and Chromium renders it
/// (the time is printed, not judged: this is no benchmark).
#[test]
fn interop_ten_thousand_run_batch_page() {
    let dir = results_dir("batch-10k");
    let o = tcplab()
        .arg("run")
        .arg(root().join("scenarios/seed/seed-zero-delay.toml"))
        .args(["--repeat", "10000", "--pooled"])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success() || o.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let batch = std::fs::read_dir(dir.join("seed-zero-delay"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let start = Instant::now();
    tcplab().arg("report").arg(&batch).assert().success();
    eprintln!("tcplab report of 10,000 runs: {:.2?}", start.elapsed());
    let page = batch.join("report.html");
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < 8 << 20, "batch page is {size} bytes");
    let opened = open_page(&page);
    assert_eq!(opened.dom.matches("<section class=\"page").count(), 20);
    assert_eq!(
        opened.dom.matches("<tr><td>").count(),
        10_000 + opened.dom.matches("<tr><td><code>").count()
    );
}

/// Every relative link in a DOM, resolved against the page's directory (fragments dropped,
/// `%XX` decoded); fails on one that names no file.
fn assert_links_resolve(page: &Path, dom: &str) -> usize {
    let base = page.parent().expect("page dir");
    let mut n = 0;
    for h in dom.split("href=\"").skip(1) {
        let h = &h[..h.find('"').expect("href ends")];
        if h.starts_with('#') {
            continue;
        }
        assert!(
            !h.contains("://"),
            "{}: a link out of the results: {h}",
            page.display()
        );
        let h = h.replace("&amp;", "&");
        let mut bytes = Vec::new();
        let mut it = h.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex = [it.next().unwrap_or(b'0'), it.next().unwrap_or(b'0')];
                let hex = std::str::from_utf8(&hex).expect("hex");
                bytes.push(u8::from_str_radix(hex, 16).expect("%XX"));
            } else {
                bytes.push(b);
            }
        }
        let rel = String::from_utf8(bytes).expect("utf-8 link");
        let target = base.join(rel.split('#').next().unwrap_or(""));
        assert!(
            target.is_file(),
            "{}: link {h} resolves to nothing ({})",
            page.display(),
            target.display()
        );
        n += 1;
    }
    n
}

/// The part of a DOM from `start` to the next `end`.
fn section<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let s = &dom[dom.find(start).unwrap_or_else(|| panic!("no {start}"))..];
    &s[..s.find(end).unwrap_or(s.len())]
}

/// Issue 17: the sweep page, the kernel matrix page and the index of a results tree holding
/// both (and a batch), from live runs, in Chromium: no console message, every link names a
/// file, one linked point per grid point, one row per scenario and one column per kernel.
#[test]
fn interop_sweep_matrix_and_index_pages_in_chromium() {
    let dir = results_dir("sweep-matrix");
    // A sweep across the delayed-ACK boundary of seed-three-way, 4 points.
    let sweep = dir.join("sweep");
    let o = tcplab()
        .arg("sweep")
        .arg(root().join("scenarios/seed/seed-three-way.toml"))
        .args(["--vary", "server.close_delay_ms=0,20,60,80"])
        .args(["--repeat", "3", "--jobs", "1", "--report"])
        .arg("--out")
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = sweep.join("report.html");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("report: {}", page.display())),
        "sweep --report says where the page is"
    );
    let s = open_page(&page);
    let outcomes = section(&s.dom, "data-chart=\"outcomes.svg\"", "</figure>");
    assert_eq!(
        outcomes.matches("<a class=\"point\"").count(),
        4,
        "one linked bar per grid point"
    );
    assert_eq!(s.dom.matches("<tr data-point=").count(), 4);
    assert!(s.dom.contains("class=\"boundary\""));
    assert!(assert_links_resolve(&page, &s.dom) >= 8);
    // Each point kept runs (--pcaps sample): its page lists them and links their diagrams.
    let point = sweep.join("runs/server.close_delay_ms=0/report.html");
    let p = open_page(&point);
    assert!(
        p.dom.contains("run-0001/report.html"),
        "point page links no run"
    );
    assert_links_resolve(&point, &p.dom);

    // A kernel matrix without QEMU: the host twice.
    let kern = dir.join("kern");
    let o = tcplab()
        .arg("run")
        .args(["--kernel", "host", "--kernel", "host"])
        .arg(root().join("scenarios/seed"))
        .args(["--repeat", "4", "--report"])
        .arg("--out")
        .arg(&kern)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = kern.join("report.html");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("report: {}", page.display())),
        "run --kernel --report says where the page is"
    );
    let m = open_page(&page);
    let seeds = std::fs::read_dir(root().join("scenarios/seed"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(m.dom.matches("<tr data-scenario=").count(), seeds);
    assert_eq!(m.dom.matches("<th class=\"column\"").count(), 2);
    assert_eq!(
        m.dom.matches("<a class=\"batch\"").count(),
        2 * seeds,
        "every cell links its batch"
    );
    assert!(assert_links_resolve(&page, &m.dom) >= 2 * seeds);
    let after = "<a class=\"batch\" href=\"";
    let href = &m.dom[m.dom.find(after).expect("a batch link") + after.len()..];
    let batch = kern.join(&href[..href.find('"').expect("href ends")]);
    let b = open_page(&batch);
    assert!(b.dom.contains("run-0001/report.html"));

    // A plain batch beside them, and the index of the whole tree.
    let o = tcplab()
        .arg("run")
        .arg(root().join("scenarios/seed/seed-four-way.toml"))
        .args(["--repeat", "1"])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tcplab().arg("report").arg(&dir).assert().success();
    let index = dir.join("report.html");
    let i = open_page(&index);
    assert!(i
        .dom
        .contains("<a class=\"matrix\" href=\"kern/report.html\">"));
    assert!(i
        .dom
        .contains("<a class=\"sweep\" href=\"sweep/report.html\">"));
    assert_eq!(i.dom.matches("<a class=\"batch\"").count(), 1);
    assert_links_resolve(&index, &i.dom);
}
