//! tcplab-sweep: vary one or two scenario knobs, run each point many times, and show where
//! the teardown changes kind (three-way → four-way at the delayed-ACK timer, for the seed).
//!
//! Pieces, each usable alone:
//! - [`knob`]: the `--vary` grammar (`key=0..100:5`, `key=0,20,60`);
//! - [`plan`]: the grid of points and `--shard I/N` (0-based I);
//! - [`outcome`]: per-run outcomes and per-point distributions and timing stats;
//! - [`boundary`]: the boundary in words, computed from the data;
//! - [`store`]: `sweep.json`, `points/<id>.json`, `results.csv`, `results.json`;
//! - [`chart`]: SVG pictures (plotters);
//! - [`engine`]: run with resume and cancel, write outputs, merge shard directories;
//! - [`live`]: the real runner (tcplab-runner) behind the engine's seam.
//!
//! ```
//! use tcplab_sweep::{boundary, outcome::{Outcome, PointSummary}, plan::Grid, knob::Vary};
//! use tcplab_trace::{Closer, TeardownKind};
//!
//! let grid = Grid::new(vec![Vary::parse("server.close_delay_ms=20,60").unwrap()]).unwrap();
//! let points: Vec<PointSummary> = grid
//!     .points()
//!     .into_iter()
//!     .map(|p| {
//!         let kind = if p.values[0].1.num < Some(40.0) {
//!             (TeardownKind::ThreeWay, Closer::Server)
//!         } else {
//!             (TeardownKind::FourWay, Closer::Client)
//!         };
//!         PointSummary::new(p, &[Outcome::teardown(kind.0, Some(kind.1))])
//!     })
//!     .collect();
//! let lines = boundary::analyze(&grid, &points);
//! assert_eq!(lines[0].sentence(), "three-way/server up to 20 ms, four-way/client from 60 ms");
//! ```

pub mod boundary;
pub mod chart;
pub mod engine;
pub mod knob;
pub mod live;
pub mod outcome;
pub mod plan;
pub mod store;

pub use engine::{
    execute, finalize, merge, Event, ExecReport, MergeReport, Outputs, Sweep, SweepError,
};
pub use knob::{KnobValue, Vary};
pub use outcome::{Outcome, OutcomeKey, PointSummary};
pub use plan::{Grid, Point, Shard};
