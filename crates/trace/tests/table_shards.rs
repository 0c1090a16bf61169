//! Counts (`Detail::Verdict`) with the connection table split over threads equal the counts
//! of one table on one thread: every connection the same, only their order differs. On
//! every checked-in capture, and on a generated busy one that reuses 4-tuples, closes every
//! way, leaves FINs out, duplicates packets and sends strays after the close.

mod common;

use etherparse::PacketBuilder;
use tcplab_trace::conn::AnalysisSink;
use tcplab_trace::link::LinkType;
use tcplab_trace::{
    analyze_on_this_thread, analyze_reopen, analyze_stream, AnalyzeOptions, Connection, Detail,
    FileInfo, Format, ReadError, Summary,
};

/// Everything the sink sees; connections sorted, since the split hands them on in the order
/// the shards finish them. With `counts_only`, the sink asks for the counts alone
/// (`AnalysisSink::counts_only`), which a split table counts on its threads.
#[derive(Default)]
struct Seen {
    counts_only: bool,
    connections: Vec<String>,
    /// Every connection handed on, plus the counts handed on instead of connections.
    summary: Summary,
    /// `begin`, `end` or `failed`, and the analysis's result.
    end: Vec<String>,
}

impl AnalysisSink for Seen {
    fn begin(&mut self, source: &str, format: Format, link_type: Option<LinkType>) {
        self.end
            .push(format!("begin {source} {format:?} {link_type:?}"));
    }
    fn connection(&mut self, conn: Connection) {
        self.summary.add(&conn);
        self.connections.push(format!("{conn:?}"));
    }
    fn end(&mut self, file: &FileInfo) {
        self.end.push(format!("end {file:?}"));
    }
    fn failed(&mut self, file: &FileInfo, error: &ReadError) {
        self.end.push(format!("failed {file:?} {error}"));
    }
    fn counts_only(&self) -> bool {
        self.counts_only
    }
    fn counts(&mut self, summary: &Summary) {
        self.summary.merge(summary);
    }
}

/// What a sink sees of `analyze`.
fn seen(counts_only: bool, analyze: impl FnOnce(&mut Seen) -> Result<FileInfo, ReadError>) -> Seen {
    let mut seen = Seen {
        counts_only,
        ..Seen::default()
    };
    let r = analyze(&mut seen).map_err(|e| e.to_string());
    seen.end.push(format!("{r:?}"));
    seen.connections.sort();
    seen
}

fn verdict(threads: usize) -> AnalyzeOptions {
    AnalyzeOptions {
        detail: Detail::Verdict,
        table_threads: threads,
        ..AnalyzeOptions::default()
    }
}

#[track_caller]
fn assert_same_counts(bytes: &[u8], opts: AnalyzeOptions, what: &str) {
    let want = seen(false, |s| analyze_on_this_thread(bytes, "x", &opts, s));
    for threads in [1, 2, 3, 4, 8] {
        let opts = AnalyzeOptions {
            table_threads: threads,
            ..opts.clone()
        };
        // Each table thread reading the input through a reader of its own (`analyze_reopen`,
        // as for a file), or sharing one reading of a stream (`analyze_stream`).
        let open = || Ok(bytes);
        for (how, got) in [
            (
                "one stream",
                seen(false, |s| analyze_stream(bytes, "x", &opts, s)),
            ),
            (
                "reopened",
                seen(false, |s| analyze_reopen(&open, "x", &opts, s)),
            ),
        ] {
            let what = format!("{what}, {threads} table threads, {how}");
            assert_eq!(got.end, want.end, "{what}: file");
            assert_eq!(got.connections.len(), want.connections.len(), "{what}");
            assert!(got.connections == want.connections, "{what}: connections");
        }
        // Counted on the table threads, for a sink that wants no more.
        let got = seen(true, |s| analyze_stream(bytes, "x", &opts, s));
        let what = format!("{what}, {threads} table threads, counts only");
        assert_eq!(got.end, want.end, "{what}: file");
        assert_eq!(got.summary, want.summary, "{what}");
    }
}

#[test]
fn checked_in_captures_count_the_same_split() {
    common::each_checked_in_capture_and_cut(|what, bytes| {
        assert_same_counts(bytes, verdict(0), what);
    });
}

#[test]
fn busy_capture_counts_the_same_split() {
    let pcap = busy_capture(4000, 300);
    assert_same_counts(&pcap, verdict(0), "busy capture");
    // A tiny closed-4-tuple table: many 4-tuples share a slot, and a shard must see exactly
    // the sharing one table sees.
    for max_closed in [0, 1, 2, 8, 64] {
        let opts = AnalyzeOptions {
            max_closed,
            ..verdict(0)
        };
        assert_same_counts(&pcap, opts, &format!("max_closed {max_closed}"));
    }
    // A short closed memory: some strays come after it, and become connections.
    let opts = AnalyzeOptions {
        closed_memory_ns: 700_000_000,
        ..verdict(0)
    };
    assert_same_counts(&pcap, opts, "short closed memory");
    // Cut mid-packet: the read fails, and what was read still counts.
    assert_same_counts(&pcap[..pcap.len() * 3 / 5 + 7], verdict(0), "cut short");
}

/// splitmix64: deterministic test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A raw-IPv4 pcap of `connections` overlapping connections over `ports` client ports (so
/// 4-tuples come back), one every millisecond, each closed one of eight ways.
fn busy_capture(connections: u64, ports: u64) -> Vec<u8> {
    let mut rng = Rng(7);
    // (time ns, file order within the time, IPv4 packet)
    let mut packets: Vec<(i64, u64, Vec<u8>)> = Vec::new();
    for i in 0..connections {
        let client = ([192, 0, 2, 1 + (i % 3) as u8], 30000 + (i % ports) as u16);
        let server = ([198, 51, 100, 2], [80, 443][(i % 2) as usize]);
        let (ci, si) = (rng.next() as u32, rng.next() as u32);
        let mut t = i as i64 * 1_000_000;
        let mut steps: Vec<(bool, &str, u32, u32, usize)> = vec![
            (true, "S", ci, 0, 0),
            (false, "S.", si, ci + 1, 0),
            (true, ".", ci + 1, si + 1, 0),
            (true, "P.", ci + 1, si + 1, 10),
            (false, "P.", si + 1, ci + 11, 20),
        ];
        let (c, s) = (ci + 11, si + 21);
        // The close: `a` is the active closer's next sequence number, `p` the passive's;
        // the client starts it unless `flip`.
        let flip = rng.below(2) == 0;
        let (a, p) = if flip { (s, c) } else { (c, s) };
        let close: Vec<(bool, &str, u32, u32, usize)> = match rng.below(8) {
            0 => vec![
                (true, "F.", a, p, 0),
                (false, "F.", p, a + 1, 0),
                (true, ".", a + 1, p + 1, 0),
            ],
            1 => vec![
                (true, "F.", a, p, 0),
                (false, ".", p, a + 1, 0),
                (false, "F.", p, a + 1, 0),
                (true, ".", a + 1, p + 1, 0),
            ],
            2 => vec![
                (true, "F.", a, p, 0),
                (false, "F.", p, a, 0),
                (true, ".", a + 1, p + 1, 0),
                (false, ".", p + 1, a + 1, 0),
            ],
            3 => vec![(true, "R.", a, p, 0)],
            // The first FIN missed by the capture: inferred from the ACK.
            4 => vec![(false, "F.", p, a + 1, 0), (true, ".", a + 1, p + 1, 0)],
            // The final ACK missing: lingers as unacknowledged.
            5 => vec![(true, "F.", a, p, 0), (false, "F.", p, a + 1, 0)],
            // Only one FIN: incomplete, or open until a later SYN on the 4-tuple.
            6 => vec![(true, "F.", a, p, 0), (false, ".", p, a + 1, 0)],
            _ => vec![],
        };
        steps.extend(
            close
                .into_iter()
                .map(|(active, f, seq, ack, len)| (active != flip, f, seq, ack, len)),
        );
        for (n, &(from_client, flags, seq, ack, len)) in steps.iter().enumerate() {
            t += 1 + rng.below(80_000_000) as i64;
            let ip = ipv4(client, server, from_client, flags, seq, ack, len);
            // Now and then the same frame twice (a loopback capture's copy).
            if rng.below(40) == 0 {
                packets.push((t, n as u64, ip.clone()));
            }
            packets.push((t, n as u64, ip));
        }
        // Strays after the close: a late ACK (within the linger or after it) or an RST.
        match rng.below(6) {
            0 => {
                let ip = ipv4(client, server, true, ".", c + 1, s + 1, 0);
                packets.push((t + rng.below(2_000_000_000) as i64, 99, ip));
            }
            1 => {
                let ip = ipv4(client, server, false, "R", s + 1, 0, 0);
                packets.push((t + rng.below(400_000_000) as i64, 99, ip));
            }
            _ => {}
        }
    }
    packets.sort_by_key(|(t, n, _)| (*t, *n));
    let mut out = Vec::new();
    // pcap, µs, snaplen 65535, LINKTYPE_IPV4 (228).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&228u32.to_le_bytes());
    for (t, _, ip) in packets {
        let t = t + 1_700_000_000_000_000_000;
        out.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t % 1_000_000_000 / 1000) as u32).to_le_bytes());
        out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        out.extend_from_slice(&ip);
    }
    out
}

fn ipv4(
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    from_client: bool,
    flags: &str,
    seq: u32,
    ack: u32,
    len: usize,
) -> Vec<u8> {
    let (src, dst) = if from_client {
        (client, server)
    } else {
        (server, client)
    };
    common::tcp_packet(
        PacketBuilder::ipv4(src.0, dst.0, 64),
        (src.1, dst.1),
        flags,
        seq,
        ack,
        len,
    )
}
