//! How many runs at a time: `--jobs`' default and its cap, shared by `run`, `run --kernel`,
//! `sweep` and `kernels build`.

/// `--jobs` default: one run per CPU. Runs mostly wait on timers, but each run's two programs
/// must wake on time: with more runs than CPUs, a busy machine makes close delays slip (a
/// timing miss, see README), so the default does not oversubscribe.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `--jobs` past [`tcplab_runner::max_jobs`] (2 per CPU) is clamped, and said once.
pub fn jobs_within_cap(jobs: usize) -> usize {
    let cap = tcplab_runner::max_jobs();
    if jobs > cap {
        eprintln!(
            "tcplab: --jobs {jobs} is more than 2 per CPU ({} CPUs); running {cap} at a time",
            cap / 2
        );
        cap
    } else {
        jobs
    }
}
