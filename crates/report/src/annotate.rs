//! A capture rewritten as pcapng for Wireshark: each packet's narration as a packet comment
//! (`opt_comment`, code 1, UTF-8), its direction in `epb_flags` (outbound = sent by the
//! client, inbound = sent by the server, said in the section header's comment), and each
//! connection's verdict as a second comment on its FIN (or RST) packets and in the section header.
//! Frames are read with libpcap (classic pcap or single-link pcapng), byte for byte as
//! captured; the pcapng block layout follows draft-ietf-opsawg-pcapng.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tcplab_trace::render::human::{narrate, side_name, verdict, Context};
use tcplab_trace::render::Lang;
use tcplab_trace::{Analysis, Side};

/// Why a capture could not be annotated.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    /// libpcap could not read the input (tcpdump text has no frames to annotate).
    #[error("{path}: cannot read its frames (pcap or pcapng needed): {reason}")]
    Read {
        /// The input.
        path: PathBuf,
        /// libpcap's words.
        reason: String,
    },
    /// Writing the output failed.
    #[error("writing the annotated capture: {0}")]
    Write(#[from] io::Error),
}

/// What to attach to one packet.
#[derive(Debug, Default, Clone)]
struct Note {
    comments: Vec<String>,
    from: Option<Side>,
}

/// Everything the comments say, by 1-based packet number, and the section's comment.
fn notes(a: &Analysis, lang: Lang) -> (BTreeMap<u64, Note>, String) {
    let mut by_packet: BTreeMap<u64, Note> = BTreeMap::new();
    let mut section = vec![format!(
        "tcplab annotation of {}: each packet's comment explains it; direction flags are the client's view (outbound = sent by the client, inbound = sent by the server)",
        a.file.source
    )];
    for (ci, c) in a.connections.iter().enumerate() {
        let v = verdict(c, lang);
        section.push(format!(
            "connection {}: client {} → server {}: {v}",
            ci + 1,
            c.client,
            c.server
        ));
        for (i, p) in c.packets.iter().enumerate() {
            let Some(ctx) = Context::of(c, i) else {
                continue;
            };
            let n = by_packet.entry(p.number).or_default();
            n.from = Some(p.from);
            n.comments.push(format!(
                "{} → {}: {}",
                side_name(p.from, lang),
                side_name(p.from.peer(), lang),
                narrate(p.role, &ctx, lang)
            ));
            // On the FINs (and the RST of a reset), where Wireshark users look for the end.
            if p.flags.fin() || p.flags.rst() {
                n.comments.push(match lang {
                    Lang::En => format!("verdict of connection {}: {v}", ci + 1),
                    Lang::Zh => format!("连接 {} 的结论:{v}", ci + 1),
                });
            }
        }
    }
    (by_packet, section.join("\n"))
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    // An option's length is 16 bits: a longer comment is cut at a character boundary.
    let mut len = value.len().min(0xfff0);
    while len < value.len() && (value[len] & 0xc0) == 0x80 {
        len -= 1;
    }
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&value[..len]);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

fn block(w: &mut dyn Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&total.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&total.to_le_bytes())
}

/// Write `input`'s frames to `out` as annotated pcapng; `analysis` is `input`'s analysis.
pub fn annotate(
    input: &Path,
    analysis: &Analysis,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<(), AnnotateError> {
    let read_err = |e: pcap::Error| AnnotateError::Read {
        path: input.to_owned(),
        reason: e.to_string(),
    };
    let mut cap =
        pcap::Capture::from_file_with_precision(input, pcap::Precision::Nano).map_err(read_err)?;
    let link = cap.get_datalink().0;
    let (by_packet, section) = notes(analysis, lang);
    // Section header: byte-order magic, version 1.0, length unknown, the verdicts.
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    option(&mut shb, 1, section.as_bytes());
    option(&mut shb, 4, b"tcplab"); // shb_userappl
    option(&mut shb, 0, &[]);
    block(out, 0x0A0D_0D0A, &shb)?;
    // One interface: the input's link type, nanosecond timestamps.
    let mut idb = Vec::new();
    idb.extend_from_slice(&(link as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    option(&mut idb, 9, &[9]); // if_tsresol: 10^-9
    option(&mut idb, 0, &[]);
    block(out, 1, &idb)?;
    let mut number = 0u64;
    let mut epb = Vec::new();
    loop {
        let p = match cap.next_packet() {
            Ok(p) => p,
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(read_err(e)),
        };
        number += 1;
        // With nanosecond precision libpcap puts nanoseconds in `tv_usec`.
        let (sec, nsec): (i64, i64) = (p.header.ts.tv_sec, p.header.ts.tv_usec);
        let ts = (sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(nsec as u64);
        epb.clear();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.header.len.to_le_bytes());
        epb.extend_from_slice(p.data);
        epb.resize(epb.len() + (4 - p.data.len() % 4) % 4, 0);
        if let Some(n) = by_packet.get(&number) {
            for c in &n.comments {
                option(&mut epb, 1, c.as_bytes());
            }
            if let Some(from) = n.from {
                let dir: u32 = match from {
                    Side::Client => 0b10,
                    Side::Server => 0b01,
                };
                option(&mut epb, 2, &dir.to_le_bytes());
            }
            option(&mut epb, 0, &[]);
        }
        block(out, 6, &epb)?;
    }
    Ok(())
}
