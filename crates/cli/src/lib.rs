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
    let cli = match args::Cli::try_parse() {
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
            eprintln!("tcplab: {err:#}");
            ExitCode::from(exit::Exit::USAGE)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
