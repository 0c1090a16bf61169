//! The classifier's decision order (docs/teardown.md, "Teardown kinds") driven through the
//! tcpdump text reader: one relative-numbered handshake and exchange, then each ending.

use tcplab_trace::{Closer, TeardownKind};

const EXCHANGE: &str = "\
10:00:00.000000 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [S], seq 1000, win 65535, length 0
10:00:00.000100 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [S.], seq 5000, ack 1001, win 65535, length 0
10:00:00.000200 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [.], ack 1, win 512, length 0
10:00:00.000300 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [P.], seq 1:4, ack 1, win 512, length 3
10:00:00.000400 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [P.], seq 1:7, ack 4, win 512, length 6
";
const SERVER_FIN: &str =
    "10:00:00.000500 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [F.], seq 7, ack 4, win 512, length 0\n";
const CLIENT_ACKS_FIN: &str =
    "10:00:00.000600 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [.], ack 8, win 512, length 0\n";
const CLIENT_FIN: &str =
    "10:00:00.020000 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [F.], seq 4, ack 8, win 512, length 0\n";
const SERVER_ACKS_FIN: &str =
    "10:00:00.020100 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [.], ack 5, win 512, length 0\n";
const CLIENT_RST: &str =
    "10:00:00.030000 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [R.], seq 4, ack 8, win 0, length 0\n";

#[track_caller]
fn verdict(tail: &[&str]) -> (TeardownKind, Option<Closer>) {
    let text = format!("{EXCHANGE}{}", tail.concat());
    let a = tcplab_trace::analyze(text.as_bytes(), "case.txt").expect("valid listing");
    assert_eq!(a.connections.len(), 1, "{text}");
    let t = a.connections[0].teardown;
    (t.kind, t.active_closer)
}

#[test]
fn four_way_when_the_fin_is_acked_in_its_own_segment() {
    let v = verdict(&[SERVER_FIN, CLIENT_ACKS_FIN, CLIENT_FIN, SERVER_ACKS_FIN]);
    assert_eq!(v, (TeardownKind::FourWay, Some(Closer::Server)));
}

#[test]
fn three_way_when_the_second_fin_carries_the_ack() {
    let v = verdict(&[SERVER_FIN, CLIENT_FIN, SERVER_ACKS_FIN]);
    assert_eq!(v, (TeardownKind::ThreeWay, Some(Closer::Server)));
}

#[test]
fn reset_before_both_fins_wins_over_a_fin() {
    let v = verdict(&[SERVER_FIN, CLIENT_ACKS_FIN, CLIENT_RST]);
    assert_eq!(v, (TeardownKind::Reset, Some(Closer::Client)));
}

#[test]
fn incomplete_with_one_fin_and_no_rst() {
    let v = verdict(&[SERVER_FIN, CLIENT_ACKS_FIN]);
    assert_eq!(v, (TeardownKind::Incomplete, Some(Closer::Server)));
}

#[test]
fn open_without_fin_or_rst() {
    assert_eq!(verdict(&[]), (TeardownKind::Open, None));
}
