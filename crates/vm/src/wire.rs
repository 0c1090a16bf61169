//! What the guest sends back on its second serial port: a stream of records, so the host
//! can rebuild the guest's results tree and read its JSON lines. The port is a raw tty
//! written to a file by QEMU; the framing makes a truncated stream (a guest that died or was
//! killed mid-transfer) detectable.
//!
//! An emulated UART moves one byte per trap into QEMU (under TCG, one `writev` per byte on the
//! host), so the records after the magic are DEFLATE-compressed: a results tree of pcaps and
//! JSON shrinks about 6×, and so does the time to move it. The receiver also reads the older
//! uncompressed stream (`MAGIC`).
//!
//! ```text
//! MAGIC_DEFLATE, then DEFLATE( record* )      (or MAGIC, then record* uncompressed)
//! record*: tag (1 byte) | name length (u32 LE) | name | data length (u64 LE) | data
//!   'J' name ""          one JSON object of `tcplab run --json` (or a skipped scenario)
//!   'F' name = rel path  one file of the guest's results tree
//!   'G' name ""          the guest report (JSON): uname -r, boot time, modules, exit code
//!   'E' name ""          end; data = the number of records before it (u64 LE)
//! ```

use std::io::{self, Read, Write};

/// First bytes of an uncompressed stream.
pub const MAGIC: &[u8; 16] = b"TCPLAB-RESULTS1\n";
/// First bytes of a stream whose records are DEFLATE-compressed (what [`Sender`] writes).
pub const MAGIC_DEFLATE: &[u8; 16] = b"TCPLAB-RESULTS2\n";

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A JSON line of the guest's `tcplab run --json` (or a skipped scenario).
    Json(String),
    /// A file of the results tree, path relative to its root.
    File(String, Vec<u8>),
    /// The guest report (JSON).
    Guest(String),
}

/// Writes records, compressed; [`Sender::finish`] writes the end record.
pub struct Sender<W: Write> {
    out: flate2::write::DeflateEncoder<W>,
    records: u64,
}

impl<W: Write> std::fmt::Debug for Sender<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Sender<W> {
    /// Start a stream on `out` (writes the magic).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC_DEFLATE)?;
        // The fastest level: the port, not the guest's CPU, is the bottleneck, and level 1
        // already takes most of the redundancy out of pcaps and JSON.
        let out = flate2::write::DeflateEncoder::new(out, flate2::Compression::fast());
        Ok(Sender { out, records: 0 })
    }

    /// Send one record.
    pub fn send(&mut self, r: &Record) -> io::Result<()> {
        let (tag, name, data): (u8, &str, &[u8]) = match r {
            Record::Json(j) => (b'J', "", j.as_bytes()),
            Record::File(n, d) => (b'F', n, d),
            Record::Guest(j) => (b'G', "", j.as_bytes()),
        };
        self.frame(tag, name, data)?;
        self.records += 1;
        if !matches!(r, Record::File(..)) {
            // A JSON line is a scenario's verdict: push it out now (a sync flush), so that a
            // guest killed later still leaves it readable. Files go in bulk.
            self.out.flush()?;
        }
        Ok(())
    }

    fn frame(&mut self, tag: u8, name: &str, data: &[u8]) -> io::Result<()> {
        let name_len = u32::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        self.out.write_all(&[tag])?;
        self.out.write_all(&name_len.to_le_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&(data.len() as u64).to_le_bytes())?;
        self.out.write_all(data)
    }

    /// Write the end record, end the compressed stream and flush; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let n = self.records.to_le_bytes();
        self.frame(b'E', "", &n)?;
        let mut out = self.out.finish()?;
        out.flush()?;
        Ok(out)
    }
}

/// What a received stream held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// Records in stream order.
    pub records: Vec<Record>,
    /// The end record was there and its count matched: nothing is missing.
    pub complete: bool,
}

/// Read a stream. A stream cut short returns what was complete with `complete: false`;
/// bytes that are not a stream at all are an error.
pub fn receive(mut input: impl Read) -> io::Result<Received> {
    let mut magic = [0u8; 16];
    if input.read_exact(&mut magic).is_err() {
        return Err(not_a_stream());
    }
    if &magic == MAGIC_DEFLATE {
        records(flate2::read::DeflateDecoder::new(input))
    } else if &magic == MAGIC {
        records(input)
    } else {
        Err(not_a_stream())
    }
}

fn not_a_stream() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "no result stream (the guest sent nothing, or something else)",
    )
}

fn records(mut input: impl Read) -> io::Result<Received> {
    let mut got = Received::default();
    loop {
        let mut tag = [0u8; 1];
        if input.read_exact(&mut tag).is_err() {
            return Ok(got);
        }
        let Some(name) = read_block(&mut input, 4)? else {
            return Ok(got);
        };
        let Some(data) = read_block(&mut input, 8)? else {
            return Ok(got);
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let text = || String::from_utf8_lossy(&data).into_owned();
        match tag[0] {
            b'J' => got.records.push(Record::Json(text())),
            b'G' => got.records.push(Record::Guest(text())),
            b'F' => got.records.push(Record::File(name, data)),
            b'E' => {
                let n = data
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes);
                got.complete = n == Some(got.records.len() as u64);
                return Ok(got);
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown record tag {other:#04x} in the result stream"),
                ))
            }
        }
    }
}

/// A length-prefixed block (`len_bytes` = 4 or 8); `None` when the stream ends inside it.
fn read_block(input: &mut impl Read, len_bytes: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    if input.read_exact(&mut len[..len_bytes]).is_err() {
        return Ok(None);
    }
    let len = u64::from_le_bytes(len);
    // A guest cannot send more than its RAM; refuse absurd lengths instead of allocating.
    if len > (4 << 30) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record of {len} bytes in the result stream"),
        ));
    }
    let mut data = Vec::new();
    // A read error here is the stream ending inside the block: a compressed stream cut short
    // fails in the decoder rather than ending cleanly. Either way the record is incomplete.
    if input.take(len).read_to_end(&mut data).is_err() {
        return Ok(None);
    }
    Ok((data.len() as u64 == len).then_some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(records: &[Record]) -> Vec<u8> {
        let mut s = Sender::new(Vec::new()).unwrap();
        for r in records {
            s.send(r).unwrap();
        }
        s.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let records = vec![
            Record::Json("{\"scenario\":\"a\"}".into()),
            Record::File("a/1/capture.pcap".into(), vec![0, 1, 2, 255, b'\n', b'\r']),
            Record::Guest("{}".into()),
        ];
        let got = receive(&stream(&records)[..]).unwrap();
        assert!(got.complete);
        assert_eq!(got.records, records);
    }

    #[test]
    fn a_cut_stream_is_incomplete_not_an_error() {
        let records = vec![
            Record::Json("{}".into()),
            Record::File("x".into(), vec![7; 100]),
        ];
        let full = stream(&records);
        for cut in MAGIC.len()..full.len() {
            let got = receive(&full[..cut]).unwrap();
            // Only the compressed stream's own end marker may be missing from a stream that
            // still reads complete: every record and the end record came through.
            if got.complete {
                assert!(full.len() - cut <= 8, "cut at {cut} of {}", full.len());
                assert_eq!(got.records, records, "cut at {cut}");
            }
            assert!(got.records.len() <= 2);
        }
        assert!(receive(&b"garbage"[..]).is_err());
        assert!(receive(&b""[..]).is_err());
    }

    #[test]
    fn the_stream_is_compressed_and_the_old_uncompressed_one_still_reads() {
        // A results tree is mostly pcaps of near-identical tiny exchanges and JSON.
        let pcap: Vec<u8> = (0..40_000u32).map(|i| (i % 64) as u8).collect();
        let records = vec![
            Record::Json("{\"scenario\":\"a\",\"passed\":true}".into()),
            Record::File("a/run-0001/capture.pcap".into(), pcap.clone()),
        ];
        let sent = stream(&records);
        assert_eq!(&sent[..16], MAGIC_DEFLATE);
        assert!(sent.len() < pcap.len() / 4, "{} bytes sent", sent.len());
        let got = receive(&sent[..]).unwrap();
        assert!(got.complete);
        assert_eq!(got.records, records);

        // The framing of before, uncompressed after MAGIC (a guest of an older tcplab).
        let mut old = MAGIC.to_vec();
        let mut frame = |tag: u8, name: &[u8], data: &[u8]| {
            old.push(tag);
            old.extend((name.len() as u32).to_le_bytes());
            old.extend(name);
            old.extend((data.len() as u64).to_le_bytes());
            old.extend(data);
        };
        frame(b'J', b"", b"{}");
        frame(b'E', b"", &1u64.to_le_bytes());
        let got = receive(&old[..]).unwrap();
        assert!(got.complete);
        assert_eq!(got.records, vec![Record::Json("{}".into())]);
    }

    #[test]
    fn a_json_line_is_readable_before_the_stream_ends() {
        // A guest killed after a scenario's verdict still leaves that verdict readable.
        let mut s = Sender::new(Vec::new()).unwrap();
        s.send(&Record::Json("{\"scenario\":\"a\"}".into()))
            .unwrap();
        let partial = s.out.get_ref().clone();
        let got = receive(&partial[..]).unwrap();
        assert!(!got.complete);
        assert_eq!(
            got.records,
            vec![Record::Json("{\"scenario\":\"a\"}".into())]
        );
    }
}
