//! stdout for commands whose real output is a results tree: a reader that goes away
//! (`tcplab run … | head -1`, `| true`) must not stop the work it is only watching.

use std::io::{self, Write};

/// Writes through to `inner` until the reader closes the pipe; from then on every write is
/// dropped (and said to succeed), so the command finishes its work and exits with the code
/// that work deserves, quietly. Any other write error is returned as usual.
#[derive(Debug)]
pub struct UntilClosed<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> UntilClosed<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        UntilClosed {
            inner,
            closed: false,
        }
    }

    fn absorb(&mut self, r: io::Result<usize>, len: usize) -> io::Result<usize> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(len)
            }
            r => r,
        }
    }
}

impl<W: Write> Write for UntilClosed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.absorb(r, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush().map(|()| 0);
        self.absorb(r, 0).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that went away after `left` bytes.
    struct Pipe {
        left: usize,
        got: Vec<u8>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_drops_the_rest_and_nothing_fails() {
        let mut w = UntilClosed::new(Pipe {
            left: 4,
            got: Vec::new(),
        });
        writeln!(w, "first line").unwrap();
        writeln!(w, "second line").unwrap();
        w.flush().unwrap();
        assert!(w.closed);
        assert_eq!(w.inner.got, b"firs");
    }
}
