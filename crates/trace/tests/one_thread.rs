//! `analyze_on_this_thread` (the live runner's path) gives exactly what the threaded
//! pipeline of `analyze_stream` gives, on every checked-in capture, whole and cut short.

mod common;

use tcplab_trace::conn::AnalysisSink;
use tcplab_trace::link::LinkType;
use tcplab_trace::{
    analyze_on_this_thread, analyze_stream, AnalyzeOptions, Connection, FileInfo, Format, ReadError,
};

#[derive(Default)]
struct Everything(Vec<String>);

impl AnalysisSink for Everything {
    fn begin(&mut self, source: &str, format: Format, link_type: Option<LinkType>) {
        self.0
            .push(format!("begin {source} {format:?} {link_type:?}"));
    }
    fn connection(&mut self, conn: Connection) {
        self.0.push(format!("{conn:?}"));
    }
    fn end(&mut self, file: &FileInfo) {
        self.0.push(format!("end {file:?}"));
    }
    fn failed(&mut self, file: &FileInfo, error: &ReadError) {
        self.0.push(format!("failed {file:?} {error}"));
    }
}

fn both(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let opts = AnalyzeOptions::default();
    let (mut a, mut b) = (Everything::default(), Everything::default());
    let ra = analyze_stream(bytes, "x", &opts, &mut a).map_err(|e| e.to_string());
    let rb = analyze_on_this_thread(bytes, "x", &opts, &mut b).map_err(|e| e.to_string());
    a.0.push(format!("{ra:?}"));
    b.0.push(format!("{rb:?}"));
    (a.0, b.0)
}

#[test]
fn same_output_as_the_pipeline() {
    common::each_checked_in_capture_and_cut(|what, bytes| {
        let (threaded, inline) = both(bytes);
        assert_eq!(threaded, inline, "{what}");
    });
}
