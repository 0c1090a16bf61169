//! `tcplab` command-line front end: clap parsing, then one `exec` per subcommand.
//! Only this crate knows about clap and exit codes.

mod args;
mod cmd;
pub mod exit;
mod rootless;

use clap::Parser;
use std::process::ExitCode;

/// Entry point called by `main.rs`.
pub fn main() -> ExitCode {
    // In a `run --kernel` guest, the kernel starts this binary as /init (PID 1).
    if tcplab_vm::guest::is_guest_init() {
        tcplab_vm::guest::main();
    }
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::Exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
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
