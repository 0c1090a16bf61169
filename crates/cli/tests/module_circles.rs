//! Every crate reads bottom-up (issue 14 §4): in no crate under `crates/` does a module
//! import one that (through others) imports it back. Checked on the source, per file: every
//! `crate::a::b` and `super::x` path outside comments and `#[cfg(test)]` items is an edge to
//! the longest module it names. The crate roots (`lib.rs`, `main.rs`) are not nodes: they
//! declare and re-export the modules, so they are above them all.
//!
//! This lives in the cli crate because cli is the one crate that stands on all the others;
//! it reads their source only, so it needs none of them built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's modules: module path (`render::human`) → its code outside comments and
/// `#[cfg(test)]` items.
type Modules = BTreeMap<String, String>;

/// Module path → the modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The crate directories (those with a `src/`) under `crates/`, by name.
fn crate_dirs() -> BTreeMap<String, PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_dir(&crates)
        .expect("crates dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

fn modules(crate_dir: &Path) -> Modules {
    let root = crate_dir.join("src");
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
            if name == "lib" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("source");
            out.insert(name, without_tests(&without_comments(&text)));
        }
    }
    out
}

/// `text` without `//` comments (doc comments included); a `//` inside a string literal
/// also ends the line, which can only hide a path, never invent one.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `code` without the items marked `#[cfg(test)]`: each runs from the attribute to its
/// first `;` or to the `}` closing its first `{`, whichever comes first.
fn without_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = rest.find(MARK) {
        out.push_str(&rest[..i]);
        rest = &rest[i + MARK.len()..];
        let mut depth = 0usize;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
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

/// Each module's edges to the other modules of its crate (not to its own submodules).
fn edges(mods: &Modules) -> Graph {
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
fn circle_from(start: &str, g: &Graph) -> Option<Vec<String>> {
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

/// Each circle once, as `a → b → a`, starting from its smallest module.
fn circles(g: &Graph) -> BTreeSet<String> {
    g.keys()
        .filter_map(|m| circle_from(m, g))
        .map(|mut c| {
            let least = (0..c.len()).min_by_key(|&i| &c[i]).unwrap_or(0);
            c.rotate_left(least);
            c.push(c[0].clone());
            c.join(" → ")
        })
        .collect()
}

#[test]
fn no_module_imports_itself_back_in_any_crate() {
    let crates = crate_dirs();
    for known in ["trace", "runner", "capture", "cli", "report", "vm"] {
        assert!(
            crates.contains_key(known),
            "{known} not in {:?}",
            crates.keys()
        );
    }
    let mut found = Vec::new();
    for (name, dir) in &crates {
        let g = edges(&modules(dir));
        found.extend(circles(&g).into_iter().map(|c| format!("{name}: {c}")));
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

/// The check sees the edges it must: a `use crate::…`, a `super::` path, a path in code.
#[test]
fn the_check_sees_real_edges() {
    let crates = crate_dirs();
    let trace = edges(&modules(&crates["trace"]));
    assert!(
        trace["teardown"].contains("raw_conn"),
        "{:?}",
        trace["teardown"]
    );
    assert!(trace["render::human"].contains("render::ladder"));
}

/// A circle put in by hand is found, and test-only imports are not edges.
#[test]
fn a_circle_is_found_and_test_imports_are_not() {
    let code = |s: &str| without_tests(&without_comments(s));
    let mods: Modules = [
        ("a", code("use crate::b::Thing;\n")),
        (
            "b",
            code("// use crate::a::X;\n#[cfg(test)]\nmod tests { use crate::a::X; }\n"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert!(circles(&edges(&mods)).is_empty());
    let mut with_circle = mods.clone();
    with_circle.insert("b".into(), code("fn f() -> crate::a::X { todo!() }\n"));
    assert_eq!(
        circles(&edges(&with_circle)),
        BTreeSet::from(["a → b → a".to_owned()])
    );
}
