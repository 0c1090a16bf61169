//! Which end of a connection: plain data, a leaf (imports nothing of the crate). The type
//! lives in tcplab-record, the workspace's bottom crate of plain data, so that a run record's
//! `Side` and the analysis's are one type; re-exported here under its old paths.

pub use tcplab_record::Side;
