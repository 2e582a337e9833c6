//! A progress line on stderr for long CLI work (`enqueue --file`, `import`), shown only on
//! a terminal so that logs and pipes get no carriage returns.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const EVERY: Duration = Duration::from_millis(200);

/// A line that says how far a job has got, redrawn in place.
pub struct Progress<W: Write> {
    out: Option<W>,
    what: &'static str,
    total: Option<usize>,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress<std::io::Stderr> {
    /// A progress line on stderr if it is a terminal; else one that prints nothing.
    pub fn on_terminal(what: &'static str, total: Option<usize>) -> Self {
        let err = std::io::stderr();
        let out = err.is_terminal().then_some(err);
        Progress { out, what, total, started: Instant::now(), drawn: None }
    }
}

impl<W: Write> Progress<W> {
    /// A progress line written to `out`.
    #[cfg(test)]
    pub fn to(out: W, what: &'static str, total: Option<usize>) -> Self {
        Progress { out: Some(out), what, total, started: Instant::now(), drawn: None }
    }

    /// Says that `done` items are through, unless the job began or the line was drawn less
    /// than 200 ms ago (a quick job shows no line at all).
    pub fn update(&mut self, done: usize) {
        let Some(out) = self.out.as_mut() else { return };
        if self.started.elapsed() < EVERY || self.drawn.is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = match self.total {
            Some(total) if total > 0 => format!("{}: {done}/{total} ({}%)", self.what, done * 100 / total),
            _ => format!("{}: {done}", self.what),
        };
        // Errors writing to the terminal must not fail the job.
        let _ = write!(out, "\r\x1b[2K{line}");
        let _ = out.flush();
    }

    /// Clears the line (when one was drawn), leaving the terminal as it was.
    pub fn finish(&mut self) {
        if let (Some(out), Some(_)) = (self.out.as_mut(), self.drawn) {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
        self.drawn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_counts_at_most_every_200_ms_and_clears_at_the_end() {
        let mut buf = Vec::new();
        {
            let mut p = Progress::to(&mut buf, "writing events", Some(400));
            p.started -= EVERY;
            p.update(2);
            p.update(3); // too soon after the last: not drawn
            std::thread::sleep(EVERY);
            p.update(200);
            p.finish();
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "\r\x1b[2Kwriting events: 2/400 (0%)\r\x1b[2Kwriting events: 200/400 (50%)\r\x1b[2K");
    }

    #[test]
    fn a_quick_job_draws_nothing() {
        let mut buf = Vec::new();
        let mut p = Progress::to(&mut buf, "writing events", Some(10));
        p.started += Duration::from_secs(3600); // as if it had only just begun, however slow this machine
        p.update(10);
        p.finish();
        assert!(buf.is_empty());
    }

    #[test]
    fn without_a_total_it_counts_and_with_nothing_drawn_finish_writes_nothing() {
        let mut buf = Vec::new();
        Progress::to(&mut buf, "reading files", None).finish();
        assert!(buf.is_empty());
        let mut p = Progress::to(&mut buf, "reading files", None);
        p.started -= EVERY;
        p.update(7);
        assert_eq!(String::from_utf8(buf).unwrap(), "\r\x1b[2Kreading files: 7");
    }
}
