//! The outer path of a tunnelled or tagged packet: which encapsulations [`crate::link`] took
//! off before it reached TCP, outermost first.
//!
//! A connection is identified by its inner 4-tuple *and* this path (two VXLAN VNIs, VLANs or
//! GRE keys can carry the same inner tuple; they are different connections). Framing that
//! identifies nothing (LLC/SNAP, PPP, C-HDLC, cooked headers, NFLOG) is not part of it.
//! `Display` is the JSON spelling (`vxlan:vni=42`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

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

/// The layers found so far while decoding one frame: a fixed array, no allocation (a
/// [`PathCache`] turns it into the [`EncapPath`] a segment carries). A decoder keeps one
/// and clears it per frame.
#[derive(Clone, Copy, Debug)]
pub struct LayerStack {
    /// `layers[..len]` are the path; the rest is filler (a plain array: no `Option` to
    /// unwrap when comparing with a cached path).
    layers: [EncapLayer; MAX_LAYERS],
    len: usize,
    /// A cheap running mix of the layers as pushed, to find the path in a [`PathCache`]
    /// without hashing it again.
    mix: u64,
}

impl Default for LayerStack {
    fn default() -> Self {
        LayerStack {
            layers: [EncapLayer::Vlan(0); MAX_LAYERS],
            len: 0,
            mix: 0,
        }
    }
}

impl LayerStack {
    /// Add a layer; false when the frame already has [`MAX_LAYERS`].
    pub fn push(&mut self, layer: EncapLayer) -> bool {
        match self.layers.get_mut(self.len) {
            Some(slot) => {
                *slot = layer;
                self.len += 1;
                self.mix = (self.mix.rotate_left(23) ^ layer.word()).wrapping_mul(MIX_K);
                true
            }
            None => false,
        }
    }

    /// Empty it, for the next frame.
    pub fn clear(&mut self) {
        self.reset_to(StackMark::default());
    }

    /// Where the stack stands now, to come back to with [`LayerStack::reset_to`].
    pub fn mark(&self) -> StackMark {
        StackMark {
            len: self.len,
            mix: self.mix,
        }
    }

    /// Drop the layers pushed since `mark` was taken.
    pub fn reset_to(&mut self, mark: StackMark) {
        self.len = mark.len.min(MAX_LAYERS);
        self.mix = mark.mix;
    }

    /// No layer yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The layers, outermost first.
    pub fn layers(&self) -> &[EncapLayer] {
        &self.layers[..self.len]
    }

    /// A hash of the path (0 when empty), for keys that must tell paths apart.
    pub fn hash64(&self) -> u64 {
        path_hash(self.layers())
    }
}

/// A depth of a [`LayerStack`] (see [`LayerStack::mark`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackMark {
    len: usize,
    mix: u64,
}

/// Multiplier of [`LayerStack`]'s running mix (the 64-bit golden ratio).
const MIX_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl EncapLayer {
    /// The layer folded into one word for [`LayerStack`]'s running mix: a tag per variant
    /// in the top bits, the identifying fields below. Collisions only cost a [`PathCache`]
    /// miss (a hit compares the layers themselves), so speed matters more than spread.
    fn word(&self) -> u64 {
        fn ip(a: IpAddr) -> u64 {
            match a {
                IpAddr::V4(v4) => u64::from(v4.to_bits()),
                IpAddr::V6(v6) => {
                    let b = v6.to_bits();
                    (b as u64) ^ ((b >> 64) as u64).rotate_left(29)
                }
            }
        }
        let tag = |t: u64| t << 59;
        match *self {
            EncapLayer::Vlan(id) => tag(1) | u64::from(id),
            EncapLayer::Pbb(isid) => tag(2) | u64::from(isid),
            EncapLayer::ETag(ecid) => tag(3) | u64::from(ecid),
            EncapLayer::VnTag { dst, src } => tag(4) | u64::from(dst) << 16 | u64::from(src),
            EncapLayer::Mpls(label) => tag(5) | u64::from(label),
            EncapLayer::Pppoe(s) => tag(6) | u64::from(s),
            EncapLayer::Vxlan(vni) => tag(7) | u64::from(vni),
            EncapLayer::Geneve(vni) => tag(8) | u64::from(vni),
            EncapLayer::Gre { src, dst, key, udp } => {
                let key = key.map_or(1 << 32, u64::from);
                tag(9 + u64::from(udp)) ^ ip(src).wrapping_mul(MIX_K) ^ ip(dst) ^ key << 7
            }
            EncapLayer::Erspan { version, session } => {
                tag(11) | u64::from(version) << 16 | u64::from(session)
            }
            EncapLayer::GtpU(teid) => tag(12) | u64::from(teid),
            EncapLayer::Tunnel { name, src, dst } => {
                tag(13) ^ (name.len() as u64) << 40 ^ ip(src).wrapping_mul(MIX_K) ^ ip(dst)
            }
            EncapLayer::IpInIp { src, dst, inner_v6 } => {
                tag(14 + u64::from(inner_v6)) ^ ip(src).wrapping_mul(MIX_K) ^ ip(dst)
            }
        }
    }
}

/// A hash of a path; 0 only for the empty path. Computed once per distinct path (an
/// [`EncapPath`] keeps it), so its exact value can stay what connection keys always used.
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

/// The encapsulation path of a segment, outermost layer first: shared by every packet that
/// came through the same path (a reference count, not a copy), with its [`path_hash`]
/// computed once. A tunnel-heavy capture carries a few hundred paths over millions of
/// packets; allocating one per packet (and freeing it on the table's thread) cost more
/// than decoding the packet.
#[derive(Clone, Debug)]
pub struct EncapPath {
    /// A thin pointer (an `Arc<[_]>` is two words): with the hash beside it the path takes
    /// 16 bytes of a [`crate::Segment`], which stays at 120 bytes, as with no sharing.
    layers: Arc<Box<[EncapLayer]>>,
    /// `path_hash(layers)`: the same for both directions of a tunnel.
    hash: u64,
}

impl EncapPath {
    /// A path of these layers (outermost first); None when there are none.
    pub fn new(layers: &[EncapLayer]) -> Option<EncapPath> {
        (!layers.is_empty()).then(|| EncapPath {
            layers: Arc::new(layers.into()),
            hash: path_hash(layers),
        })
    }

    /// The layers, outermost first (never empty).
    pub fn layers(&self) -> &[EncapLayer] {
        &self.layers
    }

    /// [`path_hash`] of the layers (never 0): equal for both directions of a tunnel, what
    /// connection keys use to tell paths apart.
    pub fn hash64(&self) -> u64 {
        self.hash
    }
}

impl std::ops::Deref for EncapPath {
    type Target = [EncapLayer];
    fn deref(&self) -> &[EncapLayer] {
        &self.layers
    }
}

impl PartialEq for EncapPath {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.layers, &other.layers) || self.layers() == other.layers()
    }
}

impl Eq for EncapPath {}

/// Slots of a [`PathCache`] (two-way: a path may sit in either slot of its pair). Ample for
/// the few hundred paths of a tunnel-heavy capture; a miss only costs a new [`EncapPath`].
const CACHE_SLOTS: usize = 4096;

/// The paths a decoder saw recently, so that the packets of one tunnel share one
/// [`EncapPath`]: fixed size (a newer path evicts an older one from its pair of slots, and
/// segments already holding the old one keep it), allocated at the first tunnelled frame.
#[derive(Debug, Default)]
pub struct PathCache {
    slots: Vec<Option<EncapPath>>,
}

impl PathCache {
    /// The shared path for `stack`'s layers (None when it has none).
    pub fn path(&mut self, stack: &LayerStack) -> Option<EncapPath> {
        if stack.is_empty() {
            return None;
        }
        if self.slots.is_empty() {
            self.slots = vec![None; CACHE_SLOTS];
        }
        let bits = CACHE_SLOTS.trailing_zeros();
        let pair = (stack.mix.wrapping_mul(MIX_K) >> (64 - bits)) as usize & !1;
        for i in [pair, pair + 1] {
            if let Some(p) = &self.slots[i] {
                if p.layers() == stack.layers() {
                    return Some(p.clone());
                }
            }
        }
        let p = EncapPath::new(stack.layers())?;
        // The newest path in the pair's first slot, the one it displaces in the second.
        self.slots[pair + 1] = self.slots[pair].replace(p.clone());
        Some(p)
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
    fn a_shared_path_takes_two_words_of_a_segment() {
        // Every record moves through the pipeline's batches: the path must not grow it.
        assert_eq!(std::mem::size_of::<Option<EncapPath>>(), 16);
    }

    #[test]
    fn the_cache_shares_one_path_per_layer_list() {
        let mut cache = PathCache::default();
        let mut a = LayerStack::default();
        a.push(EncapLayer::Vlan(7));
        a.push(EncapLayer::Vxlan(42));
        let first = cache.path(&a).expect("a path");
        let again = cache.path(&a).expect("a path");
        assert!(Arc::ptr_eq(&first.layers, &again.layers));
        assert_eq!(
            first.layers(),
            &[EncapLayer::Vlan(7), EncapLayer::Vxlan(42)]
        );
        assert_eq!(first.hash64(), a.hash64());
        // Another path, even one whose running mix might collide, is its own.
        let mut b = LayerStack::default();
        b.push(EncapLayer::Vlan(7));
        b.push(EncapLayer::Vxlan(43));
        let other = cache.path(&b).expect("a path");
        assert_ne!(other, first);
        assert_eq!(cache.path(&LayerStack::default()), None);
        // Going back to a mark drops the layers pushed after it.
        let m = a.mark();
        a.push(EncapLayer::Mpls(16));
        a.reset_to(m);
        assert!(Arc::ptr_eq(
            &cache.path(&a).expect("a path").layers,
            &first.layers
        ));
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
