//! Live runs of the scenarios that need a scripted segment on the link (`[[link.inject]]`,
//! `[[link.hold]]`), and proof that their expectations fail when the segment or the kernel
//! behaviour they name is not there (feature `netns-tests`; they FAIL without privileges).
#![cfg(feature = "netns-tests")]

mod common;

use common::{fails, passes, scenario};
use tcplab_runner::scenario::IpVersion;

const SCENARIOS: [&str; 8] = [
    "time-wait/rst-kills-time-wait.toml",
    "time-wait/rst-in-time-wait-rfc1337.toml",
    "states/stray-ack-to-closed.toml",
    "states/data-after-fin-in-close-wait.toml",
    "states/stray-data-to-last-ack.toml",
    "states/data-after-close-resets.toml",
    "link/fin-overtakes-data.toml",
    "time-wait/old-syn-into-time-wait.toml",
];

#[test]
fn netns_inject_scenarios_hold() {
    for f in SCENARIOS {
        passes(&scenario(f), 3);
    }
}

/// Forged segments are built for IPv6 as well (addresses, checksum over the v6 pseudo
/// header): the kernel acts on them the same way.
#[test]
fn netns_inject_scenarios_hold_over_ipv6() {
    for f in [
        "time-wait/rst-kills-time-wait.toml",
        "states/stray-ack-to-closed.toml",
        "states/data-after-close-resets.toml",
        "link/fin-overtakes-data.toml",
    ] {
        let mut s = scenario(f);
        s.ip = vec![IpVersion::Ipv6];
        passes(&s, 2);
    }
}

/// Each scenario's expectation against the real kernel doing something else: without the
/// scripted segment, with the sysctl flipped, or with a segment the kernel treats the other
/// way, it fails for the reason the expectation names.
#[test]
fn netns_inject_scenarios_fail_without_their_segment() {
    // No forged RST: the client keeps its TIME_WAIT.
    let mut s = scenario("time-wait/rst-kills-time-wait.toml");
    s.link.as_mut().unwrap().injects.clear();
    fails(
        &s,
        2,
        "kernel client socket ended in TIME_WAIT, expected [CLOSED]",
    );
    // tcp_rfc1337 = 1: the forged RST is ignored.
    let mut s = scenario("time-wait/rst-kills-time-wait.toml");
    s.sysctl.insert("net.ipv4.tcp_rfc1337".into(), "1".into());
    fails(
        &s,
        2,
        "kernel client socket ended in TIME_WAIT, expected [CLOSED]",
    );
    // tcp_rfc1337 = 0: the forged RST kills the timewait socket.
    let mut s = scenario("time-wait/rst-in-time-wait-rfc1337.toml");
    s.sysctl.insert("net.ipv4.tcp_rfc1337".into(), "0".into());
    fails(
        &s,
        2,
        "kernel client socket ended in CLOSED, expected [TIME_WAIT]",
    );
    // An RST one below the window's edge is not the timewait socket's: it stays.
    let mut s = scenario("time-wait/rst-kills-time-wait.toml");
    if let tcplab_capture::InjectAction::Forge(f) =
        &mut s.link.as_mut().unwrap().injects[0].0.action
    {
        f.seq.offset = -1;
    }
    fails(
        &s,
        2,
        "kernel client socket ended in TIME_WAIT, expected [CLOSED]",
    );
    // No replayed ACK: the server has nothing to answer.
    let mut s = scenario("states/stray-ack-to-closed.toml");
    s.link.as_mut().unwrap().injects.clear();
    fails(&s, 2, "server sent 0 RST(s)");
    // Text overlapping the FIN (one byte before rcv_nxt) is not "beyond the FIN": it takes
    // the closed-for-reading path and resets the connection.
    let mut s = scenario("states/data-after-fin-in-close-wait.toml");
    if let tcplab_capture::InjectAction::Forge(f) =
        &mut s.link.as_mut().unwrap().injects[0].0.action
    {
        f.seq.offset = -1;
    }
    fails(&s, 2, "expected four-way/client, got reset");
    // In LAST_ACK, the same segment acknowledging the server's FIN is acted on: it ends
    // LAST_ACK at once, and the lost final ACK's FIN retransmission never comes.
    let mut s = scenario("states/stray-data-to-last-ack.toml");
    if let tcplab_capture::InjectAction::Forge(f) =
        &mut s.link.as_mut().unwrap().injects[0].0.action
    {
        f.ack.offset = 0;
    }
    fails(&s, 2, "fin_retransmits 0 outside >= 1");
    // A forged SYN one above the old connection's sequence is new: TIME_WAIT hands it to
    // the listener, whose SYN-ACK acknowledges a sequence number the old connection never
    // reached (the client resets it), where the old SYN got the timewait socket's ACK.
    let mut s = scenario("time-wait/old-syn-into-time-wait.toml");
    if let tcplab_capture::InjectAction::Forge(f) =
        &mut s.link.as_mut().unwrap().injects[0].0.action
    {
        f.seq.offset = 1;
    }
    fails(&s, 2, "unexpected warning `ack-for-uncaptured-data:client`");
    // No data after close(2): an ordinary four-way close.
    let mut s = scenario("states/data-after-close-resets.toml");
    s.link.as_mut().unwrap().injects.clear();
    fails(&s, 2, "expected reset");
    // A moment that never comes (no RST crosses the link) fails the run, naming it.
    let mut s = scenario("states/stray-ack-to-closed.toml");
    s.link.as_mut().unwrap().injects[0].0.at = "server RST".parse().unwrap();
    fails(&s, 1, "link.inject 1 (at server RST #1) never went out");
}
