//! A pass under way, as both drivers mark it: timed by the run's metrics and shown by its
//! progress display. Dropped without [`PassClock::finish`] (the pass failed), it shows the pass
//! as failed.

use pipeline::metrics::PassTimer;
use pipeline::{Metrics, Progress};

pub struct PassClock<'m> {
    timer: Option<PassTimer<'m>>,
    progress: Progress,
    name: &'static str,
}

impl<'m> PassClock<'m> {
    pub fn begin(progress: &Progress, metrics: &'m Metrics, name: &'static str) -> PassClock<'m> {
        progress.begin_pass(name);
        PassClock {
            timer: Some(metrics.pass(name)),
            progress: progress.clone(),
            name,
        }
    }

    pub fn finish(mut self) {
        if let Some(timer) = self.timer.take() {
            timer.finish();
        }
        self.progress.end_pass(self.name);
    }
}

impl Drop for PassClock<'_> {
    fn drop(&mut self) {
        if self.timer.is_some() {
            self.progress.fail_pass(self.name);
        }
    }
}
