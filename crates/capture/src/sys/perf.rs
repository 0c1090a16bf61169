//! perf_event_open(2) for tracepoints: open one event per CPU, point several events at one
//! ring, set a filter, and copy records out of the mmap'd ring. Neither `nix` nor `std` wraps
//! any of it; every `unsafe` block says why it is sound.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// `struct perf_event_attr` up to `sig_data` (PERF_ATTR_SIZE_VER7, 128 bytes): the bitfield
/// word is `flags` (bit 0 disabled, bit 25 use_clockid).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
    aux_sample_size: u32,
    reserved_3: u32,
    sig_data: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 128);

/// Open tracepoint `id` on `cpu` for every task, disabled, sampling every hit with its time
/// (on `clockid`, or the perf clock when `None`) and raw record.
pub(crate) fn open_tracepoint(id: u64, cpu: i32, clockid: Option<i32>) -> io::Result<OwnedFd> {
    let mut attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: 128,
        config: id,
        sample_period: 1,
        sample_type: PERF_SAMPLE_TIME | PERF_SAMPLE_RAW,
        flags: FLAG_DISABLED,
        wakeup_events: 1,
        ..Default::default()
    };
    if let Some(c) = clockid {
        attr.flags |= FLAG_USE_CLOCKID;
        attr.clockid = c;
    }
    // SAFETY: perf_event_open reads `attr.size` (128) bytes from the pointer, which points to
    // a live, fully initialised `repr(C)` struct of exactly that size; the other arguments
    // are plain integers. The returned fd is owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl_int(fd: &OwnedFd, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: these perf ioctls take an integer argument (an fd or 0), not a pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Send the samples of `fd` to the ring of `target` (same CPU).
pub(crate) fn set_output(fd: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    let t = libc::c_ulong::try_from(target.as_raw_fd()).map_err(io::Error::other)?;
    ioctl_int(fd, PERF_EVENT_IOC_SET_OUTPUT, t)
}

/// Start counting.
pub(crate) fn enable(fd: &OwnedFd) -> io::Result<()> {
    ioctl_int(fd, PERF_EVENT_IOC_ENABLE, 0)
}

/// Stop counting.
pub(crate) fn disable(fd: &OwnedFd) -> io::Result<()> {
    ioctl_int(fd, PERF_EVENT_IOC_DISABLE, 0)
}

/// Set a tracepoint filter (the ftrace filter language: `sport == 60000 || dport == 60000`).
pub(crate) fn set_filter(fd: &OwnedFd, filter: &str) -> io::Result<()> {
    let c = CString::new(filter).map_err(io::Error::other)?;
    // SAFETY: SET_FILTER reads a NUL-terminated string through the pointer; `c` is one and
    // lives for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER as _, c.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A perf ring: one metadata page, then `2^n` data pages, mapped read-write (so the reader
/// can move `data_tail` and the kernel never overwrites unread records).
#[derive(Debug)]
pub(crate) struct Ring {
    base: *mut u8,
    len: usize,
    data_size: usize,
    page: usize,
}

// SAFETY: the mapping is owned by this value alone; access goes through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    /// Map the ring of `fd` with `data_pages` (a power of two) data pages.
    pub(crate) fn map(fd: &OwnedFd, data_pages: usize) -> io::Result<Ring> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("sysconf(_SC_PAGESIZE) failed"))?;
        let len = page * (1 + data_pages);
        // SAFETY: a fresh shared mapping of a perf fd at offset 0; the kernel checks the
        // length. The result is checked against MAP_FAILED before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            base: base.cast(),
            len,
            data_size: page * data_pages,
            page,
        })
    }

    /// Append every complete record the kernel has written since the last call to `out`
    /// (records are copied out contiguously even where they wrap) and release the space.
    pub(crate) fn drain(&mut self, out: &mut Vec<u8>) {
        // struct perf_event_mmap_page: data_head at byte 1024, data_tail at 1032.
        // SAFETY: `base` maps at least one page (4096 > 1040 bytes); both fields are
        // 8-byte aligned u64s in it. data_head is written by the kernel, so it is read
        // volatile and followed by an acquire fence (perf_event_open(2)); data_tail is
        // ours, written after the data was copied, behind a release fence.
        let (head, tail) = unsafe {
            let head = std::ptr::read_volatile(self.base.add(1024).cast::<u64>());
            fence(Ordering::Acquire);
            let tail = std::ptr::read_volatile(self.base.add(1032).cast::<u64>());
            (head, tail)
        };
        let size = self.data_size as u64;
        let avail = head.wrapping_sub(tail).min(size);
        let start = (tail % size) as usize;
        let n = avail as usize;
        let first = n.min(self.data_size - start);
        // SAFETY: the data area is [page, page + data_size) inside the mapping; `start +
        // first <= data_size` and `n - first <= data_size`, so both copies stay inside it.
        unsafe {
            let data = self.base.add(self.page);
            out.extend_from_slice(std::slice::from_raw_parts(data.add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(data, n - first));
            fence(Ordering::Release);
            std::ptr::write_volatile(self.base.add(1032).cast::<u64>(), head);
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing uses the mapping after.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}
