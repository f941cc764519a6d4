//! Progress while a pipeline runs: a bar on a terminal, lines otherwise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressMode;

/// Reports instances starting and finishing.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    running: Vec<String>,
}

/// How an instance ended, as shown to the user.
pub enum Shown<'a> {
    Done,
    Failed(&'a str),
    Skipped,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: usize) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("valid progress template")
                .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            mode,
            bar,
            total,
            done: 0,
            running: Vec::new(),
        }
    }

    /// A line above the bar (or on its own without one).
    pub fn line(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, ProgressMode::None) => {}
            (None, _) => eprintln!("{text}"),
        }
    }

    pub fn started(&mut self, id: &str) {
        self.running.push(id.to_string());
        self.refresh();
    }

    pub fn finished(&mut self, id: &str, shown: Shown<'_>, wall: Option<Duration>) {
        self.running.retain(|r| r != id);
        self.done += 1;
        let width = self.total.to_string().len();
        let counter = format!("[{:>width$}/{}]", self.done, self.total);
        let time = wall
            .map(|w| format!(" {}", format_duration(w)))
            .unwrap_or_default();
        let text = match shown {
            Shown::Done => format!("{counter} done     {id}{time}"),
            Shown::Failed(why) => format!("{counter} FAILED   {id}{time}: {why}"),
            Shown::Skipped => format!("{counter} skipped  {id}"),
        };
        let quiet_success =
            self.mode == ProgressMode::None && matches!(shown, Shown::Done | Shown::Skipped);
        if !quiet_success {
            self.line(&text);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.refresh();
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            let mut shown = self
                .running
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if self.running.len() > 4 {
                shown.push_str(&format!(" and {} more", self.running.len() - 4));
            }
            bar.set_message(if shown.is_empty() {
                String::new()
            } else {
                format!("running {shown}")
            });
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1.23s`, `2m05s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h{:02}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60)
    }
}
