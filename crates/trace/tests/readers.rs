//! Readers end to end: bytes (built here with etherparse's `PacketBuilder`) → `input::open` →
//! records. Hand-written text inputs live in `tests/data/hand/`, the seed's listings in `tests/data/seed/`.

use etherparse::{
    IpHeaders, IpNumber, Ipv6Extensions, Ipv6FlowLabel, Ipv6Header, Ipv6RawExtHeader,
    PacketBuilder, VlanId,
};
use std::io::{BufReader, Read};
use std::net::SocketAddr;
use tcplab_trace::input::{self, Format, PacketSource, ReadError, Record};
use tcplab_trace::link::LinkType;
use tcplab_trace::{Flags, Segment, SeqNum, Warning};

// ---------------------------------------------------------------------------------------
// Helper functions: frames
// ---------------------------------------------------------------------------------------

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Raw IPv4 + TCP (ACK|PSH, timestamps option) with `payload`, from 127.0.0.1:41334 to
/// 127.0.0.2:60000, IPv4 identification `id`.
fn ipv4_tcp(id: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = etherparse::Ipv4Header::new(0, 64, IpNumber::TCP, [127, 0, 0, 1], [127, 0, 0, 2])
        .expect("header");
    ip.identification = id;
    let b = PacketBuilder::ip(IpHeaders::Ipv4(ip, Default::default()))
        .tcp(41334, 60000, 1000, 512)
        .ack(77)
        .psh()
        .options(&[etherparse::TcpOptionElement::Timestamp(5, 6)])
        .expect("options");
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("write");
    v
}

/// Ethernet + IPv4 + FIN|ACK.
fn eth_fin() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
        .tcp(1, 2, 100, 9)
        .fin()
        .ack(200)
        .write(&mut v, &[])
        .expect("write");
    v
}

/// Ethernet + one or two VLAN tags + IPv4 + SYN.
fn vlan_syn(double: bool) -> Vec<u8> {
    let id = |n| VlanId::try_new(n).expect("vlan id");
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let step = if double {
        eth.double_vlan(id(10), id(20))
    } else {
        eth.single_vlan(id(10))
    };
    let mut v = Vec::new();
    step.ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .tcp(5555, 80, 42, 1024)
        .syn()
        .write(&mut v, &[])
        .expect("write");
    v
}

/// Raw IPv6 with a hop-by-hop and a destination-options header, then TCP with 10 bytes.
fn ipv6_ext_tcp() -> Vec<u8> {
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber(60), &[0; 6]).expect("hop-by-hop"),
        ),
        destination_options: Some(
            Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[0; 14]).expect("destination options"),
        ),
        ..Default::default()
    };
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::try_new(0x12345).expect("label"),
        payload_length: 0,
        next_header: IpNumber(0),
        hop_limit: 64,
        source: "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        destination: "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    };
    let mut v = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv6(ip, exts))
        .tcp(443, 50000, 7, 100)
        .ack(8)
        .write(&mut v, &[0xab; 10])
        .expect("write");
    v
}

/// Linux cooked v1 header (packet type `pkttype`) + IPv4 frame.
fn sll(pkttype: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(pkttype.to_be_bytes());
    v.extend(772u16.to_be_bytes()); // ARPHRD_LOOPBACK
    v.extend(6u16.to_be_bytes());
    v.extend([0u8; 8]);
    v.extend(0x0800u16.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

/// Linux cooked v2 header + IPv4 frame.
fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(0x0800u16.to_be_bytes());
    v.extend([0u8; 2]);
    v.extend(1u32.to_be_bytes()); // ifindex
    v.extend(772u16.to_be_bytes());
    v.push(4); // PACKET_OUTGOING
    v.push(6);
    v.extend([0u8; 8]);
    v.extend_from_slice(ip);
    v
}

fn tcp(r: Record) -> Segment {
    match r {
        Record::Tcp(s) => s,
        other => panic!("expected a TCP record, got {other:?}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

// ---------------------------------------------------------------------------------------
// Helper functions: files
// ---------------------------------------------------------------------------------------

struct Pcap {
    be: bool,
    bytes: Vec<u8>,
}

impl Pcap {
    fn new(be: bool, nanos: bool, link: u32) -> Pcap {
        let mut p = Pcap {
            be,
            bytes: Vec::new(),
        };
        p.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        p.u16(2);
        p.u16(4);
        p.u32(0);
        p.u32(0);
        p.u32(262_144);
        p.u32(link);
        p
    }
    fn u16(&mut self, v: u16) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend(b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend(b);
    }
    /// A record at `sec` + `frac` (µs or ns per the magic), `orig` bytes on the wire.
    fn record(mut self, sec: u32, frac: u32, frame: &[u8], orig: usize) -> Pcap {
        self.u32(sec);
        self.u32(frac);
        self.u32(frame.len() as u32);
        self.u32(orig as u32);
        self.bytes.extend_from_slice(frame);
        self
    }
}

/// pcapng writer: blocks in one section's byte order.
struct Ng {
    be: bool,
    bytes: Vec<u8>,
}

impl Ng {
    fn new() -> Ng {
        Ng {
            be: false,
            bytes: Vec::new(),
        }
    }
    fn w16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn w32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(mut self, ty: u32, mut body: Vec<u8>) -> Ng {
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        let (t, l) = (self.w32(ty), self.w32(len));
        self.bytes.extend(t);
        self.bytes.extend(l);
        self.bytes.extend(body);
        self.bytes.extend(l);
        self
    }
    fn shb(mut self, be: bool) -> Ng {
        self.be = be;
        let mut b = Vec::new();
        b.extend(self.w32(0x1A2B_3C4D));
        b.extend(self.w16(1));
        b.extend(self.w16(0));
        b.extend(if be {
            (-1i64).to_be_bytes()
        } else {
            (-1i64).to_le_bytes()
        });
        self.block(0x0A0D_0D0A, b)
    }
    fn idb(self, link: u16, tsresol: Option<u8>) -> Ng {
        let mut b = Vec::new();
        b.extend(self.w16(link));
        b.extend(self.w16(0));
        b.extend(self.w32(0));
        if let Some(r) = tsresol {
            b.extend(self.w16(9));
            b.extend(self.w16(1));
            b.extend([r, 0, 0, 0]);
            b.extend(self.w16(0));
            b.extend(self.w16(0));
        }
        self.block(1, b)
    }
    fn epb(self, iface: u32, units: u64, frame: &[u8]) -> Ng {
        let mut b = Vec::new();
        b.extend(self.w32(iface));
        b.extend(self.w32((units >> 32) as u32));
        b.extend(self.w32(units as u32));
        b.extend(self.w32(frame.len() as u32));
        b.extend(self.w32(frame.len() as u32));
        b.extend_from_slice(frame);
        self.block(6, b)
    }
    fn spb(self, frame: &[u8]) -> Ng {
        let mut b = Vec::new();
        b.extend(self.w32(frame.len() as u32));
        b.extend_from_slice(frame);
        self.block(3, b)
    }
}

/// Open `bytes` (optionally through a tiny buffer, to force the readers' slow paths) and read
/// every record.
fn read_all(bytes: &[u8], tiny: bool) -> (Box<dyn PacketSource + '_>, Vec<Record>, Vec<Warning>) {
    let mut src = if tiny {
        input::open(BufReader::with_capacity(7, bytes)).expect("open")
    } else {
        input::open(bytes).expect("open")
    };
    let mut recs = Vec::new();
    while let Some(r) = src.next_record().expect("next_record") {
        recs.push(r);
    }
    let w = src.take_warnings();
    (src, recs, w)
}

// ---------------------------------------------------------------------------------------
// pcap
// ---------------------------------------------------------------------------------------

#[test]
fn pcap_all_magics_and_byte_orders() {
    for be in [false, true] {
        for nanos in [false, true] {
            let f = Pcap::new(be, nanos, 228).record(1_700_000_000, 123, &ipv4_tcp(1, b"abc"), 0);
            for tiny in [false, true] {
                let (src, recs, w) = read_all(&f.bytes, tiny);
                assert_eq!(src.format(), Format::Pcap);
                assert_eq!(src.link_type(), Some(LinkType::Ipv4));
                assert!(w.is_empty());
                assert_eq!(recs.len(), 1);
                let s = tcp(recs.into_iter().next().unwrap());
                let frac = if nanos { 123 } else { 123_000 };
                assert_eq!(
                    s.ts_ns,
                    1_700_000_000 * 1_000_000_000 + frac,
                    "be={be} ns={nanos}"
                );
                assert_eq!(
                    (s.src, s.dst),
                    (addr("127.0.0.1:41334"), addr("127.0.0.2:60000"))
                );
                assert_eq!(
                    (s.seq, s.ack, s.len, s.window),
                    (SeqNum(1000), SeqNum(77), 3, 512)
                );
                assert_eq!(s.flags, Flags(Flags::PSH | Flags::ACK));
            }
        }
    }
}

#[test]
fn pcap_snaplen_cut_uses_ip_length() {
    let full = ipv4_tcp(1, &[7u8; 1400]);
    // 20 IP + 32 TCP: headers complete, payload gone.
    let f = Pcap::new(false, false, 101).record(1, 0, &full[..52], full.len());
    let (_, recs, _) = read_all(&f.bytes, false);
    assert_eq!(tcp(recs.into_iter().next().unwrap()).len, 1400);
}

#[test]
fn pcap_truncated_last_record_is_a_warning() {
    let f = Pcap::new(false, false, 1)
        .record(1, 0, &eth_fin(), 0)
        .record(2, 0, &eth_fin(), 0);
    let cut = &f.bytes[..f.bytes.len() - 5];
    for tiny in [false, true] {
        let (_, recs, w) = read_all(cut, tiny);
        assert_eq!(recs.len(), 1);
        let first_len = 16 + eth_fin().len() as u64;
        assert_eq!(
            w,
            vec![Warning::TruncatedCapture {
                offset: 24 + first_len
            }]
        );
    }
    // A cut record header is the same warning.
    let (_, recs, w) = read_all(&f.bytes[..24 + 16 + eth_fin().len() + 7], false);
    assert_eq!((recs.len(), w.len()), (1, 1));
}

#[test]
fn pcap_absurd_caplen_stops_with_warning() {
    let mut f = Pcap::new(true, false, 1).record(1, 0, &eth_fin(), 0);
    f.u32(3);
    f.u32(0);
    f.u32(0x4000_0000);
    f.u32(60);
    f.bytes.extend([0u8; 64]);
    let (_, recs, w) = read_all(&f.bytes, false);
    assert_eq!(recs.len(), 1);
    assert!(matches!(w.as_slice(), [Warning::TruncatedCapture { .. }]));
}

// ---------------------------------------------------------------------------------------
// Link layers
// ---------------------------------------------------------------------------------------

#[test]
fn link_ethernet_vlan_and_qinq() {
    for double in [false, true] {
        let f = Pcap::new(false, false, 1).record(0, 0, &vlan_syn(double), 0);
        let (_, recs, _) = read_all(&f.bytes, false);
        let s = tcp(recs.into_iter().next().unwrap());
        assert_eq!(
            (s.src, s.dst),
            (addr("192.0.2.1:5555"), addr("192.0.2.2:80"))
        );
        assert_eq!((s.flags, s.seq), (Flags(Flags::SYN), SeqNum(42)));
    }
    let f = Pcap::new(false, false, 1).record(0, 0, &eth_fin(), 0);
    let (_, recs, _) = read_all(&f.bytes, false);
    let s = tcp(recs.into_iter().next().unwrap());
    assert_eq!(
        (s.flags, s.ack, s.len),
        (Flags(Flags::FIN | Flags::ACK), SeqNum(200), 0)
    );
}

#[test]
fn link_ipv6_with_extension_headers() {
    let f = Pcap::new(false, false, 229).record(0, 0, &ipv6_ext_tcp(), 0);
    let (_, recs, _) = read_all(&f.bytes, false);
    let s = tcp(recs.into_iter().next().unwrap());
    assert_eq!(
        (s.src, s.dst),
        (addr("[2001:db8::1]:443"), addr("[2001:db8::2]:50000"))
    );
    assert_eq!((s.seq, s.ack, s.len), (SeqNum(7), SeqNum(8), 10));
    // The same over RAW (version nibble) and over Ethernet.
    let raw = tcp(input::open(
        &Pcap::new(true, true, 101)
            .record(0, 0, &ipv6_ext_tcp(), 0)
            .bytes[..],
    )
    .unwrap()
    .next_record()
    .unwrap()
    .unwrap());
    assert_eq!(raw.len, 10);
}

#[test]
fn link_null_and_loop_families() {
    let v4 = ipv4_tcp(9, b"");
    let v6 = ipv6_ext_tcp();
    for (link, fam, ip, want) in [
        (0u32, 2u32.to_le_bytes(), &v4, "127.0.0.1:41334"),
        (0, 2u32.to_be_bytes(), &v4, "127.0.0.1:41334"),
        (0, 30u32.to_le_bytes(), &v6, "[2001:db8::1]:443"),
        (0, 24u32.to_le_bytes(), &v6, "[2001:db8::1]:443"),
        (108, 2u32.to_be_bytes(), &v4, "127.0.0.1:41334"),
        (108, 28u32.to_be_bytes(), &v6, "[2001:db8::1]:443"),
    ] {
        let mut frame = fam.to_vec();
        frame.extend_from_slice(ip);
        let f = Pcap::new(false, false, link).record(0, 0, &frame, 0);
        let (_, recs, _) = read_all(&f.bytes, false);
        assert_eq!(
            tcp(recs.into_iter().next().unwrap()).src,
            addr(want),
            "{link} {fam:?}"
        );
    }
    // An unknown family (e.g. AF_APPLETALK) is not TCP.
    let mut frame = 16u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&v4);
    let (_, recs, _) = read_all(
        &Pcap::new(false, false, 0).record(0, 0, &frame, 0).bytes,
        false,
    );
    assert_eq!(recs, vec![Record::NonTcp]);
}

#[test]
fn link_sll_duplicates_share_a_fingerprint_retransmissions_do_not() {
    let ip = ipv4_tcp(4242, b"hi");
    let retrans = ipv4_tcp(4243, b"hi");
    let f = Pcap::new(false, false, 113)
        .record(0, 0, &sll(4, &ip), 0) // PACKET_OUTGOING
        .record(0, 1, &sll(0, &ip), 0) // PACKET_HOST
        .record(0, 2, &sll(0, &retrans), 0);
    let (src, recs, _) = read_all(&f.bytes, false);
    assert_eq!(src.link_type(), Some(LinkType::LinuxSll));
    let s: Vec<Segment> = recs.into_iter().map(tcp).collect();
    assert_eq!(s[0].fingerprint, s[1].fingerprint);
    assert_ne!(s[0].fingerprint, s[2].fingerprint);
    assert_ne!(s[0].fingerprint, 0);
    assert_eq!((s[0].seq, s[2].seq), (s[2].seq, SeqNum(1000)));
}

#[test]
fn link_non_tcp_and_damage() {
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
        .udp(53, 53)
        .write(&mut udp, b"x")
        .unwrap();
    let mut bad_tcp = eth_fin();
    bad_tcp[14 + 20 + 12] = 0x20; // data offset 8 bytes
    let f = Pcap::new(false, false, 1)
        .record(0, 0, &udp, 0)
        .record(0, 0, &bad_tcp, 0)
        .record(0, 0, &eth_fin()[..20], 0)
        .record(0, 0, &[0u8; 5], 0);
    let (_, recs, _) = read_all(&f.bytes, false);
    assert_eq!(recs[0], Record::NonTcp);
    assert!(
        matches!(recs[1], Record::Damaged { layer: "tcp", .. }),
        "{:?}",
        recs[1]
    );
    assert!(
        matches!(recs[2], Record::Damaged { layer: "ipv4", .. }),
        "{:?}",
        recs[2]
    );
    assert!(
        matches!(recs[3], Record::Damaged { layer: "link", .. }),
        "{:?}",
        recs[3]
    );
    // An unsupported link type damages every frame but still reads the file.
    let other_link = Pcap::new(false, false, 147).record(0, 0, &udp, 0).bytes;
    let (src, recs, _) = read_all(&other_link, false);
    assert_eq!(
        src.link_type().map(|l| l.as_str().into_owned()),
        Some("LINKTYPE_147".into())
    );
    assert!(matches!(recs[0], Record::Damaged { layer: "link", .. }));
}

// ---------------------------------------------------------------------------------------
// pcapng
// ---------------------------------------------------------------------------------------

fn two_interface_file() -> Vec<u8> {
    let ng = Ng::new()
        .shb(false)
        .idb(1, None) // EN10MB, µs
        .idb(276, Some(9)) // LINUX_SLL2, ns
        .block(4, vec![1, 0, 4, 0, 127, 0, 0, 1, 0, 0, 0, 0]) // NRB: skipped
        .epb(0, 1_500_000, &eth_fin())
        .epb(1, 2_000_000_123, &sll2(&ipv4_tcp(1, b"xy")))
        .spb(&eth_fin())
        .block(0x0000_0BAD, vec![0; 40]) // custom block: skipped
        .shb(true)
        .idb(101, Some(0x80 | 10)) // RAW, 2^-10 s
        .epb(0, 3 * 1024, &ipv6_ext_tcp());
    ng.bytes
}

#[test]
fn pcapng_interfaces_sections_and_resolutions() {
    let bytes = two_interface_file();
    for tiny in [false, true] {
        let (src, recs, w) = read_all(&bytes, tiny);
        assert_eq!(src.format(), Format::PcapNg);
        assert_eq!(src.link_type(), Some(LinkType::En10mb));
        assert!(w.is_empty(), "{w:?}");
        let s: Vec<Segment> = recs.into_iter().map(tcp).collect();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].ts_ns, 1_500_000_000);
        assert_eq!((s[1].ts_ns, s[1].len), (2_000_000_123, 2));
        // The Simple Packet Block has no time stamp: the previous one is used.
        assert_eq!(
            (s[2].ts_ns, s[2].flags),
            (2_000_000_123, Flags(Flags::FIN | Flags::ACK))
        );
        assert_eq!((s[3].ts_ns, s[3].len), (3_000_000_000, 10));
    }
}

#[test]
fn pcapng_bad_block_length_mid_file_stops_with_warning() {
    let mut bytes = two_interface_file();
    let good = bytes.len() as u64;
    bytes.extend(6u32.to_be_bytes()); // section 2 is big-endian
    bytes.extend(13u32.to_be_bytes());
    bytes.extend([0u8; 40]);
    let (_, recs, w) = read_all(&bytes, false);
    assert_eq!(recs.len(), 4);
    assert_eq!(w, vec![Warning::TruncatedCapture { offset: good }]);
    // A block running past the end is the same warning.
    let full = two_interface_file();
    let (_, recs, w) = read_all(&full[..full.len() - 8], true);
    assert_eq!((recs.len(), w.len()), (3, 1));
}

#[test]
fn pcapng_packet_before_interface_is_damage() {
    let ng = Ng::new()
        .shb(false)
        .epb(0, 0, &eth_fin())
        .idb(1, None)
        .epb(0, 0, &eth_fin());
    assert_eq!(input::open(&ng.bytes[..]).unwrap().link_type(), None);
    let (src, recs, _) = read_all(&ng.bytes, false);
    // Known once the IDB has been read.
    assert_eq!(src.link_type(), Some(LinkType::En10mb));
    assert!(matches!(
        recs[0],
        Record::Damaged {
            layer: "record",
            ..
        }
    ));
    tcp(recs[1].clone());
}

// ---------------------------------------------------------------------------------------
// Sniffing and file-level errors
// ---------------------------------------------------------------------------------------

fn open_err(bytes: &[u8]) -> ReadError {
    match input::open(bytes) {
        Ok(_) => panic!("opened {bytes:02x?}"),
        Err(e) => e,
    }
}

#[test]
fn sniff_errors() {
    assert!(matches!(open_err(b""), ReadError::Empty));
    let pcap = Pcap::new(false, false, 1).bytes;
    assert!(matches!(
        open_err(&pcap[..10]),
        ReadError::TruncatedHeader {
            format: "pcap",
            len: 10,
            need: 24
        }
    ));
    assert!(matches!(
        open_err(&pcap[..2]),
        ReadError::TruncatedHeader { format: "pcap", .. }
    ));
    let ng = Ng::new().shb(false).bytes;
    assert!(matches!(
        open_err(&ng[..20]),
        ReadError::TruncatedHeader {
            format: "pcapng",
            ..
        }
    ));
    let mut bad_bom = ng.clone();
    bad_bom[8] = 0;
    assert!(matches!(
        open_err(&bad_bom),
        ReadError::BadHeader {
            field: "byte_order_magic",
            ..
        }
    ));
    let garbage: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(
        open_err(&garbage),
        ReadError::UnknownFormat { .. }
    ));
    assert!(matches!(
        open_err(b"hello\nworld\n"),
        ReadError::UnknownFormat { .. }
    ));
}

/// Read everything that opens; the number of records.
fn drain(bytes: &[u8]) -> usize {
    let mut n = 0;
    if let Ok(mut src) = input::open(bytes) {
        while let Ok(Some(_)) = src.next_record() {
            n += 1;
        }
    }
    n
}

#[test]
fn readers_never_panic_on_cut_or_flipped_files() {
    let files = [
        two_interface_file(),
        Pcap::new(true, true, 1)
            .record(0, 0, &vlan_syn(true), 0)
            .record(1, 0, &eth_fin(), 0)
            .bytes,
    ];
    for f in &files {
        for n in 0..f.len() {
            drain(&f[..n]);
        }
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xff;
            assert!(drain(&g) < 100);
        }
    }
}

// ---------------------------------------------------------------------------------------
// tcpdump text
// ---------------------------------------------------------------------------------------

/// A file under `tests/data/` (`hand/…` written by hand, `seed/…` the seed's listings).
fn data_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut v))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    v
}

fn text_segments(name: &str) -> Vec<Segment> {
    let bytes = data_file(name);
    let (src, recs, _) = read_all(&bytes, false);
    assert_eq!(src.format(), Format::Tcpdump);
    assert_eq!(src.link_type(), None);
    recs.into_iter().map(tcp).collect()
}

fn hms(h: i64, m: i64, s: i64, us: i64) -> i64 {
    ((h * 60 + m) * 60 + s) * 1_000_000_000 + us * 1000
}

#[test]
fn tcpdump_seed_listings() {
    let three = text_segments("seed/three-way-close.txt");
    assert_eq!(three.len(), 10);
    let s = &three[0];
    assert_eq!(s.ts_ns, hms(12, 43, 46, 905_723));
    assert_eq!(
        (s.src, s.dst),
        (addr("172.16.196.142:41334"), addr("172.16.196.145:60000"))
    );
    assert_eq!(
        (s.seq, s.flags, s.len, s.window),
        (SeqNum(3255498564), Flags(Flags::SYN), 0, 14600)
    );
    assert_eq!(s.fingerprint, 0);
    // The pure ACK after the handshake carries the client's next sequence number.
    assert_eq!(
        (three[2].seq, three[2].ack),
        (SeqNum(3255498565), SeqNum(4195434199))
    );
    assert_eq!(three[3].len, 3);

    let four = text_segments("seed/four-way-close.txt");
    assert_eq!(four.len(), 11);
    assert_eq!(
        (four[0].seq, four[0].ts_ns),
        (SeqNum(3935290883), hms(20, 1, 49, 251_026))
    );

    let simul = text_segments("seed/simultaneous-close.txt");
    assert_eq!(simul.len(), 4);
    let s = &simul[0];
    assert_eq!(
        (s.src, s.dst),
        (addr("10.29.64.142:443"), addr("10.25.137.230:46556"))
    );
    assert_eq!(
        (s.seq, s.ack, s.window),
        (SeqNum(3633446994), SeqNum(1764274713), 131)
    );
    assert_eq!(s.flags, Flags(Flags::FIN | Flags::ACK));
}

#[test]
fn tcpdump_relative_numbers_give_the_absolute_ones() {
    let abs = text_segments("seed/three-way-close.txt");
    let rel = text_segments("hand/three-way-close-relative.txt");
    assert_eq!(rel, abs);
    // `-S` listings must not be mistaken for relative ones.
    let four = data_file("seed/four-way-close.txt");
    let segs: Vec<Segment> = read_all(&four, false).1.into_iter().map(tcp).collect();
    assert_eq!(segs[4].ack, SeqNum(3935290887));
}

#[test]
fn tcpdump_any_interface_numbers_and_dates() {
    let base = data_file("seed/three-way-close.txt");
    let text = String::from_utf8(base).unwrap();
    let abs = text_segments("seed/three-way-close.txt");
    let variants = [
        text.replace(" IP ", " lo    In  IP "),
        text.lines()
            .enumerate()
            .map(|(i, l)| format!("{} {l}\n", i + 1))
            .collect::<String>(),
        format!(
            "tcpdump: verbose output suppressed\nlistening on lo\n{text}\n10 packets captured\n"
        ),
    ];
    for v in &variants {
        let (_, recs, _) = read_all(v.as_bytes(), false);
        // `-i any` lines carry a text fingerprint (to drop loopback's second copy).
        let s: Vec<Segment> = recs
            .into_iter()
            .map(tcp)
            .map(|seg| Segment {
                fingerprint: 0,
                ..seg
            })
            .collect();
        assert_eq!(s, abs);
    }
    let dated = text
        .lines()
        .map(|l| format!("2024-01-01 {l}\n"))
        .collect::<String>();
    let (_, recs, _) = read_all(dated.as_bytes(), false);
    let first = tcp(recs[0].clone());
    assert_eq!(
        first.ts_ns,
        1_704_067_200 * 1_000_000_000 + hms(12, 43, 46, 905_723)
    );
}

#[test]
fn tcpdump_damaged_and_non_tcp_lines() {
    let text = "12:00:00.000001 IP 127.0.0.1.53 > 127.0.0.1.999: UDP, length 12\n\
                12:00:00.000002 IP 127.0.0.1.5 > 127.0.0.1: Flags [S], seq 1, win 1, length 0\n\
                12:00:00.000003 IP6 ::1.5 > ::1.6: Flags [S], seq 1, win 1, length 0\n";
    let (_, recs, _) = read_all(text.as_bytes(), false);
    assert_eq!(recs[0], Record::NonTcp);
    match &recs[1] {
        Record::Damaged {
            layer: "line",
            reason,
        } => assert!(reason.starts_with("line 2:"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(tcp(recs[2].clone()).dst, addr("[::1]:6"));
}

/// `tcpdump-4.99-source.pcap` (two loopback connections: handshake, data, FINs; a SYN
/// answered by RST) printed by tcpdump 4.99 with `-nn -S`, `-nn`, `-nn -ttt` and `-nn -v`:
/// every listing must give the pcap's numbers.
#[test]
fn tcpdump_real_listings_match_their_pcap() {
    let key = |s: Segment| (s.src, s.dst, s.seq, s.ack, s.len, s.flags, s.window);
    let pcap = data_file("hand/tcpdump-4.99-source.pcap");
    let base: Vec<_> = read_all(&pcap, false)
        .1
        .into_iter()
        .map(tcp)
        .map(key)
        .collect();
    assert_eq!(base.len(), 10);
    for name in ["abs", "rel", "delta", "v"] {
        let text = data_file(&format!("hand/tcpdump-4.99-{name}.txt"));
        let got: Vec<_> = read_all(&text, false)
            .1
            .into_iter()
            .map(tcp)
            .map(key)
            .collect();
        assert_eq!(got, base, "{name}");
    }
    // `-ttt` deltas (10 µs apart) accumulate.
    let delta = data_file("hand/tcpdump-4.99-delta.txt");
    let ts: Vec<i64> = read_all(&delta, false)
        .1
        .into_iter()
        .map(|r| tcp(r).ts_ns)
        .collect();
    assert_eq!(ts, (0..10).map(|i| i * 10_000).collect::<Vec<_>>());
}
