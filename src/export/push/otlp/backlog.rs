//! The points waiting for delivery: one per series, coalesced.

use super::encode::{self, Head};
use super::json;
use super::set::MetricSet;
use super::{OtlpFormat, Temporality};
use crate::export::push::delivery::{Backlog, Dropped, Outgoing};

/// What is not yet delivered: the set on the wire (or waiting for its
/// retry) and the set gathered since.
#[derive(Debug)]
pub(super) struct OtlpBacklog {
    pub(super) head: Head,
    pub(super) format: OtlpFormat,
    /// Gzip bodies (feature `otlp-gzip`).
    pub(super) gzip: bool,
    queued: MetricSet,
    sent: Option<(u64, MetricSet)>,
    next_ticket: u64,
    /// Points superseded where no `Dropped` could be returned.
    unreported: u64,
    bytes: usize,
}

impl OtlpBacklog {
    pub(super) fn new(head: Head, format: OtlpFormat) -> Self {
        OtlpBacklog {
            head,
            format,
            gzip: false,
            queued: MetricSet::default(),
            sent: None,
            next_ticket: 0,
            unreported: 0,
            bytes: 0,
        }
    }

    fn temporality(&self) -> Temporality {
        self.head.temporality
    }

    /// Folds a set that failed to go back in front of what came since.
    fn requeue_sent(&mut self) {
        if let Some((_, mut older)) = self.sent.take() {
            let newer = std::mem::take(&mut self.queued);
            self.unreported += older.absorb(newer, self.temporality());
            self.queued = older;
        }
    }

    /// Adds one snapshot's points. `on_wire`: a request is being sent now,
    /// so what it carries stays apart until its answer.
    pub(super) fn add(&mut self, set: MetricSet, on_wire: bool) -> Option<Dropped> {
        if !on_wire {
            self.requeue_sent();
        }
        let superseded = self.queued.absorb(set, self.temporality()) + self.unreported;
        self.unreported = 0;
        self.size();
        (superseded > 0).then_some(Dropped {
            points: superseded,
            reason: "superseded",
        })
    }

    fn size(&mut self) {
        self.bytes =
            self.queued.approx_bytes() + self.sent.as_ref().map_or(0, |(_, s)| s.approx_bytes());
    }

    pub(super) fn encode(&self, set: &MetricSet) -> Vec<u8> {
        match self.format {
            OtlpFormat::Protobuf => encode::protobuf(&self.head, set),
            OtlpFormat::Json => json::encode(&self.head, set),
        }
    }
}

impl Backlog for OtlpBacklog {
    fn next(&mut self) -> Option<Outgoing> {
        // A retry: resend with whatever came since.
        self.requeue_sent();
        if self.queued.is_empty() {
            return None;
        }
        let set = std::mem::take(&mut self.queued);
        let body = self.encode(&set);
        let body = if self.gzip { gzip(body) } else { body };
        self.next_ticket += 1;
        let points = set.points;
        self.sent = Some((self.next_ticket, set));
        self.size();
        Some(Outgoing {
            ticket: self.next_ticket,
            body,
            points,
        })
    }

    fn complete(&mut self, ticket: u64) {
        if self.sent.as_ref().is_some_and(|(t, _)| *t == ticket) {
            self.sent = None;
            self.size();
        }
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn points(&self) -> u64 {
        self.queued.points + self.sent.as_ref().map_or(0, |(_, s)| s.points)
    }

    /// Points a retry's requeue superseded (see `requeue_sent`).
    fn take_dropped(&mut self) -> Option<Dropped> {
        let points = std::mem::take(&mut self.unreported);
        (points > 0).then_some(Dropped {
            points,
            reason: "superseded",
        })
    }
}

/// Gzips a body (feature `otlp-gzip`; without it `gzip` is never set).
#[cfg(feature = "otlp-gzip")]
pub(super) fn gzip(body: Vec<u8>) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail; if it ever did, the uncompressed body
    // would be refused by the receiver with a 400, which is counted.
    match e.write_all(&body).and_then(|()| e.finish()) {
        Ok(out) => out,
        Err(_) => body,
    }
}

#[cfg(not(feature = "otlp-gzip"))]
fn gzip(body: Vec<u8>) -> Vec<u8> {
    body
}
