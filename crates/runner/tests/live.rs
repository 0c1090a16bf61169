//! Live runs in private namespaces (feature `netns-tests`; they FAIL without privileges).
#![cfg(feature = "netns-tests")]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tcplab_runner::{expect, run_repeated, RunOptions, Scenario, TeardownKind};

mod common;
use common::{assert_all_pass, counted, run_jobs, scenario, Drops};

fn run(s: &Scenario, repeat: u32, pooled: bool) -> Vec<tcplab_runner::RunOutcome> {
    let opts = RunOptions {
        repeat,
        jobs: 4,
        pooled,
        ..RunOptions::default()
    };
    run_repeated(s, &opts).unwrap_or_else(|e| panic!("{}: {e}", s.name()))
}

/// The bar: 200 runs, each held to what the scenario promises on the running kernel
/// (its `[expect.since_kernel]` tables applied, as `tcplab run` does). For seed-four-way and
/// for seed-three-way before 6.7 that is the seed's outcome every time; from 6.7 on
/// seed-three-way is a bounded race (6.7's deferred ACK may cover the FIN, see its header),
/// and the seed's outcome must still be the rule.
#[test]
fn netns_seed_scenarios_give_their_kind_every_time() {
    for (f, seed) in [
        ("seed/seed-three-way.toml", "three-way/server"),
        ("seed/seed-four-way.toml", "four-way/client"),
    ] {
        let s = scenario(f);
        let runs = run_jobs(&s, 200, 8);
        assert_all_pass(&s, &runs, 200, Drops::None);
        let seed = tcplab_runner::Outcome::parse(seed).expect("outcome");
        let n = counted(&runs).count();
        let seeds = counted(&runs).filter(|r| r.outcome() == seed).count();
        match s.expect.kind {
            // Deterministic here: the seed's outcome, every run.
            Some(k) => {
                assert_eq!(k, seed.kind, "{}", s.name());
                assert_eq!(seeds, n, "{}: every run {seed}", s.name());
            }
            // A bounded race here: the scenario itself must keep the seed's outcome the
            // rule (a file that dropped the bound would pass anything), and the runs did.
            None => {
                let bound = s.expect.min_ratio.get(&seed).copied().unwrap_or(0.0);
                assert!(bound >= 0.9, "{}: {seed} bounded at {bound}", s.name());
                assert!(
                    seeds as f64 >= bound * n as f64,
                    "{}: {seeds} of {n} runs {seed}",
                    s.name()
                );
            }
        }
    }
}

/// The seed's expectation still fails where the close really changes: with the client's
/// close moved past the ~40 ms delayed-ACK timer, the ACK of the server's FIN goes out on
/// its own every time (four-way, server). seed-three-way's promise on this kernel (exact
/// before 6.7, "three-way at least 95%" after) and seed-zero-delay's (four-way at most 5%
/// after 6.7, never before) must both reject that batch.
#[test]
fn netns_seed_expectations_fail_when_four_way_is_the_rule() {
    for (f, why) in [
        ("seed/seed-three-way.toml", "three-way/server"),
        ("seed/seed-zero-delay.toml", "four-way/server"),
    ] {
        let mut s = scenario(f);
        s.set_knob("client.close_delay_ms", "60").expect("knob");
        let runs = run_jobs(&s, 20, 4);
        let v = expect::verdict(&s.expect, &runs);
        assert!(v.runs >= 10, "{}: too few runs counted: {v:?}", s.name());
        assert_eq!(
            v.counts.get("four-way/server").copied(),
            Some(v.runs),
            "{}: the delayed ACK makes every close four-way: {v:?}",
            s.name()
        );
        assert!(!v.passed, "{}: passed a four-way batch: {v:?}", s.name());
        let m = v.message.unwrap_or_default();
        assert!(m.contains(why), "{}: {m}", s.name());
    }
}

#[test]
fn netns_seed_four_way_shows_the_delayed_ack() {
    let s = scenario("seed/seed-four-way.toml");
    for r in run(&s, 5, false) {
        let ms = r.fin_ack_delay_ns.expect("four-way has a separate ACK") as f64 / 1e6;
        assert!((35.0..60.0).contains(&ms), "delayed ACK after {ms} ms");
    }
}

#[test]
fn netns_deterministic_scenarios_hold() {
    for f in [
        "close/client-first-server-delay-20ms.toml",
        "close/server-first-client-delay-60ms.toml",
        "reset/client-linger0.toml",
        "reset/server-linger0.toml",
        "reset/server-unread-data.toml",
        "reset/client-unread-data.toml",
        "ipv6/seed-over-ipv6.toml",
    ] {
        let s = scenario(f);
        let runs = run(&s, 8, false);
        assert_all_pass(&s, &runs, 8, Drops::None);
    }
}

/// Pooled mode (one namespace, one capture, fresh ports) gives the same outcomes as fresh
/// namespaces on every deterministic scenario.
#[test]
fn netns_pooled_matches_fresh() {
    for f in [
        "seed/seed-three-way.toml",
        "seed/seed-four-way.toml",
        "close/client-first-server-delay-20ms.toml",
        "close/server-first-client-delay-60ms.toml",
        "reset/server-linger0.toml",
        "reset/server-unread-data.toml",
        "ipv6/seed-over-ipv6.toml",
    ] {
        let s = scenario(f);
        let fresh = run(&s, 10, false);
        let pooled = run(&s, 10, true);
        let vf = expect::verdict(&s.expect, &fresh);
        let vp = expect::verdict(&s.expect, &pooled);
        assert!(
            vf.passed && vp.passed,
            "{}: fresh {vf:?} pooled {vp:?}",
            s.name()
        );
        // The same outcomes; a run whose programs missed their close delay (a busy machine)
        // is a timing miss, counted apart from the kernel's outcomes, so compare which
        // outcomes occurred and that every run is accounted for.
        // A scenario that is a bounded race on this kernel (seed-three-way from 6.7 on: a
        // rare four-way) may show its rare outcome in one batch only: there the most
        // frequent outcome must agree.
        let outcomes = |v: &expect::Verdict| -> Vec<String> {
            if s.expect.kind.is_some() {
                v.counts.keys().cloned().collect()
            } else {
                v.counts
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(k, _)| k.clone())
                    .into_iter()
                    .collect()
            }
        };
        assert_eq!(outcomes(&vf), outcomes(&vp), "{}: {vf:?} {vp:?}", s.name());
        for v in [&vf, &vp] {
            let counted: u64 = v.counts.values().sum();
            assert_eq!(counted + v.timing_miss_runs, 10, "{}: {v:?}", s.name());
        }
        assert_eq!(vp.drops, 0);
        // Pooled runs really used distinct ports.
        let ports: std::collections::BTreeSet<u16> = pooled.iter().map(|r| r.port).collect();
        assert_eq!(ports.len(), pooled.len());
    }
}

/// A second connection on the same 4-tuple (`reconnect_after_ms`) in pooled mode: the
/// server port is the run's own, so both connections land in its bucket of the shared
/// capture, and each scenario's verdict (its `reconnect_*` call results included) and
/// outcomes are those of fresh namespaces.
#[test]
fn netns_pooled_reconnects_as_fresh() {
    for f in [
        "time-wait/tw-reuse-one-port.toml",
        "time-wait/tw-reuse-off-one-port.toml",
        "time-wait/bind-port-in-time-wait.toml",
        "time-wait/syn-into-server-time-wait.toml",
    ] {
        let s = scenario(f);
        let fresh = run(&s, 4, false);
        let pooled = run(&s, 4, true);
        assert_all_pass(&s, &fresh, 4, Drops::None);
        assert_all_pass(&s, &pooled, 4, Drops::None);
        let (vf, vp) = (
            expect::verdict(&s.expect, &fresh),
            expect::verdict(&s.expect, &pooled),
        );
        let outcomes = |v: &expect::Verdict| v.counts.keys().cloned().collect::<Vec<_>>();
        assert_eq!(outcomes(&vf), outcomes(&vp), "{}: {vf:?} {vp:?}", s.name());
        // Where the second connect succeeds, its teardown was captured in the run's bucket.
        if f.ends_with("tw-reuse-one-port.toml") {
            for r in counted(&pooled) {
                let second = r.reconnect.and_then(|c| c.outcome);
                assert!(second.is_some(), "{}: {r:?}", s.name());
            }
        }
    }
}

#[test]
fn netns_results_layout_progress_and_cancel() {
    let s = scenario("seed/seed-three-way.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Arc::new(AtomicU64::new(0));
    let seen2 = Arc::clone(&seen);
    let opts = RunOptions {
        repeat: 3,
        jobs: 2,
        out_dir: Some(dir.path().join("batch")),
        keep_pcaps: true,
        progress: Some(Arc::new(move |n| {
            seen2.fetch_max(n, Ordering::Relaxed);
        })),
        ..RunOptions::default()
    };
    let runs = run_repeated(&s, &opts).expect("runs");
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    // Every run keeps its files, timing misses too; a timing miss is not the kernel's
    // outcome, so only counted runs must be the scenario's three-way close.
    for r in &runs {
        let d = r.dir.as_ref().expect("kept");
        for f in ["capture.pcap", "analysis.json", "report.txt"] {
            assert!(d.join(f).is_file(), "{}/{f}", d.display());
        }
        let a: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("analysis.json")).expect("read"))
                .expect("json");
        // The kept pcap classifies the same when read back.
        let bytes = std::fs::read(r.pcap.as_ref().expect("pcap")).expect("read pcap");
        let again = tcplab_trace::analyze(&bytes[..], "x").expect("analyze");
        assert_eq!(
            a["connections"][0]["teardown"]["kind"],
            again.connections[0].teardown.kind.as_str()
        );
        if r.timing_miss().is_none() {
            // The scenario's three-way close; from 6.7 on, now and then the four-way of the
            // deferred ACK, which the scenario's expectation on this kernel admits.
            let kind = again.connections[0].teardown.kind;
            match &s.expect.kinds {
                Some(kinds) => assert!(kinds.contains(&kind), "{kind:?} not in {kinds:?}"),
                None => assert_eq!(kind, TeardownKind::ThreeWay),
            }
        }
    }
    // A set cancel flag starts no run; the (empty) batch does not pass.
    let cancel = Arc::new(AtomicBool::new(true));
    let none = run_repeated(
        &s,
        &RunOptions {
            repeat: 5,
            cancel: Some(cancel),
            ..RunOptions::default()
        },
    )
    .expect("cancelled batch is not an error");
    assert!(none.is_empty());
    assert!(!expect::verdict(&s.expect, &none).passed);
}

/// Across a 10 ms link both closes happen within the one-way delay of each other, so the FINs
/// cross every time (RFC 9293 §3.6 case 3), in parallel runs too, over both families.
#[test]
fn netns_simultaneous_over_delayed_link_every_time() {
    let mut s = scenario("close/simultaneous-over-delayed-link.toml");
    assert!(s.link.is_some(), "the scenario runs across a link");
    let runs = run_jobs(&s, 20, 4);
    assert_all_pass(&s, &runs, 20, Drops::None);
    assert!(counted(&runs).all(|r| r.kind == TeardownKind::Simultaneous && r.error().is_none()));
    s.set_knob("ip", "ipv4,ipv6").expect("knob");
    let runs = run_jobs(&s, 10, 4);
    assert_all_pass(&s, &runs, 10, Drops::None);
    // Every other run is IPv6, timing misses included (they are run, just not counted).
    assert_eq!(
        runs.iter()
            .filter(|r| r.ip == tcplab_runner::IpVersion::Ipv6)
            .count(),
        5
    );
}

/// `link.delay_ms` (the knob sweeps use) moves a loopback scenario onto a delayed link: the
/// capture is raw IP from the TUN device, between the documentation addresses, and the
/// handshake takes one round trip of the link.
#[test]
fn netns_link_knob_moves_a_scenario_onto_the_link() {
    let mut s = scenario("seed/seed-three-way.toml");
    s.set_knob("link.delay_ms", "5").expect("knob");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = RunOptions {
        repeat: 4,
        jobs: 2,
        out_dir: Some(dir.path().join("batch")),
        keep_pcaps: true,
        ..RunOptions::default()
    };
    let runs = run_repeated(&s, &opts).expect("runs");
    assert_all_pass(&s, &runs, 4, Drops::None);
    for r in &runs {
        let bytes = std::fs::read(r.pcap.as_ref().expect("pcap kept")).expect("read pcap");
        // Classic pcap header: link type at offset 20 (native endian, as written).
        assert_eq!(
            u32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
            101,
            "LINKTYPE_RAW"
        );
        let a = tcplab_trace::analyze(&bytes[..], "x").expect("analyze");
        let c = &a.connections[0];
        assert_eq!(c.client.ip().to_string(), "192.0.2.1");
        assert_eq!(c.server.ip().to_string(), "192.0.2.2");
        assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    }
    // The server's FIN crosses the link once before the client's FIN+ACK goes back 20 ms
    // later and crosses it again: the close takes the client's delay plus one round trip
    // as seen from the client side, i.e. at least 20 + 5 ms (loopback: about 20 ms).
    for r in &runs {
        let ms = r.close_duration_ns.expect("close measured") as f64 / 1e6;
        assert!(ms >= 24.0, "close took {ms} ms");
    }
}

#[test]
fn netns_shutdown_sends_fin_where_close_sends_rst() {
    let s = scenario("close/client-shutdown-with-unread-data.toml");
    let runs = run_jobs(&s, 10, 2);
    assert_all_pass(&s, &runs, 10, Drops::None);
    // The same run with close(2): the unread answer turns the FIN into an RST.
    let mut closing = s.clone();
    closing.set_knob("client.close", "close").expect("knob");
    let closed = run_jobs(&closing, 10, 2);
    assert!(counted(&closed).count() >= 1, "no run counted");
    for r in counted(&closed) {
        assert_eq!(
            (r.kind, r.active_closer),
            (TeardownKind::Reset, Some(tcplab_runner::Closer::Client)),
            "{:?}",
            r.mismatch()
        );
    }
}

#[test]
fn netns_nodelay_leaves_the_capture_as_it_was() {
    let with = scenario("close/nodelay-looks-the-same.toml");
    let without = scenario("seed/seed-four-way.toml");
    let a = run_jobs(&with, 10, 2);
    assert_all_pass(&with, &a, 10, Drops::None);
    let b = run_jobs(&without, 10, 2);
    assert!(counted(&b).count() >= 1, "no run counted");
    // Same outcome and the same segments: 3 handshake, 2 data + 2 ACKs, 4 teardown.
    let shape =
        |runs: &[tcplab_runner::RunOutcome]| -> std::collections::BTreeSet<(TeardownKind, u64)> {
            counted(runs).map(|r| (r.kind, r.packets)).collect()
        };
    assert_eq!(shape(&a), shape(&b));
}

/// `client.read_delay_ms` lets the server's answer and FIN arrive before the client reads;
/// the FIN's ACK then waits for the delayed-ACK timer (>= 40 ms, tcp_fin's pingpong mode)
/// unless `client.quickack` re-arms TCP_QUICKACK after the read, which sends it at once
/// (~10 ms). The late read is the knob, not the program running late: no timing miss.
#[test]
fn netns_quickack_acks_the_fin_at_a_late_read() {
    for quickack in [true, false] {
        let text = format!(
            "[client]\nread_delay_ms = 10\nclose_delay_ms = 60\nquickack = {quickack}\n\
             [expect]\nkind = \"four-way\"\nactive_closer = \"server\"\n"
        );
        let s = Scenario::parse(&text, Path::new("late-reader.toml")).unwrap();
        let runs = run(&s, 4, false);
        let judged: Vec<f64> = runs
            .iter()
            .filter(|r| r.timing_miss().is_none())
            .map(|r| r.fin_ack_delay_ns.expect("four-way has a separate ACK") as f64 / 1e6)
            .collect();
        assert!(
            !judged.is_empty(),
            "quickack={quickack}: every run missed its timing"
        );
        for ms in judged {
            // The timer's 40 ms minimum against a read at 10 ms (and at most 5 ms late).
            assert_eq!(
                ms < 30.0,
                quickack,
                "quickack={quickack}: FIN acked after {ms} ms"
            );
        }
    }
}
