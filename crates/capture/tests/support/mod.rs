//! Shared by the `netns_*` tests and `examples/make-test-captures.rs`: run the seed's server and
//! client inside a fresh namespace under a live capture, and read classic pcap bytes back.

#![allow(dead_code)] // each user takes a different subset

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tcplab_capture::{CaptureConfig, LiveCapture, Netns, Packets, Priority};
use tcplab_client::{run_client, ClientOptions, ClientReport};
use tcplab_server::{ConnectionReport, Server, ServerOptions};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// Everything one run produced.
#[derive(Debug)]
pub struct Outcome {
    pub packets: Packets,
    pub pcap: Vec<u8>,
    pub server: ConnectionReport,
    pub client: ClientReport,
    pub ns_inode: u64,
    pub open_latency: Duration,
    pub close_latency: Duration,
}

/// Sysctls pinned in every test namespace (namespace-local; the host is never written).
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.tcp_no_metrics_save", "1"),
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.ipv4.tcp_sack", "1"),
];

/// Fresh namespace + capture + one server connection + one client connection.
pub fn run_pair(
    address: IpAddr,
    port: u16,
    server: ServerOptions,
    client: ClientOptions,
) -> Result<Outcome, BoxError> {
    let ns = Netns::new()?;
    for (k, v) in SYSCTLS {
        ns.set_sysctl(k, v)?;
    }
    let cap = LiveCapture::open(
        &ns,
        &CaptureConfig {
            filter: format!("tcp port {port}"),
            ..CaptureConfig::default()
        },
    )?;
    let opts = ServerOptions {
        address,
        port,
        count: 1,
        accept_timeout_ms: 5000.0,
        ..server
    };
    let open_latency = cap.open_latency();
    // The listening socket is created inside the namespace; the thread serving it is too.
    let srv = ns.run(|| Server::bind(&opts))??;
    let addr = SocketAddr::new(address, srv.local_addr().port());
    // Real-time threads: the close delays must hold on a busy machine (see `Priority`).
    let server_thread =
        ns.spawn_with("test-server", Priority::Realtime, move || srv.serve_one())?;
    let client_thread = ns.spawn_with("test-client", Priority::Realtime, move || {
        run_client(&client, addr)
    })?;
    let client = client_thread.join()??;
    let server = server_thread.join()??;
    // 100 ms of silence: longer than the 40 ms minimum delayed ACK.
    let done = cap.finish(Duration::from_millis(100), Duration::from_secs(3))?;
    Ok(Outcome {
        pcap: done.packets.to_pcap(),
        packets: done.packets,
        server,
        client,
        ns_inode: ns.inode(),
        open_latency,
        close_latency: done.close_latency,
    })
}

// ---------------------------------------------------------------------------------------------
// A minimal classic-pcap reader, independent of the library's writer (so the tests check the
// bytes, not the writer against itself).
// ---------------------------------------------------------------------------------------------

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// One TCP segment read from the pcap bytes.
#[derive(Debug, Clone)]
pub struct Seg {
    pub ts_ns: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: u8,
    pub payload: usize,
}

impl Seg {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }
}

/// Parse a nanosecond classic pcap with link type EN10MB into TCP segments.
pub fn parse_pcap(b: &[u8]) -> Result<Vec<Seg>, String> {
    let u32le = |i: usize| -> Result<u32, String> {
        b.get(i..i + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
            .ok_or_else(|| format!("truncated at {i}"))
    };
    if u32le(0)? != 0xa1b2_3c4d {
        return Err("not a little-endian nanosecond pcap".into());
    }
    if u32le(20)? != 1 {
        return Err(format!("link type {} is not EN10MB", u32le(20)?));
    }
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let ts = u64::from(u32le(off)?) * 1_000_000_000 + u64::from(u32le(off + 4)?);
        let incl = u32le(off + 8)? as usize;
        let orig = u32le(off + 12)? as usize;
        let frame = b
            .get(off + 16..off + 16 + incl)
            .ok_or_else(|| format!("record at {off} truncated"))?;
        off += 16 + incl;
        out.push(parse_frame(ts, frame, orig)?);
    }
    Ok(out)
}

fn parse_frame(ts_ns: u64, f: &[u8], orig: usize) -> Result<Seg, String> {
    let get = |i: usize| f.get(i).copied().ok_or_else(|| "short frame".to_string());
    let be16 = |i: usize| -> Result<u16, String> { Ok(u16::from_be_bytes([get(i)?, get(i + 1)?])) };
    let (src_ip, dst_ip, tcp, ip_payload_end): (IpAddr, IpAddr, usize, usize) = match be16(12)? {
        0x0800 => {
            let ihl = usize::from(get(14)? & 0x0f) * 4;
            let total = usize::from(be16(16)?);
            let a = |i: usize| -> Result<IpAddr, String> {
                Ok(IpAddr::from([
                    get(i)?,
                    get(i + 1)?,
                    get(i + 2)?,
                    get(i + 3)?,
                ]))
            };
            (a(26)?, a(30)?, 14 + ihl, 14 + total)
        }
        0x86dd => {
            let plen = usize::from(be16(18)?);
            let a = |i: usize| -> Result<IpAddr, String> {
                let mut x = [0u8; 16];
                for (k, byte) in x.iter_mut().enumerate() {
                    *byte = get(i + k)?;
                }
                Ok(IpAddr::from(x))
            };
            (a(22)?, a(38)?, 54, 54 + plen)
        }
        t => return Err(format!("ethertype {t:#06x}")),
    };
    let _ = orig;
    let doff = usize::from(get(tcp + 12)? >> 4) * 4;
    Ok(Seg {
        ts_ns,
        src: SocketAddr::new(src_ip, be16(tcp)?),
        dst: SocketAddr::new(dst_ip, be16(tcp + 2)?),
        flags: get(tcp + 13)?,
        payload: ip_payload_end.saturating_sub(tcp + doff),
    })
}

/// tcpdump-like flag string for messages: `S.`, `F.`, `R`, `P.`.
pub fn flag_str(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(SYN, 'S'), (FIN, 'F'), (RST, 'R'), (PSH, 'P')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if f & ACK != 0 {
        s.push('.');
    }
    s
}

/// One line per segment, for assertion messages.
pub fn listing(segs: &[Seg]) -> String {
    let t0 = segs.first().map_or(0, |s| s.ts_ns);
    segs.iter()
        .map(|s| {
            format!(
                "{:>10.3} ms {} > {} [{}] len {}",
                (s.ts_ns - t0) as f64 / 1e6,
                s.src,
                s.dst,
                flag_str(s.flags),
                s.payload
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
