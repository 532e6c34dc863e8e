//! Numbers as the decision reasons show them: short, with no trailing `.0`.

/// At most one decimal, none when it would be `.0`: `60`, `62.5`.
pub fn number(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

/// A fraction as a percentage: `0.8` is `80%`.
pub fn percent(fraction: f64) -> String {
    format!("{}%", number(fraction * 100.0))
}

/// Milliseconds as whole seconds, rounded down: `62s`.
pub fn seconds(ms: u64) -> String {
    format!("{}s", ms / 1000)
}

/// US dollars with cents: `$0.40`.
pub fn usd(amount: f64) -> String {
    format!("${amount:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_a_useless_decimal() {
        assert_eq!(number(60.0), "60");
        assert_eq!(number(62.54), "62.5");
        assert_eq!(percent(0.07), "7%");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(seconds(62_900), "62s");
        assert_eq!(usd(0.4), "$0.40");
    }
}
