//! pcapng files (draft-ietf-opsawg-pcapng): Section Header, Interface Description, Enhanced
//! Packet, Simple Packet and the obsolete Packet block; every other block is skipped.
//!
//! Every section carries its own byte order (read from the SHB's byte-order magic) and its own
//! interface list, so several sections with different byte orders and link types in one file
//! are fine. Timestamps follow each interface's `if_tsresol` (10^-n or 2^-n seconds, default
//! µs) and `if_tsoffset`.
//!
//! Blocks that fit in the reader's buffer are decoded in place, others are copied into one
//! reused buffer; skipped blocks are consumed without buffering. Nothing is allocated per
//! packet.

use super::pcap::read_full;
use super::{Format, PacketSource, ReadError, Record};
use crate::link;
use crate::link_type::LinkType;
use crate::warning::Warning;
use std::io::{self, BufRead};

/// The Section Header Block type, also the file's magic (`0a 0d 0d 0a`, byte-order neutral).
pub const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 1;
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Minimum SHB length: 8 header + 16 body + 4 trailer.
const SHB_MIN_LEN: usize = 28;
/// Blocks tcplab must buffer (SHB, IDB, packet blocks) larger than this are taken as
/// corruption; skipped blocks may be of any size.
const MAX_BUFFERED_BLOCK: usize = 16 * 1024 * 1024;

/// Timestamp resolution of one interface (`if_tsresol`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TsRes {
    /// Units of 10^-n s.
    Pow10(u8),
    /// Units of 2^-n s.
    Pow2(u8),
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    link: LinkType,
    res: TsRes,
    /// `if_tsoffset`: seconds to add to every timestamp.
    offset_s: i64,
}

impl Iface {
    fn ts_ns(&self, units: u64) -> i64 {
        let u = u128::from(units);
        let ns: u128 = match self.res {
            TsRes::Pow10(n) if n <= 9 => u * 10u128.pow(u32::from(9 - n)),
            TsRes::Pow10(n) => 10u128.checked_pow(u32::from(n - 9)).map_or(0, |d| u / d),
            TsRes::Pow2(n) if n < 64 => (u * 1_000_000_000) >> n,
            TsRes::Pow2(_) => 0,
        };
        let total =
            i128::try_from(ns).unwrap_or(i128::MAX) + i128::from(self.offset_s) * 1_000_000_000;
        i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
    }
}

/// Per-section decoding state, kept apart from the reader so that a block can be decoded
/// while it still borrows the reader's buffer.
#[derive(Debug)]
struct State {
    big_endian: bool,
    ifaces: Vec<Iface>,
    first_link: Option<LinkType>,
    /// Timestamp of the previous packet, for Simple Packet Blocks (which carry none).
    last_ts: i64,
    /// Frame decoding state (fragments) across the whole file.
    decoder: link::Decoder,
}

/// What a decoded block means for the stream.
enum Step {
    /// A packet.
    Packet(Record),
    /// Not a packet (SHB, IDB, skipped block): go on.
    Next,
    /// The block is corrupt: stop (the caller records why).
    Corrupt(String),
}

impl State {
    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at + 2)?;
        Some(if self.big_endian {
            u16::from_be_bytes([s[0], s[1]])
        } else {
            u16::from_le_bytes([s[0], s[1]])
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// Decode a complete block (header, body and trailer).
    fn block(&mut self, block: &[u8]) -> Step {
        let (Some(ty), Some(len)) = (self.u32(block, 0), self.u32(block, 4)) else {
            return Step::Corrupt("block header cut".into());
        };
        if self.u32(block, block.len().saturating_sub(4)) != Some(len) {
            return Step::Corrupt(format!(
                "trailing block length differs from the leading {len}"
            ));
        }
        let body = block.get(8..block.len() - 4).unwrap_or(&[]);
        match ty {
            SHB_TYPE => {
                // The order was already set by `section_order`; the version must be 1.x.
                match self.u16(body, 4) {
                    Some(1) => {
                        self.ifaces.clear();
                        Step::Next
                    }
                    v => Step::Corrupt(format!("section header version {v:?}, expected 1")),
                }
            }
            IDB_TYPE => {
                let Some(lt) = self.u16(body, 0) else {
                    return Step::Corrupt("interface description block too short".into());
                };
                let mut iface = Iface {
                    link: LinkType::from_u32(u32::from(lt)),
                    res: TsRes::Pow10(6),
                    offset_s: 0,
                };
                self.options(body.get(8..).unwrap_or(&[]), |code, val| {
                    match (code, val) {
                        (9, [r]) => {
                            iface.res = if r & 0x80 == 0 {
                                TsRes::Pow10(*r)
                            } else {
                                TsRes::Pow2(r & 0x7f)
                            }
                        }
                        (14, v) if v.len() == 8 => {
                            let a = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                            iface.offset_s = if self.big_endian {
                                i64::from_be_bytes(a)
                            } else {
                                i64::from_le_bytes(a)
                            };
                        }
                        _ => {}
                    }
                });
                self.first_link.get_or_insert(iface.link);
                self.ifaces.push(iface);
                Step::Next
            }
            EPB_TYPE | PB_TYPE => {
                // EPB: interface_id u32; obsolete PB: interface_id u16 + drops_count u16. Then
                // both: ts high, ts low, captured length, original length, data at 20.
                let fixed = 20usize;
                let ifid = if ty == EPB_TYPE {
                    self.u32(body, 0).map(|v| v as usize)
                } else {
                    self.u16(body, 0).map(usize::from)
                };
                let (Some(ifid), Some(hi), Some(lo), Some(caplen)) = (
                    ifid,
                    self.u32(body, 4),
                    self.u32(body, 8),
                    self.u32(body, 12),
                ) else {
                    return Step::Packet(damaged(format_args!("packet block too short")));
                };
                let Some(iface) = self.ifaces.get(ifid).copied() else {
                    return Step::Packet(damaged(format_args!(
                        "packet on undeclared interface {ifid}"
                    )));
                };
                let Some(frame) = body.get(fixed..fixed.saturating_add(caplen as usize)) else {
                    return Step::Packet(damaged(format_args!(
                        "captured length {caplen} exceeds the block"
                    )));
                };
                let ts = iface.ts_ns((u64::from(hi) << 32) | u64::from(lo));
                self.last_ts = ts;
                Step::Packet(self.decoder.decode(iface.link, ts, frame))
            }
            SPB_TYPE => {
                let Some(orig) = self.u32(body, 0) else {
                    return Step::Packet(damaged(format_args!("simple packet block too short")));
                };
                let Some(iface) = self.ifaces.first().copied() else {
                    return Step::Packet(damaged(format_args!(
                        "simple packet block before any interface"
                    )));
                };
                let data = body.get(4..).unwrap_or(&[]);
                let frame = &data[..data.len().min(orig as usize)];
                Step::Packet(self.decoder.decode(iface.link, self.last_ts, frame))
            }
            _ => Step::Next,
        }
    }

    /// Walk an options list, calling `f(code, value)` until `opt_endofopt` or the end.
    fn options(&self, mut opts: &[u8], mut f: impl FnMut(u16, &[u8])) {
        while let (Some(code), Some(len)) = (self.u16(opts, 0), self.u16(opts, 2)) {
            if code == 0 {
                break;
            }
            let len = usize::from(len);
            let Some(val) = opts.get(4..4 + len) else {
                break;
            };
            f(code, val);
            let padded = 4 + len.div_ceil(4) * 4;
            opts = opts.get(padded..).unwrap_or(&[]);
        }
    }
}

fn damaged(reason: std::fmt::Arguments<'_>) -> Record {
    Record::Damaged {
        layer: "record",
        reason: reason.to_string(),
    }
}

/// Byte order of a section from the 4 bytes after the SHB's length (the byte-order magic).
fn section_order(bom: [u8; 4]) -> Option<bool> {
    if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
        Some(true)
    } else if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
        Some(false)
    } else {
        None
    }
}

/// Whether tcplab decodes blocks of this type (the rest is skipped unbuffered).
fn is_buffered(ty: u32) -> bool {
    matches!(ty, SHB_TYPE | IDB_TYPE | PB_TYPE | SPB_TYPE | EPB_TYPE)
}

/// A streaming pcapng reader.
#[derive(Debug)]
pub struct PcapNgReader<R> {
    reader: R,
    state: State,
    buf: Vec<u8>,
    /// Byte offset of the next block.
    offset: u64,
    warnings: Vec<Warning>,
    done: bool,
}

impl<R: BufRead> PcapNgReader<R> {
    /// Read the first Section Header Block and any blocks up to the first packet (so that
    /// [`PacketSource::link_type`] knows the first interface).
    pub fn new(reader: R) -> Result<PcapNgReader<R>, ReadError> {
        let mut r = PcapNgReader {
            reader,
            state: State {
                big_endian: false,
                ifaces: Vec::new(),
                first_link: None,
                last_ts: 0,
                decoder: link::Decoder::default(),
            },
            buf: Vec::new(),
            offset: 0,
            warnings: Vec::new(),
            done: false,
        };
        r.first_section()?;
        // Pre-read IDBs and skippable blocks, never a packet block.
        loop {
            let ty = match r.peek_type() {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err(source) => {
                    return Err(ReadError::Io {
                        offset: r.offset,
                        source,
                    })
                }
            };
            if matches!(ty, PB_TYPE | SPB_TYPE | EPB_TYPE) || r.state.first_link.is_some() {
                break;
            }
            match r.one_block()? {
                Some(Step::Next) => {}
                // A packet block was excluded above; anything else ends the pre-read.
                _ => break,
            }
        }
        Ok(r)
    }

    /// Type of the next block if 4 bytes are available in the buffer.
    fn peek_type(&mut self) -> io::Result<Option<u32>> {
        let b = self.reader.fill_buf()?;
        Ok(self.state.u32(b, 0))
    }

    fn first_section(&mut self) -> Result<(), ReadError> {
        let mut hdr = [0u8; 12];
        let n = read_full(&mut self.reader, &mut hdr)
            .map_err(|source| ReadError::Io { offset: 0, source })?;
        if n == 0 {
            return Err(ReadError::Empty);
        }
        if u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) != SHB_TYPE || n < 4 {
            return Err(ReadError::UnknownFormat {
                first: hdr[..n].to_vec(),
            });
        }
        let truncated = |len| ReadError::TruncatedHeader {
            format: "pcapng",
            len,
            need: SHB_MIN_LEN,
        };
        if n < 12 {
            return Err(truncated(n));
        }
        let bad = |field, offset, reason: String| ReadError::BadHeader {
            format: "pcapng",
            field,
            offset,
            reason,
        };
        let Some(be) = section_order([hdr[8], hdr[9], hdr[10], hdr[11]]) else {
            return Err(bad("byte_order_magic", 8, format!("{:02x?}", &hdr[8..12])));
        };
        self.state.big_endian = be;
        let len = self.state.u32(&hdr, 4).unwrap_or(0) as usize;
        if len < SHB_MIN_LEN || len % 4 != 0 || len > MAX_BUFFERED_BLOCK {
            return Err(bad("block_total_length", 4, format!("{len}")));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&hdr);
        self.buf.resize(len, 0);
        let got = read_full(&mut self.reader, &mut self.buf[12..])
            .map_err(|source| ReadError::Io { offset: 12, source })?;
        if got < len - 12 {
            return Err(ReadError::TruncatedHeader {
                format: "pcapng",
                len: 12 + got,
                need: len,
            });
        }
        match self.state.block(&self.buf[..len]) {
            Step::Next | Step::Packet(_) => {}
            Step::Corrupt(reason) => return Err(bad("section_header", 0, reason)),
        }
        self.offset = len as u64;
        Ok(())
    }

    /// Stop the stream with a warning at the current block.
    fn stop(&mut self) -> Result<Option<Record>, ReadError> {
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

    /// Read exactly one block; `None` at the end of the stream (clean or not).
    fn one_block(&mut self) -> Result<Option<Step>, ReadError> {
        if self.done {
            return Ok(None);
        }
        {
            // Fast path: the whole block is in the reader's buffer.
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(Step::Next)),
                Err(e) => return Err(self.io(e)),
            };
            if avail.is_empty() {
                self.done = true;
                return Ok(None);
            }
            if avail.len() >= 12 {
                let ty = self.state.u32(avail, 0).unwrap_or(0);
                if ty == SHB_TYPE {
                    match section_order([avail[8], avail[9], avail[10], avail[11]]) {
                        Some(be) => self.state.big_endian = be,
                        None => return self.stop_step(),
                    }
                }
                let Some(len) = self.state.u32(avail, 4).and_then(|l| checked_len(ty, l)) else {
                    return self.stop_step();
                };
                if let Some(block) = avail.get(..len) {
                    let step = if is_buffered(ty) {
                        self.state.block(block)
                    } else {
                        Step::Next
                    };
                    if let Step::Corrupt(_) = step {
                        return self.stop_step();
                    }
                    self.reader.consume(len);
                    self.offset += len as u64;
                    return Ok(Some(step));
                }
            }
            // Slow path: read the header, then buffer or skip the rest.
            let mut hdr = [0u8; 12];
            let n = read_full(&mut self.reader, &mut hdr).map_err(|e| self.io(e))?;
            if n < 12 {
                // Even the smallest block is 12 bytes.
                return self.stop_step();
            }
            let ty = self.state.u32(&hdr, 0).unwrap_or(0);
            if ty == SHB_TYPE {
                match section_order([hdr[8], hdr[9], hdr[10], hdr[11]]) {
                    Some(be) => self.state.big_endian = be,
                    None => return self.stop_step(),
                }
            }
            let Some(len) = self.state.u32(&hdr, 4).and_then(|l| checked_len(ty, l)) else {
                return self.stop_step();
            };
            if !is_buffered(ty) {
                let rest = (len - 12) as u64;
                let skipped = skip(&mut self.reader, rest).map_err(|e| self.io(e))?;
                if skipped < rest {
                    return self.stop_step();
                }
                self.offset += len as u64;
                return Ok(Some(Step::Next));
            }
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
            self.buf[..12].copy_from_slice(&hdr);
            let got =
                read_full(&mut self.reader, &mut self.buf[12..len]).map_err(|e| self.io(e))?;
            if got < len - 12 {
                return self.stop_step();
            }
            let step = self.state.block(&self.buf[..len]);
            if let Step::Corrupt(_) = step {
                return self.stop_step();
            }
            self.offset += len as u64;
            Ok(Some(step))
        }
    }

    fn stop_step(&mut self) -> Result<Option<Step>, ReadError> {
        self.stop().map(|_| None)
    }
}

impl<R: BufRead> PacketSource for PcapNgReader<R> {
    fn format(&self) -> Format {
        Format::PcapNg
    }

    fn link_type(&self) -> Option<LinkType> {
        self.state.first_link
    }

    fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        loop {
            match self.one_block()? {
                Some(Step::Packet(rec)) => return Ok(Some(rec)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    fn take_warnings(&mut self) -> Vec<Warning> {
        if self.done {
            self.warnings.extend(self.state.decoder.finish());
        }
        std::mem::take(&mut self.warnings)
    }
    fn keep_only(&mut self, filter: crate::flow::FlowFilter) {
        self.state.decoder.keep_only(Some(filter));
    }
}

/// Validate a block's type and total length read from its header.
fn checked_len(ty: u32, len: u32) -> Option<usize> {
    let len = len as usize;
    let ok = len >= 12
        && len % 4 == 0
        && (!is_buffered(ty) || len <= MAX_BUFFERED_BLOCK)
        && (ty != SHB_TYPE || len >= SHB_MIN_LEN);
    ok.then_some(len)
}

/// Consume up to `n` bytes; returns how many were there.
fn skip<R: BufRead>(r: &mut R, n: u64) -> io::Result<u64> {
    let mut left = n;
    while left > 0 {
        let avail = match r.fill_buf() {
            Ok(b) => b.len(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail == 0 {
            break;
        }
        let k = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
        r.consume(k);
        left -= k as u64;
    }
    Ok(n - left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol() {
        let i = |res| Iface {
            link: LinkType::Raw,
            res,
            offset_s: 0,
        };
        assert_eq!(i(TsRes::Pow10(6)).ts_ns(1_500_000), 1_500_000_000);
        assert_eq!(i(TsRes::Pow10(9)).ts_ns(7), 7);
        assert_eq!(i(TsRes::Pow10(12)).ts_ns(7_000), 7);
        assert_eq!(i(TsRes::Pow2(10)).ts_ns(1024 + 512), 1_500_000_000);
        assert_eq!(i(TsRes::Pow10(200)).ts_ns(u64::MAX), 0);
        assert_eq!(i(TsRes::Pow2(127)).ts_ns(u64::MAX), 0);
        assert_eq!(i(TsRes::Pow10(0)).ts_ns(u64::MAX), i64::MAX);
        let off = Iface {
            offset_s: 10,
            ..i(TsRes::Pow10(9))
        };
        assert_eq!(off.ts_ns(1), 10_000_000_001);
    }
}
