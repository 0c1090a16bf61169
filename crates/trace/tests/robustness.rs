//! `analyze` never panics, whatever the input: truncations and byte flips of real captures
//! (the live captures in tests/data/ and the seed's listings), of captures built in code with
//! every encapsulation and with fragments (`common/mod.rs`), and arbitrary bytes.

mod common;

use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn inputs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut stack = vec![data];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng" | "txt")
            ) {
                files.push(p);
            }
        }
    }
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed");
    for name in [
        "three-way-close.txt",
        "four-way-close.txt",
        "simultaneous-close.txt",
    ] {
        files.push(seed.join(name));
    }
    files.sort();
    files
}

/// The file seeds' bytes followed by the built captures (tunnels, tags, fragments).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut all: Vec<Vec<u8>> = inputs().iter().map(|p| std::fs::read(p).unwrap()).collect();
        all.extend(common::seed_captures().into_iter().map(|(_, b)| b));
        all
    })
}

fn analyze_bytes(bytes: &[u8]) {
    // Ok or Err are both fine; a panic fails the test.
    let _ = tcplab_trace::analyze(bytes, "mutant");
}

#[test]
fn truncation_at_every_offset_never_panics() {
    let files = inputs();
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "pcap")),
        "no binary capture found under tests/data"
    );
    for bytes in seeds() {
        let bytes = &bytes[..];
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            analyze_bytes(&bytes[..cut]);
        }
    }
}

#[test]
fn truncated_capture_keeps_what_was_read() {
    for path in inputs() {
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let full = tcplab_trace::analyze(&bytes[..], "full").unwrap();
        let cut = tcplab_trace::analyze(&bytes[..bytes.len() - 3], "cut").unwrap();
        assert_eq!(
            cut.file.packets + 1,
            full.file.packets,
            "{}",
            path.display()
        );
        assert!(
            cut.file
                .warnings
                .iter()
                .any(|w| w.to_string().starts_with("truncated-capture")),
            "{}: {:?}",
            path.display(),
            cut.file.warnings
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn byte_flips_never_panic(file_idx in 0usize..128, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let all = seeds();
        let mut bytes = all[file_idx % all.len()].clone();
        if !bytes.is_empty() {
            for (idx, val) in flips {
                let i = idx.index(bytes.len());
                bytes[i] ^= val;
            }
        }
        analyze_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        analyze_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_pcap_header_never_panic(
        magic in prop::sample::select(vec![
            [0xd4u8, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1], [0x0a, 0x0d, 0x0d, 0x0a],
        ]),
        link in prop::sample::select(vec![0u32, 1, 9, 50, 51, 101, 104, 108, 113, 228, 229, 239, 276, 9999]),
        body in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&magic);
        bytes.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        bytes.extend_from_slice(&link.to_le_bytes());
        bytes.extend_from_slice(&body);
        analyze_bytes(&bytes);
    }

    #[test]
    fn arbitrary_tunnelled_tcpdump_lines_never_panic(lines in prop::collection::vec("[0-9:. ]{0,16}IP6? [0-9a-f.:]{1,40} > [0-9a-f.:]{1,40}: (\\[no cksum\\] )?(VXLAN|Geneve), [a-z]{0,6} \\[I\\] \\(0x08\\), vni (0x)?[0-9a-f]{0,10}\n(IP6?|IP \\(tos 0x0\\)|PPPoE  \\[ses 0x1\\] IP)( [0-9a-f.:]{1,40} > [0-9a-f.:]{1,40}: (DSTOPT |frag \\([0-9|]{1,8}\\) )?Flags \\[[SFRP.]{0,4}\\], (seq [0-9:]{1,22}, )?(ack [0-9]{1,11}, )?win [0-9]{1,6}, length [0-9]{1,8})?", 1..12)) {
        analyze_bytes(lines.join("\n").as_bytes());
    }

    /// The arbitrary lines below are mostly rejected (their times and addresses are random
    /// text); these have the shape of real `tcpdump -nn` lines with random numbers, so the
    /// reader accepts each and the tracker and classifier run on it: every line is a packet.
    #[test]
    fn well_formed_tcpdump_lines_are_read_and_classified(lines in prop::collection::vec(
        ("[01][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{6}", 1u8..255, 1u16..65535, 1u8..255, 1u16..65535,
         "(S|S\\.|\\.|P\\.|F\\.|R|R\\.)", 0u32..u32::MAX, 0u32..u32::MAX, 0u16..65535),
        1..12,
    )) {
        let text: Vec<String> = lines
            .iter()
            .map(|(t, a, pa, b, pb, flags, seq, ack, win)| {
                format!(
                    "{t} IP 10.0.0.{a}.{pa} > 10.0.1.{b}.{pb}: Flags [{flags}], seq {seq}, ack {ack}, win {win}, length 0"
                )
            })
            .collect();
        let a = tcplab_trace::analyze(text.join("\n").as_bytes(), "shaped").expect("a readable listing");
        prop_assert_eq!(a.file.packets, lines.len() as u64, "{:?}", text);
        prop_assert!(!a.connections.is_empty());
    }

    /// Random lines, each either arbitrary text in tcpdump's shape (mostly rejected) or a
    /// well-formed `tcpdump -nn` line (accepted), the first always well-formed so the
    /// listing is recognised: nothing panics, and the reject path and the accept path both
    /// run in one listing — every well-formed line is a packet whatever its neighbours.
    #[test]
    fn arbitrary_tcpdump_lines_never_panic(lines in prop::collection::vec(
        (any::<bool>(),
         "[0-9:. ]{0,16}(IP6?|lo In  IP) [0-9a-f.:]{1,40} > [0-9a-f.:]{1,40}: Flags \\[[SFRP.EW]{0,4}\\], (seq [0-9:]{1,22}, )?(ack [0-9]{1,11}, )?win [0-9]{1,6}, length [0-9]{1,8}",
         0u32..86_400_000, 1u8..255, 1u16..65535, "(S|S\\.|\\.|P\\.|F\\.|R|R\\.)", 0u32..u32::MAX, 0u32..u32::MAX),
        1..12,
    )) {
        let mut well_formed = 0u64;
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, (shaped, arbitrary, ms, a, pa, flags, seq, ack))| {
                if *shaped || i == 0 {
                    well_formed += 1;
                    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
                    format!(
                        "{h:02}:{m:02}:{s:02}.{:06} IP 10.0.0.{a}.{pa} > 10.0.1.2.80: Flags [{flags}], seq {seq}, ack {ack}, win 512, length 0",
                        ms % 1000 * 1000
                    )
                } else {
                    arbitrary.clone()
                }
            })
            .collect();
        let a = tcplab_trace::analyze(text.join("\n").as_bytes(), "mixed");
        prop_assert!(a.is_ok(), "{:?}: {:?}", text, a.err());
        if let Ok(a) = a {
            prop_assert!(a.file.packets >= well_formed, "{} < {well_formed}: {:?}", a.file.packets, text);
        }
    }
}
