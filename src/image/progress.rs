//! Progress bars on stderr, shown only when it is a terminal and the caller asked.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A group of bars, or nothing at all when progress is not shown.
pub(crate) struct Bars {
    multi: Option<MultiProgress>,
}

impl Bars {
    pub(crate) fn new(show: bool) -> Bars {
        let visible = show && std::io::stderr().is_terminal();
        Bars {
            multi: visible.then(MultiProgress::new),
        }
    }

    /// A spinner counting bytes of unknown total; hidden when progress is off.
    pub(crate) fn spinner(&self, message: &str) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let style = ProgressStyle::with_template("{spinner} {msg} {binary_bytes}")
            .expect("the template is valid");
        let bar = ProgressBar::new_spinner()
            .with_style(style)
            .with_message(message.to_string());
        multi.add(bar)
    }

    /// A bar counting `len` bytes; hidden when progress is off.
    pub(crate) fn bytes(&self, len: u64, message: &str) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let style = ProgressStyle::with_template(
            "{msg:24} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes:<10} \
             {binary_bytes_per_sec}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        multi.add(
            ProgressBar::new(len)
                .with_style(style)
                .with_message(message.to_string()),
        )
    }
}
