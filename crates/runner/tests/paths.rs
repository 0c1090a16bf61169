//! Live runs of the teardown-path families (time-wait/, orphan/, states/) and proof that
//! their expectations fail when the kernel's behaviour is not the one they name (feature
//! `netns-tests`; they FAIL without privileges).
#![cfg(feature = "netns-tests")]

use std::path::{Path, PathBuf};
use tcplab_runner::{expect, run_repeated, RunOptions, Scenario};

fn scenario(rel: &str) -> Scenario {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// The verdict on `repeat` runs of `s`. Runs the programs missed (timing misses, retried and
/// not counted) are the machine's: at least one run must count.
fn verdict(s: &Scenario, repeat: u32) -> expect::Verdict {
    let opts = RunOptions {
        repeat,
        jobs: 2,
        ..RunOptions::default()
    };
    let runs = run_repeated(s, &opts).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
    let v = expect::verdict(&s.expect, &runs);
    assert!(v.runs >= 1, "{}: no run counted", s.name());
    assert_eq!(v.drops, 0, "{}: capture drops", s.name());
    v
}

#[test]
fn netns_teardown_path_families_hold() {
    for (f, repeat) in [
        ("time-wait/client-holds-time-wait.toml", 4),
        ("time-wait/server-holds-time-wait.toml", 4),
        ("time-wait/max-tw-buckets-zero.toml", 4),
        ("time-wait/max-tw-buckets-zero-orphan.toml", 2),
        ("orphan/fin-timeout-expired.toml", 2),
        ("orphan/fin-timeout-not-reached.toml", 2),
        ("states/so-linger-blocks-close.toml", 4),
        ("states/shutdown-rd.toml", 4),
        ("states/shutdown-rdwr.toml", 4),
    ] {
        let s = scenario(f);
        let v = verdict(&s, repeat);
        assert!(
            v.passed,
            "{}: {:?} counts {:?}",
            s.name(),
            v.message,
            v.counts
        );
    }
}

/// Each family's expectation against the real kernel doing something else: the same
/// scenario without the sysctl or knob that makes its path happen must fail, for the reason
/// the expectation names.
#[test]
fn netns_the_families_fail_when_their_path_is_not_taken() {
    let fails = |s: &Scenario, repeat: u32, why: &str| {
        let v = verdict(s, repeat);
        assert!(!v.passed, "{}: passed without its path", s.name());
        let m = v.message.unwrap_or_default();
        assert!(m.contains(why), "{}: {m}", s.name());
    };
    // TIME_WAIT buckets available: the client keeps TIME_WAIT.
    let mut s = scenario("time-wait/max-tw-buckets-zero.toml");
    s.sysctl.clear();
    s.expect.kernel_client_states = None;
    fails(
        &s,
        2,
        "kernel client socket ended in TIME_WAIT, expected [CLOSED]",
    );
    // The default FIN_WAIT_2 lifetime (60 s): the late FIN is acknowledged, no RST.
    let mut s = scenario("orphan/fin-timeout-expired.toml");
    s.sysctl.clear();
    fails(&s, 1, "");
    // The RST instead of the final ACK, unless allowed, is an unexpected warning.
    let mut s = scenario("orphan/fin-timeout-expired.toml");
    s.expect.allow_warnings.clear();
    fails(&s, 1, "unexpected warning");
    // Without SO_LINGER close(2) returns at once.
    let mut s = scenario("states/so-linger-blocks-close.toml");
    s.client.linger_s = None;
    fails(&s, 2, "client close blocked");
    // shutdown(SHUT_WR) instead of SHUT_RDWR: no send after it, and recv waits for the FIN.
    let mut s = scenario("states/shutdown-rdwr.toml");
    s.client.close = tcplab_client::CloseHow::Shutdown;
    fails(
        &s,
        2,
        "client send_after_shutdown: expected EPIPE, but it was not called",
    );
}
