//! Kernel modules a scenario may need in a guest, taken from the kernel's own package.
//!
//! Debian's image packages carry the modules but not `modules.dep` (depmod runs at install
//! time, which we never do), so dependencies are read from each module's `.modinfo` section:
//! NUL-separated `key=value` strings, among them `depends=a,b`. Modules are stored
//! uncompressed in the cache (6.12 packages ship `.ko.xz`; 6.1's kernel cannot decompress),
//! so the guest loads any of them with a plain `finit_module(2)`.

use std::collections::BTreeMap;

/// The modules the guest may need, by module name, and where Debian keeps them under
/// `lib/modules/<release>/`. Anything they depend on is fetched as well.
pub const WANTED: &[(&str, &str)] = &[
    // [link] scenarios: the delay link's TUN devices (veth for a relay without TUN).
    ("tun", "kernel/drivers/net/tun.ko"),
    ("veth", "kernel/drivers/net/veth.ko"),
    // sock_diag for the kernel's own socket states (TIME_WAIT is only visible there).
    ("inet_diag", "kernel/net/ipv4/inet_diag.ko"),
    ("tcp_diag", "kernel/net/ipv4/tcp_diag.ko"),
    // IPv6, on kernels where it is modular.
    ("ipv6", "kernel/net/ipv6/ipv6.ko"),
];

/// A module's name (`-` and `_` are the same to the kernel; `_` is canonical).
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` list of a module's `.modinfo` (empty when it depends on nothing).
pub fn depends(ko: &[u8]) -> Vec<String> {
    modinfo(ko, "depends")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(canonical)
                .collect()
        })
        .unwrap_or_default()
}

/// The first value of `key` in a module's `.modinfo` strings. `.modinfo` entries are
/// NUL-terminated `key=value` strings; searching the whole file for `\0key=` finds them
/// without parsing ELF (the string table cannot contain `=` in a section name).
pub fn modinfo(ko: &[u8], key: &str) -> Option<String> {
    let needle = format!("\0{key}=");
    let n = needle.as_bytes();
    let at = ko.windows(n.len()).position(|w| w == n)?;
    let rest = &ko[at + n.len()..];
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Order `modules` (name → its dependencies) so that every module comes after what it
/// depends on. Dependencies that are not in the map are assumed built in.
pub fn load_order(modules: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    fn visit(
        m: &str,
        modules: &BTreeMap<String, Vec<String>>,
        seen: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        if seen.iter().any(|s| s == m) {
            return;
        }
        seen.push(m.to_owned());
        if let Some(deps) = modules.get(m) {
            for d in deps {
                visit(d, modules, seen, out);
            }
            out.push(m.to_owned());
        }
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for m in modules.keys() {
        visit(m, modules, &mut seen, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_depends_from_modinfo() {
        let ko =
            b"\x7fELF....\0license=GPL\0depends=inet_diag,foo-bar\0name=tcp_diag\0vermagic=6.1";
        assert_eq!(depends(ko), ["inet_diag", "foo_bar"]);
        assert_eq!(modinfo(ko, "name").as_deref(), Some("tcp_diag"));
        let none = b"\0license=GPL\0depends=\0name=tun\0";
        assert!(depends(none).is_empty());
        assert!(depends(b"no modinfo at all").is_empty());
    }

    #[test]
    fn dependencies_load_first() {
        let mut m = BTreeMap::new();
        m.insert("tcp_diag".to_owned(), vec!["inet_diag".to_owned()]);
        m.insert("inet_diag".to_owned(), vec![]);
        m.insert("tun".to_owned(), vec!["builtin_thing".to_owned()]);
        assert_eq!(load_order(&m), ["inet_diag", "tcp_diag", "tun"]);
    }
}
