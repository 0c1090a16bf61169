//! Why a report could not be written: beneath every page's module.

use std::path::{Path, PathBuf};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// DIR holds nothing a report can be made of.
    #[error(
        "{0}: no run, batch, sweep or result tree here (expected capture.pcap, run-NNNN/ directories, sweep.json or kernels.json)"
    )]
    Nothing(PathBuf),
    /// A sweep's or a kernel tree's files could not be read (the message names the file).
    #[error("{message}")]
    Results {
        /// The sweep or kernel tree.
        dir: PathBuf,
        /// What its reader said.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}
