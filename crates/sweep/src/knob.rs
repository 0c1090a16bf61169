//! Knob values and the `--vary` grammar: `key=a..b:step` (inclusive range), `key=a,b,c` (list),
//! `key=v` (one value).
//!
//! Numbers are kept in a canonical spelling (`20`, `2.5`, never `20.0` or `0.30000000000000004`):
//! the spelling is what the runner's `set_knob` receives, what names a point's file on disk (so
//! a re-run finds it again) and what the CSV shows.

use std::fmt;

/// Upper bound on the values of one knob: a typo such as `0..100000:1` should be an error,
/// not a sweep that runs for a week.
pub const MAX_VALUES: usize = 10_000;

/// One value of a knob: its canonical text and, when it is a number, the number.
#[derive(Clone, Debug, PartialEq)]
pub struct KnobValue {
    /// Canonical spelling, passed to the scenario as is.
    pub text: String,
    /// The number, if the value is numeric (charts place numeric values to scale).
    pub num: Option<f64>,
}

impl KnobValue {
    /// A value from user text: numbers are canonicalised, anything else is kept verbatim.
    pub fn parse(text: &str) -> KnobValue {
        let t = text.trim();
        match t.parse::<f64>() {
            Ok(n) if n.is_finite() => KnobValue::number(n),
            _ => KnobValue {
                text: t.to_string(),
                num: None,
            },
        }
    }

    /// A numeric value.
    pub fn number(n: f64) -> KnobValue {
        let text = canonical(n);
        // Re-read the canonical text so that the number and its spelling agree exactly.
        let num = text.parse::<f64>().unwrap_or(n);
        KnobValue {
            text,
            num: Some(num),
        }
    }
}

impl fmt::Display for KnobValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Shortest decimal spelling with at most 6 fractional digits; `-0` becomes `0`.
pub fn canonical(n: f64) -> String {
    let s = format!("{n:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// One `--vary` argument: a scenario knob and the values it takes, in sweep order.
#[derive(Clone, Debug, PartialEq)]
pub struct Vary {
    /// Scenario knob, e.g. `server.close_delay_ms`.
    pub key: String,
    /// Values, in the order given (ranges ascend).
    pub values: Vec<KnobValue>,
}

impl Vary {
    /// Parse `key=SPEC`.
    pub fn parse(arg: &str) -> Result<Vary, VaryError> {
        let (key, spec) = arg
            .split_once('=')
            .ok_or_else(|| VaryError::NoEquals(arg.to_string()))?;
        let key = key.trim();
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !key_ok {
            return Err(VaryError::BadKey(key.to_string()));
        }
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(VaryError::Empty(key.to_string()));
        }
        let values = if spec.contains("..") {
            range(key, spec)?
        } else {
            list(key, spec)?
        };
        Ok(Vary {
            key: key.to_string(),
            values,
        })
    }

    /// Whether every value is a number (then charts use a numeric axis).
    pub fn is_numeric(&self) -> bool {
        self.values.iter().all(|v| v.num.is_some())
    }

    /// The knob's unit from the knob table, for axis labels and the boundary text.
    pub fn unit(&self) -> &'static str {
        unit_of(&self.key)
    }
}

/// The unit of a knob's number, from the runner's knob table (`ms`, `s`, or "").
pub fn unit_of(key: &str) -> &'static str {
    tcplab_runner::knob_table::unit_of(key)
}

fn number(key: &str, s: &str) -> Result<f64, VaryError> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(VaryError::NotANumber {
            key: key.to_string(),
            text: s.trim().to_string(),
        }),
    }
}

/// `a..b[:step]`, step 1 when omitted; `b` is included when it lands on the grid.
fn range(key: &str, spec: &str) -> Result<Vec<KnobValue>, VaryError> {
    let (bounds, step) = match spec.rsplit_once(':') {
        Some((b, s)) => (b, number(key, s)?),
        None => (spec, 1.0),
    };
    let (a, b) = bounds
        .split_once("..")
        .ok_or_else(|| VaryError::Empty(key.to_string()))?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let (a, b) = (number(key, a)?, number(key, b)?);
    if step <= 0.0 {
        return Err(VaryError::BadStep {
            key: key.to_string(),
            step,
        });
    }
    if b < a {
        return Err(VaryError::Descending {
            key: key.to_string(),
            from: a,
            to: b,
        });
    }
    // A small tolerance keeps `0..0.3:0.1` from losing 0.3 to binary rounding.
    let n = ((b - a) / step + 1e-9).floor() + 1.0;
    if n > MAX_VALUES as f64 {
        return Err(VaryError::TooMany {
            key: key.to_string(),
            count: n as u64,
        });
    }
    Ok((0..n as usize)
        .map(|i| KnobValue::number(a + step * i as f64))
        .collect())
}

fn list(key: &str, spec: &str) -> Result<Vec<KnobValue>, VaryError> {
    let mut out: Vec<KnobValue> = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(VaryError::Empty(key.to_string()));
        }
        let v = KnobValue::parse(part);
        if out.iter().any(|o| o.text == v.text) {
            return Err(VaryError::Duplicate {
                key: key.to_string(),
                value: v.text,
            });
        }
        out.push(v);
    }
    if out.len() > MAX_VALUES {
        return Err(VaryError::TooMany {
            key: key.to_string(),
            count: out.len() as u64,
        });
    }
    Ok(out)
}

/// A `--vary` argument that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VaryError {
    /// No `=` between key and values.
    #[error("--vary {0:?}: expected KEY=VALUES, e.g. server.close_delay_ms=0..100:5")]
    NoEquals(String),
    /// Key with characters a scenario knob cannot have.
    #[error("--vary: bad knob name {0:?} (letters, digits, '_', '.', '-')")]
    BadKey(String),
    /// Nothing after `=` (or an empty list item).
    #[error("--vary {0}: empty value")]
    Empty(String),
    /// A range bound or step that is not a number.
    #[error("--vary {key}: {text:?} is not a number")]
    NotANumber {
        /// Knob.
        key: String,
        /// The offending text.
        text: String,
    },
    /// Step of zero or less.
    #[error("--vary {key}: step must be > 0, got {step}")]
    BadStep {
        /// Knob.
        key: String,
        /// The step.
        step: f64,
    },
    /// `a..b` with b < a.
    #[error("--vary {key}: range {from}..{to} descends; write the smaller bound first")]
    Descending {
        /// Knob.
        key: String,
        /// Start.
        from: f64,
        /// End.
        to: f64,
    },
    /// More than [`MAX_VALUES`] values.
    #[error("--vary {key}: {count} values is more than the limit of {MAX_VALUES}")]
    TooMany {
        /// Knob.
        key: String,
        /// How many the range would give.
        count: u64,
    },
    /// A list naming one value twice.
    #[error("--vary {key}: value {value} is listed twice")]
    Duplicate {
        /// Knob.
        key: String,
        /// The value.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(arg: &str) -> Vec<String> {
        Vary::parse(arg)
            .expect("parses")
            .values
            .into_iter()
            .map(|v| v.text)
            .collect()
    }

    #[test]
    fn range_includes_end_on_grid() {
        assert_eq!(
            texts("server.close_delay_ms=0..20:5"),
            ["0", "5", "10", "15", "20"]
        );
        assert_eq!(texts("k=0..12:5"), ["0", "5", "10"]);
        assert_eq!(texts("k=3..3:1"), ["3"]);
        assert_eq!(texts("k=1..3"), ["1", "2", "3"]);
        assert_eq!(texts("k=0..=2:1"), ["0", "1", "2"]);
    }

    #[test]
    fn range_of_floats_has_canonical_spelling() {
        assert_eq!(texts("k=0..0.3:0.1"), ["0", "0.1", "0.2", "0.3"]);
        assert_eq!(texts("k=-1..1:0.5"), ["-1", "-0.5", "0", "0.5", "1"]);
        let v = Vary::parse("k=0..0.3:0.1").unwrap();
        assert_eq!(v.values[3].num, Some(0.3));
        assert!(v.is_numeric());
    }

    #[test]
    fn list_keeps_order_and_words() {
        assert_eq!(texts("client.close_delay_ms=0,20,60"), ["0", "20", "60"]);
        assert_eq!(texts("k=60, 20.0 ,0"), ["60", "20", "0"]);
        let v = Vary::parse("server.close=close,linger0").unwrap();
        assert_eq!(v.values[1].text, "linger0");
        assert!(!v.is_numeric());
        assert_eq!(texts("k=7"), ["7"]);
    }

    #[test]
    fn bad_specs_are_errors_that_name_the_knob() {
        let err = |s: &str| Vary::parse(s).unwrap_err();
        assert!(matches!(err("k"), VaryError::NoEquals(_)));
        assert!(matches!(err("=1,2"), VaryError::BadKey(_)));
        assert!(matches!(err("k="), VaryError::Empty(_)));
        assert!(matches!(err("k=1,,2"), VaryError::Empty(_)));
        assert!(matches!(err("k=0..10:0"), VaryError::BadStep { .. }));
        assert!(matches!(err("k=0..10:-1"), VaryError::BadStep { .. }));
        assert!(matches!(err("k=10..0:1"), VaryError::Descending { .. }));
        assert!(matches!(err("k=a..10:1"), VaryError::NotANumber { .. }));
        assert!(matches!(err("k=0..10:x"), VaryError::NotANumber { .. }));
        assert!(matches!(err("k=0..1e9:1"), VaryError::TooMany { .. }));
        assert!(matches!(err("k=1,2,1.0"), VaryError::Duplicate { .. }));
        assert!(err("k=0..10:0").to_string().contains("--vary k"));
    }

    #[test]
    fn units_follow_the_key_suffix() {
        assert_eq!(unit_of("server.close_delay_ms"), "ms");
        assert_eq!(unit_of("client.how"), "");
    }
}
