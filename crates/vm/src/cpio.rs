//! The `newc` cpio format, which is what the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII-hex header,
//! the NUL-terminated name, the data, each padded to 4 bytes; `TRAILER!!!` ends the archive.
//! Only what an initramfs needs: directories, regular files, symlinks.

use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

/// What an entry is (the file-type bits of `st_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (the data is the target).
    Symlink,
    /// A character device node (major, minor): `/dev/console` must exist before `/init`
    /// runs, or init starts without stdin/stdout/stderr.
    CharDev(u32, u32),
}

impl Kind {
    fn mode_bits(self) -> u32 {
        match self {
            Kind::Dir => 0o040000,
            Kind::File => 0o100000,
            Kind::Symlink => 0o120000,
            Kind::CharDev(..) => 0o020000,
        }
    }
}

/// Writes a newc archive entry by entry. Every entry belongs to root; times are 0, so the
/// same inputs give the same bytes.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> Writer<W> {
    /// An archive written to `out`.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// Add a directory (`perm` like 0o755). Parents must come first.
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, Kind::Dir, perm, &[])
    }

    /// Add a regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, Kind::File, perm, data)
    }

    /// Add a symbolic link `name` → `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, Kind::Symlink, 0o777, target.as_bytes())
    }

    /// Add a character device node.
    pub fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, Kind::CharDev(major, minor), perm, &[])
    }

    /// Add one entry. `name` is relative to the archive root, without a leading `/`.
    pub fn entry(&mut self, name: &str, kind: Kind, perm: u32, data: &[u8]) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        if name.is_empty() || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad cpio entry name {name:?}"),
            ));
        }
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {} bytes is too large for cpio", data.len()),
            )
        })?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if kind == Kind::Dir { 2 } else { 1 };
        let rdev = match kind {
            Kind::CharDev(major, minor) => (major, minor),
            _ => (0, 0),
        };
        self.header(
            name,
            ino,
            kind.mode_bits() | (perm & 0o7777),
            nlink,
            size,
            rdev,
        )?;
        self.put(data)?;
        self.pad()
    }

    /// Write the trailer and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(TRAILER, 0, 0, 1, 0, (0, 0))?;
        self.pad()?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        size: u32,
        (rdev_major, rdev_minor): (u32, u32),
    ) -> io::Result<()> {
        let namesize = name.len() + 1;
        let fields: [u32; 13] = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev_major,
            rdev_minor,
            namesize as u32,
            0, // check
        ];
        let mut h = String::with_capacity(110);
        h.push_str(MAGIC);
        for f in fields {
            h.push_str(&format!("{f:08X}"));
        }
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..n])
    }
}

/// The entries of a newc archive: (name, kind, data). For tests and `tcplab` self-checks.
pub fn read(mut b: &[u8]) -> io::Result<Vec<(String, Kind, Vec<u8>)>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        if b.len() < 110 || &b[..6] != MAGIC.as_bytes() {
            return Err(bad("not a newc header"));
        }
        let field = |i: usize| -> io::Result<u32> {
            let s = std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).map_err(|_| bad("hex"))?;
            u32::from_str_radix(s, 16).map_err(|_| bad("hex"))
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let namesize = field(11)? as usize;
        let name_end = 110 + namesize;
        if b.len() < name_end || namesize == 0 {
            return Err(bad("truncated name"));
        }
        let name = String::from_utf8_lossy(&b[110..name_end - 1]).into_owned();
        let data_start = (off + name_end).next_multiple_of(4) - off;
        let data_end = data_start + size;
        if b.len() < data_end {
            return Err(bad("truncated data"));
        }
        if name == TRAILER {
            return Ok(out);
        }
        let kind = match mode & 0o170000 {
            0o040000 => Kind::Dir,
            0o020000 => Kind::CharDev(field(9)?, field(10)?),
            0o120000 => Kind::Symlink,
            _ => Kind::File,
        };
        out.push((name, kind, b[data_start..data_end].to_vec()));
        let next = (off + data_end).next_multiple_of(4) - off;
        off += next;
        b = &b[next.min(b.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding() {
        let mut w = Writer::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.file("bin/a", 0o755, b"12345").unwrap();
        w.symlink("init", "bin/a").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        w.chardev("console", 0o600, 5, 1).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read(&bytes).unwrap();
        let names: Vec<_> = entries.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("bin", Kind::Dir),
                ("bin/a", Kind::File),
                ("init", Kind::Symlink),
                ("empty", Kind::File),
                ("console", Kind::CharDev(5, 1))
            ]
        );
        assert_eq!(entries[1].2, b"12345");
        assert_eq!(entries[2].2, b"bin/a");
    }

    #[test]
    fn header_layout_matches_the_kernel_format() {
        let mut w = Writer::new(Vec::new());
        w.file("x", 0o600, b"ab").unwrap();
        let bytes = w.finish().unwrap();
        // magic, ino 1, mode 0100600
        assert_eq!(&bytes[..22], b"0707010000000100008180");
        // name "x\0" at 110, padded to 112, then the data
        assert_eq!(&bytes[110..112], b"x\0");
        assert_eq!(&bytes[112..114], b"ab");
    }

    #[test]
    fn bad_names_are_refused() {
        let mut w = Writer::new(Vec::new());
        assert!(w.file("", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}
