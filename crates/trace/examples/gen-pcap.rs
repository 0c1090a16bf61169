//! Benchmark input: a classic pcap of N interleaved TCP connections with a known teardown mix.
//!
//! ```text
//! cargo run --release -p tcplab-trace --example gen-pcap -- \
//!     --connections N --out FILE [--seed S] [--open 1000] [--clients 28232] \
//!     [--truth FILE.json] [--ns] [--tunnels]
//! ```
//!
//! `--tunnels` carries every connection inside something, in turn: VXLAN, GENEVE, GRE with a
//! key, a two-label MPLS stack, QinQ (ids from the 4-tuple index, so a reused 4-tuple comes
//! back in the same tunnel). The counts are the same as without it.
//!
//! Every connection has a handshake, a request (ACKed ~40 ms later when the server takes longer
//! than that to answer) and a response, then one of four closes
//! (docs/teardown.md's kinds), with the active closer drawn at random between client and server:
//! - `four-way`: FIN → ACK (~40 ms later: Linux's delayed ACK, RFC 1122 §4.2.3.2) → FIN → ACK;
//!   one in five has the passive side send data after the FIN (half-close) instead of a pure ACK.
//! - `three-way`: FIN → FIN+ACK → ACK.
//! - `simultaneous`: both FINs sent before either was received (RFC 9293 §3.6 case 3), so
//!   neither FIN's ack field covers the other; then both ACKs.
//! - `reset`: RST after data (SO_LINGER 0), or after unread data arrived (RFC 2525 §2.17).
//!
//! About `--open` connections are alive at any moment: each "slot" runs one connection after
//! another, and the slots' packets are merged by timestamp through a heap, so the file is written
//! in capture order while memory stays at a few packets per slot (the file is streamed, never
//! held). Sequence numbers are random; one connection in ten starts within 2,000 of 2^32 so
//! its data wraps around. Addresses come only from the documentation ranges 192.0.2.0/24
//! (clients) and 198.51.100.0/24 (servers). `--clients C` (default 28,232: one host's
//! ephemeral port range) distinct 4-tuples are used in turn, so two live connections never
//! share one, and each is reused — with a new SYN and ISN — every C connections.
//!
//! Output is deterministic for a given `--seed` (splitmix64, no dependencies). The expected
//! counts per outcome key (`"four-way/client"`, … — `Summary::key`, the keys of the `counts`
//! object of `tcplab analyze --json`) are printed on stdout and written to `--truth`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use tcplab_trace::{Closer, Summary, TeardownKind};

const USAGE: &str = "usage: gen-pcap --connections N --out FILE [--seed S] [--open K] \
                     [--clients C] [--truth FILE.json] [--ns] [--tunnels]";

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi` (the tiny modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `pct`%.
    fn pct(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

const MS: i64 = 1_000_000;
const US: i64 = 1_000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One packet of a planned connection.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    ts_ns: i64,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u16,
}

/// One connection: addresses and its whole packet plan (about ten packets).
#[derive(Debug)]
struct Conn {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    /// Next IPv4 identification per direction (index: from_client as usize).
    ip_id: [u16; 2],
    pkts: Vec<Pkt>,
    next: usize,
    /// `--tunnels`: which encapsulation (0..5) and its id.
    tunnel: Option<(u8, u32)>,
}

/// Builds a connection's packets in time order, tracking each side's next sequence number.
struct Plan<'a> {
    rng: &'a mut Rng,
    t: i64,
    /// Next sequence number to send: [server, client] (index: from_client as usize).
    nxt: [u32; 2],
    pkts: Vec<Pkt>,
}

impl Plan<'_> {
    /// Send a segment from `from_client` after `gap_ns`, acknowledging `ack`.
    fn send(&mut self, gap_ns: i64, from_client: bool, flags: u8, len: u16, ack: u32) {
        self.t += gap_ns;
        let d = usize::from(from_client);
        let seq = self.nxt[d];
        let used = u32::from(len) + u32::from(flags & (SYN | FIN) != 0);
        self.nxt[d] = seq.wrapping_add(used);
        self.pkts.push(Pkt {
            ts_ns: self.t,
            from_client,
            seq,
            ack,
            flags,
            len,
        });
    }
    fn nxt(&self, from_client: bool) -> u32 {
        self.nxt[usize::from(from_client)]
    }
    /// A small round-trip-ish gap: 30 µs .. 2 ms.
    fn rtt(&mut self) -> i64 {
        self.rng.range(30, 2_000) as i64 * US
    }
}

fn isn(rng: &mut Rng) -> u32 {
    if rng.pct(10) {
        // Near 2^32 so that the request/response/FIN cross the wrap.
        u32::MAX - rng.range(0, 2_000) as u32
    } else {
        rng.next() as u32
    }
}

/// Linux's default ephemeral port range (`net.ipv4.ip_local_port_range` = 32768 60999).
const EPHEMERAL_LO: u64 = 32_768;
const EPHEMERAL_PORTS: u64 = 60_999 - 32_768 + 1;

/// Plan connection number `index` starting at `t0`; returns it and its outcome key.
///
/// The 4-tuple is a function of `index % clients`: client endpoints are taken in turn from
/// 192.0.2.1's ephemeral range (then 192.0.2.2's, …), each with its own server, so a 4-tuple
/// comes back every `clients` connections — long after its previous use ended, as when a
/// client host reuses its ports. (A bounded set of 4-tuples is also what real captures of
/// one busy client look like; tcpdump's relative-sequence table never forgets a 4-tuple and
/// slows down in proportion to how many it has seen.)
fn plan(rng: &mut Rng, index: u64, clients: u64, t0: i64) -> (Conn, TeardownKind, Closer) {
    let e = index % clients;
    let client = (
        [192, 0, 2, 1 + ((e / EPHEMERAL_PORTS) % 254) as u8],
        (EPHEMERAL_LO + e % EPHEMERAL_PORTS) as u16,
    );
    let server = (
        [198, 51, 100, 10 + (e % 5) as u8],
        [80u16, 443, 60_000][(e % 3) as usize],
    );
    let (ic, is) = (isn(rng), isn(rng));
    let mut p = Plan {
        rng,
        t: t0,
        nxt: [is, ic],
        pkts: Vec::with_capacity(10),
    };
    // Handshake (RFC 9293 §3.5).
    p.send(0, true, SYN, 0, 0);
    let g = p.rtt();
    p.send(g, false, SYN | ACK, 0, ic.wrapping_add(1));
    let g = p.rtt();
    p.send(g, true, ACK, 0, p.nxt(false));
    // Request, response after 10–300 ms of "work", client's ACK of it.
    let req = p.rng.range(16, 96) as u16;
    let g = p.rng.range(20, 2_000) as i64 * US;
    p.send(g, true, PSH | ACK, req, p.nxt(false));
    let resp = p.rng.range(16, 256) as u16;
    let mut think = p.rng.range(10, 300) as i64 * MS;
    if think > 40 * MS {
        // The request's ACK cannot wait for the response: the delayed-ACK timer fires.
        let g = 40 * MS + p.rng.range(0, 2_000) as i64 * US;
        p.send(g, false, ACK, 0, p.nxt(true));
        think -= g;
    }
    p.send(think, false, PSH | ACK, resp, p.nxt(true));
    let g = p.rtt();
    p.send(g, true, ACK, 0, p.nxt(false));

    let kind = match p.rng.range(0, 99) {
        0..=34 => TeardownKind::FourWay,
        35..=69 => TeardownKind::ThreeWay,
        70..=81 => TeardownKind::Simultaneous,
        _ => TeardownKind::Reset,
    };
    // `a` is the active closer's direction (true = client).
    let a = p.rng.pct(50);
    let idle = p.rng.range(1, 150) as i64 * MS;
    match kind {
        TeardownKind::FourWay => {
            p.send(idle, a, FIN | ACK, 0, p.nxt(!a));
            let fin_end = p.nxt(a);
            if p.rng.pct(20) {
                // Half-close: the passive side still sends data, which acknowledges the FIN.
                let g = p.rtt();
                let more = p.rng.range(16, 128) as u16;
                p.send(g, !a, PSH | ACK, more, fin_end);
                let g = p.rtt();
                p.send(g, a, ACK, 0, p.nxt(!a));
            } else {
                // Delayed ACK of the FIN: ~40 ms (Linux's minimum delayed-ACK timeout).
                let g = 40 * MS + p.rng.range(0, 2_000) as i64 * US;
                p.send(g, !a, ACK, 0, fin_end);
            }
            let g = p.rng.range(1, 100) as i64 * MS;
            p.send(g, !a, FIN | ACK, 0, fin_end);
            let g = p.rtt();
            p.send(g, a, ACK, 0, p.nxt(!a));
        }
        TeardownKind::ThreeWay => {
            p.send(idle, a, FIN | ACK, 0, p.nxt(!a));
            let g = p.rtt();
            p.send(g, !a, FIN | ACK, 0, p.nxt(a));
            let g = p.rtt();
            p.send(g, a, ACK, 0, p.nxt(!a));
        }
        TeardownKind::Simultaneous => {
            // Each FIN acknowledges only the peer's data: it left before the peer's FIN came.
            let (a_data, b_data) = (p.nxt(a), p.nxt(!a));
            p.send(idle, a, FIN | ACK, 0, b_data);
            let g = p.rng.range(1, 50) as i64 * US;
            p.send(g, !a, FIN | ACK, 0, a_data);
            let g = p.rtt();
            p.send(g, a, ACK, 0, p.nxt(!a));
            let g = p.rng.range(1, 100) as i64 * US;
            p.send(g, !a, ACK, 0, p.nxt(a));
        }
        _ => {
            if p.rng.pct(50) {
                // Close with unread data: the peer's bytes arrive, the closer resets.
                let more = p.rng.range(16, 128) as u16;
                p.send(idle, !a, PSH | ACK, more, p.nxt(a));
                let g = p.rtt();
                p.send(g, a, RST | ACK, 0, p.nxt(!a));
            } else {
                // SO_LINGER 0: close() sends RST instead of FIN.
                p.send(idle, a, RST | ACK, 0, p.nxt(!a));
            }
        }
    }
    let closer = match (kind, a) {
        (TeardownKind::Simultaneous, _) => Closer::Both,
        (_, true) => Closer::Client,
        (_, false) => Closer::Server,
    };
    let ip_id = [p.rng.next() as u16, p.rng.next() as u16];
    let pkts = p.pkts;
    (
        Conn {
            client,
            server,
            ip_id,
            pkts,
            next: 0,
            tunnel: None,
        },
        kind,
        closer,
    )
}

/// RFC 1071 one's-complement sum, folded later.
fn sum16(bytes: &[u8], mut acc: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Payload bytes: printable and fixed (nothing reads them).
static PAYLOAD: [u8; 256] = {
    let mut b = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        b[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    b
};

/// Write one Ethernet/IPv4/TCP frame as a pcap record.
fn write_packet<W: Write>(out: &mut W, c: &mut Conn, p: &Pkt, nanos: bool) -> io::Result<usize> {
    let ((sip, sport), (dip, dport)) = if p.from_client {
        (c.client, c.server)
    } else {
        (c.server, c.client)
    };
    let len = usize::from(p.len);
    let mut f = [0u8; 14 + 20 + 20 + 256];
    // Ethernet: locally administered MACs, one per side.
    let (smac, dmac) = if p.from_client {
        ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
    } else {
        ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
    };
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    // IPv4 (RFC 791): DF set, TTL 64.
    let d = usize::from(p.from_client);
    let id = c.ip_id[d];
    c.ip_id[d] = id.wrapping_add(1);
    let ip_total = (20 + 20 + len) as u16;
    {
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&sip);
        ip[16..20].copy_from_slice(&dip);
        let ck = fold(sum16(ip, 0));
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
    }
    // TCP (RFC 9293 §3.1), 20-byte header, checksum over the pseudo-header.
    {
        let tcp = &mut f[34..54 + len];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[4..8].copy_from_slice(&p.seq.to_be_bytes());
        let ack = if p.flags & ACK != 0 { p.ack } else { 0 };
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = p.flags;
        tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
        tcp[20..20 + len].copy_from_slice(&PAYLOAD[..len]);
        let mut acc = sum16(&sip, 0);
        acc = sum16(&dip, acc);
        acc += 6 + u32::from(ip_total - 20);
        let ck = fold(sum16(tcp, acc));
        tcp[16..18].copy_from_slice(&ck.to_be_bytes());
    }
    let mut wrapped = [0u8; 14 + 20 + 8 + 16 + 14 + 20 + 20 + 256];
    let frame = match c.tunnel {
        None => &f[..54 + len],
        Some(t) => wrap(t, &f[..54 + len], &mut wrapped),
    };
    let secs = p.ts_ns.div_euclid(1_000_000_000);
    let frac = p.ts_ns.rem_euclid(1_000_000_000);
    let frac = if nanos { frac } else { frac / 1_000 };
    let mut rec = [0u8; 16];
    rec[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
    rec[4..8].copy_from_slice(&(frac as u32).to_le_bytes());
    rec[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    rec[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    out.write_all(&rec)?;
    out.write_all(frame)?;
    Ok(16 + frame.len())
}

/// Put an Ethernet frame into `t`'s encapsulation: VXLAN (0), GENEVE (1), GRE with a key
/// (2), MPLS (3) or QinQ (4). Outer addresses are two more documentation addresses.
fn wrap<'a>(t: (u8, u32), inner: &[u8], out: &'a mut [u8]) -> &'a [u8] {
    let (kind, id) = t;
    let ip = &inner[14..];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    let outer_ip = |proto: u8, payload_len: usize| {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
        h[6] = 0x40;
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&[198, 51, 100, 250]);
        h[16..20].copy_from_slice(&[198, 51, 100, 251]);
        let ck = fold(sum16(&h, 0));
        h[10..12].copy_from_slice(&ck.to_be_bytes());
        h
    };
    let macs = [2u8, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2];
    match kind {
        0 | 1 => {
            // UDP (checksum 0) + VXLAN (I flag, VNI) or GENEVE (no options, bridged Ethernet).
            let (port, hdr): (u16, [u8; 8]) = if kind == 0 {
                let v = (id << 8).to_be_bytes();
                (4789, [0x08, 0, 0, 0, v[0], v[1], v[2], v[3]])
            } else {
                let v = (id << 8).to_be_bytes();
                (6081, [0, 0, 0x65, 0x58, v[0], v[1], v[2], v[3]])
            };
            let udp_len = 8 + 8 + inner.len();
            put(&macs);
            put(&0x0800u16.to_be_bytes());
            put(&outer_ip(17, udp_len));
            put(&49_152u16.to_be_bytes());
            put(&port.to_be_bytes());
            put(&(udp_len as u16).to_be_bytes());
            put(&[0, 0]);
            put(&hdr);
            put(inner);
        }
        2 => {
            put(&macs);
            put(&0x0800u16.to_be_bytes());
            put(&outer_ip(47, 8 + ip.len()));
            put(&[0x20, 0, 0x08, 0x00]);
            put(&id.to_be_bytes());
            put(ip);
        }
        3 => {
            put(&macs);
            put(&0x8847u16.to_be_bytes());
            put(&((16 + id) << 12 | 64).to_be_bytes());
            put(&(100u32 << 12 | 0x100 | 64).to_be_bytes());
            put(ip);
        }
        _ => {
            put(&macs);
            put(&0x88a8u16.to_be_bytes());
            put(&((id % 4000) as u16 + 1).to_be_bytes());
            put(&0x8100u16.to_be_bytes());
            put(&100u16.to_be_bytes());
            put(&0x0800u16.to_be_bytes());
            put(ip);
        }
    }
    &out[..n]
}

#[derive(Debug)]
struct Args {
    connections: u64,
    out: String,
    seed: u64,
    open: u64,
    truth: Option<String>,
    nanos: bool,
    clients: u64,
    tunnels: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut connections, mut out, mut seed, mut open, mut truth, mut nanos) =
        (None, None, 1u64, 1_000u64, None, false);
    let mut clients = EPHEMERAL_PORTS;
    let mut tunnels = false;
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num =
            |name: &str, v: String| v.parse::<u64>().map_err(|e| format!("{name}: {v:?}: {e}"));
        match a.as_str() {
            "--connections" => connections = Some(num("--connections", val("--connections")?)?),
            "--out" => out = Some(val("--out")?),
            "--seed" => seed = num("--seed", val("--seed")?)?,
            "--open" => open = num("--open", val("--open")?)?,
            "--truth" => truth = Some(val("--truth")?),
            "--ns" => nanos = true,
            "--tunnels" => tunnels = true,
            "--clients" => clients = num("--clients", val("--clients")?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let connections = connections.ok_or_else(|| format!("--connections is required\n{USAGE}"))?;
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    if open == 0 {
        return Err("--open must be at least 1".into());
    }
    // A 4-tuple may only come back once its previous connection is long over: connections
    // last at most ~0.6 s, in which ~2.5 × `open` others start.
    if clients < 10 * open {
        return Err(format!(
            "--clients must be at least 10 × --open ({})",
            10 * open
        ));
    }
    if clients > 254 * EPHEMERAL_PORTS {
        return Err(format!(
            "--clients must be at most {}",
            254 * EPHEMERAL_PORTS
        ));
    }
    Ok(Args {
        connections,
        out,
        seed,
        open,
        truth,
        nanos,
        clients,
        tunnels,
    })
}

#[derive(Debug, Default)]
struct Stats {
    packets: u64,
    bytes: u64,
    last_ts: i64,
    counts: BTreeMap<String, u64>,
}

fn generate<W: Write>(args: &Args, out: &mut W) -> io::Result<Stats> {
    let mut rng = Rng(args.seed);
    // File header: µs or ns magic, version 2.4, snaplen 65535, LINKTYPE_ETHERNET.
    let magic: u32 = if args.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut hdr = Vec::with_capacity(24);
    hdr.extend(magic.to_le_bytes());
    hdr.extend(2u16.to_le_bytes());
    hdr.extend(4u16.to_le_bytes());
    hdr.extend([0u8; 8]);
    hdr.extend(65_535u32.to_le_bytes());
    hdr.extend(1u32.to_le_bytes());
    out.write_all(&hdr)?;

    let mut st = Stats {
        bytes: 24,
        ..Stats::default()
    };
    // 2023-11-14T22:13:20Z: any fixed epoch works; determinism matters, not the date.
    let t_start: i64 = 1_700_000_000 * 1_000_000_000;
    let mut started = 0u64;
    let mut slots: Vec<Conn> = Vec::new();
    // Heap of (next packet time, tie-break, slot): merging the slots in capture order.
    let mut heap: BinaryHeap<Reverse<(i64, u64, usize)>> = BinaryHeap::new();
    let mut tick = 0u64;
    let start = |rng: &mut Rng, t0: i64, st: &mut Stats, started: &mut u64| {
        let (mut c, kind, closer) = plan(rng, *started, args.clients, t0);
        if args.tunnels {
            let e = *started % args.clients;
            c.tunnel = Some(((e % 5) as u8, (e % 64) as u32 + 1));
        }
        *started += 1;
        *st.counts
            .entry(Summary::key(kind, Some(closer)))
            .or_default() += 1;
        c
    };
    // Stagger the first connections over the typical lifetime so ~`open` stay alive.
    for _ in 0..args.open.min(args.connections) {
        let t0 = t_start + rng.range(0, 300_000) as i64 * US;
        let c = start(&mut rng, t0, &mut st, &mut started);
        heap.push(Reverse((c.pkts[0].ts_ns, tick, slots.len())));
        tick += 1;
        slots.push(c);
    }
    while let Some(Reverse((ts, _, slot))) = heap.pop() {
        let c = &mut slots[slot];
        let p = c.pkts[c.next];
        c.next += 1;
        st.bytes += write_packet(out, c, &p, args.nanos)? as u64;
        st.packets += 1;
        st.last_ts = ts;
        let next_ts = if c.next < c.pkts.len() {
            Some(c.pkts[c.next].ts_ns)
        } else if started < args.connections {
            // The slot's connection is over: the next one starts shortly after.
            let t0 = ts + rng.range(1, 2_000) as i64 * US;
            slots[slot] = start(&mut rng, t0, &mut st, &mut started);
            Some(t0)
        } else {
            None
        };
        if let Some(t) = next_ts {
            heap.push(Reverse((t, tick, slot)));
            tick += 1;
        }
    }
    out.flush()?;
    st.last_ts -= t_start;
    Ok(st)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let file = File::create(&args.out).map_err(|e| format!("{}: {e}", args.out))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let st = generate(&args, &mut out).map_err(|e| format!("{}: {e}", args.out))?;
    drop(out);
    let counts = serde_json::to_string(&st.counts).map_err(|e| e.to_string())?;
    if let Some(path) = &args.truth {
        std::fs::write(path, format!("{counts}\n")).map_err(|e| format!("{path}: {e}"))?;
    }
    println!("{counts}");
    eprintln!(
        "gen-pcap: {} connections, {} packets, {} bytes, {:.1} s of capture -> {}",
        args.connections,
        st.packets,
        st.bytes,
        st.last_ts as f64 / 1e9,
        args.out
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-pcap: {e}");
            ExitCode::from(2)
        }
    }
}
