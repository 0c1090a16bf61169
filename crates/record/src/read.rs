//! Writing records as text and reading them back with errors that name the file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A record file that is not what tcplab writes.
#[derive(Debug)]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column of the error, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong (serde's words: the field and what was expected).
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{l}:{c}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for RecordError {}

/// `text` (the contents of `path`) as a `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, RecordError> {
    serde_json::from_str(text).map_err(|e| {
        let at = (e.line() > 0).then_some((e.line(), e.column()));
        let text = e.to_string();
        // serde_json appends the position; it is in front already.
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        RecordError {
            path: path.to_owned(),
            at,
            message: text.strip_suffix(&suffix).unwrap_or(&text).to_owned(),
        }
    })
}

/// One compact line with keys in alphabetical order (what tcplab has always written: the
/// order of serde_json's map), no newline.
pub fn to_line<T: Serialize>(r: &T) -> String {
    serde_json::to_value(r)
        .and_then(|v| serde_json::to_string(&v))
        .unwrap_or_default()
}

/// Pretty-printed, keys in alphabetical order, with a final newline.
pub fn to_pretty<T: Serialize>(r: &T) -> String {
    serde_json::to_value(r)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_default()
        + "\n"
}
