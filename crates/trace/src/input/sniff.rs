//! Format detection from the first bytes, never from the file name.
//!
//! Inputs may be pipes (stdin), so nothing is sought back: the bytes looked at are copied
//! into a small head buffer and handed to the chosen reader in front of the rest of the input
//! (`Cursor(head).chain(reader)`). Binary formats need only their 4-byte magic; text needs
//! one line that reads like a `tcpdump -nn` packet line (at most [`TEXT_PEEK`] bytes are
//! looked at).

use super::pcap::{Magic, PcapReader};
use super::pcapng::{PcapNgReader, SHB_TYPE};
use super::tcpdump::{self, TcpdumpReader};
use super::{PacketSource, ReadError};
use std::io::{self, BufRead, Cursor, Read};

/// How many bytes of text are examined for a packet line.
const TEXT_PEEK: usize = 8192;

pub(super) fn open<'a, R: BufRead + Send + 'a>(
    mut reader: R,
) -> Result<Box<dyn PacketSource + Send + 'a>, ReadError> {
    let mut head = Vec::with_capacity(64);
    fill_to(&mut reader, &mut head, 4)?;
    if head.is_empty() {
        return Err(ReadError::Empty);
    }
    let magic = head
        .get(..4)
        .map(|m| [m[0], m[1], m[2], m[3]])
        .unwrap_or([0; 4]);
    if head.len() < 4 {
        if let Some((format, need)) = magic_prefix(&head) {
            return Err(ReadError::TruncatedHeader {
                format,
                len: head.len(),
                need,
            });
        }
    }
    if Magic::from_bytes(magic).is_some() {
        let r = Cursor::new(head).chain(reader);
        return Ok(Box::new(PcapReader::new(r)?));
    }
    if u32::from_be_bytes(magic) == SHB_TYPE {
        let r = Cursor::new(head).chain(reader);
        return Ok(Box::new(PcapNgReader::new(r)?));
    }
    // Text: read lines until one is a packet line, the peek budget is spent, or EOF.
    let mut checked = 0;
    loop {
        while let Some(nl) = head[checked..].iter().position(|&b| b == b'\n') {
            let line = &head[checked..checked + nl];
            checked += nl + 1;
            if tcpdump::is_packet_line(line) {
                let r = Cursor::new(head).chain(reader);
                return Ok(Box::new(TcpdumpReader::new(r)?));
            }
        }
        if head.len() >= TEXT_PEEK {
            break;
        }
        let before = head.len();
        fill_to(&mut reader, &mut head, before + 1)?;
        if head.len() == before {
            // EOF: the last line may lack its newline.
            if tcpdump::is_packet_line(&head[checked..]) {
                let r = Cursor::new(head).chain(reader);
                return Ok(Box::new(TcpdumpReader::new(r)?));
            }
            break;
        }
    }
    head.truncate(16);
    Err(ReadError::UnknownFormat { first: head })
}

/// A file shorter than 4 bytes that starts like a magic is a truncated header of that format.
fn magic_prefix(head: &[u8]) -> Option<(&'static str, usize)> {
    let pcap = [0xa1b2_c3d4u32, 0xa1b2_3c4d, 0xa1b2_cd34]
        .iter()
        .any(|m| m.to_be_bytes().starts_with(head) || m.to_le_bytes().starts_with(head));
    if pcap {
        Some(("pcap", super::pcap::FILE_HEADER_LEN))
    } else if SHB_TYPE.to_be_bytes().starts_with(head) {
        Some(("pcapng", 28))
    } else {
        None
    }
}

/// Move bytes from `reader` into `head` until it holds at least `want` bytes or the input ends.
/// Takes whatever the reader has buffered, so text is peeked in large steps.
fn fill_to<R: BufRead>(reader: &mut R, head: &mut Vec<u8>, want: usize) -> Result<(), ReadError> {
    while head.len() < want {
        let avail = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ReadError::Io {
                    offset: head.len() as u64,
                    source,
                })
            }
        };
        if avail.is_empty() {
            break;
        }
        let take = avail
            .len()
            .min(TEXT_PEEK.saturating_sub(head.len()).max(want - head.len()));
        head.extend_from_slice(&avail[..take]);
        reader.consume(take);
    }
    Ok(())
}
