//! Privileged tests of the kernel state trace (feature `netns-tests`; FAIL without root).

#![cfg(feature = "netns-tests")]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tcplab_capture::ktrace::{
    kernel_state_name, own_tracefs_instances, socket_events, time_wait_cookies,
};
use tcplab_capture::{KernelEventKind, KernelTrace, Netns, TraceBackend};
use tcplab_client::ClientOptions;
use tcplab_server::ServerOptions;

fn states(events: &[tcplab_capture::KernelEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            KernelEventKind::SetState { new, .. } => kernel_state_name(new),
            _ => None,
        })
        .collect()
}

/// Reads `c` until the peer's FIN (end of stream): the condition, not a guess at its time.
fn until_end_of_stream(mut c: std::net::TcpStream) -> std::net::TcpStream {
    use std::io::Read;
    c.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    while c.read(&mut buf).expect("read until FIN") > 0 {}
    c
}

/// Polls `ready` until it holds. The deadline is only a guard against a hang, not a bound
/// on speed: a busy machine may take long.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The measurement, as a test: in the seed's three-way close (the server closes at
/// once) the kernel takes the server through FIN_WAIT_2 (it handles the ACK of the FIN+ACK
/// before its FIN) and swaps in a timewait socket (full socket → CLOSED, cookie in
/// TIME_WAIT); the client goes CLOSE_WAIT → LAST_ACK → CLOSED.
#[test]
fn netns_kernel_states_of_a_three_way_close() {
    let port = 61_234;
    let mut trace = KernelTrace::start(&[port]).expect("kernel trace");
    // Root can make a tracefs instance: the trace must not fall back to perf, which misses
    // events on an idle machine.
    assert_eq!(
        trace.backend(),
        TraceBackend::Tracefs,
        "{:?}",
        trace.tracefs_error()
    );
    assert_eq!(own_tracefs_instances().expect("tracefs").len(), 1);
    let out = support::run_pair(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        ServerOptions::default(),
        ClientOptions {
            close_delay_ms: 20.0,
            ..ClientOptions::default()
        },
    )
    .expect("run");
    let cookies = [
        out.client.socket_cookie.expect("client cookie"),
        out.server.socket_cookie.expect("server cookie"),
    ];
    // Generous: only a guard against a hang; a busy machine may run the softirqs late.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !trace.destroyed(&cookies) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let (events, lost) = trace.finish();
    assert_eq!(lost, 0);
    assert_eq!(
        own_tracefs_instances().expect("tracefs"),
        Vec::<String>::new(),
        "the instance outlived the trace"
    );
    let client = socket_events(&events, cookies[0]).expect("client socket destroyed");
    let server = socket_events(&events, cookies[1]).expect("server socket destroyed");
    assert_eq!(
        states(&client),
        [
            "SYN_SENT",
            "ESTABLISHED",
            "CLOSE_WAIT",
            "LAST_ACK",
            "CLOSED"
        ]
    );
    assert_eq!(
        states(&server),
        [
            "SYN_RECEIVED",
            "ESTABLISHED",
            "FIN_WAIT_1",
            "FIN_WAIT_2",
            "CLOSED"
        ]
    );
    // Same clock as the capture: the events fall inside the captured packets' span.
    let first = out.packets.records.first().expect("packets").ts_ns();
    let last = out.packets.records.last().expect("packets").ts_ns();
    for e in client.iter().chain(&server) {
        assert!(
            e.ts_ns + 5_000_000 >= first && e.ts_ns <= last + 5_000_000,
            "{e:?} outside {first}..{last}"
        );
    }
}

/// sock_diag sees the namespace's timewait sockets, with the cookie of the full socket.
#[test]
fn netns_time_wait_keeps_the_cookie() {
    let ns = Netns::new().expect("netns");
    let cookie = ns
        .run(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (s, _) = l.accept().expect("accept");
            let cookie = socket2::SockRef::from(&s).cookie().expect("cookie");
            drop(s); // server closes first: it ends in TIME_WAIT
            drop(until_end_of_stream(c)); // the server's FIN arrived: now the client closes
            wait_until("the server's socket in TIME_WAIT", || {
                time_wait_cookies().expect("sock_diag").contains(&cookie)
            });
            cookie
        })
        .expect("run");
    let tw = ns.run(time_wait_cookies).expect("run").expect("sock_diag");
    assert!(tw.contains(&cookie), "{cookie} not in {tw:?}");
}

/// The exact lookup finds the timewait socket by its 4-tuple and cookie, and nothing for a
/// wrong cookie or a socket that is gone.
#[test]
fn netns_exact_lookup_finds_time_wait_by_cookie() {
    let ns = Netns::new().expect("netns");
    let ((tw, since_close), wrong, gone, server_cookie) = ns
        .run(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (s, peer) = l.accept().expect("accept");
            let local = s.local_addr().expect("local");
            let cookie = socket2::SockRef::from(&s).cookie().expect("cookie");
            let client_cookie = socket2::SockRef::from(&c).cookie().expect("cookie");
            drop(s); // server closes first: it ends in TIME_WAIT, the client's socket is gone
            drop(until_end_of_stream(c)); // after the server's FIN
            let closed = Instant::now();
            let sockets = [(local, peer, cookie), (peer, local, client_cookie)];
            // Both ends done: the server's socket in TIME_WAIT, the client's LAST_ACK over.
            wait_until(
                "TIME_WAIT on the server, nothing left of the client",
                || {
                    let tw = tcplab_capture::ktrace::time_wait_of(&sockets).expect("sock_diag");
                    let client = tcplab_capture::ktrace::socket_state(peer, local, client_cookie)
                        .expect("sock_diag");
                    tw.len() == 1 && client.is_none()
                },
            );
            (
                (
                    tcplab_capture::ktrace::time_wait_of(&sockets).expect("sock_diag"),
                    closed.elapsed(),
                ),
                tcplab_capture::ktrace::socket_state(local, peer, cookie ^ 1).expect("sock_diag"),
                tcplab_capture::ktrace::socket_state(peer, local, client_cookie)
                    .expect("sock_diag"),
                cookie,
            )
        })
        .expect("run");
    assert_eq!(tw.len(), 1, "{tw:?}");
    assert_eq!(tw[0].cookie, server_cookie);
    // Set to TCP_TIMEWAIT_LEN (60 s) when it was entered, after the client's close: the
    // kernel's own remaining time, less what has passed since (however long that was).
    let earliest = 60_000u32.saturating_sub(since_close.as_millis().min(60_000) as u32 + 1_000);
    assert!(
        (earliest..=60_000).contains(&tw[0].remaining_ms),
        "{:?} ({since_close:?} after the close)",
        tw[0]
    );
    assert_eq!(wrong, None);
    assert_eq!(gone, None);
}
