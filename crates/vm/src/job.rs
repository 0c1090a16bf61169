//! What the host asks of a guest: written as `/job/job.json` into the initramfs, read by the
//! guest's `/init`.

use serde::{Deserialize, Serialize};

/// Path of the job file inside the guest.
pub const JOB_PATH: &str = "/job/job.json";
/// Directory of the job's scenario files inside the guest (the child runs with it as cwd).
pub const JOB_DIR: &str = "/job";
/// Where the guest's modules are.
pub const MODULE_DIR: &str = "/modules";
/// Where the guest's `tcplab` binary is (`/init` links to it).
pub const BINARY: &str = "/bin/tcplab";
/// The guest writes its results tree here (a tmpfs).
pub const GUEST_OUT: &str = "/tmp/out";
/// The console line a probe boot prints when userspace runs.
pub const PROBE_MARKER: &str = "tcplab-guest: probe ok";
/// Prefix of the guest's own console lines (progress the host shows).
pub const CONSOLE_PREFIX: &str = "tcplab-guest: ";

/// One scenario file: where it is in the guest (relative to [`JOB_DIR`]) and what the host
/// called it (so results name the host's path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// Path relative to [`JOB_DIR`].
    pub guest: String,
    /// The path as given on the host.
    pub host: String,
}

/// The guest's job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Job {
    /// Only boot, print [`PROBE_MARKER`], power off (the accelerator probe).
    pub probe: bool,
    /// Scenario files to run.
    pub files: Vec<JobFile>,
    /// Arguments for `tcplab run` besides the files, `--json` and `--out`
    /// (`--repeat`, `--jobs`, `--set`, `--pooled`, `--keep-pcaps`).
    pub run_args: Vec<String>,
    /// Module names, in load order; the files are `MODULE_DIR/<name>.ko`.
    pub modules: Vec<String>,
}

/// What the guest reports about itself at the end (`guest.json` on the host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestReport {
    /// `uname -r` in the guest.
    pub release: Option<String>,
    /// Seconds from the kernel's start to `/init`.
    pub boot_s: Option<f64>,
    /// Each module of the job: name, loaded, error.
    pub modules: Vec<ModuleLoad>,
    /// What the guest kernel can do (netns, TUN, IPv6 ...).
    pub capabilities: Capabilities,
    /// Exit code of the guest's `tcplab run`, when it ran.
    pub child_exit: Option<i32>,
    /// Seconds the guest spent, start to end.
    pub elapsed_s: Option<f64>,
    /// Seconds the guest's `tcplab run` took, start to exit (the scenarios' runs and the
    /// setup around each batch); `None` when it did not run.
    #[serde(default)]
    pub suite_s: Option<f64>,
    /// Seconds spent streaming the results files back after it (the JSON lines go back
    /// while it runs).
    #[serde(default)]
    pub transfer_s: Option<f64>,
}

/// One module the guest tried to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleLoad {
    /// Module name.
    pub name: String,
    /// finit_module succeeded.
    pub loaded: bool,
    /// Why not.
    pub error: Option<String>,
}

/// What the kernel lacks that scenarios may need: `None` where it works, else why not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    /// `unshare(CLONE_NEWNET)` fails.
    pub netns: Option<String>,
    /// `/dev/net/tun` does not open.
    pub tun: Option<String>,
    /// No IPv6 (`/proc/sys/net/ipv6`).
    pub ipv6: Option<String>,
}
