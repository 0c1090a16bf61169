//! The connection table split over threads, for counts ([`Detail::Verdict`]).
//!
//! Why: on a big capture the one table thread is the pipeline's slowest stage (about 70% of
//! the samples of `analyze --summary` on the bench's 1M-connection file, where the reader
//! has 18% and classification 13%), and its cost is cache misses on a few thousand live
//! connections. Split by a bit of the 4-tuple's hash, each thread follows half the
//! 4-tuples, on its own core and in its own cache, and classifies what it retires.
//!
//! The counts are the ones a single table gives, because nothing a table decides about one
//! 4-tuple depends on another, except three things handled here:
//! - the capture clock: a connection retires at the first TCP segment past its deadline,
//!   whichever 4-tuple that segment belongs to, and the time of that segment starts the
//!   "closed 4-tuple" memory. Every shard therefore runs [`Table::tick`] for every TCP
//!   segment of the file, its own and the others' (one queue-front check each).
//! - the direct-mapped table of closed 4-tuples (`Table::closed`), where two 4-tuples can
//!   share a slot: the shard is chosen by the bits of the hash just above the ones that pick
//!   the slot, and each shard's table has the slots of its share, so exactly the 4-tuples
//!   that share a slot in one table share it in a shard.
//! - the bound on lingering connections (`max_lingering`), which a shard applies to its
//!   own share (the bound divided by the shard count): it is reached only when more than
//!   that many connections end within one linger time, and then a shard may hand a
//!   different connection on early than one table would.
//!
//! Only the order in which connections reach the sink differs (with `Verdict` it is the
//! order they finish anyway). The other levels of detail print connections in first-packet
//! order and keep the single table.

use super::{
    conclude, input, teardown, AnalysisSink, AnalyzeOptions, Connection, DamageTally, Detail,
    FileInfo, Key, RawConn, ReadError, Record, Segment, Table, BATCH, CONN_BATCH,
};
use crate::flow::FlowFilter;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

/// Capacity of a shard's vector of classified connections, sent on at [`CONN_BATCH`].
const OUT_ROOM: usize = 4 * CONN_BATCH;

/// Classified connections a replica sends per message: a wake-up of the caller's thread
/// per 64 cost a tenth of `--summary`'s CPU in the scheduler.
const REPLICA_BATCH: usize = 1024;

/// At most this many table threads (a power of two).
const MAX_SHARDS: usize = 16;

/// How the 4-tuples are spread over the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// Number of shards, a power of two ≥ 2.
    shards: usize,
    /// The shard of a 4-tuple is `(hash >> shift) & (shards - 1)`.
    shift: u32,
    /// `max_closed` of each shard's table (its share of the slots).
    closed_slots: usize,
}

impl Split {
    /// The split `opts` asks for, or None for one table (other levels of detail, one
    /// thread, or a closed-4-tuple table too small to share out exactly).
    pub(super) fn for_options(opts: &AnalyzeOptions) -> Option<Split> {
        if opts.detail != Detail::Verdict {
            return None;
        }
        let wanted = match opts.table_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            n => n.min(MAX_SHARDS),
        };
        // Round down to a power of two: the shard is a few bits of the hash.
        let shards = if wanted.is_power_of_two() {
            wanted
        } else {
            wanted.next_power_of_two() / 2
        };
        if shards < 2 {
            return None;
        }
        if opts.max_closed == 0 {
            // No closed table to keep exact: any bits will do. These are above the ones
            // that pick a bucket of a live table of up to 2^17 buckets.
            return Some(Split {
                shards,
                shift: 17,
                closed_slots: 0,
            });
        }
        let slots = opts.max_closed.next_power_of_two();
        if slots < shards {
            return None;
        }
        let closed_slots = slots / shards;
        Some(Split {
            shards,
            shift: closed_slots.trailing_zeros(),
            closed_slots,
        })
    }

    /// The shard of the 4-tuple whose key has this hash.
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize & (self.shards - 1)
    }

    /// The 4-tuples of shard `me`: those [`Split::shard_of`] gives to it.
    fn filter(&self, me: usize) -> FlowFilter {
        FlowFilter {
            shift: self.shift,
            mask: self.shards as u64 - 1,
            want: me as u64,
        }
    }

    /// The options of one shard's table.
    fn table_options(&self, opts: &AnalyzeOptions) -> AnalyzeOptions {
        AnalyzeOptions {
            max_closed: self.closed_slots,
            max_lingering: (opts.max_lingering / self.shards).max(1),
            ..opts.clone()
        }
    }
}

/// One batch of the file for one shard.
struct ShardBatch {
    /// The time of every TCP segment of the batch, in file order, shared by all shards: each
    /// ticks its table's clock on all of them.
    clock: Arc<Vec<i64>>,
    /// This shard's segments: (index into `clock`, packet number, key hash, segment).
    segments: Vec<(u32, u64, u64, Segment)>,
}

/// What a shard sends back to the caller's thread.
enum FromShard {
    Conns(Vec<Connection>),
    Done { duplicates: u64, after_close: u64 },
}

/// [`analyze_stream`](super::analyze_stream) with the table split: the reader decodes and
/// routes each segment to its shard's thread; each shard tracks and classifies its
/// connections; the caller's thread hands them to the sink.
pub(super) fn analyze_split<'a>(
    mut src: Box<dyn input::PacketSource + Send + 'a>,
    file: FileInfo,
    opts: &AnalyzeOptions,
    split: Split,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    // Bounded, as in the single pipeline: a starved sink thread must hold the shards back,
    // not let classified connections pile up (a loaded machine reached 56 MiB unbounded).
    let (done_tx, done_rx) = sync_channel::<FromShard>(8 * split.shards);
    let (back_tx, back_rx) = channel::<Vec<(u32, u64, u64, Segment)>>();
    let mut to_shards = Vec::with_capacity(split.shards);
    let mut shard_rxs = Vec::with_capacity(split.shards);
    for _ in 0..split.shards {
        let (tx, rx) = sync_channel::<ShardBatch>(8);
        to_shards.push(tx);
        shard_rxs.push(rx);
    }
    let table_opts = split.table_options(opts);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || route_stage(&mut *src, file, split, to_shards, back_rx));
        for rx in shard_rxs {
            let (opts, done, back) = (table_opts.clone(), done_tx.clone(), back_tx.clone());
            scope.spawn(move || shard_stage(opts, rx, done, back));
        }
        drop((done_tx, back_tx));
        let (mut duplicates, mut after_close) = (0, 0);
        for msg in done_rx {
            match msg {
                FromShard::Conns(conns) => conns.into_iter().for_each(|c| sink.connection(c)),
                FromShard::Done {
                    duplicates: d,
                    after_close: a,
                } => {
                    duplicates += d;
                    after_close += a;
                }
            }
        }
        // Every shard has finished, so the reader has too (it ends the shards).
        let (mut file, failed) = match reader.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        file.duplicates = duplicates;
        file.after_close = after_close;
        conclude(sink, file, failed)
    })
}

/// [`analyze_reopen`](super::analyze_reopen) with the table split: every shard's thread
/// reads the whole input itself (`open` gives each its own reader from the start), decodes
/// it, and keeps its own 4-tuples; the clock ticks on all. Nothing passes between threads
/// but classified connections, so on two cores the two threads share the work with no
/// third thread to feed them (the reader of [`analyze_split`] was a third of the CPU).
/// Shard 0's reader also counts the file (packets, non-TCP, damage, reader warnings), which
/// every shard reads alike.
pub(super) fn analyze_replicated<R: std::io::BufRead + Send>(
    open: &(dyn Fn() -> std::io::Result<R> + Sync),
    file: FileInfo,
    opts: &AnalyzeOptions,
    split: Split,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    let (done_tx, done_rx) = sync_channel::<FromShard>(4 * split.shards);
    // Emptied vectors go back to the replicas (whichever takes one first).
    let (empty_tx, empty_rx) = sync_channel::<Vec<Connection>>(4 * split.shards);
    let empty_rx = std::sync::Mutex::new(empty_rx);
    let table_opts = split.table_options(opts);
    std::thread::scope(|scope| {
        let mut shards = Vec::with_capacity(split.shards);
        for me in 0..split.shards {
            let (opts, done) = (table_opts.clone(), done_tx.clone());
            let file = file.clone();
            let empty = &empty_rx;
            shards
                .push(scope.spawn(move || replica_stage(open, file, opts, split, me, done, empty)));
        }
        drop(done_tx);
        let (mut duplicates, mut after_close) = (0, 0);
        for msg in done_rx {
            match msg {
                FromShard::Conns(mut conns) => {
                    conns.drain(..).for_each(|c| sink.connection(c));
                    let _ = empty_tx.try_send(conns);
                }
                FromShard::Done {
                    duplicates: d,
                    after_close: a,
                } => {
                    duplicates += d;
                    after_close += a;
                }
            }
        }
        let mut first = None;
        for shard in shards {
            let r = match shard.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            first.get_or_insert(r);
        }
        let Some((mut file, failed)) = first else {
            unreachable!("a split has at least two shards")
        };
        file.duplicates = duplicates;
        file.after_close = after_close;
        conclude(sink, file, failed)
    })
}

/// One shard reading the whole input: its 4-tuples into its table, classified as they
/// retire; the others only tick the clock. Returns the file's counts (all but the tables'
/// own) and the read error, if any.
fn replica_stage<R: std::io::BufRead + Send>(
    open: &(dyn Fn() -> std::io::Result<R> + Sync),
    mut file: FileInfo,
    opts: AnalyzeOptions,
    split: Split,
    me: usize,
    done: SyncSender<FromShard>,
    empty: &std::sync::Mutex<Receiver<Vec<Connection>>>,
) -> (FileInfo, Option<ReadError>) {
    let mut src = match open().map_err(|source| ReadError::Io { offset: 0, source }) {
        Ok(r) => match input::open(r) {
            Ok(src) => src,
            Err(e) => return (file, Some(e)),
        },
        Err(e) => return (file, Some(e)),
    };
    let mine = split.filter(me);
    src.keep_only(mine);
    let mut table = Table::new(opts);
    let mut damage = DamageTally::default();
    let mut out: Vec<Connection> = Vec::with_capacity(REPLICA_BATCH + OUT_ROOM);
    let mut spent: Vec<Box<RawConn>> = Vec::new();
    let failed = loop {
        let record = match src.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        file.packets += 1;
        let mut hand_on = classify(&mut out, &mut spent);
        match record {
            Record::Tcp(seg) => {
                // The reader returns whole what it could not filter (tunnels, text).
                let key = Key::of(&seg);
                let hash = key.hash64();
                if mine.keeps(hash) {
                    table.push_keyed(file.packets, &seg, key, hash, &mut hand_on);
                } else {
                    table.tick(seg.ts_ns, &mut hand_on);
                }
            }
            Record::Elsewhere { ts_ns } => table.tick(ts_ns, &mut hand_on),
            Record::NonTcp => file.non_tcp += 1,
            Record::Fragment => {}
            Record::Damaged { layer, reason } => {
                if me == 0 {
                    damage.add(file.packets, layer, reason)
                }
            }
        }
        drop(hand_on);
        if !spent.is_empty() {
            table.recycle(spent.drain(..));
            if out.len() >= REPLICA_BATCH {
                let next = empty
                    .lock()
                    .ok()
                    .and_then(|rx| rx.try_recv().ok())
                    .unwrap_or_else(|| Vec::with_capacity(REPLICA_BATCH + OUT_ROOM));
                let conns = std::mem::replace(&mut out, next);
                if done.send(FromShard::Conns(conns)).is_err() {
                    return (file, None);
                }
            }
        }
    };
    if me == 0 {
        file.warnings.extend(damage.into_warnings());
        if failed.is_none() {
            file.warnings.extend(src.take_warnings());
        }
    }
    let (duplicates, after_close) = (table.duplicates, table.after_close);
    table.finish(&mut classify(&mut out, &mut spent));
    let _ = done.send(FromShard::Conns(out));
    let _ = done.send(FromShard::Done {
        duplicates,
        after_close,
    });
    (file, failed)
}

/// The reader: decode, count what is not TCP, and send each segment to its shard. Returns
/// the file's counts (all but the tables' own) and the read error, if any.
fn route_stage(
    src: &mut (dyn input::PacketSource + Send),
    mut file: FileInfo,
    split: Split,
    shards: Vec<SyncSender<ShardBatch>>,
    back: Receiver<Vec<(u32, u64, u64, Segment)>>,
) -> (FileInfo, Option<ReadError>) {
    let mut damage = DamageTally::default();
    let mut clock: Vec<i64> = Vec::with_capacity(BATCH);
    let mut parts: Vec<Vec<(u32, u64, u64, Segment)>> = (0..split.shards)
        .map(|_| Vec::with_capacity(BATCH))
        .collect();
    let send = |clock: &mut Vec<i64>, parts: &mut Vec<Vec<(u32, u64, u64, Segment)>>| {
        let shared = Arc::new(std::mem::replace(clock, Vec::with_capacity(BATCH)));
        for (tx, part) in shards.iter().zip(parts.iter_mut()) {
            let next = back
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let batch = ShardBatch {
                clock: Arc::clone(&shared),
                segments: std::mem::replace(part, next),
            };
            // A shard ends only after the reader's last batch, or by panicking, which the
            // scope re-raises: nothing to do here.
            let _ = tx.send(batch);
        }
    };
    let failed = loop {
        match src.next_record() {
            Ok(Some(record)) => {
                file.packets += 1;
                match record {
                    Record::Tcp(seg) => {
                        let hash = Key::of(&seg).hash64();
                        let at = clock.len() as u32;
                        clock.push(seg.ts_ns);
                        parts[split.shard_of(hash)].push((at, file.packets, hash, seg));
                        if clock.len() == BATCH {
                            send(&mut clock, &mut parts);
                        }
                    }
                    // Not asked for (no filter here), but its time is a clock tick all the same.
                    Record::Elsewhere { ts_ns } => {
                        clock.push(ts_ns);
                        if clock.len() == BATCH {
                            send(&mut clock, &mut parts);
                        }
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
    if !clock.is_empty() {
        send(&mut clock, &mut parts);
    }
    // Dropping the senders ends the shards, which then hand on what they still hold.
    drop(shards);
    // As the single pipeline does: damage first, then the reader's own warnings, which a
    // failed read does not have.
    file.warnings.extend(damage.into_warnings());
    if failed.is_none() {
        file.warnings.extend(src.take_warnings());
    }
    (file, failed)
}

/// One shard: its share of the 4-tuples in a [`Table`] of its own, classified as they
/// retire.
fn shard_stage(
    opts: AnalyzeOptions,
    rx: Receiver<ShardBatch>,
    done: SyncSender<FromShard>,
    back: Sender<Vec<(u32, u64, u64, Segment)>>,
) {
    let mut table = Table::new(opts);
    // Room for a batch's retirements past the threshold: growing the vector (a realloc and
    // a copy of every connection in it) was a tenth of the shards' memmove.
    let mut out: Vec<Connection> = Vec::with_capacity(OUT_ROOM);
    // Classified connections, given back to the table after each batch.
    let mut spent: Vec<Box<RawConn>> = Vec::new();
    for batch in rx {
        let ShardBatch {
            clock,
            mut segments,
        } = batch;
        let mut hand_on = classify(&mut out, &mut spent);
        let mut next = 0usize;
        // By reference, then cleared: moving each 100-byte segment out cost a memmove each.
        for (at, number, hash, seg) in &segments {
            let at = *at as usize;
            for &now in &clock[next..at] {
                table.tick(now, &mut hand_on);
            }
            table.push_keyed(*number, seg, Key::of(seg), *hash, &mut hand_on);
            next = at + 1;
        }
        segments.clear();
        for &now in &clock[next..] {
            table.tick(now, &mut hand_on);
        }
        drop(hand_on);
        let _ = back.send(segments);
        table.recycle(spent.drain(..));
        if out.len() >= CONN_BATCH {
            let conns = std::mem::replace(&mut out, Vec::with_capacity(OUT_ROOM));
            if done.send(FromShard::Conns(conns)).is_err() {
                return;
            }
        }
    }
    let (duplicates, after_close) = (table.duplicates, table.after_close);
    table.finish(&mut classify(&mut out, &mut spent));
    let _ = done.send(FromShard::Conns(out));
    let _ = done.send(FromShard::Done {
        duplicates,
        after_close,
    });
}

/// A shard's hand-on: classify the retired connection there and then, keep its packet
/// buffer for the table to reuse.
fn classify<'a>(
    out: &'a mut Vec<Connection>,
    spent: &'a mut Vec<Box<RawConn>>,
) -> impl FnMut(Box<RawConn>) + 'a {
    move |raw: Box<RawConn>| {
        out.push(teardown::finish(&raw, raw.file_start_ns, Detail::Verdict));
        spent.push(raw);
    }
}
