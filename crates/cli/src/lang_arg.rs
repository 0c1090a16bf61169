//! `--lang`: the narration language, beneath `args.rs` and the subcommands (`cmd/report.rs`)
//! that take it, so that neither imports the other for it.

use clap::ValueEnum;

/// Narration language.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LangArg {
    /// English.
    #[default]
    En,
    /// Chinese.
    Zh,
}
