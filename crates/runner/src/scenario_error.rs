//! Why a scenario could not be found, loaded or changed: beneath both the parser
//! (`scenario.rs`) and discovery (`discover.rs`), so neither imports the other for it.

use std::path::PathBuf;

/// Why a scenario could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Syntax or value error at a position in the file.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An error without a position (should be rare: toml gives spans for nearly everything).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `set_knob` was given an unknown key.
    #[error("unknown knob `{key}` (known: {known})")]
    UnknownKnob {
        /// The key as given.
        key: String,
        /// The accepted keys.
        known: String,
    },
    /// `set_knob` was given a value the knob cannot take.
    #[error("knob `{key}`: invalid value `{value}`: {reason}")]
    BadKnobValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Not a regular file (a FIFO, a device, a socket): refused before opening it blocks.
    #[error("{path}: not a regular file ({kind}); a scenario is a *.toml file")]
    NotRegular {
        /// The file as named.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Larger than [`crate::discover::MAX_SCENARIO_BYTES`].
    #[error("{path}: larger than {limit} bytes, the most a scenario file may have")]
    TooLarge {
        /// The file as named.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A directory given to [`crate::discover::discover`] could not be listed.
    #[error("listing {path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
