//! Golden tests: every input × every renderer the README promises (the listing in English and
//! Chinese, the ladder, `analyze --json`, the `--summary` table), pinned as insta snapshots in
//! `tests/snapshots/`. Review a change by reading the `.snap.new` files (or `cargo insta
//! review`); never edit a snapshot by hand.
//!
//! Inputs: the seed's three tcpdump listings (`tests/data/seed/`) and the captures recorded by
//! live runs in `tests/data/live/` (both must exist: missing data fails the test).
//! Snapshots must be deterministic: no colour, times relative to the first packet, nothing
//! taken from a hash map.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use tcplab_trace::render::json::{self, JsonWriter};
use tcplab_trace::render::{human, ladder, summary, Lang, TextOptions};
use tcplab_trace::{analyze, analyze_stream, Analysis, AnalyzeOptions, Detail, Summary};

fn seed(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed")).join(name)
}

#[track_caller]
fn analysis(path: &Path) -> Analysis {
    let file = File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    analyze(BufReader::new(file), &name)
        .unwrap_or_else(|e| panic!("cannot analyse {}: {e}", path.display()))
}

fn opts(lang: Lang) -> TextOptions {
    TextOptions {
        lang,
        color: false,
        ladder: false,
    }
}

/// The listing of every connection (and the summary when there are several).
fn listing(a: &Analysis, lang: Lang) -> String {
    let mut out = Vec::new();
    human::render(a, &opts(lang), &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("renderers write UTF-8")
}

/// The ladder of every connection, a blank line between them.
fn ladders(a: &Analysis) -> String {
    let mut out = Vec::new();
    for (i, c) in a.connections.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        ladder::render(c, &opts(Lang::En), &mut out).expect("writing to a Vec cannot fail");
    }
    String::from_utf8(out).expect("renderers write UTF-8")
}

/// What `tcplab analyze --json` prints for `path`: the streaming writer over a streaming
/// analysis with the JSON level of detail, exactly as the CLI drives them.
#[track_caller]
fn json_output(path: &Path) -> String {
    let file = File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opts = AnalyzeOptions {
        detail: Detail::Json,
        ..AnalyzeOptions::default()
    };
    let mut sink = JsonWriter::new(Vec::new());
    analyze_stream(BufReader::new(file), &name, &opts, &mut sink)
        .unwrap_or_else(|e| panic!("cannot analyse {}: {e}", path.display()));
    let out = sink.finish().expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// `compact` (one JSON document) re-indented for review, two spaces a level, member order
/// and every byte inside strings kept as written: the snapshot shows the order the CLI
/// prints, which a parse-and-pretty-print (sorted keys) would hide.
fn indent_json(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = compact.trim_end().chars().peekable();
    while let Some(ch) = chars.next() {
        if in_string {
            out.push(ch);
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '{' | '[' => {
                out.push(ch);
                // Keep empty containers on one line.
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or(ch));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(ch);
            }
            ',' => {
                out.push(ch);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(ch),
        }
    }
    out.push('\n');
    out
}

/// The `--summary` table over `a`'s connections.
fn summary_table(a: &Analysis, lang: Lang) -> String {
    let mut s = Summary::default();
    for c in &a.connections {
        s.add(c);
    }
    table(&s, lang)
}

fn table(s: &Summary, lang: Lang) -> String {
    let mut out = Vec::new();
    summary::render(s, &opts(lang), &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("renderers write UTF-8")
}

/// The `--json` output must be one line of valid JSON that says what the in-memory
/// analysis says (the streaming writer and [`json::to_value`] are two code paths).
#[track_caller]
fn check_json(stem: &str, a: &Analysis, raw: &str) {
    assert!(raw.ends_with('\n'), "{stem} json: no final newline");
    assert_eq!(raw.lines().count(), 1, "{stem} json: not one line");
    let parsed: serde_json::Value = serde_json::from_str(raw)
        .unwrap_or_else(|e| panic!("{stem} json: not valid JSON: {e}\n{raw}"));
    assert_eq!(
        parsed,
        json::to_value(a),
        "{stem} json: stream != in-memory"
    );
    // Re-indenting only adds whitespace outside strings: it reads back as the same value.
    let pretty: serde_json::Value =
        serde_json::from_str(&indent_json(raw)).expect("indented JSON parses");
    assert_eq!(pretty, parsed, "{stem} json: indenting changed the value");
}

/// Render `path` every way, check what every snapshot must satisfy, and pin the results
/// as `<stem>__en`, `<stem>__zh`, `<stem>__ladder`, `<stem>__json` (indented for review),
/// `<stem>__summary_en`, `<stem>__summary_zh`.
#[track_caller]
fn golden(path: &Path, stem: &str) {
    let a = analysis(path);
    let raw_json = json_output(path);
    check_json(stem, &a, &raw_json);
    let outputs = [
        ("en", listing(&a, Lang::En)),
        ("zh", listing(&a, Lang::Zh)),
        ("ladder", ladders(&a)),
        ("json", indent_json(&raw_json)),
        ("summary_en", summary_table(&a, Lang::En)),
        ("summary_zh", summary_table(&a, Lang::Zh)),
    ];
    for (what, text) in &outputs {
        assert!(
            !text.contains('\x1b'),
            "{stem} {what}: colour without asking"
        );
        assert!(!text.trim().is_empty(), "{stem} {what}: empty");
    }
    // The ladder keeps to 100 terminal columns (its English text is all single-width).
    for line in outputs[2].1.lines() {
        assert!(
            line.chars().count() <= 100,
            "{stem}: ladder too wide: {line}"
        );
    }
    // Rendering the same analysis twice gives the same bytes.
    assert_eq!(
        listing(&a, Lang::En),
        outputs[0].1,
        "{stem}: not deterministic"
    );
    for (what, text) in outputs {
        insta::assert_snapshot!(format!("{stem}__{what}"), text);
    }
}

#[test]
fn seed_three_way_close() {
    golden(&seed("three-way-close.txt"), "seed_three_way_close");
}

#[test]
fn seed_four_way_close() {
    golden(&seed("four-way-close.txt"), "seed_four_way_close");
}

#[test]
fn seed_simultaneous_close() {
    golden(&seed("simultaneous-close.txt"), "seed_simultaneous_close");
}

/// Every capture a live run saved in `tests/data/live/` (sorted by name, so the order of
/// snapshots does not depend on the file system).
#[test]
fn live_captures() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/live"));
    // Missing data is a failure, not a pass: the captures are part of the repository.
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "txt")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    for path in files {
        let stem: String = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        golden(&path, &format!("live_{stem}"));
    }
}

/// One `--summary` table over every input above (as `tcplab analyze --summary` over all of
/// them would count): several kinds and closers in one table, in the renderer's row order.
#[test]
fn summary_over_all_inputs() {
    let mut paths: Vec<PathBuf> = [
        "three-way-close.txt",
        "four-way-close.txt",
        "simultaneous-close.txt",
    ]
    .iter()
    .map(|n| seed(n))
    .collect();
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/live"));
    let mut live: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("pcap"))
        .collect();
    live.sort();
    paths.extend(live);
    let mut s = Summary::default();
    for p in &paths {
        for c in &analysis(p).connections {
            s.add(c);
        }
    }
    assert_eq!(
        usize::try_from(s.connections).ok(),
        Some(paths.len()),
        "one connection per input"
    );
    insta::assert_snapshot!("all_inputs__summary_en", table(&s, Lang::En));
    insta::assert_snapshot!("all_inputs__summary_zh", table(&s, Lang::Zh));
}
