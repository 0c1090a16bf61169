//! `tcplab analyze`: stream each input through the trace engine into the chosen renderer.

use crate::args::{AnalyzeArgs, ColorArg, FormatArg, LangArg};
use crate::exit::Exit;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use tcplab_runner::discover::{open_regular, Refused};
use tcplab_trace::conn::{analyze_reopen, analyze_stream, AnalysisSink, AnalyzeOptions, Detail};
use tcplab_trace::render::json::JsonWriter;
use tcplab_trace::render::{self, Lang, TextOptions};
use tcplab_trace::{Connection, FileInfo, Format, Summary};

/// Read buffer: large sequential reads keep a 700 MB capture at page-cache speed.
const READ_BUF: usize = 1 << 20;

pub fn exec(mut args: AnalyzeArgs) -> anyhow::Result<u8> {
    let lang = match args.lang {
        LangArg::En => Lang::En,
        LangArg::Zh => Lang::Zh,
    };
    if let Some(out) = args.html.clone() {
        return html(&args, &out, lang);
    }
    if let Some(out) = args.annotate.clone() {
        return annotate(&args, &out, lang);
    }
    match args.format {
        Some(FormatArg::Json) => args.json = true,
        Some(f @ (FormatArg::Mermaid | FormatArg::Plantuml)) => return seqdiag(&args, f, lang),
        Some(FormatArg::Text) | None => {}
    }
    let stdout = io::stdout();
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let opts = TextOptions {
        lang,
        color,
        ladder: args.ladder,
    };
    let mut out: Box<dyn Write> = match json_stdout(&args) {
        Some(fd) => Box::new(fd),
        None => Box::new(BufWriter::with_capacity(1 << 16, stdout.lock())),
    };
    let mut code = Exit::OK;
    for path in &args.files {
        let name = path.display().to_string();
        let result = if name == "-" {
            // Not `stdin.lock()`: the reader runs on its own thread and a lock is not Send.
            let stdin = BufReader::with_capacity(READ_BUF, io::stdin());
            run_one(Input::Stream(stdin), "-", &args, opts, &mut out)
        } else {
            // A named FIFO or device is refused at once (a FIFO without a writer would
            // block forever; `-` is the way to stream one in).
            match open_regular(path) {
                Ok(f) => run_one(Input::<io::Empty>::File(&f), &name, &args, opts, &mut out),
                Err(Refused::Io(e)) => Err(Failure::Input(e.to_string())),
                Err(Refused::NotRegular(kind)) => Err(Failure::Input(format!(
                    "not a regular file ({kind}); to read a stream, pipe it to `tcplab analyze -`"
                ))),
            }
        };
        match result {
            Ok(()) => {}
            Err(Failure::Output(e)) => return Err(e.into()),
            Err(Failure::Input(msg)) => {
                out.flush()?;
                eprintln!("tcplab: {name}: {msg}");
                code = Exit::USAGE;
            }
        }
    }
    out.flush()?;
    Ok(code)
}

/// JSON goes to fd 1 itself (a duplicate of it) rather than through `io::stdout()`: the
/// JSON writer hands over 256 KiB chunks, and Rust's stdout is line-buffered, so it would scan
/// every chunk for a newline and copy it once more. None (the usual path) for the other
/// outputs, or should the descriptor not be duplicable.
fn json_stdout(args: &AnalyzeArgs) -> Option<std::fs::File> {
    use std::os::fd::AsFd;
    if !args.json {
        return None;
    }
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
}

enum Failure {
    /// The input could not be read: message for the one-line error.
    Input(String),
    /// Writing our output failed (e.g. broken pipe).
    Output(io::Error),
}

/// One input of `analyze`.
enum Input<'a, R> {
    /// Read once, front to back (stdin).
    Stream(R),
    /// A regular file: readable from the start by several threads at once.
    File(&'a std::fs::File),
}

/// Reads a file from its start at its own offset (`pread`), however many others read it:
/// one open file, so every thread reads the very file that was checked to be regular.
struct FileAt<'a> {
    file: &'a std::fs::File,
    offset: u64,
}

impl io::Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Analyse one input into `sink`: a file through [`analyze_reopen`], which lets each table
/// thread of `--summary` read the file itself.
fn analyze_input<R: io::BufRead + Send>(
    input: Input<'_, R>,
    source: &str,
    aopts: &AnalyzeOptions,
    sink: &mut dyn AnalysisSink,
) -> Result<FileInfo, tcplab_trace::ReadError> {
    match input {
        Input::Stream(reader) => analyze_stream(reader, source, aopts, sink),
        Input::File(file) => {
            let open = || {
                Ok(BufReader::with_capacity(
                    READ_BUF,
                    FileAt { file, offset: 0 },
                ))
            };
            analyze_reopen(&open, source, aopts, sink)
        }
    }
}

fn run_one<R: io::BufRead + Send>(
    input: Input<'_, R>,
    source: &str,
    args: &AnalyzeArgs,
    opts: TextOptions,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    // Build only what the output prints: JSON has no per-packet roles, counts only verdicts.
    let detail = if args.json {
        Detail::Json
    } else if args.summary && !args.summary_connections {
        Detail::Verdict
    } else {
        Detail::Full
    };
    let aopts = AnalyzeOptions {
        detail,
        ..AnalyzeOptions::default()
    };
    if args.json {
        let mut sink = JsonWriter::new(&mut *out);
        let read = analyze_input(input, source, &aopts, &mut sink);
        // Whatever was read is printed (a failed read still closes the object) before the
        // read error is reported.
        sink.finish().map_err(Failure::Output)?;
        read.map_err(|e| Failure::Input(e.to_string()))?;
        return Ok(());
    }
    let mut sink = TextSink {
        out,
        opts,
        summary: Summary::default(),
        summary_only: args.summary,
        lines: args.summary_connections,
        index: 0,
        error: None,
    };
    let file = analyze_input(input, source, &aopts, &mut sink)
        .map_err(|e| Failure::Input(e.to_string()))?;
    sink.footer(&file);
    match sink.error {
        Some(e) => Err(Failure::Output(e)),
        None => Ok(()),
    }
}

/// Human output: each connection as it finishes, then the counts table.
struct TextSink<'a> {
    out: &'a mut dyn Write,
    opts: TextOptions,
    summary: Summary,
    summary_only: bool,
    /// `--summary connections`: one line per connection.
    lines: bool,
    index: usize,
    error: Option<io::Error>,
}

impl TextSink<'_> {
    fn attempt(&mut self, f: impl FnOnce(&mut dyn Write, TextOptions) -> io::Result<()>) {
        if self.error.is_none() {
            if let Err(e) = f(self.out, self.opts) {
                self.error = Some(e);
            }
        }
    }

    fn footer(&mut self, file: &FileInfo) {
        let summary = self.summary.clone();
        let show_table = !self.lines && (self.summary_only || summary.connections > 1);
        let file = file.clone();
        self.attempt(|w, o| {
            if show_table {
                render::summary::render(&summary, &o, w)?;
            }
            if summary.connections == 0 {
                writeln!(w, "{}: no TCP connections", file.source)?;
            }
            writeln!(
                w,
                "{}: {} packets ({} non-TCP, {} duplicate copies skipped)",
                file.source, file.packets, file.non_tcp, file.duplicates
            )?;
            if file.after_close > 0 {
                writeln!(
                    w,
                    "{}: {} segments came after their connection had ended (not new connections: no SYN)",
                    file.source, file.after_close
                )?;
            }
            for warn in &file.warnings {
                writeln!(w, "warning: {warn}")?;
            }
            Ok(())
        });
    }
}

impl AnalysisSink for TextSink<'_> {
    fn begin(&mut self, source: &str, format: Format, _: Option<tcplab_trace::link::LinkType>) {
        if self.lines {
            self.attempt(|w, o| {
                writeln!(w, "{source} ({})", format.as_str())?;
                render::connections::render_header(&o, w)
            });
        } else if !self.summary_only {
            self.attempt(|w, _| writeln!(w, "{source} ({})", format.as_str()));
        }
    }

    fn connection(&mut self, conn: Connection) {
        self.summary.add(&conn);
        let index = self.index;
        self.index += 1;
        if self.summary_only {
            return;
        }
        if self.lines {
            let cause = crate::cmd::analyze::rst_cause_code(&conn);
            self.attempt(|w, o| render::connections::render_line(&conn, cause, &o, w));
            return;
        }
        // The human renderer draws the ladder too when `opts.ladder` is set.
        self.attempt(|w, o| {
            render::human::render_connection(&conn, index, &o, w)?;
            writeln!(w)
        });
    }

    fn end(&mut self, _: &FileInfo) {}

    fn counts_only(&self) -> bool {
        self.summary_only && !self.lines
    }

    fn counts(&mut self, summary: &Summary) {
        self.summary.merge(summary);
    }
}

/// Read and analyse one whole file for the page renderers (they need all of it at once).
fn analyze_whole(path: &std::path::Path) -> Result<tcplab_trace::Analysis, u8> {
    let name = path.display().to_string();
    let f = match open_regular(path) {
        Ok(f) => f,
        Err(Refused::Io(e)) => {
            eprintln!("tcplab: {name}: {e}");
            return Err(Exit::USAGE);
        }
        Err(Refused::NotRegular(kind)) => {
            eprintln!("tcplab: {name}: not a regular file ({kind})");
            return Err(Exit::USAGE);
        }
    };
    tcplab_trace::analyze(BufReader::with_capacity(READ_BUF, f), &name).map_err(|e| {
        eprintln!("tcplab: {name}: {e}");
        Exit::USAGE
    })
}

/// `--html out.html A [B]`.
fn html(args: &AnalyzeArgs, out: &std::path::Path, lang: Lang) -> anyhow::Result<u8> {
    if args.files.len() > 2 {
        eprintln!(
            "tcplab: --html takes one capture, or two of the same connections from two vantage points (got {})",
            args.files.len()
        );
        return Ok(Exit::USAGE);
    }
    let mut analyses = Vec::new();
    for f in &args.files {
        match analyze_whole(f) {
            Ok(a) => analyses.push(a),
            Err(code) => return Ok(code),
        }
    }
    // Links are relative to the page when the capture sits beside it.
    let dir = out
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let hrefs: Vec<String> = args
        .files
        .iter()
        .map(|f| {
            f.strip_prefix(&dir)
                .ok()
                .filter(|_| !dir.as_os_str().is_empty())
                .unwrap_or(f)
                .display()
                .to_string()
        })
        .collect();
    let captures: Vec<tcplab_report::Capture<'_>> = analyses
        .iter()
        .zip(&hrefs)
        .map(|(analysis, href)| tcplab_report::Capture { analysis, href })
        .collect();
    let facts = tcplab_report::RunFacts {
        title: format!(
            "tcplab: {}",
            args.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        ..Default::default()
    };
    let page = tcplab_report::run_page(&captures, &facts, lang);
    std::fs::write(out, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(Exit::OK)
}

/// `--annotate out.pcapng IN`.
fn annotate(args: &AnalyzeArgs, out: &std::path::Path, lang: Lang) -> anyhow::Result<u8> {
    let [input] = args.files.as_slice() else {
        eprintln!(
            "tcplab: --annotate takes exactly one capture (got {})",
            args.files.len()
        );
        return Ok(Exit::USAGE);
    };
    let analysis = match analyze_whole(input) {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    let mut buf = Vec::new();
    if let Err(e) = tcplab_report::annotate::annotate(input, &analysis, lang, &mut buf) {
        eprintln!("tcplab: {e}");
        return Ok(Exit::USAGE);
    }
    std::fs::write(out, buf).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(Exit::OK)
}

/// `--format mermaid|plantuml`.
fn seqdiag(args: &AnalyzeArgs, f: FormatArg, lang: Lang) -> anyhow::Result<u8> {
    use tcplab_report::seqdiag::{render, SeqFormat};
    let format = if f == FormatArg::Mermaid {
        SeqFormat::Mermaid
    } else {
        SeqFormat::PlantUml
    };
    let mut out = io::stdout().lock();
    let mut code = Exit::OK;
    for path in &args.files {
        match analyze_whole(path) {
            Ok(a) => out.write_all(render(&a, format, lang).as_bytes())?,
            Err(c) => code = c,
        }
    }
    Ok(code)
}

/// The RST cause column of `--summary connections` (`-` without an RST).
fn rst_cause_code(conn: &Connection) -> &'static str {
    conn.rst.first().map_or("-", |r| r.cause.code())
}
