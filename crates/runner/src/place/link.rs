//! A delayed link per run (scenario table `[link]`): instead of one namespace and `lo`, a
//! run gets a [`DelayLink`]: a client-side and a server-side namespace joined by TUN devices
//! whose relay delays every packet by `delay_ms` one way. The server listens on 192.0.2.2
//! (2001:db8::2) in the server side, the client connects from the client side, and the
//! capture is taken at both ends: the client side's TUN device (raw IP, `capture.pcap`) and
//! the server side's (`capture-server.pcap`); both are classified. The relay applies the
//! scenario's loss, jitter and faults ([`tcplab_capture::impair`]), seeded per run. Both
//! programs run SCHED_FIFO there, so their close delays hold on a loaded machine. Fresh runs
//! only: the pooled place refuses such a scenario.

use std::net::IpAddr;

use tcplab_capture::{CaptureConfig, DelayLink, LiveCapture, NetnsError, Priority};
use tcplab_client::run_client;
use tcplab_server::Server;

use super::{Reaper, RunPlace};
use crate::outcome::{RunError, RunOptions, RunOutcome, FRESH_PORT};
use crate::run::collect::{
    captured_until_ns, collect_until_settled, fresh_capture_config, to_pcap,
};
use crate::run::finish::{capture_fatal, finish_run, link_fatal, netns_fatal, Captured, RunId};
use crate::run::kernel::{time_wait_here, SharedTrace};
use crate::run::program::{client_options, programs, server_options, set_sysctls_here, Programs};
use crate::scenario::{IpVersion, LinkKnobs, Scenario};

/// How long after a scripted segment arrives its answer is awaited (an RST or ACK goes out
/// at once; this is the machine's scheduling margin, not a kernel timer).
const SCRIPT_ANSWER: std::time::Duration = std::time::Duration::from_millis(50);

/// A scenario with a `[link]`.
pub(crate) const ENTRY: super::PlaceEntry = super::PlaceEntry {
    name: "delayed link",
    takes: |s, _| s.link.is_some(),
    drive: |s, opts, sink| {
        let Some(knobs) = s.link.clone() else {
            return Err(RunError::Setup("no [link] in the scenario".into()));
        };
        let place = DelayedLink {
            knobs,
            kernel: SharedTrace::of_process(),
        };
        crate::run::drive::drive(&place, s, opts, sink)
    },
};

/// A fresh [`DelayLink`] per run.
#[derive(Debug)]
pub(crate) struct DelayedLink {
    /// The scenario's `[link]` table.
    pub knobs: LinkKnobs,
    /// The process's kernel state recording (shared by its batches).
    pub kernel: std::sync::Arc<SharedTrace>,
}

impl RunPlace for DelayedLink {
    fn run(
        &self,
        s: &Scenario,
        index: u32,
        ip: IpVersion,
        opts: &RunOptions,
        reaper: &mut Reaper,
    ) -> Result<RunOutcome, RunError> {
        let id = RunId::new(index, ip, FRESH_PORT);
        let link = DelayLink::with_script(
            self.knobs.delay(),
            self.knobs.impairments(index),
            self.knobs.script(),
        )
        .map_err(link_fatal)?;
        let open = |ns, device: &str| {
            let config = CaptureConfig {
                device: device.into(),
                ..fresh_capture_config()
            };
            LiveCapture::open(ns, &config)
        };
        let caps = open(link.client_ns(), link.capture_device())
            .and_then(|c| open(link.server_ns(), link.server_capture_device()).map(|sc| (c, sc)));
        let (mut cap, mut server_cap) = match caps {
            Ok(c) => c,
            Err(e) if e.is_permission_denied() => return Err(capture_fatal(e)),
            Err(e) => return Ok(id.failed(format!("capture: {e}"))),
        };
        let snaplen = fresh_capture_config().snaplen;
        let mut kernel = self.kernel.recorder(&[link.client_ns(), link.server_ns()]);
        let programs = match exchange_over_link(s, ip, &link, FRESH_PORT) {
            Ok(p) => p,
            Err(e) if e.is_permission_denied() => return Err(netns_fatal(e)),
            Err(e) => Programs::failed(e.to_string()),
        };
        // Both ends' captures complete, and both sockets gone in the kernel: a lost final
        // ACK shows in the client's view at once, the server's retransmitted FIN an RTO later.
        let cookies = programs.cookies();
        // A scripted segment may be due after the close looks complete: wait for it to go
        // out and for the kernel's answer to come back.
        let collected = collect_until_settled(
            &mut [&mut cap, &mut server_cap],
            snaplen,
            || kernel.done(&cookies.list()),
            || link.script_settled(SCRIPT_ANSWER),
        );
        let [client_view, server_view] = <[_; 2]>::try_from(collected).unwrap_or_default();
        let sockets = programs.sockets();
        let time_wait = [link.client_ns(), link.server_ns()]
            .iter()
            .map(|ns| {
                ns.run(|| time_wait_here(&sockets))
                    .unwrap_or_else(|e| Err(e.to_string()))
            })
            .collect::<Result<Vec<Vec<_>>, String>>()
            .map(|v| v.concat());
        let until =
            captured_until_ns(&client_view.records).max(captured_until_ns(&server_view.records));
        let kernel = kernel.finish(cookies.pair(), time_wait, until);
        let link_type = cap.link_type();
        let server_link_type = server_cap.link_type();
        let link_stats = link.stats();
        let script = (!self.knobs.script().is_empty()).then(|| link.script());
        let link_error = if !link.is_running() {
            Some("the delay link's relay stopped during the run".to_owned())
        } else if link_stats.dropped > 0 {
            Some(format!(
                "the delay link dropped {} packet(s) it should have carried",
                link_stats.dropped
            ))
        } else {
            None
        };
        // As in the fresh namespace: closing the captures, the TUN devices and two
        // namespaces waits in the kernel and does not affect the result.
        reaper.drop_later("tcplab-link-close", (cap, server_cap, link));
        let captured = Captured {
            pcap: to_pcap(link_type, snaplen, client_view.records),
            drops: client_view.drops,
            errors: [client_view.error, server_view.error, link_error]
                .into_iter()
                .flatten()
                .collect(),
            server_view: Some((
                to_pcap(server_link_type, snaplen, server_view.records),
                server_view.drops,
            )),
            kernel: Some(kernel),
            script,
        };
        finish_run(s, id, captured, programs, opts)
    }
}

/// Set the sysctls on both sides, bind the server in the server-side namespace, and run the
/// client in the client-side namespace against it.
///
/// Both programs run on SCHED_FIFO threads ([`Priority::Realtime`]), like the link's relay:
/// the scenario's promise is "both close within the one-way delay of each other", and on a
/// loaded machine a normal thread waking from its close delay can be late by more than that
/// (measured: 24 ms late with four parallel runs and three CPU hogs on two cores).
fn exchange_over_link(
    s: &Scenario,
    ip: IpVersion,
    link: &DelayLink,
    port: u16,
) -> Result<Programs, NetnsError> {
    let server_ip = match ip {
        IpVersion::Ipv4 => IpAddr::V4(link.server_addr()),
        IpVersion::Ipv6 => IpAddr::V6(link.server_addr_v6()),
    };
    if let Err(e) = link.client_ns().run(|| set_sysctls_here(s))? {
        return Ok(Programs::failed(e));
    }
    let sopts = server_options(s, server_ip, port);
    let server = match link
        .server_ns()
        .run(|| set_sysctls_here(s).map(|()| Server::bind(&sopts)))?
    {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => return Ok(Programs::failed(format!("server: {e}"))),
        Err(e) => return Ok(Programs::failed(e)),
    };
    // The listening socket is bound (and listening) in the server-side namespace; the
    // client's socket is created by a thread in the client-side namespace.
    let addr = server.local_addr();
    let priority = if tcplab_capture::netns::realtime_allowed() {
        Priority::Realtime
    } else {
        crate::notice::notice(
            "real-time priority (SCHED_FIFO, needs CAP_SYS_NICE) is not available: link runs \
             use normal priority, so close delays may be late on a busy machine",
        );
        Priority::Normal
    };
    let server = std::sync::Arc::new(server);
    let serving = std::sync::Arc::clone(&server);
    let server_thread = link
        .server_ns()
        .spawn_with("tcplab-server", priority, move || serving.serve_one())?;
    let copts = client_options(s);
    let abandon = copts.abandon_connect_ms.is_some();
    let client = link
        .client_ns()
        .spawn_with("tcplab-client", priority, move || run_client(&copts, addr));
    // If the client thread could not start, the server gives up after its accept timeout.
    let client = client.and_then(|c| c.join());
    if abandon {
        // The client closed in SYN_SENT: no connection reaches accept(2). Wake it (EINVAL)
        // and report the client alone: the server's side is the kernel's (SYN-ACK, RST).
        let _ = server.stop_accepting();
        let _ = server_thread.join();
        let mut p = Programs::default();
        match client? {
            Ok(c) => p.client = Some(c),
            Err(e) => p.error = Some(format!("client: {e}")),
        }
        return Ok(p);
    }
    let served = server_thread.join();
    // A forged SYN toward the server (`[[link.inject]]` flags "S") meets the listener as a
    // peer's new connection would: keep listening until it has crossed (its moment has
    // passed by now; then `after_ms` and the link's delay, plus a margin), or the kernel
    // could only answer it from TIME_WAIT for want of a listener.
    if let Some(hold) = listener_hold(s) {
        std::thread::sleep(hold);
    }
    drop(server);
    Ok(programs(
        client?.map_err(|e| e.to_string()),
        served?.map_err(|e| e.to_string()),
    ))
}

/// How long the listener stays open after the programs are done: for a scenario that forges
/// a SYN to the server, the latest such SYN's `after_ms` + two link delays + 100 ms.
fn listener_hold(s: &Scenario) -> Option<std::time::Duration> {
    let link = s.link.as_ref()?;
    link.injects
        .iter()
        .filter_map(|i| match i.0.action {
            tcplab_capture::InjectAction::Forge(f)
                if f.flags.syn() && f.to == tcplab_capture::End::Server =>
            {
                Some(i.0.after)
            }
            _ => None,
        })
        .max()
        .map(|after| after + 2 * link.delay() + std::time::Duration::from_millis(100))
}
