//! Link-layer types and frame decoding into [`Segment`]s: a streaming walk from the link
//! header through every encapsulation to TCP.
//!
//! [`Decoder::decode`] takes one frame of a pcap link type. The common case (Ethernet,
//! cooked or raw framing, then an unfragmented IPv4 or extension-less IPv6 packet carrying
//! TCP) takes a short path, and so do the common tunnels down to such a packet (Ethernet
//! with QinQ tags, an MPLS stack, or IPv4 carrying VXLAN, GENEVE or keyed GRE: `fast_tunnel`);
//! everything else walks layer by layer: 802.1Q/QinQ, 802.1ah (PBB),
//! E-Tag, VN-Tag, LLC/SNAP, MPLS stacks (with or without a pseudowire control word), PPPoE,
//! PPP and C-HDLC framing, NFLOG, IPv4 options and IPv6 extension headers, IPv4/IPv6 fragments
//! (reassembled, see [`crate::reassembly`]), IP-in-IP (4in4, 6in4, 4in6, 6in6), GRE (keys,
//! sequence numbers, PPTP's enhanced GRE, ERSPAN I/II/III), GRE-in-UDP (4754), VXLAN (4789,
//! and Linux's old 8472), GENEVE (6081) and GTP-U (2152). Layers that identify a path
//! (VLAN ids, VNIs, labels, keys, tunnel endpoints) are recorded in [`Segment::encap`].
//!
//! The TCP header is read here too, so that a header whose options were cut by the snaplen
//! still yields a segment. The payload length always comes from the IP header's length
//! fields, never from the captured bytes: a capture with `-s 96` must report the same `len`
//! as a full one.
//!
//! **Invariant:** no heap allocation for an untunnelled segment or a non-TCP frame; a
//! tunnelled segment shares its path with the earlier packets of that path (the decoder's
//! [`PathCache`]; only a path not seen recently allocates), a fragment allocates its
//! datagram, `Record::Damaged` its reason. No slicing without a length check; at most
//! [`MAX_LAYERS`] encapsulations.

use crate::encap::{EncapLayer, LayerStack, PathCache, MAX_LAYERS};
use crate::flow::{self, FlowFilter};
use crate::reassembly::{self, FragKey, Fragment, Outcome, Reassembly};
use crate::record::Record;
use crate::segment::{Flags, IpFacts, Segment};
use crate::seq::SeqNum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

pub use crate::link_type::LinkType;

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

/// Decode one frame without fragment reassembly (a fragment is [`Record::Fragment`] and
/// never completes). Readers use a [`Decoder`], which keeps that state.
pub fn decode(link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
    Decoder::default().decode(link, ts_ns, frame)
}

/// Frame decoding with the state that spans frames: fragments being reassembled.
#[derive(Debug, Default)]
pub struct Decoder {
    frags: Reassembly,
    /// Recent encapsulation paths, so that a tunnel's packets share one.
    paths: PathCache,
    /// The layers of the frame being walked, kept between frames and cleared per frame:
    /// building a fresh stack per frame (eight layers of filler, then moved into the walk)
    /// cost a tenth of a tunnel-heavy run's decoding in store-forwarding stalls.
    stack: LayerStack,
    /// Keep only these connections ([`Decoder::keep_only`]).
    keep: Option<FlowFilter>,
}

impl Decoder {
    /// Decode one captured frame of link type `link`, captured at `ts_ns`.
    ///
    /// Never panics, whatever `frame` holds. `frame` may be shorter than the packet on the
    /// wire (snaplen): the headers that are present are decoded and `Segment::len` comes from
    /// the IP header. A fragment is [`Record::Fragment`] until the one that completes its
    /// datagram, whose record carries the reassembled segment.
    #[inline(always)]
    pub fn decode(&mut self, link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
        if let Some(p) = plain(link, frame) {
            if self.keep.is_some_and(|keep| p.elsewhere(keep)) {
                return Record::Elsewhere { ts_ns };
            }
            return tcp(ts_ns, p.ip, p.tcp, p.declared);
        }
        // Inlined into each reader up to here, the short path's segment is built where the
        // reader returns it: as a call of its own, the 120-byte record was built on a stack
        // and copied into the reader's result, stalling on the copy (5-6% of `--summary`'s
        // CPU in paired runs). The rest stays out of line, so the readers stay small.
        self.decode_other(link, ts_ns, frame)
    }

    /// [`Decoder::decode`] of a frame the short path does not take: tunnels, fragments,
    /// damage, anything unusual.
    #[inline(never)]
    fn decode_other(&mut self, link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
        self.stack.clear();
        if let Some(mut rec) = fast_tunnel(link, ts_ns, frame, &mut self.stack) {
            if let Record::Tcp(seg) = &mut rec {
                seg.encap = self.paths.path(&self.stack);
            }
            return rec;
        }
        self.stack.clear();
        let mut walk = Walk {
            frags: &mut self.frags,
            paths: &mut self.paths,
            ts_ns,
            path: &mut self.stack,
            ip: IpFacts::default(),
        };
        walk.link(link, frame)
    }

    /// Keep only the connections `keep` keeps (None: all): a segment of another connection
    /// that the short path would take whole comes back as [`Record::Elsewhere`] as soon as
    /// its addresses and ports are read ([`elsewhere`]). Every other frame (tunnels,
    /// fragments, damage) is decoded as before, whoever's it is.
    pub fn keep_only(&mut self, keep: Option<FlowFilter>) {
        self.keep = keep;
    }

    /// Datagrams given up so far (timed out, overlapping, evicted).
    pub fn dropped_fragments(&self) -> reassembly::Dropped {
        self.frags.dropped
    }

    /// The capture ended: give up incomplete datagrams and report them as a warning.
    pub fn finish(&mut self) -> Option<crate::warning::Warning> {
        self.frags.finish();
        let d = self.frags.dropped;
        (d != reassembly::Dropped::default()).then_some(crate::warning::Warning::FragmentsDropped {
            timed_out: d.timed_out,
            overlapping: d.overlapping,
            evicted: d.evicted,
        })
    }
}

/// The common case by hand: Ethernet/cooked/raw, no VLAN, then an unfragmented IPv4 or
/// extension-less IPv6 packet carrying TCP, with consistent length fields. Returns `None` for
/// anything else, which then takes the layer-by-layer walk ([`Walk`]); the test
/// `fast_path_agrees_with_the_walk` keeps both equal. ([`Decoder::decode`] inlines it, to
/// look at a frame's addresses before it builds a segment.)
#[cfg(test)]
fn fast(link: LinkType, ts_ns: i64, frame: &[u8]) -> Option<Record> {
    let p = plain(link, frame)?;
    Some(tcp(ts_ns, p.ip, p.tcp, p.declared))
}

/// What the short path reads of a frame before the TCP header.
struct Plain<'a> {
    ip: IpHeader,
    /// From the TCP header on, as captured.
    tcp: &'a [u8],
    /// The TCP segment's length by the IP header.
    declared: usize,
}

impl Plain<'_> {
    /// Is this a TCP segment that the short path takes whole (a [`Record::Tcp`]) of a
    /// connection `keep` does not keep? Then, for a decoder told to keep only some
    /// connections, it need not be decoded further than its addresses and ports, and comes
    /// back as [`Record::Elsewhere`]. Any other frame (damaged, tunnelled, fragmented,
    /// kept) is decoded as usual.
    fn elsewhere(&self, keep: FlowFilter) -> bool {
        let Some(fixed) = sound_tcp_fixed(self.tcp, self.declared) else {
            return false;
        };
        let (sport, dport) = (be16_at(fixed, 0), be16_at(fixed, 2));
        // `flow::flow_hash` by hand for IPv4, without building the socket addresses: every
        // segment of the file passes here in every table thread (building them measured a
        // few percent slower).
        let hash = match (self.ip.src, self.ip.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => flow::v4_flow_hash(
                flow::v4_word(SocketAddrV4::new(a, sport)),
                flow::v4_word(SocketAddrV4::new(b, dport)),
                0,
            ),
            (src, dst) => {
                flow::flow_hash(SocketAddr::new(src, sport), SocketAddr::new(dst, dport), 0)
            }
        };
        !keep.keeps(hash)
    }
}

/// [`fast`] up to the TCP header.
#[inline(always)]
fn plain(link: LinkType, frame: &[u8]) -> Option<Plain<'_>> {
    let (ether_type, ip) = match link {
        LinkType::En10mb => (Some(be16(frame, 12)?), frame.get(14..)?),
        LinkType::LinuxSll => (Some(be16(frame, SLL_LEN - 2)?), frame.get(SLL_LEN..)?),
        LinkType::LinuxSll2 => (Some(be16(frame, 0)?), frame.get(SLL2_LEN..)?),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => (None, frame),
        _ => return None,
    };
    plain_ip(ether_type, ip)
}

/// [`plain`] from the IP header on: an unfragmented IPv4 or extension-less IPv6 packet
/// carrying TCP (`ether_type` None: known by its version nibble alone).
#[inline(always)]
fn plain_ip(ether_type: Option<u16>, ip: &[u8]) -> Option<Plain<'_>> {
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
            let id = u16::from_be_bytes([hdr[4], hdr[5]]);
            Some(Plain {
                ip: IpHeader {
                    src: IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15])),
                    dst: IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19])),
                    id: u32::from(id),
                    facts: IpFacts {
                        ttl: hdr[8],
                        id: Some(id),
                    },
                },
                tcp: ip.get(ihl..end)?,
                declared: total - ihl,
            })
        }
        (Some(0x86dd) | None, 6) => {
            let hdr = ip.get(..40)?;
            let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            if hdr[6] != IPPROTO_TCP || plen == 0 {
                return None;
            }
            let end = (40 + plen).min(ip.len());
            let mut a = [0u8; 16];
            a.copy_from_slice(&hdr[8..24]);
            let src = IpAddr::V6(Ipv6Addr::from(a));
            a.copy_from_slice(&hdr[24..40]);
            Some(Plain {
                ip: IpHeader {
                    src,
                    dst: IpAddr::V6(Ipv6Addr::from(a)),
                    id: u32::from_be_bytes([0, hdr[1] & 0x0f, hdr[2], hdr[3]]),
                    facts: IpFacts {
                        ttl: hdr[7],
                        id: None,
                    },
                },
                tcp: ip.get(40..end)?,
                declared: plen,
            })
        }
        _ => None,
    }
}

/// [`fast`] from the IP header on (for the tunnels' short path).
fn fast_ip(ether_type: Option<u16>, ip: &[u8], ts_ns: i64) -> Option<Record> {
    let p = plain_ip(ether_type, ip)?;
    Some(tcp(ts_ns, p.ip, p.tcp, p.declared))
}

/// The tunnels of a tunnel-heavy capture by hand (the ones `gen-pcap --tunnels` makes, and
/// data centres carry): 802.1Q/QinQ tags, MPLS label stacks, and IPv4 carrying VXLAN or
/// GENEVE (on their destination ports) or GRE without checksum or routing, down to a packet
/// that [`fast_ip`] takes. The layers go onto `stack` in the walk's order; the TCP record
/// comes back without its path (the caller adds the shared one). `None` for anything else,
/// which then takes the walk from the start; `fast_path_agrees_with_the_walk` keeps both
/// equal. It saves the walk's general dispatch (and its damage reports, which only a frame
/// that this path refuses can need).
fn fast_tunnel(link: LinkType, ts_ns: i64, frame: &[u8], stack: &mut LayerStack) -> Option<Record> {
    fn ethernet(f: &[u8]) -> Option<(u16, &[u8])> {
        let ty = be16(f, 12)?;
        if ty <= 1500 {
            return None; // an 802.3 length field: LLC follows, the walk's
        }
        Some((ty, f.get(14..)?))
    }
    let (mut ty, mut b) = match link {
        LinkType::En10mb => ethernet(frame)?,
        _ => return None,
    };
    loop {
        match ty {
            0x0800 => {
                let hdr = b.get(..20)?;
                let ihl = usize::from(hdr[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
                let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff; // MF + offset
                                                                          // (A total length of 0, segmentation offload, is the walk's too.)
                if hdr[0] >> 4 != 4 || ihl < 20 || frag != 0 || total < ihl {
                    return None;
                }
                if hdr[9] == IPPROTO_TCP {
                    return fast_ip(Some(ty), b, ts_ns);
                }
                let payload = b.get(ihl..total.min(b.len()))?;
                let src = IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]));
                let dst = IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]));
                match hdr[9] {
                    17 => {
                        // The walk tries the destination port first: only those are ours.
                        let body = payload.get(8..)?;
                        let h = body.get(..8)?;
                        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
                        match be16(payload, 2)? {
                            port::VXLAN | port::VXLAN_LINUX if h[0] & 0x08 != 0 => {
                                stack.push(EncapLayer::Vxlan(vni)).then_some(())?;
                                (ty, b) = ethernet(&body[8..])?;
                            }
                            port::GENEVE => {
                                let opts = usize::from(h[0] & 0x3f) * 4;
                                b = body.get(8 + opts..)?;
                                ty = u16::from_be_bytes([h[2], h[3]]);
                                stack.push(EncapLayer::Geneve(vni)).then_some(())?;
                            }
                            _ => return None,
                        }
                    }
                    47 => {
                        let fl = be16(payload, 0)?;
                        // No checksum, no routing, version 0: key and sequence number only.
                        if fl & 0xc007 != 0 {
                            return None;
                        }
                        let mut at = 4;
                        let key = if fl & 0x2000 != 0 {
                            let k = payload.get(4..8)?;
                            at += 4;
                            Some(u32::from_be_bytes([k[0], k[1], k[2], k[3]]))
                        } else {
                            None
                        };
                        if fl & 0x1000 != 0 {
                            at += 4;
                        }
                        ty = be16(payload, 2)?;
                        if ty != 0x0800 && ty != 0x86dd {
                            return None;
                        }
                        b = payload.get(at..)?;
                        let gre = EncapLayer::Gre {
                            src,
                            dst,
                            key,
                            udp: false,
                        };
                        stack.push(gre).then_some(())?;
                    }
                    _ => return None,
                }
            }
            0x86dd => return fast_ip(Some(ty), b, ts_ns),
            0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => {
                let (tci, next) = (be16(b, 0)?, be16(b, 2)?);
                if next <= 1500 {
                    return None;
                }
                stack.push(EncapLayer::Vlan(tci & 0x0fff)).then_some(())?;
                (ty, b) = (next, &b[4..]);
            }
            0x8847 | 0x8848 => {
                loop {
                    let e = b.get(..4)?;
                    let entry = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                    stack.push(EncapLayer::Mpls(entry >> 12)).then_some(())?;
                    b = &b[4..];
                    if entry & 0x100 != 0 {
                        break;
                    }
                }
                // The walk reads the IP version here, not an Ethernet type.
                ty = match b.first()? >> 4 {
                    4 => 0x0800,
                    6 => 0x86dd,
                    _ => return None,
                };
            }
            0x6558 => (ty, b) = ethernet(b)?,
            _ => return None,
        }
    }
}

/// UDP ports of the tunnels decoded inside UDP.
mod port {
    pub const VXLAN: u16 = 4789;
    /// Linux's VXLAN port before IANA assigned 4789.
    pub const VXLAN_LINUX: u16 = 8472;
    pub const GENEVE: u16 = 6081;
    pub const GTP_U: u16 = 2152;
    pub const GRE_IN_UDP: u16 = 4754;
    pub const MPLS_IN_UDP: u16 = 6635;
    /// CAPWAP data channel (RFC 5415).
    pub const CAPWAP_DATA: u16 = 5247;
    /// Teredo (RFC 4380): IPv6 in UDP.
    pub const TEREDO: u16 = 3544;
    /// AYIYA (anything in anything): IPv6 in UDP.
    pub const AYIYA: u16 = 5072;
}

/// One frame's walk from the link header to TCP.
struct Walk<'d> {
    frags: &'d mut Reassembly,
    paths: &'d mut PathCache,
    ts_ns: i64,
    path: &'d mut LayerStack,
    /// The latest (so, at TCP, the innermost) IP header's TTL and id.
    ip: IpFacts,
}

impl Walk<'_> {
    fn push(&mut self, layer: EncapLayer) -> Result<(), Record> {
        if self.path.push(layer) {
            Ok(())
        } else {
            Err(damaged(
                "link",
                format_args!("more than {MAX_LAYERS} encapsulations"),
            ))
        }
    }

    fn link(&mut self, link: LinkType, frame: &[u8]) -> Record {
        match link {
            LinkType::En10mb => self.ethernet(frame),
            LinkType::LinuxSll => {
                // sll_header: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
                let (Some(proto), Some(rest)) = (be16(frame, SLL_LEN - 2), frame.get(SLL_LEN..))
                else {
                    return short_link("LINUX_SLL", frame.len(), SLL_LEN);
                };
                self.sll_protocol(proto, rest)
            }
            LinkType::LinuxSll2 => {
                // sll2_header: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1)
                // halen(1) addr(8).
                let (Some(proto), Some(rest)) = (be16(frame, 0), frame.get(SLL2_LEN..)) else {
                    return short_link("LINUX_SLL2", frame.len(), SLL2_LEN);
                };
                self.sll_protocol(proto, rest)
            }
            LinkType::Null | LinkType::Loop => {
                let Some(fam) = frame.get(..4) else {
                    let name = if link == LinkType::Null {
                        "NULL"
                    } else {
                        "LOOP"
                    };
                    return short_link(name, frame.len(), 4);
                };
                // NULL stores the AF_ value in the capturing host's byte order, which the
                // file does not record; the values are < 256, so the non-zero end tells the
                // order. LOOP is always network order, which the same test also reads.
                let family = if fam[0] == 0 && fam[1] == 0 {
                    u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]])
                } else {
                    u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]])
                };
                match family {
                    // AF_INET everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD),
                    // 30 (Darwin).
                    2 | 24 | 28 | 30 => self.raw_ip(&frame[4..]),
                    _ => Record::NonTcp,
                }
            }
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => self.raw_ip(frame),
            LinkType::Ppp | LinkType::PppHdlc => self.ppp(frame),
            LinkType::PppEther => self.pppoe(frame),
            LinkType::CHdlc => {
                // Cisco HDLC: address(1) control(1) protocol(2, an Ethernet type).
                let (Some(proto), Some(rest)) = (be16(frame, 2), frame.get(4..)) else {
                    return short_link("C_HDLC", frame.len(), 4);
                };
                self.ether_type(proto, rest)
            }
            LinkType::Nflog => self.nflog(frame),
            LinkType::Ieee80211 => self.wifi(frame),
            LinkType::Prism => {
                // Prism: msgcode(4) msglen(4, host order: the header's length), ...
                match frame.get(4..8) {
                    Some(l) => {
                        let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]);
                        let n = if n > 0xffff { n.swap_bytes() } else { n };
                        self.wifi(frame.get(n as usize..).unwrap_or(&[]))
                    }
                    None => short_link("IEEE802_11_PRISM", frame.len(), 8),
                }
            }
            LinkType::Avs => {
                // AVS: version(4) length(4, big-endian), ...
                match frame.get(4..8) {
                    Some(l) => {
                        let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                        self.wifi(frame.get(n..).unwrap_or(&[]))
                    }
                    None => short_link("IEEE802_11_AVS", frame.len(), 8),
                }
            }
            LinkType::Radiotap => {
                // radiotap: version(1) pad(1) length(2, little-endian), ...
                match frame.get(2..4) {
                    Some(l) => {
                        let n = usize::from(u16::from_le_bytes([l[0], l[1]]));
                        self.wifi(frame.get(n..).unwrap_or(&[]))
                    }
                    None => short_link("IEEE802_11_RADIOTAP", frame.len(), 4),
                }
            }
            LinkType::Ppi => {
                // PPI: version(1) flags(1) length(2 LE) dlt(4 LE), then a frame of `dlt`.
                match (frame.get(2..4), frame.get(4..8)) {
                    (Some(l), Some(d)) => {
                        let n = usize::from(u16::from_le_bytes([l[0], l[1]]));
                        let dlt = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                        let inner = frame.get(n..).unwrap_or(&[]);
                        match LinkType::from_u32(dlt) {
                            LinkType::Ppi => damaged("link", format_args!("PPI inside PPI")),
                            t => self.link(t, inner),
                        }
                    }
                    _ => short_link("PPI", frame.len(), 8),
                }
            }
            LinkType::Other(n) => damaged("link", format_args!("link type {n} is not supported")),
        }
    }

    /// A Linux cooked header's protocol: an Ethernet type, or one of the kernel's ETH_P_*
    /// pseudo types below 0x0600 (4 = 802.2 LLC frames).
    fn sll_protocol(&mut self, proto: u16, rest: &[u8]) -> Record {
        match proto {
            0x0004 => self.llc(rest),
            p if p < 0x0600 => Record::NonTcp,
            p => self.ether_type(p, rest),
        }
    }

    fn ethernet(&mut self, frame: &[u8]) -> Record {
        let (Some(ty), Some(rest)) = (be16(frame, 12), frame.get(14..)) else {
            return damaged(
                "link",
                format_args!("ethernet header cut at {} of 14 bytes", frame.len()),
            );
        };
        if ty <= 1500 {
            // 802.3 length field: an LLC header follows (with SNAP, an Ethernet type).
            let body = rest.get(..usize::from(ty).min(rest.len())).unwrap_or(rest);
            return self.llc(body);
        }
        self.ether_type(ty, rest)
    }

    /// 802.2 LLC; SNAP (AA-AA-03, OUI, type) carries an Ethernet type.
    fn llc(&mut self, b: &[u8]) -> Record {
        match b.get(..3) {
            Some([0xaa, 0xaa, 0x03]) => match (be16(b, 6), b.get(8..)) {
                (Some(ty), Some(rest)) => self.ether_type(ty, rest),
                _ => damaged("link", format_args!("SNAP header cut at {} bytes", b.len())),
            },
            Some(_) => Record::NonTcp,
            None => damaged("link", format_args!("LLC header cut at {} bytes", b.len())),
        }
    }

    fn ether_type(&mut self, ty: u16, b: &[u8]) -> Record {
        match ty {
            0x0800 => self.ipv4(b),
            0x86dd => self.ipv6(b),
            // 802.1Q, 802.1ad (QinQ S-tag), and the pre-standard QinQ types.
            0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => {
                let (Some(tci), Some(next), Some(rest)) = (be16(b, 0), be16(b, 2), b.get(4..))
                else {
                    return damaged("link", format_args!("VLAN tag cut at {} bytes", b.len()));
                };
                if let Err(r) = self.push(EncapLayer::Vlan(tci & 0x0fff)) {
                    return r;
                }
                if next <= 1500 {
                    return self.llc(rest);
                }
                self.ether_type(next, rest)
            }
            // 802.1ah I-tag: flags(1) I-SID(3), then the customer's Ethernet header.
            0x88e7 => {
                let Some(tag) = b.get(..4) else {
                    return damaged("link", format_args!("PBB I-tag cut at {} bytes", b.len()));
                };
                let isid = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]);
                if let Err(r) = self.push(EncapLayer::Pbb(isid)) {
                    return r;
                }
                self.ethernet(&b[4..])
            }
            // 802.1BR E-tag: 6 bytes, then the Ethernet type.
            0x893f => {
                let (Some(t), Some(next)) = (b.get(..6), be16(b, 6)) else {
                    return damaged("link", format_args!("E-tag cut at {} bytes", b.len()));
                };
                let base = u32::from(u16::from_be_bytes([t[2], t[3]]) & 0x3fff);
                let ecid = u32::from(t[5]) << 14 | base;
                if let Err(r) = self.push(EncapLayer::ETag(ecid)) {
                    return r;
                }
                self.ether_type(next, &b[8..])
            }
            // Cisco VN-Tag: D P dvif(14) | L R ver(2) svif(12), then the Ethernet type.
            0x8926 => {
                let (Some(hi), Some(lo), Some(next)) = (be16(b, 0), be16(b, 2), be16(b, 4)) else {
                    return damaged("link", format_args!("VN-Tag cut at {} bytes", b.len()));
                };
                let layer = EncapLayer::VnTag {
                    dst: hi & 0x3fff,
                    src: lo & 0x0fff,
                };
                if let Err(r) = self.push(layer) {
                    return r;
                }
                self.ether_type(next, &b[6..])
            }
            0x8847 | 0x8848 => self.mpls(b),
            0x8864 => self.pppoe(b),
            // Transparent Ethernet bridging (GRE, GENEVE).
            0x6558 => self.ethernet(b),
            _ => Record::NonTcp,
        }
    }

    /// An MPLS label stack, then IPv4/IPv6 (by version nibble) or, for a pseudowire, an
    /// Ethernet frame (after a control word starting with nibble 0).
    fn mpls(&mut self, mut b: &[u8]) -> Record {
        loop {
            let Some(e) = b.get(..4) else {
                return damaged("mpls", format_args!("label stack cut at {} bytes", b.len()));
            };
            let entry = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            if let Err(r) = self.push(EncapLayer::Mpls(entry >> 12)) {
                return r;
            }
            b = &b[4..];
            if entry & 0x100 != 0 {
                break;
            }
        }
        match b.first().map(|x| x >> 4) {
            Some(4) => self.ipv4(b),
            Some(6) => self.ipv6(b),
            Some(0) => self.ethernet(b.get(4..).unwrap_or(&[])),
            Some(_) => self.ethernet(b),
            None => Record::NonTcp,
        }
    }

    /// PPPoE session stage: ver/type(1) code(1) session(2) length(2), then PPP.
    fn pppoe(&mut self, b: &[u8]) -> Record {
        let (Some(session), Some(rest)) = (be16(b, 2), b.get(6..)) else {
            return damaged("pppoe", format_args!("header cut at {} bytes", b.len()));
        };
        if let Err(r) = self.push(EncapLayer::Pppoe(session)) {
            return r;
        }
        self.ppp(rest)
    }

    /// PPP: optional HDLC address/control (FF 03), then a 1- or 2-byte protocol (RFC 1661).
    fn ppp(&mut self, b: &[u8]) -> Record {
        let b = match b.get(..2) {
            Some([0xff, 0x03]) => &b[2..],
            _ => b,
        };
        let (proto, rest) = match b.first() {
            // An odd first byte is a compressed one-byte protocol field.
            Some(&p) if p & 1 == 1 => (u16::from(p), &b[1..]),
            Some(_) => match (be16(b, 0), b.get(2..)) {
                (Some(p), Some(r)) => (p, r),
                _ => return damaged("ppp", format_args!("protocol field cut")),
            },
            None => return damaged("ppp", format_args!("empty PPP frame")),
        };
        match proto {
            0x0021 => self.ipv4(rest),
            0x0057 => self.ipv6(rest),
            0x0281 | 0x0283 => self.mpls(rest),
            _ => Record::NonTcp,
        }
    }

    /// NFLOG: family(1) version(1) resource id(2), then TLVs (length and type in host byte
    /// order, each padded to 4 bytes); NFULA_PAYLOAD (9) holds the packet.
    fn nflog(&mut self, b: &[u8]) -> Record {
        let Some(&family) = b.first() else {
            return short_link("NFLOG", 0, 4);
        };
        let mut tlvs = b.get(4..).unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = usize::from(u16::from_le_bytes([tlvs[0], tlvs[1]]));
            let ty = u16::from_le_bytes([tlvs[2], tlvs[3]]) & 0x7fff;
            if len < 4 {
                break;
            }
            let Some(value) = tlvs.get(4..len) else {
                return damaged("link", format_args!("NFLOG TLV cut ({len} bytes)"));
            };
            if ty == 9 {
                return match family {
                    2 => self.ipv4(value),
                    10 => self.ipv6(value),
                    _ => Record::NonTcp,
                };
            }
            let padded = (len + 3) & !3;
            tlvs = tlvs.get(padded..).unwrap_or(&[]);
        }
        Record::NonTcp
    }

    /// An IP packet whose version is given by its first nibble.
    fn raw_ip(&mut self, b: &[u8]) -> Record {
        match b.first().map(|x| x >> 4) {
            Some(4) => self.ipv4(b),
            Some(6) => self.ipv6(b),
            Some(v) => damaged("link", format_args!("raw IP frame with IP version {v}")),
            None => damaged("link", format_args!("empty raw IP frame")),
        }
    }

    fn ipv4(&mut self, b: &[u8]) -> Record {
        let Some(hdr) = b.get(..20) else {
            return damaged(
                "ipv4",
                format_args!("header cut at {} of 20 bytes", b.len()),
            );
        };
        if hdr[0] >> 4 != 4 {
            return damaged(
                "ipv4",
                format_args!("version {} in an IPv4 header", hdr[0] >> 4),
            );
        }
        let ihl = usize::from(hdr[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        // A total length of 0 is a segmentation-offload packet captured on its sender before
        // the NIC split it and filled the field in (as Wireshark and Zeek read it): take what
        // was captured.
        let total = if total == 0 { b.len() } else { total };
        if ihl < 20 {
            return damaged("ipv4", format_args!("header length {ihl} below 20"));
        }
        if total < ihl {
            return damaged(
                "ipv4",
                format_args!("total length {total} shorter than the header ({ihl})"),
            );
        }
        let Some(payload) = b.get(ihl..total.min(b.len()).max(ihl)) else {
            return damaged("ipv4", format_args!("options cut at {} bytes", b.len()));
        };
        let id = u16::from_be_bytes([hdr[4], hdr[5]]);
        self.ip = IpFacts {
            ttl: hdr[8],
            id: Some(id),
        };
        let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
        let src = IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]));
        let proto = hdr[9];
        let declared = total - ihl;
        let more = frag & 0x2000 != 0;
        let offset = usize::from(frag & 0x1fff) * 8;
        if more || offset != 0 {
            let key = FragKey {
                src,
                dst,
                id: u32::from(id),
                proto,
                path: self.path.hash64(),
            };
            let f = Fragment {
                offset,
                declared,
                data: payload,
                more,
                v6: false,
            };
            return self.reassemble(key, f, src, dst, u32::from(id));
        }
        self.ip_payload(proto, src, dst, u32::from(id), payload, declared)
    }

    fn ipv6(&mut self, b: &[u8]) -> Record {
        let Some(hdr) = b.get(..40) else {
            return damaged(
                "ipv6",
                format_args!("header cut at {} of 40 bytes", b.len()),
            );
        };
        if hdr[0] >> 4 != 6 {
            return damaged(
                "ipv6",
                format_args!("version {} in an IPv6 header", hdr[0] >> 4),
            );
        }
        let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        let flow = u32::from_be_bytes([0, hdr[1] & 0x0f, hdr[2], hdr[3]]);
        self.ip = IpFacts {
            ttl: hdr[7],
            id: None,
        };
        let mut a = [0u8; 16];
        a.copy_from_slice(&hdr[8..24]);
        let src = IpAddr::V6(Ipv6Addr::from(a));
        a.copy_from_slice(&hdr[24..40]);
        let dst = IpAddr::V6(Ipv6Addr::from(a));
        // A zero payload length is a jumbogram (RFC 2675): take what was captured.
        let plen = if plen == 0 { b.len() - 40 } else { plen };
        let mut body = &b[40..(40 + plen).min(b.len())];
        let mut declared = plen;
        let mut next = hdr[6];
        // Extension headers (RFC 8200 §4): hop-by-hop, routing, destination options,
        // mobility, HIP, shim6 (8-octet units); AH (RFC 4302, 4-octet units); fragment.
        for _ in 0..16 {
            match next {
                0 | 43 | 60 | 135 | 139 | 140 | 51 => {
                    let (Some(&nh), Some(&l)) = (body.first(), body.get(1)) else {
                        return damaged("ipv6", format_args!("extension header {next} cut"));
                    };
                    let len = if next == 51 {
                        (usize::from(l) + 2) * 4
                    } else {
                        (usize::from(l) + 1) * 8
                    };
                    if len > declared {
                        return damaged(
                            "ipv6",
                            format_args!("extension header {next} longer than the payload"),
                        );
                    }
                    body = body.get(len..).unwrap_or(&[]);
                    declared -= len;
                    next = nh;
                }
                44 => {
                    let Some(fh) = body.get(..8) else {
                        return damaged("ipv6", format_args!("fragment header cut"));
                    };
                    if declared < 8 {
                        return damaged("ipv6", format_args!("fragment header beyond the payload"));
                    }
                    let off = u16::from_be_bytes([fh[2], fh[3]]);
                    let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
                    let more = off & 1 != 0;
                    let offset = usize::from(off >> 3) * 8;
                    let proto = fh[0];
                    let data = &body[8..];
                    declared -= 8;
                    if !more && offset == 0 {
                        // An atomic fragment (RFC 6946): a whole datagram.
                        next = proto;
                        body = data;
                        continue;
                    }
                    let key = FragKey {
                        src,
                        dst,
                        id,
                        proto,
                        path: self.path.hash64(),
                    };
                    let f = Fragment {
                        offset,
                        declared,
                        data,
                        more,
                        v6: true,
                    };
                    return self.reassemble(key, f, src, dst, id);
                }
                _ => return self.ip_payload(next, src, dst, flow, body, declared),
            }
        }
        damaged("ipv6", format_args!("too many extension headers"))
    }

    fn reassemble(
        &mut self,
        key: FragKey,
        f: Fragment<'_>,
        src: IpAddr,
        dst: IpAddr,
        id: u32,
    ) -> Record {
        match self.frags.add(self.ts_ns, key, f) {
            Outcome::Complete(data) => {
                let len = data.len();
                self.ip_payload(key.proto, src, dst, id, &data, len)
            }
            Outcome::Held | Outcome::Dropped => Record::Fragment,
        }
    }

    /// The payload of an IP packet: TCP, or a tunnel to walk into.
    fn ip_payload(
        &mut self,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        ip_id: u32,
        payload: &[u8],
        declared: usize,
    ) -> Record {
        match proto {
            IPPROTO_TCP => {
                let ip = IpHeader {
                    src,
                    dst,
                    id: ip_id,
                    facts: self.ip,
                };
                let mut rec = tcp(self.ts_ns, ip, payload, declared);
                if let Record::Tcp(seg) = &mut rec {
                    seg.encap = self.paths.path(self.path);
                }
                rec
            }
            // IP in IP: 4 = IPv4 inside, 41 = IPv6 inside.
            4 | 41 => {
                let inner_v6 = proto == 41;
                if let Err(r) = self.push(EncapLayer::IpInIp { src, dst, inner_v6 }) {
                    return r;
                }
                if inner_v6 {
                    self.ipv6(payload)
                } else {
                    self.ipv4(payload)
                }
            }
            47 => self.gre(payload, src, dst, false),
            17 => self.udp(payload, src, dst),
            // AH in IPv4 (RFC 4302): next header(1) length(1, 4-octet units - 2).
            51 => match (payload.first(), payload.get(1)) {
                (Some(&nh), Some(&l)) => {
                    let len = (usize::from(l) + 2) * 4;
                    match payload.get(len..) {
                        Some(rest) if nh != 51 => {
                            let declared = declared.saturating_sub(len);
                            self.ip_payload(nh, src, dst, ip_id, rest, declared)
                        }
                        _ => damaged("ipv4", format_args!("authentication header cut")),
                    }
                }
                _ => damaged("ipv4", format_args!("authentication header cut")),
            },
            _ => Record::NonTcp,
        }
    }

    fn udp(&mut self, b: &[u8], src: IpAddr, dst: IpAddr) -> Record {
        let (Some(sport), Some(dport), Some(body)) = (be16(b, 0), be16(b, 2), b.get(8..)) else {
            return Record::NonTcp;
        };
        let tunnel = [dport, sport].into_iter().find(|p| {
            matches!(
                *p,
                port::VXLAN
                    | port::VXLAN_LINUX
                    | port::GENEVE
                    | port::GTP_U
                    | port::GRE_IN_UDP
                    | port::MPLS_IN_UDP
                    | port::CAPWAP_DATA
                    | port::TEREDO
                    | port::AYIYA
            )
        });
        let named = |name| EncapLayer::Tunnel { name, src, dst };
        match tunnel {
            Some(port::VXLAN | port::VXLAN_LINUX) => self.vxlan(body),
            Some(port::GENEVE) => self.geneve(body),
            Some(port::GTP_U) => self.gtpu(body),
            Some(port::GRE_IN_UDP) => self.gre(body, src, dst, true),
            Some(port::MPLS_IN_UDP) => self.mpls(body),
            Some(port::CAPWAP_DATA) => {
                if let Err(r) = self.push(named("capwap")) {
                    return r;
                }
                self.capwap(body)
            }
            Some(port::TEREDO) => {
                // Optional authentication (type 0x0001) and origin indication (0x0000)
                // headers come first; the IPv6 packet starts with version nibble 6.
                let mut b = body;
                loop {
                    match (be16(b, 0), b.first()) {
                        (Some(0x0001), _) => {
                            let (Some(&id), Some(&au)) = (b.get(2), b.get(3)) else {
                                return Record::NonTcp;
                            };
                            b = b
                                .get(4 + usize::from(id) + usize::from(au) + 9..)
                                .unwrap_or(&[]);
                        }
                        (Some(0x0000), _) => b = b.get(8..).unwrap_or(&[]),
                        (_, Some(v)) if v >> 4 == 6 => break,
                        _ => return Record::NonTcp,
                    }
                }
                if let Err(r) = self.push(named("teredo")) {
                    return r;
                }
                self.ipv6(b)
            }
            Some(port::AYIYA) => {
                // AYIYA: id len/type(1) sig len/hash(1) auth/op(1) next header(1) epoch(4),
                // then the identity and the signature (2^n bytes each).
                let (Some(&l0), Some(&l1), Some(&next)) = (body.first(), body.get(1), body.get(3))
                else {
                    return Record::NonTcp;
                };
                let id_len = 1usize << (l0 >> 4);
                let sig_len = usize::from(l1 >> 4) * 4; // in 4-byte words
                let rest = body.get(8 + id_len + sig_len..).unwrap_or(&[]);
                if let Err(r) = self.push(named("ayiya")) {
                    return r;
                }
                match next {
                    41 => self.ipv6(rest),
                    4 => self.ipv4(rest),
                    _ => Record::NonTcp,
                }
            }
            // Teredo clients talk to relays on any port once qualified: a UDP payload that is
            // exactly one IPv6 packet from or to a Teredo address (2001:0::/32) is one.
            _ if looks_like_teredo(body) => {
                if let Err(r) = self.push(named("teredo")) {
                    return r;
                }
                self.ipv6(body)
            }
            _ => Record::NonTcp,
        }
    }

    /// CAPWAP (RFC 5415 §4.3): preamble(1), then HLEN (header length in 4-byte words), RID,
    /// WBID (1 = IEEE 802.11), T (payload in the wireless binding's native format) and flags.
    fn capwap(&mut self, b: &[u8]) -> Record {
        let Some(h) = b.get(..4) else {
            return damaged("capwap", format_args!("header cut at {} bytes", b.len()));
        };
        if h[0] >> 4 != 0 || h[0] & 0x0f != 0 {
            // A DTLS-protected or unknown-version packet: nothing readable.
            return Record::NonTcp;
        }
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let hlen = ((word >> 19) & 0x1f) as usize * 4;
        let wbid = (word >> 9) & 0x1f;
        let native = (word >> 8) & 1 == 1;
        let Some(rest) = b.get(hlen..) else {
            return damaged("capwap", format_args!("header of {hlen} bytes cut"));
        };
        if native && wbid == 1 {
            self.wifi(rest)
        } else {
            self.ethernet(rest)
        }
    }

    /// An IEEE 802.11 frame: data and QoS-data frames carry LLC/SNAP (or, with the A-MSDU
    /// bit, a list of subframes each with its own). Protected (encrypted) frames cannot be
    /// read: they are damage the file-level warning counts.
    fn wifi(&mut self, b: &[u8]) -> Record {
        let (Some(&fc0), Some(&fc1)) = (b.first(), b.get(1)) else {
            return damaged("802.11", format_args!("frame control cut"));
        };
        let ftype = (fc0 >> 2) & 0x3;
        let subtype = fc0 >> 4;
        if ftype != 2 || subtype & 0x4 != 0 {
            // Management, control, and data frames without a body (null, CF-ack/poll only).
            return Record::NonTcp;
        }
        if fc1 & 0x40 != 0 {
            return damaged(
                "802.11",
                format_args!("protected (encrypted) data frame, skipped"),
            );
        }
        let qos = subtype & 0x8 != 0;
        let mut hlen = 24;
        if fc1 & 0x03 == 0x03 {
            hlen += 6; // both to-DS and from-DS: a fourth address
        }
        let mut amsdu = false;
        if qos {
            amsdu = b.get(hlen).is_some_and(|q| q & 0x80 != 0);
            hlen += 2;
            if fc1 & 0x80 != 0 {
                hlen += 4; // HT control (order bit in a QoS frame)
            }
        }
        let Some(body) = b.get(hlen..) else {
            return damaged(
                "802.11",
                format_args!("header cut at {} of {hlen} bytes", b.len()),
            );
        };
        if !amsdu {
            return self.llc(body);
        }
        // A-MSDU subframes: DA(6) SA(6) length(2), the MSDU (LLC/SNAP), padded to 4 bytes.
        // The first subframe that carries TCP is the record (one record per frame).
        let mut rest = body;
        let mut last = Record::NonTcp;
        // Each subframe is walked from the path and IP facts as they stand here.
        let (mark, ip) = (self.path.mark(), self.ip);
        while let Some(len) = be16(rest, 12) {
            let len = usize::from(len);
            let Some(msdu) = rest.get(14..14 + len) else {
                return damaged("802.11", format_args!("A-MSDU subframe cut"));
            };
            self.path.reset_to(mark);
            self.ip = ip;
            last = self.llc(msdu);
            if matches!(last, Record::Tcp(_) | Record::Damaged { .. }) {
                return last;
            }
            let padded = (14 + len).div_ceil(4) * 4;
            rest = rest.get(padded..).unwrap_or(&[]);
        }
        last
    }

    /// VXLAN (RFC 7348): flags(1, I = 0x08) reserved(3) VNI(3) reserved(1), then Ethernet.
    fn vxlan(&mut self, b: &[u8]) -> Record {
        let Some(h) = b.get(..8) else {
            return damaged(
                "vxlan",
                format_args!("header cut at {} of 8 bytes", b.len()),
            );
        };
        if h[0] & 0x08 == 0 {
            return Record::NonTcp;
        }
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        if let Err(r) = self.push(EncapLayer::Vxlan(vni)) {
            return r;
        }
        self.ethernet(&b[8..])
    }

    /// GENEVE (RFC 8926): ver(2) optlen(6, 4-octet units) flags(1) protocol(2) VNI(3)
    /// reserved(1), options, then the protocol's payload.
    fn geneve(&mut self, b: &[u8]) -> Record {
        let Some(h) = b.get(..8) else {
            return damaged(
                "geneve",
                format_args!("header cut at {} of 8 bytes", b.len()),
            );
        };
        let opts = usize::from(h[0] & 0x3f) * 4;
        let proto = u16::from_be_bytes([h[2], h[3]]);
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        let Some(rest) = b.get(8 + opts..) else {
            return damaged("geneve", format_args!("options cut"));
        };
        if let Err(r) = self.push(EncapLayer::Geneve(vni)) {
            return r;
        }
        self.ether_type(proto, rest)
    }

    /// GTP-U (3GPP TS 29.281): flags(1) type(1) length(2) TEID(4), 4 more bytes when E, S
    /// or PN is set, then extension headers; a G-PDU (type 255) carries an IP packet.
    fn gtpu(&mut self, b: &[u8]) -> Record {
        let Some(h) = b.get(..8) else {
            return damaged("gtpu", format_args!("header cut at {} of 8 bytes", b.len()));
        };
        if h[0] >> 5 != 1 || h[1] != 255 {
            return Record::NonTcp;
        }
        let teid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let mut at = 8;
        if h[0] & 0x07 != 0 {
            let Some(&next) = b.get(11) else {
                return damaged("gtpu", format_args!("optional fields cut"));
            };
            at = 12;
            let mut next = next;
            while next != 0 {
                let Some(&units) = b.get(at) else {
                    return damaged("gtpu", format_args!("extension header cut"));
                };
                if units == 0 {
                    return damaged("gtpu", format_args!("extension header of length 0"));
                }
                at += usize::from(units) * 4;
                let Some(&n) = b.get(at - 1) else {
                    return damaged("gtpu", format_args!("extension header cut"));
                };
                next = n;
            }
        }
        if let Err(r) = self.push(EncapLayer::GtpU(teid)) {
            return r;
        }
        self.raw_ip(b.get(at..).unwrap_or(&[]))
    }

    /// GRE (RFC 2784, 2890; version 1 is PPTP's, RFC 2637): flags and version(2),
    /// protocol(2), then checksum+reserved, key, sequence number and (v1) ack when flagged.
    /// ERSPAN rides on it (type I/II: 0x88be, type III: 0x22eb).
    fn gre(&mut self, b: &[u8], src: IpAddr, dst: IpAddr, udp: bool) -> Record {
        let (Some(fl), Some(proto)) = (be16(b, 0), be16(b, 2)) else {
            return damaged("gre", format_args!("header cut at {} bytes", b.len()));
        };
        let (csum, routing, keyed, seqd) = (
            fl & 0x8000 != 0,
            fl & 0x4000 != 0,
            fl & 0x2000 != 0,
            fl & 0x1000 != 0,
        );
        let version = fl & 0x7;
        if routing || version > 1 {
            // RFC 1701 source routing and unknown versions: not decoded.
            return Record::NonTcp;
        }
        let mut at = 4;
        if csum {
            at += 4;
        }
        let key = if keyed {
            let k = b
                .get(at..at + 4)
                .map(|k| u32::from_be_bytes([k[0], k[1], k[2], k[3]]));
            at += 4;
            // PPTP's "key" is the payload length (high half) and the call id (low half):
            // only the call id identifies the tunnel.
            if version == 1 {
                k.map(|k| k & 0xffff)
            } else {
                k
            }
        } else {
            None
        };
        if seqd {
            at += 4;
        }
        if version == 1 && fl & 0x0080 != 0 {
            at += 4; // PPTP acknowledgment number
        }
        let Some(rest) = b.get(at..) else {
            return damaged("gre", format_args!("optional fields cut"));
        };
        match proto {
            0x88be | 0x22eb => {
                // ERSPAN type I has no header; II has 8 bytes (version 1), III 12 (version 2)
                // plus an 8-byte platform subheader when its O bit is set.
                let (version, session, len) = if proto == 0x88be && !seqd {
                    (1u8, 0u16, 0usize)
                } else {
                    let (Some(w0), Some(w1)) = (be16(rest, 0), be16(rest, 2)) else {
                        return damaged("erspan", format_args!("header cut"));
                    };
                    let session = w1 & 0x03ff;
                    match w0 >> 12 {
                        1 => (2, session, 8),
                        2 => {
                            let o = rest.get(11).is_some_and(|b| b & 0x01 != 0);
                            (3, session, if o { 20 } else { 12 })
                        }
                        v => return damaged("erspan", format_args!("unknown version {v}")),
                    }
                };
                if let Err(r) = self.push(EncapLayer::Erspan { version, session }) {
                    return r;
                }
                self.ethernet(rest.get(len..).unwrap_or(&[]))
            }
            _ => {
                let layer = match proto {
                    0x8200..=0x8350 => EncapLayer::Tunnel {
                        name: "aruba",
                        src,
                        dst,
                    },
                    0x883e => EncapLayer::Tunnel {
                        name: "wccp",
                        src,
                        dst,
                    },
                    _ => EncapLayer::Gre { src, dst, key, udp },
                };
                if let Err(r) = self.push(layer) {
                    return r;
                }
                match proto {
                    // PPTP carries PPP.
                    0x880b => self.ppp(rest),
                    // Aruba's access points send their clients' 802.11 frames to the
                    // controller in GRE 0x8200 … 0x8350.
                    0x8200..=0x8350 => self.wifi(rest),
                    // WCCP redirect: a 4-byte redirect header (WCCPv2), then IPv4; WCCPv1
                    // has none.
                    0x883e => match rest.first().map(|b| b >> 4) {
                        Some(4) => self.ipv4(rest),
                        _ => self.ipv4(rest.get(4..).unwrap_or(&[])),
                    },
                    p => self.ether_type(p, rest),
                }
            }
        }
    }
}

/// A whole IPv6 packet (its payload length filling the datagram) with a Teredo source or
/// destination address (RFC 4380: 2001:0::/32).
fn looks_like_teredo(b: &[u8]) -> bool {
    let teredo = |at: usize| b.get(at..at + 4) == Some(&[0x20, 0x01, 0, 0][..]);
    b.len() >= 40
        && b[0] >> 4 == 6
        && be16(b, 4).is_some_and(|n| usize::from(n) + 40 == b.len())
        && (teredo(8) || teredo(24))
}

/// What a TCP segment takes from the IP header around it.
#[derive(Clone, Copy, Debug)]
struct IpHeader {
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 identification or IPv6 flow label: part of the fingerprint.
    id: u32,
    facts: IpFacts,
}

/// Decode the TCP header in `bytes` (which may be cut short of the options); `declared` is
/// the TCP segment length according to the IP header.
#[inline(always)]
fn tcp(ts_ns: i64, ip: IpHeader, bytes: &[u8], declared: usize) -> Record {
    let IpHeader {
        src,
        dst,
        id: ip_id,
        facts,
    } = ip;
    let Some(fixed) = sound_tcp_fixed(bytes, declared) else {
        return tcp_damage(bytes, declared);
    };
    let data_offset = usize::from(fixed[12] >> 4) * 4;
    let be32 = |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    let (sport, dport) = (be16_at(fixed, 0), be16_at(fixed, 2));
    let checksum = [fixed[16], fixed[17]];
    // Options present in the capture (a snaplen may cut them: hash what is there).
    let opts = bytes.get(20..data_offset.min(bytes.len())).unwrap_or(&[]);
    let mut h = Fingerprint::new(u64::from(ip_id) << 16 | u64::from(u16::from_be_bytes(checksum)));
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
        encap: None,
        ip: facts,
    })
}

/// The fixed 20 bytes of a sound TCP header. Every segment passes here; what is wrong with
/// an unsound one is [`tcp_damage`]'s (returned with the header as a `Result`, the 120-byte
/// damage record cost a copy per segment).
#[inline(always)]
fn sound_tcp_fixed(bytes: &[u8], declared: usize) -> Option<&[u8]> {
    let fixed = bytes.get(..20)?;
    let data_offset = usize::from(fixed[12] >> 4) * 4;
    (data_offset >= 20 && declared >= data_offset).then_some(fixed)
}

/// What makes a TCP header unsound, for one that [`sound_tcp_fixed`] refused.
#[cold]
#[inline(never)]
fn tcp_damage(bytes: &[u8], declared: usize) -> Record {
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
    damaged(
        "tcp",
        format_args!(
            "IP payload of {declared} bytes is shorter than the TCP header ({data_offset})"
        ),
    )
}

/// A big-endian u16 at `at` of a slice known to be long enough.
fn be16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
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

/// The fingerprint of one transmission: IP id and TCP checksum in one word, then the options
/// eight bytes at a time (a multiply per word; byte-at-a-time FNV cost a tenth of decoding).
/// Only compared for equality, never stored or printed.
#[derive(Debug)]
struct Fingerprint(u64);

impl Fingerprint {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new(first: u64) -> Fingerprint {
        Fingerprint((first ^ 0xcbf2_9ce4_8422_2325).wrapping_mul(Self::K))
    }
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(Self::K);
    }
    fn write(&mut self, bytes: &[u8]) {
        // TCP options come in multiples of four bytes; a capture cut inside them leaves a
        // shorter tail, mixed in with its length so that "ab" and "ab\0" differ.
        let mut words = bytes.chunks_exact(4);
        for c in &mut words {
            self.word(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let tail = rest.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
            self.word(tail | (rest.len() as u64) << 32);
        }
    }
    /// 0 means "unknown" in [`Segment::fingerprint`], so never return it.
    fn finish_nonzero(&self) -> u64 {
        (self.0 ^ self.0 >> 29).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// The layer-by-layer walk alone, without the short path.
    fn walk_only(link: LinkType, ts_ns: i64, frame: &[u8]) -> Record {
        let mut frags = Reassembly::default();
        let mut paths = PathCache::default();
        let mut stack = LayerStack::default();
        Walk {
            frags: &mut frags,
            paths: &mut paths,
            ts_ns,
            path: &mut stack,
            ip: IpFacts::default(),
        }
        .link(link, frame)
    }

    /// A bare IPv6 TCP segment (FIN, 3 bytes), the fast paths' other family.
    fn v6_fin() -> Vec<u8> {
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .fin()
            .write(&mut v6, b"xyz")
            .expect("write");
        v6
    }

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

    /// Each way a TCP header can be unsound, worded by `tcp_damage` (the short path checks
    /// soundness alone and asks it only for a header it refused).
    #[test]
    fn unsound_tcp_headers_say_what_is_wrong() {
        let damage = |frame: &[u8]| match decode(LinkType::Raw, 1, frame) {
            Record::Damaged { layer, reason } => format!("{layer}: {reason}"),
            other => panic!("expected damage, got {other:?}"),
        };
        let v = v4_tcp(b"abc"); // 20 bytes of IPv4, 32 of TCP header (a timestamp), 3 of data
        assert_eq!(damage(&v[..30]), "tcp: TCP header cut at 10 of 20 bytes");
        let mut low = v.clone();
        low[20 + 12] = 0x40;
        assert_eq!(
            damage(&low),
            "tcp: data offset 16 is below the minimum of 20"
        );
        let mut high = v.clone();
        high[20 + 12] = 0xf0;
        assert_eq!(
            damage(&high),
            "tcp: IP payload of 35 bytes is shorter than the TCP header (60)"
        );
        assert!(matches!(decode(LinkType::Raw, 1, &v), Record::Tcp(_)));
    }

    #[test]
    fn ipv4_total_length_zero_is_segmentation_offload() {
        // Captured on the sender before TSO split it: the field is still 0.
        let mut v = v4_tcp(b"abcdef");
        v[2] = 0;
        v[3] = 0;
        let s = seg(decode(LinkType::Raw, 0, &v));
        assert_eq!(s.len, 6);
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
            LinkType::Ppp,
            LinkType::PppHdlc,
            LinkType::PppEther,
            LinkType::CHdlc,
            LinkType::Nflog,
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
    fn fast_path_agrees_with_the_walk() {
        let mut frames = vec![v4_tcp(b"abc"), v4_tcp(&[0; 300]), v6_fin()];
        let mut eth = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .write(&mut eth, &[])
            .expect("write");
        frames.push(eth);
        let (mut fast_hits, mut elsewhere_hits) = (0, 0);
        for f in &frames {
            for n in 0..=f.len() {
                for i in 0..f.len().min(60) {
                    for x in [0x00, 0xff, 0x40, 0x05, 0x08] {
                        let mut g = f[..n].to_vec();
                        if let Some(b) = g.get_mut(i) {
                            *b ^= x;
                        }
                        for link in [LinkType::Raw, LinkType::En10mb, LinkType::LinuxSll2] {
                            let r = fast(link, 1, &g);
                            if let Some(r) = &r {
                                fast_hits += 1;
                                assert_eq!(*r, walk_only(link, 1, &g), "{link:?} {g:02x?}");
                            }
                            // Told to keep one half of the connections: exactly the other
                            // half's segments that the short path takes whole may skip
                            // decoding; damage, other protocols and the walk's frames not.
                            for want in 0..2 {
                                let keep = FlowFilter {
                                    shift: 18,
                                    mask: 1,
                                    want,
                                };
                                let expect = matches!(&r, Some(Record::Tcp(s))
                                    if !keep.keeps(flow::flow_hash(s.src, s.dst, 0)));
                                elsewhere_hits += usize::from(expect);
                                let got = plain(link, &g).is_some_and(|p| p.elsewhere(keep));
                                assert_eq!(got, expect, "{link:?} {g:02x?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(fast_hits > 10_000, "{fast_hits}");
        assert!(elsewhere_hits > 1_000, "{elsewhere_hits}");
    }

    /// An Ethernet frame carrying `ip` in each tunnel `gen-pcap --tunnels` makes, plus
    /// GENEVE with an option and GRE with a sequence number.
    fn tunnelled(ip: &[u8]) -> Vec<Vec<u8>> {
        let [et0, et1] = if ip[0] >> 4 == 6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        };
        let outer = |proto: u8, payload: &[u8]| {
            let mut v = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2, 0x08, 0x00];
            let total = u16::try_from(20 + payload.len()).expect("fits");
            v.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0]);
            v[16..18].copy_from_slice(&total.to_be_bytes());
            v.extend_from_slice(&[198, 51, 100, 250, 198, 51, 100, 251]);
            v.extend_from_slice(payload);
            v
        };
        let inner_eth = |ip: &[u8]| {
            let mut v = vec![2, 0, 0, 0, 2, 1, 2, 0, 0, 0, 2, 2, et0, et1];
            v.extend_from_slice(ip);
            v
        };
        let udp = |port: u16, hdr: &[u8], body: &[u8]| {
            let mut v = vec![0xc0, 0x00];
            v.extend_from_slice(&port.to_be_bytes());
            let len = u16::try_from(8 + hdr.len() + body.len()).expect("fits");
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(hdr);
            v.extend_from_slice(body);
            v
        };
        let eth = inner_eth(ip);
        let vxlan = udp(4789, &[0x08, 0, 0, 0, 0, 0, 42, 0], &eth);
        let geneve = udp(6081, &[0, 0, 0x65, 0x58, 0, 0, 7, 0], &eth);
        let geneve_opt = udp(6081, &[1, 0, 0x65, 0x58, 0, 0, 8, 0, 1, 2, 3, 4], &eth);
        let mut gre_key = vec![0x20, 0, et0, et1, 0, 0, 0, 9];
        gre_key.extend_from_slice(ip);
        let mut gre_seq = vec![0x30, 0, et0, et1, 0, 0, 0, 9, 0, 0, 0, 1];
        gre_seq.extend_from_slice(ip);
        let mut mpls = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2, 0x88, 0x47];
        mpls.extend_from_slice(&[0x00, 0x01, 0x10, 0x40, 0x00, 0x06, 0x41, 0x40]);
        mpls.extend_from_slice(ip);
        let mut qinq = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2, 0x88, 0xa8];
        qinq.extend_from_slice(&[0, 5, 0x81, 0x00, 0, 100, et0, et1]);
        qinq.extend_from_slice(ip);
        vec![
            outer(17, &vxlan),
            outer(17, &geneve),
            outer(17, &geneve_opt),
            outer(47, &gre_key),
            outer(47, &gre_seq),
            mpls,
            qinq,
        ]
    }

    #[test]
    fn tunnel_fast_path_agrees_with_the_walk() {
        let v6 = v6_fin();
        let mut frames = tunnelled(&v4_tcp(b"abc"));
        frames.extend(tunnelled(&v6));
        let mut decoder = Decoder::default();
        let mut fast_hits = 0;
        for f in &frames {
            let whole = decoder.decode(LinkType::En10mb, 1, f);
            assert!(
                matches!(&whole, Record::Tcp(s) if s.encap.is_some()),
                "{whole:?}"
            );
            // Every prefix as it is, and the whole frame with each byte flipped a few ways
            // (prefixes test the length checks, flips the field values).
            let prefixes = (0..f.len()).map(|n| f[..n].to_vec());
            let flips = (0..f.len()).flat_map(|i| {
                [0xff, 0x40, 0x05, 0x08, 0x01].map(|x| {
                    let mut g = f.clone();
                    g[i] ^= x;
                    g
                })
            });
            for g in prefixes.chain(flips) {
                let mut stack = LayerStack::default();
                if fast_tunnel(LinkType::En10mb, 1, &g, &mut stack).is_some() {
                    fast_hits += 1;
                }
                let got = decoder.decode(LinkType::En10mb, 1, &g);
                assert_eq!(got, walk_only(LinkType::En10mb, 1, &g), "{g:02x?}");
            }
        }
        assert!(fast_hits > 2_000, "{fast_hits}");
    }

    #[test]
    fn link_type_names() {
        assert_eq!(LinkType::from_u32(276), LinkType::LinuxSll2);
        assert_eq!(LinkType::from_u32(12), LinkType::Raw);
        assert_eq!(LinkType::from_u32(147).as_str(), "LINKTYPE_147");
        assert_eq!(LinkType::LinuxSll.as_str(), "LINUX_SLL");
        for v in [0, 1, 9, 50, 51, 101, 104, 108, 113, 228, 229, 239, 276, 999] {
            assert_eq!(LinkType::from_u32(v).as_u32(), v);
        }
    }
}
