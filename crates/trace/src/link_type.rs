//! The link types of a capture (LINKTYPE_* of the pcap spec): plain data, a leaf (imports
//! nothing of the crate).

/// The link types tcplab decodes (values are LINKTYPE_* from the pcap spec).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkType {
    /// 0: BSD loopback (4-byte host-order family).
    Null,
    /// 1: Ethernet.
    En10mb,
    /// 9: PPP (RFC 1661 protocol field, optionally after HDLC address/control).
    Ppp,
    /// 50: PPP in HDLC-like framing (RFC 1662).
    PppHdlc,
    /// 51: PPPoE session frames without their Ethernet header.
    PppEther,
    /// 104: Cisco HDLC (address, control, Ethernet type).
    CHdlc,
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
    /// 239: Linux NFLOG (TLVs; the packet is in NFULA_PAYLOAD).
    Nflog,
    /// 276: Linux cooked v2.
    LinuxSll2,
    /// 105: IEEE 802.11 (no radio header).
    Ieee80211,
    /// 119: 802.11 with a Prism monitor-mode header.
    Prism,
    /// 127: 802.11 with a radiotap header.
    Radiotap,
    /// 163: 802.11 with an AVS monitor-mode header.
    Avs,
    /// 192: PPI (per-packet information) header, then 802.11.
    Ppi,
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
            9 => LinkType::Ppp,
            50 => LinkType::PppHdlc,
            51 => LinkType::PppEther,
            104 => LinkType::CHdlc,
            239 => LinkType::Nflog,
            101 | 12 | 14 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            105 => LinkType::Ieee80211,
            119 => LinkType::Prism,
            127 => LinkType::Radiotap,
            163 => LinkType::Avs,
            192 => LinkType::Ppi,
            n => LinkType::Other(n),
        }
    }

    /// The LINKTYPE_* number (the canonical one: [`LinkType::Raw`] is 101).
    pub fn as_u32(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::En10mb => 1,
            LinkType::Ppp => 9,
            LinkType::PppHdlc => 50,
            LinkType::PppEther => 51,
            LinkType::CHdlc => 104,
            LinkType::Nflog => 239,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Ieee80211 => 105,
            LinkType::Prism => 119,
            LinkType::Radiotap => 127,
            LinkType::Avs => 163,
            LinkType::Ppi => 192,
            LinkType::Other(n) => n,
        }
    }

    /// The name without its `LINKTYPE_` prefix (`"EN10MB"`, `"LINUX_SLL2"`), or
    /// `"LINKTYPE_<n>"` for a type tcplab does not decode.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            LinkType::Null => "NULL",
            LinkType::En10mb => "EN10MB",
            LinkType::Ppp => "PPP",
            LinkType::PppHdlc => "PPP_HDLC",
            LinkType::PppEther => "PPP_ETHER",
            LinkType::CHdlc => "C_HDLC",
            LinkType::Nflog => "NFLOG",
            LinkType::Raw => "RAW",
            LinkType::Loop => "LOOP",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Ieee80211 => "IEEE802_11",
            LinkType::Prism => "IEEE802_11_PRISM",
            LinkType::Radiotap => "IEEE802_11_RADIOTAP",
            LinkType::Avs => "IEEE802_11_AVS",
            LinkType::Ppi => "PPI",
            LinkType::Other(n) => return std::borrow::Cow::Owned(format!("LINKTYPE_{n}")),
        })
    }
}
