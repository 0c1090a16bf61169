//! Values as error messages show them: on one line whatever they hold, and short whatever
//! their size, so that one hostile value cannot fill a screen or split a message in two.

/// The most characters of a value a message shows.
const MAX_CHARS: usize = 64;

/// `s` escaped (`\n`, `\t`, quotes as Rust writes them: one line) and cut after
/// [`MAX_CHARS`] characters, saying how long it was.
pub fn text(s: &str) -> String {
    let count = s.chars().count();
    let head: String = s.chars().take(MAX_CHARS).collect();
    let escaped = head.escape_debug().to_string();
    if count > MAX_CHARS {
        format!("{escaped}… ({count} characters)")
    } else {
        escaped
    }
}

/// A number as a message shows it: as written for everyday sizes, in exponent form past
/// 10^15 (1e308 is not printed as 309 digits) and for tiny fractions.
pub fn number(v: f64) -> String {
    tcplab_server::timing::shown_number(v)
}

/// toml's message for an integer past i64 reads "invalid type: integer `N` as i128,
/// expected i64" (or "expected any value" where a field takes a number or a word, like
/// `nth`): say what it means instead. Other messages pass through.
pub fn toml_message(message: &str) -> String {
    let m = message.trim_end();
    if let Some(rest) = m.strip_prefix("invalid type: integer `") {
        if let Some((n, _)) = rest.split_once("` as i128, expected ") {
            return format!(
                "integer {} is out of range (a TOML integer is at most 9223372036854775807)",
                text(n)
            );
        }
    }
    m.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_kept_on_one_line() {
        assert_eq!(text("seed"), "seed");
        assert_eq!(text("1\n2"), "1\\n2");
        let long = "x".repeat(10_000);
        let shown = text(&long);
        assert_eq!(shown, format!("{}… (10000 characters)", "x".repeat(64)));
        assert_eq!(number(20.0), "20");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(-2.5e20), "-2.5e20");
        assert_eq!(number(0.0), "0");
        assert_eq!(
            toml_message("invalid type: integer `18446744073709551616` as i128, expected i64\n"),
            "integer 18446744073709551616 is out of range (a TOML integer is at most 9223372036854775807)"
        );
        assert_eq!(
            toml_message("invalid type: integer `18446744073709551616` as i128, expected any value"),
            "integer 18446744073709551616 is out of range (a TOML integer is at most 9223372036854775807)"
        );
        assert_eq!(
            toml_message("missing field `expect`"),
            "missing field `expect`"
        );
    }
}
