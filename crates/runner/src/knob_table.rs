//! Every knob a scenario has, in one table: the top-level scalars, `server.*` and `client.*`
//! (the programs' own tables, [`crate::knob`]), `link.*` and `netns.*`. `--set KEY=VALUE`,
//! `--vary` (through [`Scenario::set_knob`]), the sweep's axis units ([`unit_of`]) and the
//! list of known keys in errors are read off it.
//!
//! Adding a knob of the server or the client is one entry in [`crate::knob`]; a scenario-level
//! one is one entry in [`SCENARIO_KNOBS`] below (its TOML field lives beside its siblings in
//! [`crate::scenario`]).

use crate::knob::{Cli, Knob, KnobTable, KnobValue, Unit};
use crate::scenario::{
    ClientKnobs, IpVersion, LinkKnobs, Millis, Scenario, ScenarioError, ServerKnobs,
};

/// What `--set`, `--vary` and the sweep need to know of one knob, whichever table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct KnobInfo {
    /// The full key (`server.close_delay_ms`).
    pub key: String,
    /// What its number counts.
    pub unit: Unit,
    /// What its text must be.
    pub value: &'static str,
    /// The inclusive range of a number, if bounded.
    pub range: Option<(f64, f64)>,
    /// The default, as text (`none` for an unset option).
    pub default: String,
    /// What it does.
    pub doc: String,
}

/// The knobs of a scenario beyond the programs' own: top level, `link.*`, `netns.*`.
pub static SCENARIO_KNOBS: &[Knob<Scenario>] = &[
    Knob {
        key: "repeat",
        unit: Unit::None,
        value: "whole number >= 1",
        range: Some((1.0, u32::MAX as f64)),
        choices: &[],
        optional: false,
        switch: false,
        doc: "Runs per batch (alternating over `ip`).",
        cli: Cli::None,
        set: |s, v| {
            let n: u32 = v.parse().map_err(|_| "not a whole number".to_owned())?;
            if n == 0 {
                return Err("must be at least 1".into());
            }
            s.repeat = n;
            Ok(())
        },
        get: |s| s.repeat.to_string(),
    },
    Knob {
        key: "ip",
        unit: Unit::None,
        value: "ipv4,ipv6",
        range: None,
        choices: &[("ipv4", "127.0.0.1"), ("ipv6", "::1")],
        optional: false,
        switch: false,
        doc: "Address families, run in turn.",
        cli: Cli::None,
        set: |s, v| {
            let mut list = Vec::new();
            for part in v.split(',').map(str::trim) {
                let f = match part {
                    "ipv4" => IpVersion::Ipv4,
                    "ipv6" => IpVersion::Ipv6,
                    other => return Err(format!("unknown family `{other}`")),
                };
                if !list.contains(&f) {
                    list.push(f);
                }
            }
            s.ip = list;
            Ok(())
        },
        get: |s| {
            let v: Vec<&str> = s.ip.iter().map(|i| i.as_str()).collect();
            v.join(",")
        },
    },
    Knob {
        key: "timing_tolerance_ms",
        unit: Unit::Ms,
        value: <Millis as KnobValue>::TYPE,
        range: <Millis as KnobValue>::RANGE,
        choices: &[],
        optional: false,
        switch: false,
        doc: "How far a program's close may be off its knob before the run is a timing miss.",
        cli: Cli::None,
        set: |s, v| {
            s.timing_tolerance_ms = Millis::parse_text(v)?.0;
            Ok(())
        },
        get: |s| Millis(s.timing_tolerance_ms).to_text(),
    },
    Knob {
        key: "link.delay_ms",
        unit: Unit::Ms,
        value: "ms, or none (loopback)",
        range: Some((0.0, crate::scenario::MAX_LINK_DELAY_MS)),
        choices: &[],
        optional: true,
        switch: false,
        doc: "One-way delay of the link between the two namespaces; `none` runs on loopback.",
        cli: Cli::None,
        set: |s, v| {
            s.link = match v {
                "none" | "off" => None,
                _ => {
                    let f: f64 = v.parse().map_err(|_| "not a number".to_owned())?;
                    let delay_ms = LinkKnobs::parse_delay(f)?;
                    if let Some(l) = s.link.as_ref().filter(|l| l.jitter_ms.0 > delay_ms.0) {
                        return Err(format!(
                            "below the link's jitter_ms ({}): a delay must not be shorter \
                             than its jitter",
                            l.jitter_ms.0
                        ));
                    }
                    match s.link.take() {
                        Some(l) => Some(LinkKnobs { delay_ms, ..l }),
                        None => Some(LinkKnobs::with_delay(delay_ms)),
                    }
                }
            };
            Ok(())
        },
        get: |s| {
            s.link
                .as_ref()
                .map_or("none".into(), |l| l.delay_ms.to_text())
        },
    },
    Knob {
        key: "link.loss",
        unit: Unit::None,
        value: "probability",
        range: Some((0.0, 1.0)),
        choices: &[],
        optional: false,
        switch: false,
        doc: "Loss probability per segment, each direction.",
        cli: Cli::None,
        set: |s, v| {
            let link = link_of(s)?;
            let p: f64 = v.parse().map_err(|_| "not a number".to_owned())?;
            if !(0.0..=1.0).contains(&p) {
                return Err("a loss probability must be between 0 and 1".into());
            }
            link.loss = p;
            Ok(())
        },
        get: |s| s.link.as_ref().map_or("0".into(), |l| l.loss.to_string()),
    },
    Knob {
        key: "link.seed",
        unit: Unit::None,
        value: "whole number",
        range: Some((0.0, u64::MAX as f64)),
        choices: &[],
        optional: false,
        switch: false,
        doc: "Seed of every random choice of the link.",
        cli: Cli::None,
        set: |s, v| {
            let link = link_of(s)?;
            link.seed = v.parse().map_err(|_| "not a whole number".to_owned())?;
            Ok(())
        },
        get: |s| s.link.as_ref().map_or("1".into(), |l| l.seed.to_string()),
    },
    Knob {
        key: "link.loss_client",
        unit: Unit::None,
        value: "probability, or none (link.loss)",
        range: Some((0.0, 1.0)),
        choices: &[],
        optional: true,
        switch: false,
        doc: "Loss probability of the client's segments (`none`: link.loss).",
        cli: Cli::None,
        set: |s, v| {
            link_of(s)?.loss_client = parse_loss_side(v)?;
            Ok(())
        },
        get: |s| loss_side_text(s.link.as_ref().and_then(|l| l.loss_client)),
    },
    Knob {
        key: "link.loss_server",
        unit: Unit::None,
        value: "probability, or none (link.loss)",
        range: Some((0.0, 1.0)),
        choices: &[],
        optional: true,
        switch: false,
        doc: "Loss probability of the server's segments (`none`: link.loss).",
        cli: Cli::None,
        set: |s, v| {
            link_of(s)?.loss_server = parse_loss_side(v)?;
            Ok(())
        },
        get: |s| loss_side_text(s.link.as_ref().and_then(|l| l.loss_server)),
    },
    Knob {
        key: "link.jitter_ms",
        unit: Unit::Ms,
        value: <Millis as KnobValue>::TYPE,
        range: Some((0.0, crate::scenario::MAX_LINK_DELAY_MS)),
        choices: &[],
        optional: false,
        switch: false,
        doc: "Each segment's delay is link.delay_ms ± U(jitter), at most link.delay_ms.",
        cli: Cli::None,
        set: |s, v| {
            let link = link_of(s)?;
            let j = Millis::parse_text(v)?;
            // The same rule as a [link] table's (a negative delay cannot be drawn).
            if j.0 > link.delay_ms.0 {
                return Err(format!(
                    "jitter_ms ({}) must not exceed link.delay_ms ({})",
                    j.0, link.delay_ms.0
                ));
            }
            link.jitter_ms = j;
            Ok(())
        },
        get: |s| {
            s.link
                .as_ref()
                .map_or_else(|| Millis(0.0).to_text(), |l| l.jitter_ms.to_text())
        },
    },
    Knob {
        key: "link.reorder",
        unit: Unit::None,
        value: <bool as KnobValue>::TYPE,
        range: None,
        choices: &[],
        optional: false,
        switch: true,
        doc: "With jitter, segments may overtake each other (default: order kept).",
        cli: Cli::None,
        set: |s, v| {
            link_of(s)?.reorder = bool::parse_text(v)?;
            Ok(())
        },
        get: |s| s.link.as_ref().is_some_and(|l| l.reorder).to_string(),
    },
    Knob {
        key: "netns.route_quickack",
        unit: Unit::None,
        value: <bool as KnobValue>::TYPE,
        range: None,
        choices: &[],
        optional: false,
        switch: true,
        doc: "quickack 1 on the `local 127.0.0.1` route (IPv4 loopback runs only).",
        cli: Cli::None,
        set: |s, v| {
            let on = bool::parse_text(v)?;
            if on && (s.link.is_some() || s.ip.contains(&IpVersion::Ipv6)) {
                return Err(
                    "route_quickack changes the IPv4 loopback route only (no [link], ip = ipv4)"
                        .into(),
                );
            }
            s.netns.route_quickack = on;
            Ok(())
        },
        get: |s| s.netns.route_quickack.to_string(),
    },
    Knob {
        key: "netns.route_rto_min_ms",
        unit: Unit::Ms,
        value: "whole ms, or none",
        range: Some((1.0, crate::scenario::MAX_ROUTE_RTO_MIN_MS as f64)),
        choices: &[],
        optional: true,
        switch: false,
        doc: "rto_min (locked) on the `local 127.0.0.1` route: least RTO, and from Linux 6.7 the longest delayed ACK (IPv4 loopback runs only).",
        cli: Cli::None,
        set: |s, v| {
            if v == "none" {
                s.netns.route_rto_min_ms = None;
                return Ok(());
            }
            let ms: i64 = v.parse().map_err(|_| "not a whole number".to_owned())?;
            let ms = crate::scenario::NetnsKnobs::check_rto_min(ms)?;
            if s.link.is_some() || s.ip.contains(&IpVersion::Ipv6) {
                return Err(
                    "route_rto_min_ms changes the IPv4 loopback route only (no [link], ip = ipv4)"
                        .into(),
                );
            }
            s.netns.route_rto_min_ms = Some(ms);
            Ok(())
        },
        get: |s| {
            s.netns
                .route_rto_min_ms
                .map_or_else(|| "none".into(), |ms| ms.to_string())
        },
    },
];

/// `link.loss_client` / `link.loss_server`: a probability, or `none` for `link.loss`.
fn parse_loss_side(v: &str) -> Result<Option<f64>, String> {
    if v == "none" {
        return Ok(None);
    }
    let p: f64 = v.parse().map_err(|_| "not a number".to_owned())?;
    if !(0.0..=1.0).contains(&p) {
        return Err("a loss probability must be between 0 and 1".into());
    }
    Ok(Some(p))
}

fn loss_side_text(p: Option<f64>) -> String {
    p.map_or_else(|| "none".into(), |p| p.to_string())
}

fn link_of(s: &mut Scenario) -> Result<&mut LinkKnobs, String> {
    s.link
        .as_mut()
        .ok_or_else(|| "the scenario has no [link] (set link.delay_ms first)".into())
}

/// Which table a full key belongs to, and its key there.
enum Found {
    Server(&'static Knob<ServerKnobs>),
    Client(&'static Knob<ClientKnobs>),
    Scenario(&'static Knob<Scenario>),
}

fn find(key: &str) -> Option<Found> {
    if let Some(k) = key.strip_prefix("server.") {
        return ServerKnobs::knob(k).map(Found::Server);
    }
    if let Some(k) = key.strip_prefix("client.") {
        return ClientKnobs::knob(k).map(Found::Client);
    }
    SCENARIO_KNOBS
        .iter()
        .find(|k| k.key == key)
        .map(Found::Scenario)
}

fn info<T: Default>(prefix: &str, k: &Knob<T>) -> KnobInfo {
    KnobInfo {
        key: format!("{prefix}{}", k.key),
        unit: k.unit,
        value: k.value,
        range: k.range,
        default: (k.get)(&T::default()),
        doc: k.doc_line(),
    }
}

/// Every knob `--set`/`--vary` take, in the order errors list them.
pub fn all() -> Vec<KnobInfo> {
    let top = SCENARIO_KNOBS.iter().filter(|k| !k.key.contains('.'));
    let nested = SCENARIO_KNOBS.iter().filter(|k| k.key.contains('.'));
    let mut out: Vec<KnobInfo> = top.map(scenario_info).collect();
    out.extend(ServerKnobs::KNOBS.iter().map(|k| info("server.", k)));
    out.extend(ClientKnobs::KNOBS.iter().map(|k| info("client.", k)));
    out.extend(nested.map(scenario_info));
    out
}

fn scenario_info(k: &Knob<Scenario>) -> KnobInfo {
    KnobInfo {
        key: k.key.to_owned(),
        unit: k.unit,
        value: k.value,
        range: k.range,
        // A scenario has no default as a whole; the knob's own default is its value in a
        // scenario that does not mention it.
        default: match k.key {
            "repeat" => crate::scenario::DEFAULT_REPEAT.to_string(),
            "ip" => "ipv4".into(),
            "timing_tolerance_ms" => Millis(crate::scenario::DEFAULT_TIMING_TOLERANCE_MS).to_text(),
            "link.delay_ms" => "none".into(),
            "link.loss" => "0".into(),
            "link.seed" => "1".into(),
            "link.loss_client" | "link.loss_server" => "none".into(),
            "link.jitter_ms" => Millis(0.0).to_text(),
            "netns.route_rto_min_ms" => "none".into(),
            _ => "false".into(),
        },
        doc: k.doc_line(),
    }
}

/// The keys `--set`/`--vary` take, comma-separated (for errors).
pub fn keys() -> String {
    all()
        .iter()
        .map(|k| k.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The unit of a knob's number (`ms`, `s`, or "" for none and for unknown keys): the sweep's
/// axis labels and boundary text.
pub fn unit_of(key: &str) -> &'static str {
    match find(key) {
        Some(Found::Server(k)) => k.unit.label(),
        Some(Found::Client(k)) => k.unit.label(),
        Some(Found::Scenario(k)) => k.unit.label(),
        None => "",
    }
}

impl Scenario {
    /// Set one knob from its text form, e.g. `("client.close_delay_ms", "35")`,
    /// `("server.close", "linger0")`, `("ip", "ipv4,ipv6")`, `("link.delay_ms", "10")`
    /// (`"none"` runs on loopback again). See [`all`].
    pub fn set_knob(&mut self, key: &str, value: &str) -> Result<(), ScenarioError> {
        let v = value.trim();
        let set = match find(key) {
            Some(Found::Server(k)) => (k.set)(&mut self.server, v),
            Some(Found::Client(k)) => (k.set)(&mut self.client, v),
            Some(Found::Scenario(k)) => (k.set)(self, v),
            None => {
                return Err(ScenarioError::UnknownKnob {
                    key: key.to_owned(),
                    known: keys(),
                })
            }
        };
        set.map_err(|reason| ScenarioError::BadKnobValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        })
    }

    /// A knob's current value in its text form (what `set_knob` reads back).
    pub fn knob_text(&self, key: &str) -> Option<String> {
        Some(match find(key)? {
            Found::Server(k) => (k.get)(&self.server),
            Found::Client(k) => (k.get)(&self.client),
            Found::Scenario(k) => (k.get)(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario() -> Scenario {
        Scenario::parse("[expect]\nkind = \"three-way\"\n", Path::new("x.toml")).unwrap()
    }

    /// Values other than the default for each knob (so a round trip proves the value moved).
    fn other_value(k: &KnobInfo) -> &'static str {
        match (k.key.as_str(), k.value) {
            ("ip", _) => "ipv6,ipv4",
            ("link.delay_ms", _) => "12.5",
            ("link.loss", _) => "0.25",
            ("link.loss_client" | "link.loss_server", _) => "0.5",
            ("link.jitter_ms", _) => "2.5",
            ("netns.route_rto_min_ms", _) => "10",
            (_, "true|false") if k.default == "false" => "true",
            (_, "true|false") => "false",
            (_, "close mode") => "shutdown_rdwr",
            (_, "same|any") => "any",
            (_, "ms") => "35.5",
            _ => "7",
        }
    }

    #[test]
    fn every_knob_round_trips_through_set() {
        for k in all() {
            let mut s = scenario();
            if k.key.starts_with("link.") && k.key != "link.delay_ms" {
                s.set_knob("link.delay_ms", "5").unwrap();
            }
            let before = s.knob_text(&k.key).unwrap();
            let v = other_value(&k);
            s.set_knob(&k.key, v)
                .unwrap_or_else(|e| panic!("{}={v}: {e}", k.key));
            let after = s.knob_text(&k.key).unwrap();
            assert_ne!(before, after, "{}: {v} changed nothing", k.key);
            let mut again = s.clone();
            again.set_knob(&k.key, &after).unwrap();
            assert_eq!(again, s, "{}: `{after}` reads back as itself", k.key);
        }
    }

    #[test]
    fn every_default_is_the_value_of_an_empty_scenario() {
        let s = scenario();
        for k in all() {
            assert_eq!(
                s.knob_text(&k.key).as_deref(),
                Some(k.default.as_str()),
                "{}",
                k.key
            );
        }
    }

    #[test]
    fn the_links_jitter_reorder_and_per_side_loss_are_set_keys() {
        let mut s = scenario();
        s.set_knob("link.delay_ms", "10").unwrap();
        for (k, v) in [
            ("link.jitter_ms", "3"),
            ("link.reorder", "true"),
            ("link.loss_client", "0.2"),
            ("link.loss_server", "0"),
        ] {
            s.set_knob(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        let im = s.link.as_ref().unwrap().impairments(0);
        assert_eq!(im.jitter, std::time::Duration::from_millis(3));
        assert!(im.reorder);
        assert_eq!((im.loss_client, im.loss_server), (0.2, 0.0));
        // `none` goes back to link.loss for that side.
        s.set_knob("link.loss", "0.1").unwrap();
        s.set_knob("link.loss_client", "none").unwrap();
        let im = s.link.as_ref().unwrap().impairments(0);
        assert_eq!((im.loss_client, im.loss_server), (0.1, 0.0));
        // As in a [link] table: jitter never exceeds the delay, from either side.
        let e = s.set_knob("link.jitter_ms", "11").unwrap_err().to_string();
        assert!(
            e.contains("link.jitter_ms") && e.contains("must not exceed"),
            "{e}"
        );
        let e = s.set_knob("link.delay_ms", "2").unwrap_err().to_string();
        assert!(
            e.contains("link.delay_ms") && e.contains("jitter_ms (3)"),
            "{e}"
        );
        let e = s.set_knob("link.loss_server", "2").unwrap_err().to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
        // Without a [link] there is nothing to jitter.
        let e = scenario()
            .set_knob("link.jitter_ms", "1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("set link.delay_ms first"), "{e}");
    }

    #[test]
    fn todays_spellings_keep_working() {
        // `--set`/`--vary` keys and values scripts use (README, docs, shipped sweeps).
        let mut s = scenario();
        for (k, v) in [
            ("repeat", "3"),
            ("ip", "ipv4,ipv6"),
            ("ip", "ipv4"),
            ("server.close_delay_ms", "100"),
            ("server.close", "linger0"),
            ("server.close", "shutdown"),
            ("server.read_request", "false"),
            ("server.nodelay", "yes"),
            ("server.quickack", "on"),
            ("client.close_delay_ms", "2.5"),
            ("client.close", "close"),
            ("client.read_response", "0"),
            ("client.nodelay", "1"),
            ("client.quickack", "true"),
            ("timing_tolerance_ms", "10"),
            ("link.delay_ms", "10"),
            ("link.loss", "0.1"),
            ("link.seed", "42"),
            ("link.delay_ms", "none"),
        ] {
            s.set_knob(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        assert_eq!(s.link, None);
        assert_eq!(s.client.close_delay_ms, Millis(2.5));
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_limit() {
        let mut s = scenario();
        let e = s.set_knob("server.close_delay_ms", "3600001").unwrap_err();
        assert_eq!(
            e.to_string(),
            "knob `server.close_delay_ms`: invalid value `3600001`: \
             a delay must be between 0 and 3600000 ms, got 3600001"
        );
        let e = s.set_knob("link.delay_ms", "1001").unwrap_err();
        assert_eq!(
            e.to_string(),
            "knob `link.delay_ms`: invalid value `1001`: \
             a link delay must be between 0 and 1000 ms, got 1001"
        );
        let e = s.set_knob("link.loss", "0.5").unwrap_err().to_string();
        assert!(e.contains("set link.delay_ms first"), "{e}");
        let e = s.set_knob("client.delay", "1").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown knob `client.delay` (known: repeat, ip, timing_tolerance_ms, server.close_delay_ms,"),
            "{e}"
        );
    }

    #[test]
    fn a_file_past_the_limit_is_located_and_names_the_limit() {
        let e = Scenario::parse(
            "[server]\nclose_delay_ms = 3600001\n[expect]\nkind = \"reset\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.toml:2:18: a delay must be between 0 and 3600000 ms, got 3600001"
        );
        let e = Scenario::parse(
            "[client]\nlinger = 1\n[expect]\nkind = \"reset\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "x.toml:2:1: unknown field `linger`, expected one of `close_delay_ms`, `close`, `read_response`, \
                 `nodelay`, `quickack`, `linger_s`, `user_timeout_ms`, `linger2_s`, \
                 `reconnect_after_ms`, `reconnect_port`, `abandon_connect_ms`, `read_delay_ms`"
            ),
            "{e}"
        );
    }

    #[test]
    fn units_come_from_the_table() {
        assert_eq!(unit_of("server.close_delay_ms"), "ms");
        assert_eq!(unit_of("client.linger_s"), "s");
        assert_eq!(unit_of("link.loss"), "");
        assert_eq!(unit_of("no.such"), "");
    }
}
