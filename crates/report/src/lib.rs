//! tcplab-report: what people look at. Plain data in, pages out.
//!
//! - `diagram.rs`: a connection's space-time diagram as data (arrows from send to arrival,
//!   each end's states on its own time line), from one capture or from two (the two ends of
//!   a link, or two hosts; segments paired by `tcplab_trace::vantage`).
//! - `svg.rs` draws a diagram; `html.rs` is the page around it (one self-contained file,
//!   inline CSS and SVG, no script needed, deterministic).
//! - `run.rs`: a run's page (also `tcplab analyze --html`).
//! - `annotate.rs`: a capture rewritten as pcapng with each packet's narration as a comment.
//! - `seqdiag.rs`: the connection as a Mermaid or PlantUML sequence diagram.
//! - `dir.rs`: `tcplab report DIR`: a run, a batch, a sweep, a kernel matrix or a tree of
//!   them (an index), found by its files.
//! - `sweep.rs`: a sweep's page (its charts, each point a link to its runs; the boundary).
//! - `matrix.rs`: a `run --kernel` tree's kernel matrix page (compare's marks and tests).
//! - `parts.rs`: pieces the pages share (outcome colours, distribution bars).
#![deny(missing_docs)]

pub mod annotate;
mod batch;
pub mod diagram;
pub mod dir;
mod error;
pub mod html;
mod layout;
pub mod matrix;
pub mod parts;
pub mod run;
pub mod seqdiag;
pub mod svg;
pub mod sweep;

pub use diagram::{build, Diagram, InjectedMark, KernelTimes, Views};
pub use dir::ReportError;
pub use run::{run_page, Capture, RunFacts};
