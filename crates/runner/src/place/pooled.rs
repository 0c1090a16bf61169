//! One namespace and one capture for the whole batch. Each run uses a fresh server port from
//! [`POOL_PORTS`] (outside the ephemeral range used by clients), and packets are split per
//! run by that port. What could leak between runs is pinned ([`PINNED_SYSCTLS`]: no TCP
//! metrics cache), and `netns_pooled_matches_fresh` checks that both places give the same
//! outcomes on the deterministic scenarios. Workers live inside the shared namespace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::Scope;
use std::time::{Duration, Instant};

use tcplab_capture::{CaptureConfig, LiveCapture, Netns, Readable, Record};

use super::{Reaper, RunPlace};
use crate::outcome::{
    RunError, RunOptions, RunOutcome, COMPLETE_TIMEOUT, PINNED_SYSCTLS, POOL_PORTS,
};
use crate::run::collect::{
    analyze_pcap, captured_until_ns, teardown_complete, to_pcap, POLL_TIMEOUT, RECORD_GRACE,
};
use crate::run::finish::{capture_fatal, finish_run, netns_fatal, Captured, RunId};
use crate::run::kernel::{time_wait_here, SharedTrace};
use crate::run::program::exchange_here;
use crate::scenario::{IpVersion, Scenario};

/// `--pooled`.
pub(crate) const ENTRY: super::PlaceEntry = super::PlaceEntry {
    name: "pooled namespace",
    takes: |_, opts| opts.pooled,
    drive: |s, opts, sink| crate::run::drive::drive(&SharedNamespace::open(s)?, s, opts, sink),
};

/// The shared namespace and capture of a pooled batch. Any worker that needs packets polls
/// the capture and files every frame under its run's server port.
pub(crate) struct SharedNamespace {
    ns: Netns,
    /// The process's kernel state recording (attributed by socket cookie, so runs sharing the
    /// namespace still get exactly their own sockets).
    kernel: std::sync::Arc<SharedTrace>,
    state: Mutex<PoolState>,
    next_port: AtomicU32,
    snaplen: u32,
    /// Waits for the capture to have packets without holding `state`.
    readable: Readable,
    /// Reads of the capture so far: a worker that finds another one read since it looked
    /// goes round again at once instead of waiting for the next packet.
    generation: AtomicU64,
}

struct PoolState {
    cap: LiveCapture,
    buckets: HashMap<u16, Vec<Record>>,
    /// Frames for no registered port (should stay 0).
    stray: u64,
    /// Kernel drops since the capture opened.
    dropped: u64,
}

impl std::fmt::Debug for SharedNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNamespace")
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

impl SharedNamespace {
    /// The namespace (pinned and scenario sysctls set) and its capture.
    pub fn open(s: &Scenario) -> Result<SharedNamespace, RunError> {
        if s.link.is_some() {
            // Each run needs its own delay link (two namespaces); one shared link would need
            // per-run routing of the server side. Not supported: say so instead of running
            // on loopback.
            return Err(RunError::Setup(format!(
                "{}: scenarios with [link] run in fresh mode only (drop --pooled)",
                s.name()
            )));
        }
        let ns = Netns::new().map_err(netns_fatal)?;
        for (k, v) in PINNED_SYSCTLS
            .iter()
            .map(|(k, v)| (*k, *v))
            .chain(s.sysctl.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            ns.set_sysctl(k, v).map_err(netns_fatal)?;
        }
        let route = s.netns.loopback_route();
        if !route.is_empty() {
            ns.run(move || tcplab_capture::netns::set_loopback_route_metrics_here(route))
                .and_then(|r| r)
                .map_err(netns_fatal)?;
        }
        let config = CaptureConfig {
            filter: format!("tcp portrange {}-{}", POOL_PORTS.start, POOL_PORTS.end - 1),
            ..CaptureConfig::default()
        };
        let cap = LiveCapture::open(&ns, &config).map_err(capture_fatal)?;
        let readable = cap
            .readable()
            .map_err(|e| RunError::Setup(format!("capture: dup: {e}")))?;
        Ok(SharedNamespace {
            ns,
            kernel: SharedTrace::of_process(),
            state: Mutex::new(PoolState {
                cap,
                buckets: HashMap::new(),
                stray: 0,
                dropped: 0,
            }),
            next_port: AtomicU32::new(0),
            snaplen: config.snaplen,
            readable,
            generation: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, PoolState>, RunError> {
        self.state
            .lock()
            .map_err(|_| RunError::Setup("pooled capture state poisoned by a panic".into()))
    }

    fn next_port(&self) -> u16 {
        let span = u32::from(POOL_PORTS.end - POOL_PORTS.start);
        let n = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
        // n < span <= u16::MAX, so the sum stays in POOL_PORTS.
        POOL_PORTS.start + u16::try_from(n).unwrap_or(0)
    }

    /// Read everything the capture has and file it by port.
    fn poll(st: &mut PoolState) -> Result<(), String> {
        let p = st.cap.take().map_err(|e| format!("capture: {e}"))?;
        st.dropped += u64::from(p.stats.dropped) + u64::from(p.stats.if_dropped);
        for r in p.records {
            let port = r.tcp_ports().and_then(|(a, b)| {
                if POOL_PORTS.contains(&a) {
                    Some(a)
                } else if POOL_PORTS.contains(&b) {
                    Some(b)
                } else {
                    None
                }
            });
            match port.and_then(|p| st.buckets.get_mut(&p)) {
                Some(v) => v.push(r),
                None => st.stray += 1,
            }
        }
        Ok(())
    }
}

impl RunPlace for SharedNamespace {
    /// Pooled workers live in the shared namespace: threads they start inherit it.
    /// `Netns::spawn` takes `'static` closures while workers borrow the batch state, so the
    /// worker is a scoped thread waiting inside `Netns::run` while the namespace thread does
    /// the work.
    fn spawn_worker<'scope, 'env, F>(
        &'env self,
        sc: &'scope Scope<'scope, 'env>,
        worker: usize,
        body: F,
    ) -> Result<(), RunError>
    where
        F: FnOnce() + Send + 'scope,
    {
        std::thread::Builder::new()
            .name(format!("tcplab-pool-{worker}"))
            .spawn_scoped(sc, move || {
                // A failure to enter the namespace means the worker does no run; the batch
                // then ends with fewer outcomes, which the verdict reports.
                let _ = self.ns.run(body);
            })
            .map(|_| ())
            .map_err(|e| RunError::Setup(format!("spawning a pooled worker: {e}")))
    }

    /// One run; the calling thread is a pooled worker inside the namespace.
    fn run(
        &self,
        s: &Scenario,
        index: u32,
        ip: IpVersion,
        opts: &RunOptions,
        _reaper: &mut Reaper,
    ) -> Result<RunOutcome, RunError> {
        let port = self.next_port();
        let id = RunId::new(index, ip, port);
        let (link_type, dropped_before) = {
            let mut st = self.lock()?;
            // A port comes round again only after POOL_PORTS.len() runs; anything still filed
            // under it belongs to a finished run.
            st.buckets.insert(port, Vec::new());
            (st.cap.link_type(), st.dropped)
        };
        let mut kernel = self.kernel.recorder(&[&self.ns]);
        let programs = exchange_here(s, ip, port);
        let cookies = programs.cookies();
        let mut deadline = Instant::now() + COMPLETE_TIMEOUT;
        let mut grace_started = false;
        let mut capture_error = None;
        let mut seen = 0;
        let mut complete = false;
        let (records, drops) = loop {
            let generation = self.generation.load(Ordering::Acquire);
            let recs = {
                let mut st = self.lock()?;
                if let Err(e) = SharedNamespace::poll(&mut st) {
                    capture_error = Some(e);
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                // Only a run with new packets is classified again.
                match st.buckets.get(&port) {
                    Some(v) if v.len() != seen => {
                        seen = v.len();
                        Some(v.clone())
                    }
                    _ => None,
                }
            };
            // Classify outside the lock: other workers keep polling meanwhile.
            if let Some(recs) = recs {
                complete = analyze_pcap(&to_pcap(link_type, self.snaplen, recs), "capture.pcap")
                    .map(|a| teardown_complete(&a))
                    .unwrap_or(false);
            }
            let done = complete && kernel.done(&cookies.list());
            if done || capture_error.is_some() || Instant::now() >= deadline {
                let mut st = self.lock()?;
                if let Err(e) = SharedNamespace::poll(&mut st) {
                    capture_error.get_or_insert(e);
                }
                let recs = st.buckets.remove(&port).unwrap_or_default();
                break (recs, st.dropped - dropped_before);
            }
            if complete {
                // Only the kernel trace's record is awaited: it follows the final ACK within
                // µs. A record that never comes must not hold the run for COMPLETE_TIMEOUT.
                if !grace_started {
                    grace_started = true;
                    deadline = deadline.min(Instant::now() + RECORD_GRACE);
                }
                std::thread::sleep(Duration::from_micros(50));
            } else if self.generation.load(Ordering::Acquire) == generation.wrapping_add(1) {
                // No other worker read the capture since this one did: wait for a packet.
                self.readable.wait(POLL_TIMEOUT);
            }
        };
        // This worker thread is inside the shared namespace: sock_diag sees it directly.
        let until = captured_until_ns(&records);
        let kernel = kernel.finish(cookies.pair(), time_wait_here(&programs.sockets()), until);
        let captured = Captured {
            pcap: to_pcap(link_type, self.snaplen, records),
            drops,
            errors: capture_error.into_iter().collect(),
            server_view: None,
            kernel: Some(kernel),
            script: None,
        };
        finish_run(s, id, captured, programs, opts)
    }
}
