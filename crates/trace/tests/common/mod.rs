//! Test inputs built in code: one TCP connection's packets, wrapped in every encapsulation
//! tcplab decodes, fragmented, and written as pcap files. Shared by `encap.rs` and the
//! never-panics property tests (`robustness.rs`), which mutate them.
#![allow(dead_code)]

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Client 192.0.2.1:41334 (2001:db8::1), server 198.51.100.2:60000 (2001:db8::2).
const C4: [u8; 4] = [192, 0, 2, 1];
const S4: [u8; 4] = [198, 51, 100, 2];
const C6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// One packet of the connection: sent by the client?, flags, seq, ack, payload length.
type Step = (bool, &'static str, u32, u32, usize);

/// A three-way close started by the server, after a request and a 600-byte response (big
/// enough to be fragmented). ISNs 1000 (client), 5000 (server).
pub const THREE_WAY: [Step; 8] = [
    (true, "S", 1000, 0, 0),
    (false, "S.", 5000, 1001, 0),
    (true, ".", 1001, 5001, 0),
    (true, "P.", 1001, 5001, 3),
    (false, "P.", 5001, 1004, 600),
    (false, "F.", 5601, 1004, 0),
    (true, "F.", 1004, 5602, 0),
    (false, ".", 5602, 1005, 0),
];

/// The raw IP packets (IPv4 or IPv6 + TCP) of `steps`.
pub fn ip_packets(v6: bool, steps: &[Step]) -> Vec<Vec<u8>> {
    steps
        .iter()
        .map(|&(from_client, flags, seq, ack, len)| {
            let (sp, dp) = if from_client {
                (41334, 60000)
            } else {
                (60000, 41334)
            };
            let ip = if v6 {
                let (s, d) = if from_client { (C6, S6) } else { (S6, C6) };
                PacketBuilder::ipv6(s, d, 64)
            } else {
                let (s, d) = if from_client { (C4, S4) } else { (S4, C4) };
                PacketBuilder::ipv4(s, d, 64)
            };
            tcp_packet(ip, (sp, dp), flags, seq, ack, len)
        })
        .collect()
}

/// One TCP segment under `ip`: flags spelled as tcpdump does ("S.", "F.", "P.", "R", "."),
/// window 1000, `len` bytes of `a`.
pub fn tcp_packet(
    ip: PacketBuilderStep<IpHeaders>,
    (sp, dp): (u16, u16),
    flags: &str,
    seq: u32,
    ack: u32,
    len: usize,
) -> Vec<u8> {
    let mut b = ip.tcp(sp, dp, seq, 1000);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'F' => b.fin(),
            'P' => b.psh(),
            'R' => b.rst(),
            '.' => b.ack(ack),
            _ => panic!("flag {c}"),
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, &vec![0x61; len]).expect("write");
    out
}

pub fn ether(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC_A.to_vec();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 or IPv6 Ethernet type for a raw IP packet.
pub fn ip_type(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        0x86dd
    } else {
        0x0800
    }
}

/// A hand-built outer IPv4 header (checksum not filled: tcplab does not check it).
pub fn outer_v4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub fn outer_v6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    let mut a = C6;
    a[15] = 0x10;
    h.extend_from_slice(&a);
    a[15] = 0x20;
    h.extend_from_slice(&a);
    h.extend_from_slice(payload);
    h
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

const T1: [u8; 4] = [198, 51, 100, 10];
const T2: [u8; 4] = [198, 51, 100, 20];

/// An outer Ethernet/IPv4/UDP frame to `dport` carrying `payload`.
pub fn over_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    ether(0x0800, &outer_v4(17, T1, T2, &udp(50000, dport, payload)))
}

pub fn vxlan(vni: u32, ip: &[u8]) -> Vec<u8> {
    let mut h = vec![0x08, 0, 0, 0];
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    h.extend_from_slice(&ether(ip_type(ip), ip));
    over_udp(4789, &h)
}

pub fn geneve(vni: u32, ip: &[u8]) -> Vec<u8> {
    // One 8-byte option (optlen 2), protocol: transparent Ethernet bridging.
    let mut h = vec![0x02, 0, 0x65, 0x58];
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    h.extend_from_slice(&[0x01, 0x02, 0x03, 0x01, 0, 0, 0, 0]);
    h.extend_from_slice(&ether(ip_type(ip), ip));
    over_udp(6081, &h)
}

pub fn gtpu(teid: u32, ip: &[u8], with_ext: bool) -> Vec<u8> {
    let mut h = vec![if with_ext { 0x34 } else { 0x30 }, 0xff];
    let ext: &[u8] = if with_ext {
        // seq(2) npdu(1) next=0x85 (PDU session container), 4-byte extension, then none.
        &[0, 0, 0, 0x85, 1, 0x10, 0x05, 0]
    } else {
        &[]
    };
    h.extend_from_slice(&((ext.len() + ip.len()) as u16).to_be_bytes());
    h.extend_from_slice(&teid.to_be_bytes());
    h.extend_from_slice(ext);
    h.extend_from_slice(ip);
    over_udp(2152, &h)
}

/// A GRE header: key when given, sequence number when `seq`, protocol `proto`.
pub fn gre_header(proto: u16, key: Option<u32>, seq: bool) -> Vec<u8> {
    let mut flags = 0u16;
    if key.is_some() {
        flags |= 0x2000;
    }
    if seq {
        flags |= 0x1000;
    }
    let mut h = flags.to_be_bytes().to_vec();
    h.extend_from_slice(&proto.to_be_bytes());
    if let Some(k) = key {
        h.extend_from_slice(&k.to_be_bytes());
    }
    if seq {
        h.extend_from_slice(&7u32.to_be_bytes());
    }
    h
}

pub fn gre(key: Option<u32>, ip: &[u8]) -> Vec<u8> {
    let mut g = gre_header(ip_type(ip), key, false);
    g.extend_from_slice(ip);
    ether(0x0800, &outer_v4(47, T1, T2, &g))
}

pub fn gre_in_udp(ip: &[u8]) -> Vec<u8> {
    let mut g = gre_header(ip_type(ip), None, false);
    g.extend_from_slice(ip);
    over_udp(4754, &g)
}

/// ERSPAN type 1 (no header), 2 (8 bytes) or 3 (12 bytes), mirroring an Ethernet frame.
pub fn erspan(version: u8, session: u16, ip: &[u8]) -> Vec<u8> {
    let (proto, seq, hdr): (u16, bool, Vec<u8>) = match version {
        1 => (0x88be, false, Vec::new()),
        2 => {
            let mut h = (0x1000u16 | 5).to_be_bytes().to_vec(); // ver 1, VLAN 5
            h.extend_from_slice(&session.to_be_bytes());
            h.extend_from_slice(&[0, 0, 0, 0]);
            (0x88be, true, h)
        }
        _ => {
            let mut h = (0x2000u16 | 5).to_be_bytes().to_vec(); // ver 2
            h.extend_from_slice(&session.to_be_bytes());
            h.extend_from_slice(&[0; 8]); // timestamp, SGT, flags (O = 0)
            (0x22eb, true, h)
        }
    };
    let mut g = gre_header(proto, None, seq);
    g.extend_from_slice(&hdr);
    g.extend_from_slice(&ether(ip_type(ip), ip));
    ether(0x0800, &outer_v4(47, T1, T2, &g))
}

/// IP in IP: `outer6` chooses the outer version; the inner one is the packet's own.
pub fn ip_in_ip(outer6: bool, ip: &[u8]) -> Vec<u8> {
    let proto = if ip[0] >> 4 == 6 { 41 } else { 4 };
    if outer6 {
        ether(0x86dd, &outer_v6(proto, ip))
    } else {
        ether(0x0800, &outer_v4(proto, T1, T2, ip))
    }
}

pub fn mpls(labels: &[u32], ip: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bottom = if i + 1 == labels.len() { 0x100 } else { 0 };
        m.extend_from_slice(&((l << 12) | bottom | 64).to_be_bytes());
    }
    m.extend_from_slice(ip);
    ether(0x8847, &m)
}

pub fn pppoe_body(session: u16, ip: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0x00];
    p.extend_from_slice(&session.to_be_bytes());
    p.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    p.extend_from_slice(if ip[0] >> 4 == 6 {
        &[0x00, 0x57]
    } else {
        &[0x00, 0x21]
    });
    p.extend_from_slice(ip);
    p
}

pub fn pppoe(session: u16, ip: &[u8]) -> Vec<u8> {
    ether(0x8864, &pppoe_body(session, ip))
}

pub fn tags(tags: &[(u16, u16)], ip: &[u8]) -> Vec<u8> {
    // tags: (TPID, VLAN id), outermost first.
    let mut body = Vec::new();
    for (i, &(_, id)) in tags.iter().enumerate() {
        body.extend_from_slice(&id.to_be_bytes());
        let next = tags.get(i + 1).map_or(ip_type(ip), |t| t.0);
        body.extend_from_slice(&next.to_be_bytes());
    }
    body.extend_from_slice(ip);
    ether(tags[0].0, &body)
}

pub fn pbb(bvid: u16, isid: u32, ip: &[u8]) -> Vec<u8> {
    let mut body = bvid.to_be_bytes().to_vec();
    body.extend_from_slice(&0x88e7u16.to_be_bytes());
    body.extend_from_slice(&isid.to_be_bytes()); // flags byte 0, I-SID 24 bits
    body.extend_from_slice(&ether(ip_type(ip), ip));
    ether(0x88a8, &body)
}

pub fn etag(ecid: u16, ip: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0];
    body.extend_from_slice(&(ecid & 0x0fff).to_be_bytes());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&ip_type(ip).to_be_bytes());
    body.extend_from_slice(ip);
    ether(0x893f, &body)
}

pub fn vntag(dvif: u16, svif: u16, ip: &[u8]) -> Vec<u8> {
    let mut body = (dvif & 0x3fff).to_be_bytes().to_vec();
    body.extend_from_slice(&(svif & 0x0fff).to_be_bytes());
    body.extend_from_slice(&ip_type(ip).to_be_bytes());
    body.extend_from_slice(ip);
    ether(0x8926, &body)
}

pub fn llc_snap(ip: &[u8]) -> Vec<u8> {
    let mut body = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
    body.extend_from_slice(&ip_type(ip).to_be_bytes());
    body.extend_from_slice(ip);
    ether(body.len() as u16, &body)
}

/// An 802.11 data frame (QoS data when `qos`, an A-MSDU of one subframe when `amsdu`) from a
/// station to its access point, carrying `ip` over LLC/SNAP.
pub fn wifi(ip: &[u8], qos: bool, amsdu: bool) -> Vec<u8> {
    let subtype: u8 = if qos { 0x8 } else { 0 };
    // Frame control: type 2 (data), subtype; flags: to-DS.
    let mut f = vec![(subtype << 4) | (2 << 2), 0x01, 0, 0];
    for a in [[2u8, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]] {
        f.extend_from_slice(&a);
    }
    f.extend_from_slice(&[0x10, 0]); // sequence control
    let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
    snap.extend_from_slice(&ip_type(ip).to_be_bytes());
    snap.extend_from_slice(ip);
    if qos {
        f.extend_from_slice(&[if amsdu { 0x80 } else { 0 }, 0]);
    }
    if amsdu {
        f.extend_from_slice(&[2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&(snap.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&snap);
    f
}

/// The same data frame marked protected: its body is ciphertext.
pub fn wifi_protected(ip: &[u8]) -> Vec<u8> {
    let mut f = wifi(ip, false, false);
    f[1] |= 0x40;
    f
}

pub fn radiotap(ip: &[u8]) -> Vec<u8> {
    // version 0, pad, length 12, present word with the flags bit, flags, padding.
    let mut f = vec![0, 0, 12, 0, 0x02, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&wifi(ip, true, false));
    f
}

pub fn prism(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x44, 0, 0, 0];
    f.extend_from_slice(&144u32.to_le_bytes());
    f.resize(144, 0);
    f.extend_from_slice(&wifi(ip, false, false));
    f
}

pub fn avs(ip: &[u8]) -> Vec<u8> {
    let mut f = 0x8021_1001u32.to_be_bytes().to_vec();
    f.extend_from_slice(&64u32.to_be_bytes());
    f.resize(64, 0);
    f.extend_from_slice(&wifi(ip, true, true));
    f
}

pub fn ppi(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 8, 0];
    f.extend_from_slice(&105u32.to_le_bytes());
    f.extend_from_slice(&wifi(ip, false, false));
    f
}

/// Aruba's GRE 0x8200: an 802.11 QoS-data A-MSDU from an access point to its controller.
pub fn aruba(ip: &[u8]) -> Vec<u8> {
    let mut g = gre_header(0x8200, None, false);
    g.extend_from_slice(&wifi(ip, true, true));
    ether(0x0800, &outer_v4(47, T1, T2, &g))
}

/// WCCPv2 redirect in GRE 0x883E: a 4-byte redirect header, then the IPv4 packet.
pub fn wccp(ip: &[u8]) -> Vec<u8> {
    let mut g = gre_header(0x883e, None, false);
    g.extend_from_slice(&[0, 0, 0, 0]);
    g.extend_from_slice(ip);
    ether(0x0800, &outer_v4(47, T1, T2, &g))
}

/// CAPWAP data (UDP 5247): an 8-byte header (HLEN 2), wireless binding 802.11 and the T bit
/// (native 802.11 frame) when `native`, else an Ethernet frame.
pub fn capwap(ip: &[u8], native: bool) -> Vec<u8> {
    let word: u32 = (2 << 19) | (1 << 9) | (u32::from(native) << 8);
    let mut h = word.to_be_bytes().to_vec();
    h.extend_from_slice(&[0, 0, 0, 0]);
    if native {
        h.extend_from_slice(&wifi(ip, true, false));
    } else {
        h.extend_from_slice(&ether(ip_type(ip), ip));
    }
    over_udp(5247, &h)
}

/// NFLOG: header, a hardware-protocol TLV, then the payload TLV (lengths little-endian).
pub fn nflog(ip: &[u8]) -> Vec<u8> {
    let family = if ip[0] >> 4 == 6 { 10 } else { 2 };
    let mut f = vec![family, 0, 0, 0];
    f.extend_from_slice(&[8, 0, 1, 0, 0x08, 0x00, 0, 0]);
    f.extend_from_slice(&((4 + ip.len()) as u16).to_le_bytes());
    f.extend_from_slice(&9u16.to_le_bytes());
    f.extend_from_slice(ip);
    while f.len() % 4 != 0 {
        f.push(0);
    }
    f
}

/// Linux cooked v1 header with `protocol`.
pub fn sll(protocol: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Split a raw IPv4 packet into fragments whose payloads hold at most `size` bytes (a
/// multiple of 8), in the given order of fragment indexes.
pub fn fragment_v4(ip: &[u8], size: usize, order: &[usize]) -> Vec<Vec<u8>> {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let payload = &ip[ihl..];
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    order
        .iter()
        .map(|&i| {
            let mut h = ip[..ihl].to_vec();
            let off = (i * size / 8) as u16;
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&(more | off).to_be_bytes());
            h[2..4].copy_from_slice(&((ihl + chunks[i].len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            h.extend_from_slice(chunks[i]);
            h
        })
        .collect()
}

/// Split a raw IPv6 packet (no extension headers) into fragments at byte offsets `cuts`
/// (each a multiple of 8) and emit them in `order`. `overlap` adds a fragment that
/// overlaps the first one's end by 8 bytes (RFC 5722 territory).
pub fn fragment_v6(ip: &[u8], cuts: &[usize], order: &[usize], overlap: bool) -> Vec<Vec<u8>> {
    let next = ip[6];
    let payload = &ip[40..];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    let mut pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    if overlap {
        pieces.push((bounds[1] - 8, bounds[1] + 8));
    }
    let n = bounds.len() - 1;
    let mut order = order.to_vec();
    if overlap {
        order.insert(1, pieces.len() - 1);
    }
    order
        .iter()
        .map(|&i| {
            let (s, e) = pieces[i];
            let mut h = ip[..40].to_vec();
            h[6] = 44;
            h[4..6].copy_from_slice(&((8 + e - s) as u16).to_be_bytes());
            let more = u16::from(e < payload.len() || (i >= n));
            h.push(next);
            h.push(0);
            h.extend_from_slice(&((s as u16) | more).to_be_bytes());
            h.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
            h.extend_from_slice(&payload[s..e]);
            h
        })
        .collect()
}

/// A classic pcap (µs, little-endian) of `frames` of link type `link`, one ms apart.
pub fn pcap(link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&link.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        b.extend_from_slice(&((i as u32) * 1000).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    b
}

/// Every encapsulation as (name, link type, wrap function), each applied to one IP packet.
pub type Wrap = fn(&[u8]) -> Vec<u8>;

pub fn wrappers() -> Vec<(&'static str, u32, Wrap, &'static [&'static str])> {
    vec![
        ("vxlan", 1, |ip| vxlan(42, ip), &["vxlan:vni=42"]),
        ("geneve", 1, |ip| geneve(7, ip), &["geneve:vni=7"]),
        (
            "gre",
            1,
            |ip| gre(Some(9), ip),
            &["gre:198.51.100.10>198.51.100.20,key=9"],
        ),
        (
            "gre-udp",
            1,
            gre_in_udp,
            &["gre-udp:198.51.100.10>198.51.100.20"],
        ),
        ("erspan1", 1, |ip| erspan(1, 0, ip), &["erspan1:session=0"]),
        (
            "erspan2",
            1,
            |ip| erspan(2, 33, ip),
            &["erspan2:session=33"],
        ),
        (
            "erspan3",
            1,
            |ip| erspan(3, 44, ip),
            &["erspan3:session=44"],
        ),
        ("gtpu", 1, |ip| gtpu(0xabc, ip, false), &["gtpu:teid=2748"]),
        ("gtpu-ext", 1, |ip| gtpu(5, ip, true), &["gtpu:teid=5"]),
        (
            "ipip4",
            1,
            |ip| ip_in_ip(false, ip),
            &["?in4:198.51.100.10>198.51.100.20"],
        ),
        (
            "ipip6",
            1,
            |ip| ip_in_ip(true, ip),
            &["?in6:2001:db8::10>2001:db8::20"],
        ),
        (
            "mpls",
            1,
            |ip| mpls(&[16, 1000], ip),
            &["mpls:label=16", "mpls:label=1000"],
        ),
        ("pppoe", 1, |ip| pppoe(29, ip), &["pppoe:session=29"]),
        (
            "qinq",
            1,
            |ip| tags(&[(0x88a8, 100), (0x8100, 200)], ip),
            &["vlan:id=100", "vlan:id=200"],
        ),
        (
            "pbb",
            1,
            |ip| pbb(7, 0x10203, ip),
            &["vlan:id=7", "pbb:isid=66051"],
        ),
        ("etag", 1, |ip| etag(300, ip), &["etag:ecid=300"]),
        (
            "vntag",
            1,
            |ip| vntag(12, 34, ip),
            &["vntag:dvif=12,svif=34"],
        ),
        ("llc-snap", 1, llc_snap, &[]),
        ("802.11", 105, |ip| wifi(ip, false, false), &[]),
        ("802.11-qos-amsdu", 105, |ip| wifi(ip, true, true), &[]),
        ("radiotap", 127, radiotap, &[]),
        ("prism", 119, prism, &[]),
        ("avs", 163, avs, &[]),
        ("ppi", 192, ppi, &[]),
        ("aruba", 1, aruba, &["aruba:198.51.100.10>198.51.100.20"]),
        (
            "capwap-80211",
            1,
            |ip| capwap(ip, true),
            &["capwap:198.51.100.10>198.51.100.20"],
        ),
        (
            "capwap-ether",
            1,
            |ip| capwap(ip, false),
            &["capwap:198.51.100.10>198.51.100.20"],
        ),
        (
            "ppp",
            9,
            |ip| {
                let mut f = vec![0xff, 0x03];
                f.extend_from_slice(&ip_ppp_proto(ip));
                f.extend_from_slice(ip);
                f
            },
            &[],
        ),
        (
            "ppp-hdlc",
            50,
            |ip| {
                let mut f = vec![0xff, 0x03];
                f.extend_from_slice(&ip_ppp_proto(ip));
                f.extend_from_slice(ip);
                f
            },
            &[],
        ),
        (
            "c-hdlc",
            104,
            |ip| {
                let mut f = vec![0x0f, 0x00];
                f.extend_from_slice(&ip_type(ip).to_be_bytes());
                f.extend_from_slice(ip);
                f
            },
            &[],
        ),
        ("nflog", 239, nflog, &[]),
        (
            "ppp-ether",
            51,
            |ip| pppoe_body(8, ip),
            &["pppoe:session=8"],
        ),
        (
            "mpls-in-udp",
            1,
            |ip| {
                let f = mpls(&[21], ip);
                over_udp(6635, &f[14..])
            },
            &["mpls:label=21"],
        ),
        (
            "mpls-pseudowire",
            1,
            |ip| {
                // Label, a zero control word, then the customer's Ethernet frame.
                let mut m = ((30u32 << 12) | 0x100 | 64).to_be_bytes().to_vec();
                m.extend_from_slice(&[0, 0, 0, 0]);
                m.extend_from_slice(&ether(ip_type(ip), ip));
                ether(0x8847, &m)
            },
            &["mpls:label=30"],
        ),
        (
            "pptp",
            1,
            |ip| {
                // Enhanced GRE (version 1, K and S set): payload length + call id 77, a
                // sequence number, then PPP in HDLC-like framing.
                let mut g = vec![0x30, 0x01, 0x88, 0x0b];
                g.extend_from_slice(&((ip.len() + 4) as u16).to_be_bytes());
                g.extend_from_slice(&77u16.to_be_bytes());
                g.extend_from_slice(&1u32.to_be_bytes());
                g.extend_from_slice(&[0xff, 0x03]);
                g.extend_from_slice(&ip_ppp_proto(ip));
                g.extend_from_slice(ip);
                ether(0x0800, &outer_v4(47, T1, T2, &g))
            },
            &["gre:198.51.100.10>198.51.100.20,key=77"],
        ),
        (
            "vxlan-8472",
            1,
            |ip| {
                let mut h = vec![0x08, 0, 0, 0];
                h.extend_from_slice(&(9u32 << 8).to_be_bytes());
                h.extend_from_slice(&ether(ip_type(ip), ip));
                over_udp(8472, &h)
            },
            &["vxlan:vni=9"],
        ),
        (
            "sll2-qinq",
            276,
            |ip| {
                let f = tags(&[(0x88a8, 10), (0x8100, 20)], ip);
                let mut s = vec![0x88, 0xa8, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6];
                s.extend_from_slice(&MAC_A);
                s.extend_from_slice(&[0, 0]);
                s.extend_from_slice(&f[14..]);
                s
            },
            &["vlan:id=10", "vlan:id=20"],
        ),
        (
            "sll-pppoe",
            113,
            |ip| sll(0x8864, &pppoe_body(3, ip)),
            &["pppoe:session=3"],
        ),
        (
            "sll-mpls",
            113,
            |ip| {
                let f = mpls(&[17], ip);
                sll(0x8847, &f[14..])
            },
            &["mpls:label=17"],
        ),
        (
            "sll-vxlan",
            113,
            |ip| {
                let f = vxlan(5, ip);
                sll(0x0800, &f[14..])
            },
            &["vxlan:vni=5"],
        ),
    ]
}

fn ip_ppp_proto(ip: &[u8]) -> [u8; 2] {
    if ip[0] >> 4 == 6 {
        [0x00, 0x57]
    } else {
        [0x00, 0x21]
    }
}

/// pcap files of the three-way close in every encapsulation (IPv4 and IPv6 inner packets),
/// and fragmented (IPv4 and IPv6): the seeds of the never-panics property tests.
pub fn seed_captures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let ips = ip_packets(v6, &THREE_WAY);
        for (name, link, wrap, _) in wrappers() {
            let frames: Vec<Vec<u8>> = ips.iter().map(|ip| wrap(ip)).collect();
            out.push((
                format!("{name}-v{}", if v6 { 6 } else { 4 }),
                pcap(link, &frames),
            ));
        }
    }
    let v4 = ip_packets(false, &THREE_WAY);
    let mut frames = Vec::new();
    for ip in &v4 {
        if ip.len() > 200 {
            for f in fragment_v4(ip, 256, &[2, 0, 1]) {
                frames.push(ether(0x0800, &f));
            }
        } else {
            frames.push(ether(0x0800, ip));
        }
    }
    out.push(("fragments-v4".into(), pcap(1, &frames)));
    let v6 = ip_packets(true, &THREE_WAY);
    let mut frames = Vec::new();
    for ip in &v6 {
        if ip.len() > 200 {
            for f in fragment_v6(ip, &[256, 512], &[1, 0, 2], false) {
                frames.push(vxlan(42, &f));
            }
        } else {
            frames.push(vxlan(42, ip));
        }
    }
    out.push(("fragments-v6-in-vxlan".into(), pcap(1, &frames)));
    out
}

/// Calls `check(what, bytes)` on every checked-in capture (tests/data/{hand,live,seed}),
/// whole and cut at two thirds (a file that ends mid-record), and asserts there were at
/// least ten of them.
pub fn each_checked_in_capture_and_cut(mut check: impl FnMut(&str, &[u8])) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut files = 0;
    for dir in ["hand", "live", "seed"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).expect("data dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            for cut in [bytes.len(), bytes.len() * 2 / 3] {
                check(&format!("{} cut at {cut}", path.display()), &bytes[..cut]);
            }
            files += 1;
        }
    }
    assert!(files >= 10, "only {files} captures found");
}
