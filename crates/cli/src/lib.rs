//! `tcplab` command-line front end: clap parsing, then one `exec` per subcommand.
//! Only this crate knows about clap and exit codes.

/// This crate's `eprintln!`/`eprint!`/`println!`/`print!` shadow std's (a `macro_rules!`
/// at the crate root is in scope in every module below it): std's panic when the write
/// fails (`2>/dev/full`, a closed pipe), which exited 101 over a message nobody could read.
/// These drop a message that cannot be written; the exit code still says what happened.
/// Output whose loss matters is written with `writeln!` and its error handled.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
#[allow(unused_macros)] // there for the next eprint!, so it cannot panic either
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod args;
mod cmd;
pub mod exit;
mod knob_args;
mod lang_arg;
mod output;
mod rootless;
mod signal;

use clap::Parser;
use std::process::ExitCode;

/// Entry point called by `main.rs`.
pub fn main() -> ExitCode {
    // In a `run --kernel` guest, the kernel starts this binary as /init (PID 1).
    if tcplab_vm::guest::is_guest_init() {
        tcplab_vm::guest::main();
    }
    // Before anything else: a signal from now on is held until a handler takes it.
    signal::hold();
    let cli = match args::Cli::try_parse_from(args::normalize(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::Exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if !cli.command.may_enter_user_namespace() {
        signal::install();
    }
    match cmd::exec(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::Exit::OK);
            }
            eprintln!("tcplab: {}", one_line(&err));
            ExitCode::from(exit::Exit::USAGE)
        }
    }
}

/// The error and its causes on one line, like `{:#}`, but without a cause the message
/// already shows: errors whose text includes their source (`{path}: {source}`) made `{:#}`
/// print "File exists (os error 17): File exists (os error 17)".
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like the libraries' thiserror `#[error("{path}: {source}")]` with `#[source]`.
    #[derive(Debug)]
    struct WithSource {
        path: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for WithSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for WithSource {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        // Issue 20 item 6: "afile: File exists (os error 17): File exists (os error 17)".
        let e = anyhow::Error::new(WithSource {
            path: "afile".into(),
            source: std::io::Error::from_raw_os_error(17),
        });
        assert_eq!(one_line(&e), "afile: File exists (os error 17)");
        let e = e.context("writing results");
        assert_eq!(
            one_line(&e),
            "writing results: afile: File exists (os error 17)"
        );
    }
}
