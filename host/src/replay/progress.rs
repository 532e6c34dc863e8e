//! A progress bar on stderr while a policy replays, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};

/// Characters the bar is wide.
const BAR: usize = 30;

/// One line redrawn in place as the replay advances.
#[derive(Debug)]
pub struct Progress {
    label: String,
    shown: Option<usize>,
    enabled: bool,
}

impl Progress {
    /// A bar for `label`; silent unless stderr is a terminal.
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            shown: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Shows `fraction` (0 to 1) done; redraws only when the bar changes.
    pub fn set(&mut self, fraction: f64) {
        let filled = ((fraction.clamp(0.0, 1.0) * BAR as f64) as usize).min(BAR);
        if !self.enabled || self.shown == Some(filled) {
            return;
        }
        self.shown = Some(filled);
        let line = render(&self.label, filled, fraction);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}");
        let _ = stderr.flush();
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.enabled && self.shown.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

fn render(label: &str, filled: usize, fraction: f64) -> String {
    format!(
        "{label:<24} [{}{}] {:>3.0}%",
        "#".repeat(filled),
        "-".repeat(BAR - filled),
        fraction * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_fraction() {
        let line = render("threshold", 15, 0.5);
        assert_eq!(
            line,
            format!(
                "threshold                [{}{}]  50%",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
    }
}
