//! Where readers put what they read.

use riposte_event::Event;

use crate::error::RecordError;

/// Receives the events of a reader, and the records it had to skip.
pub trait Sink {
    /// One event. `bytes` is the size of its record, for throughput figures.
    /// The event is reused by the reader afterwards: clone what you keep.
    fn event(&mut self, event: &mut Event, bytes: u64);

    /// A record that could not be read; reading goes on.
    fn skipped(&mut self, error: RecordError);
}

/// A sink that keeps everything (for tests and small inputs).
#[derive(Default)]
pub struct Collect {
    pub events: Vec<Event>,
    pub skipped: Vec<RecordError>,
}

impl Sink for Collect {
    fn event(&mut self, event: &mut Event, _bytes: u64) {
        self.events.push(event.clone());
    }

    fn skipped(&mut self, error: RecordError) {
        self.skipped.push(error);
    }
}
