//! `tcplab report DIR`: write DIR/report.html for a run, a batch or a results tree.

use crate::exit::Exit;
use crate::lang_arg::LangArg;
use std::path::PathBuf;
use tcplab_trace::render::Lang;

/// Write DIR/report.html (a self-contained page: inline SVG and CSS, works offline) for
/// whatever DIR holds: a run (its space-time diagram), a batch (outcomes, timing, the runs,
/// each linking to its diagram), or a tree of batches (an index). Each rendered run also
/// gets capture.pcapng: its capture with the narration as packet comments (Wireshark).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run directory (run-NNNN/), a batch directory, or a results tree.
    pub dir: PathBuf,
    /// Narration language.
    #[arg(long, value_enum, default_value_t)]
    pub lang: LangArg,
}

pub fn exec(args: ReportArgs) -> anyhow::Result<u8> {
    let lang = match args.lang {
        LangArg::En => Lang::En,
        LangArg::Zh => Lang::Zh,
    };
    match tcplab_report::dir::write_report(&args.dir, lang) {
        Ok(page) => {
            println!("{}", page.display());
            Ok(Exit::OK)
        }
        Err(e) => {
            eprintln!("tcplab: {e}");
            Ok(Exit::USAGE)
        }
    }
}
