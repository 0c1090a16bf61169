//! One module per subcommand, each with `exec(args) -> anyhow::Result<u8>` (the exit code).

mod analyze;
mod peer;

use crate::args::{Cli, Command};

pub fn exec(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Analyze(a) => analyze::exec(a),
        Command::Server(a) => peer::server(a),
        Command::Client(a) => peer::client(a),
    }
}
