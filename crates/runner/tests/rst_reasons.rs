//! The kernel's own reason for each RST of a live run (`tcp:tcp_send_reset`'s `reason`, Linux
//! 6.10 and later; "not reported by this kernel" before), in the run's record, its
//! analysis.json and its narration (feature `netns-tests`; they FAIL without privileges).
#![cfg(feature = "netns-tests")]

use std::path::{Path, PathBuf};
use tcplab_runner::{run_repeated, RunOptions, Scenario};

fn scenario(rel: &str) -> Scenario {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn netns_each_rst_carries_the_kernels_reason() {
    let named = tcplab_capture::ktrace::reset_reasons_reported()
        .expect("the tcp_send_reset tracepoint's format is readable");
    // What the kernel's own code path names (net/ipv4/tcp.c, tcp_ipv4.c): close with
    // SO_LINGER 0 goes through tcp_disconnect (TCP_STATE), close with unread data resets
    // (TCP_ABORT_ON_CLOSE), and a FIN to a socket that fin_timeout has removed finds none.
    let want = |name: &str| {
        if named {
            name.to_owned()
        } else {
            "not reported by this kernel".to_owned()
        }
    };
    let out = tempfile::tempdir().unwrap();
    for (file, sender, reason) in [
        ("reset/client-linger0.toml", 0, "TCP_STATE"),
        ("reset/server-linger0.toml", 1, "TCP_STATE"),
        ("reset/client-unread-data.toml", 0, "TCP_ABORT_ON_CLOSE"),
        ("reset/server-unread-data.toml", 1, "TCP_ABORT_ON_CLOSE"),
        ("orphan/fin-timeout-expired.toml", 0, "NO_SOCKET"),
    ] {
        let s = scenario(file);
        let opts = RunOptions {
            repeat: 2,
            jobs: 2,
            out_dir: Some(out.path().join(s.name())),
            keep_pcaps: true,
            ..RunOptions::default()
        };
        let runs = run_repeated(&s, &opts).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        let counted: Vec<_> = runs.iter().filter(|o| o.timing_miss().is_none()).collect();
        // The batch counts them (the human output's `kernel's RST reasons:` line).
        let v = tcplab_runner::expect::verdict(&s.expect, &runs);
        let who = if sender == 0 { "client" } else { "server" };
        let key = format!("{who} {}", want(reason));
        assert_eq!(
            v.rst_reasons.keys().collect::<Vec<_>>(),
            [&key],
            "{}",
            s.name()
        );
        assert_eq!(v.rst_reasons[&key], counted.len() as u64, "{}", s.name());
        assert!(!counted.is_empty(), "{}: no run counted", s.name());
        for o in counted {
            assert!(
                o.kernel.as_ref().is_some_and(|k| k.source.is_some()),
                "{}: {:?}",
                s.name(),
                o.kernel
            );
            let r = o.record();
            let (mine, other) = if sender == 0 {
                (&r.client, &r.server)
            } else {
                (&r.server, &r.client)
            };
            assert_eq!(mine.rst_reasons, Some(vec![want(reason)]), "{}", s.name());
            assert_eq!(other.rst_reasons, Some(vec![]), "{}", s.name());
            // The run's files say it too.
            let dir = o.dir.as_ref().expect("kept");
            let a: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap()).unwrap();
            let k = &a["connections"][0]["rst_cause"][0]["kernel_reason"];
            if named {
                assert_eq!(k["reason"], reason, "{}: {k}", s.name());
            } else {
                assert_eq!(
                    k["missing"],
                    "not reported by this kernel",
                    "{}: {k}",
                    s.name()
                );
            }
            let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
            assert!(
                report.contains(&format!("kernel's reason: {}", want(reason))),
                "{}: {report}",
                s.name()
            );
        }
    }
}
