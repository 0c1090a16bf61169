//! Privileged tests of the delay link: two namespaces, two TUN devices, a relay thread.
//!
//! Only built with `--features netns-tests`. They need root (CAP_SYS_ADMIN + CAP_NET_ADMIN +
//! CAP_NET_RAW) and FAIL without it; they never skip.

#![cfg(feature = "netns-tests")]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tcplab_capture::live::LINKTYPE_RAW;
use tcplab_capture::netns::current_inode;
use tcplab_capture::{CaptureConfig, DelayLink, LiveCapture, Packets, Priority};
use tcplab_client::{run_client, ClientOptions};
use tcplab_server::{Server, ServerOptions};

/// One test at a time: they measure milliseconds, and the leak test counts threads and fds.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// A TCP segment of a raw-IP capture.
#[derive(Debug)]
struct Seg {
    ts_ns: u64,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    payload: usize,
}

/// Parse a raw IPv4/IPv6 packet carrying TCP (no IPv6 extension headers).
fn parse_raw(ts_ns: u64, p: &[u8]) -> Option<Seg> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]));
    let (src, dst, tcp, end): (IpAddr, IpAddr, usize, usize) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            if *p.get(9)? != 6 {
                return None;
            }
            let a = |i: usize| -> Option<IpAddr> {
                Some(IpAddr::from(<[u8; 4]>::try_from(p.get(i..i + 4)?).ok()?))
            };
            (a(12)?, a(16)?, ihl, usize::from(be16(2)?))
        }
        6 => {
            if *p.get(6)? != 6 {
                return None;
            }
            let a = |i: usize| -> Option<IpAddr> {
                Some(IpAddr::from(<[u8; 16]>::try_from(p.get(i..i + 16)?).ok()?))
            };
            (a(8)?, a(24)?, 40, 40 + usize::from(be16(4)?))
        }
        _ => return None,
    };
    let doff = usize::from(p.get(tcp + 12)? >> 4) * 4;
    Some(Seg {
        ts_ns,
        src: SocketAddr::new(src, be16(tcp)?),
        dst: SocketAddr::new(dst, be16(tcp + 2)?),
        flags: *p.get(tcp + 13)?,
        payload: end.saturating_sub(tcp + doff),
    })
}

fn segments(p: &Packets) -> Vec<Seg> {
    assert_eq!(p.link_type, LINKTYPE_RAW, "TUN capture must be raw IP");
    p.records
        .iter()
        .map(|r| parse_raw(r.ts_ns(), &r.data).expect("a TCP packet"))
        .collect()
}

fn listing(segs: &[Seg]) -> String {
    let t0 = segs.first().map_or(0, |s| s.ts_ns);
    segs.iter()
        .map(|s| {
            format!(
                "{:>9.3} ms {} > {} flags {:#04x} len {}",
                (s.ts_ns - t0) as f64 / 1e6,
                s.src,
                s.dst,
                s.flags,
                s.payload
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One seed exchange across `link` (server in the server namespace, client in the client
/// namespace), captured on the client side's TUN device.
fn exchange(link: &DelayLink, server_ip: IpAddr, port: u16) -> Vec<Seg> {
    let mut cap = LiveCapture::open(
        link.client_ns(),
        &CaptureConfig {
            device: link.capture_device().into(),
            filter: format!("tcp port {port}"),
            ..CaptureConfig::default()
        },
    )
    .expect("capture on tun-c");
    let opts = ServerOptions {
        address: server_ip,
        port,
        count: 1,
        accept_timeout_ms: 5000.0,
        ..ServerOptions::default()
    };
    let srv = link
        .server_ns()
        .run(|| Server::bind(&opts))
        .expect("enter server ns")
        .expect("bind on the server side");
    let addr = SocketAddr::new(server_ip, port);
    let server = link
        .server_ns()
        .spawn_with("link-server", Priority::Realtime, move || srv.serve_one())
        .expect("server thread");
    let client = link
        .client_ns()
        .spawn_with("link-client", Priority::Realtime, move || {
            run_client(&ClientOptions::default(), addr)
        })
        .expect("client thread");
    client.join().expect("client joins").expect("client ran");
    server.join().expect("server joins").expect("server ran");
    // Quiet longer than a delayed ACK plus the link's round trip.
    cap.drain(Duration::from_millis(150), Duration::from_secs(3))
        .expect("drain");
    let p = cap.take().expect("take");
    assert!(p.stats.is_clean(), "capture drops: {:?}", p.stats);
    segments(&p)
}

/// Time from the first segment matching `a` to the first later one matching `b`, in ms.
fn gap_ms(segs: &[Seg], a: impl Fn(&Seg) -> bool, b: impl Fn(&Seg) -> bool) -> f64 {
    let i = segs.iter().position(a).expect("first segment present");
    let j = segs[i..]
        .iter()
        .position(b)
        .map(|j| i + j)
        .expect("answer present");
    (segs[j].ts_ns - segs[i].ts_ns) as f64 / 1e6
}

#[test]
fn netns_delay_link_delays_by_the_configured_amount() {
    let _g = serial();
    for delay_ms in [10u64, 3] {
        let link = DelayLink::new(Duration::from_millis(delay_ms)).expect("link");
        let rtt = 2.0 * delay_ms as f64;
        for (server_ip, client_ip, port) in [
            (
                IpAddr::V4(link.server_addr()),
                IpAddr::V4(link.client_addr()),
                60001,
            ),
            (
                IpAddr::V6(link.server_addr_v6()),
                IpAddr::V6(link.client_addr_v6()),
                60002,
            ),
        ] {
            // Several exchanges: the relay runs SCHED_FIFO, but on a VM the host can still
            // hold its vCPU for ms at a time (this Firecracker guest: single SYN/ACK round
            // trips up to 13.5 ms late, medians of five from 0.6 ms to 3 ms late, depending on
            // the minute). So this test asserts what the link guarantees — never early — and
            // only that it is not stuck (median within 10 ms); the relay's accuracy is
            // measured by bench/link.sh (p50/p99 of the delay error) and each run's lateness
            // is judged by the runner from both ends' captures (timing::link_late_ns).
            let (mut syn_rtts, mut req_rtts) = (Vec::new(), Vec::new());
            for k in 0..5u16 {
                let port = port + 10 * k;
                let segs = exchange(&link, server_ip, port);
                let all = listing(&segs);
                let first = segs.first().expect("packets captured");
                assert_eq!(first.flags, SYN, "first packet is the SYN\n{all}");
                assert_eq!(first.src.ip(), client_ip, "client address\n{all}");
                assert_eq!(first.dst, SocketAddr::new(server_ip, port), "\n{all}");
                // SYN out → SYN/ACK back: the kernel's answer, so the gap is the link's two
                // passes alone.
                let syn_rtt = gap_ms(
                    &segs,
                    |s| s.flags == SYN,
                    |s| s.flags == SYN | ACK && s.src.port() == port,
                );
                // Request out → response back: also waits for the server program to wake,
                // read and write (normal priority: 1–2 ms more on this VM now and then).
                let req_rtt = gap_ms(
                    &segs,
                    |s| s.payload > 0 && s.dst.port() == port,
                    |s| s.payload > 0 && s.src.port() == port,
                );
                // Never early: every packet waits its delay.
                for (what, got) in [("SYN → SYN/ACK", syn_rtt), ("request → response", req_rtt)]
                {
                    assert!(
                        got >= rtt - 0.5,
                        "{server_ip} delay {delay_ms} ms: {what} took {got:.3} ms, less than {rtt}\n{all}"
                    );
                }
                syn_rtts.push(syn_rtt);
                req_rtts.push(req_rtt);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (syn, req) = (median(&mut syn_rtts), median(&mut req_rtts));
            eprintln!(
                "{server_ip} delay {delay_ms} ms: SYN RTT median {syn:.3} ms {syn_rtts:?}, request RTT median {req:.3} ms"
            );
            assert!(
                syn <= rtt + 10.0,
                "{server_ip} delay {delay_ms} ms: SYN → SYN/ACK median {syn:.3} ms, want {rtt} (+ at most 10): {syn_rtts:?}"
            );
            assert!(
                req <= rtt + 12.0,
                "{server_ip} delay {delay_ms} ms: request → response median {req:.3} ms, want {rtt} (+ the server's wake-up): {req_rtts:?}"
            );
        }
        assert!(link.is_running());
        let stats = link.close().expect("relay stops cleanly");
        assert_eq!(stats.dropped, 0, "{stats:?}");
        // Two exchanges of at least 8 TCP packets each way... at least 4 each way per family.
        assert!(stats.to_server >= 8 && stats.to_client >= 8, "{stats:?}");
        assert!(
            stats.realtime,
            "the relay runs SCHED_FIFO as root: {stats:?}"
        );
    }
}

/// Threads of this process, fds of this process, interfaces of the host namespace.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    threads: usize,
    fds: BTreeSet<String>,
    host_links: BTreeSet<String>,
    netns: u64,
}

fn footprint() -> Footprint {
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .expect("listable")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    Footprint {
        threads: names("/proc/self/task").len(),
        fds: names("/proc/self/fd"),
        // Netlink-based (if_nameindex): answers for the calling thread's namespace, unlike
        // /sys/class/net, which shows the namespace sysfs was mounted in.
        host_links: nix::net::if_::if_nameindex()
            .expect("if_nameindex")
            .iter()
            .map(|i| i.name().to_string_lossy().into_owned())
            .collect(),
        netns: current_inode().expect("own netns"),
    }
}

/// No thread or fd of this process refers to namespace `inode` any more.
fn assert_released(inode: u64) {
    let target = format!("net:[{inode}]");
    let deadline = Instant::now() + Duration::from_secs(60); // a guard against a hang only
    loop {
        let mut holders = Vec::new();
        for e in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            if std::fs::read_link(e.path().join("ns/net"))
                .is_ok_and(|t| t.to_string_lossy() == target)
            {
                holders.push(e.path().display().to_string());
            }
        }
        for e in std::fs::read_dir("/proc/self/fd").expect("fds").flatten() {
            if std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == target) {
                holders.push(e.path().display().to_string());
            }
        }
        if holders.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{target} still held by {holders:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn netns_delay_link_leaves_nothing_behind() {
    let _g = serial();
    // Warm up once: the first capture or link may lazily create process-wide state.
    drop(DelayLink::new(Duration::from_millis(1)).expect("link"));
    let before = footprint();
    let mut inodes = Vec::new();
    for i in 0..3u16 {
        let link = DelayLink::new(Duration::from_millis(2)).expect("link");
        inodes.push(link.client_ns().inode());
        inodes.push(link.server_ns().inode());
        assert_ne!(link.client_ns().inode(), before.netns);
        assert_ne!(link.server_ns().inode(), before.netns);
        assert_ne!(link.client_ns().inode(), link.server_ns().inode());
        // The devices are inside the namespaces, not on the host.
        let inside = link
            .client_ns()
            .run(|| footprint().host_links)
            .expect("enter");
        assert!(
            inside.contains("tun-c") && !inside.contains("tun-s"),
            "{inside:?}"
        );
        assert!(!footprint().host_links.contains("tun-c"));
        let segs = exchange(&link, IpAddr::V4(link.server_addr()), 60010 + i);
        assert!(segs.len() >= 8, "{}", listing(&segs));
        if i == 2 {
            drop(link); // plain drop: the same cleanup as close()
        } else {
            link.close().expect("clean stop");
        }
    }
    for inode in inodes {
        assert_released(inode);
    }
    // Joined threads can take a moment to leave /proc/self/task. A thread that was counted
    // in `before` may also be a previous test's helper finishing: fewer threads is no leak.
    let deadline = Instant::now() + Duration::from_secs(60); // a guard against a hang only
    loop {
        let now = footprint();
        let settled = now.threads <= before.threads
            && now.fds == before.fds
            && now.host_links == before.host_links
            && now.netns == before.netns;
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "footprint changed:\nbefore {before:?}\nafter  {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn netns_delay_link_stops_with_packets_in_flight() {
    let _g = serial();
    // The longest delay a link takes (1 s): the SYN is still queued in the relay when the
    // link is closed. Waiting for the queue would deliver it; a close that does not wait
    // delivers nothing.
    let link = DelayLink::new(Duration::from_millis(1000)).expect("link");
    let addr = SocketAddr::new(IpAddr::V4(link.server_addr()), 60020);
    let opts = ServerOptions {
        address: addr.ip(),
        port: addr.port(),
        ..ServerOptions::default()
    };
    let _srv = link
        .server_ns()
        .run(|| Server::bind(&opts))
        .expect("enter")
        .expect("bind");
    let client = link
        .client_ns()
        .spawn("link-client", move || {
            run_client(
                &ClientOptions {
                    connect_timeout_ms: 300.0,
                    ..ClientOptions::default()
                },
                addr,
            )
        })
        .expect("client");
    // Until the SYN is in the relay's queue (waited for: a busy machine may start the client
    // late; the deadline is only a guard against a hang).
    let deadline = Instant::now() + Duration::from_secs(60);
    while link.stats().queued == 0 {
        assert!(Instant::now() < deadline, "the SYN never reached the link");
        std::thread::sleep(Duration::from_millis(2));
    }
    // A close that waited for the queue would have delivered the SYN (due ~1 s after it was
    // queued): nothing delivered proves it did not wait, without timing the close itself (a
    // busy machine can take longer than any fixed bound to join threads and drop namespaces).
    let stats = link.close().expect("clean stop");
    assert_eq!(stats.to_server, 0, "close waited for the queue: {stats:?}");
    assert!(
        client.join().expect("joins").is_err(),
        "the client cannot connect across a cut link"
    );
}
