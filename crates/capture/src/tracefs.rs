//! A private ftrace instance: the kernel's own trace ring buffer, with only our events.
//!
//! Why not perf: on an idle machine perf_event_open silently missed tracepoint hits that ran
//! in softirq on the idle task (no PERF_RECORD_LOST, no THROTTLE), while an ftrace instance
//! with the same events enabled recorded every one of them (see [`crate::ktrace`]).
//!
//! tracefs is mounted in the private mount namespace of a short-lived thread (`/` made
//! private first: nothing propagates, the host's mount table is never touched). The thread
//! creates `instances/tcplab-<pid>-<n>`, enables and filters the events there, opens each
//! CPU's `trace_pipe_raw` and an `O_PATH` handle on `instances/`, and ends; the open files
//! keep the (now detached) mount alive. Dropping the [`Instance`] closes the pipes and removes
//! the instance through that handle, which disables its events. An instance left by a killed
//! process (its pid gone) is removed by the next one created.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU32, Ordering};

const TRACEFS: &str = "/sys/kernel/tracing";
const PREFIX: &str = "tcplab-";

/// One ftrace instance of ours, recording until dropped.
#[derive(Debug)]
pub(crate) struct Instance {
    /// Each online CPU's `trace_pipe_raw`, non-blocking.
    pipes: Vec<File>,
    /// `O_PATH` handle on `instances/` of the detached tracefs mount.
    instances: File,
    name: String,
}

/// An event to enable: `group/name`, with a filter or none.
pub(crate) struct EventSpec<'a> {
    pub path: &'a str,
    pub filter: Option<&'a str>,
}

impl Instance {
    /// Create the instance with `events` enabled, stamped on CLOCK_MONOTONIC (`mono`).
    pub(crate) fn create(events: &[EventSpec<'_>], cpus: &[i32]) -> Result<Instance, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let events: Vec<(String, Option<String>)> = events
            .iter()
            .map(|e| (e.path.to_owned(), e.filter.map(str::to_owned)))
            .collect();
        let cpus = cpus.to_vec();
        std::thread::Builder::new()
            .name("tcplab-tracefs".into())
            .spawn(move || create_privately(name, &events, &cpus))
            .map_err(|e| e.to_string())?
            .join()
            .map_err(|_| "the tracefs thread panicked".to_owned())?
    }

    /// Append each readable page (one `trace_pipe_raw` read, header included) of every CPU
    /// to `pages`.
    pub(crate) fn read_pages(&mut self, page_size: usize, pages: &mut Vec<Vec<u8>>) {
        for pipe in &mut self.pipes {
            loop {
                let mut page = vec![0u8; page_size];
                match pipe.read(&mut page) {
                    Ok(0) => break,
                    Ok(n) => {
                        page.truncate(n);
                        pages.push(page);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // WouldBlock: nothing more now. Anything else: the pipe is unusable, and
                    // the missing events show up as unrecorded sockets.
                    Err(_) => break,
                }
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // An instance with open files is busy: close the pipes first.
        self.pipes.clear();
        let dir = format!("/proc/self/fd/{}/{}", self.instances.as_raw_fd(), self.name);
        let _ = fs::remove_dir(dir);
    }
}

fn create_privately(
    name: String,
    events: &[(String, Option<String>)],
    cpus: &[i32],
) -> Result<Instance, String> {
    mount_privately()?;
    let instances_path = format!("{TRACEFS}/instances");
    remove_stale(&instances_path);
    let instances = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(&instances_path)
        .map_err(|e| format!("{instances_path}: {e}"))?;
    let dir = format!("{instances_path}/{name}");
    fs::create_dir(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
    // From here on, dropping `inst` removes the instance again.
    let mut inst = Instance {
        pipes: Vec::new(),
        instances,
        name,
    };
    write_file(&format!("{dir}/trace_clock"), "mono")?;
    for (path, filter) in events {
        if let Some(f) = filter {
            write_file(&format!("{dir}/events/{path}/filter"), f)?;
        }
        write_file(&format!("{dir}/events/{path}/enable"), "1")?;
    }
    for cpu in cpus {
        let p = format!("{dir}/per_cpu/cpu{cpu}/trace_pipe_raw");
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .map_err(|e| format!("{p}: {e}"))?;
        inst.pipes.push(f);
    }
    // The thread ends here; its mount namespace goes with it, the open files keep the mount.
    Ok(inst)
}

/// Mount tracefs at its usual place in a new mount namespace of the calling thread.
pub(crate) fn mount_privately() -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    // Private first: a mount made below must never propagate to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mount -t tracefs {TRACEFS}: {e}"))
}

/// The names of this process's instances that exist now (a private mount, as above).
pub(crate) fn own_instances() -> Result<Vec<String>, String> {
    std::thread::Builder::new()
        .name("tcplab-tracefs".into())
        .spawn(|| {
            mount_privately()?;
            let mine = format!("{PREFIX}{}-", std::process::id());
            let dir = format!("{TRACEFS}/instances");
            Ok(fs::read_dir(&dir)
                .map_err(|e| format!("{dir}: {e}"))?
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&mine))
                .collect())
        })
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the tracefs thread panicked".to_owned())?
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {text:?} to {path}: {e}"))
}

/// Remove `tcplab-<pid>-<n>` instances whose process is gone (killed before it could).
fn remove_stale(instances: &str) {
    let Ok(dir) = fs::read_dir(instances) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The ring-buffer page header: `u64 timestamp`, `local_t commit` (8 bytes on 64-bit), data.
const PAGE_DATA: usize = 16;
const RB_MISSED_EVENTS: u64 = 1 << 31;
const RB_MISSED_STORED: u64 = 1 << 30;
const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;

/// Walk one `trace_pipe_raw` page (the ring buffer's binary format, as libtraceevent's
/// kbuffer reads it): call `each(ts, payload)` for each event, where `ts` is the trace clock
/// and `payload` starts with the event's `common_type`. Returns the count of events the
/// kernel says it lost before this page (at least 1 when it does not know how many).
pub(crate) fn parse_page(page: &[u8], mut each: impl FnMut(u64, &[u8])) -> u64 {
    let u32_at = |i: usize| {
        page.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    let u64_at = |i: usize| {
        page.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let (Some(mut ts), Some(commit)) = (u64_at(0), u64_at(8)) else {
        return 0;
    };
    let size = (commit & (RB_MISSED_STORED - 1)) as usize;
    let end = (PAGE_DATA + size).min(page.len());
    let lost = if commit & RB_MISSED_EVENTS == 0 {
        0
    } else if commit & RB_MISSED_STORED != 0 {
        u64_at(end).unwrap_or(1).max(1)
    } else {
        1
    };
    let mut at = PAGE_DATA;
    while at + 4 <= end {
        let Some(hdr) = u32_at(at) else { break };
        let type_len = hdr & 0x1f;
        let delta = u64::from(hdr >> 5);
        match type_len {
            TYPE_PADDING => {
                if delta == 0 {
                    break; // the rest of the page is empty
                }
                let Some(len) = u32_at(at + 4) else { break };
                ts = ts.wrapping_add(delta);
                at += 4 + len as usize;
            }
            TYPE_TIME_EXTEND => {
                let Some(ext) = u32_at(at + 4) else { break };
                ts = ts.wrapping_add((u64::from(ext) << 27) + delta);
                at += 8;
            }
            TYPE_TIME_STAMP => {
                let Some(ext) = u32_at(at + 4) else { break };
                // Absolute, 59 bits: the upper bits stay those of the page.
                let abs = (u64::from(ext) << 27) | delta;
                ts = (ts & !((1u64 << 59) - 1)) | abs;
                at += 8;
            }
            0 => {
                let Some(len) = u32_at(at + 4) else { break };
                let len = (len as usize).saturating_sub(4);
                ts = ts.wrapping_add(delta);
                if let Some(data) = page.get(at + 8..at + 8 + len) {
                    each(ts, data);
                }
                at += 8 + ((len + 3) & !3);
            }
            n => {
                let len = n as usize * 4;
                ts = ts.wrapping_add(delta);
                if let Some(data) = page.get(at + 4..at + 4 + len) {
                    each(ts, data);
                }
                at += 4 + len;
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(type_len: u32, delta: u32) -> [u8; 4] {
        (type_len | (delta << 5)).to_ne_bytes()
    }

    #[test]
    fn a_page_with_small_big_extended_and_padded_events() {
        let mut page = Vec::new();
        page.extend(1_000u64.to_ne_bytes());
        page.extend(0u64.to_ne_bytes()); // commit, set below
                                         // Small event: 8 bytes of data, +5.
        page.extend(hdr(2, 5));
        page.extend([1u8, 0, 0, 0, 0xaa, 0, 0, 0]);
        // Time extend: +(1 << 27) + 3.
        page.extend(hdr(TYPE_TIME_EXTEND, 3));
        page.extend(1u32.to_ne_bytes());
        // Discarded event (padding with a delta): +2; its length counts the length word.
        page.extend(hdr(TYPE_PADDING, 2));
        page.extend(8u32.to_ne_bytes());
        page.extend([0u8; 4]);
        // Big event: length word (data + 4), 6 bytes of data padded to 8, +1.
        page.extend(hdr(0, 1));
        page.extend(10u32.to_ne_bytes());
        page.extend([2u8, 0, 0, 0, 0xbb, 0, 0, 0]);
        let size = (page.len() - PAGE_DATA) as u64;
        page[8..16].copy_from_slice(&size.to_ne_bytes());
        page.extend([0u8; 64]); // the unused rest of the page
        let mut seen = Vec::new();
        let lost = parse_page(&page, |ts, data| seen.push((ts, data[0], data.len())));
        assert_eq!(lost, 0);
        assert_eq!(
            seen,
            vec![(1_005, 1, 8), (1_005 + (1 << 27) + 3 + 2 + 1, 2, 6)]
        );
        page[8..16].copy_from_slice(&(size | RB_MISSED_EVENTS).to_ne_bytes());
        assert_eq!(parse_page(&page, |_, _| {}), 1);
    }
}
