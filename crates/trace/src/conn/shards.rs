//! The connection table split over threads, for counts ([`Detail::Verdict`]).
//!
//! Why: on a big capture the table is the pipeline's slowest stage, and its cost is cache
//! misses on a few thousand live connections. Split by bits of the 4-tuple's hash, each
//! thread follows its share of the 4-tuples, on its own core and in its own cache, and
//! classifies what it retires.
//!
//! Every shard's thread reads the whole input itself: a file through a reader of its own, a
//! stream once, shared in chunks ([`SharedInput`](crate::input::shared::SharedInput));
//! each thread with its own decoder, told to keep only its
//! share ([`PacketSource::keep_only`](crate::input::PacketSource::keep_only)): another share's segment comes back as its time
//! alone ([`Record::Elsewhere`]) as soon as its addresses are read. Nothing passes between
//! the threads but classified connections; a reader thread routing decoded segments to
//! the shards (the design before) was a third of the CPU, and on two cores a third busy
//! thread.
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
//! The file's own counts (packets, non-TCP, damage, the reader's warnings) are the same in
//! every shard's reading; shard 0's are reported. Only the order in which connections
//! reach the sink differs (with `Verdict` it is the order they finish anyway). The other
//! levels of detail print connections in first-packet order and keep the single table.

use super::{
    conclude, flow_hash_of, input, teardown, AnalysisSink, AnalyzeOptions, Connection, DamageTally,
    Detail, FileInfo, RawConn, ReadError, Record, Table,
};
use crate::flow::FlowFilter;
use crate::summary::Summary;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

/// Classified connections a shard sends per message: a wake-up of the caller's thread per
/// 64 cost a tenth of `--summary`'s CPU in the scheduler.
const CONNS_PER_MESSAGE: usize = 1024;

/// Room past [`CONNS_PER_MESSAGE`] in a shard's vector: one clock tick can retire several.
const OUT_ROOM: usize = CONNS_PER_MESSAGE + 256;

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

    /// The shards.
    pub(super) fn shards(&self) -> usize {
        self.shards
    }

    /// The 4-tuples of shard `me`: those whose hash has `me` in the bits above `shift`.
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

/// What a shard sends back to the caller's thread.
enum FromShard {
    Conns(Vec<Connection>),
    /// The counts of its connections, when the sink wants only those
    /// ([`AnalysisSink::counts_only`]).
    Counts(Summary),
    Done {
        duplicates: u64,
        after_close: u64,
    },
}

/// [`analyze_stream`](super::analyze_stream) with the table split: `readers(i)` is shard
/// `i`'s reader of the whole input from its start (its own reading of a file, or its share
/// of one reading of a stream). Each shard's thread reads, decodes and tracks its share and
/// classifies what it retires; the caller's thread hands the connections to the sink.
pub(super) fn analyze_split<R: BufRead + Send>(
    readers: &(dyn Fn(usize) -> std::io::Result<R> + Sync),
    file: FileInfo,
    opts: &AnalyzeOptions,
    split: Split,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, ReadError> {
    // Bounded: a starved sink must hold the shards back, not let connections pile up.
    let (done_tx, done_rx) = sync_channel::<FromShard>(4 * split.shards);
    // Emptied vectors go back to the shards (whichever takes one first).
    let (empty_tx, empty_rx) = sync_channel::<Vec<Connection>>(4 * split.shards);
    let empty_rx = Mutex::new(empty_rx);
    let table_opts = split.table_options(opts);
    let counts_only = sink.counts_only();
    std::thread::scope(|scope| {
        let mut shards = Vec::with_capacity(split.shards);
        for me in 0..split.shards {
            let (opts, file) = (table_opts.clone(), file.clone());
            let to_caller = ToCaller {
                done: done_tx.clone(),
                empty: &empty_rx,
                counts: counts_only.then(Summary::default),
            };
            shards.push(scope.spawn(move || {
                let reader = readers(me).map_err(|source| ReadError::Io { offset: 0, source });
                shard_stage(reader, file, opts, split.filter(me), me == 0, to_caller)
            }));
        }
        drop(done_tx);
        let (mut duplicates, mut after_close) = (0, 0);
        let mut counts = Summary::default();
        for msg in done_rx {
            match msg {
                FromShard::Conns(mut conns) => {
                    conns.drain(..).for_each(|c| sink.connection(c));
                    let _ = empty_tx.try_send(conns);
                }
                FromShard::Counts(summary) => counts.merge(&summary),
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
        if counts_only {
            sink.counts(&counts);
        }
        conclude(sink, file, failed)
    })
}

/// Where a shard's classified connections go: to the caller's thread in batches (`done`,
/// with emptied vectors coming back through `empty`), or into `counts` when the sink takes
/// counts only.
struct ToCaller<'a> {
    done: SyncSender<FromShard>,
    empty: &'a Mutex<Receiver<Vec<Connection>>>,
    counts: Option<Summary>,
}

/// One shard reading the whole input: its 4-tuples into its table, classified as they
/// retire; the others only tick the clock. `counts_file`: this shard's counts of the file
/// (damage, the reader's warnings) are the ones reported. Returns the file's counts (all
/// but the tables' own) and the read error, if any.
fn shard_stage<R: BufRead + Send>(
    reader: Result<R, ReadError>,
    mut file: FileInfo,
    opts: AnalyzeOptions,
    mine: FlowFilter,
    counts_file: bool,
    mut to_caller: ToCaller<'_>,
) -> (FileInfo, Option<ReadError>) {
    // The caller read the same header already, so this fails only if the input does.
    let mut src = match reader.and_then(input::open) {
        Ok(src) => src,
        Err(e) => return (file, Some(e)),
    };
    src.keep_only(mine);
    let mut table = Table::new(opts);
    let mut damage = DamageTally::default();
    let mut out: Vec<Connection> = Vec::with_capacity(OUT_ROOM);
    let mut spent: Vec<Box<RawConn>> = Vec::new();
    let failed = loop {
        let record = match src.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        file.packets += 1;
        let mut hand_on = classify(&mut out, &mut to_caller.counts, &mut spent);
        // By reference: moving the 120-byte segment out of the record cost a copy a packet.
        match &record {
            Record::Tcp(seg) => {
                // The reader returns whole what it could not filter (tunnels, text).
                let hash = flow_hash_of(seg);
                if mine.keeps(hash) {
                    table.push_hashed(file.packets, seg, hash, &mut hand_on);
                } else {
                    table.tick(seg.ts_ns, &mut hand_on);
                }
            }
            Record::Elsewhere { ts_ns } => table.tick(*ts_ns, &mut hand_on),
            Record::NonTcp => file.non_tcp += 1,
            Record::Fragment => {}
            Record::Damaged { layer, reason } => {
                if counts_file {
                    damage.add(file.packets, layer, reason.clone())
                }
            }
        }
        drop(hand_on);
        if !spent.is_empty() {
            table.recycle(spent.drain(..));
            if out.len() >= CONNS_PER_MESSAGE {
                let next = to_caller
                    .empty
                    .lock()
                    .ok()
                    .and_then(|rx| rx.try_recv().ok())
                    .unwrap_or_else(|| Vec::with_capacity(OUT_ROOM));
                let conns = std::mem::replace(&mut out, next);
                if to_caller.done.send(FromShard::Conns(conns)).is_err() {
                    return (file, None);
                }
            }
        }
    };
    if counts_file {
        file.warnings.extend(damage.into_warnings());
        if failed.is_none() {
            file.warnings.extend(src.take_warnings());
        }
    }
    let (duplicates, after_close) = (table.duplicates, table.after_close);
    table.finish(&mut classify(&mut out, &mut to_caller.counts, &mut spent));
    let done = to_caller.done;
    let _ = done.send(FromShard::Conns(out));
    if let Some(counts) = to_caller.counts {
        let _ = done.send(FromShard::Counts(counts));
    }
    let _ = done.send(FromShard::Done {
        duplicates,
        after_close,
    });
    (file, failed)
}

/// A shard's hand-on: classify the retired connection there and then (into `out`, or only
/// count it into `counts`), keep it for the table to reuse.
fn classify<'a>(
    out: &'a mut Vec<Connection>,
    counts: &'a mut Option<Summary>,
    spent: &'a mut Vec<Box<RawConn>>,
) -> impl FnMut(Box<RawConn>) + 'a {
    move |raw: Box<RawConn>| {
        match counts {
            Some(counts) => counts.add_teardown(&teardown::teardown_of(&raw)),
            None => out.push(teardown::finish(&raw, raw.file_start_ns, Detail::Verdict)),
        }
        spent.push(raw);
    }
}
