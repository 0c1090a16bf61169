//! `tcpdump -nn` text: one packet per line.
//!
//! A packet line is `[N ][YYYY-MM-DD ]TIME [IFACE DIR ]PROTO ...`: an optional packet number,
//! an optional `-tttt` date, the time (`HH:MM:SS.frac`, also `-ttt`/`-ttttt` deltas, or
//! `-tt` epoch seconds), the optional `-i any` columns (`lo In`, `eth0 Out`, `M`, `P`, `B`),
//! then `IP`/`IP6` and `SRC.PORT > DST.PORT: Flags [..], seq .., ack .., win .., length N`.
//! `-v` output is understood where the addresses move to an indented continuation line; other
//! indented lines (hex dumps, `-vv` details) are skipped, as are lines that do not start with
//! a time (tcpdump's own messages).
//!
//! Text has no link layer and no IP id or checksum: `Segment::fingerprint` is 0, except with
//! `-i any` columns, where it hashes the text after the direction (see `TextSeg::fingerprint`). A pure ACK
//! prints no `seq`; its sequence number is the sender's next sequence number as seen so far
//! (else the peer's last ACK, else 0).
//!
//! **Relative sequence numbers.** Without `-S`, tcpdump (print-tcp.c, `tcp_seq_hash`) keeps
//! one entry per connection. An ACK-bearing segment with no entry yet, or with SYN, (re)creates
//! it — this direction's base = its seq, the other's = its ack - 1 — and prints absolute
//! numbers; later ACK-bearing segments print `seq - base(this)` and `ack - base(other)`;
//! segments without ACK always print absolute numbers. The reader replays that table to undo
//! it. Whether a file is relative is decided once, from up to [`LOOKAHEAD_LINES`] lines read
//! ahead: at every point where tcpdump would print relative numbers, a small printed value far
//! from the base votes "relative", a value close to the base votes "absolute".

use super::{Format, PacketSource, ReadError, Record};
use crate::encap::{EncapLayer, EncapPath};
use crate::link_type::LinkType;
use crate::segment::{Flags, IpFacts, Segment};
use crate::seq::SeqNum;
use crate::warning::Warning;
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};

/// Lines read ahead to decide relative vs absolute numbers and the time-stamp mode.
pub const LOOKAHEAD_LINES: usize = 4096;
/// Decisive votes after which the look-ahead stops early.
const ENOUGH_VOTES: u32 = 16;
/// "Small" for relative sequence numbers: 256 MiB into a connection.
const SMALL: u32 = 1 << 28;
const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// A time stamp as printed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stamp {
    /// `HH:MM:SS.frac`: ns since midnight (or a delta, for `-ttt`/`-ttttt`).
    TimeOfDay(i64),
    /// `-tttt`: days since 1970-01-01 and ns since midnight.
    Dated(i64, i64),
    /// `-tt`: ns since the epoch.
    Epoch(i64),
}

/// A TCP line's fields, as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TextSeg {
    stamp: Stamp,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    /// `seq A` or `seq A:B`.
    seq: Option<(u32, Option<u32>)>,
    ack: Option<u32>,
    win: u16,
    len: Option<u32>,
    /// With `-i any`, loopback packets are printed twice (`lo Out`, then `lo In`) with
    /// identical text after the direction column: a hash of that text lets the connection
    /// table drop the second copy. 0 when the line had no direction column.
    fingerprint: u64,
    /// `-v`'s TTL and id (default without `-v`).
    ip: IpFacts,
}

/// One line, classified.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Blank, tcpdump's messages, or an indented line nobody waits for.
    Skip,
    /// Indented text (a `-v` continuation candidate).
    Continuation,
    /// An `IP (...)` header line of `-v` output whose addresses follow on the next line, with
    /// the TTL and id it printed.
    Pending(Stamp, IpFacts),
    /// A packet that is not TCP.
    NonTcp(Stamp),
    /// A TCP segment.
    Tcp(TextSeg),
    /// A UDP tunnel header (`VXLAN, flags [I] (0x08), vni 42`): tcpdump prints the inner
    /// packet on the next line, without a time stamp.
    Tunnel(Stamp, EncapLayer),
    /// Looks like a packet line but does not parse.
    Damaged(String),
}

/// Whether `line` reads like a `tcpdump` packet line (used to sniff the format).
pub fn is_packet_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    match prefix(line.trim_end()) {
        Some((_, rest, _)) => {
            let proto = rest.split_ascii_whitespace().next().unwrap_or("");
            matches!(proto, "IP" | "IP6" | "ARP," | "ARP") || inner_ip(rest).is_some()
        }
        None => false,
    }
}

/// Link-layer words tcpdump prints before an IP header it decapsulated itself.
const LINK_PREFIXES: [&str; 8] = [
    "PPPoE",
    "MPLS",
    "vlan",
    "PBB",
    "802.1ah",
    "ethertype",
    "E-Tag",
    "VN-Tag",
];

/// For a line whose protocol column is a link-layer encapsulation (`PPPoE  [ses 0x1] IP
/// ...`), the part from the `IP`/`IP6` that follows; None for anything else.
fn inner_ip(rest: &str) -> Option<&str> {
    let first = rest.split_ascii_whitespace().next()?;
    let first = first.trim_end_matches(',');
    if !LINK_PREFIXES.contains(&first) {
        return None;
    }
    ip_token(rest)
}

/// The part of `s` from the first whitespace-delimited `IP` or `IP6` token.
fn ip_token(s: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(i) = s[from..].find("IP") {
        let at = from + i;
        let before_ok = at == 0 || s[..at].ends_with(char::is_whitespace);
        let after = &s[at..];
        let word = after.split_ascii_whitespace().next().unwrap_or("");
        if before_ok && matches!(word, "IP" | "IP6") {
            return Some(after);
        }
        from = at + 2;
    }
    None
}

/// IPv6 extension headers as tcpdump names them between the addresses and the upper layer
/// (`DSTOPT`, `HBH`, `frag (0|20)`, `srcrt (...)`, `AH(...):`), each with its optional
/// parenthesised details. Returns what follows them, or None when `what` starts with none.
fn skip_ipv6_extensions(mut what: &str) -> Option<&str> {
    let mut skipped = false;
    loop {
        let w = what.trim_start();
        let name_len = ["HBH", "DSTOPT", "frag", "srcrt", "AH", "mobility"]
            .iter()
            .find(|n| {
                w.starts_with(**n)
                    && w[n.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == ' ' || c == '(')
            })
            .map(|n| n.len());
        let Some(n) = name_len else {
            return skipped.then_some(w);
        };
        let mut r = w[n..].trim_start();
        if r.starts_with('(') {
            let close = close_paren(r)?;
            r = &r[close + 1..];
        }
        what = r.strip_prefix(':').unwrap_or(r);
        skipped = true;
    }
}

/// Split off `[N ][DATE ]TIME[ IFACE DIR]`; returns the stamp and the rest (from the protocol).
fn prefix(line: &str) -> Option<(Stamp, &str, bool)> {
    // `-ttt` indents its deltas by one space; other indented lines (hex dumps, `-v`
    // continuations) fail the time-stamp test below.
    let (mut tok, mut rest) = token(line);
    // Packet number (`tcpdump -#`, or numbered listings).
    if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
        (tok, rest) = token(rest);
    }
    let stamp = if let Some(days) = parse_date(tok) {
        let (t, r) = token(rest);
        rest = r;
        Stamp::Dated(days, parse_tod(t)?)
    } else if let Some(tod) = parse_tod(tok) {
        Stamp::TimeOfDay(tod)
    } else {
        Stamp::Epoch(parse_epoch(tok)?)
    };
    // `-i any`: interface name and direction before the protocol.
    let (t1, r1) = token(rest);
    let (t2, r2) = token(r1);
    let any_dir = !matches!(t1, "IP" | "IP6") && matches!(t2, "In" | "Out" | "M" | "P" | "B");
    if any_dir {
        rest = r2;
    }
    Some((stamp, rest, any_dir))
}

/// The time token of a line whose stamp has the shape `H:M:S[.frac]` (after an optional
/// packet number and date) but does not parse as one: minutes or seconds past 59, too many
/// digits.
fn bad_time(line: &str) -> Option<&str> {
    let (mut tok, mut rest) = token(line);
    if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
        (tok, rest) = token(rest);
    }
    if parse_date(tok).is_some() {
        (tok, _) = token(rest);
    }
    let mut parts = tok.splitn(3, ':');
    let shaped = parts
        .by_ref()
        .take(2)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .count()
        == 2
        && parts.next().is_some_and(|s| {
            let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
            !whole.is_empty()
                && !frac.is_empty()
                && whole
                    .bytes()
                    .chain(frac.bytes())
                    .all(|b| b.is_ascii_digit())
        });
    (shaped && parse_tod(tok).is_none()).then_some(tok)
}

/// First whitespace-separated token and the rest (leading whitespace removed).
fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// `HH:MM:SS[.frac]` → ns (frac of 1..=9 digits).
fn parse_tod(t: &str) -> Option<i64> {
    let mut parts = t.splitn(3, ':');
    let h: i64 = digits(parts.next()?)?;
    let m: i64 = digits(parts.next()?)?;
    let (s, frac) = split_frac(parts.next()?)?;
    if m >= 60 || s >= 61 {
        return None;
    }
    // Hours are not limited to 24 (`-ttttt` counts up from the first packet), so an absurd
    // hour must fail here instead of overflowing.
    h.checked_mul(60)?
        .checked_add(m)?
        .checked_mul(60)?
        .checked_add(s)?
        .checked_mul(NS_PER_SEC)?
        .checked_add(frac)
}

/// `SECONDS.frac` (`-tt`) → ns since the epoch.
fn parse_epoch(t: &str) -> Option<i64> {
    let (s, frac) = split_frac(t)?;
    // Require a dot: a bare number is a packet count or something else.
    t.contains('.').then_some(())?;
    s.checked_mul(NS_PER_SEC)?.checked_add(frac)
}

/// `S[.frac]` → (seconds, fraction in ns).
fn split_frac(t: &str) -> Option<(i64, i64)> {
    let (s, f) = t.split_once('.').unwrap_or((t, ""));
    let s = digits(s)?;
    if f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut frac: i64 = 0;
    for b in f.bytes().chain(std::iter::repeat(b'0')).take(9) {
        frac = frac * 10 + i64::from(b - b'0');
    }
    Some((s, frac))
}

/// A non-empty run of at most 18 ASCII digits.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` → days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil).
fn parse_date(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&t[..4])?;
    let m = digits(&t[5..7])?;
    let d = digits(&t[8..])?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Classify one line (without its newline).
fn parse_line(line: &str) -> Line {
    let line = line.trim_end();
    if line.is_empty() {
        return Line::Skip;
    }
    let Some((stamp, rest, any_dir)) = prefix(line) else {
        // A time stamp's shape with impossible values (`99:99:99`) is a damaged packet line,
        // not one of tcpdump's messages to skip in silence.
        if let Some(t) = bad_time(line) {
            return Line::Damaged(format!("time {:?} is out of range", clip(t)));
        }
        return if line.starts_with(char::is_whitespace) {
            Line::Continuation
        } else {
            Line::Skip
        };
    };
    let rest = match token(rest) {
        ("IP" | "IP6", r) => r,
        // `PPPoE  [ses 0x1] IP ...`, `MPLS (label 16, ...) IP ...` and other link-layer
        // prefixes (802.1ah, E-Tag, ...): the packet is the IP header that follows.
        _ => match inner_ip(rest) {
            Some(r) => token(r).1,
            None => return Line::NonTcp(stamp),
        },
    };
    // `-v`: `IP (tos 0x0, ttl 64, ...)` before the addresses (IPv4: on the next line).
    let mut facts = IpFacts::default();
    let rest = if rest.starts_with('(') {
        match close_paren(rest) {
            Some(i) => {
                facts = ip_facts(&rest[1..i]);
                rest[i + 1..].trim_start()
            }
            None => return Line::Damaged("unbalanced parenthesis after IP".into()),
        }
    } else {
        rest
    };
    if rest.is_empty() {
        return Line::Pending(stamp, facts);
    }
    match parse_addresses(stamp, rest) {
        Line::Tcp(mut seg) => {
            if any_dir {
                seg.fingerprint = crate::hash::fnv1a(rest.as_bytes()).max(1);
            }
            seg.ip = facts;
            Line::Tcp(seg)
        }
        other => other,
    }
}

/// The TTL (`ttl 64`, IPv6 `hlim 64`) and IPv4 id (`id 4242`) in `-v`'s IP header text.
fn ip_facts(header: &str) -> IpFacts {
    let mut facts = IpFacts::default();
    for field in header.split(',') {
        match field.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ttl" | "hlim", v, ..] => facts.ttl = v.parse().unwrap_or(0),
            ["id", v, ..] => facts.id = v.parse().ok(),
            _ => {}
        }
    }
    facts
}

/// Index of the `)` closing the `(` at 0.
fn close_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `SPORT > DPORT: rest` after IPv6 extension headers, as `SRC.SPORT > DST.DPORT: rest`.
fn ports_only(src: &str, dst: &str, inner: &str) -> Option<String> {
    let (sp, after) = inner.split_once(" > ")?;
    let (dp, tail) = after
        .split_once(": ")
        .or_else(|| after.strip_suffix(':').map(|d| (d, "")))?;
    let (sp, dp) = (
        sp.trim().parse::<u16>().ok()?,
        dp.trim().parse::<u16>().ok()?,
    );
    Some(format!("{src}.{sp} > {dst}.{dp}: {tail}"))
}

/// `SRC > DST: what` after `IP`/`IP6`.
fn parse_addresses(stamp: Stamp, rest: &str) -> Line {
    let Some((src, after)) = rest.split_once(" > ") else {
        // `IP truncated-ip - 10 bytes missing!` and friends.
        return Line::Damaged(format!("no `src > dst` in {:?}", clip(rest)));
    };
    // `: ` ends the destination (a bare `:` could be inside an IPv6 address).
    let Some((dst, what)) = after
        .split_once(": ")
        .or_else(|| after.strip_suffix(':').map(|d| (d, "")))
    else {
        return Line::Damaged(format!("no `:` after the destination in {:?}", clip(after)));
    };
    let what = what.trim_start();
    let (Some(src), Some(dst)) = (endpoint(src), endpoint(dst)) else {
        // ICMP and fragments print addresses without ports.
        if src.parse::<IpAddr>().is_ok() && dst.parse::<IpAddr>().is_ok() {
            // IPv6 extension headers: the TCP part follows them with its own addresses.
            if let Some(inner) = skip_ipv6_extensions(what).filter(|r| r.contains(" > ")) {
                // tcpdump 4.99 prints only the ports there (`DSTOPT 36951 > 80: Flags`):
                // the addresses are the IPv6 header's, before the extension headers.
                if let Some(line) = ports_only(src, dst, inner) {
                    return parse_addresses(stamp, &line);
                }
                return parse_addresses(stamp, inner);
            }
            // A tunnel (`GREv0, length 60: IP ...`, IP-in-IP): the inner packet.
            if let Some(inner) = ip_token(what) {
                let (_, r) = token(inner);
                return parse_addresses(stamp, r);
            }
            return Line::NonTcp(stamp);
        }
        return Line::Damaged(format!("bad address in {:?}", clip(rest)));
    };
    match what.strip_prefix("Flags [") {
        Some(f) => parse_tcp(stamp, src, dst, f),
        None if what.contains("[|tcp]") => Line::Damaged("truncated TCP header ([|tcp])".into()),
        None => match udp_tunnel(what) {
            Some(layer) => Line::Tunnel(stamp, layer),
            None => Line::NonTcp(stamp),
        },
    }
}

/// `[no cksum] VXLAN, flags [I] (0x08), vni 42` or `Geneve, Flags [none], vni 0x2a, ...`:
/// the tunnel layer whose inner packet tcpdump prints on the next line.
fn udp_tunnel(what: &str) -> Option<EncapLayer> {
    let mut w = what.trim_start();
    // `[udp sum ok]`, `[no cksum]` and the like before the payload.
    while w.starts_with('[') {
        w = w[w.find(']')? + 1..].trim_start();
    }
    let vxlan = w.starts_with("VXLAN,");
    if !vxlan && !w.starts_with("Geneve,") {
        return None;
    }
    let (_, after) = w.split_once("vni ")?;
    let num = after
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()?;
    let vni = match num.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => num.parse().ok()?,
    };
    Some(if vxlan {
        EncapLayer::Vxlan(vni)
    } else {
        EncapLayer::Geneve(vni)
    })
}

/// The inner packet line after a tunnel header: `IP 192.0.2.1.5 > ...` (no time stamp), or
/// `IP (tos ...)` with `-v` (addresses on the next line: `None` inside the `Some`).
fn inner_line(stamp: Stamp, line: &str) -> Option<Option<Line>> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (proto, rest) = token(line);
    if !matches!(proto, "IP" | "IP6") {
        return None;
    }
    let rest = if rest.starts_with('(') {
        &rest[close_paren(rest)? + 1..]
    } else {
        rest
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(None);
    }
    Some(Some(parse_addresses(stamp, rest)))
}

/// `ADDR.PORT` (IPv4 or IPv6; the port follows the last dot).
fn endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.trim().rsplit_once('.')?;
    let ip: IpAddr = addr.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The part after `Flags [`.
fn parse_tcp(stamp: Stamp, src: SocketAddr, dst: SocketAddr, s: &str) -> Line {
    let Some((fl, mut rest)) = s.split_once(']') else {
        return Line::Damaged("unterminated Flags [".into());
    };
    let mut flags = 0u8;
    if fl != "none" {
        for c in fl.chars() {
            flags |= match c {
                'S' => Flags::SYN,
                'F' => Flags::FIN,
                'P' => Flags::PSH,
                'R' => Flags::RST,
                'U' => Flags::URG,
                '.' => Flags::ACK,
                // ECE and CWR (RFC 3168) do not matter for teardown.
                'E' | 'W' => 0,
                _ => return Line::Damaged(format!("unknown TCP flag {c:?} in [{fl}]")),
            };
        }
    }
    let mut seg = TextSeg {
        stamp,
        src,
        dst,
        flags,
        seq: None,
        ack: None,
        win: 0,
        len: None,
        fingerprint: 0,
        ip: IpFacts::default(),
    };
    // Fields are `, key value` at bracket depth 0; `length N` ends them (a payload
    // description may follow after `: `).
    while let Some(r) = rest.strip_prefix(',') {
        let r = r.trim_start();
        let end = field_end(r);
        let field = &r[..end];
        rest = &r[end..];
        let (key, val) = field.split_once(' ').unwrap_or((field, ""));
        let bad = |what: &str| Line::Damaged(format!("bad {what} {val:?}"));
        match key {
            "seq" => {
                let (a, b) = match val.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (val, None),
                };
                let (Ok(a), b) = (a.parse::<u32>(), b.map(str::parse::<u32>)) else {
                    return bad("seq");
                };
                let b = match b {
                    None => None,
                    Some(Ok(b)) => Some(b),
                    Some(Err(_)) => return bad("seq"),
                };
                seg.seq = Some((a, b));
            }
            "ack" => match val.parse() {
                Ok(a) => seg.ack = Some(a),
                Err(_) => return bad("ack"),
            },
            "win" => match val.parse() {
                Ok(w) => seg.win = w,
                Err(_) => return bad("win"),
            },
            "length" => {
                // Leading digits only: a payload description may follow (`length 3: HTTP`).
                let end = val.find(|c: char| !c.is_ascii_digit()).unwrap_or(val.len());
                match val[..end].parse() {
                    Ok(n) => seg.len = Some(n),
                    Err(_) => return bad("length"),
                }
                break;
            }
            _ => {}
        }
    }
    if flags & Flags::ACK != 0 && seg.ack.is_none() {
        return Line::Damaged("ACK flag without an ack number".into());
    }
    if seg.len.is_none() {
        seg.len = seg.seq.and_then(|(a, b)| b.map(|b| b.wrapping_sub(a)));
    }
    Line::Tcp(seg)
}

/// End of the field starting at `s`: the next `,` outside brackets/parens, or the end.
fn field_end(s: &str) -> usize {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            ',' if depth <= 0 => return i,
            _ => {}
        }
    }
    s.len()
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// How printed times become `ts_ns`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TimeMode {
    /// Absolute (or cumulative since the first packet, `-ttttt`): midnight roll-over adds a day.
    Absolute,
    /// `-ttt`: each time is the delta to the previous packet.
    Delta,
}

/// Direction-normalised connection key and the direction of the segment (0: src is the
/// lower endpoint).
fn conn_key(src: SocketAddr, dst: SocketAddr) -> ((SocketAddr, SocketAddr), usize) {
    if src <= dst {
        ((src, dst), 0)
    } else {
        ((dst, src), 1)
    }
}

/// tcpdump's `tcp_seq_hash` entry: the base of each direction's sequence space.
type Bases = [u32; 2];

/// A streaming reader of `tcpdump -nn` text.
#[derive(Debug)]
pub struct TcpdumpReader<R> {
    reader: R,
    /// Lines read ahead, with their 1-based line numbers.
    ahead: VecDeque<(u64, Vec<u8>)>,
    line: Vec<u8>,
    line_no: u64,
    relative: bool,
    time_mode: TimeMode,
    /// Replay of tcpdump's table (only when `relative`).
    bases: HashMap<(SocketAddr, SocketAddr), Bases>,
    /// Per direction (src, dst): next sequence number of src, and the last ack src received.
    next_seq: HashMap<(SocketAddr, SocketAddr), SeqNum>,
    /// The `-v` header line waiting for its address line: stamp, line number, TTL and id.
    pending: Option<(Stamp, u64, IpFacts)>,
    /// The tunnel the next packet line is inside (a VXLAN/GENEVE line came just before).
    tunnel: Option<(Stamp, EncapLayer)>,
    /// The tunnel of the `-v` inner header waiting in `pending`.
    pending_tunnel: Option<EncapLayer>,
    /// A record produced ahead of time (a dangling `-v` header before the current line).
    queued: Option<Record>,
    prev_tod: Option<i64>,
    day: i64,
    elapsed: i64,
    done: bool,
}

impl<R: BufRead> TcpdumpReader<R> {
    /// Read ahead (see [`LOOKAHEAD_LINES`]) to settle the numbering and time modes.
    pub fn new(reader: R) -> Result<TcpdumpReader<R>, ReadError> {
        let mut r = TcpdumpReader {
            reader,
            ahead: VecDeque::new(),
            line: Vec::new(),
            line_no: 0,
            relative: false,
            time_mode: TimeMode::Absolute,
            bases: HashMap::new(),
            next_seq: HashMap::new(),
            pending: None,
            tunnel: None,
            pending_tunnel: None,
            queued: None,
            prev_tod: None,
            day: 0,
            elapsed: 0,
            done: false,
        };
        let mut sim: HashMap<(SocketAddr, SocketAddr), (Bases, bool)> = HashMap::new();
        let (mut rel, mut abs) = (0u32, 0u32);
        let mut stamps: Vec<i64> = Vec::new();
        let mut pending = false;
        let mut tunnel: Option<Stamp> = None;
        while r.ahead.len() < LOOKAHEAD_LINES && rel.max(abs) < ENOUGH_VOTES {
            let mut buf = Vec::new();
            let n = r
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| ReadError::Io { offset: 0, source })?;
            if n == 0 {
                break;
            }
            r.line_no += 1;
            let text = String::from_utf8_lossy(&buf);
            // The inner line of a VXLAN/GENEVE packet votes like any other.
            let inner = tunnel.and_then(|stamp| inner_line(stamp, text.trim_end()).flatten());
            let parsed = inner.unwrap_or_else(|| parse_line(&text));
            tunnel = match parsed {
                Line::Tunnel(stamp, _) => Some(stamp),
                _ => None,
            };
            let parsed = match (parsed, pending) {
                (Line::Continuation, true) => {
                    pending = false;
                    parse_addresses(Stamp::TimeOfDay(0), String::from_utf8_lossy(&buf).trim())
                }
                (p, _) => {
                    pending = matches!(p, Line::Pending(..));
                    p
                }
            };
            match &parsed {
                Line::Tcp(s) => {
                    if let Stamp::TimeOfDay(t) = s.stamp {
                        stamps.push(t);
                    }
                    vote(&mut sim, s, &mut rel, &mut abs);
                }
                Line::NonTcp(Stamp::TimeOfDay(t)) | Line::Pending(Stamp::TimeOfDay(t), _) => {
                    stamps.push(*t)
                }
                _ => {}
            }
            r.ahead.push_back((r.line_no, buf));
        }
        r.relative = rel > abs;
        // `-ttt` starts at 00:00:00.000000 and then repeats or goes back and forth;
        // `-ttttt` starts there too but strictly grows (equal µs stamps are rare).
        if stamps.first() == Some(&0) && stamps.windows(2).skip(1).any(|w| w[1] <= w[0]) {
            r.time_mode = TimeMode::Delta;
        }
        Ok(r)
    }

    /// Whether the listing was found to use relative sequence numbers (tcpdump without `-S`).
    pub fn is_relative(&self) -> bool {
        self.relative
    }

    /// Next raw line (from the look-ahead first); `None` at EOF.
    fn next_line(&mut self) -> Result<Option<u64>, ReadError> {
        if let Some((no, buf)) = self.ahead.pop_front() {
            self.line = buf;
            return Ok(Some(no));
        }
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|source| ReadError::Io { offset: 0, source })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        Ok(Some(self.line_no))
    }

    fn ts_ns(&mut self, stamp: Stamp) -> i64 {
        match (stamp, self.time_mode) {
            (Stamp::TimeOfDay(t), TimeMode::Delta) => {
                self.elapsed = self.elapsed.saturating_add(t);
                self.elapsed
            }
            (Stamp::TimeOfDay(t), TimeMode::Absolute) => {
                // A jump back by more than 12 hours is midnight passing.
                if let Some(prev) = self.prev_tod {
                    if t.saturating_add(NS_PER_DAY / 2) < prev {
                        self.day += 1;
                    }
                }
                self.prev_tod = Some(t);
                self.day.saturating_mul(NS_PER_DAY).saturating_add(t)
            }
            (Stamp::Dated(days, t), _) => days.saturating_mul(NS_PER_DAY).saturating_add(t),
            (Stamp::Epoch(t), _) => t,
        }
    }

    /// Turn a parsed TCP line into a segment with absolute numbers.
    fn segment(&mut self, s: TextSeg) -> Segment {
        let ts_ns = self.ts_ns(s.stamp);
        let ack_flag = s.flags & Flags::ACK != 0;
        let mut seq = s.seq.map(|(a, _)| a);
        let mut ack = s.ack.unwrap_or(0);
        if self.relative && ack_flag {
            let (key, d) = conn_key(s.src, s.dst);
            match self.bases.get(&key) {
                Some(b) if s.flags & Flags::SYN == 0 => {
                    seq = seq.map(|v| v.wrapping_add(b[d]));
                    ack = ack.wrapping_add(b[1 - d]);
                }
                _ => {
                    // Printed absolute; this creates tcpdump's entry. A pure ACK's seq is not
                    // printed, so its base is unknown: 0 keeps the direction consistent.
                    let mut b = [0u32; 2];
                    b[d] = seq.unwrap_or(0);
                    b[1 - d] = ack.wrapping_sub(1);
                    self.bases.insert(key, b);
                }
            }
        }
        let dir = (s.src, s.dst);
        let seq = match seq {
            Some(v) => SeqNum(v),
            // Not printed (pure ACK): what this side sent or the peer acknowledged so far.
            None => self.next_seq.get(&dir).copied().unwrap_or_default(),
        };
        let len = s.len.unwrap_or(0);
        let ctl = u32::from(s.flags & (Flags::SYN | Flags::FIN) != 0)
            + u32::from(s.flags & Flags::SYN != 0 && s.flags & Flags::FIN != 0);
        let end = seq.plus(len).plus(ctl);
        let next = match self.next_seq.get(&dir) {
            Some(prev) => prev.max(end),
            None => end,
        };
        self.next_seq.insert(dir, next);
        // The peer's next sequence number is at least what this segment acknowledges.
        if ack_flag {
            let rev = (s.dst, s.src);
            let peer = SeqNum(ack);
            let v = match self.next_seq.get(&rev) {
                Some(prev) => prev.max(peer),
                None => peer,
            };
            self.next_seq.insert(rev, v);
        }
        Segment {
            ts_ns,
            src: s.src,
            dst: s.dst,
            seq,
            ack: if ack_flag { SeqNum(ack) } else { SeqNum(0) },
            flags: Flags(s.flags),
            len,
            window: s.win,
            fingerprint: s.fingerprint,
            encap: None,
            ip: s.ip,
        }
    }

    fn dangling(&mut self, no: u64) -> Record {
        Record::Damaged {
            layer: "line",
            reason: format!("line {no}: IP header without its address line"),
        }
    }
}

/// One look-ahead vote (see the module docs). The entry also says whether a SYN+ACK made
/// it: then both bases are ISNs, and no absolute number printed later can lie before them
/// (a sender's seq only grows from its ISN, an ack from the peer's ISN + 1) — so a number
/// below its base is relative even when the ISNs are small (below [`SMALL`]), where the
/// "small and far from the base" test cannot tell.
fn vote(
    sim: &mut HashMap<(SocketAddr, SocketAddr), (Bases, bool)>,
    s: &TextSeg,
    rel: &mut u32,
    abs: &mut u32,
) {
    if s.flags & Flags::ACK == 0 {
        return;
    }
    let (key, d) = conn_key(s.src, s.dst);
    let ack = s.ack.unwrap_or(0);
    let seq = s.seq.map(|(a, _)| a);
    match sim.get(&key) {
        Some(&(b, from_syn)) if s.flags & Flags::SYN == 0 => {
            let mut one = |printed: u32, base: u32| {
                let dist = printed.wrapping_sub(base);
                let behind = base.wrapping_sub(printed);
                let far_below = printed < SMALL && dist >= SMALL && behind >= SMALL;
                if far_below || (from_syn && (1..1 << 31).contains(&behind)) {
                    *rel += 1;
                } else if printed >= SMALL && dist < SMALL {
                    *abs += 1;
                }
            };
            one(ack, b[1 - d]);
            if let Some(v) = seq {
                one(v, b[d]);
            }
        }
        _ => {
            let mut b = [0u32; 2];
            b[d] = seq.unwrap_or(0);
            b[1 - d] = ack.wrapping_sub(1);
            sim.insert(key, (b, s.flags & Flags::SYN != 0));
        }
    }
}

impl<R: BufRead> PacketSource for TcpdumpReader<R> {
    fn format(&self) -> Format {
        Format::Tcpdump
    }

    fn link_type(&self) -> Option<LinkType> {
        None
    }

    fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if let Some(r) = self.queued.take() {
            return Ok(Some(r));
        }
        while !self.done {
            let Some(no) = self.next_line()? else {
                self.done = true;
                if let Some((_, pno, _)) = self.pending.take() {
                    return Ok(Some(self.dangling(pno)));
                }
                if self.tunnel.take().is_some() {
                    return Ok(Some(Record::NonTcp));
                }
                break;
            };
            let text = String::from_utf8_lossy(&self.line).into_owned();
            let text = text.trim_end();
            let mut inner = None;
            if let Some((stamp, layer)) = self.tunnel.take() {
                match inner_line(stamp, text) {
                    Some(Some(line)) => inner = Some((line, layer)),
                    Some(None) => {
                        self.pending = Some((stamp, no, IpFacts::default()));
                        self.pending_tunnel = Some(layer);
                        continue;
                    }
                    None => {
                        // No inner IP line (the tunnel carried something else, or `-e`
                        // output): the tunnel packet was not TCP; then this line.
                        let parsed = parse_line(text);
                        self.queued = self.record(no, parsed, None);
                        return Ok(Some(Record::NonTcp));
                    }
                }
            }
            let (mut parsed, mut layer) = match inner {
                Some((line, layer)) => (line, Some(layer)),
                None => (parse_line(text), None),
            };
            if let Some((stamp, pno, facts)) = self.pending.take() {
                let pending_layer = self.pending_tunnel.take();
                if parsed == Line::Continuation {
                    parsed = match parse_addresses(stamp, text.trim()) {
                        Line::Tcp(seg) => Line::Tcp(TextSeg { ip: facts, ..seg }),
                        other => other,
                    };
                    layer = pending_layer;
                } else {
                    // The header's address line never came; report it, then this line.
                    let rec = self.dangling(pno);
                    self.queued = self.record(no, parsed, layer);
                    return Ok(Some(rec));
                }
            }
            if let Some(r) = self.record(no, parsed, layer) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn take_warnings(&mut self) -> Vec<Warning> {
        Vec::new()
    }
}

impl<R: BufRead> TcpdumpReader<R> {
    /// The record for a classified line, if it is a packet; `tunnel` is the layer an inner
    /// packet line came through.
    fn record(&mut self, no: u64, parsed: Line, tunnel: Option<EncapLayer>) -> Option<Record> {
        match parsed {
            Line::Skip | Line::Continuation => None,
            Line::Tunnel(stamp, layer) => {
                self.tunnel = Some((stamp, layer));
                None
            }
            Line::Pending(stamp, facts) => {
                self.pending = Some((stamp, no, facts));
                None
            }
            Line::NonTcp(stamp) => {
                // Keep the clock's day count right across non-TCP lines.
                let _ = self.ts_ns(stamp);
                Some(Record::NonTcp)
            }
            Line::Tcp(s) => {
                let mut seg = self.segment(s);
                seg.encap = tunnel.and_then(|l| EncapPath::new(&[l]));
                Some(Record::Tcp(seg))
            }
            Line::Damaged(why) => Some(Record::Damaged {
                layer: "line",
                reason: format!("line {no}: {why}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "12:43:46.906305 IP 172.16.196.145.60000 > 172.16.196.142.41334: Flags [F.], seq 4195434205, ack 3255498568, win 114, options [nop,nop,TS val 1425611003 ecr 1412272238], length 0";

    fn tcp(line: &str) -> TextSeg {
        match parse_line(line) {
            Line::Tcp(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_the_blog_line() {
        let s = tcp(LINE);
        assert_eq!(
            s.stamp,
            Stamp::TimeOfDay(((12 * 60 + 43) * 60 + 46) * NS_PER_SEC + 906_305_000)
        );
        assert_eq!(s.src, "172.16.196.145:60000".parse().unwrap());
        assert_eq!(s.flags, Flags::FIN | Flags::ACK);
        assert_eq!(s.seq, Some((4195434205, None)));
        assert_eq!((s.ack, s.win, s.len), (Some(3255498568), 114, Some(0)));
    }

    #[test]
    fn prefixes() {
        let base = tcp(LINE);
        for l in [
            format!("1 {LINE}"),
            format!("2024-01-01 {LINE}"),
            LINE.replace(" IP ", " lo    In  IP "),
            LINE.replace(" IP ", " eth0 Out IP "),
        ] {
            let s = tcp(&l);
            assert_eq!((s.src, s.seq, s.ack), (base.src, base.seq, base.ack), "{l}");
        }
        assert_eq!(
            tcp(&format!("2024-01-01 {LINE}")).stamp,
            Stamp::Dated(
                19723,
                match base.stamp {
                    Stamp::TimeOfDay(t) => t,
                    _ => unreachable!(),
                }
            )
        );
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11017));
    }

    #[test]
    fn ipv6_flags_and_ranges() {
        let s = tcp("00:00:01.5 IP6 ::1.60000 > ::1.41334: Flags [FP.], seq 10:15, ack 3, win 5, length 5: HTTP");
        assert_eq!(s.src, "[::1]:60000".parse().unwrap());
        assert_eq!(s.flags, Flags::FIN | Flags::PSH | Flags::ACK);
        assert_eq!((s.seq, s.len), (Some((10, Some(15))), Some(5)));
        assert_eq!(s.stamp, Stamp::TimeOfDay(1_500_000_000));
        assert_eq!(
            tcp("00:00:00.1 IP 1.2.3.4.1 > 1.2.3.4.2: Flags [SEW], seq 1, win 1, length 0").flags,
            Flags::SYN
        );
        assert_eq!(
            tcp("00:00:00.1 IP 1.2.3.4.1 > 1.2.3.4.2: Flags [none], seq 1, win 1, length 0").flags,
            0
        );
        assert_eq!(
            tcp("00:00:00.1 IP 1.2.3.4.1 > 1.2.3.4.2: Flags [R], seq 7, win 0, length 0").flags,
            Flags::RST
        );
    }

    #[test]
    fn other_lines() {
        assert_eq!(parse_line(""), Line::Skip);
        assert_eq!(parse_line("listening on lo, link-type EN10MB"), Line::Skip);
        assert_eq!(parse_line("10 packets captured"), Line::Skip);
        assert_eq!(parse_line("\t0x0000:  4500 0034"), Line::Continuation);
        assert!(matches!(
            parse_line("12:00:00.000001 IP 127.0.0.1.53 > 127.0.0.1.999: UDP, length 12"),
            Line::NonTcp(_)
        ));
        assert!(matches!(
            parse_line("12:00:00.000001 IP 127.0.0.1 > 127.0.0.2: ICMP echo request, id 1, seq 1, length 64"),
            Line::NonTcp(_)
        ));
        assert!(matches!(
            parse_line("12:00:00.000001 ARP, Request who-has 127.0.0.2 tell 127.0.0.1, length 28"),
            Line::NonTcp(_)
        ));
        assert!(matches!(
            parse_line("12:00:00.000001 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [Q], seq 1"),
            Line::Damaged(_)
        ));
        assert!(matches!(
            parse_line("12:00:00.000001 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [.], win 1"),
            Line::Damaged(_)
        ));
        assert!(matches!(
            parse_line("12:00:00.000001 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 52)"),
            Line::Pending(..)
        ));
        assert!(is_packet_line(LINE.as_bytes()));
        assert!(!is_packet_line(b"hello world"));
    }

    #[test]
    fn an_impossible_time_is_a_damaged_line_not_a_silent_skip() {
        // Issue 20 item 10: `99:99:99` was dropped without a warning.
        for (line, time) in [
            ("99:99:99.000001 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [S], seq 1, win 1, length 0", "99:99:99.000001"),
            ("12:60:00 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [S], seq 1, win 1, length 0", "12:60:00"),
            ("7 2026-12-04 12:00:61.5 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [S], seq 1, win 1, length 0", "12:00:61.5"),
        ] {
            assert_eq!(
                parse_line(line),
                Line::Damaged(format!("time {time:?} is out of range")),
                "{line}"
            );
        }
        // Hours are not bounded (`-ttttt` counts up), and tcpdump's own lines stay skipped.
        assert!(matches!(
            parse_line(
                "99:59:59.000001 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [S], seq 1, win 1, length 0"
            ),
            Line::Tcp(_)
        ));
        assert_eq!(parse_line("listening on lo, link-type EN10MB"), Line::Skip);
        let (recs, _) = read_all("12:00:00.000001 IP 127.0.0.1.1 > 127.0.0.1.2: Flags [S], seq 1, win 1, length 0\n99:99:99.000002 IP 127.0.0.1.2 > 127.0.0.1.1: Flags [S.], seq 5, ack 2, win 1, length 0\n");
        assert!(
            matches!(&recs[1], Record::Damaged { layer: "line", reason } if reason == "line 2: time \"99:99:99.000002\" is out of range"),
            "{recs:?}"
        );
    }

    fn read_all(text: &str) -> (Vec<Record>, bool) {
        let mut r = TcpdumpReader::new(text.as_bytes()).unwrap();
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push(rec);
        }
        (v, r.is_relative())
    }

    #[test]
    fn verbose_continuation_lines_are_joined() {
        let text = "12:00:00.000001 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 52)\n    127.0.0.1.5 > 127.0.0.1.6: Flags [S], cksum 0xfe28 (incorrect -> 0x1), seq 9, win 5, options [mss 65495], length 0\n12:00:00.000002 IP (tos 0x0)\n12:00:00.000003 IP 127.0.0.1.6 > 127.0.0.1.5: Flags [R.], seq 0, ack 10, win 0, length 0\n";
        let (recs, _) = read_all(text);
        assert_eq!(recs.len(), 3, "{recs:?}");
        match &recs[0] {
            Record::Tcp(s) => assert_eq!((s.seq, s.ts_ns), (SeqNum(9), 43_200_000_001_000)),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&recs[1], Record::Damaged { layer: "line", reason } if reason.starts_with("line 3:"))
        );
        assert!(matches!(&recs[2], Record::Tcp(_)));
    }

    #[test]
    fn delta_times_accumulate_and_midnight_rolls() {
        let l = |t: &str| {
            format!("{t} IP 127.0.0.1.5 > 127.0.0.1.6: Flags [S], seq 9, win 5, length 0\n")
        };
        let ts = |text: String| -> Vec<i64> {
            read_all(&text)
                .0
                .into_iter()
                .map(|r| match r {
                    Record::Tcp(s) => s.ts_ns,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let delta = [
            l("00:00:00.000000"),
            l("00:00:00.000300"),
            l("00:00:00.000100"),
        ]
        .concat();
        assert_eq!(ts(delta), vec![0, 300_000, 400_000]);
        let wrap = [l("23:59:59.999999"), l("00:00:00.000001")].concat();
        assert_eq!(ts(wrap), vec![NS_PER_DAY - 1_000, NS_PER_DAY + 1_000]);
    }
}
