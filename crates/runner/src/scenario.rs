//! Scenario files: TOML with the knobs of both programs, the repeat count, the address
//! families to run, and the expectation.
//!
//! ```toml
//! # What this shows and why the kernel does it (RFC 9293 §3.6 ...).
//! repeat = 20
//! ip = ["ipv4", "ipv6"]          # optional, default ["ipv4"]
//! max_jobs = 1                    # optional cap on parallel runs (µs-sensitive races)
//! timing_tolerance_ms = 5         # optional: a close this far off its knob is a timing miss
//! since_kernel = "6.11"           # optional: the kernel that added a [sysctl] key it sets;
//!                                 #   an older kernel without the key skips the scenario
//!
//! [server]                        # knobs as in tcplab_server::ServerOptions
//! close_delay_ms = 0
//! [client]                        # knobs as in tcplab_client::ClientOptions
//! close_delay_ms = 20
//!
//! [expect]
//! kind = "three-way"              # every run: this kind ...
//! active_closer = "server"        # ... and this closer (with `kind` or `kinds`)
//! # kinds = ["three-way", "simultaneous"]      # or: a set of acceptable kinds
//! # min_ratio = { "three-way/server" = 0.5 }   # and/or: outcome ratios over all runs
//! # max_ratio = { "four-way/server" = 0.05 }   # an outcome at most this share of the runs
//! # states.server = ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
//! # states.server = [[...], [...]]             # or: any one of these sequences
//! # fin_ack_delay_ms = { min = 30, max = 60 }  # four-way only: first FIN -> its separate ACK
//! # fin_retransmits = { min = 1 }              # FIN retransmissions seen
//! # kernel_states.client = ["FIN_WAIT_1", "CLOSING", "TIME_WAIT"]  # kernel's own, subsequence
//! # Defaults every run is held to unless relaxed (the full shape of the close):
//! # allow_warnings = []                        # any analysis warning fails the run
//! # final_ack = true                           # for FIN closes; false | "any"
//! # fin_retransmits = { max = 0 }              # unless [link] loses or faults segments
//! # close_duration_ms = { max = 1000 }         # first FIN/RST to the end of the close
//! # kernel_end.client = ["CLOSED", "TIME_WAIT"]  # last kernel state of each socket; [] = any
//!
//! # [expect.since_kernel."6.7"]                # on kernel 6.7 and later (the running one:
//! # fin_ack_delay_ms = { min = 5, max = 25 }   #  a guest's own), these fields replace the
//! #                                            #  ones above (later versions win)
//! # kinds = ["three-way", "four-way"]          # `kind` and `kinds` are one promise: either
//! #                                            #  one here replaces both above
//!
//! # [expect.client]                            # what the client's calls returned:
//! # recv = "eof"                               # ok | eof | errno name, or a list of them
//! # close_blocked_ms = { max = 5 }             # (connect, send, recv, shutdown,
//! #                                            #  recv_after_shutdown, send_after_shutdown, close)
//!
//! [sysctl]                        # optional extra per-namespace sysctls (net.* only)
//! "net.ipv4.tcp_timestamps" = "1"
//!
//! [netns]                         # optional
//! route_quickack = true           # quickack 1 on `local 127.0.0.1` (IPv4 loopback only)
//! route_rto_min_ms = 10           # rto_min 10ms (locked) on that route (IPv4 loopback only)
//!
//! [link]                          # optional: run across a delayed link, not loopback
//! delay_ms = 10                   # one-way delay, 0 ..= 1000 ms (µs precision)
//! loss = 0.0                      # per segment, each direction (loss_client, loss_server)
//! jitter_ms = 0.0                 # delay ± U(jitter), <= delay_ms; order kept unless
//! reorder = false                 #   reorder = true
//! seed = 1                        # of every random choice (run i: derived from seed and i)
//!
//! [[link.fault]]                  # any number
//! segment = "server FIN"          # "<client|server> <SYN|SYN-ACK|FIN|ACK-of-FIN|RST|data>"
//! nth = 1                         # which matching segment (default 1; "all": every one)
//! action = "drop"                 # "drop" | "delay" (with delay_ms = N) | "duplicate"
//!
//! [[link.inject]]                 # any number: a forged or replayed segment
//! at = "client ACK-of-FIN"        # the named moment: this segment crossing the link ...
//! nth = 1                         # ... the nth time (default 1)
//! after_ms = 50                   # it enters the link this long after (default 0)
//! to = "client"                   # forge a segment to this end (from the other) ...
//! flags = "R"                     #   packetdrill's letters S F R P . (. = ACK)
//! seq = "next"                    #   "next" | "next+N" | "next-N": the sender's next seq
//! ack = "next"                    #   (with ".") the recipient's next seq
//! len = 0                         #   payload bytes; window = N (default the sender's)
//! # replay = true                 # ... or send the `at` segment again instead
//!
//! [[link.hold]]                   # any number: reorder one segment behind another
//! segment = "server data"         # this segment (nth = 1) ...
//! behind = "server FIN"           # ... follows this one (behind_nth = 1); at most 1 s held
//! ```
//!
//! Without `[link]`, server and client share one namespace and talk over `lo` (127.0.0.1 /
//! ::1). With it, each gets its own namespace and they talk across a TUN link whose relay
//! delays every packet by `delay_ms` ([`tcplab_capture::DelayLink`]): the server listens on
//! 192.0.2.2 / 2001:db8::2, the client connects from 192.0.2.1 / 2001:db8::1, and both ends
//! are captured (the client's view is `capture.pcap`). Fresh mode only (pooled runs reject it).
//!
//! A `[expect.since_kernel."V"]` table states what changed in the kernel at V, field by field:
//! each field it sets replaces the one above (a table such as `states` or `client` as a
//! whole), except that `kind` and `kinds` replace each other, so a deterministic close can
//! become a bounded race on newer kernels (`kinds` with `min_ratio`/`max_ratio`, and
//! `states` listing the sequence of each acceptable shape) while older kernels keep the
//! exact promise. The merged expectation is validated as a whole on the kernel it applies
//! to; `tcplab run --json` and meta.json record that effective expectation.
//!
//! Every table denies unknown keys. Errors carry `file:line:column` (the toml crate gives the
//! byte span of the offending key or value; semantic checks keep spans with [`toml::Spanned`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use tcplab_capture::script::MAX_FORGED_PAYLOAD;
use tcplab_capture::{
    End, Fault, FaultAction, Flags, Forge, Impairments, InjectAction, Injection, Reorder, Script,
    SegmentSpec, SeqExpr,
};
use tcplab_client::CallResult;
use tcplab_trace::{Closer, TcpState, TeardownKind};
use toml::Spanned;

pub use crate::discover::discover;

pub use crate::scenario_error::ScenarioError;

/// Address family of a run: 127.0.0.1 / ::1 on loopback, 192.0.2.x / 2001:db8::x across a
/// `[link]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    /// 127.0.0.1.
    Ipv4,
    /// ::1.
    Ipv6,
}

impl IpVersion {
    /// The loopback address of this family.
    pub fn loopback(self) -> IpAddr {
        match self {
            IpVersion::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpVersion::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    }

    /// `ipv4` / `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpVersion::Ipv4 => "ipv4",
            IpVersion::Ipv6 => "ipv6",
        }
    }
}

use crate::kernel_version::KernelVersion;
pub use crate::knob::{ClientKnobs, ServerKnobs};
pub use tcplab_server::timing::Millis;

/// The `[link]` table: run across a link with a one-way delay instead of loopback, with
/// optional seeded loss/jitter and `[[link.fault]]`s aimed at one segment
/// ([`tcplab_capture::impair`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkKnobs {
    /// One-way delay of the link, ms (0 ..= [`MAX_LINK_DELAY_MS`]).
    #[serde(deserialize_with = "link_delay")]
    pub delay_ms: Millis,
    /// Loss probability per segment, each direction (0..=1).
    #[serde(default, deserialize_with = "probability")]
    pub loss: f64,
    /// Loss of the segments the client sends (overrides `loss` for that direction).
    #[serde(default, deserialize_with = "opt_probability")]
    pub loss_client: Option<f64>,
    /// Loss of the segments the server sends (overrides `loss` for that direction).
    #[serde(default, deserialize_with = "opt_probability")]
    pub loss_server: Option<f64>,
    /// Each segment's delay is `delay_ms ± U(jitter_ms)` (at most `delay_ms`).
    #[serde(default = "zero_ms", deserialize_with = "link_delay")]
    pub jitter_ms: Millis,
    /// With jitter, may segments overtake each other? (default: order kept)
    #[serde(default)]
    pub reorder: bool,
    /// Seed of every random choice: same seed, same drops (run `i` of a batch draws from
    /// a seed derived from this and `i`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Targeted faults (`[[link.fault]]`).
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<LinkFault>,
    /// Forged or replayed segments at named moments (`[[link.inject]]`).
    #[serde(default, rename = "inject", skip_serializing_if = "Vec::is_empty")]
    pub injects: Vec<LinkInject>,
    /// Segments held behind others (`[[link.hold]]`: one segment reordered behind another;
    /// named apart from `reorder`, which lets jitter reorder any segment).
    #[serde(default, rename = "hold", skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<LinkHold>,
}

fn parse_nth<E: serde::de::Error>(field: &str, n: Option<i64>) -> Result<u32, E> {
    match n {
        None => Ok(1),
        Some(n) if n < 1 => Err(E::custom(format!("{field} must be at least 1, got {n}"))),
        Some(n) => u32::try_from(n)
            .map_err(|_| E::custom(format!("{field} must be at most {}, got {n}", u32::MAX))),
    }
}

fn parse_segment<E: serde::de::Error>(field: &str, s: &str) -> Result<SegmentSpec, E> {
    s.parse()
        .map_err(|e: String| E::custom(format!("{field}: {e}")))
}

/// One `[[link.inject]]`: a segment forged from the ends' sequence state, or the named
/// segment replayed, entering the link `after_ms` after the named segment crossed it
/// ([`tcplab_capture::script`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkInject(pub Injection);

impl<'de> Deserialize<'de> for LinkInject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            at: String,
            nth: Option<i64>,
            after_ms: Option<Millis>,
            replay: Option<bool>,
            to: Option<String>,
            flags: Option<String>,
            seq: Option<String>,
            ack: Option<String>,
            len: Option<i64>,
            window: Option<i64>,
        }
        use serde::de::Error;
        let r = Raw::deserialize(d)?;
        let at = parse_segment("at", &r.at)?;
        let nth = parse_nth("nth", r.nth)?;
        let after = std::time::Duration::from_secs_f64(r.after_ms.map_or(0.0, |m| m.0) / 1e3);
        let forged_fields = [
            ("to", r.to.is_some()),
            ("flags", r.flags.is_some()),
            ("seq", r.seq.is_some()),
            ("ack", r.ack.is_some()),
            ("len", r.len.is_some()),
            ("window", r.window.is_some()),
        ];
        let action = if r.replay == Some(true) {
            if let Some((f, _)) = forged_fields.iter().find(|(_, set)| *set) {
                return Err(D::Error::custom(format!(
                    "{f} describes a forged segment; replay = true sends the `at` segment as it was"
                )));
            }
            InjectAction::Replay
        } else {
            let (Some(to), Some(flags)) = (&r.to, &r.flags) else {
                return Err(D::Error::custom(
                    "an inject needs `to` and `flags` (a forged segment) or `replay = true`",
                ));
            };
            let to = match to.as_str() {
                "client" => End::Client,
                "server" => End::Server,
                other => {
                    return Err(D::Error::custom(format!(
                        "to must be \"client\" or \"server\", got {other:?}"
                    )))
                }
            };
            let flags: Flags = flags.parse().map_err(|e: String| D::Error::custom(e))?;
            let expr = |field: &str, v: &Option<String>| -> Result<SeqExpr, D::Error> {
                v.as_deref().map_or(Ok(SeqExpr::default()), |v| {
                    v.parse()
                        .map_err(|e: String| D::Error::custom(format!("{field} {e}")))
                })
            };
            if r.ack.is_some() && !flags.ack() {
                return Err(D::Error::custom(format!(
                    "ack is set but flags {flags:?} have no ACK (.)",
                    flags = flags.to_string()
                )));
            }
            let len = match r.len {
                None => 0,
                Some(n) => u16::try_from(n)
                    .ok()
                    .filter(|n| *n <= MAX_FORGED_PAYLOAD)
                    .ok_or_else(|| {
                        D::Error::custom(format!(
                            "len must be between 0 and {MAX_FORGED_PAYLOAD}, got {n}"
                        ))
                    })?,
            };
            let window = r
                .window
                .map(|w| {
                    u16::try_from(w).map_err(|_| {
                        D::Error::custom(format!("window must be between 0 and 65535, got {w}"))
                    })
                })
                .transpose()?;
            InjectAction::Forge(Forge {
                to,
                flags,
                seq: expr("seq", &r.seq)?,
                ack: expr("ack", &r.ack)?,
                len,
                window,
            })
        };
        Ok(LinkInject(Injection {
            at,
            nth,
            after,
            action,
        }))
    }
}

impl Serialize for LinkInject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.0;
        let mut m = serde_json::json!({
            "at": i.at.to_string(),
            "nth": i.nth,
            "after_ms": i.after.as_secs_f64() * 1e3,
        });
        match i.action {
            InjectAction::Replay => m["replay"] = true.into(),
            InjectAction::Forge(f) => {
                m["to"] = f.to.as_str().into();
                m["flags"] = f.flags.to_string().into();
                m["seq"] = f.seq.to_string().into();
                m["ack"] = f.ack.to_string().into();
                m["len"] = f.len.into();
                if let Some(w) = f.window {
                    m["window"] = w.into();
                }
            }
        }
        m.serialize(s)
    }
}

/// One `[[link.hold]]`: `segment` held at the relay until `behind` crossed.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkHold(pub Reorder);

impl<'de> Deserialize<'de> for LinkHold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            segment: String,
            nth: Option<i64>,
            behind: String,
            behind_nth: Option<i64>,
        }
        let r = Raw::deserialize(d)?;
        let segment = parse_segment("segment", &r.segment)?;
        let behind = parse_segment("behind", &r.behind)?;
        let nth = parse_nth("nth", r.nth)?;
        let behind_nth = parse_nth("behind_nth", r.behind_nth)?;
        if segment == behind && nth == behind_nth {
            return Err(serde::de::Error::custom(
                "a segment cannot be held behind itself",
            ));
        }
        Ok(LinkHold(Reorder {
            segment,
            nth,
            behind,
            behind_nth,
        }))
    }
}

impl Serialize for LinkHold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        serde_json::json!({
            "segment": r.segment.to_string(),
            "nth": r.nth,
            "behind": r.behind.to_string(),
            "behind_nth": r.behind_nth,
        })
        .serialize(s)
    }
}

fn zero_ms() -> Millis {
    Millis(0.0)
}

fn default_seed() -> u64 {
    1
}

fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
    }
    let v = match Num::deserialize(d)? {
        Num::I(i) => i as f64,
        Num::F(f) => f,
    };
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "a loss probability must be between 0 and 1, got {}",
            crate::shown::number(v)
        )))
    }
}

fn opt_probability<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    probability(d).map(Some)
}

/// One `[[link.fault]]`: `action` on the `nth` segment matching `segment` (`nth = "all"`:
/// on every one).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFault {
    /// `"<client|server> <SYN|SYN-ACK|FIN|ACK-of-FIN|RST|data>"`.
    pub segment: SegmentSpec,
    /// Which matching segment (1 = the first; [`Fault::EVERY`]: all).
    pub nth: u32,
    /// drop / delay (with `delay_ms`) / duplicate.
    pub action: FaultAction,
}

impl LinkFault {
    /// The capture crate's form.
    pub fn to_fault(&self) -> Fault {
        Fault {
            segment: self.segment,
            nth: self.nth,
            action: self.action,
        }
    }
}

impl<'de> Deserialize<'de> for LinkFault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            segment: String,
            nth: Option<RawNth>,
            action: String,
            delay_ms: Option<Millis>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum RawNth {
            N(i64),
            Word(String),
        }
        use serde::de::Error;
        let r = Raw::deserialize(d)?;
        let segment: SegmentSpec = r.segment.parse().map_err(D::Error::custom)?;
        let nth = match r.nth {
            None => 1,
            Some(RawNth::Word(w)) if w == "all" => Fault::EVERY,
            Some(RawNth::Word(w)) => {
                return Err(D::Error::custom(format!(
                    "nth must be a number from 1 or \"all\", got {w:?}"
                )))
            }
            Some(RawNth::N(n)) if n < 1 => {
                return Err(D::Error::custom(format!("nth must be at least 1, got {n}")))
            }
            Some(RawNth::N(n)) => u32::try_from(n).map_err(|_| {
                D::Error::custom(format!("nth must be at most {}, got {n}", u32::MAX))
            })?,
        };
        let action = match (r.action.as_str(), r.delay_ms) {
            ("drop", None) => FaultAction::Drop,
            ("duplicate", None) => FaultAction::Duplicate,
            ("delay", Some(ms)) => {
                let v = LinkKnobs::parse_delay(ms.0).map_err(D::Error::custom)?;
                FaultAction::Delay(std::time::Duration::from_secs_f64(v.0 / 1e3))
            }
            ("delay", None) => return Err(D::Error::custom("action \"delay\" needs delay_ms")),
            ("drop" | "duplicate", Some(_)) => {
                return Err(D::Error::custom(format!(
                    "delay_ms only goes with action \"delay\", not {:?}",
                    r.action
                )))
            }
            (other, _) => {
                return Err(D::Error::custom(format!(
                    "action must be \"drop\", \"delay\" or \"duplicate\", got {other:?}"
                )))
            }
        };
        Ok(LinkFault {
            segment,
            nth,
            action,
        })
    }
}

impl Serialize for LinkFault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (action, delay_ms) = match self.action {
            FaultAction::Drop => ("drop", None),
            FaultAction::Duplicate => ("duplicate", None),
            FaultAction::Delay(d) => ("delay", Some(d.as_secs_f64() * 1e3)),
        };
        let nth = if self.nth == Fault::EVERY {
            serde_json::Value::from("all")
        } else {
            self.nth.into()
        };
        serde_json::json!({
            "segment": self.segment.to_string(),
            "nth": nth,
            "action": action,
            "delay_ms": delay_ms,
        })
        .serialize(s)
    }
}

/// The longest one-way link delay a scenario may ask for (the link's own limit).
pub const MAX_LINK_DELAY_MS: f64 = 1_000.0;

impl LinkKnobs {
    pub(crate) fn parse_delay(v: f64) -> Result<Millis, String> {
        if v.is_finite() && (0.0..=MAX_LINK_DELAY_MS).contains(&v) {
            Ok(Millis(v))
        } else {
            Err(format!(
                "a link delay must be between 0 and {MAX_LINK_DELAY_MS} ms, got {}",
                crate::shown::number(v)
            ))
        }
    }

    /// True when the relay may lose or disturb segments on purpose (loss or faults): then a
    /// retransmitted FIN is the link's doing, not the kernel's.
    pub fn impaired(&self) -> bool {
        self.loss > 0.0
            || self.loss_client.is_some_and(|l| l > 0.0)
            || self.loss_server.is_some_and(|l| l > 0.0)
            || !self.faults.is_empty()
            || !self.holds.is_empty()
    }

    /// True when an `[[link.inject]]` forges a SYN: the capture then holds a second
    /// connection on the run's 4-tuple (RFC 9293: a SYN after the close starts a new one),
    /// the script's, not the programs'.
    pub fn forges_syn(&self) -> bool {
        self.injects
            .iter()
            .any(|i| matches!(i.0.action, InjectAction::Forge(f) if f.flags.syn()))
    }

    /// The scripted segments of the link (`[[link.inject]]`, `[[link.hold]]`).
    pub fn script(&self) -> Script {
        Script {
            inject: self.injects.iter().map(|i| i.0).collect(),
            reorder: self.holds.iter().map(|r| r.0).collect(),
        }
    }

    /// The delay as a [`std::time::Duration`].
    pub fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.delay_ms.0 / 1e3)
    }

    /// A plain delayed link: no loss, jitter or fault.
    pub fn with_delay(delay_ms: Millis) -> LinkKnobs {
        LinkKnobs {
            delay_ms,
            loss: 0.0,
            loss_client: None,
            loss_server: None,
            jitter_ms: Millis(0.0),
            reorder: false,
            seed: default_seed(),
            faults: Vec::new(),
            injects: Vec::new(),
            holds: Vec::new(),
        }
    }

    /// What the relay does on top of the delay for run `index` of a batch (each run draws
    /// from its own seed, derived from `seed` and `index`).
    pub fn impairments(&self, index: u32) -> Impairments {
        Impairments {
            loss_client: self.loss_client.unwrap_or(self.loss),
            loss_server: self.loss_server.unwrap_or(self.loss),
            jitter: std::time::Duration::from_secs_f64(self.jitter_ms.0 / 1e3),
            reorder: self.reorder,
            seed: tcplab_capture::impair::run_seed(self.seed, index),
            faults: self.faults.iter().map(LinkFault::to_fault).collect(),
        }
    }
}

fn link_delay<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    // Not through `Millis`: its own range (0 ..= MAX_DELAY_MS) would be the one quoted.
    let v = tcplab_server::timing::deserialize_number(d)?;
    LinkKnobs::parse_delay(v).map_err(serde::de::Error::custom)
}

/// The longest delay a scenario may ask for ([`Millis::MAX`]: one limit for every `*_ms`
/// knob); longer is a typo.
pub const MAX_DELAY_MS: f64 = Millis::MAX;

/// A teardown outcome: kind plus active closer, written `three-way/server` (closer `none` for
/// `open`), the key of `counts` in `tcplab run --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Outcome {
    /// The kind.
    pub kind: TeardownKind,
    /// The closer.
    pub closer: Option<Closer>,
}

impl Outcome {
    /// `three-way/server`.
    pub fn key(&self) -> String {
        tcplab_trace::Summary::key(self.kind, self.closer)
    }

    /// Parse `kind/closer`.
    pub fn parse(s: &str) -> Result<Outcome, String> {
        let (k, c) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected `kind/closer`, e.g. `three-way/server`"))?;
        let kind = parse_kind(k)?;
        let closer = if c == "none" {
            None
        } else {
            Some(parse_closer(c)?)
        };
        Ok(Outcome { kind, closer })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

fn parse_kind(s: &str) -> Result<TeardownKind, String> {
    TeardownKind::from_name(s).ok_or_else(|| {
        let all: Vec<&str> = TeardownKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}`, expected one of {}", all.join(", "))
    })
}

fn parse_closer(s: &str) -> Result<Closer, String> {
    Closer::from_name(s)
        .ok_or_else(|| format!("unknown closer `{s}`, expected client, server or both"))
}

/// Serde wrappers that parse contract spellings (so a typo is an error at its position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(pub TeardownKind);
impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_kind(&s).map(Kind).map_err(serde::de::Error::custom)
    }
}

/// See [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloserName(pub Closer);
impl<'de> Deserialize<'de> for CloserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_closer(&s)
            .map(CloserName)
            .map_err(serde::de::Error::custom)
    }
}

/// See [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateName(pub TcpState);
impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TcpState::from_name(&s).map(StateName).ok_or_else(|| {
            let all: Vec<&str> = TcpState::ALL.iter().map(|k| k.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown state `{s}`, expected one of {}",
                all.join(", ")
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OutcomeKey(Outcome);
impl<'de> Deserialize<'de> for OutcomeKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Outcome::parse(&s)
            .map(OutcomeKey)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratio(f64);
impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Ratio(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "a ratio must be between 0 and 1, got {}",
                crate::shown::number(v)
            )))
        }
    }
}

/// Inclusive range in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsRange {
    /// Lower bound, ms (default 0).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound, ms (default unbounded).
    #[serde(default)]
    pub max: Option<f64>,
}

impl MsRange {
    /// True when `ns` lies in the range.
    pub fn contains_ns(&self, ns: i64) -> bool {
        let ms = ns as f64 / 1e6;
        self.min.is_none_or(|m| ms >= m) && self.max.is_none_or(|m| ms <= m)
    }
}

impl fmt::Display for MsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) => write!(f, "{a}..{b} ms"),
            (Some(a), None) => write!(f, ">= {a} ms"),
            (None, Some(b)) => write!(f, "<= {b} ms"),
            (None, None) => write!(f, "any"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStates {
    #[serde(default)]
    client: Option<Vec<StateName>>,
    #[serde(default)]
    server: Option<Vec<StateName>>,
}

/// `states.server = ["A", "B"]` (this sequence) or `[["A", "B"], ["A", "C"]]` (any one of
/// these sequences).
#[derive(Debug)]
struct StateSeqs(Vec<Vec<TcpState>>);

impl<'de> Deserialize<'de> for StateSeqs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// One element of the outer list: a state name, or a whole sequence.
        enum Item {
            State(TcpState),
            Seq(Vec<TcpState>),
        }
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a state name or a list of state names")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Item, E> {
                        StateName::deserialize(serde::de::value::StrDeserializer::<E>::new(s))
                            .map(|n| Item::State(n.0))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut a: A,
                    ) -> Result<Item, A::Error> {
                        let mut v = Vec::new();
                        while let Some(n) = a.next_element::<StateName>()? {
                            v.push(n.0);
                        }
                        Ok(Item::Seq(v))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let items = Vec::<Item>::deserialize(d)?;
        if items.iter().all(|i| matches!(i, Item::State(_))) {
            let one = items
                .into_iter()
                .filter_map(|i| match i {
                    Item::State(s) => Some(s),
                    Item::Seq(_) => None,
                })
                .collect();
            return Ok(StateSeqs(vec![one]));
        }
        items
            .into_iter()
            .map(|i| match i {
                Item::Seq(v) => Ok(v),
                Item::State(_) => Err(serde::de::Error::custom(
                    "a list of states, or a list of such lists (any one sequence), not both",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StateSeqs)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStateSeqs {
    #[serde(default)]
    client: Option<StateSeqs>,
    #[serde(default)]
    server: Option<StateSeqs>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    kind: Option<Kind>,
    active_closer: Option<CloserName>,
    kinds: Option<Vec<Kind>>,
    min_ratio: Option<BTreeMap<OutcomeKey, Ratio>>,
    max_ratio: Option<BTreeMap<OutcomeKey, Ratio>>,
    states: Option<RawStateSeqs>,
    fin_ack_delay_ms: Option<MsRange>,
    fin_retransmits: Option<Spanned<CountRange>>,
    kernel_states: Option<RawStates>,
    allow_warnings: Option<Vec<String>>,
    final_ack: Option<FinalAck>,
    close_duration_ms: Option<MsRange>,
    kernel_end: Option<RawStates>,
    client: Option<ProgramExpect>,
    server: Option<ProgramExpect>,
    /// `[expect.since_kernel."6.7"]`: fields that replace the ones above on that kernel
    /// version and later (the latest version not above the running kernel's wins).
    since_kernel: Option<BTreeMap<String, Spanned<RawExpect>>>,
}

impl RawExpect {
    /// Put every field `over` sets in place of this one's (a table such as `client`
    /// replaces the whole table). `kind` and `kinds` are one promise written two ways:
    /// setting either replaces both, so a version's table can turn `kind = "three-way"`
    /// into `kinds = ["three-way", "four-way"]` (and back).
    fn overlay(&mut self, over: RawExpect) {
        if over.kind.is_some() || over.kinds.is_some() {
            self.kind = None;
            self.kinds = None;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            kind,
            active_closer,
            kinds,
            min_ratio,
            max_ratio,
            states,
            fin_ack_delay_ms,
            fin_retransmits,
            kernel_states,
            allow_warnings,
            final_ack,
            close_duration_ms,
            kernel_end,
            client,
            server
        );
    }
}

/// `final_ack = true | false | "any"`: must the close's final ACK be captured?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalAck {
    /// It must be there.
    Required,
    /// It must be missing (e.g. the final ACK answered by an RST).
    Absent,
    /// Either.
    Any,
}

impl<'de> Deserialize<'de> for FinalAck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(true) => Ok(FinalAck::Required),
            Raw::B(false) => Ok(FinalAck::Absent),
            Raw::S(s) if s == "any" => Ok(FinalAck::Any),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "final_ack must be true, false or \"any\", got {s:?}"
            ))),
        }
    }
}

impl FinalAck {
    fn to_json(self) -> serde_json::Value {
        match self {
            FinalAck::Required => true.into(),
            FinalAck::Absent => false.into(),
            FinalAck::Any => "any".into(),
        }
    }
}

/// One call's acceptable results: `recv = "eof"` or `recv = ["eof", "ECONNRESET"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallExpect(pub Vec<CallResult>);

impl<'de> Deserialize<'de> for CallExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let list = match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        };
        if list.is_empty() {
            return Err(serde::de::Error::custom("an empty list of call results"));
        }
        list.iter()
            .map(|s| CallResult::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map(CallExpect)
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for CallExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        match v.as_slice() {
            [one] => f.write_str(one),
            _ => write!(f, "one of {}", v.join(", ")),
        }
    }
}

/// `[expect.client]` / `[expect.server]`: what one program's calls returned, and how long
/// its close(2) blocked.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramExpect {
    /// The client's `connect(2)`.
    pub connect: Option<CallExpect>,
    /// The exchange's `send`.
    pub send: Option<CallExpect>,
    /// The exchange's `recv`.
    pub recv: Option<CallExpect>,
    /// `shutdown(2)` (the `shutdown*` close modes).
    pub shutdown: Option<CallExpect>,
    /// The first `recv` after `shutdown(2)`.
    pub recv_after_shutdown: Option<CallExpect>,
    /// The `send` after `shutdown(SHUT_RDWR)`.
    pub send_after_shutdown: Option<CallExpect>,
    /// `close(2)`.
    pub close: Option<CallExpect>,
    /// How long close(2) blocked.
    pub close_blocked_ms: Option<MsRange>,
    /// RSTs this side sent (counted in the capture).
    pub rsts: Option<CountRange>,
    /// Segments this side sent (counted in the capture).
    pub segments: Option<CountRange>,
    /// How long this side's TIME_WAIT is set to last (the kernel's own timer, read through
    /// sock_diag): the side must end in TIME_WAIT.
    pub time_wait_ms: Option<MsRange>,
    /// `connect(AF_UNSPEC)` (`close = "disconnect"`).
    pub disconnect: Option<CallExpect>,
    /// The client's second connection (`reconnect_after_ms`): `bind(2)` to its first port.
    pub reconnect_bind: Option<CallExpect>,
    /// ... its `connect(2)`.
    pub reconnect_connect: Option<CallExpect>,
    /// ... the `recv` of its exchange.
    pub reconnect_recv: Option<CallExpect>,
    /// ... how long its connect(2) took.
    pub reconnect_connect_ms: Option<MsRange>,
}

impl ProgramExpect {
    /// (key, expectation) of every call named.
    pub fn calls(&self) -> [(&'static str, Option<&CallExpect>); 11] {
        [
            ("connect", self.connect.as_ref()),
            ("send", self.send.as_ref()),
            ("recv", self.recv.as_ref()),
            ("shutdown", self.shutdown.as_ref()),
            ("recv_after_shutdown", self.recv_after_shutdown.as_ref()),
            ("send_after_shutdown", self.send_after_shutdown.as_ref()),
            ("close", self.close.as_ref()),
            ("disconnect", self.disconnect.as_ref()),
            ("reconnect_bind", self.reconnect_bind.as_ref()),
            ("reconnect_connect", self.reconnect_connect.as_ref()),
            ("reconnect_recv", self.reconnect_recv.as_ref()),
        ]
    }

    fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, c) in self.calls() {
            if let Some(c) = c {
                let v: Vec<String> = c.0.iter().map(|r| r.to_string()).collect();
                m.insert(k.into(), v.into());
            }
        }
        if let Some(r) = &self.close_blocked_ms {
            m.insert(
                "close_blocked_ms".into(),
                serde_json::to_value(r).unwrap_or_default(),
            );
        }
        for (k, r) in [("rsts", &self.rsts), ("segments", &self.segments)] {
            if let Some(r) = r {
                m.insert(k.into(), serde_json::to_value(r).unwrap_or_default());
            }
        }
        for (k, r) in [
            ("time_wait_ms", &self.time_wait_ms),
            ("reconnect_connect_ms", &self.reconnect_connect_ms),
        ] {
            if let Some(r) = r {
                m.insert(k.into(), serde_json::to_value(r).unwrap_or_default());
            }
        }
        m.into()
    }
}

/// Inclusive range of a count (`{ min = 1 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountRange {
    /// Lower bound (default 0).
    #[serde(default)]
    pub min: Option<u32>,
    /// Upper bound (default unbounded).
    #[serde(default)]
    pub max: Option<u32>,
}

impl CountRange {
    /// True when `n` lies in the range.
    pub fn contains(&self, n: u32) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }
}

impl fmt::Display for CountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) => write!(f, "{a}..={b}"),
            (Some(a), None) => write!(f, ">= {a}"),
            (None, Some(b)) => write!(f, "<= {b}"),
            (None, None) => write!(f, "any"),
        }
    }
}

/// The `[netns]` table: settings of the run's namespace beyond sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetnsKnobs {
    /// `quickack 1` on the `local 127.0.0.1` route: no delayed ACKs on the whole path
    /// (IPv4 loopback runs only).
    #[serde(default)]
    pub route_quickack: bool,
    /// `rto_min N` (ms, locked) on the `local 127.0.0.1` route: the least retransmission
    /// timeout, and on Linux 6.7 and later also the longest delayed ACK (IPv4 loopback runs
    /// only).
    #[serde(
        default,
        deserialize_with = "route_rto_min",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_rto_min_ms: Option<u32>,
}

/// The longest `route_rto_min_ms` (the kernel's TCP_RTO_MAX: 120 s).
pub const MAX_ROUTE_RTO_MIN_MS: u32 = 120_000;

impl NetnsKnobs {
    /// The route metrics these settings put on the `local 127.0.0.1` route.
    pub fn loopback_route(&self) -> tcplab_capture::netns::LoopbackRouteMetrics {
        tcplab_capture::netns::LoopbackRouteMetrics {
            quickack: self.route_quickack,
            rto_min_ms: self.route_rto_min_ms,
        }
    }

    /// Check a `route_rto_min_ms` value (1 ..= [`MAX_ROUTE_RTO_MIN_MS`]).
    pub fn check_rto_min(ms: i64) -> Result<u32, String> {
        u32::try_from(ms)
            .ok()
            .filter(|ms| (1..=MAX_ROUTE_RTO_MIN_MS).contains(ms))
            .ok_or_else(|| {
                format!("route_rto_min_ms must be between 1 and {MAX_ROUTE_RTO_MIN_MS}, got {ms}")
            })
    }
}

fn route_rto_min<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let ms = i64::deserialize(d)?;
    NetnsKnobs::check_rto_min(ms)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<Spanned<String>>,
    description: Option<String>,
    repeat: Option<Spanned<u32>>,
    ip: Option<Spanned<Vec<IpVersion>>>,
    max_jobs: Option<Spanned<u32>>,
    timing_tolerance_ms: Option<Millis>,
    since_kernel: Option<Spanned<String>>,
    #[serde(default)]
    server: ServerKnobs,
    #[serde(default)]
    client: ClientKnobs,
    expect: Spanned<RawExpect>,
    #[serde(default)]
    sysctl: BTreeMap<Spanned<String>, SysctlValue>,
    link: Option<Spanned<LinkKnobs>>,
    netns: Option<Spanned<NetnsKnobs>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SysctlValue {
    S(String),
    I(i64),
}

impl SysctlValue {
    fn text(&self) -> String {
        match self {
            SysctlValue::S(s) => s.clone(),
            SysctlValue::I(i) => i.to_string(),
        }
    }
}

/// What every run (or the whole batch) must show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expect {
    /// Every run has this kind (if set).
    pub kind: Option<TeardownKind>,
    /// ... and this active closer (if set; with `kind` or `kinds`).
    pub active_closer: Option<Closer>,
    /// Every run's kind is one of these (if set): the acceptable outcomes of a racy case.
    pub kinds: Option<Vec<TeardownKind>>,
    /// Over the batch, each outcome reaches at least this share of the runs.
    pub min_ratio: BTreeMap<Outcome, f64>,
    /// Over the batch, each outcome reaches at most this share of the runs.
    pub max_ratio: BTreeMap<Outcome, f64>,
    /// The client's inferred state sequence (capture), exactly: one of these sequences
    /// (`states.client = [...]` gives one, a list of lists several).
    pub client_states: Option<Vec<Vec<TcpState>>>,
    /// The server's inferred state sequence (capture), exactly: one of these sequences.
    pub server_states: Option<Vec<Vec<TcpState>>>,
    /// Four-way: time from the first FIN to the passive side's separate ACK of it.
    pub fin_ack_delay_ms: Option<MsRange>,
    /// FIN retransmissions seen (the larger count of the two ends' captures on a link).
    pub fin_retransmits: Option<CountRange>,
    /// The client socket's states as the kernel recorded them: a subsequence.
    pub kernel_client_states: Option<Vec<TcpState>>,
    /// The server socket's states as the kernel recorded them: a subsequence.
    pub kernel_server_states: Option<Vec<TcpState>>,
    /// Warning codes a run may show (`late-rst`, `fin-inferred` = any side); every other
    /// warning fails the run.
    pub allow_warnings: Vec<String>,
    /// Must the final ACK be captured? Default ([`None`]): yes whenever the run's kind is a
    /// FIN close (three-way, four-way, simultaneous).
    pub final_ack: Option<FinalAck>,
    /// First FIN/RST to the end of the close. Default: at most
    /// [`DEFAULT_MAX_CLOSE_DURATION_MS`].
    pub close_duration_ms: Option<MsRange>,
    /// The last kernel state each socket reached, one of these (empty: any). Default: CLOSED
    /// or TIME_WAIT (no socket left in LAST_ACK, FIN_WAIT_2 ...), where states were recorded.
    pub kernel_end_client: Option<Vec<TcpState>>,
    /// The same for the server's socket.
    pub kernel_end_server: Option<Vec<TcpState>>,
    /// What the client's calls returned (`[expect.client]`).
    pub client: ProgramExpect,
    /// What the server's calls returned (`[expect.server]`).
    pub server: ProgramExpect,
}

/// The default bound on a close's duration (first FIN/RST to its end): an undisturbed close
/// takes at most the programs' close delays plus a delayed ACK (~40 ms); a FIN retransmitted
/// after the ≥ 200 ms RTO, or a close stuck until a timer, takes longer.
pub const DEFAULT_MAX_CLOSE_DURATION_MS: f64 = 1_000.0;

/// The default last kernel states of both sockets.
pub const DEFAULT_KERNEL_END: &[TcpState] = &[TcpState::Closed, TcpState::TimeWait];

impl Expect {
    /// The `expect` field of `tcplab run --json`, summary.json and meta.json.
    pub fn record(&self) -> tcplab_record::ExpectRecord {
        // `to_json` builds only strings, numbers and lists, which ExpectRecord takes as a
        // map: the conversion cannot fail.
        serde_json::from_value(self.to_json()).unwrap_or_default()
    }

    /// A JSON description (the `expect` field of `tcplab run --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(k) = self.kind {
            m.insert("kind".into(), k.as_str().into());
        }
        if let Some(c) = self.active_closer {
            m.insert("active_closer".into(), c.as_str().into());
        }
        if let Some(ks) = &self.kinds {
            m.insert(
                "kinds".into(),
                ks.iter().map(|k| k.as_str()).collect::<Vec<_>>().into(),
            );
        }
        for (field, ratios) in [
            ("min_ratio", &self.min_ratio),
            ("max_ratio", &self.max_ratio),
        ] {
            if !ratios.is_empty() {
                let r: serde_json::Map<String, serde_json::Value> =
                    ratios.iter().map(|(o, r)| (o.key(), (*r).into())).collect();
                m.insert(field.into(), r.into());
            }
        }
        let states = |v: &Vec<TcpState>| -> serde_json::Value {
            v.iter().map(|s| s.as_str()).collect::<Vec<_>>().into()
        };
        // One sequence is written as before (a list of names); several as a list of lists.
        let seqs = |v: &Vec<Vec<TcpState>>| -> serde_json::Value {
            match v.as_slice() {
                [one] => states(one),
                _ => v.iter().map(states).collect::<Vec<_>>().into(),
            }
        };
        if self.client_states.is_some() || self.server_states.is_some() {
            let mut s = serde_json::Map::new();
            if let Some(v) = &self.client_states {
                s.insert("client".into(), seqs(v));
            }
            if let Some(v) = &self.server_states {
                s.insert("server".into(), seqs(v));
            }
            m.insert("states".into(), s.into());
        }
        if let Some(r) = &self.fin_ack_delay_ms {
            m.insert(
                "fin_ack_delay_ms".into(),
                serde_json::to_value(r).unwrap_or_default(),
            );
        }
        if let Some(r) = &self.fin_retransmits {
            m.insert(
                "fin_retransmits".into(),
                serde_json::to_value(r).unwrap_or_default(),
            );
        }
        if self.kernel_client_states.is_some() || self.kernel_server_states.is_some() {
            let mut s = serde_json::Map::new();
            if let Some(v) = &self.kernel_client_states {
                s.insert("client".into(), states(v));
            }
            if let Some(v) = &self.kernel_server_states {
                s.insert("server".into(), states(v));
            }
            m.insert("kernel_states".into(), s.into());
        }
        if !self.allow_warnings.is_empty() {
            m.insert("allow_warnings".into(), self.allow_warnings.clone().into());
        }
        if let Some(f) = self.final_ack {
            m.insert("final_ack".into(), f.to_json());
        }
        if let Some(r) = &self.close_duration_ms {
            m.insert(
                "close_duration_ms".into(),
                serde_json::to_value(r).unwrap_or_default(),
            );
        }
        if self.kernel_end_client.is_some() || self.kernel_end_server.is_some() {
            let mut s = serde_json::Map::new();
            if let Some(v) = &self.kernel_end_client {
                s.insert("client".into(), states(v));
            }
            if let Some(v) = &self.kernel_end_server {
                s.insert("server".into(), states(v));
            }
            m.insert("kernel_end".into(), s.into());
        }
        for (side, p) in [("client", &self.client), ("server", &self.server)] {
            if *p != ProgramExpect::default() {
                m.insert(side.into(), p.to_json());
            }
        }
        m.into()
    }
}

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (the `name` key, else the file stem).
    pub name: String,
    /// Where it came from.
    pub path: PathBuf,
    /// One line of description (optional `description` key).
    pub description: Option<String>,
    /// Runs per batch (default 20). Runs alternate over `ip`.
    pub repeat: u32,
    /// Address families, run in turn.
    pub ip: Vec<IpVersion>,
    /// At most this many runs at once, whatever `--jobs` says: µs-aligned races (the
    /// simultaneous close) need the server and client on two idle cores.
    pub max_jobs: Option<u32>,
    /// How far a program's measured close delay may be off its knob, ms, before the run is
    /// a timing miss (retried, and never counted as the kernel's outcome).
    pub timing_tolerance_ms: f64,
    /// Server knobs.
    pub server: ServerKnobs,
    /// Client knobs.
    pub client: ClientKnobs,
    /// The expectation.
    pub expect: Expect,
    /// Extra per-namespace sysctls (on top of [`crate::run::PINNED_SYSCTLS`]); with a link,
    /// set on both sides.
    pub sysctl: BTreeMap<String, String>,
    /// Where each `[sysctl]` key is written (line, column), for errors found before the runs.
    pub sysctl_at: BTreeMap<String, (usize, usize)>,
    /// `since_kernel`: the kernel release that added what the scenario needs (a `[sysctl]`
    /// key). Only a kernel older than this may lack a key; see [`Scenario::skip_reason`].
    pub since_kernel: Option<KernelVersion>,
    /// `[sysctl]` keys this kernel lacks, older than `since_kernel`: the scenario is skipped
    /// here. Always empty on a kernel at or past `since_kernel` (there a missing key is the
    /// file's error: a typo, not a kernel's age).
    pub sysctl_missing: Vec<String>,
    /// Run across a delayed link (`[link]`) instead of loopback.
    pub link: Option<LinkKnobs>,
    /// Namespace settings (`[netns]`).
    pub netns: NetnsKnobs,
}

/// Default `timing_tolerance_ms`: how far a program's measured close delay may be off its
/// knob before the run is a timing miss ([`crate::timing`]). 5 ms is well inside the gaps the
/// shipped scenarios rely on (20 / 60 / 100 ms against the ~40 ms delayed-ACK timer) and well
/// above what an idle machine shows (tens of µs).
pub const DEFAULT_TIMING_TOLERANCE_MS: f64 = 5.0;

/// Default `repeat` when a file has none.
pub const DEFAULT_REPEAT: u32 = 20;

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let bytes = crate::discover::read_scenario(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            // The valid prefix is text, so the position can be given like any other.
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let (line, column) = line_col(valid, valid.len());
            ScenarioError::At {
                path: path.to_owned(),
                line,
                column,
                message: format!("invalid UTF-8 at byte offset {}", e.valid_up_to()),
            }
        })?;
        Scenario::parse(text, path)
    }

    /// Parse and validate scenario text; `path` names it in errors and gives the default name.
    /// `[expect.since_kernel]` tables are applied for the kernel this process runs on.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::parse_for(text, path, KernelVersion::running())
    }

    /// [`Scenario::parse`] for the given kernel version: each `[expect.since_kernel."V"]`
    /// with V at most `kernel` replaces the fields it sets, in version order (an unknown
    /// kernel takes none of them).
    pub fn parse_for(
        text: &str,
        path: &Path,
        kernel: Option<KernelVersion>,
    ) -> Result<Scenario, ScenarioError> {
        let at = |span: Option<Range<usize>>, message: String| match span {
            Some(span) => {
                let (line, column) = line_col(text, span.start);
                ScenarioError::At {
                    path: path.to_owned(),
                    line,
                    column,
                    message,
                }
            }
            None => ScenarioError::Invalid {
                path: path.to_owned(),
                message,
            },
        };
        let raw: RawScenario = toml::from_str(text)
            .map_err(|e| at(e.span(), crate::shown::toml_message(e.message())))?;

        let name = match &raw.name {
            Some(n) => {
                if !is_safe_name(n.get_ref()) {
                    return Err(at(
                        Some(n.span()),
                        format!("name `{}`: {NAME_RULE}", crate::shown::text(n.get_ref())),
                    ));
                }
                n.get_ref().clone()
            }
            None => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !is_safe_name(&stem) {
                    return Err(ScenarioError::Invalid {
                        path: path.to_owned(),
                        message: format!(
                            "the file name gives the scenario name `{}`, which {NAME_RULE}; set `name`",
                            crate::shown::text(&stem)
                        ),
                    });
                }
                stem
            }
        };
        let repeat = match &raw.repeat {
            Some(r) if *r.get_ref() == 0 => {
                return Err(at(Some(r.span()), "repeat must be at least 1".into()))
            }
            Some(r) => *r.get_ref(),
            None => DEFAULT_REPEAT,
        };
        let ip = match &raw.ip {
            Some(v) => {
                let mut list = v.get_ref().clone();
                if list.is_empty() {
                    return Err(at(
                        Some(v.span()),
                        "ip must list at least one of ipv4, ipv6".into(),
                    ));
                }
                let n = list.len();
                list.sort();
                list.dedup();
                if list.len() != n {
                    return Err(at(Some(v.span()), "ip lists a family twice".into()));
                }
                v.get_ref().clone()
            }
            None => vec![IpVersion::Ipv4],
        };
        let max_jobs = match &raw.max_jobs {
            Some(j) if *j.get_ref() == 0 => {
                return Err(at(Some(j.span()), "max_jobs must be at least 1".into()))
            }
            Some(j) => Some(*j.get_ref()),
            None => None,
        };
        let espan = raw.expect.span();
        let mut e = raw.expect.into_inner();
        if let Some(since) = e.since_kernel.take() {
            let mut versions = Vec::new();
            for (key, over) in since {
                let span = over.span();
                let v = KernelVersion::from_key(&key)
                    .map_err(|m| at(Some(span.clone()), format!("[expect.since_kernel]: {m}")))?;
                let over = over.into_inner();
                if over.since_kernel.is_some() {
                    return Err(at(
                        Some(span),
                        "[expect.since_kernel]: a version's table cannot hold another since_kernel"
                            .into(),
                    ));
                }
                versions.push((v, over));
            }
            versions.sort_by_key(|(v, _)| *v);
            for (v, over) in versions {
                if kernel.is_some_and(|k| k >= v) {
                    e.overlay(over);
                }
            }
        }
        let states = e.states.unwrap_or(RawStateSeqs {
            client: None,
            server: None,
        });
        let kernel_states = e.kernel_states.unwrap_or(RawStates {
            client: None,
            server: None,
        });
        let kernel_end = e.kernel_end.unwrap_or(RawStates {
            client: None,
            server: None,
        });
        if let Some(r) = &e.fin_retransmits {
            if let (Some(a), Some(b)) = (r.get_ref().min, r.get_ref().max) {
                if a > b {
                    return Err(at(
                        Some(r.span()),
                        "[expect]: `fin_retransmits`: min is greater than max".into(),
                    ));
                }
            }
        }
        let expect = Expect {
            kind: e.kind.map(|k| k.0),
            active_closer: e.active_closer.map(|c| c.0),
            kinds: e.kinds.map(|v| v.into_iter().map(|k| k.0).collect()),
            min_ratio: e
                .min_ratio
                .unwrap_or_default()
                .into_iter()
                .map(|(k, r)| (k.0, r.0))
                .collect(),
            max_ratio: e
                .max_ratio
                .unwrap_or_default()
                .into_iter()
                .map(|(k, r)| (k.0, r.0))
                .collect(),
            client_states: states.client.map(|v| v.0),
            server_states: states.server.map(|v| v.0),
            fin_ack_delay_ms: e.fin_ack_delay_ms,
            fin_retransmits: e.fin_retransmits.map(|r| r.into_inner()),
            kernel_client_states: kernel_states
                .client
                .map(|v| v.into_iter().map(|s| s.0).collect()),
            kernel_server_states: kernel_states
                .server
                .map(|v| v.into_iter().map(|s| s.0).collect()),
            allow_warnings: e.allow_warnings.unwrap_or_default(),
            final_ack: e.final_ack,
            close_duration_ms: e.close_duration_ms,
            kernel_end_client: kernel_end
                .client
                .map(|v| v.into_iter().map(|s| s.0).collect()),
            kernel_end_server: kernel_end
                .server
                .map(|v| v.into_iter().map(|s| s.0).collect()),
            client: e.client.unwrap_or_default(),
            server: e.server.unwrap_or_default(),
        };
        let bad = |m: &str| Err(at(Some(espan.clone()), format!("[expect]: {m}")));
        if expect.kind.is_none() && expect.kinds.is_none() && expect.min_ratio.is_empty() {
            return bad("needs `kind`, `kinds` or `min_ratio`");
        }
        if expect.kind.is_some() && expect.kinds.is_some() {
            return bad("`kind` and `kinds` exclude each other (use `kinds` for a set)");
        }
        if expect.kinds.as_ref().is_some_and(|k| k.is_empty()) {
            return bad("`kinds` is empty");
        }
        if expect.active_closer.is_some() && expect.kind.is_none() && expect.kinds.is_none() {
            return bad("`active_closer` needs `kind` or `kinds`");
        }
        let total: f64 = expect.min_ratio.values().sum();
        if total > 1.0 + 1e-9 {
            return bad("the `min_ratio` values add up to more than 1");
        }
        for (o, max) in &expect.max_ratio {
            if expect.min_ratio.get(o).is_some_and(|min| min > max) {
                return bad(&format!("`{o}`: min_ratio is greater than max_ratio"));
            }
        }
        if let Some(r) = &expect.fin_ack_delay_ms {
            if let (Some(a), Some(b)) = (r.min, r.max) {
                if a > b {
                    return bad("`fin_ack_delay_ms`: min is greater than max");
                }
            }
            if expect.kind.is_some_and(|k| k != TeardownKind::FourWay) {
                return bad("`fin_ack_delay_ms` only exists for kind = \"four-way\"");
            }
        }
        for (name, r) in [
            ("close_duration_ms", expect.close_duration_ms.as_ref()),
            (
                "client.close_blocked_ms",
                expect.client.close_blocked_ms.as_ref(),
            ),
            (
                "server.close_blocked_ms",
                expect.server.close_blocked_ms.as_ref(),
            ),
        ] {
            if let Some(MsRange {
                min: Some(a),
                max: Some(b),
            }) = r
            {
                if a > b {
                    return bad(&format!("`{name}`: min is greater than max"));
                }
            }
        }
        if expect.server.connect.is_some() {
            return bad("`server.connect`: the server does not connect (it accepts)");
        }
        if let Some(m) = contradiction(&expect) {
            return bad(&m);
        }
        let link = match raw.link {
            Some(l) => {
                let span = l.span();
                let l = l.into_inner();
                if l.jitter_ms.0 > l.delay_ms.0 {
                    return Err(at(
                        Some(span),
                        format!(
                            "[link]: jitter_ms ({}) must not exceed delay_ms ({})",
                            l.jitter_ms.0, l.delay_ms.0
                        ),
                    ));
                }
                if raw.client.reconnect_after_ms.is_some() {
                    return Err(at(
                        Some(span),
                        "[link]: client.reconnect_after_ms runs on loopback only (the link \
                         relays one connection)"
                            .into(),
                    ));
                }
                Some(l)
            }
            None => None,
        };
        let netns = match raw.netns {
            Some(n) => {
                let span = n.span();
                let n = n.into_inner();
                let which = if n.route_quickack {
                    Some("route_quickack")
                } else if n.route_rto_min_ms.is_some() {
                    Some("route_rto_min_ms")
                } else {
                    None
                };
                if let Some(which) = which {
                    if link.is_some() || ip.contains(&IpVersion::Ipv6) {
                        return Err(at(
                            Some(span),
                            format!(
                                "[netns]: {which} changes the IPv4 loopback route only \
                                 (use it without [link] and with ip = [\"ipv4\"])"
                            ),
                        ));
                    }
                }
                n
            }
            None => NetnsKnobs::default(),
        };
        let since_kernel = match &raw.since_kernel {
            Some(v) => Some(
                KernelVersion::from_key(v.get_ref())
                    .map_err(|m| at(Some(v.span()), format!("since_kernel: {m}")))?,
            ),
            None => None,
        };
        // A key may be missing only where the file says the kernel is too old to have it: an
        // unknown kernel, or one at or past `since_kernel`, lacks it because of a typo.
        let kernel_predates_scenario =
            matches!((kernel, since_kernel), (Some(k), Some(s)) if k < s);
        let mut sysctl = BTreeMap::new();
        let mut sysctl_at = BTreeMap::new();
        let mut sysctl_missing = Vec::new();
        for (k, v) in raw.sysctl {
            let key = k.get_ref();
            let ok = key.starts_with("net.")
                && key.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            if !ok {
                return Err(at(
                    Some(k.span()),
                    format!(
                        "sysctl `{}`: only per-namespace `net.*` keys may be set",
                        crate::shown::text(key)
                    ),
                ));
            }
            // Per-namespace existence and the value are checked in a fresh namespace before
            // any run ([`crate::sysctl::check`]); here only what needs no privileges.
            if !sysctl_path(key).exists() {
                if !kernel_predates_scenario {
                    return Err(at(
                        Some(k.span()),
                        format!(
                            "sysctl `{}`: {SYSCTL_MISSING}{}",
                            crate::shown::text(key),
                            match since_kernel {
                                Some(_) => " (nor should it be: the kernel is not older than since_kernel)",
                                None => " (a key newer kernels add: set since_kernel = \"X.Y\" and older kernels skip the scenario)",
                            }
                        ),
                    ));
                }
                sysctl_missing.push(key.clone());
            }
            let (line, column) = line_col(text, k.span().start);
            sysctl_at.insert(key.clone(), (line, column));
            sysctl.insert(key.clone(), v.text());
        }
        Ok(Scenario {
            name,
            path: path.to_owned(),
            description: raw.description,
            repeat,
            ip,
            max_jobs,
            timing_tolerance_ms: raw
                .timing_tolerance_ms
                .map_or(DEFAULT_TIMING_TOLERANCE_MS, |m| m.0),
            server: raw.server,
            client: raw.client,
            expect,
            sysctl,
            sysctl_at,
            since_kernel,
            sysctl_missing,
            link,
            netns,
        })
    }

    /// Why the kernel this was loaded on cannot run the scenario, if it cannot: a `[sysctl]`
    /// key it lacks, being older than `since_kernel`. The words of every such skip, on the
    /// host (`tcplab run`) and in a `run --kernel` guest alike.
    pub fn skip_reason(&self) -> Option<String> {
        let since = self.since_kernel?;
        let keys: Vec<String> = self
            .sysctl_missing
            .iter()
            .map(|k| format!("sysctl `{}`", crate::shown::text(k)))
            .collect();
        (!keys.is_empty()).then(|| {
            format!(
                "{}: {SYSCTL_MISSING} (older than the scenario's since_kernel {})",
                keys.join(", "),
                since.as_key()
            )
        })
    }

    /// The scenario's name (results directory, JSON `scenario` field).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The knobs as JSON (for meta.json / summary.json).
    pub fn knobs_json(&self) -> serde_json::Value {
        let mut knobs = serde_json::json!({
            "repeat": self.repeat,
            "ip": self.ip.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            "max_jobs": self.max_jobs,
            "timing_tolerance_ms": self.timing_tolerance_ms,
            "server": self.server,
            "client": self.client,
            "sysctl": self.sysctl,
            "link": self.link,
            "netns": self.netns,
        });
        // Only scenarios that state it carry it, so every other batch's meta.json is as before.
        if let Some(since) = self.since_kernel {
            knobs["since_kernel"] = serde_json::Value::String(since.as_key());
        }
        knobs
    }
}

/// What a scenario name may be: it names a directory under `--out`, so exactly one path
/// component that cannot climb out of it.
const NAME_RULE: &str =
    "must be 1-100 characters of [A-Za-z0-9._-], not `.` or `..` (it names a results directory)";

/// True when `name` is one safe path component (see [`NAME_RULE`]).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// What a `[sysctl]` key absent from the running kernel is called, in errors and skips.
const SYSCTL_MISSING: &str = "no such key under /proc/sys/net on this kernel";

/// `/proc/sys/net/ipv4/tcp_sack` for `net.ipv4.tcp_sack`, as seen by the calling thread.
pub(crate) fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/{}", key.replace('.', "/")))
}

/// Two parts of an expectation that no run can satisfy together, in words.
fn contradiction(e: &Expect) -> Option<String> {
    use TeardownKind as K;
    // docs/teardown.md: `both` is the closer of a simultaneous close and only of it; `open`
    // has no closer.
    let closer_fits = |k: TeardownKind, c: Closer| match k {
        K::Simultaneous => c == Closer::Both,
        K::Open => false,
        K::Reset | K::ThreeWay | K::FourWay | K::Incomplete => c != Closer::Both,
    };
    if let (Some(k), Some(c)) = (e.kind, e.active_closer) {
        if !closer_fits(k, c) {
            return Some(format!(
                "kind = \"{}\" never has active_closer = \"{}\"",
                k.as_str(),
                c.as_str()
            ));
        }
    }
    if let (Some(ks), Some(c)) = (&e.kinds, e.active_closer) {
        if let Some(k) = ks.iter().find(|k| !closer_fits(**k, c)) {
            return Some(format!(
                "kinds lists \"{}\", which never has active_closer = \"{}\"",
                k.as_str(),
                c.as_str()
            ));
        }
    }
    let allowed: Vec<TeardownKind> = match (e.kind, &e.kinds) {
        (Some(k), _) => vec![k],
        (None, Some(ks)) => ks.clone(),
        (None, None) => K::ALL.to_vec(),
    };
    if (e.client_states.is_some() || e.server_states.is_some()) && allowed.contains(&K::Reset) {
        return Some(
            "`states` with a reset: an RST cuts the close short, so no state sequence can be promised"
                .into(),
        );
    }
    if e.fin_ack_delay_ms.is_some() && !allowed.contains(&K::FourWay) {
        return Some("`fin_ack_delay_ms` needs four-way among the expected kinds".into());
    }
    let reachable = |o: &Outcome| {
        allowed.contains(&o.kind)
            && match o.closer {
                None => o.kind == K::Open,
                Some(c) => closer_fits(o.kind, c) && e.active_closer.is_none_or(|a| a == c),
            }
    };
    if let Some(o) = e.min_ratio.keys().find(|o| !reachable(o)) {
        return Some(format!(
            "min_ratio `{o}` can never occur under this expectation"
        ));
    }
    // A max_ratio on an outcome that cannot occur bounds nothing: say so rather than let
    // the file promise a bound it does not check.
    if let Some(o) = e.max_ratio.keys().find(|o| !reachable(o)) {
        return Some(format!(
            "max_ratio `{o}` can never occur under this expectation (so it bounds nothing)"
        ));
    }
    None
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..off].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcplab_client::{CloseHow, ReconnectPort};

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("scenarios/x.toml"))
    }

    fn parse_on(text: &str, kernel: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_for(
            text,
            Path::new("scenarios/x.toml"),
            KernelVersion::from_release(kernel),
        )
    }

    #[test]
    fn since_kernel_tables_apply_from_their_version_on() {
        let text = "[expect]\nkind = \"four-way\"\nactive_closer = \"server\"\n\
                    fin_ack_delay_ms = { min = 30, max = 60 }\n\
                    [expect.since_kernel.\"6.7\"]\nfin_ack_delay_ms = { min = 5, max = 25 }\n\
                    [expect.since_kernel.\"6.12\"]\nclose_duration_ms = { max = 99 }\n";
        let old = parse_on(text, "6.1.0-57-cloud-amd64").unwrap();
        assert_eq!(old.expect.fin_ack_delay_ms.unwrap().min, Some(30.0));
        assert_eq!(old.expect.close_duration_ms, None);
        let mid = parse_on(text, "6.7.0").unwrap();
        assert_eq!(mid.expect.fin_ack_delay_ms.unwrap().max, Some(25.0));
        assert_eq!(mid.expect.close_duration_ms, None);
        // Later versions add to earlier ones; 6.18 sorts after 6.7 as a number, not as text.
        let new = parse_on(text, "6.18.44-fc").unwrap();
        assert_eq!(new.expect.fin_ack_delay_ms.unwrap().max, Some(25.0));
        assert_eq!(new.expect.close_duration_ms.unwrap().max, Some(99.0));
        assert_eq!(new.expect.kind, Some(TeardownKind::FourWay));
        // A kernel whose version cannot be read takes the base expectation.
        let unknown = Scenario::parse_for(text, Path::new("x.toml"), None).unwrap();
        assert_eq!(unknown.expect, old.expect);
    }

    #[test]
    fn since_kernel_tables_can_relax_kind_and_states() {
        // The shape of seed-three-way: exact on older kernels, a bounded race from 6.7 on.
        let text = "[expect]\nkind = \"three-way\"\nactive_closer = \"server\"\n\
                    states.server = [\"FIN_WAIT_1\", \"TIME_WAIT\"]\n\
                    [expect.since_kernel.\"6.7\"]\nkinds = [\"three-way\", \"four-way\"]\n\
                    min_ratio = { \"three-way/server\" = 0.95 }\n\
                    max_ratio = { \"four-way/server\" = 0.05 }\n\
                    states.server = [[\"FIN_WAIT_1\", \"TIME_WAIT\"], [\"FIN_WAIT_1\", \"FIN_WAIT_2\", \"TIME_WAIT\"]]\n";
        use TcpState as S;
        let old = parse_on(text, "6.1.0-57-cloud-amd64").unwrap().expect;
        assert_eq!(old.kind, Some(TeardownKind::ThreeWay));
        assert_eq!(old.kinds, None);
        assert_eq!(
            old.server_states,
            Some(vec![vec![S::FinWait1, S::TimeWait]])
        );
        assert!(old.min_ratio.is_empty() && old.max_ratio.is_empty());
        assert_eq!(
            old.to_json()["states"]["server"],
            serde_json::json!(["FIN_WAIT_1", "TIME_WAIT"]),
            "one sequence is written as before"
        );
        let new = parse_on(text, "6.18.44-fc").unwrap().expect;
        assert_eq!(new.kind, None, "kinds in the overlay replaces kind");
        assert_eq!(
            new.kinds,
            Some(vec![TeardownKind::ThreeWay, TeardownKind::FourWay])
        );
        assert_eq!(
            new.active_closer,
            Some(Closer::Server),
            "kept from the base"
        );
        assert_eq!(
            new.server_states,
            Some(vec![
                vec![S::FinWait1, S::TimeWait],
                vec![S::FinWait1, S::FinWait2, S::TimeWait]
            ])
        );
        let j = new.to_json();
        assert_eq!(j["kinds"], serde_json::json!(["three-way", "four-way"]));
        assert!(j.get("kind").is_none());
        assert_eq!(j["max_ratio"]["four-way/server"], 0.05);
        assert_eq!(j["states"]["server"][1][1], "FIN_WAIT_2");
        // And back: `kind` in a later table replaces the `kinds` of an earlier one.
        let back = format!("{text}[expect.since_kernel.\"6.9\"]\nkind = \"three-way\"\nmin_ratio = {{}}\nmax_ratio = {{}}\n");
        let e = parse_on(&back, "6.9.0").unwrap().expect;
        assert_eq!((e.kind, e.kinds), (Some(TeardownKind::ThreeWay), None));
    }

    #[test]
    fn state_alternatives_and_closers_with_kinds_are_checked() {
        let e = parse(
            "[expect]\nkind = \"three-way\"\nstates.server = [\"FIN_WAIT_1\", [\"TIME_WAIT\"]]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a list of states, or a list of such lists"),
            "{e}"
        );
        let e = parse("[expect]\nkind = \"three-way\"\nstates.server = [[\"FIN_WAIT1\"]]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown state `FIN_WAIT1`"), "{e}");
        let e = parse(
            "[expect]\nkinds = [\"three-way\", \"simultaneous\"]\nactive_closer = \"server\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("kinds lists \"simultaneous\", which never has active_closer = \"server\""),
            "{e}"
        );
        let e =
            parse("[expect]\nkinds = [\"three-way\"]\nmax_ratio = { \"four-way/server\" = 0.1 }\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("max_ratio `four-way/server` can never occur"),
            "{e}"
        );
        let e = parse("[expect]\nkinds = [\"three-way\"]\nmin_ratio = { \"three-way/server\" = 0.5 }\nmax_ratio = { \"three-way/server\" = 0.4 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_ratio is greater than max_ratio"), "{e}");
    }

    #[test]
    fn since_kernel_overrides_are_validated_like_the_base() {
        let bad_key =
            "[expect]\nkind = \"four-way\"\n[expect.since_kernel.\"6.x\"]\nkind = \"reset\"\n";
        let e = parse_on(bad_key, "6.18.0").unwrap_err().to_string();
        assert!(
            e.contains("x.toml:3:") && e.contains("`6.x` is not a kernel version"),
            "{e}"
        );
        let unknown_field =
            "[expect]\nkind = \"four-way\"\n[expect.since_kernel.\"6.9\"]\nknd = 1\n";
        let e = parse_on(unknown_field, "6.1.0").unwrap_err().to_string();
        assert!(e.contains("x.toml:4:") && e.contains("knd"), "{e}");
        // The merged expectation is checked as a whole on the kernel it applies to.
        let contradiction = "[expect]\nkind = \"reset\"\n[expect.since_kernel.\"6.9\"]\nfin_ack_delay_ms = { max = 9 }\n";
        assert!(parse_on(contradiction, "6.1.0").is_ok());
        let e = parse_on(contradiction, "6.9.0").unwrap_err().to_string();
        assert!(e.contains("only exists for kind = \"four-way\""), "{e}");
        let nested = "[expect]\nkind = \"reset\"\n[expect.since_kernel.\"6.9\".since_kernel.\"6.10\"]\nkind = \"reset\"\n";
        let e = parse_on(nested, "6.1.0").unwrap_err().to_string();
        assert!(e.contains("cannot hold another since_kernel"), "{e}");
    }

    #[test]
    fn route_rto_min_is_for_ipv4_loopback_and_bounded() {
        let ok = "[netns]\nroute_rto_min_ms = 10\n[expect]\nkind = \"four-way\"\n";
        assert_eq!(parse(ok).unwrap().netns.route_rto_min_ms, Some(10));
        for (bad, says) in [
            ("route_rto_min_ms = 0", "between 1 and 120000"),
            ("route_rto_min_ms = 120001", "between 1 and 120000"),
        ] {
            let e = parse(&format!("[netns]\n{bad}\n[expect]\nkind = \"four-way\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("x.toml:2:") && e.contains(says), "{bad}: {e}");
        }
        let v6 = "ip = [\"ipv6\"]\n[netns]\nroute_rto_min_ms = 10\n[expect]\nkind = \"four-way\"\n";
        let e = parse(v6).unwrap_err().to_string();
        assert!(
            e.contains("route_rto_min_ms changes the IPv4 loopback route only"),
            "{e}"
        );
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = parse("[expect]\nkind = \"three-way\"\nactive_closer = \"server\"\n").unwrap();
        assert_eq!(s.name(), "x");
        assert_eq!(s.repeat, DEFAULT_REPEAT);
        assert_eq!(s.ip, vec![IpVersion::Ipv4]);
        assert_eq!(s.expect.kind, Some(TeardownKind::ThreeWay));
        assert_eq!(s.expect.active_closer, Some(Closer::Server));
        assert_eq!(s.server, ServerKnobs::default());
    }

    #[test]
    fn close_shape_and_program_expectations_parse() {
        let s = parse(
            "[server]\nlinger_s = 2\nclose = \"shutdown_rdwr\"\n[client]\nuser_timeout_ms = 300\nlinger2_s = -1\nreconnect_after_ms = 20\n\
             reconnect_port = \"any\"\n\
             [expect]\nkind = \"four-way\"\nfinal_ack = \"any\"\nallow_warnings = [\"late-rst\"]\n\
             close_duration_ms = { max = 3000 }\nkernel_end.client = [\"TIME_WAIT\"]\n\
             [expect.client]\nrecv = [\"eof\", \"ECONNRESET\"]\nconnect = \"ok\"\n\
             [expect.server]\nsend_after_shutdown = \"EPIPE\"\nclose_blocked_ms = { max = 5 }\n\
             time_wait_ms = { min = 59000, max = 61000 }\n",
        )
        .unwrap();
        assert_eq!(s.server.linger_s, Some(2));
        assert_eq!(s.client.linger2_s, Some(-1));
        assert_eq!(s.client.reconnect_after_ms, Some(Millis(20.0)));
        assert_eq!(s.client.reconnect_port, ReconnectPort::Any);
        assert_eq!(
            s.expect.server.time_wait_ms,
            Some(MsRange {
                min: Some(59_000.0),
                max: Some(61_000.0)
            })
        );
        assert_eq!(s.server.close, CloseHow::ShutdownRdwr);
        assert_eq!(s.client.user_timeout_ms, Some(300));
        assert_eq!(s.expect.final_ack, Some(FinalAck::Any));
        assert_eq!(s.expect.kernel_end_client, Some(vec![TcpState::TimeWait]));
        assert_eq!(
            s.expect.client.recv,
            Some(CallExpect(vec![
                CallResult::Eof,
                CallResult::Errno(libc::ECONNRESET)
            ]))
        );
        let j = s.expect.to_json();
        assert_eq!(j["final_ack"], "any");
        assert_eq!(j["server"]["send_after_shutdown"][0], "EPIPE");
        assert_eq!(j["kernel_end"]["client"][0], "TIME_WAIT");
        let e = parse("[expect]\nkind = \"reset\"\n[expect.client]\nrecv = \"ECONNRESETT\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:4:8: unknown call result `ECONNRESETT`"),
            "{e}"
        );
        let e = parse("[expect]\nkind = \"reset\"\nfinal_ack = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("final_ack must be true, false or \"any\""),
            "{e}"
        );
        let e = parse("[expect]\nkind = \"reset\"\n[expect.server]\nconnect = \"ok\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the server does not connect"), "{e}");
        let e = parse("[expect]\nkind = \"reset\"\nclose_duration_ms = { min = 5, max = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`close_duration_ms`: min is greater than max"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_reports_file_line_column() {
        let text =
            "repeat = 3\n[server]\nclose_delay_ms = 5\n    foo = 1\n[expect]\nkind = \"reset\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.starts_with("scenarios/x.toml:4:5: unknown field `foo`"),
            "{e}"
        );
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let e = parse("[expect]\nkind = \"two-way\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:2:8: unknown kind `two-way`"),
            "{e}"
        );
        let e = parse("[client]\nclose_delay_ms = -1\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:2:18: a delay must be"),
            "{e}"
        );
        let e = parse("[expect]\nmin_ratio = { \"three-way/nobody\" = 0.5 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("scenarios/x.toml:2:"), "{e}");
        assert!(e.contains("unknown closer `nobody`"), "{e}");
        let e = parse("[expect]\nkinds = [\"reset\"]\nmin_ratio = { \"reset/client\" = 1.5 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ratio must be between 0 and 1"), "{e}");
        let e = parse("[server]\nclose = \"slam\"\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("scenarios/x.toml:2:9:"), "{e}");
        let e = parse("[expect]\nkind = \"reset\"\nstates.server = [\"FIN_WAIT1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown state `FIN_WAIT1`"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_expect() {
        let e = parse("repeat = 1\n[expect]\n").unwrap_err().to_string();
        assert!(
            e.starts_with("scenarios/x.toml:2:1: [expect]: needs"),
            "{e}"
        );
        let e = parse("[expect]\nkind = \"reset\"\nkinds = [\"reset\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclude each other"), "{e}");
        let e = parse("repeat = 0\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:1:10: repeat must be"),
            "{e}"
        );
        let e = parse("[sysctl]\n\"kernel.panic\" = 1\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("scenarios/x.toml:2:1: sysctl"), "{e}");
        assert!(parse("garbage").is_err());
    }

    #[test]
    fn distribution_expectation_parses() {
        let s = parse(
            "ip = [\"ipv4\", \"ipv6\"]\n[expect]\nkinds = [\"three-way\", \"simultaneous\"]\nmin_ratio = { \"three-way/server\" = 0.2 }\n",
        )
        .unwrap();
        assert_eq!(s.ip, vec![IpVersion::Ipv4, IpVersion::Ipv6]);
        assert_eq!(
            s.expect.kinds,
            Some(vec![TeardownKind::ThreeWay, TeardownKind::Simultaneous])
        );
        let o = Outcome::parse("three-way/server").unwrap();
        assert_eq!(s.expect.min_ratio.get(&o), Some(&0.2));
        assert_eq!(o.key(), "three-way/server");
    }

    #[test]
    fn set_knob_sets_and_rejects() {
        let mut s = parse("[expect]\nkind = \"reset\"\n").unwrap();
        s.set_knob("client.close_delay_ms", "35.5").unwrap();
        assert_eq!(s.client.close_delay_ms, Millis(35.5));
        s.set_knob("server.close", "linger0").unwrap();
        assert_eq!(s.server.close, CloseHow::Linger0);
        s.set_knob("ip", "ipv6,ipv4").unwrap();
        assert_eq!(s.ip, vec![IpVersion::Ipv6, IpVersion::Ipv4]);
        s.set_knob("client.read_response", "false").unwrap();
        assert!(!s.client.read_response);
        assert!(matches!(
            s.set_knob("client.delay", "1"),
            Err(ScenarioError::UnknownKnob { .. })
        ));
        assert!(s.set_knob("server.close_delay_ms", "-3").is_err());
        assert!(s.set_knob("server.close_delay_ms", "abc").is_err());
        assert!(s.set_knob("server.close", "slam").is_err());
        assert!(s.set_knob("repeat", "0").is_err());
    }

    #[test]
    fn link_table_parses_and_is_checked() {
        let s = parse("[expect]\nkind = \"reset\"\n").unwrap();
        assert_eq!(s.link, None, "absent [link] means loopback");
        let s = parse("[link]\ndelay_ms = 10\n[expect]\nkind = \"reset\"\n").unwrap();
        assert_eq!(s.link, Some(LinkKnobs::with_delay(Millis(10.0))));
        assert_eq!(
            s.link.as_ref().map(|l| l.delay()),
            Some(std::time::Duration::from_millis(10))
        );
        let s = parse("[link]\ndelay_ms = 0.25\n[expect]\nkind = \"reset\"\n").unwrap();
        assert_eq!(
            s.link.as_ref().map(|l| l.delay()),
            Some(std::time::Duration::from_micros(250))
        );
        let e = parse("[link]\ndelay_ms = 10\nwobble_ms = 1\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:3:1: unknown field `wobble_ms`"),
            "{e}"
        );
        let e = parse("[link]\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `delay_ms`"), "{e}");
        let e = parse("[link]\ndelay_ms = 5000\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:2:12: a link delay must be between 0 and 1000"),
            "{e}"
        );
        assert!(parse("[link]\ndelay_ms = -1\n[expect]\nkind = \"reset\"\n").is_err());
        assert!(parse("[link]\ndelay_ms = \"10\"\n[expect]\nkind = \"reset\"\n").is_err());
    }

    #[test]
    fn link_knob_sets_and_clears() {
        let mut s = parse("[expect]\nkind = \"reset\"\n").unwrap();
        s.set_knob("link.delay_ms", "10").unwrap();
        assert_eq!(s.link, Some(LinkKnobs::with_delay(Millis(10.0))));
        assert_eq!(s.knobs_json()["link"]["delay_ms"], 10.0);
        s.set_knob("link.delay_ms", "2.5").unwrap();
        assert_eq!(s.link.as_ref().map(|l| l.delay_ms), Some(Millis(2.5)));
        assert!(s.set_knob("link.delay_ms", "1001").is_err());
        assert!(s.set_knob("link.delay_ms", "fast").is_err());
        assert_eq!(
            s.link.as_ref().map(|l| l.delay_ms),
            Some(Millis(2.5)),
            "unchanged on error"
        );
        s.set_knob("link.delay_ms", "none").unwrap();
        assert_eq!(s.link, None);
        assert!(s.knobs_json()["link"].is_null());
        assert!(crate::knob_table::keys().contains("link.delay_ms"));
        assert!(
            s.set_knob("link.loss", "0.1").is_err(),
            "no [link] any more"
        );
        s.set_knob("link.delay_ms", "5").unwrap();
        s.set_knob("link.loss", "0.1").unwrap();
        s.set_knob("link.seed", "9").unwrap();
        assert!(s.set_knob("link.loss", "2").is_err());
        let l = s.link.as_ref().unwrap();
        assert_eq!((l.loss, l.seed), (0.1, 9));
        s.set_knob("link.delay_ms", "7").unwrap();
        assert_eq!(
            s.link.as_ref().map(|l| l.loss),
            Some(0.1),
            "delay keeps the rest"
        );
    }

    #[test]
    fn names_are_one_safe_path_component() {
        for bad in ["..", ".", "a/b", ""] {
            let text = format!("name = \"{bad}\"\n[expect]\nkind = \"reset\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.starts_with("scenarios/x.toml:1:8: name"), "{bad}: {e}");
        }
        // No `name`: the file stem is the name, and `...toml` would give `..`.
        let e = Scenario::parse("[expect]\nkind = \"reset\"\n", Path::new("d/...toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("set `name`"), "{e}");
        assert!(parse("name = \"a..b\"\n[expect]\nkind = \"reset\"\n").is_ok());
    }

    #[test]
    fn contradictory_expectations_are_rejected() {
        for (body, want) in [
            ("kind = \"simultaneous\"\nactive_closer = \"server\"", "never has active_closer"),
            ("kind = \"three-way\"\nactive_closer = \"both\"", "never has active_closer"),
            ("kind = \"reset\"\nstates.client = [\"SYN_SENT\"]", "`states` with a reset"),
            ("kinds = [\"reset\", \"three-way\"]\nstates.server = [\"LISTEN\"]", "`states` with a reset"),
            ("kinds = [\"three-way\"]\nfin_ack_delay_ms = { max = 50 }", "needs four-way"),
            ("kinds = [\"three-way\"]\nmin_ratio = { \"four-way/client\" = 0.1 }", "can never occur"),
            ("kind = \"three-way\"\nactive_closer = \"server\"\nmin_ratio = { \"three-way/client\" = 0.1 }", "can never occur"),
            ("min_ratio = { \"simultaneous/client\" = 0.1 }", "can never occur"),
        ] {
            let e = parse(&format!("[expect]\n{body}\n")).unwrap_err().to_string();
            assert!(e.starts_with("scenarios/x.toml:1:1: [expect]:"), "{body}: {e}");
            assert!(e.contains(want), "{body}: {e}");
        }
        parse("[expect]\nkind = \"simultaneous\"\nactive_closer = \"both\"\n").unwrap();
        parse("[expect]\nkinds = [\"three-way\", \"simultaneous\"]\nmin_ratio = { \"simultaneous/both\" = 0.1 }\n").unwrap();
    }

    #[test]
    fn number_and_utf8_errors_say_what_and_where() {
        let e = parse("[server]\nclose_delay_ms = \"5\"\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("untagged"), "{e}");
        assert!(e.contains("a number of milliseconds"), "{e}");
        let e = parse("[link]\ndelay_ms = -1\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 1000 ms, got -1"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, b"repeat = 1\n# caf\xe9\n[expect]\nkind = \"reset\"\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("bad.toml:2:6: invalid UTF-8 at byte offset 16"),
            "{e}"
        );
    }

    #[test]
    fn unknown_sysctl_keys_are_rejected_at_load() {
        let e = parse("[sysctl]\n\"net.ipv4.tcp_no_such_knob\" = 1\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:2:1: sysctl `net.ipv4.tcp_no_such_knob`: no such key"),
            "{e}"
        );
        let s = parse("[sysctl]\n\"net.ipv4.tcp_sack\" = 1\n[expect]\nkind = \"reset\"\n").unwrap();
        assert_eq!(s.sysctl_at.get("net.ipv4.tcp_sack"), Some(&(2, 1)));
    }

    #[test]
    fn a_missing_sysctl_key_skips_only_a_kernel_older_than_since_kernel() {
        let text = |since: &str| {
            format!("{since}[sysctl]\n\"net.ipv4.tcp_no_such_knob\" = 1\n\"net.ipv4.tcp_sack\" = 1\n[expect]\nkind = \"reset\"\n")
        };
        // Older than since_kernel: loads, and says why this kernel skips it, naming the key.
        let s = parse_on(&text("since_kernel = \"6.11\"\n"), "6.1.0-57-cloud-amd64").unwrap();
        assert_eq!(s.sysctl_missing, ["net.ipv4.tcp_no_such_knob"]);
        assert_eq!(
            s.knobs_json()["since_kernel"],
            "6.11",
            "meta.json says which kernel"
        );
        assert_eq!(
            s.skip_reason().as_deref(),
            Some("sysctl `net.ipv4.tcp_no_such_knob`: no such key under /proc/sys/net on this kernel (older than the scenario's since_kernel 6.11)")
        );
        // At or past since_kernel, or with none, or on a kernel of unknown version: the
        // missing key is a typo, the file's error (file:line, the key named).
        for (since, kernel) in [
            ("since_kernel = \"6.11\"\n", Some("6.11.0")),
            ("since_kernel = \"6.11\"\n", None),
            ("", Some("6.1.0")),
        ] {
            let e = Scenario::parse_for(
                &text(since),
                Path::new("scenarios/x.toml"),
                kernel.and_then(KernelVersion::from_release),
            )
            .unwrap_err()
            .to_string();
            let line = if since.is_empty() { 2 } else { 3 };
            assert!(
                e.starts_with(&format!(
                    "scenarios/x.toml:{line}:1: sysctl `net.ipv4.tcp_no_such_knob`: no such key"
                )),
                "{since} on {kernel:?}: {e}"
            );
        }
        // Every key present: nothing to skip, whatever the kernel's age.
        let s = parse_on("since_kernel = \"99.0\"\n[sysctl]\n\"net.ipv4.tcp_sack\" = 1\n[expect]\nkind = \"reset\"\n", "6.1.0").unwrap();
        assert_eq!(s.skip_reason(), None);
        let plain = parse("[expect]\nkind = \"reset\"\n").unwrap();
        assert!(
            plain.knobs_json().get("since_kernel").is_none(),
            "absent unless stated"
        );
        let e = parse("since_kernel = \"six\"\n[expect]\nkind = \"reset\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("scenarios/x.toml:1:16: since_kernel: `six` is not a kernel version"),
            "{e}"
        );
    }

    #[test]
    fn link_impairments_and_faults_parse() {
        let s = parse(
            "[link]\ndelay_ms = 10\nloss = 0.05\nloss_server = 0\njitter_ms = 2\nseed = 7\n\
             [[link.fault]]\nsegment = \"server FIN\"\naction = \"drop\"\n\
             [[link.fault]]\nsegment = \"client ACK-of-FIN\"\nnth = 2\naction = \"delay\"\ndelay_ms = 50\n\
             [[link.fault]]\nsegment = \"client data\"\naction = \"duplicate\"\n\
             [expect]\nkind = \"reset\"\n",
        )
        .unwrap();
        let l = s.link.as_ref().unwrap();
        let im = l.impairments(0);
        assert_eq!((im.loss_client, im.loss_server), (0.05, 0.0));
        assert_eq!(im.jitter, std::time::Duration::from_millis(2));
        assert_ne!(im.seed, l.impairments(1).seed, "each run draws its own");
        assert_eq!(im.faults.len(), 3);
        assert_eq!(im.faults[0].nth, 1, "nth defaults to 1");
        assert_eq!(
            im.faults[1].action,
            FaultAction::Delay(std::time::Duration::from_millis(50))
        );
        assert_eq!(im.faults[2].action, FaultAction::Duplicate);
        let j = s.knobs_json();
        assert_eq!(j["link"]["fault"][1]["segment"], "client ACK-of-FIN");
        assert_eq!(j["link"]["seed"], 7);
    }

    #[test]
    fn bad_faults_are_located() {
        let cases = [
            (
                "[[link.fault]]\nsegment = \"server FYN\"\naction = \"drop\"\n",
                "scenarios/x.toml:3:1: segment must be",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\naction = \"lose\"\n",
                "scenarios/x.toml:3:1: action must be",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\naction = \"delay\"\n",
                "scenarios/x.toml:3:1: action \"delay\" needs delay_ms",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\naction = \"drop\"\ndelay_ms = 5\n",
                "scenarios/x.toml:3:1: delay_ms only goes with",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\nnth = 0\naction = \"drop\"\n",
                "scenarios/x.toml:3:1: nth must be at least 1",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\nnth = \"most\"\naction = \"drop\"\n",
                "scenarios/x.toml:3:1: nth must be a number from 1 or \"all\", got \"most\"",
            ),
            (
                "[[link.fault]]\nsegment = \"server FIN\"\naction = \"drop\"\ncount = 2\n",
                "scenarios/x.toml:6:1: unknown field `count`",
            ),
            ("loss = 1.5\n", "scenarios/x.toml:3:8: a loss probability"),
            (
                "[client]\nreconnect_after_ms = 20\n",
                "scenarios/x.toml:1:1: [link]: client.reconnect_after_ms runs on loopback only",
            ),
            (
                "jitter_ms = 20\n",
                "scenarios/x.toml:1:1: [link]: jitter_ms (20)",
            ),
        ];
        for (extra, want) in cases {
            let text = format!("[link]\ndelay_ms = 10\n{extra}[expect]\nkind = \"reset\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{extra:?}: {e}");
        }
    }

    #[test]
    fn link_injects_and_holds_parse() {
        let s = parse(
            "[link]\ndelay_ms = 10\n\
             [[link.inject]]\nat = \"client ACK-of-FIN\"\nafter_ms = 50\nto = \"client\"\nflags = \"R\"\n\
             [[link.inject]]\nat = \"client FIN\"\nnth = 2\nto = \"server\"\nflags = \"P.\"\nseq = \"next+1000\"\nack = \"next-1\"\nlen = 10\nwindow = 0\n\
             [[link.inject]]\nat = \"client ACK-of-FIN\"\nreplay = true\n\
             [[link.hold]]\nsegment = \"server data\"\nbehind = \"server FIN\"\n\
             [expect]\nkind = \"reset\"\n",
        )
        .unwrap();
        let l = s.link.as_ref().unwrap();
        let script = l.script();
        assert_eq!(script.inject.len(), 3);
        let first = script.inject[0];
        assert_eq!(first.at.to_string(), "client ACK-of-FIN");
        assert_eq!(
            (first.nth, first.after),
            (1, std::time::Duration::from_millis(50))
        );
        let InjectAction::Forge(f) = first.action else {
            panic!("{first:?}")
        };
        assert_eq!(
            (f.to, f.flags.to_string(), f.seq.offset, f.len),
            (End::Client, "R".to_owned(), 0, 0)
        );
        let InjectAction::Forge(g) = script.inject[1].action else {
            panic!()
        };
        assert_eq!(
            (g.seq.offset, g.ack.offset, g.len, g.window),
            (1000, -1, 10, Some(0))
        );
        assert_eq!(script.inject[2].action, InjectAction::Replay);
        assert_eq!(script.reorder[0].behind.to_string(), "server FIN");
        assert!(l.impaired(), "a held segment may be retransmitted");
        let j = s.knobs_json();
        assert_eq!(j["link"]["inject"][1]["seq"], "next+1000");
        assert_eq!(j["link"]["inject"][2]["replay"], true);
        assert_eq!(j["link"]["hold"][0]["segment"], "server data");
        // Jitter's `reorder = true` is still the old knob.
        let s = parse(
            "[link]\ndelay_ms = 10\njitter_ms = 1\nreorder = true\n[expect]\nkind = \"reset\"\n",
        )
        .unwrap();
        assert!(s.link.unwrap().reorder);
    }

    #[test]
    fn bad_injects_are_located_and_name_the_field() {
        let inj = "[[link.inject]]\nat = \"client FIN\"\n";
        let cases = [
            ("[[link.inject]]\nat = \"client FYN\"\nreplay = true\n", "scenarios/x.toml:3:1: at: segment must be"),
            (&format!("{inj}flags = \"R\"\n") as &str, "scenarios/x.toml:3:1: an inject needs `to` and `flags`"),
            (&format!("{inj}to = \"middle\"\nflags = \"R\"\n"), "scenarios/x.toml:3:1: to must be"),
            (&format!("{inj}to = \"client\"\nflags = \"RA\"\n"), "scenarios/x.toml:3:1: flags must be letters"),
            (&format!("{inj}to = \"client\"\nflags = \"R\"\nseq = \"last+1\"\n"), "scenarios/x.toml:3:1: seq must be \"next\""),
            (&format!("{inj}to = \"client\"\nflags = \"R\"\nack = \"next\"\n"), "scenarios/x.toml:3:1: ack is set but flags"),
            (&format!("{inj}to = \"client\"\nflags = \"P.\"\nlen = 5000\n"), "scenarios/x.toml:3:1: len must be between 0 and 1400"),
            (&format!("{inj}replay = true\nflags = \"R\"\n"), "scenarios/x.toml:3:1: flags describes a forged segment"),
            (&format!("{inj}replay = true\nwhen = 3\n"), "scenarios/x.toml:6:1: unknown field `when`"),
            (&format!("{inj}replay = true\nafter_ms = -1\n"), "scenarios/x.toml:6:12:"),
            ("[[link.hold]]\nsegment = \"server FIN\"\nbehind = \"server FIN\"\n", "scenarios/x.toml:3:1: a segment cannot be held behind itself"),
            ("[[link.hold]]\nsegment = \"server FIN\"\nbehind = \"server FIN\"\nbehind_nth = 0\n", "scenarios/x.toml:3:1: behind_nth must be at least 1"),
        ];
        for (extra, want) in cases {
            let text = format!("[link]\ndelay_ms = 10\n{extra}[expect]\nkind = \"reset\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{extra:?}: {e}");
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("abc", 99), (1, 4));
    }
}
