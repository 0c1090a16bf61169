//! Golden tests: every input × every human renderer, pinned as insta snapshots in
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
use tcplab_trace::render::{human, ladder, Lang, TextOptions};
use tcplab_trace::{analyze, Analysis};

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

/// Render `path` three ways, check what every snapshot must satisfy, and pin the results
/// as `<stem>__en`, `<stem>__zh`, `<stem>__ladder`.
#[track_caller]
fn golden(path: &Path, stem: &str) {
    let a = analysis(path);
    let outputs = [
        ("en", listing(&a, Lang::En)),
        ("zh", listing(&a, Lang::Zh)),
        ("ladder", ladders(&a)),
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
