//! tcpdump text variants that must give the same verdicts as the plain listing.

use tcplab_trace::{Closer, TeardownKind};

fn seed(name: &str) -> String {
    let path = format!("{}/tests/data/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn any_interface_loopback_copies_are_counted_once() {
    // `tcpdump -i any` on loopback prints each packet twice: `lo Out`, then `lo In`.
    let mut text = String::new();
    for line in seed("three-way-close.txt").lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        text.push_str(&format!("{ts} lo    Out {rest}\n{ts} lo    In  {rest}\n"));
    }
    let a = tcplab_trace::analyze(text.as_bytes(), "any.txt").unwrap();
    assert_eq!(a.file.packets, 20);
    assert_eq!(a.file.duplicates, 10);
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 10);
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    assert_eq!(c.teardown.fin_retransmits, 0);
    // Packet numbers stay the file's (as Wireshark numbers frames): the FIN is line 13.
    assert_eq!(c.teardown_packets, vec![13, 15, 17, 19]);
}

#[test]
fn two_connections_interleaved_in_one_listing() {
    // The four-way listing's packets interleaved with the three-way listing's (different
    // 4-tuples): each connection keeps its own verdict, in first-packet order.
    // Same hour as the four-way listing, so the capture clock does not jump by hours (a
    // jump that large would rightly retire a half-closed connection as stale).
    let a: Vec<String> = seed("three-way-close.txt")
        .replace("12:43:46", "20:01:49")
        .lines()
        .map(String::from)
        .collect();
    let b: Vec<String> = seed("four-way-close.txt")
        .lines()
        .map(String::from)
        .collect();
    let mut text = String::new();
    for i in 0..a.len().max(b.len()) {
        for l in [b.get(i), a.get(i)].into_iter().flatten() {
            text.push_str(l);
            text.push('\n');
        }
    }
    let an = tcplab_trace::analyze(text.as_bytes(), "mix.txt").unwrap();
    let kinds: Vec<_> = an.connections.iter().map(|c| c.teardown.kind).collect();
    assert_eq!(kinds, vec![TeardownKind::FourWay, TeardownKind::ThreeWay]);
}
