//! Connection tracking: the 4-tuple table, SYN epochs, loopback de-duplication and
//! streaming finalisation in first-packet order.
//!
//! Memory is bounded by the connections alive at once (plus finished ones waiting behind an
//! older, still-open connection so that output stays in first-packet order), never by the
//! file size: a connection is handed to the classifier as soon as it is over and the capture
//! clock has moved on by a linger time.
//!
//! Connections move as `Box<RawConn>` (in vectors too, which clippy's `vec_box` dislikes):
//! from the table to the classifier and back to be reused, a pointer instead of 500 bytes
//! each time (the moves were a tenth of `analyze --summary`'s CPU).
#![allow(clippy::vec_box)]

use crate::analysis::{Analysis, Connection, FileInfo};
use crate::input::{self, Format, ReadError, Record};
use crate::link::LinkType;
pub use crate::raw_conn::Detail;
use crate::raw_conn::{Pkt, RawConn};
use crate::segment::Segment;
use crate::summary::Summary;
use crate::teardown;
use crate::warning::{DamageTally, Warning};
use std::collections::VecDeque;
use std::io::BufRead;

mod shards;

/// Tuning for streaming analysis.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// A finished connection (final ACK or RST seen) is handed on once the capture clock is
    /// this far past its last packet (ns). Later non-SYN packets on the same 4-tuple would
    /// then start a new connection, so this is a trade between memory and late stragglers.
    pub linger_ns: i64,
    /// The same for a connection whose FINs were both seen but whose final ACK was not: the
    /// LAST_ACK side may still retransmit its FIN, so it is kept longer.
    pub linger_unacked_ns: i64,
    /// Packets stored per connection before the middle of a long transfer is elided.
    pub max_stored_packets: usize,
    /// Two frames with the same fingerprint this close in time are one packet seen twice.
    pub duplicate_window_ns: i64,
    /// At most this many ended connections wait out their linger time; beyond it the oldest
    /// is handed on early, so a burst of closes cannot grow memory without bound.
    pub max_lingering: usize,
    /// After a connection is handed on, its 4-tuple is remembered this long (capture clock):
    /// docs/teardown.md says only a new SYN starts a new connection, so a stray segment on
    /// it is counted in [`FileInfo::after_close`] instead of becoming a connection.
    pub closed_memory_ns: i64,
    /// Slots of the table remembering such 4-tuples (rounded up to a power of two; a newer
    /// close can overwrite an older one in its slot). 0 remembers none.
    pub max_closed: usize,
    /// How much of each [`Connection`] to build: the narration needs everything, JSON not
    /// the per-packet roles, counts only the verdict.
    pub detail: Detail,
    /// With [`Detail::Verdict`], [`analyze_stream`] splits the connection table over this
    /// many threads by a bit of each 4-tuple's hash (rounded down to a power of two, at most
    /// 16); 1 keeps one table, 0 picks one table per core up to 2. The counts are the same
    /// either way (see `conn/shards.rs`); only the order connections reach the sink differs.
    pub table_threads: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            // Covers a straggling duplicate ACK or RST (delayed ACK 40 ms, RTO >= 200 ms):
            // such an RST becomes the `late-rst` warning of its connection; a later one is
            // counted in `after_close`. (2 s cost a third more CPU and twice the memory on
            // the bench's 1M connections: a table of ~8× the live entries.)
            linger_ns: 250_000_000,
            linger_unacked_ns: 120_000_000_000,
            max_stored_packets: 4096,
            duplicate_window_ns: 50_000_000,
            max_lingering: 1 << 16,
            // Linux keeps a closed 4-tuple in TIME_WAIT for 60 s; twice that is generous.
            closed_memory_ns: 120_000_000_000,
            max_closed: 1 << 18,
            detail: Detail::Full,
            table_threads: 0,
        }
    }
}

/// Receives the analysis as it streams: `begin` once, `connection` in order of each
/// connection's first packet (in finishing order with [`Detail::Verdict`]), then `end` once,
/// or `failed` once when the input could not be read to its end.
pub trait AnalysisSink {
    /// The input was recognised.
    fn begin(&mut self, source: &str, format: Format, link_type: Option<LinkType>);
    /// One finished connection.
    fn connection(&mut self, conn: Connection);
    /// The input is exhausted.
    fn end(&mut self, file: &FileInfo);
    /// A connection the sink is done with (one it was given), whose buffers the analysis may
    /// reuse for the next one. None, the default: the sink keeps or drops what it is given.
    fn spare(&mut self) -> Option<Connection> {
        None
    }
    /// Reading failed after `begin`: `file` holds the counts so far, the connections read
    /// until then were handed on (the open ones among them as they stood).
    fn failed(&mut self, file: &FileInfo, error: &ReadError) {
        let _ = (file, error);
    }
    /// With [`Detail::Verdict`]: would the sink take the counts alone ([`AnalysisSink::
    /// counts`]) instead of every connection? Then an analysis that splits its table over
    /// threads counts on those threads and never sends the connections over. The default:
    /// no, every connection.
    fn counts_only(&self) -> bool {
        false
    }
    /// The counts of the connections that were not handed to [`AnalysisSink::connection`]
    /// (see [`AnalysisSink::counts_only`]): once, before `end` or `failed`.
    fn counts(&mut self, summary: &Summary) {
        let _ = summary;
    }
}

/// Collects everything in memory (for [`analyze`]).
#[derive(Debug, Default)]
struct Collect {
    connections: Vec<Connection>,
}

impl AnalysisSink for Collect {
    fn begin(&mut self, _: &str, _: Format, _: Option<LinkType>) {}
    fn connection(&mut self, conn: Connection) {
        self.connections.push(conn);
    }
    fn end(&mut self, _: &FileInfo) {}
}

/// Analyse a whole input into memory, on the calling thread: what fits in memory is small,
/// and a live run analyses its few packets many times, where starting the pipeline's two
/// threads would cost more than the analysis ([`analyze_on_this_thread`]).
pub fn analyze<R: BufRead + Send>(reader: R, source: &str) -> Result<Analysis, ReadError> {
    let mut sink = Collect::default();
    let file = analyze_on_this_thread(reader, source, &AnalyzeOptions::default(), &mut sink)?;
    Ok(Analysis {
        file,
        connections: sink.connections,
    })
}

/// Records handed from the reader thread to the table in batches (one channel message per
/// packet would cost more than decoding it).
const BATCH: usize = 1024;

/// Finished connections handed from the table thread to the caller's thread per message.
const CONN_BATCH: usize = 64;

enum Batch {
    Records(Vec<Record>),
    Failed(ReadError),
    Done(Vec<Warning>),
}

enum Finished {
    Conns(Vec<Box<RawConn>>),
    Failed(ReadError, FileInfo),
    Done(FileInfo),
}

/// Analyse an input, streaming connections to `sink` as they finish.
///
/// Three stages, each on its own thread, so that a big capture keeps both cores busy:
/// reading and decoding; the connection table; classification and the sink (on the
/// caller's thread, so the sink need not be `Send`). Output order is the same as a single
/// thread's: the table hands connections on in first-packet order.
pub fn analyze_stream<R: BufRead + Send>(
    reader: R,
    source: &str,
    opts: &AnalyzeOptions,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    if let Some(split) = shards::Split::for_options(opts) {
        // Each shard reads the input itself, and one more reader sniffs its header here.
        let shared = input::shared::SharedInput::new(reader, split.shards() + 1);
        let (src, file) = open_and_begin(shared.reader(split.shards()), source, sink)?;
        drop(src);
        let readers = |i| Ok(shared.reader(i));
        return shards::analyze_split(&readers, file, opts, split, sink);
    }
    let (mut src, file) = open_and_begin(reader, source, sink)?;
    let (rec_tx, rec_rx) = std::sync::mpsc::sync_channel::<Batch>(8);
    let (rec_back_tx, rec_back_rx) = std::sync::mpsc::channel::<Vec<Record>>();
    let (fin_tx, fin_rx) = std::sync::mpsc::sync_channel::<Finished>(16);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<Box<RawConn>>>();
    let detail = opts.detail;
    let table_opts = opts.clone();
    std::thread::scope(|scope| {
        scope.spawn(move || read_stage(&mut *src, &rec_tx, &rec_back_rx));
        scope.spawn(move || table_stage(table_opts, file, rec_rx, rec_back_tx, fin_tx, spent_rx));
        // Replaced by `Done` or `Failed`; the table stage always sends one of them unless it
        // panicked, and then the scope re-raises that panic anyway.
        let mut result = Err(ReadError::Empty);
        for msg in fin_rx {
            match msg {
                Finished::Conns(conns) => {
                    for raw in &conns {
                        let conn =
                            teardown::finish_reusing(raw, raw.file_start_ns, detail, sink.spare());
                        sink.connection(conn);
                    }
                    let _ = spent_tx.send(conns);
                }
                Finished::Failed(e, file) => {
                    sink.failed(&file, &e);
                    result = Err(e);
                }
                Finished::Done(file) => {
                    sink.end(&file);
                    result = Ok(file);
                }
            }
        }
        result
    })
}

/// [`analyze_stream`] over an input that can be read from the start more than once at the
/// same time (`open` gives a new reader each call: a regular file read with `pread`, bytes
/// in memory). With [`Detail::Verdict`] and more than one table thread, each thread reads
/// the input through a reader of its own (see `conn/shards.rs`): no thread waits for
/// another's reading, which on the bench's file beat sharing one reading by a tenth.
/// Otherwise this is [`analyze_stream`] on one reader. The counts are the same either way.
pub fn analyze_reopen<R: BufRead + Send>(
    open: &(dyn Fn() -> std::io::Result<R> + Sync),
    source: &str,
    opts: &AnalyzeOptions,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    let reader = open().map_err(|source| ReadError::Io { offset: 0, source })?;
    let Some(split) = shards::Split::for_options(opts) else {
        return analyze_stream(reader, source, opts, sink);
    };
    // The header is sniffed once here, for `begin`; every shard opens its own reader.
    let (src, file) = open_and_begin(reader, source, sink)?;
    drop(src);
    let readers = |_| open();
    shards::analyze_split(&readers, file, opts, split, sink)
}

/// Open `reader` (sniffing its format), tell the sink what it is, and return the reader with
/// the file's facts before its first record: what the reader sniffed, no counts yet.
fn open_and_begin<'a, R: BufRead + Send + 'a>(
    reader: R,
    source: &str,
    sink: &mut dyn AnalysisSink,
) -> Result<(Box<dyn input::PacketSource + Send + 'a>, FileInfo), ReadError> {
    let src = input::open(reader)?;
    sink.begin(source, src.format(), src.link_type());
    let file = FileInfo {
        source: source.to_string(),
        format: src.format(),
        link_type: src.link_type(),
        packets: 0,
        non_tcp: 0,
        duplicates: 0,
        after_close: 0,
        warnings: Vec::new(),
    };
    Ok((src, file))
}

/// [`analyze_stream`] without threads: the same stages, one after the other for each
/// record, and the same output in the same order. For small inputs (and one core).
pub fn analyze_on_this_thread<R: BufRead + Send>(
    reader: R,
    source: &str,
    opts: &AnalyzeOptions,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    let (mut src, mut file) = open_and_begin(reader, source, sink)?;
    let detail = opts.detail;
    let mut table = Table::new(opts.clone());
    let mut damage = DamageTally::default();
    // Classified connections, given back to the table for the next ones.
    let mut spent: Vec<Box<RawConn>> = Vec::new();
    let mut hand_on = |raw: Box<RawConn>, spent: &mut Vec<Box<RawConn>>| {
        let spare = sink.spare();
        sink.connection(teardown::finish_reusing(
            &raw,
            raw.file_start_ns,
            detail,
            spare,
        ));
        spent.push(raw);
    };
    let failed = loop {
        match src.next_record() {
            Ok(Some(record)) => {
                file.packets += 1;
                match record {
                    Record::Tcp(seg) => {
                        table.push(file.packets, &seg, &mut |raw| hand_on(raw, &mut spent));
                        if !spent.is_empty() {
                            table.recycle(std::mem::take(&mut spent));
                        }
                    }
                    Record::Elsewhere { ts_ns } => {
                        table.tick(ts_ns, &mut |raw| hand_on(raw, &mut spent));
                    }
                    Record::NonTcp => file.non_tcp += 1,
                    Record::Fragment => {}
                    Record::Damaged { layer, reason } => damage.add(file.packets, layer, reason),
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    file.warnings.extend(damage.into_warnings());
    if failed.is_none() {
        file.warnings.extend(src.take_warnings());
    }
    file.duplicates = table.duplicates;
    file.after_close = table.after_close;
    table.finish(&mut |raw| hand_on(raw, &mut spent));
    conclude(sink, file, failed)
}

/// Tell the sink how the file ended (its read error, or its end) and return the same to the
/// caller: the last step of every pipeline that runs on the caller's thread.
fn conclude(
    sink: &mut dyn AnalysisSink,
    file: FileInfo,
    failed: Option<ReadError>,
) -> Result<FileInfo, ReadError> {
    match failed {
        Some(e) => {
            sink.failed(&file, &e);
            Err(e)
        }
        None => {
            sink.end(&file);
            Ok(file)
        }
    }
}

/// Stage 1: read and decode records, in batches.
fn read_stage(
    src: &mut (dyn input::PacketSource + Send),
    tx: &std::sync::mpsc::SyncSender<Batch>,
    back: &std::sync::mpsc::Receiver<Vec<Record>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match src.next_record() {
            Ok(Some(r)) => {
                batch.push(r);
                if batch.len() == BATCH {
                    let mut next = back
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    // The table hands its batches back full (see `table_stage`).
                    next.clear();
                    if tx
                        .send(Batch::Records(std::mem::replace(&mut batch, next)))
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Ok(None) => {
                let _ = tx.send(Batch::Records(batch));
                let _ = tx.send(Batch::Done(src.take_warnings()));
                return;
            }
            Err(e) => {
                let _ = tx.send(Batch::Records(batch));
                let _ = tx.send(Batch::Failed(e));
                return;
            }
        }
    }
}

/// Stage 2: the connection table; finished connections go on in batches.
fn table_stage(
    opts: AnalyzeOptions,
    mut file: FileInfo,
    rx: std::sync::mpsc::Receiver<Batch>,
    records_back: std::sync::mpsc::Sender<Vec<Record>>,
    tx: std::sync::mpsc::SyncSender<Finished>,
    spent_back: std::sync::mpsc::Receiver<Vec<Box<RawConn>>>,
) {
    let mut table = Table::new(opts);
    let mut damage = DamageTally::default();
    let mut out: Vec<Box<RawConn>> = Vec::with_capacity(CONN_BATCH);
    for msg in rx {
        match msg {
            Batch::Records(mut records) => {
                let mut hand_on = |raw: Box<RawConn>| out.push(raw);
                for record in &mut records {
                    file.packets += 1;
                    match record {
                        Record::Tcp(seg) => table.push(file.packets, seg, &mut hand_on),
                        Record::Elsewhere { ts_ns } => table.tick(*ts_ns, &mut hand_on),
                        Record::NonTcp => file.non_tcp += 1,
                        Record::Fragment => {}
                        Record::Damaged { layer, reason } => {
                            damage.add(file.packets, layer, std::mem::take(reason))
                        }
                    }
                }
                // Back undropped: the reader clears the batch, so a tunnelled segment's
                // shared path has its reference count raised and dropped on the reader's
                // thread alone (dropping here bounced its cache line between the two
                // threads on every packet: 9% of a tunnel-heavy run).
                let _ = records_back.send(records);
                while let Ok(spent) = spent_back.try_recv() {
                    table.recycle(spent);
                }
                if out.len() >= CONN_BATCH {
                    // One batch of records finishes about a hundred connections: the next
                    // list starts at the size this one grew to, so it does not grow again
                    // (growing moved every connection in it, 4% of --json's instructions).
                    let grown = out.capacity();
                    let batch = std::mem::replace(&mut out, Vec::with_capacity(grown));
                    if tx.send(Finished::Conns(batch)).is_err() {
                        return;
                    }
                }
            }
            Batch::Failed(e) => {
                // What was read still counts: hand on every connection as it stands.
                file.warnings.extend(damage.into_warnings());
                file.duplicates = table.duplicates;
                file.after_close = table.after_close;
                table.finish(&mut |raw: Box<RawConn>| out.push(raw));
                let _ = tx.send(Finished::Conns(out));
                let _ = tx.send(Finished::Failed(e, file));
                return;
            }
            Batch::Done(warnings) => {
                file.warnings
                    .extend(std::mem::take(&mut damage).into_warnings());
                file.warnings.extend(warnings);
            }
        }
    }
    file.duplicates = table.duplicates;
    file.after_close = table.after_close;
    table.finish(&mut |raw: Box<RawConn>| out.push(raw));
    let _ = tx.send(Finished::Conns(out));
    let _ = tx.send(Finished::Done(file));
}

/// The hash of a segment's connection ([`crate::flow::flow_hash`]: both endpoints either way
/// round, plus the hash of the encapsulation path, so the same inner 4-tuple in two tunnels
/// is two connections): the table's index, the shard of a split table, the closed-table slot.
fn flow_hash_of(seg: &Segment) -> u64 {
    crate::flow::flow_hash(seg.src, seg.dst, path_hash(seg.encap.as_ref()))
}

fn path_hash(path: Option<&crate::encap::EncapPath>) -> u64 {
    path.map_or(0, crate::encap::EncapPath::hash64)
}

/// Is `c` the connection `seg` belongs to? Its first packet's endpoints, either way round,
/// and its path. (No key is built: the segment is compared with the connection itself.)
fn is_of(c: &RawConn, seg: &Segment) -> bool {
    let ends = (c.first_src == seg.src && c.first_dst == seg.dst)
        || (c.first_src == seg.dst && c.first_dst == seg.src);
    ends && path_hash(c.encap.as_ref()) == path_hash(seg.encap.as_ref())
}

/// Output order: connections leave in the order of their first packet. Each gets a slot
/// when it starts; a finished one fills its slot, and the filled prefix is flushed. A ring
/// indexed by slot number costs O(1) per connection (a BTreeMap of waiting connections plus a
/// set of live ones cost a fifth of a big run).
#[derive(Debug, Default)]
struct Order {
    /// Slot number of `ring[0]`.
    base: u64,
    ring: VecDeque<Option<Box<RawConn>>>,
}

impl Order {
    fn open(&mut self) -> u64 {
        self.ring.push_back(None);
        self.base + self.ring.len() as u64 - 1
    }

    fn close(&mut self, slot: u64, conn: Box<RawConn>, out: &mut dyn FnMut(Box<RawConn>)) {
        let i = (slot - self.base) as usize;
        if i == 0 {
            // The common case on small files, and the cheap one: no parking.
            self.ring.pop_front();
            self.base += 1;
            out(conn);
        } else {
            match self.ring.get_mut(i) {
                Some(cell) => *cell = Some(conn),
                // Every live connection has a slot; should one be missing, emitting late
                // beats losing it.
                None => out(conn),
            }
            return;
        }
        while let Some(Some(_)) = self.ring.front() {
            if let Some(Some(c)) = self.ring.pop_front() {
                self.base += 1;
                out(c);
            }
        }
    }
}

/// The live connections: a slab of connections and an index from key to slab slot.
///
/// The index holds only the slot (4 bytes a bucket) under the key's hash, computed once per
/// segment by the caller, and the slab only a pointer (8 bytes): both stay in cache on a
/// big capture. The key is compared against the connection's own first addresses and path,
/// which the packet reads next anyway, so a look-up costs one cache miss where the
/// connection lives. A connection is never moved while it lives, and what refers to it
/// from elsewhere (the retirement queues) holds its slot and serial number, so retiring
/// needs no look-up.
#[derive(Default)]
struct Live {
    index: hashbrown::HashTable<u32>,
    slab: Vec<Option<Box<RawConn>>>,
    /// Empty slots of `slab`, reused last-freed first (still warm in cache).
    free: Vec<u32>,
    /// Connections inserted so far: the next one's serial.
    serials: u64,
}

impl Live {
    fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of the live connection `seg` belongs to (`hash` = [`flow_hash_of`]).
    fn find(&self, hash: u64, seg: &Segment) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |&i| {
                slab[i as usize]
                    .as_ref()
                    .is_some_and(|c| c.hash == hash && is_of(c, seg))
            })
            .copied()
    }

    /// The connection in slot `i`, if that slot still holds the one with `serial`.
    fn at(&mut self, i: u32, serial: u64) -> Option<&mut RawConn> {
        self.slab
            .get_mut(i as usize)?
            .as_deref_mut()
            .filter(|c| c.serial == serial)
    }

    /// Callers insert only absent keys; `hash` is the key's.
    fn insert(&mut self, hash: u64, mut conn: Box<RawConn>) -> u32 {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(None);
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.serials += 1;
        conn.hash = hash;
        conn.serial = self.serials;
        self.slab[i as usize] = Some(conn);
        let slab = &self.slab;
        self.index.insert_unique(hash, i, |&j| {
            slab[j as usize].as_ref().map_or(0, |c| c.hash)
        });
        i
    }

    fn remove(&mut self, i: u32) -> Option<Box<RawConn>> {
        let c = self.slab.get_mut(i as usize)?.take()?;
        if let Ok(entry) = self.index.find_entry(c.hash, |&j| j == i) {
            entry.remove();
        }
        self.free.push(i);
        Some(c)
    }

    fn drain(&mut self) -> Vec<Box<RawConn>> {
        self.index.clear();
        self.free.clear();
        self.slab.drain(..).flatten().collect()
    }
}

/// Queued connections by deadline, earliest first (equal deadlines in the order queued).
///
/// Not a plain first-in-first-out queue: deadlines are queued out of order (a connection
/// that got more packets after it ended is queued again at its new last packet; capture
/// clocks step back), and in a queue an entry due now would wait behind a later one. A
/// connection then retired when *another* 4-tuple's deadline passed, which a table split by
/// 4-tuple (`conn/shards.rs`) could not reproduce; by deadline, each connection retires at
/// the first segment past its own. But nearly every deadline is queued in order (the same
/// linger after a clock that moves forward), so those go to a first-in-first-out queue, and
/// only the others to a heap: popping the heap was 6% of `--summary`.
#[derive(Default)]
struct Deadlines {
    /// Entries queued in order: (deadline, queueing number) never decreases front to back.
    in_order: VecDeque<Deadline>,
    /// The others, reversed so that the max-heap pops the earliest.
    late: std::collections::BinaryHeap<std::cmp::Reverse<Deadline>>,
    /// Queued so far: the tie-break that keeps equal deadlines in queueing order.
    queued: u64,
}

/// (deadline, queueing number, slab slot, serial): ordered by deadline, then queueing.
type Deadline = (i64, u64, u32, u64);

impl Deadlines {
    fn push(&mut self, due: i64, slot: u32, serial: u64) {
        self.queued += 1;
        let entry = (due, self.queued, slot, serial);
        match self.in_order.back() {
            Some(last) if last.0 > due => self.late.push(std::cmp::Reverse(entry)),
            _ => self.in_order.push_back(entry),
        }
    }

    /// The earliest entry's place: true when it is at the front of `in_order`.
    fn front_is_in_order(&self) -> Option<bool> {
        match (self.in_order.front(), self.late.peek()) {
            (Some(a), Some(b)) => Some(*a <= b.0),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (None, None) => None,
        }
    }

    /// The earliest deadline.
    fn earliest(&self) -> Option<i64> {
        match self.front_is_in_order()? {
            true => self.in_order.front().map(|e| e.0),
            false => self.late.peek().map(|e| e.0 .0),
        }
    }

    /// (slot, serial) of the earliest.
    fn pop(&mut self) -> Option<(u32, u64)> {
        let (_, _, slot, serial) = match self.front_is_in_order()? {
            true => self.in_order.pop_front()?,
            false => self.late.pop()?.0,
        };
        Some((slot, serial))
    }

    fn len(&self) -> usize {
        self.in_order.len() + self.late.len()
    }
}

struct Table {
    opts: AnalyzeOptions,
    live: Live,
    /// Output order (first-packet order), with finished connections parked behind older
    /// live ones.
    order: Order,
    /// Connections that are over, by deadline: index 0 for the short linger (every ended
    /// connection starts there), 1 for those whose final ACK is still missing when that
    /// runs out. Only the earliest deadline is checked per packet, so retiring costs
    /// O(log n) per connection instead of a scan of the table.
    retire: [Deadlines; 2],
    /// No deadline in `retire` is earlier than this (it may be earlier than needed): the
    /// clock ticks of every segment skip `retire_due` with one compare.
    next_due: i64,
    /// 4-tuples whose connection was handed on, with the time until which they are
    /// remembered: a direct-mapped table indexed by the key's hash (16 bytes a slot,
    /// allocated at the first close). A newer close overwrites an older one in its slot, so
    /// memory is fixed and nothing needs expiring; at worst a stray segment on a forgotten
    /// 4-tuple becomes a connection as before.
    closed: Vec<(u64, i64)>,
    file_start_ns: Option<i64>,
    duplicates: u64,
    /// Non-SYN segments on a remembered closed 4-tuple.
    after_close: u64,
    /// Classified connections, to be reused (with their packet buffers) for new ones.
    spare: Vec<Box<RawConn>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("live", &self.live.len())
            .field("order", &self.order.ring.len())
            .finish()
    }
}

impl Table {
    fn new(opts: AnalyzeOptions) -> Table {
        Table {
            opts,
            live: Live::default(),
            order: Order::default(),
            retire: [Deadlines::default(), Deadlines::default()],
            next_due: i64::MIN,
            closed: Vec::new(),
            file_start_ns: None,
            duplicates: 0,
            after_close: 0,
            spare: Vec::new(),
        }
    }

    /// The capture clock reached `now_ns` (a TCP segment's time): what every segment does
    /// before its own 4-tuple's work. A table shard also runs it for the segments of the
    /// other shards, so its connections retire at the same packet as in one table.
    ///
    /// Inlined, and the retiring kept out of line: every segment of the file pays this in
    /// every shard, mostly for one compare.
    #[inline]
    fn tick(&mut self, now_ns: i64, out: &mut dyn FnMut(Box<RawConn>)) {
        if self.file_start_ns.is_none() {
            self.file_start_ns = Some(now_ns);
        }
        if now_ns > self.next_due {
            self.retire_until(now_ns, out);
        }
    }

    /// [`Table::tick`] past the earliest deadline.
    #[inline(never)]
    fn retire_until(&mut self, now_ns: i64, out: &mut dyn FnMut(Box<RawConn>)) {
        self.retire_due(now_ns, out);
        let earliest = |q: &Deadlines| q.earliest().unwrap_or(i64::MAX);
        self.next_due = earliest(&self.retire[0]).min(earliest(&self.retire[1]));
    }

    fn push(&mut self, number: u64, seg: &Segment, out: &mut dyn FnMut(Box<RawConn>)) {
        self.push_hashed(number, seg, flow_hash_of(seg), out);
    }

    /// [`Table::push`] for a caller that has the segment's [`flow_hash_of`] already.
    fn push_hashed(
        &mut self,
        number: u64,
        seg: &Segment,
        hash: u64,
        out: &mut dyn FnMut(Box<RawConn>),
    ) {
        self.tick(seg.ts_ns, out);
        let mut found = self.live.find(hash, seg);
        if let Some(i) = found.filter(|_| seg.flags.syn() && !seg.flags.ack()) {
            if self.new_epoch(i, seg, out) {
                found = None;
            }
        }
        let max_stored = self.opts.max_stored_packets;
        let window = self.opts.duplicate_window_ns;
        let i = match found {
            Some(i) => i,
            None => {
                // docs/teardown.md: only a new SYN starts a new connection on a 4-tuple whose
                // connection ended; a stray ACK or RST after it is counted, not a connection.
                // (A SYN needs no look-up: the new connection's retirement overwrites the
                // entry, and expiry skips entries that were overwritten.)
                if !seg.flags.syn() && !self.closed.is_empty() {
                    let (k, until) = self.closed[hash as usize & (self.closed.len() - 1)];
                    if k == hash && until >= seg.ts_ns {
                        self.after_close += 1;
                        return;
                    }
                }
                let zeek = self.opts.detail != Detail::Verdict;
                let mut c = match self.spare.pop() {
                    Some(mut c) => {
                        c.reuse(number, seg, zeek);
                        c
                    }
                    None => Box::new(RawConn::new(number, seg, None, zeek)),
                };
                if self.opts.detail != Detail::Verdict {
                    c.slot = self.order.open();
                }
                self.live.insert(hash, c)
            }
        };
        let Some(conn) = self.live.slab[i as usize].as_deref_mut() else {
            return;
        };
        let pkt = Pkt {
            number,
            ts_ns: seg.ts_ns,
            from_first: conn.first_src == seg.src,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            len: seg.len,
            window: seg.window,
            fingerprint: seg.fingerprint,
            ip: seg.ip,
        };
        if conn.is_duplicate(&pkt, window) {
            self.duplicates += 1;
            return;
        }
        conn.push(pkt, max_stored);
        // Queue it once, when it has ended; `retire_due` moves it on from there.
        if conn.queued == 0 && conn.ended() {
            conn.queued = 1;
            let due = conn.last_ts.saturating_add(self.opts.linger_ns);
            self.retire[0].push(due, i, conn.serial);
            self.next_due = self.next_due.min(due);
            if self.retire[0].len() > self.opts.max_lingering {
                self.retire_oldest(seg.ts_ns, out);
            }
        }
    }

    /// Too many ended connections lingering: hand on the oldest one now.
    fn retire_oldest(&mut self, now_ns: i64, out: &mut dyn FnMut(Box<RawConn>)) {
        while let Some((slot, serial)) = self.retire[0].pop() {
            if self.live.at(slot, serial).is_some() {
                self.retire_slot(slot, now_ns, out);
                return;
            }
        }
    }

    /// Hand on the connection in `slot` and remember its 4-tuple as closed.
    fn retire_slot(&mut self, slot: u32, now_ns: i64, out: &mut dyn FnMut(Box<RawConn>)) {
        if let Some(c) = self.live.remove(slot) {
            self.remember_closed(c.hash, now_ns);
            self.finalize(c, out);
        }
    }

    /// Remember a handed-on connection's 4-tuple by its hash (see
    /// [`AnalyzeOptions::closed_memory_ns`]).
    fn remember_closed(&mut self, hash: u64, now_ns: i64) {
        if self.closed.is_empty() {
            if self.opts.max_closed == 0 {
                return;
            }
            self.closed = vec![(0, i64::MIN); self.opts.max_closed.next_power_of_two()];
        }
        let slot = hash as usize & (self.closed.len() - 1);
        self.closed[slot] = (hash, now_ns.saturating_add(self.opts.closed_memory_ns));
    }

    /// docs/teardown.md: a new SYN (`seg`) on a 4-tuple whose previous connection (in slot
    /// `i`) ended starts a new connection; so does a SYN with another ISN from the same
    /// sender. Then the old one is handed on, and this returns true.
    fn new_epoch(&mut self, i: u32, seg: &Segment, out: &mut dyn FnMut(Box<RawConn>)) -> bool {
        let Some(conn) = self.live.slab[i as usize].as_deref() else {
            return false;
        };
        let from_first = conn.first_src == seg.src;
        let new_epoch = conn.ended()
            || matches!(conn.syn, Some((dir, isn)) if dir == from_first && isn != seg.seq);
        if !new_epoch {
            return false;
        }
        if let Some(old) = self.live.remove(i) {
            self.finalize(old, out);
        }
        true
    }

    /// Hand on every queued connection whose deadline has passed on the capture clock.
    fn retire_due(&mut self, now_ns: i64, out: &mut dyn FnMut(Box<RawConn>)) {
        for q in 0..2 {
            while self.retire[q].earliest().is_some_and(|due| due < now_ns) {
                let Some((slot, serial)) = self.retire[q].pop() else {
                    break;
                };
                // Gone: that connection already went (a new one may hold its slot).
                let Some(conn) = self.live.at(slot, serial) else {
                    continue;
                };
                let complete = conn.complete();
                let linger = if complete {
                    self.opts.linger_ns
                } else {
                    self.opts.linger_unacked_ns
                };
                let due = conn.last_ts.saturating_add(linger);
                if due < now_ns {
                    self.retire_slot(slot, now_ns, out);
                } else {
                    // More packets came, or the final ACK is still missing: look again
                    // later, in the queue that matches its linger.
                    self.retire[usize::from(!complete)].push(due, slot, serial);
                }
            }
        }
    }

    fn finalize(&mut self, mut raw: Box<RawConn>, out: &mut dyn FnMut(Box<RawConn>)) {
        raw.file_start_ns = self.file_start_ns.unwrap_or(0);
        if self.opts.detail == Detail::Verdict {
            // Counts only: order does not matter, skip parking behind older connections.
            out(raw);
        } else {
            let slot = raw.slot;
            self.order.close(slot, raw, out);
        }
    }

    /// Take back classified connections, for new ones: no allocation per connection, and a
    /// retired connection moves as a pointer, not as its 500 bytes (moving them was most of
    /// `--summary`'s memmove).
    fn recycle(&mut self, spent: impl IntoIterator<Item = Box<RawConn>>) {
        for c in spent {
            if self.spare.len() >= 1024 {
                break;
            }
            self.spare.push(c);
        }
    }

    fn finish(mut self, out: &mut dyn FnMut(Box<RawConn>)) {
        let mut rest: Vec<Box<RawConn>> = self.live.drain();
        rest.sort_by_key(|c| c.slot);
        for c in rest {
            self.finalize(c, out);
        }
    }
}

/// Analyse already-decoded segments (numbered 1.. in order). Used by tests and by callers
/// that decode packets themselves.
pub fn analyze_segments(segments: impl IntoIterator<Item = Segment>) -> Vec<Connection> {
    let mut table = Table::new(AnalyzeOptions::default());
    let mut conns = Vec::new();
    let mut out = |raw: Box<RawConn>| {
        conns.push(teardown::finish(&raw, raw.file_start_ns, Detail::Full));
    };
    for (i, seg) in segments.into_iter().enumerate() {
        table.push(i as u64 + 1, &seg, &mut out);
    }
    table.finish(&mut out);
    conns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Flags;
    use crate::seq::SeqNum;

    proptest::proptest! {
        /// The queue pops exactly what one heap ordered by (deadline, queueing) pops, for any
        /// mix of in-order and out-of-order deadlines and pops between them.
        #[test]
        fn deadlines_pop_in_the_order_of_one_heap(ops in proptest::collection::vec(
            proptest::option::of(-5i64..40), 0..200,
        )) {
            let mut q = Deadlines::default();
            let mut heap = std::collections::BinaryHeap::new();
            let mut n = 0u32;
            let mut clock = 0i64;
            for op in ops {
                match op {
                    // Mostly forward, now and then back: a deadline before the last queued.
                    Some(step) => {
                        clock += step;
                        n += 1;
                        q.push(clock, n, u64::from(n));
                        heap.push(std::cmp::Reverse((clock, n)));
                    }
                    None => {
                        proptest::prop_assert_eq!(q.earliest(), heap.peek().map(|e| e.0 .0));
                        let want = heap.pop().map(|e| (e.0 .1, u64::from(e.0 .1)));
                        proptest::prop_assert_eq!(q.pop(), want);
                    }
                }
                proptest::prop_assert_eq!(q.len(), heap.len());
            }
        }
    }

    #[test]
    fn lingering_connections_are_bounded() {
        // Many connections close within the linger time: the table hands the oldest on early
        // instead of holding them all; each is still classified once.
        let mut table = Table::new(AnalyzeOptions {
            max_lingering: 8,
            ..AnalyzeOptions::default()
        });
        let mut n = 0;
        let mut max_live = 0;
        for i in 0..100u16 {
            let c: std::net::SocketAddr = format!("192.0.2.1:{}", 1000 + i).parse().unwrap();
            let s: std::net::SocketAddr = "192.0.2.2:80".parse().unwrap();
            for (from_c, fl, seq, ack) in [
                (true, "S", 1, 0),
                (false, "S.", 1, 2),
                (true, "F.", 2, 2),
                (false, "F.", 2, 3),
                (true, ".", 3, 3),
            ] {
                let (src, dst) = if from_c { (c, s) } else { (s, c) };
                let seg = Segment {
                    ts_ns: i64::from(i) * 1000,
                    src,
                    dst,
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags: Flags(fl.bytes().fold(0, |f, c| {
                        f | match c {
                            b'S' => Flags::SYN,
                            b'F' => Flags::FIN,
                            _ => Flags::ACK,
                        }
                    })),
                    len: 0,
                    window: 1,
                    fingerprint: 0,
                    ip: Default::default(),
                    encap: None,
                };
                table.push(1, &seg, &mut |_| n += 1);
                max_live = max_live.max(table.live.len());
            }
        }
        assert!(max_live <= 9, "{max_live}");
        table.finish(&mut |_| n += 1);
        assert_eq!(n, 100);
    }
}
