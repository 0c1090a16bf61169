//! One module per subcommand, each with `exec(args) -> anyhow::Result<u8>` (the exit code).

mod analyze;
pub mod compare;
mod jobs;
pub mod kernels;
pub mod merge;
mod peer;
pub mod report;
pub mod run;
mod run_args;
pub mod run_kernels;
pub mod sweep;

use crate::args::{Cli, Command};

pub fn exec(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Analyze(a) => analyze::exec(a),
        Command::Server(a) => peer::server(a),
        Command::Client(a) => peer::client(a),
        Command::Run(a) => run::exec(a),
        Command::Sweep(a) => sweep::exec(a),
        Command::Merge(a) => merge::exec(a),
        Command::Kernels(a) => kernels::exec(a),
        Command::Compare(a) => compare::exec(a),
        Command::Report(a) => report::exec(a),
    }
}
