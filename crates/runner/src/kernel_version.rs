//! The running kernel's version, for expectations that differ by kernel
//! (`[expect.since_kernel."6.7"]`): the release string `uname -r` prints, read as
//! major.minor.patch.

use std::fmt;

/// `major.minor.patch` of a kernel release (`6.18.44-fc-v1272` → 6.18.44); compared in that
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// 6 in 6.18.44.
    pub major: u32,
    /// 18 in 6.18.44.
    pub minor: u32,
    /// 44 in 6.18.44 (0 when the release has none).
    pub patch: u32,
}

impl KernelVersion {
    /// Read the leading `major.minor[.patch]` of a release string (`6.1.0-57-cloud-amd64`
    /// → 6.1.0); `None` when it does not start with two numbers.
    pub fn from_release(release: &str) -> Option<KernelVersion> {
        let mut parts = release.trim().splitn(4, '.');
        let number = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            p.get(..digits)?.parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = number(parts.next()).unwrap_or(0);
        Some(KernelVersion {
            major,
            minor,
            patch,
        })
    }

    /// Read a version a scenario names: `6.9` or `6.1.90`, nothing else around it.
    pub fn from_key(key: &str) -> Result<KernelVersion, String> {
        let parts: Vec<&str> = key.split('.').collect();
        let bad = || format!("`{key}` is not a kernel version (write it as 6.9 or 6.1.90)");
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let n = |i: usize| -> Result<u32, String> {
            parts.get(i).map_or(Ok(0), |p| p.parse().map_err(|_| bad()))
        };
        Ok(KernelVersion {
            major: n(0)?,
            minor: n(1)?,
            patch: n(2)?,
        })
    }

    /// The version as a scenario writes it: `6.11`, or `6.1.90` when it has a patch level.
    pub fn as_key(&self) -> String {
        match self.patch {
            0 => format!("{}.{}", self.major, self.minor),
            p => format!("{}.{}.{p}", self.major, self.minor),
        }
    }

    /// The kernel this process runs on (`/proc/sys/kernel/osrelease`), if it can be read.
    /// In a `run --kernel` guest this is the guest's kernel.
    pub fn running() -> Option<KernelVersion> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        KernelVersion::from_release(&release)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> KernelVersion {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn releases_read_as_their_leading_numbers() {
        assert_eq!(
            KernelVersion::from_release("6.18.44-fc-v1272"),
            Some(v(6, 18, 44))
        );
        assert_eq!(
            KernelVersion::from_release("6.1.0-57-cloud-amd64"),
            Some(v(6, 1, 0))
        );
        assert_eq!(KernelVersion::from_release("6.9-rc3\n"), Some(v(6, 9, 0)));
        assert_eq!(KernelVersion::from_release("6.1.192"), Some(v(6, 1, 192)));
        assert_eq!(KernelVersion::from_release("linux"), None);
        assert_eq!(KernelVersion::from_release("6"), None);
    }

    #[test]
    fn keys_are_two_or_three_numbers() {
        assert_eq!(KernelVersion::from_key("6.7"), Ok(v(6, 7, 0)));
        assert_eq!(KernelVersion::from_key("6.1.90"), Ok(v(6, 1, 90)));
        for bad in ["6", "6.x", "6.9-rc1", "v6.9", "6..9", "6.9.1.2", ""] {
            assert!(KernelVersion::from_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn versions_order_numerically() {
        assert!(v(6, 18, 0) > v(6, 9, 0));
        assert!(v(6, 1, 192) < v(6, 7, 0));
        assert!(v(6, 9, 0) >= KernelVersion::from_key("6.9").unwrap());
    }
}
