//! The byte encodings of the history's compact levels and level points:
//! LEB128 varints, zigzag for signed steps, and floats as the XOR with the
//! previous value. Below both `column` and `point`, so neither imports the
//! other's helpers.

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

pub(super) fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub(super) fn get_signed(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let z = get_varint(bytes, at)?;
    Some((z >> 1) as i64 ^ -((z & 1) as i64))
}

/// An `f64`'s bits as the XOR with `prev`: its trailing-zero count in one
/// byte (64 for an unchanged value), then the bits above them.
pub(super) fn put_float(out: &mut Vec<u8>, prev: &mut u64, bits: u64) {
    let x = bits ^ *prev;
    *prev = bits;
    let zeros = x.trailing_zeros();
    out.push(zeros as u8);
    if zeros < 64 {
        put_varint(out, x >> zeros);
    }
}

pub(super) fn get_float(bytes: &[u8], at: &mut usize, prev: &mut u64) -> Option<u64> {
    let zeros = u32::from(*bytes.get(*at)?);
    *at += 1;
    let x = match zeros {
        64 => 0,
        0..=63 => get_varint(bytes, at)?.checked_shl(zeros)?,
        _ => return None,
    };
    *prev ^= x;
    Some(*prev)
}
