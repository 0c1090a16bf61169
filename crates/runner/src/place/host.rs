//! Fresh namespace per run (the default place): every run gets its own anonymous network
//! namespace and its own capture on its `lo`, so runs cannot influence each other. Closing
//! a packet socket costs the kernel tens of milliseconds of *latency* (not CPU), so workers
//! run in parallel and a capture handle is closed on a helper thread while the worker starts
//! the next run; opening one is quick because the capture has no ring
//! ([`LiveCapture::open_socket`]).

use tcplab_capture::{LiveCapture, Netns};

use super::{Reaper, RunPlace};
use crate::outcome::{RunError, RunOptions, RunOutcome, FRESH_PORT};
use crate::run::collect::{
    captured_until_ns, collect_until_complete, fresh_capture_config, to_pcap,
};
use crate::run::finish::{capture_fatal, finish_run, netns_fatal, Captured, RunId};
use crate::run::kernel::{time_wait_here, SharedTrace};
use crate::run::program::{exchange_here, prepare_here, Programs};
use crate::scenario::{IpVersion, Scenario};

/// `--pooled` off and no `[link]`: a fresh namespace per run (the default place).
pub(crate) const ENTRY: super::PlaceEntry = super::PlaceEntry {
    name: "fresh namespace",
    takes: |_, _| true,
    drive: |s, opts, sink| crate::run::drive::drive(&FreshNamespace::new(), s, opts, sink),
};

/// A fresh anonymous namespace per run, client and server on its loopback.
#[derive(Debug)]
pub(crate) struct FreshNamespace {
    /// The process's kernel state recording (shared by its batches).
    kernel: std::sync::Arc<SharedTrace>,
}

impl FreshNamespace {
    pub fn new() -> FreshNamespace {
        FreshNamespace {
            kernel: SharedTrace::of_process(),
        }
    }
}

impl RunPlace for FreshNamespace {
    fn run(
        &self,
        s: &Scenario,
        index: u32,
        ip: IpVersion,
        opts: &RunOptions,
        reaper: &mut Reaper,
    ) -> Result<RunOutcome, RunError> {
        let id = RunId::new(index, ip, FRESH_PORT);
        let ns = Netns::new().map_err(netns_fatal)?;
        let config = fresh_capture_config();
        // A plain packet socket: libpcap's ring would cost an RCU grace period to set up.
        let mut cap = match LiveCapture::open_socket(&ns, &config) {
            Ok(c) => c,
            Err(e) if e.is_permission_denied() => return Err(capture_fatal(e)),
            Err(e) => return Ok(id.failed(format!("capture: {e}"))),
        };
        let mut kernel = self.kernel.recorder(&[&ns]);
        let programs = ns.run(|| match prepare_here(s) {
            Ok(()) => exchange_here(s, ip, FRESH_PORT),
            Err(e) => Programs::failed(e),
        });
        let programs = match programs {
            Ok(p) => p,
            Err(e) if e.is_permission_denied() => return Err(netns_fatal(e)),
            Err(e) => Programs::failed(e.to_string()),
        };
        let cookies = programs.cookies();
        let [collected] = <[_; 1]>::try_from(collect_until_complete(
            &mut [&mut cap],
            config.snaplen,
            || kernel.done(&cookies.list()),
        ))
        .unwrap_or_default();
        let sockets = programs.sockets();
        let time_wait = ns
            .run(|| time_wait_here(&sockets))
            .unwrap_or_else(|e| Err(e.to_string()));
        let until = captured_until_ns(&collected.records);
        let kernel = kernel.finish(cookies.pair(), time_wait, until);
        let link_type = cap.link_type();
        // pcap_close waits in the kernel (packet socket teardown); the namespace goes with it.
        // Neither affects the result.
        reaper.drop_later("tcplab-cap-close", (cap, ns));
        let captured = Captured {
            pcap: to_pcap(link_type, config.snaplen, collected.records),
            drops: collected.drops,
            errors: collected.error.into_iter().collect(),
            server_view: None,
            kernel: Some(kernel),
            script: None,
        };
        finish_run(s, id, captured, programs, opts)
    }
}
