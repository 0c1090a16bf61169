//! TCP inside tunnels, tags and other framings, and in IP fragments: the same close must be
//! found whatever carries it, with the outer path in `Connection::encap` and the JSON.

mod common;

use common::*;
use tcplab_trace::{Closer, TeardownKind};

fn analyze(bytes: &[u8]) -> tcplab_trace::Analysis {
    tcplab_trace::analyze(bytes, "built.pcap").expect("readable")
}

#[test]
fn every_encapsulation_carries_the_three_way_close() {
    let mut decoded = 0;
    for v6 in [false, true] {
        let ips = ip_packets(v6, &THREE_WAY);
        for (name, link, wrap, path) in wrappers() {
            let frames: Vec<Vec<u8>> = ips.iter().map(|ip| wrap(ip)).collect();
            let a = analyze(&pcap(link, &frames));
            assert_eq!(a.file.non_tcp, 0, "{name} v6={v6}: {:?}", a.file.warnings);
            assert!(a.file.warnings.is_empty(), "{name}: {:?}", a.file.warnings);
            assert_eq!(a.connections.len(), 1, "{name} v6={v6}");
            let c = &a.connections[0];
            assert_eq!(c.teardown.kind, TeardownKind::ThreeWay, "{name} v6={v6}");
            assert_eq!(c.teardown.active_closer, Some(Closer::Server), "{name}");
            assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
            assert_eq!(c.packet_count, 8, "{name}");
            let inner = if v6 { "6" } else { "4" };
            let want: Vec<String> = path.iter().map(|p| p.replace('?', inner)).collect();
            let got: Vec<String> = c.encap.iter().map(ToString::to_string).collect();
            assert_eq!(got, want, "{name} v6={v6}");
            let json = tcplab_trace::render::json::connection_value(c);
            assert_eq!(json["encap"], serde_json::json!(want), "{name}");
            decoded += 1;
        }
    }
    assert_eq!(decoded, 2 * wrappers().len());
}

#[test]
fn same_inner_tuple_in_two_vnis_is_two_connections() {
    let ips = ip_packets(false, &THREE_WAY);
    let mut frames = Vec::new();
    for ip in &ips {
        frames.push(vxlan(42, ip));
        frames.push(vxlan(43, ip));
    }
    let a = analyze(&pcap(1, &frames));
    assert_eq!(a.connections.len(), 2);
    for (c, vni) in a.connections.iter().zip([42, 43]) {
        assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
        assert_eq!(c.packet_count, 8);
        assert_eq!(c.encap[0].to_string(), format!("vxlan:vni={vni}"));
    }
    // The human listing names the path.
    let mut out = Vec::new();
    tcplab_trace::render::human::render_connection(
        &a.connections[1],
        1,
        &Default::default(),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("inside: vxlan:vni=43"), "{text}");
}

#[test]
fn ipv4_fragments_are_reassembled_in_any_order() {
    let ips = ip_packets(false, &THREE_WAY);
    let mut frames = Vec::new();
    for ip in &ips {
        if ip.len() > 200 {
            // 640 bytes of IP payload in 3 fragments, last first.
            for f in fragment_v4(ip, 256, &[2, 0, 1]) {
                frames.push(ether(0x0800, &f));
            }
        } else {
            frames.push(ether(0x0800, ip));
        }
    }
    let a = analyze(&pcap(1, &frames));
    assert_eq!(a.file.packets, 10);
    assert_eq!(a.file.non_tcp, 0);
    assert!(a.file.warnings.is_empty(), "{:?}", a.file.warnings);
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 8);
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The response is the segment of the fragment that completed it (the 7th frame), with
    // its whole length.
    let resp = c
        .packets
        .iter()
        .find(|p| p.len == 600)
        .expect("reassembled");
    assert_eq!(resp.number, 7);
}

#[test]
fn ipv6_fragments_reassemble_and_overlaps_are_discarded() {
    let ips = ip_packets(true, &THREE_WAY);
    let build = |overlap: bool| {
        let mut frames = Vec::new();
        for ip in &ips {
            if ip.len() > 200 {
                for f in fragment_v6(ip, &[256, 512], &[1, 0, 2], overlap) {
                    frames.push(ether(0x86dd, &f));
                }
            } else {
                frames.push(ether(0x86dd, ip));
            }
        }
        analyze(&pcap(1, &frames))
    };
    let a = build(false);
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 8);
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // RFC 5722: an overlapping fragment discards the whole datagram, even the fragments
    // that come after it. The response is then missing: the client acknowledges data the
    // capture does not have.
    let a = build(true);
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 7);
    assert!(c.packets.iter().all(|p| p.len != 600));
    assert_eq!(
        a.file
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["fragments-dropped:0 timed out, 1 overlapping, 0 evicted"]
    );
}

#[test]
fn fragments_time_out_on_the_capture_clock() {
    // The first fragment, then the rest 40 s later (capture clock): not reassembled.
    let ip = &ip_packets(false, &THREE_WAY)[4];
    let frags = fragment_v4(ip, 256, &[0, 1, 2]);
    let mut b = pcap(1, &[ether(0x0800, &frags[0])]);
    let tail = pcap(1, &[ether(0x0800, &frags[1]), ether(0x0800, &frags[2])]);
    // Shift the tail's records by 40 s and append them.
    let mut rest = tail[24..].to_vec();
    let mut at = 0;
    while at < rest.len() {
        let sec = u32::from_le_bytes(rest[at..at + 4].try_into().unwrap()) + 40;
        rest[at..at + 4].copy_from_slice(&sec.to_le_bytes());
        let len = u32::from_le_bytes(rest[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + len;
    }
    b.extend_from_slice(&rest);
    let a = analyze(&b);
    assert!(a.connections.is_empty());
    assert_eq!(
        a.file
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["fragments-dropped:2 timed out, 0 overlapping, 0 evicted"]
    );
    // Within the time, the same fragments complete the segment.
    let a = analyze(&pcap(
        1,
        &frags.iter().map(|f| ether(0x0800, f)).collect::<Vec<_>>(),
    ));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].packets[0].len, 600);
}

#[test]
fn fragmented_tunnel_packets_are_reassembled_before_decapsulation() {
    // The outer VXLAN/UDP/IPv4 packet is fragmented (an MTU too small for the overlay).
    let ips = ip_packets(false, &THREE_WAY);
    let mut frames = Vec::new();
    for ip in &ips {
        let outer = vxlan(42, ip);
        if outer.len() > 300 {
            for f in fragment_v4(&outer[14..], 200, &[1, 0, 3, 2]) {
                frames.push(ether(0x0800, &f));
            }
        } else {
            frames.push(outer);
        }
    }
    let a = analyze(&pcap(1, &frames));
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 8);
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.encap[0].to_string(), "vxlan:vni=42");
}

#[test]
fn nesting_is_bounded() {
    // IP in IP nine times: more layers than tcplab follows is damage, not a deep recursion.
    let mut ip = ip_packets(false, &THREE_WAY)[0].clone();
    for _ in 0..9 {
        ip = outer_v4(4, [192, 0, 2, 9], [192, 0, 2, 10], &ip);
    }
    let a = analyze(&pcap(101, &[ip]));
    assert!(a.connections.is_empty());
    assert!(
        a.file.warnings[0].to_string().contains("encapsulations"),
        "{:?}",
        a.file.warnings
    );
}

#[test]
fn wccp_redirect_and_teredo_carry_the_close() {
    // WCCP redirects IPv4 only; Teredo carries IPv6 only (with an origin indication).
    let frames: Vec<Vec<u8>> = ip_packets(false, &THREE_WAY)
        .iter()
        .map(|ip| wccp(ip))
        .collect();
    let a = analyze(&pcap(1, &frames));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(
        a.connections[0].encap[0].to_string(),
        "wccp:198.51.100.10>198.51.100.20"
    );
    let frames: Vec<Vec<u8>> = ip_packets(true, &THREE_WAY)
        .iter()
        .map(|ip| {
            let mut t = vec![0, 0, 0x0d, 0x96, 1, 2, 3, 4];
            t.extend_from_slice(ip);
            over_udp(3544, &t)
        })
        .collect();
    let a = analyze(&pcap(1, &frames));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(
        a.connections[0].encap[0].to_string(),
        "teredo:198.51.100.10>198.51.100.20"
    );
}

#[test]
fn teredo_on_a_relay_port_is_found_by_its_addresses() {
    // After qualification a Teredo client talks to its relay on any port: a datagram that
    // is exactly one IPv6 packet with a Teredo address (2001:0::/32) is taken as Teredo.
    let frames: Vec<Vec<u8>> = ip_packets(true, &THREE_WAY)
        .iter()
        .map(|ip| {
            let mut ip = ip.clone();
            ip[8..12].copy_from_slice(&[0x20, 0x01, 0, 0]);
            ip[24..28].copy_from_slice(&[0x20, 0x01, 0, 0]);
            ether(
                0x0800,
                &outer_v4(
                    17,
                    [198, 51, 100, 10],
                    [198, 51, 100, 20],
                    &udp(3797, 32900, &ip),
                ),
            )
        })
        .collect();
    let a = analyze(&pcap(1, &frames));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
    // Without a Teredo address it stays UDP.
    let frames: Vec<Vec<u8>> = ip_packets(true, &THREE_WAY)
        .iter()
        .map(|ip| {
            ether(
                0x0800,
                &outer_v4(
                    17,
                    [198, 51, 100, 10],
                    [198, 51, 100, 20],
                    &udp(3797, 32900, ip),
                ),
            )
        })
        .collect();
    assert!(analyze(&pcap(1, &frames)).connections.is_empty());
}

#[test]
fn protected_wifi_frames_are_counted_and_skipped_with_a_warning() {
    let ips = ip_packets(false, &THREE_WAY);
    let mut frames: Vec<Vec<u8>> = ips.iter().map(|ip| wifi(ip, true, false)).collect();
    frames.push(wifi_protected(&ips[0]));
    frames.push(wifi_protected(&ips[1]));
    let a = analyze(&pcap(105, &frames));
    assert_eq!(a.connections.len(), 1);
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
    let w: Vec<String> = a.file.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("protected"), "{w:?}");
    assert!(w[0].contains('2') || w[0].contains("1 more"), "{w:?}");
}
