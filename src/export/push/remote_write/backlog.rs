//! The snapshots waiting for delivery, within a byte bound: a series'
//! latest value is always kept, older points give way.

use super::encode::Span;
use super::*;

/// Snapshots not yet delivered, oldest first, within a byte bound.
#[derive(Debug)]
pub(super) struct WriteBacklog {
    pub(super) batches: VecDeque<Pending>,
    pub(super) next_seq: u64,
    pub(super) bytes: usize,
    pub(super) points: u64,
    pub(super) max_bytes: usize,
    pub(super) max_series: usize,
    /// The front batch's series sent by the request in flight: (seq, end).
    pub(super) in_flight: Option<(u64, usize)>,
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) batch: Batch,
    /// Series of the batch already delivered.
    pub(super) sent: usize,
}

impl WriteBacklog {
    pub(super) fn new(max_bytes: usize, max_series: usize) -> Self {
        WriteBacklog {
            batches: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            points: 0,
            max_bytes,
            max_series,
            in_flight: None,
        }
    }

    /// Queues a batch; past the byte bound, drops the oldest batches that
    /// are neither in flight nor the newest, moving each series' point into
    /// the next batch when that batch has no point of the series (so the
    /// latest value of every series stays).
    pub(super) fn add(&mut self, batch: Batch, in_flight: bool) -> Option<Dropped> {
        if batch.series.is_empty() {
            return None;
        }
        self.bytes += batch.bytes.len();
        self.points += batch.series.len() as u64;
        self.next_seq += 1;
        self.batches.push_back(Pending {
            seq: self.next_seq,
            batch,
            sent: 0,
        });
        let mut dropped = 0u64;
        let first = usize::from(in_flight);
        while self.bytes > self.max_bytes && self.batches.len() > first + 1 {
            let Some(old) = self.batches.remove(first) else {
                break;
            };
            self.bytes -= old.batch.bytes.len();
            self.points -= (old.batch.series.len() - old.sent) as u64;
            let next = &mut self.batches[first];
            let before = (next.batch.bytes.len(), next.batch.series.len());
            let carried = carry_forward(&old, &mut next.batch);
            self.bytes += next.batch.bytes.len() - before.0;
            self.points += (next.batch.series.len() - before.1) as u64;
            dropped += (old.batch.series.len() - old.sent - carried) as u64;
        }
        (dropped > 0).then_some(Dropped {
            points: dropped,
            reason: "bound",
        })
    }
}

/// Appends to `next` the unsent series of `old` that `next` has no point
/// for; returns how many.
pub(super) fn carry_forward(old: &Pending, next: &mut Batch) -> usize {
    // Hashed only here, when the backend is down and the bound is reached.
    let present: HashSet<&[u8]> = next
        .series
        .iter()
        .map(|s| &next.bytes[s.labels.0..s.labels.1])
        .collect();
    let missing: Vec<Span> = old.batch.series[old.sent..]
        .iter()
        .filter(|span| !present.contains(&old.batch.bytes[span.labels.0..span.labels.1]))
        .copied()
        .collect();
    for span in &missing {
        let at = next.bytes.len();
        let moved = |(a, b): (usize, usize)| (at + (a - span.entry.0), at + (b - span.entry.0));
        next.bytes
            .extend_from_slice(&old.batch.bytes[span.entry.0..span.entry.1]);
        next.series.push(Span {
            entry: moved(span.entry),
            labels: moved(span.labels),
        });
    }
    missing.len()
}

impl Backlog for WriteBacklog {
    fn next(&mut self) -> Option<Outgoing> {
        let front = self.batches.front()?;
        let series = &front.batch.series;
        let end = (front.sent + self.max_series).min(series.len());
        let raw = &front.batch.bytes[series[front.sent].entry.0..series[end - 1].entry.1];
        // Snappy's block format refuses only inputs over 4 GiB, which one
        // request of at most `max_series` series cannot reach; if it ever
        // did, the receiver's 400 to an empty body drops and counts it.
        let body = snap::raw::Encoder::new()
            .compress_vec(raw)
            .unwrap_or_default();
        self.in_flight = Some((front.seq, end));
        Some(Outgoing {
            ticket: front.seq,
            body,
            points: (end - front.sent) as u64,
        })
    }

    fn complete(&mut self, ticket: u64) {
        let Some((seq, end)) = self.in_flight.take() else {
            return;
        };
        let Some(front) = self.batches.front_mut() else {
            return;
        };
        if seq != ticket || front.seq != seq {
            return;
        }
        self.points -= (end - front.sent) as u64;
        front.sent = end;
        if front.sent == front.batch.series.len() {
            self.bytes -= front.batch.bytes.len();
            self.batches.pop_front();
        }
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn points(&self) -> u64 {
        self.points
    }
}
