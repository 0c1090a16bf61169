//! The flags of `tcplab server` and `tcplab client`, derived from the programs' knob tables
//! ([`tcplab_runner::knob`]): one flag per knob, spelled `--key-with-dashes` (a switch for an
//! on/off knob that is off by default, `--no-read` for the read knobs), its help line the
//! knob's doc line, its values checked by the same parser as `--set`.

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use tcplab_runner::knob::{Cli, KnobTable};

/// A program's knobs as command-line flags (`#[command(flatten)]` it).
#[derive(Debug, Clone, Default)]
pub struct KnobFlags<K>(pub K);

impl<K: KnobTable + Clone + std::fmt::Debug + Send + Sync> Args for KnobFlags<K> {
    fn augment_args(mut cmd: Command) -> Command {
        for k in K::KNOBS {
            let Some(long) = k.flag() else { continue };
            let mut arg = Arg::new(k.key).long(long).help(k.flag_help());
            if k.switch || matches!(k.cli, Cli::Negated(..)) {
                arg = arg.action(ArgAction::SetTrue);
            } else {
                arg = arg
                    .action(ArgAction::Set)
                    .value_name(k.key.to_uppercase())
                    // `-5` must reach the parser for a clear message, not "unexpected argument".
                    .allow_hyphen_values(true);
                arg = if k.choices.is_empty() {
                    let set = k.set;
                    arg.value_parser(move |text: &str| -> Result<String, String> {
                        set(&mut K::default(), text)?;
                        Ok(text.to_owned())
                    })
                } else {
                    arg.value_parser(PossibleValuesParser::new(
                        k.choices
                            .iter()
                            .map(|(name, help)| PossibleValue::new(*name).help(*help)),
                    ))
                };
                if !k.optional {
                    arg = arg.default_value((k.get)(&K::default()));
                }
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<K: KnobTable> FromArgMatches for KnobFlags<K> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = KnobFlags(K::default());
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for k in K::KNOBS {
            if k.flag().is_none() {
                continue;
            }
            let text = match k.cli {
                Cli::Negated(..) => m.get_flag(k.key).then(|| "false".to_owned()),
                _ if k.switch => m.get_flag(k.key).then(|| "true".to_owned()),
                _ => m.get_one::<String>(k.key).cloned(),
            };
            if let Some(text) = text {
                (k.set)(&mut self.0, &text).map_err(|e| {
                    clap::Error::raw(
                        clap::error::ErrorKind::ValueValidation,
                        format!("--{}: {e}\n", k.flag().unwrap_or_default()),
                    )
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::args::{Cli, Command};
    use clap::{CommandFactory, Parser};
    use tcplab_runner::knob::{ClientKnobs, KnobTable, ServerKnobs};
    use tcplab_server::CloseHow;

    fn server(args: &[&str]) -> ServerKnobs {
        let cli = Cli::try_parse_from([&["tcplab", "server"], args].concat()).unwrap();
        match cli.command {
            Command::Server(a) => a.knobs.0,
            _ => unreachable!(),
        }
    }

    fn client(args: &[&str]) -> ClientKnobs {
        let cli = Cli::try_parse_from([&["tcplab", "client"], args].concat()).unwrap();
        match cli.command {
            Command::Client(a) => a.knobs.0,
            _ => unreachable!(),
        }
    }

    #[test]
    fn no_flags_are_the_scenario_defaults() {
        assert_eq!(server(&[]), ServerKnobs::default());
        assert_eq!(client(&[]), ClientKnobs::default());
    }

    #[test]
    fn todays_flags_and_the_close_knobs_set_their_knobs() {
        let s = server(&[
            "--close-delay-ms",
            "2.5",
            "--close",
            "linger0",
            "--no-read",
            "--nodelay",
            "--quickack",
        ]);
        assert_eq!(s.close_delay_ms.0, 2.5);
        assert_eq!(s.close, CloseHow::Linger0);
        assert!(!s.read_request && s.nodelay && s.quickack);
        let c = client(&[
            "--close",
            "shutdown_rdwr",
            "--linger-s",
            "3",
            "--user-timeout-ms",
            "250",
            "--no-read",
        ]);
        assert_eq!(c.close, CloseHow::ShutdownRdwr);
        assert_eq!((c.linger_s, c.user_timeout_ms), (Some(3), Some(250)));
        assert!(!c.read_response);
    }

    /// The help of `server`/`client` lists exactly the knobs of their tables (plus the
    /// programs' own flags), each with its doc line.
    #[test]
    fn help_lists_every_knob_of_the_table() {
        fn check<K: KnobTable>(name: &str) {
            let mut cmd = Cli::command();
            let sub = cmd.find_subcommand_mut(name).unwrap();
            let help = sub.render_long_help().to_string();
            let longs: Vec<String> = sub
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
            let own = ["addr", "port", "ipv6", "count", "timeout-ms", "help"];
            let mut from_table: Vec<String> = K::KNOBS.iter().filter_map(|k| k.flag()).collect();
            from_table.sort();
            let mut rest: Vec<String> = longs
                .into_iter()
                .filter(|l| !own.contains(&l.as_str()))
                .collect();
            rest.sort();
            assert_eq!(rest, from_table, "{name}");
            for k in K::KNOBS {
                assert!(help.contains(&k.flag_help()), "{name}: {}", k.key);
            }
        }
        check::<ServerKnobs>("server");
        check::<ClientKnobs>("client");
    }
}
