//! The finished points of one level of one series, encoded compactly.
//!
//! Points are appended in time order into chunks of up to [`CHUNK`] points.
//! Inside a chunk each point is a few variable-length fields, each relative
//! to the point before it:
//!
//! - time: the change of the step between points (zig-zag varint): zero,
//!   one byte, when snapshots or intervals are evenly spaced;
//! - covered milliseconds: the difference from the step (zig-zag varint):
//!   one byte when the series reported in every snapshot;
//! - counter: increase and resets (varints);
//! - gauge: one tagged value for a single reading (raw points), else count,
//!   sum, min, max and last; each `f64` as the XOR with the same field of
//!   the previous point, stored as its trailing-zero count and the
//!   remaining bits (one byte for a repeated value);
//! - histogram: count (varint), sum (XOR as above), and the distribution:
//!   zero count, then the byte length (4 bytes) and the (bucket gap,
//!   count) varint pairs of [`Dist`]'s packed form.
//!
//! A counter point takes about 4 bytes instead of the 80 of a [`Point`]; a
//! histogram point its packed distribution and about 12 bytes. Whole chunks
//! leave when their newest point is past the retention; points of a
//! partly expired chunk below the floor are skipped when read.

use std::collections::VecDeque;

use super::point::{Aggregate, Dist, Point};
use super::varint::{get_float, get_signed, get_varint, put_float, put_signed, put_varint};
use crate::snapshot::{CounterValue, MetricKind};

/// Points per chunk: the unit of expiry (a chunk outlives the retention of
/// its first point by at most this many points) and of decoding.
const CHUNK: u32 = 128;

/// Encoded points of one level of one series, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Column {
    /// The kind of every point (set by the first).
    kind: Option<MetricKind>,
    chunks: VecDeque<Chunk>,
    /// Points older than this are expired (still in the first chunk).
    floor: u64,
    /// The first chunk's newest point: what expiry compares with, kept
    /// here so that it reads no chunk until one can go.
    front_last_t: u64,
}

#[derive(Debug)]
struct Chunk {
    first_t: u64,
    last_t: u64,
    len: u32,
    bytes: Vec<u8>,
    /// The encoder's state after the chunk's newest point.
    tail: State,
}

impl Chunk {
    /// A chunk of `points` (in time order, at most [`CHUNK`]); `None` for
    /// none.
    fn of(points: &[Point]) -> Option<Chunk> {
        let first_t = points.first()?.t_ms;
        let mut chunk = Chunk {
            first_t,
            last_t: first_t,
            len: 0,
            bytes: Vec::new(),
            tail: State::starting_at(first_t),
        };
        for p in points {
            encode(&mut chunk.bytes, &mut chunk.tail, p);
            chunk.len += 1;
            chunk.last_t = p.t_ms;
        }
        Some(chunk)
    }
}

/// What a point is encoded relative to: the point before it in its chunk.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    t: u64,
    step: u64,
    /// Gauge sum, min, max, last; histogram sum in `[0]`.
    floats: [u64; 4],
}

impl State {
    fn starting_at(t: u64) -> Self {
        State {
            t,
            ..State::default()
        }
    }
}

impl Column {
    /// Appends a point newer than every point held.
    /// A point of another kind than the first is dropped (the store never
    /// mixes kinds in a series).
    /// A point not newer than the newest held is dropped too: times are
    /// encoded as forward steps.
    pub(crate) fn push(&mut self, point: &Point) {
        let kind = *self.kind.get_or_insert(point.agg.kind());
        let newest = self.chunks.back().map(|c| c.last_t);
        if kind != point.agg.kind() || newest.is_some_and(|t| point.t_ms <= t) {
            return;
        }
        let fresh = match self.chunks.back() {
            Some(c) => c.len >= CHUNK,
            None => true,
        };
        if fresh {
            if let Some(sealed) = self.chunks.back_mut() {
                sealed.bytes.shrink_to_fit();
            }
            self.chunks.push_back(Chunk {
                first_t: point.t_ms,
                last_t: point.t_ms,
                len: 0,
                bytes: Vec::new(),
                tail: State::starting_at(point.t_ms),
            });
        }
        let single = self.chunks.len() == 1;
        let Some(chunk) = self.chunks.back_mut() else {
            return;
        };
        encode(&mut chunk.bytes, &mut chunk.tail, point);
        chunk.len += 1;
        chunk.last_t = point.t_ms;
        if single {
            self.front_last_t = point.t_ms;
        }
    }

    /// Forgets the points older than `floor`: whole chunks at once, the
    /// rest of a partly older chunk is skipped when read.
    pub(crate) fn expire_before(&mut self, floor: u64) {
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        if self.front_last_t >= floor || self.chunks.is_empty() {
            return;
        }
        while self.chunks.front().is_some_and(|c| c.last_t < floor) {
            self.chunks.pop_front();
        }
        self.front_last_t = self.chunks.front().map_or(0, |c| c.last_t);
    }

    /// Forgets the points at or after `t`: what a clock that was stepped
    /// back disowns. Costs a decode and an encode of the chunk cut short.
    pub(crate) fn truncate_from(&mut self, t: u64) {
        while self.chunks.back().is_some_and(|c| c.first_t >= t) {
            self.chunks.pop_back();
        }
        let kind = self.kind;
        if let Some(last) = self.chunks.back_mut() {
            if last.last_t >= t {
                let kept: Vec<Point> = Decoder::new(last, kind)
                    .take_while(|p| p.t_ms < t)
                    .collect();
                match Chunk::of(&kept) {
                    Some(chunk) => *last = chunk,
                    None => {
                        self.chunks.pop_back();
                    }
                }
            }
        }
        self.front_last_t = self.chunks.front().map_or(0, |c| c.last_t);
    }

    /// Frees what expiry left in memory: the points below the floor in the
    /// first chunk (which is encoded again from the first point kept) and
    /// spare capacity. Costs a decode and an encode of one chunk.
    pub(crate) fn trim(&mut self) {
        let kind = self.kind;
        let floor = self.floor;
        if let Some(first) = self.chunks.front_mut() {
            if first.first_t < floor {
                let kept: Vec<Point> = Decoder::new(first, kind)
                    .skip_while(|p| p.t_ms < floor)
                    .collect();
                match Chunk::of(&kept) {
                    Some(chunk) => *first = chunk,
                    None => {
                        self.chunks.pop_front();
                    }
                }
            }
        }
        for chunk in &mut self.chunks {
            chunk.bytes.shrink_to_fit();
        }
        self.chunks.shrink_to_fit();
        self.front_last_t = self.chunks.front().map_or(0, |c| c.last_t);
    }

    /// True when no point at or above the floor is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.back().is_none_or(|c| c.last_t < self.floor)
    }

    /// The number of points held.
    pub(crate) fn len(&self) -> usize {
        let whole: usize = self.chunks.iter().map(|c| c.len as usize).sum();
        let Some(first) = self.chunks.front() else {
            return 0;
        };
        if first.first_t >= self.floor {
            return whole;
        }
        let below = Decoder::new(first, self.kind)
            .take_while(|p| p.t_ms < self.floor)
            .count();
        whole - below
    }

    /// Time of the oldest point held.
    pub(crate) fn first_t(&self) -> Option<u64> {
        self.iter_from(0).next().map(|p| p.t_ms)
    }

    /// The points with `t >= start`, oldest first, decoded.
    pub(crate) fn iter_from(&self, start: u64) -> impl Iterator<Item = Point> + '_ {
        let from = start.max(self.floor);
        let skip = self.chunks.partition_point(|c| c.last_t < from);
        self.chunks
            .range(skip..)
            .flat_map(|c| Decoder::new(c, self.kind))
            .skip_while(move |p| p.t_ms < from)
    }

    /// Bytes of memory held (the chunks' buffers and headers).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self
                .chunks
                .iter()
                .map(|c| c.bytes.capacity())
                .sum::<usize>()
    }
}

fn encode(out: &mut Vec<u8>, state: &mut State, p: &Point) {
    let step = p.t_ms.saturating_sub(state.t);
    put_signed(out, step.wrapping_sub(state.step) as i64);
    put_signed(out, p.covered_ms.wrapping_sub(step) as i64);
    state.t = p.t_ms;
    state.step = step;
    match &p.agg {
        // The resets' lowest bit says whether the increase is whole (a
        // varint) or a float (its 8 bytes): whole ones cost nothing more.
        Aggregate::Counter { increase, resets } => match increase {
            CounterValue::Int(v) => {
                put_varint(out, u64::from(*resets) << 1);
                put_varint(out, *v);
            }
            CounterValue::Float(v) => {
                put_varint(out, u64::from(*resets) << 1 | 1);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        },
        Aggregate::Gauge {
            count,
            sum,
            min,
            max,
            last,
        } => {
            let values = [*sum, *min, *max, *last].map(f64::to_bits);
            if *count == 1 && values.iter().all(|v| *v == values[0]) {
                out.push(0);
                put_float(out, &mut state.floats[3], values[0]);
                state.floats = [values[0]; 4];
            } else {
                out.push(1);
                put_varint(out, *count);
                for (prev, v) in state.floats.iter_mut().zip(values) {
                    put_float(out, prev, v);
                }
            }
        }
        Aggregate::Histogram {
            count,
            sum,
            buckets,
        } => {
            put_varint(out, *count);
            put_float(out, &mut state.floats[0], sum.to_bits());
            match buckets {
                None => out.push(0),
                Some(dist) => {
                    out.push(1);
                    put_varint(out, dist.zeros());
                    // The pairs' byte length, fixed-width so that the pairs
                    // are written in place and the length after them.
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    dist.write_packed(out);
                    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
                    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
                }
            }
        }
    }
}

/// Decodes one chunk.
struct Decoder<'a> {
    kind: Option<MetricKind>,
    bytes: &'a [u8],
    at: usize,
    left: u32,
    state: State,
}

impl<'a> Decoder<'a> {
    fn new(chunk: &'a Chunk, kind: Option<MetricKind>) -> Self {
        Decoder {
            kind,
            bytes: &chunk.bytes,
            at: 0,
            left: chunk.len,
            state: State::starting_at(chunk.first_t),
        }
    }

    fn point(&mut self) -> Option<Point> {
        let (bytes, at, state) = (self.bytes, &mut self.at, &mut self.state);
        let step = state.step.wrapping_add(get_signed(bytes, at)? as u64);
        let covered_ms = step.wrapping_add(get_signed(bytes, at)? as u64);
        state.t = state.t.wrapping_add(step);
        state.step = step;
        let agg = match self.kind? {
            MetricKind::Counter => {
                let tagged = get_varint(bytes, at)?;
                let resets = u32::try_from(tagged >> 1).ok()?;
                let increase = if tagged & 1 == 0 {
                    CounterValue::Int(get_varint(bytes, at)?)
                } else {
                    let raw = bytes.get(*at..*at + 8)?;
                    *at += 8;
                    CounterValue::Float(f64::from_bits(u64::from_le_bytes(raw.try_into().ok()?)))
                };
                Aggregate::Counter { increase, resets }
            }
            MetricKind::Gauge => {
                let single = *bytes.get(*at)? == 0;
                *at += 1;
                if single {
                    let v = get_float(bytes, at, &mut state.floats[3])?;
                    state.floats = [v; 4];
                    Aggregate::gauge(f64::from_bits(v))
                } else {
                    let count = get_varint(bytes, at)?;
                    let mut v = [0.0; 4];
                    for (prev, out) in state.floats.iter_mut().zip(&mut v) {
                        *out = f64::from_bits(get_float(bytes, at, prev)?);
                    }
                    Aggregate::Gauge {
                        count,
                        sum: v[0],
                        min: v[1],
                        max: v[2],
                        last: v[3],
                    }
                }
            }
            MetricKind::Histogram => {
                let count = get_varint(bytes, at)?;
                let sum = f64::from_bits(get_float(bytes, at, &mut state.floats[0])?);
                let has = *bytes.get(*at)? == 1;
                *at += 1;
                let buckets = if has {
                    let zeros = get_varint(bytes, at)?;
                    let len = bytes.get(*at..at.checked_add(4)?)?;
                    let len = usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?;
                    *at += 4;
                    let pairs = bytes.get(*at..at.checked_add(len)?)?;
                    *at += len;
                    Some(Dist::from_packed(zeros, pairs))
                } else {
                    None
                };
                Aggregate::Histogram {
                    count,
                    sum,
                    buckets,
                }
            }
        };
        Some(Point {
            t_ms: state.t,
            covered_ms,
            agg,
        })
    }
}

impl Iterator for Decoder<'_> {
    type Item = Point;

    fn next(&mut self) -> Option<Point> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The bytes were written by `encode`: a point that does not decode
        // would be a bug, and ends the chunk rather than panicking.
        let point = self.point();
        if point.is_none() {
            self.left = 0;
        }
        point
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::sparse::SparseBuckets;

    /// Points of every shape a kind can take, at uneven times.
    fn points(kind: MetricKind, n: u64) -> Vec<Point> {
        let mut t = 1_700_000_000_000u64;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly even steps, sometimes a gap or a short one.
                t += match i % 11 {
                    3 => 1,
                    7 => 3_600_000 + x % 1000,
                    _ => 10_000,
                };
                let covered_ms = if i % 5 == 0 { x % 20_000 } else { 10_000 };
                let agg = match kind {
                    MetricKind::Counter => Aggregate::Counter {
                        increase: match i % 13 {
                            0 => CounterValue::Int(u64::MAX),
                            5 => CounterValue::Float((x % 1000) as f64 / 7.0),
                            _ => CounterValue::Int(x % 1000),
                        },
                        resets: (i % 17 == 0).into(),
                    },
                    MetricKind::Gauge if i % 3 == 0 => {
                        Aggregate::gauge([0.0, -0.0, f64::INFINITY, 42.0, x as f64][i as usize % 5])
                    }
                    MetricKind::Gauge => Aggregate::Gauge {
                        count: i + 2,
                        sum: (x % 977) as f64 * 1.5,
                        min: f64::NEG_INFINITY,
                        max: f64::MAX,
                        last: f64::from_bits(x & !(0x7ff << 52)),
                    },
                    MetricKind::Histogram => {
                        let mut b = SparseBuckets::default();
                        for k in 0..(x % 40) {
                            b.record((k * 37 % 101) as f64 * 1e-3);
                        }
                        b.zeros = i % 3;
                        Aggregate::Histogram {
                            count: b.count(),
                            sum: (x % 1000) as f64 * 1e-3,
                            buckets: (i % 4 != 0).then(|| {
                                if i % 2 == 0 {
                                    Dist::Open(b)
                                } else {
                                    let open = Dist::Open(b);
                                    let (z, p) = open.packed_parts();
                                    Dist::from_packed(z, &p)
                                }
                            }),
                        }
                    }
                };
                Point {
                    t_ms: t,
                    covered_ms,
                    agg,
                }
            })
            .collect()
    }

    /// Compares through the packed form, which is what the column returns.
    fn normal(p: &Point) -> Point {
        let mut p = p.clone();
        if let Aggregate::Histogram {
            buckets: Some(d), ..
        } = &mut p.agg
        {
            let (z, pairs) = d.packed_parts();
            *d = Dist::from_packed(z, &pairs);
        }
        p
    }

    #[test]
    fn every_kind_decodes_to_what_was_pushed() {
        for kind in [
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
        ] {
            let input = points(kind, 300);
            let mut column = Column::default();
            for p in &input {
                column.push(p);
            }
            assert_eq!(column.len(), 300);
            let back: Vec<Point> = column.iter_from(0).collect();
            let want: Vec<Point> = input.iter().map(normal).collect();
            // PartialEq on f64 fails for NaN, and none is stored: compare
            // the JSON, which also tells -0.0 from 0.0.
            assert_eq!(
                serde_json::to_string(&back).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "{kind:?}"
            );
            // From the middle: bisection over chunks, then a skip.
            let start = input[150].t_ms;
            assert_eq!(column.iter_from(start).next().unwrap().t_ms, start);
            assert_eq!(column.iter_from(start).count(), 150);
        }
    }

    #[test]
    fn counters_take_a_few_bytes_a_point() {
        let mut column = Column::default();
        for i in 0..6400u64 {
            column.push(&Point {
                t_ms: 1_700_000_000_000 + i * 10_000,
                covered_ms: 10_000,
                agg: Aggregate::Counter {
                    increase: CounterValue::Int(i % 300),
                    resets: 0,
                },
            });
        }
        let per_point = column.heap_bytes() as f64 / 6400.0;
        assert!(per_point < 6.0, "{per_point} bytes a point");
    }

    #[test]
    fn expiry_drops_whole_chunks_and_hides_the_rest() {
        let input = points(MetricKind::Counter, 400);
        let mut column = Column::default();
        for p in &input {
            column.push(p);
        }
        let before = column.heap_bytes();
        // The first chunk goes, half of the second is hidden.
        let cut = CHUNK as usize * 3 / 2;
        column.expire_before(input[cut].t_ms);
        assert_eq!(column.len(), 400 - cut);
        assert_eq!(column.first_t(), Some(input[cut].t_ms));
        assert_eq!(column.iter_from(0).count(), 400 - cut);
        assert!(column.heap_bytes() < before);
        // An older floor changes nothing.
        column.expire_before(input[10].t_ms);
        assert_eq!(column.len(), 400 - cut);
        column.expire_before(u64::MAX);
        assert!(column.is_empty());
        assert_eq!(column.len(), 0);
        assert_eq!(column.first_t(), None);
        // It keeps taking points after everything expired.
        column.push(&Point {
            t_ms: u64::MAX,
            covered_ms: 1,
            agg: Aggregate::Counter {
                increase: CounterValue::Int(1),
                resets: 0,
            },
        });
        assert_eq!(column.len(), 1);
    }

    /// Cutting a column short keeps exactly the older points, at a chunk
    /// boundary or inside a chunk, and it takes newer points again.
    #[test]
    fn truncation_keeps_the_points_before_the_cut() {
        let input = points(MetricKind::Histogram, 300);
        for cut in [0, 1, 127, 128, 129, 200, 299, 300] {
            let mut column = Column::default();
            for p in &input {
                column.push(p);
            }
            let t = input.get(cut).map_or(u64::MAX, |p| p.t_ms);
            column.truncate_from(t);
            let kept: Vec<Point> = column.iter_from(0).collect();
            let want: Vec<Point> = input[..cut].iter().map(normal).collect();
            assert_eq!(
                kept.iter().map(normal).collect::<Vec<_>>(),
                want,
                "cut at {cut}"
            );
            assert_eq!(column.len(), cut);
            let newest = column.iter_from(0).last().map(|p| p.t_ms);
            assert_eq!(newest, cut.checked_sub(1).map(|i| input[i].t_ms));
            if let Some(p) = input.get(cut) {
                column.push(p);
                assert_eq!(column.len(), cut + 1);
                assert_eq!(column.iter_from(0).last().map(|p| p.t_ms), Some(p.t_ms));
            }
        }
    }

    /// Times are encoded as forward steps: a point not newer than the
    /// newest is refused rather than stored at a wrong time.
    #[test]
    fn a_point_not_newer_than_the_newest_is_dropped() {
        let input = points(MetricKind::Counter, 3);
        let mut column = Column::default();
        column.push(&input[1]);
        column.push(&input[0]);
        column.push(&input[1]);
        column.push(&input[2]);
        let times: Vec<u64> = column.iter_from(0).map(|p| p.t_ms).collect();
        assert_eq!(times, [input[1].t_ms, input[2].t_ms]);
    }

    #[test]
    fn a_point_of_another_kind_is_dropped() {
        let mut column = Column::default();
        let mut counter = points(MetricKind::Counter, 1).remove(0);
        column.push(&counter);
        let mut gauge = points(MetricKind::Gauge, 1).remove(0);
        gauge.t_ms = counter.t_ms + 1;
        column.push(&gauge);
        counter.t_ms += 2;
        column.push(&counter);
        assert_eq!(column.len(), 2);
        assert!(column
            .iter_from(0)
            .all(|p| p.agg.kind() == MetricKind::Counter));
    }

    #[test]
    fn floats_round_trip_through_xor() {
        let mut out = Vec::new();
        let values = [
            0.0,
            -0.0,
            1.0,
            1.0,
            f64::NAN,
            f64::INFINITY,
            3.25e-300,
            -7.0,
        ];
        let mut prev = 0;
        for v in values {
            put_float(&mut out, &mut prev, v.to_bits());
        }
        let (mut at, mut prev) = (0, 0);
        for v in values {
            assert_eq!(get_float(&out, &mut at, &mut prev), Some(v.to_bits()));
        }
        assert_eq!(at, out.len());
        // A corrupt shift is refused, not a panic.
        assert_eq!(get_float(&[65], &mut 0, &mut 0), None);
    }
}
