//! Usage errors of `sweep`, `merge`, `server` and `client`: one clear line, exit 2, before
//! anything runs (no privileges needed).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed/seed-four-way.toml")
}

/// Exit status and stderr of `tcplab ARGS`.
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = tcplab()
        .args(args)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sweep_grid_product_is_capped_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scenario();
    let (code, err) = fails(&[
        "sweep",
        s.to_str().expect("utf-8 path"),
        "--vary",
        "server.close_delay_ms=0..9999:1",
        "--vary",
        "client.close_delay_ms=0..9999:1",
        "--out",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(
            "tcplab: the grid has 100000000 points (10000 × 10000), more than the limit of 100000"
        ),
        "{err}"
    );
}

#[test]
fn jobs_zero_is_a_usage_error() {
    let s = scenario();
    let s = s.to_str().expect("utf-8 path");
    for args in [
        vec![
            "sweep",
            s,
            "--vary",
            "server.close_delay_ms=1",
            "--jobs",
            "0",
        ],
        vec!["run", s, "--jobs", "0"],
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("--jobs"), "{err}");
        assert!(err.contains("0 is not in 1.."), "{err}");
    }
}

#[test]
fn peer_knob_messages_name_the_problem() {
    let (code, err) = fails(&["server", "--close-delay-ms", "-5", "--count", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("must be between 0 and 3600000 ms, got -5"),
        "{err}"
    );
    assert!(!err.contains("unexpected argument"), "{err}");
    let (code, err) = fails(&["client", "-6", "--addr", "127.0.0.1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("-6 asks for IPv6, but --addr 127.0.0.1 is an IPv4 address"),
        "{err}"
    );
    let (code, err) = fails(&["client", "--count", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("0 is not in 1.."), "{err}");
}

/// A listener on loopback that accepts and then never says anything.
fn silent_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[test]
fn client_gives_up_on_a_silent_server_with_a_clear_message() {
    let (l, port) = silent_listener();
    // The accepted connection stays open (and silent) until the client has given up: held
    // until told, not for a guessed time that a busy machine could outlast.
    let (done, client_finished) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let c = l.accept().expect("accept");
        let _ = client_finished.recv();
        drop(c);
    });
    let port = port.to_string();
    let (code, err) = fails(&["client", "--port", &port, "--timeout-ms", "300"]);
    drop(done);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("accepted the connection but sent nothing within 300 ms"),
        "{err}"
    );
    holder.join().expect("holder");
}

#[test]
fn server_closes_a_silent_peer_and_says_so() {
    // Pick a free port, then let the server listen there.
    let port = silent_listener().1;
    let mut server = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .args(["server", "--count", "1", "--timeout-ms", "300", "--port"])
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server");
    // Deadlines here only guard against a hang: a busy machine may take long to start it.
    let started = std::time::Instant::now();
    let conn = loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(
            server.try_wait().expect("wait").is_none(),
            "the server ended before listening"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "server never listening"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "server blocks"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(conn);
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut server.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(
        out.contains("it sent nothing within 300 ms, so it was closed"),
        "{out}"
    );
}
