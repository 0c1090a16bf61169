//! Classic libpcap files: µs (`a1b2c3d4`) and ns (`a1b23c4d`) magic in either byte order, and
//! the Kuznetzov "modified" variant (`a1b2cd34`, 8 extra bytes per record).
//!
//! Layout: a 24-byte file header (magic, version 2.4, thiszone, sigfigs, snaplen, network),
//! then records of a 16-byte header (ts_sec, ts_frac, incl_len, orig_len) and `incl_len`
//! captured bytes. See draft-ietf-opsawg-pcap.
//!
//! Records are decoded straight out of the `BufRead`'s buffer when they fit there, and
//! otherwise copied into one reused buffer: nothing is allocated per packet.

use super::{Format, PacketSource, ReadError, Record};
use crate::link;
use crate::link_type::LinkType;
use crate::warning::Warning;
use std::io::{self, BufRead};

/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Records claiming more captured bytes than this are taken as corruption (no link layer
/// tcplab reads has frames this large; libpcap's own limit is 256 KiB).
pub const MAX_CAPLEN: usize = 256 * 1024;

/// Byte order and timestamp unit of a pcap file, from its magic number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Magic {
    /// Fields are big-endian.
    pub big_endian: bool,
    /// Timestamps' fraction is in nanoseconds (else microseconds).
    pub nanos: bool,
    /// Kuznetzov's modified pcap: 24-byte record headers.
    pub modified: bool,
}

impl Magic {
    /// Recognise the first four bytes of a pcap file.
    pub fn from_bytes(b: [u8; 4]) -> Option<Magic> {
        let (value, big_endian) = match (u32::from_be_bytes(b), u32::from_le_bytes(b)) {
            (v @ (0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34), _) => (v, true),
            (_, v @ (0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34)) => (v, false),
            _ => return None,
        };
        Some(Magic {
            big_endian,
            nanos: value == 0xa1b2_3c4d,
            modified: value == 0xa1b2_cd34,
        })
    }

    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn record_header_len(self) -> usize {
        if self.modified {
            24
        } else {
            16
        }
    }
}

/// A streaming reader of classic pcap records.
#[derive(Debug)]
pub struct PcapReader<R> {
    reader: R,
    magic: Magic,
    link: LinkType,
    /// Reused for records that straddle the reader's buffer.
    buf: Vec<u8>,
    /// Byte offset of the next record.
    offset: u64,
    warnings: Vec<Warning>,
    done: bool,
    decoder: link::Decoder,
}

impl<R: BufRead> PcapReader<R> {
    /// Read the file header and prepare to stream records.
    pub fn new(mut reader: R) -> Result<PcapReader<R>, ReadError> {
        let mut hdr = [0u8; FILE_HEADER_LEN];
        let n = read_full(&mut reader, &mut hdr)
            .map_err(|source| ReadError::Io { offset: 0, source })?;
        if n == 0 {
            return Err(ReadError::Empty);
        }
        let magic = hdr
            .get(..4)
            .filter(|_| n >= 4)
            .and_then(|m| Magic::from_bytes([m[0], m[1], m[2], m[3]]))
            .ok_or_else(|| ReadError::UnknownFormat {
                first: hdr[..n.min(16)].to_vec(),
            })?;
        if n < FILE_HEADER_LEN {
            return Err(ReadError::TruncatedHeader {
                format: "pcap",
                len: n,
                need: FILE_HEADER_LEN,
            });
        }
        let major = magic.u16(&hdr, 4);
        if major != 2 {
            return Err(ReadError::BadHeader {
                format: "pcap",
                field: "version_major",
                offset: 4,
                reason: format!("{major}, expected 2"),
            });
        }
        // The upper bits of `network` carry FCS information (pcap spec §4); the link type is
        // the low 16 bits.
        let link = LinkType::from_u32(magic.u32(&hdr, 20) & 0xffff);
        Ok(PcapReader {
            reader,
            magic,
            link,
            buf: Vec::new(),
            offset: FILE_HEADER_LEN as u64,
            warnings: Vec::new(),
            done: false,
            decoder: link::Decoder::default(),
        })
    }

    /// The byte order and timestamp unit from the magic number.
    pub fn magic(&self) -> Magic {
        self.magic
    }

    fn truncated(&mut self) -> Result<Option<Record>, ReadError> {
        self.warnings.push(Warning::TruncatedCapture {
            offset: self.offset,
        });
        self.done = true;
        Ok(None)
    }

    fn io(&self, source: io::Error) -> ReadError {
        ReadError::Io {
            offset: self.offset,
            source,
        }
    }
}

impl<R: BufRead> PacketSource for PcapReader<R> {
    fn format(&self) -> Format {
        Format::Pcap
    }

    fn link_type(&self) -> Option<LinkType> {
        Some(self.link)
    }

    fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let hlen = self.magic.record_header_len();
        // Fast path: the whole record is already in the reader's buffer.
        let avail = loop {
            match self.reader.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ReadError::Io {
                        offset: self.offset,
                        source: e,
                    })
                }
            }
        };
        if avail.is_empty() {
            self.done = true;
            return Ok(None);
        }
        if avail.len() >= hlen {
            let (ts, caplen) = record_header(self.magic, &avail[..hlen]);
            if caplen > MAX_CAPLEN {
                return self.truncated();
            }
            if let Some(frame) = avail.get(hlen..hlen + caplen) {
                let rec = self.decoder.decode(self.link, ts, frame);
                self.reader.consume(hlen + caplen);
                self.offset += (hlen + caplen) as u64;
                return Ok(Some(rec));
            }
        }
        // Slow path: copy the record into the reused buffer.
        let mut hdr = [0u8; 24];
        let n = read_full(&mut self.reader, &mut hdr[..hlen]).map_err(|e| self.io(e))?;
        if n < hlen {
            return self.truncated();
        }
        let (ts, caplen) = record_header(self.magic, &hdr[..hlen]);
        if caplen > MAX_CAPLEN {
            return self.truncated();
        }
        if self.buf.len() < caplen {
            self.buf.resize(caplen, 0);
        }
        let n = read_full(&mut self.reader, &mut self.buf[..caplen]).map_err(|e| self.io(e))?;
        if n < caplen {
            return self.truncated();
        }
        self.offset += (hlen + caplen) as u64;
        Ok(Some(self.decoder.decode(
            self.link,
            ts,
            &self.buf[..caplen],
        )))
    }

    fn take_warnings(&mut self) -> Vec<Warning> {
        if self.done {
            self.warnings.extend(self.decoder.finish());
        }
        std::mem::take(&mut self.warnings)
    }
    fn keep_only(&mut self, filter: crate::flow::FlowFilter) {
        self.decoder.keep_only(Some(filter));
    }
}

/// Timestamp (ns since the epoch) and captured length of a record header.
fn record_header(magic: Magic, h: &[u8]) -> (i64, usize) {
    // Every record passes here: three words read from one fixed-size array, so no bounds
    // check or byte-by-byte assembly per field (callers always pass at least 16 bytes).
    let w: [u8; 12] = match h.first_chunk::<12>() {
        Some(w) => *w,
        None => {
            let mut w = [0u8; 12];
            w.iter_mut().zip(h).for_each(|(d, s)| *d = *s);
            w
        }
    };
    let word = |i: usize| {
        let b = [w[i], w[i + 1], w[i + 2], w[i + 3]];
        if magic.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let sec = i64::from(word(0));
    let frac = i64::from(word(4));
    let frac_ns = if magic.nanos { frac } else { frac * 1000 };
    (sec * 1_000_000_000 + frac_ns, word(8) as usize)
}

/// Read until `buf` is full or the input ends; returns the number of bytes read.
pub(super) fn read_full<R: BufRead + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(be: bool, magic: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut f = Vec::new();
        f.extend(w32(magic));
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend(w32(0));
        f.extend(w32(0));
        f.extend(w32(65535));
        f.extend(w32(228));
        for (s, frac, data) in records {
            f.extend(w32(*s));
            f.extend(w32(*frac));
            f.extend(w32(data.len() as u32));
            f.extend(w32(data.len() as u32));
            f.extend_from_slice(data);
        }
        f
    }

    fn syn() -> Vec<u8> {
        let mut v = Vec::new();
        etherparse::PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .write(&mut v, &[])
            .expect("write");
        v
    }

    #[test]
    fn magic_variants() {
        for (m, nanos) in [(0xa1b2_c3d4u32, false), (0xa1b2_3c4d, true)] {
            let be = Magic::from_bytes(m.to_be_bytes()).unwrap();
            let le = Magic::from_bytes(m.to_le_bytes()).unwrap();
            assert!(be.big_endian && !le.big_endian);
            assert_eq!((be.nanos, le.nanos), (nanos, nanos));
        }
        assert!(Magic::from_bytes(*b"\x0a\x0d\x0d\x0a").is_none());
    }

    #[test]
    fn timestamps_and_nonip_records() {
        for (be, magic, frac, want) in [
            (false, 0xa1b2_c3d4u32, 5u32, 5_000i64),
            (true, 0xa1b2_c3d4, 5, 5_000),
            (false, 0xa1b2_3c4d, 5, 5),
            (true, 0xa1b2_3c4d, 5, 5),
        ] {
            let bytes = file(be, magic, &[(10, frac, &syn()), (11, 0, &[0x45])]);
            let mut r = PcapReader::new(&bytes[..]).unwrap();
            assert_eq!(r.link_type(), Some(LinkType::Ipv4));
            match r.next_record().unwrap() {
                Some(Record::Tcp(s)) => assert_eq!(s.ts_ns, 10_000_000_000 + want),
                other => panic!("{other:?}"),
            }
            // One byte of IPv4 is damage, not an error.
            assert!(matches!(
                r.next_record().unwrap(),
                Some(Record::Damaged { layer: "ipv4", .. })
            ));
            assert!(r.next_record().unwrap().is_none());
        }
    }

    fn ipv4_zeros() -> [u8; 30] {
        let mut f = [0u8; 30];
        f[0] = 0x45;
        f
    }

    #[test]
    fn cut_record_is_a_warning() {
        let bytes = file(
            false,
            0xa1b2_c3d4,
            // An IPv4 header of zeros (`[0x45; 30]` would be a fragment, held for reassembly).
            &[(1, 0, &ipv4_zeros()), (2, 0, &ipv4_zeros())],
        );
        let cut = &bytes[..bytes.len() - 3];
        let mut r = PcapReader::new(cut).unwrap();
        assert!(r.next_record().unwrap().is_some());
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(
            r.take_warnings(),
            vec![Warning::TruncatedCapture { offset: 24 + 46 }]
        );
    }

    #[test]
    fn header_errors() {
        let bytes = file(false, 0xa1b2_c3d4, &[]);
        assert!(matches!(
            PcapReader::new(&bytes[..10]),
            Err(ReadError::TruncatedHeader {
                len: 10,
                need: 24,
                ..
            })
        ));
        let mut bad = bytes.clone();
        bad[4] = 3;
        assert!(matches!(
            PcapReader::new(&bad[..]),
            Err(ReadError::BadHeader {
                field: "version_major",
                ..
            })
        ));
    }
}
