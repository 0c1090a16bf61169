//! Link-layer types and frame decoding (etherparse) into [`Segment`]s.
//!
//! [`decode`] maps a pcap link type onto the matching etherparse entry point
//! (`from_ethernet`, `from_ether_type`, `from_ip`) and then reads the TCP header itself, so that
//! a header whose options were cut by the snaplen still yields a segment. The payload length
//! always comes from the IP header's length fields, never from the captured bytes: a capture
//! with `-s 96` must report the same `len` as a full one.
//!
//! **Invariant:** no heap allocation on the success paths (`Record::Tcp`, `Record::NonTcp`);
//! only `Record::Damaged` builds a `String`. No slicing without a length check.

use crate::input::Record;
use crate::segment::{Flags, Segment};
use crate::seq::SeqNum;
use etherparse::err::Layer;
use etherparse::{EtherType, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The link types tcplab decodes (values are LINKTYPE_* from the pcap spec).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkType {
    /// 0: BSD loopback (4-byte host-order family).
    Null,
    /// 1: Ethernet.
    En10mb,
    /// 101: raw IPv4/IPv6.
    Raw,
    /// 108: OpenBSD loopback (4-byte network-order family).
    Loop,
    /// 113: Linux cooked v1.
    LinuxSll,
    /// 228: raw IPv4.
    Ipv4,
    /// 229: raw IPv6.
    Ipv6,
    /// 276: Linux cooked v2.
    LinuxSll2,
    /// Anything else (frames become `Record::Damaged { layer: "link" }`).
    Other(u32),
}

impl LinkType {
    /// Map a LINKTYPE_* value (pcap header `network`, pcapng IDB `LinkType`).
    ///
    /// 12 and 14 are the DLT_RAW values of some BSDs that leak into files unmapped; they are
    /// read as [`LinkType::Raw`].
    pub fn from_u32(v: u32) -> LinkType {
        match v {
            0 => LinkType::Null,
            1 => LinkType::En10mb,
            101 | 12 | 14 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }

    /// The LINKTYPE_* number (the canonical one: [`LinkType::Raw`] is 101).
    pub fn as_u32(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::En10mb => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }

    /// The name without its `LINKTYPE_` prefix (`"EN10MB"`, `"LINUX_SLL2"`), or
    /// `"LINKTYPE_<n>"` for a type tcplab does not decode.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            LinkType::Null => "NULL",
            LinkType::En10mb => "EN10MB",
            LinkType::Raw => "RAW",
            LinkType::Loop => "LOOP",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Other(n) => return std::borrow::Cow::Owned(format!("LINKTYPE_{n}")),
        })
    }
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// Length of the Linux cooked v1 header (`sll_header`); the protocol is its last 2 bytes.
const SLL_LEN: usize = 16;
/// Length of the Linux cooked v2 header (`sll2_header`); the protocol is its first 2 bytes.
const SLL2_LEN: usize = 20;
/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;

/// Decode one captured frame of link type `link`, captured at `ts_ns`.
///
/// Never panics, whatever `frame` holds. `frame` may be shorter than the packet on the wire
/// (snaplen): the headers that are present are decoded and `Segment::len` comes from the IP
/// header. A fragment other than the first is [`Record::NonTcp`]; a first fragment of a TCP
/// segment is [`Record::Damaged`] (tcplab does not reassemble, and its length would be wrong).
pub fn decode(link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
    if let Some(rec) = fast(link, ts_ns, frame) {
        return rec;
    }
    decode_lax(link, ts_ns, frame)
}

/// The common case without etherparse: Ethernet/cooked/loopback/raw, no VLAN, then an
/// unfragmented IPv4 or extension-less IPv6 packet carrying TCP, with consistent length
/// fields. Returns `None` for anything else, which then takes the general path
/// ([`decode_lax`]). etherparse's lax slicing costs more than everything else per packet
/// (it builds and moves a large struct); the test `fast_path_agrees_with_etherparse` keeps
/// both paths equal.
fn fast(link: LinkType, ts_ns: i64, frame: &[u8]) -> Option<Record> {
    let (ether_type, ip) = match link {
        LinkType::En10mb => (Some(be16(frame, 12)?), frame.get(14..)?),
        LinkType::LinuxSll => (Some(be16(frame, SLL_LEN - 2)?), frame.get(SLL_LEN..)?),
        LinkType::LinuxSll2 => (Some(be16(frame, 0)?), frame.get(SLL2_LEN..)?),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => (None, frame),
        LinkType::Null | LinkType::Loop | LinkType::Other(_) => return None,
    };
    let version = ip.first()? >> 4;
    match (ether_type, version) {
        (Some(0x0800) | None, 4) => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let hdr = ip.get(..ihl.max(20))?;
            let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
            let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff; // MF + offset
            if ihl < 20 || hdr[9] != IPPROTO_TCP || frag != 0 || total < ihl {
                return None;
            }
            let end = total.min(ip.len());
            let id = u32::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            let src = IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]));
            Some(tcp(ts_ns, src, dst, id, ip.get(ihl..end)?, total - ihl))
        }
        (Some(0x86dd) | None, 6) => {
            let hdr = ip.get(..40)?;
            let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            if hdr[6] != IPPROTO_TCP || plen == 0 {
                return None;
            }
            let end = (40 + plen).min(ip.len());
            let flow = u32::from_be_bytes([0, hdr[1] & 0x0f, hdr[2], hdr[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&hdr[8..24]);
            let src = IpAddr::V6(Ipv6Addr::from(a));
            a.copy_from_slice(&hdr[24..40]);
            let dst = IpAddr::V6(Ipv6Addr::from(a));
            Some(tcp(ts_ns, src, dst, flow, ip.get(40..end)?, plen))
        }
        _ => None,
    }
}

/// The general path: etherparse's lax slicing (VLAN, IPv6 extension headers, fragments,
/// damage of every kind).
fn decode_lax(link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
    let sliced = match link {
        LinkType::En10mb => match LaxSlicedPacket::from_ethernet(frame) {
            Ok(p) => p,
            Err(e) => return damaged("link", format_args!("ethernet: {e}")),
        },
        LinkType::LinuxSll => {
            // sll_header: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
            let Some(proto) = be16(frame, SLL_LEN - 2) else {
                return short_link("LINUX_SLL", frame.len(), SLL_LEN);
            };
            LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[SLL_LEN..])
        }
        LinkType::LinuxSll2 => {
            // sll2_header: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1)
            // addr(8).
            let (Some(proto), true) = (be16(frame, 0), frame.len() >= SLL2_LEN) else {
                return short_link("LINUX_SLL2", frame.len(), SLL2_LEN);
            };
            LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[SLL2_LEN..])
        }
        LinkType::Null | LinkType::Loop => {
            let Some(fam) = frame.get(..4) else {
                return short_link(
                    if link == LinkType::Null {
                        "NULL"
                    } else {
                        "LOOP"
                    },
                    frame.len(),
                    4,
                );
            };
            // NULL stores the AF_ value in the capturing host's byte order, which the file does
            // not record; the values are < 256, so the non-zero end tells the order. LOOP is
            // always network order, which the same test also reads correctly.
            let family = if fam[0] == 0 && fam[1] == 0 {
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
            } else {
                u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]])
            };
            match family {
                // AF_INET everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD),
                // 30 (Darwin).
                2 | 24 | 28 | 30 => match from_ip(&frame[4..]) {
                    Ok(p) => p,
                    Err(r) => return r,
                },
                _ => return Record::NonTcp,
            }
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => match from_ip(frame) {
            Ok(p) => p,
            Err(r) => return r,
        },
        LinkType::Other(n) => {
            return damaged("link", format_args!("link type {n} is not supported"));
        }
    };
    from_sliced(ts_ns, &sliced)
}

/// Slice from an IP header whose version is given by the first nibble.
fn from_ip(bytes: &[u8]) -> Result<LaxSlicedPacket<'_>, Record> {
    let layer = match bytes.first().map(|b| b >> 4) {
        Some(4) => "ipv4",
        Some(6) => "ipv6",
        Some(v) => {
            return Err(damaged(
                "link",
                format_args!("raw IP frame with IP version {v}"),
            ))
        }
        None => return Err(damaged("link", format_args!("empty raw IP frame"))),
    };
    LaxSlicedPacket::from_ip(bytes).map_err(|e| damaged(layer, format_args!("{e}")))
}

/// Turn etherparse's lax slicing into a record.
fn from_sliced(ts_ns: i64, p: &LaxSlicedPacket<'_>) -> Record {
    let (src, dst, ip_id, payload) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let pl = v4.payload();
            // Declared payload = total length - IPv4 header - AH; when the capture is cut,
            // etherparse falls back to the slice, so recompute from the header field.
            let declared = if pl.incomplete {
                usize::from(h.total_len())
                    .saturating_sub(h.slice().len())
                    .saturating_sub(v4.extensions().auth.map_or(0, |a| a.slice().len()))
            } else {
                pl.payload.len()
            };
            if pl.fragmented {
                return fragment(pl, h.fragments_offset().value() == 0, "ipv4");
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                u32::from(h.identification()),
                (pl, declared),
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let pl = v6.payload();
            let declared = if pl.incomplete {
                usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len())
            } else {
                pl.payload.len()
            };
            if pl.fragmented {
                let first = v6.extensions().clone().into_iter().all(|e| match e {
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => f.fragment_offset().value() == 0,
                    _ => true,
                });
                return fragment(pl, first, "ipv6");
            }
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                // The flow label plays the role of the IPv4 id in the fingerprint: the kernel
                // keeps it per socket, so both AF_PACKET copies carry the same one.
                h.flow_label().value(),
                (pl, declared),
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Record::NonTcp,
        None => return stop_error(p).unwrap_or(Record::NonTcp),
    };
    let (pl, declared) = payload;
    if pl.ip_number.0 != IPPROTO_TCP {
        // An IP header or extension that failed is damage; a UDP/ICMP problem is not ours.
        return stop_error(p).unwrap_or(Record::NonTcp);
    }
    tcp(ts_ns, src, dst, ip_id, pl.payload, declared)
}

/// A fragmented TCP payload: later fragments carry no TCP header (not TCP for us); the first
/// one does, but its length is not the segment's.
fn fragment(pl: &LaxIpPayloadSlice<'_>, first: bool, layer: &'static str) -> Record {
    if first && pl.ip_number.0 == IPPROTO_TCP {
        damaged(
            layer,
            format_args!("first fragment of a TCP segment (reassembly is not supported)"),
        )
    } else {
        Record::NonTcp
    }
}

/// Decode the TCP header in `bytes` (which may be cut short of the options); `declared` is
/// the TCP segment length according to the IP header.
fn tcp(ts_ns: i64, src: IpAddr, dst: IpAddr, ip_id: u32, bytes: &[u8], declared: usize) -> Record {
    let Some(fixed) = bytes.get(..20) else {
        return damaged(
            "tcp",
            format_args!("TCP header cut at {} of 20 bytes", bytes.len()),
        );
    };
    let data_offset = usize::from(fixed[12] >> 4) * 4;
    if data_offset < 20 {
        return damaged(
            "tcp",
            format_args!("data offset {} is below the minimum of 20", data_offset),
        );
    }
    if declared < data_offset {
        return damaged(
            "tcp",
            format_args!(
                "IP payload of {declared} bytes is shorter than the TCP header ({data_offset})"
            ),
        );
    }
    let be32 = |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    let sport = u16::from_be_bytes([fixed[0], fixed[1]]);
    let dport = u16::from_be_bytes([fixed[2], fixed[3]]);
    let checksum = [fixed[16], fixed[17]];
    // Options present in the capture (a snaplen may cut them: hash what is there).
    let opts = bytes.get(20..data_offset.min(bytes.len())).unwrap_or(&[]);
    let mut h = Fnv::new();
    h.write(&ip_id.to_be_bytes());
    h.write(&checksum);
    h.write(opts);
    Record::Tcp(Segment {
        ts_ns,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq: SeqNum(be32(4)),
        ack: SeqNum(be32(8)),
        flags: Flags(fixed[13] & 0x3f),
        len: u32::try_from(declared - data_offset).unwrap_or(u32::MAX),
        window: u16::from_be_bytes([fixed[14], fixed[15]]),
        fingerprint: h.finish_nonzero(),
    })
}

/// If etherparse stopped on a link or IP layer, the frame is damaged.
fn stop_error(p: &LaxSlicedPacket<'_>) -> Option<Record> {
    let (err, layer) = p.stop_err.as_ref()?;
    let name = match layer {
        Layer::LinuxSllHeader
        | Layer::Ethernet2Header
        | Layer::EtherPayload
        | Layer::VlanHeader
        | Layer::MacsecHeader
        | Layer::MacsecPacket => "link",
        Layer::Ipv4Header | Layer::Ipv4Packet => "ipv4",
        Layer::Ipv6Header
        | Layer::Ipv6Packet
        | Layer::Ipv6ExtHeader
        | Layer::Ipv6HopByHopHeader
        | Layer::Ipv6DestOptionsHeader
        | Layer::Ipv6RouteHeader
        | Layer::Ipv6FragHeader => "ipv6",
        Layer::IpHeader | Layer::IpAuthHeader => match &p.net {
            Some(LaxNetSlice::Ipv6(_)) => "ipv6",
            _ => "ipv4",
        },
        Layer::TcpHeader => "tcp",
        _ => return None,
    };
    Some(damaged(name, format_args!("{err}")))
}

fn short_link(name: &str, len: usize, need: usize) -> Record {
    damaged(
        "link",
        format_args!("{name} header cut at {len} of {need} bytes"),
    )
}

fn damaged(layer: &'static str, reason: std::fmt::Arguments<'_>) -> Record {
    Record::Damaged {
        layer,
        reason: reason.to_string(),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// 64-bit FNV-1a: tiny, std-only, and good enough to tell two transmissions apart.
#[derive(Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// 0 means "unknown" in [`Segment::fingerprint`], so never return it.
    fn finish_nonzero(&self) -> u64 {
        self.0.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn v4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(41334, 60000, 1000, 512)
            .ack(77)
            .psh()
            .options(&[etherparse::TcpOptionElement::Timestamp(5, 6)])
            .expect("options fit");
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("write");
        v
    }

    fn seg(r: Record) -> Segment {
        match r {
            Record::Tcp(s) => s,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn raw_ipv4_decodes_fields() {
        let s = seg(decode(LinkType::Raw, 7, &v4_tcp(b"abc")));
        assert_eq!(s.ts_ns, 7);
        assert_eq!(s.src, "127.0.0.1:41334".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.2:60000".parse().unwrap());
        assert_eq!((s.seq, s.ack), (SeqNum(1000), SeqNum(77)));
        assert_eq!(s.flags, Flags(Flags::ACK | Flags::PSH));
        assert_eq!((s.len, s.window), (3, 512));
        assert_ne!(s.fingerprint, 0);
    }

    #[test]
    fn snaplen_cut_keeps_ip_length() {
        let full = v4_tcp(&[0u8; 1000]);
        // Cut inside the options: 20 IP + 20 TCP + 4 of the 12 option bytes.
        let s = seg(decode(LinkType::Ipv4, 0, &full[..44]));
        assert_eq!(s.len, 1000);
        let whole = seg(decode(LinkType::Ipv4, 0, &full));
        assert_eq!(whole.len, 1000);
        // A cut before the end of the fixed TCP header is damage.
        assert!(matches!(
            decode(LinkType::Ipv4, 0, &full[..30]),
            Record::Damaged { layer: "tcp", .. }
        ));
    }

    #[test]
    fn fingerprint_differs_with_ip_id() {
        let a = v4_tcp(b"");
        let mut b = a.clone();
        b[5] ^= 1; // IPv4 identification, low byte
        let fa = seg(decode(LinkType::Raw, 0, &a)).fingerprint;
        let fb = seg(decode(LinkType::Raw, 0, &b)).fingerprint;
        assert_ne!(fa, fb);
        assert_eq!(fa, seg(decode(LinkType::Raw, 9, &a)).fingerprint);
    }

    #[test]
    fn never_panics_on_prefixes_and_garbage() {
        let full = v4_tcp(b"hello");
        for link in [
            LinkType::Null,
            LinkType::En10mb,
            LinkType::Raw,
            LinkType::Loop,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Ipv4,
            LinkType::Ipv6,
            LinkType::Other(147),
        ] {
            for n in 0..=full.len() {
                let _ = decode(link, 0, &full[..n]);
            }
            let junk: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
            for n in 0..junk.len() {
                let _ = decode(link, 0, &junk[..n]);
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_etherparse() {
        let mut frames = vec![v4_tcp(b"abc"), v4_tcp(&[0; 300])];
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .fin()
            .write(&mut v6, b"xyz")
            .expect("write");
        frames.push(v6);
        let mut eth = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .write(&mut eth, &[])
            .expect("write");
        frames.push(eth);
        let mut fast_hits = 0;
        for f in &frames {
            for n in 0..=f.len() {
                for i in 0..f.len().min(60) {
                    for x in [0x00, 0xff, 0x40, 0x05, 0x08] {
                        let mut g = f[..n].to_vec();
                        if let Some(b) = g.get_mut(i) {
                            *b ^= x;
                        }
                        for link in [LinkType::Raw, LinkType::En10mb, LinkType::LinuxSll2] {
                            if let Some(r) = fast(link, 1, &g) {
                                fast_hits += 1;
                                assert_eq!(r, decode_lax(link, 1, &g), "{link:?} {g:02x?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(fast_hits > 10_000, "{fast_hits}");
    }

    #[test]
    fn link_type_names() {
        assert_eq!(LinkType::from_u32(276), LinkType::LinuxSll2);
        assert_eq!(LinkType::from_u32(12), LinkType::Raw);
        assert_eq!(LinkType::from_u32(147).as_str(), "LINKTYPE_147");
        assert_eq!(LinkType::LinuxSll.as_str(), "LINUX_SLL");
        for v in [0, 1, 101, 108, 113, 228, 229, 276, 999] {
            assert_eq!(LinkType::from_u32(v).as_u32(), v);
        }
    }
}
