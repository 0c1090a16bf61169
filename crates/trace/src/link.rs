//! Link-layer types and frame decoding (etherparse) into [`Segment`]s.

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
