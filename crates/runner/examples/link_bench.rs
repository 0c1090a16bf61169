//! Benchmark of the delayed link and the kernel trace (needs root). Prints:
//!
//! 1. link runs per second (fresh place, `scenarios/link/simultaneous.toml`) at `--jobs` 1, 4, 8;
//! 2. the relay's delay error: for every segment, (time seen at the far end's capture − time
//!    seen at the near end's capture) − the link's delay, p50/p99/max, idle and with two
//!    busy-looping threads per core (load);
//! 3. the kernel trace's cost: KernelTrace start and finish (a private tracefs instance:
//!    mount, mkdir, filter, enable; drain, rmdir), once per batch, and fresh loopback
//!    runs per second with it (bench/link.sh compares them with a build without it).
//!
//! ```sh
//! cargo run --release -p tcplab-runner --example link_bench [RUNS]
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tcplab_capture::KernelTrace;
use tcplab_runner::{run_repeated, RunOptions, Scenario};
use tcplab_trace::{Analysis, Side};

fn load(rel: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// (seq, ack, flags, len, from) → capture time, per view.
type Key = (u32, u32, u8, u32, bool);

fn times(a: &Analysis) -> Vec<(Key, i64)> {
    a.connections
        .iter()
        .flat_map(|c| c.packets.iter())
        .map(|p| {
            (
                (p.seq.0, p.ack.0, p.flags.0, p.len, p.from == Side::Client),
                p.ts_ns,
            )
        })
        .collect()
}

/// Delay errors (ms) of one run's segments: matched by content across the two captures.
fn delay_errors(dir: &Path, delay_ms: f64, out: &mut Vec<f64>) {
    let read = |f: &str| -> Option<Analysis> {
        let b = std::fs::read(dir.join(f)).ok()?;
        tcplab_trace::analyze(&b[..], f).ok()
    };
    let (Some(c), Some(s)) = (read("capture.pcap"), read("capture-server.pcap")) else {
        return;
    };
    let (ct, st) = (times(&c), times(&s));
    for (k, t_client) in &ct {
        // The first match only: a retransmission has the same key.
        if ct.iter().filter(|(k2, _)| k2 == k).count() != 1 {
            continue;
        }
        if let Some((_, t_server)) = st.iter().find(|(k2, _)| k2 == k) {
            let one_way = if k.4 {
                t_server - t_client
            } else {
                t_client - t_server
            };
            out.push(one_way as f64 / 1e6 - delay_ms);
        }
    }
}

fn batch(s: &Scenario, runs: u32, jobs: usize, keep: Option<&Path>) -> f64 {
    let opts = RunOptions {
        repeat: runs,
        jobs,
        out_dir: keep.map(Path::to_path_buf),
        keep_pcaps: keep.is_some(),
        ..RunOptions::default()
    };
    let t0 = Instant::now();
    let r = run_repeated(s, &opts).unwrap_or_else(|e| panic!("{e}"));
    let dt = t0.elapsed().as_secs_f64();
    let failed = r.iter().filter(|o| o.mismatch().is_some()).count();
    println!(
        "  {}: {runs} runs, --jobs {jobs}: {dt:.2} s = {:.1} runs/s ({failed} failed)",
        s.name(),
        f64::from(runs) / dt
    );
    f64::from(runs) / dt
}

fn relay_error(s: &Scenario, runs: u32, label: &str) {
    let dir = std::env::temp_dir().join(format!("tcplab-link-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    batch(s, runs, 4, Some(&dir));
    let mut errs = Vec::new();
    let delay = s.link.as_ref().map_or(0.0, |l| l.delay_ms.0);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        delay_errors(&e.path(), delay, &mut errs);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let n = errs.len();
    println!(
        "  relay delay error ({label}, {n} segments): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(&mut errs, 0.5),
        pct(&mut errs, 0.99),
        pct(&mut errs, 1.0)
    );
}

fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let link = load("link/simultaneous.toml");
    println!("1. link runs per second (fresh)");
    for jobs in [1, 4, 8] {
        batch(&link, runs, jobs, None);
    }
    println!("2. relay delay error (far-end capture − near-end capture − delay)");
    relay_error(&link, runs / 2, "idle");
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs: Vec<_> = (0..2 * cores)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    relay_error(&link, runs / 2, &format!("{} busy threads", 2 * cores));
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    println!("3. kernel trace cost");
    let n = 20;
    let (mut start, mut finish) = (0.0, 0.0);
    for _ in 0..n {
        let t0 = Instant::now();
        let mut t = KernelTrace::start(&[60000]).unwrap_or_else(|e| panic!("{e}"));
        let t1 = Instant::now();
        t.poll();
        let _ = t.finish();
        start += (t1 - t0).as_secs_f64();
        finish += t1.elapsed().as_secs_f64();
    }
    println!(
        "  KernelTrace start {:.1} ms + poll/finish {:.1} ms (once per batch: a batch shares one)",
        start * 1e3 / f64::from(n),
        finish * 1e3 / f64::from(n)
    );
    let seed = load("seed/seed-three-way.toml");
    for jobs in [1, 8] {
        batch(&seed, runs, jobs, None);
    }
    println!("  (compare with the same runs of a build without kernel states: bench/link.sh)");
}
