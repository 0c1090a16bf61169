//! Command-line arguments (clap derive). Doc comments are the help text.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tcplab_runner::knob::{ClientKnobs, ServerKnobs};
use tcplab_server::timing::Millis;

use crate::knob_args::KnobFlags;

/// A reproducible lab for TCP connection teardown: three-way, four-way, simultaneous, reset.
///
/// Exit status: 0 ok; 1 a scenario's expectation failed; 2 unreadable input, bad usage,
/// invalid scenario or missing privileges; 3 `run`: none failed but one was inconclusive
/// (every run missed its timing, also when tried again at the end: the machine was too
/// busy); 4 `run --kselftest`: this environment cannot run the tests, or one was
/// inconclusive (kselftest's skip); 130 interrupted by Ctrl-C, SIGTERM or SIGHUP (partial
/// results kept).
#[derive(Debug, Parser)]
#[command(name = "tcplab", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read captures (pcap, pcapng, tcpdump text) and explain every connection's teardown.
    Analyze(AnalyzeArgs),
    /// The seed's server: answer `200 ok` to `get`, then close (knobs decide how and when).
    Server(ServerArgs),
    /// The seed's client: send `get`, read the answer, close (knobs decide how and when).
    Client(ClientArgs),
    /// Run scenarios (TOML) in private network namespaces and check their expectations.
    Run(crate::cmd::run::RunArgs),
    /// Sweep scenario knobs and map where one kind of teardown turns into another.
    Sweep(crate::cmd::sweep::SweepArgs),
    /// Join the outputs of sharded sweeps into one result.
    Merge(crate::cmd::merge::MergeArgs),
    /// Fetch and list Linux kernels for `run --kernel` (kept in a cache, never installed).
    Kernels(crate::cmd::kernels::KernelsArgs),
    /// Compare two result sets (two kernels, two dates): did any scenario's outcomes change?
    Compare(crate::cmd::compare::CompareArgs),
    /// Write DIR/report.html: space-time diagrams of a run, a batch's outcomes and runs, or
    /// an index of a results tree (one self-contained page each, works offline).
    Report(crate::cmd::report::ReportArgs),
}

impl Command {
    /// Whether the command may still enter a user namespace of its own, which a process can
    /// only do while single-threaded: it takes its signals ([`crate::signal::claim`]) after.
    pub fn may_enter_user_namespace(&self) -> bool {
        matches!(self, Command::Run(_) | Command::Sweep(_))
    }
}

/// A `*_ms` value: a number from 0 to [`Millis::MAX`] (negative numbers reach this parser, so
/// that `-5` gets a clear message instead of "unexpected argument").
fn millis(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of milliseconds"))?;
    Millis::new(v).map(|m| m.0)
}

#[derive(Debug, Parser)]
pub struct ServerArgs {
    /// Address to listen on (default 127.0.0.1, or ::1 with -6).
    #[arg(long)]
    pub addr: Option<std::net::IpAddr>,
    /// Port to listen on.
    #[arg(long, default_value_t = 60000)]
    pub port: u16,
    /// Use IPv6 (::1 when --addr is not given; --addr must then be IPv6).
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Connections to serve; 0 = forever.
    #[arg(long, default_value_t = 0)]
    pub count: u32,
    /// Give up on a client that sends nothing for this long, ms (0 = wait forever).
    #[arg(long, default_value_t = 10_000.0, allow_hyphen_values = true, value_parser = millis)]
    pub timeout_ms: f64,
    /// The `[server]` knobs of a scenario file, as flags.
    #[command(flatten)]
    pub knobs: KnobFlags<ServerKnobs>,
}

#[derive(Debug, Parser)]
pub struct ClientArgs {
    /// Server address (default 127.0.0.1, or ::1 with -6).
    #[arg(long)]
    pub addr: Option<std::net::IpAddr>,
    /// Server port.
    #[arg(long, default_value_t = 60000)]
    pub port: u16,
    /// Use IPv6 (::1 when --addr is not given; --addr must then be IPv6).
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Connections to make, one after the other.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Give up on a server that sends nothing (or a connect) after this long, ms (0 = wait
    /// forever).
    #[arg(long, default_value_t = 10_000.0, allow_hyphen_values = true, value_parser = millis)]
    pub timeout_ms: f64,
    /// The `[client]` knobs of a scenario file, as flags.
    #[command(flatten)]
    pub knobs: KnobFlags<ClientKnobs>,
}

// Beneath this module and the subcommands that take it (`lang_arg.rs`); its old path.
pub use crate::lang_arg::LangArg;

/// When to colour the output.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum ColorArg {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Parser)]
pub struct AnalyzeArgs {
    /// Capture files; `-` reads standard input. Format is detected from the content.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the JSON object of docs/teardown.md: one object per file, each on one line
    /// (JSON Lines). A file that fails mid-way still gets its object, with an `error` member.
    #[arg(long, conflicts_with = "summary")]
    pub json: bool,
    /// Print only the counts per kind (fast path for huge files).
    #[arg(long)]
    pub summary: bool,
    /// `--summary connections` (also `--summary=connections`): one line per connection in
    /// the style of tcplife — client, server, kind, who closed first, how long it was
    /// half-closed, which side holds TIME_WAIT and since when, bytes each way, RST cause.
    /// (A file named `connections` right after `--summary` must be written `./connections`.)
    #[arg(long = "summary-connections", hide = true, conflicts_with_all = ["json", "summary"])]
    pub summary_connections: bool,
    /// Narration language.
    #[arg(long, value_enum, default_value_t)]
    pub lang: LangArg,
    /// Draw a ladder (sequence) diagram for each connection.
    #[arg(long)]
    pub ladder: bool,
    /// Colours.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorArg,
    /// Write an HTML page with each connection's space-time diagram to FILE (self-contained,
    /// works offline). Given two captures of the same connections from two vantage points
    /// (the two ends), they are merged into one two-ended diagram.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json", "summary", "annotate"])]
    pub html: Option<PathBuf>,
    /// Write the (one) capture as pcapng to FILE with each packet's narration as a packet
    /// comment, its direction in epb_flags (outbound = sent by the client) and each
    /// connection's verdict on its FIN packets and in the section header (Wireshark and
    /// tshark show them: `frame.comment`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json", "summary"])]
    pub annotate: Option<PathBuf>,
    /// Output format: `text` (the narrated listing), `json` (as --json), or a sequence
    /// diagram to paste: `mermaid`, `plantuml` (states as notes).
    #[arg(long, value_enum, conflicts_with_all = ["json", "summary"])]
    pub format: Option<FormatArg>,
}

/// `analyze --format`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    /// The narrated listing (the default).
    Text,
    /// The JSON of docs/teardown.md (as --json).
    Json,
    /// A Mermaid `sequenceDiagram`.
    Mermaid,
    /// A PlantUML sequence diagram.
    Plantuml,
}

/// `--summary connections` and `--summary=connections` become the `--summary-connections`
/// flag (clap cannot give `--summary` an optional value without swallowing a file name that
/// follows it); `--summary=counts` is plain `--summary`. Only after `analyze`.
pub fn normalize(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut in_analyze = false;
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "analyze" {
            in_analyze = true;
        }
        if in_analyze {
            if a == "--summary" && it.peek().is_some_and(|n| n == "connections") {
                it.next();
                out.push("--summary-connections".into());
                continue;
            }
            if a == "--summary=connections" {
                out.push("--summary-connections".into());
                continue;
            }
            if a == "--summary=counts" {
                out.push("--summary".into());
                continue;
            }
        }
        out.push(a);
    }
    out
}
