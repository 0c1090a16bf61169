//! The outer path of a tunnelled or tagged packet: which encapsulations [`crate::link`] took
//! off before it reached TCP, outermost first.
//!
//! A connection is identified by its inner 4-tuple *and* this path (two VXLAN VNIs, VLANs or
//! GRE keys can carry the same inner tuple; they are different connections). Framing that
//! identifies nothing (LLC/SNAP, PPP, C-HDLC, cooked headers, NFLOG) is not part of it.
//! `Display` is the JSON spelling (`vxlan:vni=42`).

use std::fmt;
use std::net::IpAddr;

/// One encapsulation layer with what identifies it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EncapLayer {
    /// 802.1Q / 802.1ad (QinQ) tag: VLAN id.
    Vlan(u16),
    /// 802.1ah (PBB) I-tag: service instance id.
    Pbb(u32),
    /// 802.1BR E-tag: E-CID.
    ETag(u32),
    /// Cisco VN-Tag: destination and source virtual interface.
    VnTag {
        /// Destination VIF.
        dst: u16,
        /// Source VIF.
        src: u16,
    },
    /// One MPLS label stack entry: the label.
    Mpls(u32),
    /// PPPoE session: session id.
    Pppoe(u16),
    /// VXLAN (RFC 7348): VNI.
    Vxlan(u32),
    /// GENEVE (RFC 8926): VNI.
    Geneve(u32),
    /// GRE (RFC 2784/2890) between two tunnel endpoints, with its key when present.
    Gre {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// GRE key (RFC 2890), e.g. NVGRE's VSID.
        key: Option<u32>,
        /// Carried in UDP (GRE-in-UDP, RFC 8086, port 4754).
        udp: bool,
    },
    /// ERSPAN (type I, II or III) mirror session.
    Erspan {
        /// 1, 2 or 3.
        version: u8,
        /// Session id (0 for type I, which has none).
        session: u16,
    },
    /// GTP-U (3GPP TS 29.281): tunnel endpoint id.
    GtpU(u32),
    /// A tunnel known by its outer endpoints only: `capwap` (CAPWAP data, UDP 5247),
    /// `aruba` (Aruba's GRE 0x8200), `wccp` (WCCP's GRE redirect, 0x883E), `teredo`
    /// (UDP 3544), `ayiya` (UDP 5072).
    Tunnel {
        /// The JSON name.
        name: &'static str,
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
    },
    /// IP in IP (RFC 2003 / 4213 / 2473): 4in4, 6in4, 4in6 or 6in6, with the outer endpoints.
    IpInIp {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// The inner packet is IPv6.
        inner_v6: bool,
    },
}

impl fmt::Display for EncapLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncapLayer::Vlan(id) => write!(f, "vlan:id={id}"),
            EncapLayer::Pbb(isid) => write!(f, "pbb:isid={isid}"),
            EncapLayer::ETag(ecid) => write!(f, "etag:ecid={ecid}"),
            EncapLayer::VnTag { dst, src } => write!(f, "vntag:dvif={dst},svif={src}"),
            EncapLayer::Mpls(label) => write!(f, "mpls:label={label}"),
            EncapLayer::Pppoe(s) => write!(f, "pppoe:session={s}"),
            EncapLayer::Vxlan(vni) => write!(f, "vxlan:vni={vni}"),
            EncapLayer::Geneve(vni) => write!(f, "geneve:vni={vni}"),
            EncapLayer::Gre { src, dst, key, udp } => {
                f.write_str(if *udp { "gre-udp:" } else { "gre:" })?;
                write!(f, "{src}>{dst}")?;
                if let Some(k) = key {
                    write!(f, ",key={k}")?;
                }
                Ok(())
            }
            EncapLayer::Erspan { version, session } => {
                write!(f, "erspan{version}:session={session}")
            }
            EncapLayer::GtpU(teid) => write!(f, "gtpu:teid={teid}"),
            EncapLayer::Tunnel { name, src, dst } => write!(f, "{name}:{src}>{dst}"),
            EncapLayer::IpInIp { src, dst, inner_v6 } => {
                let outer = if src.is_ipv6() { '6' } else { '4' };
                let inner = if *inner_v6 { '6' } else { '4' };
                write!(f, "{inner}in{outer}:{src}>{dst}")
            }
        }
    }
}

impl EncapLayer {
    /// The layer as both directions of one tunnel carry it, for connection keys: a GRE or
    /// IP-in-IP tunnel's endpoints in a fixed order (the reply goes DST>SRC), and GTP-U
    /// without its TEID (each end of a GTP tunnel has its own TEID, so the two directions
    /// of one connection carry different ones).
    #[must_use]
    pub fn undirected(self) -> EncapLayer {
        match self {
            EncapLayer::Gre { src, dst, key, udp } if dst < src => EncapLayer::Gre {
                src: dst,
                dst: src,
                key,
                udp,
            },
            EncapLayer::IpInIp { src, dst, inner_v6 } if dst < src => EncapLayer::IpInIp {
                src: dst,
                dst: src,
                inner_v6,
            },
            EncapLayer::GtpU(_) => EncapLayer::GtpU(0),
            EncapLayer::Tunnel { name, src, dst } if dst < src => EncapLayer::Tunnel {
                name,
                src: dst,
                dst: src,
            },
            l => l,
        }
    }
}

/// Most layers one frame may carry before it is taken as damage (a loop of tunnels in a
/// crafted packet must not recurse without end).
pub const MAX_LAYERS: usize = 8;

/// The layers found so far while decoding one frame: on the stack, no allocation unless the
/// frame turns out to carry TCP inside something.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerStack {
    layers: [Option<EncapLayer>; MAX_LAYERS],
    len: usize,
}

impl LayerStack {
    /// Add a layer; false when the frame already has [`MAX_LAYERS`].
    pub fn push(&mut self, layer: EncapLayer) -> bool {
        match self.layers.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(layer);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// No layer yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The path as stored in a [`crate::Segment`] (None when empty).
    pub fn to_boxed(&self) -> Option<Box<[EncapLayer]>> {
        if self.len == 0 {
            return None;
        }
        Some(self.layers[..self.len].iter().flatten().copied().collect())
    }

    /// A hash of the path (0 when empty), for keys that must tell paths apart.
    pub fn hash64(&self) -> u64 {
        path_hash(self.layers[..self.len].iter().flatten())
    }
}

/// A hash of a path; 0 only for the empty path. Computed for every tunnelled packet, so a
/// multiply-rotate hash rather than SipHash (nothing here needs DoS resistance).
pub fn path_hash<'a>(layers: impl IntoIterator<Item = &'a EncapLayer>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = crate::hash::FxHasher::default();
    let mut any = false;
    for l in layers {
        l.undirected().hash(&mut h);
        any = true;
    }
    if any {
        h.finish().max(1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_json_spelling() {
        assert_eq!(EncapLayer::Vxlan(42).to_string(), "vxlan:vni=42");
        assert_eq!(
            EncapLayer::IpInIp {
                src: "2001:db8::1".parse().unwrap(),
                dst: "2001:db8::2".parse().unwrap(),
                inner_v6: false
            }
            .to_string(),
            "4in6:2001:db8::1>2001:db8::2"
        );
        assert_eq!(
            EncapLayer::Gre {
                src: "192.0.2.1".parse().unwrap(),
                dst: "192.0.2.2".parse().unwrap(),
                key: Some(7),
                udp: false
            }
            .to_string(),
            "gre:192.0.2.1>192.0.2.2,key=7"
        );
    }

    #[test]
    fn path_is_bounded_and_hashes_apart() {
        let mut p = LayerStack::default();
        for i in 0..MAX_LAYERS {
            assert!(p.push(EncapLayer::Vlan(i as u16)));
        }
        assert!(!p.push(EncapLayer::Vlan(99)));
        let mut a = LayerStack::default();
        a.push(EncapLayer::Vxlan(1));
        let mut b = LayerStack::default();
        b.push(EncapLayer::Vxlan(2));
        assert_ne!(a.hash64(), b.hash64());
        assert_eq!(LayerStack::default().hash64(), 0);
        assert_ne!(a.hash64(), 0);
    }

    #[test]
    fn both_directions_of_a_tunnel_are_one_path() {
        let (x, y): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.9".parse().unwrap());
        let gre = |src, dst| EncapLayer::Gre {
            src,
            dst,
            key: Some(3),
            udp: false,
        };
        assert_eq!(path_hash(&[gre(x, y)]), path_hash(&[gre(y, x)]));
        let ipip = |src, dst| EncapLayer::IpInIp {
            src,
            dst,
            inner_v6: true,
        };
        assert_eq!(path_hash(&[ipip(x, y)]), path_hash(&[ipip(y, x)]));
        assert_eq!(
            path_hash(&[EncapLayer::GtpU(1)]),
            path_hash(&[EncapLayer::GtpU(2)])
        );
        // Still apart: another key, another tunnel.
        let other = EncapLayer::Gre {
            src: x,
            dst: y,
            key: Some(4),
            udp: false,
        };
        assert_ne!(path_hash(&[gre(x, y)]), path_hash(&[other]));
    }
}
