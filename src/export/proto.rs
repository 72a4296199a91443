//! A protobuf wire-format writer: varints, zigzag, tags, fixed-width
//! numbers, strings, packed repeated fields and nested messages, appended
//! to one `Vec<u8>`.
//!
//! There are no message structs: an encoder walks its own data (a
//! [`Snapshot`](crate::Snapshot), a delivery backlog) and writes fields in
//! order. A nested message is opened with [`ProtoWriter::begin`], which
//! reserves one byte for its length, and closed with [`ProtoWriter::end`],
//! which patches that byte or, for a message of 128 bytes or more, moves
//! the message right to make room for a longer varint. Most nested
//! messages of the formats vitals writes (labels, samples, buckets) are
//! short, so the move is rare and small.
//!
//! One writer serves every protobuf output: the Prometheus protobuf
//! scrape, remote write and OTLP. Field numbers
//! live with each format's encoder, beside the `.proto` they come from.

/// Protobuf wire types (the low three bits of a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WireType {
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    #[allow(dead_code)] // fixed32 fields (OTLP's flags) come with OTLP.
    Fixed32 = 5,
}

/// A nested message opened by [`ProtoWriter::begin`]: where its
/// reserved length bytes are, and how many.
#[derive(Debug)]
#[must_use = "a nested message must be closed with ProtoWriter::end"]
pub(crate) struct Nested {
    length_at: usize,
    width: usize,
}

/// Appends protobuf fields to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct ProtoWriter {
    buf: Vec<u8>,
}

#[allow(dead_code)] // The full writer; each format uses part of it.
impl ProtoWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A writer appending to `buf` (its contents are kept).
    pub(crate) fn from_vec(buf: Vec<u8>) -> Self {
        ProtoWriter { buf }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Empties the buffer, keeping its capacity.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Drops everything written after byte `len` (to undo a message that
    /// turned out not to be wanted).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Appends bytes that are already encoded fields.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A base-128 varint, least significant group first.
    #[inline(always)]
    pub(crate) fn varint(&mut self, v: u64) {
        // Hot path: most varints written (tags, short lengths, small
        // counts) are one byte; that case is inlined everywhere.
        if v < 0x80 {
            self.buf.push(v as u8);
        } else {
            self.long_varint(v);
        }
    }

    fn long_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// `n` more bytes, zeroed, to fill in place: a packed field whose
    /// length is known (a zero byte is the varint 0).
    pub(crate) fn zeroed(&mut self, n: usize) -> &mut [u8] {
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        &mut self.buf[at..]
    }

    pub(crate) fn tag(&mut self, field: u32, wire: WireType) {
        self.varint((u64::from(field) << 3) | wire as u64);
    }

    /// `uint64`, `uint32`, `enum` (non-negative) fields.
    pub(crate) fn uint64(&mut self, field: u32, v: u64) {
        self.tag(field, WireType::Varint);
        self.varint(v);
    }

    /// `int64` and `int32` fields: two's complement, so a negative value
    /// takes ten bytes (that is the format's rule, not a choice).
    pub(crate) fn int64(&mut self, field: u32, v: i64) {
        self.uint64(field, v as u64);
    }

    /// `sint64` and `sint32` fields: zigzag, so small negatives stay short.
    pub(crate) fn sint64(&mut self, field: u32, v: i64) {
        self.uint64(field, zigzag(v));
    }

    pub(crate) fn bool(&mut self, field: u32, v: bool) {
        self.uint64(field, u64::from(v));
    }

    /// `double` fields (little-endian IEEE 754, every bit kept: NaN
    /// payloads such as Prometheus' stale marker survive).
    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.fixed64(field, v.to_bits());
    }

    /// `fixed64` fields.
    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, WireType::Fixed64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `fixed32` fields.
    pub(crate) fn fixed32(&mut self, field: u32, v: u32) {
        self.tag(field, WireType::Fixed32);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `string` fields.
    pub(crate) fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// `bytes` fields (and a nested message already encoded).
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, WireType::LengthDelimited);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Opens a nested message (or a packed field) as field `field`; write
    /// its fields, then [`end`](Self::end) it.
    pub(crate) fn begin(&mut self, field: u32) -> Nested {
        self.begin_sized(field, 0)
    }

    /// [`begin`](Self::begin) for a message expected to be about
    /// `estimate` bytes long: room is left for the length prefix of that
    /// size, so that a long message need not be moved when it is closed
    /// (it is moved, a little, only when the estimate was off by enough
    /// to change the prefix's width). The output is the same either way.
    pub(crate) fn begin_sized(&mut self, field: u32, estimate: usize) -> Nested {
        self.tag(field, WireType::LengthDelimited);
        self.reserve_length(estimate)
    }

    /// Opens a message that is framed by its length alone, without a tag
    /// (the stream of messages of an `encoding=delimited` body); close it
    /// with [`end`](Self::end).
    pub(crate) fn begin_untagged(&mut self) -> Nested {
        self.reserve_length(0)
    }

    fn reserve_length(&mut self, estimate: usize) -> Nested {
        let length_at = self.buf.len();
        let width = varint_len(estimate as u64);
        // Hot path: nearly every nested message is short (one byte).
        if width == 1 {
            self.buf.push(0);
        } else {
            self.buf.extend_from_slice(&[0; 10][..width]);
        }
        Nested { length_at, width }
    }

    /// Closes a nested message: writes its length in front of it, moving
    /// the message when the length takes more (or fewer) bytes than were
    /// left for it.
    pub(crate) fn end(&mut self, nested: Nested) {
        let start = nested.length_at + nested.width;
        let end = self.buf.len();
        let len = (end - start) as u64;
        if len < 0x80 && nested.width == 1 {
            self.buf[nested.length_at] = len as u8;
            return;
        }
        let mut prefix = [0u8; 10];
        let n = encode_varint(len, &mut prefix);
        if n > nested.width {
            let more = n - nested.width;
            self.buf.resize(end + more, 0);
            self.buf.copy_within(start..end, start + more);
        } else if n < nested.width {
            let fewer = nested.width - n;
            self.buf.copy_within(start..end, start - fewer);
            self.buf.truncate(end - fewer);
        }
        self.buf[nested.length_at..nested.length_at + n].copy_from_slice(&prefix[..n]);
    }

    /// A packed `repeated double` field (nothing when empty, as the format
    /// wants for an empty repeated field).
    pub(crate) fn packed_doubles(&mut self, field: u32, values: &[f64]) {
        if values.is_empty() {
            return;
        }
        self.tag(field, WireType::LengthDelimited);
        self.varint(values.len() as u64 * 8);
        for v in values {
            self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }

    /// A packed `repeated fixed64` field (nothing when empty).
    pub(crate) fn packed_fixed64(&mut self, field: u32, values: &[u64]) {
        if values.is_empty() {
            return;
        }
        self.tag(field, WireType::LengthDelimited);
        self.varint(values.len() as u64 * 8);
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A packed `repeated uint64` field (nothing when empty). The values
    /// are gone over twice, to size the field first: its length prefix is
    /// written once, in front, and nothing is moved.
    pub(crate) fn packed_uint64<I>(&mut self, field: u32, values: I)
    where
        I: IntoIterator<Item = u64>,
        I::IntoIter: Clone,
    {
        let values = values.into_iter();
        let len: usize = values.clone().map(varint_len).sum();
        if len == 0 {
            return;
        }
        self.tag(field, WireType::LengthDelimited);
        self.varint(len as u64);
        for v in values {
            self.varint(v);
        }
    }

    /// A packed `repeated sint64` field (nothing when empty).
    pub(crate) fn packed_sint64<I>(&mut self, field: u32, values: I)
    where
        I: IntoIterator<Item = i64>,
        I::IntoIter: Clone,
    {
        self.packed_uint64(field, values.into_iter().map(zigzag));
    }
}

/// Zigzag encoding: 0, -1, 1, -2, ... → 0, 1, 2, 3, ...
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes `v` as a varint at the start of `out`; returns its length (1
/// to 10). `out` must have room (10 bytes always do).
pub(crate) fn encode_varint(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

/// Bytes a varint of `v` takes.
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl FnOnce(&mut ProtoWriter)) -> Vec<u8> {
        let mut w = ProtoWriter::new();
        f(&mut w);
        w.into_vec()
    }

    // Golden bytes from the protobuf encoding guide (protobuf.dev,
    // "Encoding"): `08 96 01` is field 1 = 150, and so on.
    #[test]
    fn golden_bytes_from_the_encoding_guide() {
        assert_eq!(bytes(|w| w.uint64(1, 150)), [0x08, 0x96, 0x01]);
        assert_eq!(
            bytes(|w| w.string(2, "testing")),
            [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
        let nested = bytes(|w| {
            let m = w.begin(3);
            w.uint64(1, 150);
            w.end(m);
        });
        assert_eq!(nested, [0x1a, 0x03, 0x08, 0x96, 0x01]);
        assert_eq!(
            bytes(|w| w.packed_uint64(4, [3, 270, 86942])),
            [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]
        );
    }

    #[test]
    fn varints_at_every_edge() {
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, want) in cases {
            assert_eq!(bytes(|w| w.varint(v)), want, "{v}");
            assert_eq!(varint_len(v), want.len(), "{v}");
        }
        // int64 -1 is ten bytes (two's complement), sint64 -1 is one.
        assert_eq!(bytes(|w| w.int64(1, -1)).len(), 11);
        assert_eq!(bytes(|w| w.sint64(1, -1)), [0x08, 0x01]);
    }

    #[test]
    fn zigzag_matches_the_specification() {
        let cases = [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (2_147_483_647, 4_294_967_294),
            (-2_147_483_648, 4_294_967_295),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ];
        for (v, want) in cases {
            assert_eq!(zigzag(v), want, "{v}");
        }
    }

    #[test]
    fn fixed_width_numbers_are_little_endian_with_every_bit() {
        assert_eq!(
            bytes(|w| w.double(1, 1.0)),
            [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
        );
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let out = bytes(|w| w.double(2, stale));
        assert_eq!(out[0], 0x11);
        assert_eq!(
            u64::from_le_bytes(out[1..].try_into().unwrap()),
            0x7ff0_0000_0000_0002
        );
        assert_eq!(bytes(|w| w.fixed32(1, 1)), [0x0d, 1, 0, 0, 0]);
        assert_eq!(
            bytes(|w| w.packed_doubles(5, &[1.0, -2.0])),
            [0x2a, 16, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0]
        );
    }

    #[test]
    fn empty_packed_fields_write_nothing() {
        assert!(bytes(|w| w.packed_doubles(1, &[])).is_empty());
        assert!(bytes(|w| w.packed_sint64(1, [])).is_empty());
        assert!(bytes(|w| w.packed_fixed64(1, &[])).is_empty());
        assert_eq!(
            bytes(|w| w.packed_fixed64(6, &[1, 2])),
            [0x32, 16, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes(|w| w.packed_sint64(1, [-1, 1])), [0x0a, 2, 1, 2]);
    }

    #[test]
    fn long_nested_messages_get_a_longer_length_prefix() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let text = "x".repeat(len);
            // Expected: the same message encoded with lengths known upfront.
            let mut inner = ProtoWriter::new();
            inner.bytes(3, text.as_bytes());
            let mut want = ProtoWriter::new();
            want.uint64(1, 7);
            want.bytes(2, inner.as_bytes());
            want.uint64(4, 9);
            let want = want.into_vec();
            // Whatever the size guessed, right or wrong either way.
            for estimate in [0usize, 1, 127, 128, 300, 16_384, 1 << 21, 1 << 40] {
                let out = bytes(|w| {
                    w.uint64(1, 7);
                    let outer = w.begin_sized(2, estimate);
                    let inner = w.begin_sized(3, estimate / 2);
                    w.raw(text.as_bytes());
                    w.end(inner);
                    w.end(outer);
                    w.uint64(4, 9);
                });
                assert_eq!(out, want, "{len} {estimate}");
            }
        }
    }
}
