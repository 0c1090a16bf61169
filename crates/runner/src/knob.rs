//! The knobs of the two programs, each declared once: key, type, unit, range, default, doc
//! line, how `tcplab server`/`tcplab client` spell it, and where it goes in the program's
//! options. The `[server]`/`[client]` tables of a scenario file (serde), `--set`/`--vary`
//! ([`crate::knob_table`]), the sweep's axis units, the runner's program options and the CLI's
//! flags are all read off [`ServerKnobs::KNOBS`] and [`ClientKnobs::KNOBS`].
//!
//! Adding a program knob is one entry in [`program_knobs!`]'s invocation below plus its use
//! in the program (a field of `ServerOptions`/`ClientOptions` and the socket call).
//!
//! A leaf: imports only the programs' crates, never another module of the runner.

use serde::{Deserialize, Serialize};
use tcplab_client::{ClientOptions, CloseHow, ReconnectPort};
use tcplab_server::timing::Millis;
use tcplab_server::ServerOptions;

/// What a knob's number counts, for axis labels and help ("ms", "s"; "" for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A flag, a mode, a count.
    None,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Unit {
    /// The label after a number: `ms`, `s`, or nothing.
    pub fn label(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }
}

/// How `tcplab server`/`tcplab client` spell a program knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// `--key-with-dashes VALUE`, or a plain switch for a flag that is off by default.
    Plain,
    /// A switch that turns the knob off (`--no-read` for `read_request`), and its help line.
    Negated(&'static str, &'static str),
    /// The runner's business only (not a flag of the programs).
    None,
}

/// A value type a knob can have: its text form for `--set`/`--vary`/flags, and what a help
/// line says about it.
pub trait KnobValue: Sized {
    /// What the text must be, e.g. `ms`, `true|false`, `whole number`.
    const TYPE: &'static str;
    /// The inclusive range of a number, if bounded.
    const RANGE: Option<(f64, f64)> = None;
    /// The accepted words and what each does (modes), or empty.
    const CHOICES: &'static [(&'static str, &'static str)] = &[];
    /// True for `Option`s: unset by default, `none` unsets.
    const OPTIONAL: bool = false;
    /// True for on/off values (a switch on the command line).
    const SWITCH: bool = false;

    /// From the text form; the error says why in a few words ("not a number").
    fn parse_text(text: &str) -> Result<Self, String>;

    /// The text form (what [`KnobValue::parse_text`] reads back).
    fn to_text(&self) -> String;
}

impl KnobValue for Millis {
    const TYPE: &'static str = "ms";
    const RANGE: Option<(f64, f64)> = Some((0.0, Millis::MAX));

    fn parse_text(text: &str) -> Result<Self, String> {
        let v: f64 = text.trim().parse().map_err(|_| "not a number".to_owned())?;
        Millis::new(v).map_err(|e| format!("a delay {e}"))
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for bool {
    const TYPE: &'static str = "true|false";
    const SWITCH: bool = true;

    fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for CloseHow {
    const TYPE: &'static str = "close mode";
    const CHOICES: &'static [(&'static str, &'static str)] = &[
        ("close", "close(2): FIN (or RST if unread data is pending)"),
        (
            "shutdown",
            "shutdown(SHUT_WR), wait for the peer's FIN, then close(2)",
        ),
        (
            "linger0",
            "SO_LINGER {on, 0} then close(2): RST instead of FIN",
        ),
        (
            "shutdown_rd",
            "shutdown(SHUT_RD), one recv, then close(2) (SHUT_RD sends nothing)",
        ),
        (
            "shutdown_rdwr",
            "shutdown(SHUT_RDWR) (FIN), one recv and one send, then close(2)",
        ),
    ];

    fn parse_text(text: &str) -> Result<Self, String> {
        text.trim().parse()
    }

    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
}

impl KnobValue for u32 {
    const TYPE: &'static str = "whole number";
    const RANGE: Option<(f64, f64)> = Some((0.0, u32::MAX as f64));

    fn parse_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "not a whole number".to_owned())
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for i32 {
    const TYPE: &'static str = "whole number (may be negative)";
    const RANGE: Option<(f64, f64)> = Some((i32::MIN as f64, i32::MAX as f64));

    fn parse_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "not a whole number".to_owned())
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for u16 {
    const TYPE: &'static str = "whole number";
    const RANGE: Option<(f64, f64)> = Some((0.0, u16::MAX as f64));

    fn parse_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "not a whole number".to_owned())
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

impl KnobValue for ReconnectPort {
    const TYPE: &'static str = "same|any";
    const CHOICES: &'static [(&'static str, &'static str)] = &[
        (
            "same",
            "bind the first connection's port first: the same 4-tuple, or EADDRINUSE",
        ),
        ("any", "let connect(2) pick the port"),
    ];

    fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "same" => Ok(ReconnectPort::Same),
            "any" => Ok(ReconnectPort::Any),
            other => Err(format!("expected same or any, got `{other}`")),
        }
    }

    fn to_text(&self) -> String {
        match self {
            ReconnectPort::Same => "same",
            ReconnectPort::Any => "any",
        }
        .to_owned()
    }
}

impl<T: KnobValue> KnobValue for Option<T> {
    const TYPE: &'static str = T::TYPE;
    const RANGE: Option<(f64, f64)> = T::RANGE;
    const CHOICES: &'static [(&'static str, &'static str)] = T::CHOICES;
    const OPTIONAL: bool = true;

    fn parse_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "none" | "off" => Ok(None),
            t => T::parse_text(t).map(Some),
        }
    }

    fn to_text(&self) -> String {
        self.as_ref().map_or_else(|| "none".to_owned(), T::to_text)
    }
}

/// One knob of a table over `T` (a program's knobs, or a whole scenario).
pub struct Knob<T: 'static> {
    /// The key, as in the file (`close_delay_ms`) or `--set` (`link.delay_ms`).
    pub key: &'static str,
    /// What its number counts.
    pub unit: Unit,
    /// What its text must be (`ms`, `true|false` ...).
    pub value: &'static str,
    /// The inclusive range of a number, if bounded.
    pub range: Option<(f64, f64)>,
    /// The accepted words of a mode, each with what it does.
    pub choices: &'static [(&'static str, &'static str)],
    /// Unset unless given (`none` unsets).
    pub optional: bool,
    /// An on/off value.
    pub switch: bool,
    /// What it does, one line (the doc comment of the field).
    pub doc: &'static str,
    /// How `tcplab server`/`client` spell it.
    pub cli: Cli,
    /// Set it from its text form; the error says why in a few words.
    pub set: fn(&mut T, &str) -> Result<(), String>,
    /// Its text form.
    pub get: fn(&T) -> String,
}

impl<T> Knob<T> {
    /// The help line of its `tcplab server`/`client` flag.
    pub fn flag_help(&self) -> String {
        match self.cli {
            Cli::Negated(_, help) => help.to_owned(),
            _ => self.doc_line(),
        }
    }

    /// The doc comment as one line.
    pub fn doc_line(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The `--flag` of `tcplab server`/`client`, if it has one.
    pub fn flag(&self) -> Option<String> {
        match self.cli {
            Cli::Plain => Some(self.key.replace('_', "-")),
            Cli::Negated(name, _) => Some(name.to_owned()),
            Cli::None => None,
        }
    }
}

impl<T> std::fmt::Debug for Knob<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knob").field("key", &self.key).finish()
    }
}

/// A table of knobs with their defaults: what the CLI and `--set` need to know of a
/// program's knobs.
pub trait KnobTable: Default + Sized + 'static {
    /// Every knob, in file order.
    const KNOBS: &'static [Knob<Self>];

    /// The knob named `key`.
    fn knob(key: &str) -> Option<&'static Knob<Self>> {
        Self::KNOBS.iter().find(|k| k.key == key)
    }
}

/// Declares a program's knob struct and its table from one list: each entry is the field's
/// doc comment (its help line), optional serde attributes, then
/// `name: Type = default, unit, cli spelling, |options, value| where it goes;`.
macro_rules! program_knobs {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident => $opts:ty {
            $(
                $(#[doc = $doc:literal])+
                $(#[serde($($serde:tt)*)])*
                $field:ident: $ty:ty = $default:expr, $unit:expr, $cli:expr,
                    |$o:ident, $v:ident| $apply:expr;
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])+
                $(#[serde($($serde)*)])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl KnobTable for $name {
            const KNOBS: &'static [Knob<$name>] = &[$(
                Knob {
                    key: stringify!($field),
                    unit: $unit,
                    value: <$ty as KnobValue>::TYPE,
                    range: <$ty as KnobValue>::RANGE,
                    choices: <$ty as KnobValue>::CHOICES,
                    optional: <$ty as KnobValue>::OPTIONAL,
                    switch: <$ty as KnobValue>::SWITCH,
                    doc: concat!($($doc, "\n"),+),
                    cli: $cli,
                    set: |k: &mut $name, text: &str| {
                        k.$field = <$ty as KnobValue>::parse_text(text)?;
                        Ok(())
                    },
                    get: |k: &$name| <$ty as KnobValue>::to_text(&k.$field),
                },
            )*];
        }

        impl $name {
            /// Put every knob where it goes in the program's options.
            pub fn apply(&self, options: &mut $opts) {
                $(
                    #[allow(clippy::redundant_closure_call)]
                    (|$o: &mut $opts, $v: $ty| $apply)(options, self.$field.clone());
                )*
            }
        }
    };
}

program_knobs! {
    /// The `[server]` table: how and when the server closes (address, port and timeouts are
    /// the runner's business).
    pub struct ServerKnobs => ServerOptions {
        /// Pause between sending `200 ok` and closing, ms.
        close_delay_ms: Millis = Millis::ZERO, Unit::Ms, Cli::Plain,
            |o, v| o.close_delay_ms = v.0;
        /// How to close: close, shutdown, linger0, shutdown_rd, shutdown_rdwr.
        close: CloseHow = CloseHow::Close, Unit::None, Cli::Plain,
            |o, v| o.close = v;
        /// `false` leaves the request unread, so close sends RST (RFC 2525 §2.17).
        read_request: bool = true, Unit::None, Cli::Negated(
            "no-read",
            "Never read the request, so close finds unread data and sends RST.",
        ),
            |o, v| o.read_request = v;
        /// TCP_NODELAY.
        nodelay: bool = false, Unit::None, Cli::Plain,
            |o, v| o.nodelay = v;
        /// TCP_QUICKACK, re-armed after each read: no delayed ACK.
        quickack: bool = false, Unit::None, Cli::Plain,
            |o, v| o.quickack = v;
        /// `SO_LINGER {1, N}` before close(2) (close blocks until the FIN is acknowledged).
        #[serde(skip_serializing_if = "Option::is_none")]
        linger_s: Option<u32> = None, Unit::S, Cli::Plain,
            |o, v| o.teardown.linger_s = v;
        /// `TCP_USER_TIMEOUT`, ms: unacknowledged data or FIN is given up after this long.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_timeout_ms: Option<u32> = None, Unit::Ms, Cli::Plain,
            |o, v| o.teardown.user_timeout_ms = v;
        /// `TCP_LINGER2`, s: how long this socket, closed and its FIN acknowledged, waits in
        /// FIN_WAIT_2 (default `net.ipv4.tcp_fin_timeout`); −1: not at all.
        #[serde(skip_serializing_if = "Option::is_none")]
        linger2_s: Option<i32> = None, Unit::S, Cli::Plain,
            |o, v| o.teardown.linger2_s = v;
        /// After the answer, wait this long and send a second line (`more`); the close delay
        /// then counts from it (data crossing a client's early shutdown).
        #[serde(skip_serializing_if = "Option::is_none")]
        more_after_ms: Option<Millis> = None, Unit::Ms, Cli::Plain,
            |o, v| o.more_after_ms = v.map(|m| m.0);
    }
}

program_knobs! {
    /// The `[client]` table: how and when the client closes.
    pub struct ClientKnobs => ClientOptions {
        /// Pause between reading the answer and closing, ms.
        close_delay_ms: Millis = Millis::ZERO, Unit::Ms, Cli::Plain,
            |o, v| o.close_delay_ms = v.0;
        /// How to close: close, shutdown, linger0, shutdown_rd, shutdown_rdwr.
        close: CloseHow = CloseHow::Close, Unit::None, Cli::Plain,
            |o, v| o.close = v;
        /// `false` leaves the answer unread, so close sends RST.
        read_response: bool = true, Unit::None, Cli::Negated(
            "no-read",
            "Never read the response, so close finds unread data and sends RST.",
        ),
            |o, v| o.read_response = v;
        /// TCP_NODELAY.
        nodelay: bool = false, Unit::None, Cli::Plain,
            |o, v| o.nodelay = v;
        /// TCP_QUICKACK, re-armed after each read: no delayed ACK.
        quickack: bool = false, Unit::None, Cli::Plain,
            |o, v| o.quickack = v;
        /// `SO_LINGER {1, N}` before close(2) (close blocks until the FIN is acknowledged).
        #[serde(skip_serializing_if = "Option::is_none")]
        linger_s: Option<u32> = None, Unit::S, Cli::Plain,
            |o, v| o.teardown.linger_s = v;
        /// `TCP_USER_TIMEOUT`, ms: unacknowledged data or FIN is given up after this long.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_timeout_ms: Option<u32> = None, Unit::Ms, Cli::Plain,
            |o, v| o.teardown.user_timeout_ms = v;
        /// `TCP_LINGER2`, s: how long this socket, closed and its FIN acknowledged, waits in
        /// FIN_WAIT_2 (default `net.ipv4.tcp_fin_timeout`); −1: not at all.
        #[serde(skip_serializing_if = "Option::is_none")]
        linger2_s: Option<i32> = None, Unit::S, Cli::Plain,
            |o, v| o.teardown.linger2_s = v;
        /// After its close, wait this long and connect again (a second connection on the
        /// same 4-tuple: a SYN into TIME_WAIT, a port still held).
        #[serde(skip_serializing_if = "Option::is_none")]
        reconnect_after_ms: Option<Millis> = None, Unit::Ms, Cli::Plain,
            |o, v| o.reconnect_after_ms = v.map(|m| m.0);
        /// `same` (bind the first connection's port first) or `any` (connect picks the port).
        reconnect_port: ReconnectPort = ReconnectPort::Same, Unit::None, Cli::Plain,
            |o, v| o.reconnect_port = v;
        /// Close while still connecting: non-blocking connect(2), close(2) this long later
        /// (in SYN_SENT when the SYN-ACK is slower). No exchange; the server accepts nothing.
        #[serde(skip_serializing_if = "Option::is_none")]
        abandon_connect_ms: Option<Millis> = None, Unit::Ms, Cli::Plain,
            |o, v| o.abandon_connect_ms = v.map(|m| m.0);
        /// Pause between sending the request and reading the answer, ms: the answer and
        /// the server's FIN are in before the read (a slow reader; quickack's re-arm after
        /// it then ACKs the FIN at once).
        #[serde(skip_serializing_if = "Millis::is_zero")]
        read_delay_ms: Millis = Millis::ZERO, Unit::Ms, Cli::Plain,
            |o, v| o.read_delay_ms = v.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: KnobTable + PartialEq + std::fmt::Debug>() {
        for k in T::KNOBS {
            let d = T::default();
            let text = (k.get)(&d);
            let mut back = T::default();
            (k.set)(&mut back, &text).unwrap_or_else(|e| panic!("{}: {e}", k.key));
            assert_eq!(back, d, "{}: default `{text}` reads back", k.key);
            assert!(!k.doc_line().is_empty(), "{} has a doc line", k.key);
        }
    }

    #[test]
    fn every_program_knob_reads_back_its_default() {
        round_trip::<ServerKnobs>();
        round_trip::<ClientKnobs>();
    }

    #[test]
    fn every_program_knob_goes_somewhere() {
        // A knob that is parsed but never put into the options would be silently ignored:
        // set each to a value other than its default and check the options changed.
        for k in ServerKnobs::KNOBS {
            let mut knobs = ServerKnobs::default();
            let other = match (k.switch, k.choices.get(1)) {
                (true, _) => ((k.get)(&knobs) != "true").to_string(),
                (false, Some((choice, _))) => (*choice).to_owned(),
                _ => "7".to_owned(),
            };
            (k.set)(&mut knobs, &other).unwrap();
            let mut a = ServerOptions::default();
            ServerKnobs::default().apply(&mut a);
            let mut b = ServerOptions::default();
            knobs.apply(&mut b);
            assert_ne!(format!("{a:?}"), format!("{b:?}"), "{} goes nowhere", k.key);
        }
        for k in ClientKnobs::KNOBS {
            let mut knobs = ClientKnobs::default();
            let other = match (k.switch, k.choices.get(1)) {
                (true, _) => ((k.get)(&knobs) != "true").to_string(),
                (false, Some((choice, _))) => (*choice).to_owned(),
                _ => "7".to_owned(),
            };
            (k.set)(&mut knobs, &other).unwrap();
            let mut a = ClientOptions::default();
            ClientKnobs::default().apply(&mut a);
            let mut b = ClientOptions::default();
            knobs.apply(&mut b);
            assert_ne!(format!("{a:?}"), format!("{b:?}"), "{} goes nowhere", k.key);
        }
    }

    #[test]
    fn every_close_mode_is_a_choice() {
        let choices: Vec<&str> = <CloseHow as KnobValue>::CHOICES
            .iter()
            .map(|(name, _)| *name)
            .collect();
        let modes: Vec<&str> = CloseHow::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(choices, modes);
    }
}
