//! The sweep, kernel-matrix and index pages from result files made here (no root, no
//! browser; `crates/cli/tests/interop.rs` opens pages of live runs in Chromium): what they
//! show, that every link resolves to a file, and determinism (same results, same bytes).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tcplab_report::dir::write_report;
use tcplab_sweep::{engine, Outcome, Shard, Sweep, Vary};
use tcplab_trace::render::Lang;
use tcplab_trace::{Closer, TeardownKind};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Every `href="…"` of a page that is not a fragment, percent-decoded, resolved against the
/// page's directory.
fn links(page: &Path) -> Vec<PathBuf> {
    let html = std::fs::read_to_string(page).unwrap();
    let base = page.parent().unwrap();
    html.split("href=\"")
        .skip(1)
        .map(|r| &r[..r.find('"').unwrap()])
        .filter(|h| !h.starts_with('#'))
        .map(|h| {
            let h = h.replace("&amp;", "&");
            let mut bytes = Vec::new();
            let mut it = h.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let hex: String = [it.next().unwrap(), it.next().unwrap()]
                        .iter()
                        .map(|&c| c as char)
                        .collect();
                    bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            let path = String::from_utf8(bytes).unwrap();
            base.join(path.split('#').next().unwrap())
        })
        .collect()
}

fn assert_links_resolve(page: &Path) {
    let l = links(page);
    assert!(!l.is_empty(), "{}: no links", page.display());
    for p in l {
        assert!(
            p.is_file(),
            "{}: link to {} resolves to nothing",
            page.display(),
            p.display()
        );
    }
}

/// No script, no stylesheet or image from elsewhere: the only URLs are XML namespaces.
fn assert_fetches_nothing(html: &str) {
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains(" src="));
    let outside = html
        .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace("xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "");
    assert!(!outside.contains("http://") && !outside.contains("https://"));
}

// ---------------------------------------------------------------------------------------
// Sweep

fn run_outcome(x: f64, i: u32) -> Outcome {
    if x < 30.0 || (x < 50.0 && i % 2 == 0) {
        Outcome::teardown(TeardownKind::ThreeWay, Some(Closer::Server))
    } else {
        Outcome {
            fin_ack_delay_ns: Some(40_000_000 + i64::from(i) * 1_000),
            ..Outcome::teardown(TeardownKind::FourWay, Some(Closer::Client))
        }
    }
}

/// A sweep of 5 points × 4 runs, as the engine writes it; the first point keeps a run
/// (a real capture) under runs/<point>/run-0001/.
fn make_sweep(dir: &Path) {
    let vary = Vary::parse("server.close_delay_ms=0,20,40,60,80").unwrap();
    let sweep = Sweep::new("seed-three-way", b"scenario", 4, vec![vary], Shard::ALL).unwrap();
    let mut runner = |p: &tcplab_sweep::Point| -> Result<Vec<Outcome>, engine::RunnerError> {
        let x = p.values[0].1.num.unwrap();
        Ok((0..4).map(|i| run_outcome(x, i)).collect())
    };
    engine::execute(
        &sweep,
        dir,
        Shard::ALL,
        &AtomicBool::new(false),
        &mut runner,
        &mut |_| {},
    )
    .unwrap();
    engine::finalize(dir, &sweep.manifest).unwrap();
    let run = dir.join("runs/server.close_delay_ms=0/run-0001");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(
        data("trace/tests/data/live/three-way-server-first.pcap"),
        run.join("capture.pcap"),
    )
    .unwrap();
}

#[test]
fn sweep_page_links_every_point_and_says_the_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    make_sweep(&dir);
    let page = write_report(&dir, Lang::En).unwrap();
    assert_eq!(page, dir.join("report.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    // The boundary in words, as boundary.txt says it.
    assert!(
        html.contains("three-way/server up to 40 ms, four-way/client from 60 ms"),
        "{html}"
    );
    assert!(html.contains("at 40 ms both occur (three-way/server 50%, four-way/client 50%)"));
    // Both pictures inline, each grid point a link in the outcomes chart, a row in the table.
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 2);
    let outcomes = &html[html.find("data-chart=\"outcomes.svg\"").unwrap()..];
    let outcomes = &outcomes[..outcomes.find("</figure>").unwrap()];
    assert_eq!(outcomes.matches("<a class=\"point\"").count(), 5);
    for i in 0..5 {
        assert!(outcomes.contains(&format!("data-point=\"{i}\"")), "{i}");
        assert!(html.contains(&format!("<tr data-point=\"{i}\">")), "{i}");
    }
    // The point whose runs were kept links to their page; the others to their point file.
    assert!(html.contains("href=\"runs/server.close_delay_ms=0/report.html\""));
    assert!(html.contains("href=\"points/server.close_delay_ms=20.json\""));
    assert_links_resolve(&page);
    let point_page = dir.join("runs/server.close_delay_ms=0/report.html");
    let p = std::fs::read_to_string(&point_page).unwrap();
    assert!(
        p.contains("tcplab sweep point: server.close_delay_ms=0 ms"),
        "{p}"
    );
    assert!(
        !p.contains("did not finish"),
        "a sweep point is no killed batch"
    );
    assert_links_resolve(&point_page);
    // `tcplab report` on the point's directory alone writes the same page.
    std::fs::remove_file(&point_page).unwrap();
    write_report(&dir.join("runs/server.close_delay_ms=0"), Lang::En).unwrap();
    assert_eq!(std::fs::read_to_string(&point_page).unwrap(), p);
    // No script, nothing fetched.
    assert_fetches_nothing(&html);
}

#[test]
fn sweep_page_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_sweep(a.path());
    make_sweep(b.path());
    let pa = std::fs::read_to_string(write_report(a.path(), Lang::En).unwrap()).unwrap();
    let again = std::fs::read_to_string(write_report(a.path(), Lang::En).unwrap()).unwrap();
    assert_eq!(pa, again, "the same sweep directory, the same bytes");
    let pb = std::fs::read_to_string(write_report(b.path(), Lang::En).unwrap()).unwrap();
    let pb = pb.replace(
        &b.path().display().to_string(),
        &a.path().display().to_string(),
    );
    assert_eq!(
        pa, pb,
        "the same results elsewhere: the same page but for its path"
    );
}

// ---------------------------------------------------------------------------------------
// Kernel matrix

fn summary(kernel: &str, accel: &str, scenario: &str, counts: &[(&str, u64)], det: bool) -> Value {
    let mut v: Value = serde_json::from_str(include_str!(
        "../../record/tests/data/summary-kernel-host.json"
    ))
    .unwrap();
    v["kernel"] = kernel.into();
    v["conditions"]["accel"] = accel.into();
    v["conditions"]["place"] = if accel == "none" { "host" } else { "qemu" }.into();
    v["conditions"]["cpus"] = 1.into();
    v["conditions"]["memory_mib"] = 512.into();
    v["scenario"] = scenario.into();
    v["counts"] = counts
        .iter()
        .map(|(k, n)| ((*k).to_owned(), json!(n)))
        .collect();
    v["runs"] = counts.iter().map(|c| c.1).sum::<u64>().into();
    if !det {
        let e = v["expect"].as_object_mut().unwrap();
        e.remove("kind");
        e.insert("kinds".into(), json!(["three-way"]));
    }
    v
}

fn put(dir: &Path, column: &str, s: &Value) {
    let d = dir
        .join(column)
        .join(s["scenario"].as_str().unwrap())
        .join("20261207T010000Z");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("summary.json"), s.to_string()).unwrap();
}

/// Two kernels under the same conditions: one deterministic scenario the same, one racy
/// scenario whose shares moved, one the second kernel skipped, one it failed.
fn make_kernel_tree(dir: &Path) {
    let (a, b) = ("6.1.0-57-cloud-amd64", "6.12.117+deb12-cloud-amd64");
    for k in [a, b] {
        put(
            dir,
            k,
            &summary(k, "tcg", "det", &[("four-way/client", 20)], true),
        );
    }
    let racy_a = [("three-way/server", 95), ("three-way/client", 5)];
    let racy_b = [("three-way/server", 40), ("three-way/client", 60)];
    put(dir, a, &summary(a, "tcg", "racy", &racy_a, false));
    put(dir, b, &summary(b, "tcg", "racy", &racy_b, false));
    put(
        dir,
        a,
        &summary(a, "tcg", "link", &[("four-way/client", 20)], true),
    );
    let mut failed = summary(b, "tcg", "zfail", &[("three-way/server", 20)], true);
    failed["passed"] = false.into();
    failed["mismatch"] = "expected four-way/client, got three-way/server".into();
    put(
        dir,
        a,
        &summary(a, "tcg", "zfail", &[("four-way/client", 20)], true),
    );
    put(dir, b, &failed);
    let conditions = json!({"place": "qemu", "accel": "tcg", "cpus": 1, "memory_mib": 512});
    let kernels = json!({"columns": [
        {"kernel": a, "dir": a, "conditions": conditions, "skipped": []},
        {"kernel": b, "dir": b, "conditions": conditions, "skipped": [
            {"scenario": "link", "file": "scenarios/link/x.toml",
             "skipped": "the kernel has no TUN", "passed": null}
        ]},
    ]});
    std::fs::write(dir.join("kernels.json"), kernels.to_string()).unwrap();
}

#[test]
fn matrix_page_shows_marks_conditions_and_the_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kern");
    make_kernel_tree(&dir);
    let page = write_report(&dir, Lang::En).unwrap();
    assert_eq!(
        page,
        dir.join("report.html"),
        "a pure run --kernel tree: the matrix is the page"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // One row per scenario, one column per kernel, with its conditions.
    assert_eq!(html.matches("<tr data-scenario=").count(), 4);
    assert_eq!(html.matches("<th class=\"column\"").count(), 2);
    assert_eq!(html.matches("qemu tcg, 1 cpu, 512 MiB").count(), 2);
    let row = |s: &str| {
        let r = &html[html.find(&format!("<tr data-scenario=\"{s}\">")).unwrap()..];
        r[..r.find("</tr>").unwrap()].to_owned()
    };
    // The racy shift: ≠, which outcome moved, its shares, the p-value.
    let racy = row("racy");
    assert!(racy.contains("class=\"mark m-differs\">≠<"), "{racy}");
    assert!(
        racy.contains("three-way/client: 5.0% → 60.0%, p = "),
        "{racy}"
    );
    assert!(!row("det").contains("class=\"mark"), "{}", row("det"));
    assert!(row("link").contains("skipped: the kernel has no TUN"));
    assert!(row("zfail").contains("class=\"mark m-fail\">✗<"));
    // compare's verdicts, as `compare` computes them.
    assert!(html.contains("racy: three-way/client share changed (Fisher exact p = "));
    assert!(
        html.contains("1 cell missed its expectation; 2 kernel differences"),
        "{html}"
    );
    // Cells link to their batches (summary.json here: no runs were kept).
    assert!(html.contains("href=\"6.12.117+deb12-cloud-amd64/racy/20261207T010000Z/summary.json\""));
    assert_links_resolve(&page);
    assert_fetches_nothing(&html);
    // Same files, same bytes.
    let again = std::fs::read_to_string(write_report(&dir, Lang::En).unwrap()).unwrap();
    assert_eq!(html, again);
}

#[test]
fn a_results_tree_gets_an_index_of_matrices_sweeps_and_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_kernel_tree(&root.join("kern"));
    make_sweep(&root.join("sweep/seed-three-way"));
    let batch = root.join("seed-four-way/20261207T010000Z/run-0001");
    std::fs::create_dir_all(&batch).unwrap();
    std::fs::copy(
        data("trace/tests/data/live/four-way-server-delay-100ms.pcap"),
        batch.join("capture.pcap"),
    )
    .unwrap();
    let page = write_report(root, Lang::En).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<a class=\"matrix\" href=\"kern/report.html\">"),
        "{html}"
    );
    assert!(html.contains("<a class=\"sweep\" href=\"sweep/seed-three-way/report.html\">"));
    assert!(
        html.contains("<a class=\"batch\" href=\"seed-four-way/20261207T010000Z/report.html\">")
    );
    // The sweep's kept runs are the sweep's, not batches of the index.
    assert_eq!(html.matches("<a class=\"batch\"").count(), 1, "{html}");
    assert_links_resolve(&page);
    assert_links_resolve(&root.join("kern/report.html"));
    assert_links_resolve(&root.join("sweep/seed-three-way/report.html"));

    // A run --kernel --out that holds other results too: the index is report.html, the
    // matrix matrix.html.
    let mixed = tempfile::tempdir().unwrap();
    make_kernel_tree(mixed.path());
    make_sweep(&mixed.path().join("sweep"));
    let page = write_report(mixed.path(), Lang::En).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("href=\"matrix.html\""), "{html}");
    assert!(mixed.path().join("matrix.html").is_file());
    assert_links_resolve(&page);
    assert_links_resolve(&mixed.path().join("matrix.html"));
}

/// A damaged sweep.json or kernels.json is an error naming the file, not a page.
#[test]
fn damaged_sweep_and_kernel_files_are_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    make_sweep(&sweep);
    std::fs::write(sweep.join("sweep.json"), "{").unwrap();
    let e = write_report(&sweep, Lang::En).unwrap_err().to_string();
    assert!(e.contains("sweep.json"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let kern = tmp.path().join("kern");
    make_kernel_tree(&kern);
    std::fs::write(kern.join("kernels.json"), "{\"columns\": 3}").unwrap();
    let e = write_report(&kern, Lang::En).unwrap_err().to_string();
    assert!(e.contains("kernels.json"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}
