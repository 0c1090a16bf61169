//! One input read once for several readers, each of which sees all of it from the start:
//! the table threads of a split `analyze --summary` (`conn/shards.rs`) each decode the
//! whole input, and a stream (stdin, a pipe) can be read only once. The bytes come in
//! chunks that all readers share. (A regular file is better read by each thread itself,
//! `analyze_reopen`: none then waits for another's reading.)
//!
//! Memory is bounded: a reader that gets [`AHEAD`] chunks ahead of the slowest waits for
//! it. A reader that is dropped early (its thread gave up) stops holding the others back.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;

/// Chunks held at most: how far the fastest reader may run ahead of the slowest (a reader
/// descheduled for a moment on a busy machine should not stop the others at once).
const AHEAD: usize = 32;

/// An input shared by `readers` readers ([`SharedInput::reader`]).
#[derive(Debug)]
pub struct SharedInput<R> {
    state: Mutex<State<R>>,
    /// Signalled when a chunk is read or freed.
    changed: Condvar,
}

#[derive(Debug)]
struct State<R> {
    src: R,
    /// Chunks still needed by some reader; `chunks[0]` is chunk number `first`.
    chunks: VecDeque<Arc<Vec<u8>>>,
    first: u64,
    /// The next chunk of each reader (None: dropped).
    next: Vec<Option<u64>>,
    /// The source ended (an empty chunk follows the last) or failed.
    end: Option<End>,
    /// Buffers of freed chunks, to read the next ones into.
    spare: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
enum End {
    Eof,
    Failed(io::ErrorKind, String),
}

impl<R: Read> SharedInput<R> {
    /// Share `src` among `readers` readers, numbered `0..readers`.
    pub fn new(src: R, readers: usize) -> SharedInput<R> {
        SharedInput {
            state: Mutex::new(State {
                src,
                chunks: VecDeque::new(),
                first: 0,
                next: vec![Some(0); readers],
                end: None,
                spare: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Reader number `id` (each number once), from the start of the input.
    pub fn reader(&self, id: usize) -> SharedReader<'_, R> {
        SharedReader {
            shared: self,
            id,
            chunk: Arc::new(Vec::new()),
            pos: 0,
            at_end: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // A reader that panicked mid-read left nothing half-done worth refusing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reader `id`'s next chunk (empty at the end).
    fn next_chunk(&self, id: usize) -> io::Result<Arc<Vec<u8>>> {
        let mut st = self.lock();
        loop {
            let Some(k) = st.next.get(id).copied().flatten() else {
                return Ok(Arc::new(Vec::new()));
            };
            let held = st.first + st.chunks.len() as u64;
            if k < held {
                let chunk = Arc::clone(&st.chunks[(k - st.first) as usize]);
                st.next[id] = Some(k + 1);
                st.free_taken();
                self.changed.notify_all();
                return Ok(chunk);
            }
            match &st.end {
                Some(End::Eof) => return Ok(Arc::new(Vec::new())),
                Some(End::Failed(kind, msg)) => return Err(io::Error::new(*kind, msg.clone())),
                None => {}
            }
            if st.chunks.len() >= AHEAD {
                // Too far ahead of the slowest reader: wait for it to take the oldest.
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Read the next chunk (under the lock: the other readers would wait for it
            // anyway, or have chunks in hand to work on).
            let mut buf = st.spare.pop().unwrap_or_default();
            buf.clear();
            // `take` + `read_to_end` fills the spare capacity without zeroing it first.
            if let Err(e) = (&mut st.src).take(CHUNK as u64).read_to_end(&mut buf) {
                st.end = Some(End::Failed(e.kind(), e.to_string()));
            }
            if buf.is_empty() {
                st.end.get_or_insert(End::Eof);
                self.changed.notify_all();
                continue;
            }
            st.chunks.push_back(Arc::new(buf));
            self.changed.notify_all();
        }
    }

    fn drop_reader(&self, id: usize) {
        let mut st = self.lock();
        if let Some(n) = st.next.get_mut(id) {
            *n = None;
        }
        st.free_taken();
        self.changed.notify_all();
    }
}

impl<R> State<R> {
    /// Free the chunks every live reader has taken (their buffers are reused once the
    /// readers let go of them too).
    fn free_taken(&mut self) {
        let slowest = self.next.iter().flatten().min().copied();
        let keep_from = slowest.unwrap_or(self.first + self.chunks.len() as u64);
        while self.first < keep_from {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.first += 1;
            if let Ok(buf) = Arc::try_unwrap(chunk) {
                if self.spare.len() < 4 {
                    self.spare.push(buf);
                }
            }
        }
    }
}

/// One reader of a [`SharedInput`]: the whole input from its start.
#[derive(Debug)]
pub struct SharedReader<'a, R: Read> {
    shared: &'a SharedInput<R>,
    id: usize,
    chunk: Arc<Vec<u8>>,
    pos: usize,
    at_end: bool,
}

impl<R: Read> Read for SharedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for SharedReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.chunk.len() && !self.at_end {
            self.chunk = self.shared.next_chunk(self.id)?;
            self.pos = 0;
            self.at_end = self.chunk.is_empty();
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

impl<R: Read> Drop for SharedReader<'_, R> {
    fn drop(&mut self) {
        self.shared.drop_reader(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out its bytes a few at a time, then fails or ends.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.bytes.len() {
                return if self.fail {
                    Err(io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(777).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn every_reader_reads_everything_in_order() {
        // Longer than AHEAD chunks, so the fast readers have to wait for the slow one.
        let bytes = pattern(CHUNK * (AHEAD + 3) + 12345);
        let shared = SharedInput::new(
            Trickle {
                bytes: bytes.clone(),
                at: 0,
                fail: false,
            },
            3,
        );
        std::thread::scope(|s| {
            for id in 0..3 {
                let (shared, bytes) = (&shared, &bytes);
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut r = shared.reader(id);
                    // Reader 2 reads in odd small pieces, slowly.
                    if id == 2 {
                        let mut buf = [0u8; 4093];
                        loop {
                            let n = r.read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    } else {
                        r.read_to_end(&mut got).unwrap();
                    }
                    assert!(got == *bytes, "reader {id}: {} bytes", got.len());
                });
            }
        });
        let st = shared.lock();
        assert!(st.chunks.is_empty(), "{} chunks left", st.chunks.len());
    }

    #[test]
    fn a_reader_dropped_early_holds_nobody_back() {
        let bytes = pattern(CHUNK * (AHEAD + 5));
        let shared = SharedInput::new(
            Trickle {
                bytes: bytes.clone(),
                at: 0,
                fail: false,
            },
            2,
        );
        let mut quitter = shared.reader(1);
        let mut first = [0u8; 10];
        quitter.read_exact(&mut first).unwrap();
        drop(quitter);
        let mut got = Vec::new();
        shared.reader(0).read_to_end(&mut got).unwrap();
        assert!(got == bytes);
    }

    #[test]
    fn a_failed_read_reaches_every_reader_where_it_happened() {
        let bytes = pattern(CHUNK + 10);
        let shared = SharedInput::new(
            Trickle {
                bytes: bytes.clone(),
                at: 0,
                fail: true,
            },
            2,
        );
        for id in 0..2 {
            let mut got = Vec::new();
            let err = shared.reader(id).read_to_end(&mut got).unwrap_err();
            assert_eq!(err.to_string(), "disk on fire");
            assert!(
                got == bytes,
                "reader {id} got {} bytes before it",
                got.len()
            );
        }
    }
}
