//! Command-line arguments (clap derive). Doc comments are the help text.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// A reproducible lab for TCP connection teardown: three-way, four-way, simultaneous, reset.
///
/// Exit status: 0 ok; 1 a scenario's expectation failed; 2 unreadable input, bad usage,
/// invalid scenario or missing privileges; 130 interrupted (partial results kept).
#[derive(Debug, Parser)]
#[command(name = "tcplab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read captures (pcap, pcapng, tcpdump text) and explain every connection's teardown.
    Analyze(AnalyzeArgs),
}

/// Narration language.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LangArg {
    /// English.
    #[default]
    En,
    /// Chinese.
    Zh,
}

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
    /// Print the JSON object of TEARDOWN.md (one object per file).
    #[arg(long, conflicts_with = "summary")]
    pub json: bool,
    /// Print only the counts per kind (fast path for huge files).
    #[arg(long)]
    pub summary: bool,
    /// Narration language.
    #[arg(long, value_enum, default_value_t)]
    pub lang: LangArg,
    /// Draw a ladder (sequence) diagram for each connection.
    #[arg(long)]
    pub ladder: bool,
    /// Colours.
    #[arg(long, value_enum, default_value_t)]
    pub color: ColorArg,
}
