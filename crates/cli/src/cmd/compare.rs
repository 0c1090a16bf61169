//! `tcplab compare A B`: did anything change between two result sets?

use std::io::Write;
use std::path::PathBuf;

use tcplab_compare::matrix::{self, Column};
use tcplab_compare::{compare, load_set, DEFAULT_ALPHA};

use crate::exit::Exit;

/// Compare two result sets (two kernels, or two dates) scenario by scenario.
///
/// A and B are results directories (`results/`, `results/<kernel>/`, one batch …); in each,
/// the newest batch of every scenario counts. Deterministic scenarios (the expectation names
/// one kind) differ on any change of outcomes; racy ones when Fisher's exact test says an
/// outcome's share moved (two-sided, Bonferroni over the outcomes, at --alpha). A difference
/// is only called a kernel difference when both ran under the same conditions (place,
/// accelerator, CPUs, memory); otherwise compare refuses (exit 2) unless --force.
///
/// Exit status: 0 no difference; 1 a difference; 2 unreadable input, or conditions differ.
#[derive(Debug, clap::Parser)]
pub struct CompareArgs {
    /// The first result set.
    pub a: PathBuf,
    /// The second result set.
    pub b: PathBuf,
    /// More result sets (with --matrix only).
    #[arg(value_name = "MORE", requires = "matrix")]
    pub more: Vec<PathBuf>,
    /// Print the kernel matrix of all the sets instead (one column per set, in the order
    /// given; each set one kernel's results, e.g. the `--out` of each task of a kernel array
    /// job): the matrix `run --kernel A --kernel B` ends with. Exit 1 when a cell missed its
    /// expectation or a kernel differs (`≠`).
    #[arg(long)]
    pub matrix: bool,
    /// Significance level for racy scenarios.
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Compare even when the two sets ran under different conditions.
    #[arg(long)]
    pub force: bool,
    /// One JSON object per scenario per line.
    #[arg(long)]
    pub json: bool,
}

pub fn exec(args: CompareArgs) -> anyhow::Result<u8> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        eprintln!("tcplab: --alpha {}: must be between 0 and 1", args.alpha);
        return Ok(Exit::USAGE);
    }
    if args.matrix {
        return matrix(&args);
    }
    let (a, b) = match (load_set(&args.a), load_set(&args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tcplab: {e}");
            return Ok(Exit::USAGE);
        }
    };
    // `results/` after `run --kernel A --kernel B` holds both kernels: comparing it would
    // take each scenario's newest batch from whichever kernel ran last.
    for (tag, set) in [("A", &a), ("B", &b)] {
        let kernels = set.kernels();
        if kernels.len() > 1 {
            eprintln!(
                "tcplab: {tag} ({}) holds results of several kernels ({}): compare one kernel's directory with another's, e.g. {}/<kernel release>",
                set.root.display(),
                kernels.into_iter().collect::<Vec<_>>().join(", "),
                set.root.display()
            );
            return Ok(Exit::USAGE);
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut differences = 0usize;
    let mut refused = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        a.scenarios.keys().chain(b.scenarios.keys()).collect();
    let w = names.iter().map(|n| n.len()).max().unwrap_or(8);
    if !args.json {
        for (tag, set) in [("A", &a), ("B", &b)] {
            let kernels: std::collections::BTreeSet<String> = set
                .scenarios
                .values()
                .map(|r| {
                    format!(
                        "{} ({})",
                        r.kernel.as_deref().unwrap_or("kernel not recorded"),
                        r.conditions.describe()
                    )
                })
                .collect();
            writeln!(
                out,
                "{tag}: {}  {}",
                set.root.display(),
                kernels.into_iter().collect::<Vec<_>>().join("; ")
            )?;
        }
    }
    for name in names {
        let (ra, rb) = (a.scenarios.get(name), b.scenarios.get(name));
        let (Some(ra), Some(rb)) = (ra, rb) else {
            // Evidence on one side only is a difference: nothing says B still behaves as A.
            differences += 1;
            let side = if ra.is_some() { "A" } else { "B" };
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "scenario": name, "only_in": side, "differs": true,
                        "verdict": format!("only in {side}"),
                    })
                )?;
            } else {
                writeln!(out, "{name:<w$}  only in {side}: a difference")?;
            }
            continue;
        };
        let c = compare(ra, rb, args.alpha);
        let not_comparable = c.conditions_differ.is_some() && !args.force;
        if c.differs {
            if not_comparable {
                refused.push(name.clone());
            } else {
                differences += 1;
            }
        }
        let verdict = match (c.differs, not_comparable) {
            (false, _) => "same",
            (true, false) => "DIFFERENT",
            (true, true) => "differs (other conditions)",
        };
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "scenario": name,
                    "differs": c.differs,
                    "verdict": verdict,
                    "reason": c.reason,
                    "p_value": c.p_value,
                    "alpha": args.alpha,
                    "conditions_differ": c.conditions_differ,
                    "a": { "kernel": ra.kernel, "counts": ra.counts, "runs": ra.runs, "dir": ra.source },
                    "b": { "kernel": rb.kernel, "counts": rb.counts, "runs": rb.runs, "dir": rb.source },
                })
            )?;
        } else {
            writeln!(out, "{name:<w$}  {verdict}")?;
            writeln!(out, "{:<w$}    A: {}", "", ra.counts_text())?;
            writeln!(out, "{:<w$}    B: {}", "", rb.counts_text())?;
            writeln!(out, "{:<w$}    {}", "", c.reason)?;
            if let Some(why) = &c.conditions_differ {
                writeln!(out, "{:<w$}    conditions differ: {why}", "")?;
            }
        }
    }
    if !args.json {
        writeln!(
            out,
            "{differences} difference{} at alpha {}{}",
            if differences == 1 { "" } else { "s" },
            args.alpha,
            if refused.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} more under different conditions, not called kernel differences ({}): rerun both under the same conditions, or --force",
                    refused.len(),
                    refused.join(", ")
                )
            }
        )?;
    }
    out.flush()?;
    Ok(if !refused.is_empty() {
        Exit::USAGE
    } else if differences > 0 {
        Exit::MISMATCH
    } else {
        Exit::OK
    })
}

/// `compare --matrix A B …`: the kernel matrix over result sets that ran apart.
fn matrix(args: &CompareArgs) -> anyhow::Result<u8> {
    let mut columns = Vec::new();
    for dir in [&args.a, &args.b].into_iter().chain(&args.more) {
        let set = match load_set(dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tcplab: {e}");
                return Ok(Exit::USAGE);
            }
        };
        let kernels = set.kernels();
        if kernels.len() > 1 {
            eprintln!(
                "tcplab: {} holds results of several kernels ({}): give one directory per kernel",
                dir.display(),
                kernels.into_iter().collect::<Vec<_>>().join(", ")
            );
            return Ok(Exit::USAGE);
        }
        let kernel = kernels
            .into_iter()
            .next()
            .unwrap_or("kernel not recorded")
            .to_owned();
        let conditions = set
            .scenarios
            .values()
            .next()
            .map(|r| r.conditions.clone())
            .unwrap_or_else(tcplab_compare::Conditions::unknown);
        columns.push(Column {
            kernel,
            conditions,
            results: set.scenarios,
            error: None,
        });
    }
    let (text, facts) = matrix::render(&columns, args.alpha);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write!(out, "{text}")?;
    let scenarios: std::collections::BTreeSet<&String> =
        columns.iter().flat_map(|c| c.results.keys()).collect();
    writeln!(
        out,
        "{} scenarios on {} kernels: {} cells missed their expectation; {} kernel differences",
        scenarios.len(),
        columns.len(),
        facts.failed,
        facts.kernel_differences,
    )?;
    out.flush()?;
    Ok(if facts.failed > 0 || facts.kernel_differences > 0 {
        Exit::MISMATCH
    } else {
        Exit::OK
    })
}
