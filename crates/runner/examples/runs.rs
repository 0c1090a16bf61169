//! Developer tool: run scenario files and print counts and rates, without the CLI.
//! `cargo run -p tcplab-runner --release --example runs -- [--pooled] [--jobs N] [--repeat N] FILE...`
use std::path::PathBuf;
use std::time::Instant;
use tcplab_runner::{expect, run_repeated, RunOptions, Scenario};

fn main() {
    let mut pooled = false;
    let mut jobs = 1usize;
    let mut repeat: Option<u32> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pooled" => pooled = true,
            "--jobs" => jobs = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--repeat" => repeat = args.next().and_then(|v| v.parse().ok()),
            _ => files.push(PathBuf::from(a)),
        }
    }
    for f in files {
        let s = match Scenario::load(&f) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let opts = RunOptions {
            repeat: repeat.unwrap_or(s.repeat),
            jobs,
            pooled,
            ..RunOptions::default()
        };
        let t = Instant::now();
        match run_repeated(&s, &opts) {
            Ok(runs) => {
                let secs = t.elapsed().as_secs_f64();
                let v = expect::verdict(&s.expect, &runs);
                let delays: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.fin_ack_delay_ns)
                    .map(|n| n as f64 / 1e6)
                    .collect();
                let (mn, mx) = delays
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), &d| (a.min(d), b.max(d)));
                println!(
                    "{}: {} runs in {:.2}s ({:.0}/s) counts {:?} drops {} passed {} {}{}",
                    s.name(),
                    v.runs,
                    secs,
                    v.runs as f64 / secs,
                    v.counts,
                    v.drops,
                    v.passed,
                    v.message.unwrap_or_default(),
                    if delays.is_empty() {
                        String::new()
                    } else {
                        format!(" fin_ack_delay {mn:.2}..{mx:.2} ms")
                    }
                );
                if let Some(i) = v.first_failure {
                    if let Some(n) = runs.get(i).and_then(|r| r.narration.as_ref()) {
                        println!("{n}");
                    }
                }
                if std::env::var_os("SHOW_STATES").is_some() {
                    if let Some(r) = runs.first() {
                        println!("client {:?}\nserver {:?}", r.client_states, r.server_states);
                    }
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", s.name());
                std::process::exit(2);
            }
        }
    }
}
