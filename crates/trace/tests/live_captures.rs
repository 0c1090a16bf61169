//! Real captures made by the test suite itself (crates/capture/examples/make-test-captures.rs:
//! real kernel TCP on loopback in a private namespace, libpcap), checked in so that the
//! analyzer is tested against a real kernel's teardown without root.

use tcplab_trace::{Closer, TeardownKind};

fn analyze(name: &str) -> tcplab_trace::Analysis {
    let path = format!("{}/tests/data/live/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    tcplab_trace::analyze(&bytes[..], name).unwrap()
}

fn verdict(name: &str) -> (TeardownKind, Option<Closer>, Vec<String>) {
    let a = analyze(name);
    assert_eq!(a.file.format, tcplab_trace::Format::Pcap);
    assert_eq!(a.file.duplicates, 0, "libpcap on lo sees each packet once");
    assert_eq!(a.connections.len(), 1, "{name}");
    let c = &a.connections[0];
    assert!(c.client.ip().is_loopback() && c.server.ip().is_loopback());
    (
        c.teardown.kind,
        c.teardown.active_closer,
        c.warnings.iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn server_closes_first_and_client_waits_20ms_is_three_way() {
    let (k, c, w) = verdict("three-way-server-first.pcap");
    assert_eq!((k, c), (TeardownKind::ThreeWay, Some(Closer::Server)));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn server_waits_100ms_is_four_way_with_the_delayed_ack() {
    let a = analyze("four-way-server-delay-100ms.pcap");
    let c = &a.connections[0];
    assert_eq!(c.teardown.kind, TeardownKind::FourWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Client));
    assert!(c.teardown.final_ack);
    // Linux's delayed ACK: the server's ACK of the client's FIN comes ~40 ms later
    // (tcp_delack_min 40 ms, RFC 1122 §4.2.3.2), never at once.
    let delay_ms = c.teardown.fin_ack_delay_ns.unwrap() as f64 / 1e6;
    assert!((20.0..=220.0).contains(&delay_ms), "delay {delay_ms} ms");
}

#[test]
fn linger_zero_is_reset_by_the_client() {
    let (k, c, _) = verdict("reset-client-linger0.pcap");
    assert_eq!((k, c), (TeardownKind::Reset, Some(Closer::Client)));
}

#[test]
fn close_with_unread_data_is_reset_by_the_server() {
    let (k, c, _) = verdict("reset-server-unread-data.pcap");
    assert_eq!((k, c), (TeardownKind::Reset, Some(Closer::Server)));
}

#[test]
fn ipv6_three_way() {
    let a = analyze("ipv6-three-way.pcap");
    let c = &a.connections[0];
    assert!(c.client.is_ipv6());
    assert!(c.server.to_string().starts_with("[::1]:"));
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
}
