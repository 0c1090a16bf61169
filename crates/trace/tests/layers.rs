//! The crate reads read → decode → track → classify → render: no module imports one that
//! (through others) imports it back. Checked on the source, per file: every `crate::a::b`
//! and `super::x` path outside comments and `#[cfg(test)]` code is an edge to the longest
//! module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`render::human`) → the source before its tests, comments stripped.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("src dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&root).expect("under src").with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_owned();
            }
            if name == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("source");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
    out
}

/// The `a::b::c` paths after `prefix` in `code`.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut v = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        v.push(rest[..end].trim_end_matches(':'));
    }
    v
}

fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|c| mods.contains_key(c))
    };
    let mut out = BTreeMap::new();
    for (m, code) in mods {
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        let mut e = BTreeSet::new();
        let crate_paths = paths_after(code, "crate::").into_iter().map(str::to_owned);
        let super_paths = paths_after(code, "super::").into_iter().map(|p| {
            if parent.is_empty() {
                p.to_owned()
            } else {
                format!("{parent}::{p}")
            }
        });
        for p in crate_paths.chain(super_paths) {
            if let Some(t) = resolve(&p) {
                if t != *m && !t.starts_with(&format!("{m}::")) {
                    e.insert(t);
                }
            }
        }
        out.insert(m.clone(), e);
    }
    out
}

/// A circle through `start`, if any: the modules in order.
fn circle_from(start: &str, g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((m, path)) = stack.pop() {
        for n in g.get(&m).into_iter().flatten() {
            if n == start {
                return Some(path.clone());
            }
            if seen.insert(n.clone()) {
                let mut p = path.clone();
                p.push(n.clone());
                stack.push((n.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_itself_back() {
    let mods = modules();
    assert!(mods.contains_key("render::human"), "{:?}", mods.keys());
    let g = edges(&mods);
    // The check sees edges: teardown uses raw_conn, the listing draws the ladder.
    assert!(g["teardown"].contains("raw_conn"), "{:?}", g["teardown"]);
    assert!(g["render::human"].contains("render::ladder"));
    let circles: Vec<Vec<String>> = mods.keys().filter_map(|m| circle_from(m, &g)).collect();
    assert!(circles.is_empty(), "import circles: {circles:?}");
}
