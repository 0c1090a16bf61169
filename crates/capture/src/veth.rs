//! The delay link without root: veth pairs and a relay on `AF_PACKET` sockets in a middle
//! namespace.
//!
//! **Why.** A TUN device needs `/dev/net/tun`, which is mode 0600 root on most machines: an
//! unprivileged user namespace (`unshare -Urn`) cannot open it. Everything here works with
//! CAP_NET_ADMIN/CAP_NET_RAW *in the user namespace that owns the network namespaces*, which
//! such a user has.
//!
//! **How.** Three namespaces: client, middle, server. In the middle, two veth pairs are
//! created whose other ends are moved into the client (`veth-c`) and server (`veth-s`)
//! namespaces (`IFLA_NET_NS_FD`). The relay owns one packet socket on each middle end
//! (`mid-c`, `mid-s`) and copies frames across with the delay, as it does between TUN fds.
//! Both outer ends carry the same MAC address and `IFF_NOARP`: with NOARP the kernel sends an
//! IP packet to its own MAC, which is then the peer's MAC too, so there is no ARP or neighbour
//! discovery crossing the delayed link and the receiving end takes the frame as its own. The
//! middle namespace has IPv6 off and no addresses: it never answers anything. Checksums: veth
//! leaves TCP checksums to "hardware" (CHECKSUM_PARTIAL), so a frame read from a packet
//! socket carries only the pseudo-header sum; the relay completes it before re-sending.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::link_error::LinkError;
use crate::netns;

/// The client side's veth end (the capture device without root).
pub const CLIENT_VETH: &str = "veth-c";
/// The server side's veth end.
pub const SERVER_VETH: &str = "veth-s";
/// The middle ends (relay sockets).
const MIDDLE: [&str; 2] = ["mid-c", "mid-s"];
/// The MAC of both outer ends (locally administered, unicast).
const OUTER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x01];

const RTM_NEWLINK: u16 = 16;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_EXCL: u16 = 0x200;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFF_UP: u32 = 0x1;
const IFF_NOARP: u32 = 0x80;

fn attr(m: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    m.extend_from_slice(&(len as u16).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(payload);
    m.resize(m.len() + (4 - len % 4) % 4, 0);
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn finish(mut m: Vec<u8>, flags: u16, seq: u32) -> Vec<u8> {
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&(netns::NLM_F_REQUEST | netns::NLM_F_ACK | flags).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

fn name(n: &str) -> Vec<u8> {
    let mut v = n.as_bytes().to_vec();
    v.push(0);
    v
}

/// `ip link add <middle> type veth peer name <outer> address <mac> netns <fd>`.
fn new_veth_msg(middle: &str, outer: &str, peer_ns_fd: i32, seq: u32) -> Vec<u8> {
    let mut peer = ifinfomsg(0, 0, 0).to_vec();
    attr(&mut peer, IFLA_IFNAME, &name(outer));
    attr(&mut peer, IFLA_ADDRESS, &OUTER_MAC);
    attr(&mut peer, IFLA_NET_NS_FD, &peer_ns_fd.to_ne_bytes());
    let mut data = Vec::new();
    attr(&mut data, VETH_INFO_PEER, &peer);
    let mut info = Vec::new();
    attr(&mut info, IFLA_INFO_KIND, b"veth");
    attr(&mut info, IFLA_INFO_DATA, &data);
    let mut m = vec![0u8; netns::NLMSG_HDRLEN];
    m.extend_from_slice(&ifinfomsg(0, 0, 0));
    attr(&mut m, IFLA_IFNAME, &name(middle));
    attr(&mut m, IFLA_LINKINFO, &info);
    finish(m, NLM_F_CREATE | NLM_F_EXCL, seq)
}

/// Set `flags` (within `change`) on interface `index`.
fn set_flags_msg(index: i32, flags: u32, change: u32, seq: u32) -> Vec<u8> {
    let mut m = vec![0u8; netns::NLMSG_HDRLEN];
    m.extend_from_slice(&ifinfomsg(index, flags, change));
    finish(m, 0, seq)
}

fn request(device: &'static str, op: &'static str, msg: &[u8], seq: u32) -> Result<(), LinkError> {
    match netns::netlink_request(msg, seq)? {
        None => Ok(()),
        Some(e) => Err(LinkError::Tun {
            device,
            op,
            source: io::Error::from(e),
        }),
    }
}

/// In the middle namespace (calling thread): create both veth pairs, their outer ends moved
/// into the namespaces `client_ns`/`server_ns` (fds), bring the middle ends up, turn IPv6
/// off, and open one packet socket on each middle end: `[client side, server side]`.
pub(crate) fn setup_middle(
    client_ns: &OwnedFd,
    server_ns: &OwnedFd,
) -> Result<[OwnedFd; 2], LinkError> {
    // Nothing in the middle may answer or solicit: no IPv6 (addresses, DAD, MLD) here.
    for key in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
    }
    let pairs = [
        (MIDDLE[0], CLIENT_VETH, client_ns.as_raw_fd()),
        (MIDDLE[1], SERVER_VETH, server_ns.as_raw_fd()),
    ];
    let mut socks = Vec::new();
    for (i, (mid, outer, fd)) in pairs.into_iter().enumerate() {
        let seq = 10 + 2 * i as u32;
        // Errors name the veth end being made (`veth-s`), not the TUN link's `tun-s`.
        request(
            outer,
            "RTM_NEWLINK type veth",
            &new_veth_msg(mid, outer, fd, seq),
            seq,
        )?;
        let index = netns::ifindex(mid)?;
        request(
            outer,
            "RTM_NEWLINK up (middle)",
            &set_flags_msg(index, IFF_UP | IFF_NOARP, IFF_UP | IFF_NOARP, seq + 1),
            seq + 1,
        )?;
        let sock = crate::sys::packet_socket_bound(index).map_err(|source| LinkError::Tun {
            device: outer,
            op: "socket(AF_PACKET) on the middle end",
            source,
        })?;
        socks.push(sock);
    }
    let [c, s] = <[OwnedFd; 2]>::try_from(socks)
        .map_err(|_| LinkError::Relay("expected two relay sockets".into()))?;
    Ok([c, s])
}

/// In an outer namespace (calling thread): bring veth end `dev` up with NOARP.
pub(crate) fn outer_up(dev: &'static str) -> Result<i32, LinkError> {
    let index = netns::ifindex(dev)?;
    request(
        dev,
        "RTM_NEWLINK up noarp",
        &set_flags_msg(index, IFF_UP | IFF_NOARP, IFF_UP | IFF_NOARP, 20),
        20,
    )?;
    Ok(index)
}

/// Complete the TCP checksum of a bare IPv4/IPv6 packet (IPv6 without extension headers)
/// in place; other packets are left alone.
pub(crate) fn fix_tcp_checksum(ip: &mut [u8]) {
    let Some(&v) = ip.first() else { return };
    let (tcp, end, pseudo) = match v >> 4 {
        4 => {
            if ip.get(9) != Some(&6) || ip.len() < 20 {
                return;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let mut p = ip[12..20].to_vec();
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(total.saturating_sub(ihl) as u16).to_be_bytes());
            (ihl, total, p)
        }
        6 => {
            if ip.get(6) != Some(&6) || ip.len() < 40 {
                return;
            }
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let mut p = ip[8..40].to_vec();
            p.extend_from_slice(&(plen as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            (40, 40 + plen, p)
        }
        _ => return,
    };
    if end > ip.len() || tcp + 20 > end {
        return;
    }
    ip[tcp + 16] = 0;
    ip[tcp + 17] = 0;
    let mut sum: u32 = 0;
    for chunk in pseudo.chunks(2).chain(ip[tcp..end].chunks(2)) {
        let w = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    ip[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_checksum_of_a_known_packet() {
        // IPv4 SYN 192.0.2.1:40000 -> 192.0.2.2:60000, seq 1, no options: the checksum
        // computed here must verify (the ones' complement sum over pseudo-header + segment
        // is 0xffff).
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&40u16.to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&[192, 0, 2, 1]);
        p[16..20].copy_from_slice(&[192, 0, 2, 2]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&60000u16.to_be_bytes());
        p[27] = 1;
        p[32] = 5 << 4;
        p[33] = 0x02;
        p[36] = 0xAB; // garbage in the checksum field, as CHECKSUM_PARTIAL leaves it
        fix_tcp_checksum(&mut p);
        let mut sum: u32 = 0;
        let mut pseudo = p[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 6, 0, 20]);
        for c in pseudo.chunks(2).chain(p[20..40].chunks(2)) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn veth_request_layout() {
        let m = new_veth_msg("mid-c", "veth-c", 7, 3);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert!(m.windows(4).any(|w| w == b"veth"));
        assert!(m.windows(7).any(|w| w == b"veth-c\0"));
        assert!(m.windows(6).any(|w| w == OUTER_MAC));
    }
}
