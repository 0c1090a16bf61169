//! The kernel release written into a bzImage, read without booting it.
//!
//! The x86 boot protocol (Documentation/arch/x86/boot.rst) puts a setup header at 0x1f1:
//! `HdrS` at 0x202 and, at 0x20e, `kernel_version`: the offset (minus 0x200) of a
//! NUL-terminated string such as `6.1.0-57-cloud-amd64 (debian-kernel@…) #1 SMP …`. Its first
//! word is what `uname -r` prints once the kernel runs.

use std::path::Path;

/// The release of the bzImage at `path` (`6.1.0-57-cloud-amd64`), or why it cannot be read.
pub fn release_of(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    release_from_bytes(&bytes).ok_or_else(|| {
        format!(
            "{}: not an x86 bzImage (no setup header with a kernel version)",
            path.display()
        )
    })
}

/// [`release_of`] on bytes already read.
pub fn release_from_bytes(b: &[u8]) -> Option<String> {
    if b.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([*b.get(0x20e)?, *b.get(0x20f)?]) as usize;
    if ptr == 0 {
        return None;
    }
    let start = ptr + 0x200;
    let tail = b.get(start..)?;
    let end = tail.iter().take(512).position(|&c| c == 0)?;
    let text = std::str::from_utf8(&tail[..end]).ok()?;
    let release = text.split_whitespace().next()?;
    let sane = !release.is_empty()
        && release
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
    sane.then(|| release.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(version: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        let ptr: u16 = 0x0c00 - 0x200;
        b[0x20e..0x210].copy_from_slice(&ptr.to_le_bytes());
        b[0x0c00..0x0c00 + version.len()].copy_from_slice(version.as_bytes());
        b
    }

    #[test]
    fn reads_the_release_word() {
        let b = image("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(
            release_from_bytes(&b).as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        let b = image("6.12.117+deb12-cloud-amd64 (x) #1");
        assert_eq!(
            release_from_bytes(&b).as_deref(),
            Some("6.12.117+deb12-cloud-amd64")
        );
    }

    #[test]
    fn refuses_what_is_not_a_bzimage() {
        assert_eq!(release_from_bytes(b"\x7fELF"), None);
        let mut b = image("6.1.0");
        b[0x202] = b'X';
        assert_eq!(release_from_bytes(&b), None);
        let mut b = image("6.1.0");
        b[0x20e] = 0;
        b[0x20f] = 0;
        assert_eq!(release_from_bytes(&b), None);
        assert_eq!(release_from_bytes(&image("bad/name x")), None);
    }
}
