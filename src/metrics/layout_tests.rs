//! The layout checked against its definition with exact integer arithmetic,
//! at every bucket edge of the trackable range and one ULP either side, and
//! against Prometheus' own bounds table for schema 6.

use std::collections::HashMap;

use super::*;

/// A non-negative big integer, little-endian 64-bit limbs.
#[derive(Clone, PartialEq)]
struct Big(Vec<u64>);

impl Big {
    fn from(v: u64) -> Self {
        Big(vec![v])
    }

    fn mul(&self, other: &Big) -> Big {
        let mut out = vec![0u64; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u128::from(a) * u128::from(b) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            let mut at = i + other.0.len();
            while carry > 0 {
                let t = u128::from(out[at]) + carry;
                out[at] = t as u64;
                carry = t >> 64;
                at += 1;
            }
        }
        while out.len() > 1 && out.last() == Some(&0) {
            out.pop();
        }
        Big(out)
    }

    /// ⌊log2⌋ (the value is non-zero).
    fn log2(&self) -> u64 {
        let top = *self.0.last().unwrap();
        (self.0.len() as u64 - 1) * 64 + 63 - u64::from(top.leading_zeros())
    }

    fn is_power_of_two(&self) -> bool {
        self.0.iter().map(|l| l.count_ones()).sum::<u32>() == 1
    }

    fn pow64(&self) -> Big {
        let mut x = self.clone();
        for _ in 0..6 {
            x = x.mul(&x);
        }
        x
    }
}

/// How many edges 2^(k/64), k in 0..64, lie strictly below 1 + m/2⁵²,
/// decided exactly: with x = 2⁵² + m, x > 2^(52 + k/64) ⟺ x⁶⁴ > 2^(3328 + k).
fn edges_below(m: u64) -> i32 {
    let p = Big::from((1 << 52) + m).pow64();
    let l = p.log2() as i64 - 3328; // x⁶⁴ ≥ 2^(3328 + l), < 2^(3328 + l + 1)
    let strictly = i64::from(!p.is_power_of_two());
    (l + strictly).clamp(0, 64) as i32
}

/// The scale-6 index of a positive normal double by the definition:
/// ⌈64 · log2 v⌉, from the exact edge count of its mantissa.
fn exact_index(bits: u64, cache: &mut HashMap<u64, i32>) -> i32 {
    let m = bits & MANTISSA;
    let c = *cache.entry(m).or_insert_with(|| edges_below(m));
    ((bits >> 52) as i32 - 1023) * 64 + c
}

#[test]
fn the_edge_table_is_exact() {
    // floor(2^(53 + k/64)) = X ⟺ X⁶⁴ ≤ 2^(3392 + k) < (X + 1)⁶⁴.
    for (k, &f) in EDGES_53.iter().enumerate() {
        let x = Big::from((1 << 53) + f);
        let n = 3392 + k as u64;
        let low = x.pow64();
        assert!(
            low.log2() < n || (low.log2() == n && low.is_power_of_two()),
            "entry {k} too large"
        );
        let high = Big::from((1 << 53) + f + 1).pow64();
        assert!(high.log2() >= n, "entry {k} too small");
    }
}

#[test]
fn the_range_table_needs_one_compare() {
    // Each range of the top 7 mantissa bits holds at most one threshold.
    for r in 0..128u64 {
        let (start, end) = (r << 45, (r + 1) << 45);
        let inside = THRESHOLDS
            .iter()
            .filter(|t| (start..end).contains(*t))
            .count();
        assert!(inside <= 1, "range {r} holds {inside} thresholds");
    }
}

#[test]
fn every_edge_and_its_neighbours_get_the_defined_index() {
    let mut cache = HashMap::new();
    let mut checked = 0;
    for i in MIN_INDEX..=MAX_INDEX {
        let edge = upper_bound(i, SCALE);
        let bits = edge.to_bits();
        for b in [bits - 1, bits, bits + 1] {
            let expected = exact_index(b, &mut cache);
            let v = f64::from_bits(b);
            if (MIN_TRACKABLE..=MAX_TRACKABLE).contains(&v) {
                assert_eq!(index_of(v), Some(expected), "{v:e} (edge of {i})");
                assert_eq!(position_of_bits(b) as i32 + MIN_INDEX, expected, "{v:e}");
                checked += 1;
            } else {
                // Clamped to the range.
                let clamped = if v < MIN_TRACKABLE {
                    MIN_INDEX
                } else {
                    MAX_INDEX
                };
                assert_eq!(index_of(v), Some(clamped), "{v:e}");
            }
        }
        // The nearest double to an irrational edge is within half an ULP:
        // it falls in bucket i when it rounded down, in i + 1 when up.
        let at = index_of(edge).unwrap_or(i);
        assert!(at == i || at == i + 1 || !(MIN_TRACKABLE..=MAX_TRACKABLE).contains(&edge));
    }
    assert!(checked >= 3 * (MAX_INDEX - MIN_INDEX) as usize);
    // Powers of two are edges exactly: their own bucket's upper bound.
    for e in -30..=50 {
        let v = 2f64.powi(e);
        assert_eq!(index_of(v), Some(e * 64));
        assert_eq!(upper_bound(e * 64, SCALE), v);
        assert_eq!(
            index_of(f64::from_bits(v.to_bits() + 1)),
            Some(e * 64 + 1).map(|i| i.min(MAX_INDEX))
        );
    }
}

#[test]
fn random_values_across_the_range_match_the_definition() {
    let mut cache = HashMap::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bits = MIN_BITS + x % (MAX_BITS - MIN_BITS);
        let v = f64::from_bits(bits);
        let i = index_of(v).unwrap();
        assert_eq!(i, exact_index(bits, &mut cache), "{v:e}");
        assert!(
            lower_bound(i, SCALE) <= v && v <= upper_bound(i, SCALE),
            "{v:e}"
        );
    }
}

/// Prometheus' `exponentialBounds` for schema 6 (model/histogram/generic.go):
/// the upper bound of bucket `idx` is `BOUNDS[idx & 63] · 2^((idx >> 6) + 1)`.
const PROMETHEUS_SCHEMA_6: [f64; 64] = [
    0.5,
    0.5054446430258502,
    0.5109485743270583,
    0.5165124395106142,
    0.5221368912137069,
    0.5278225891802786,
    0.5335702003384117,
    0.5393803988785598,
    0.5452538663326288,
    0.5511912916539204,
    0.5571933712979462,
    0.5632608093041209,
    0.5693943173783458,
    0.5755946149764913,
    0.5818624293887887,
    0.5881984958251406,
    0.5946035575013605,
    0.6010783657263515,
    0.6076236799902344,
    0.6142402680534349,
    0.620928906036742,
    0.6276903785123455,
    0.6345254785958666,
    0.6414350080393891,
    0.6484197773255048,
    0.6554806057623822,
    0.6626183215798706,
    0.6698337620266515,
    0.6771277734684463,
    0.6845012114872953,
    0.6919549409819159,
    0.6994898362691555,
    0.7071067811865475,
    0.7148066691959849,
    0.7225904034885232,
    0.7304588970903234,
    0.7384130729697496,
    0.7464538641456323,
    0.7545822137967112,
    0.762799075372269,
    0.7711054127039704,
    0.7795022001189185,
    0.7879904225539431,
    0.7965710756711334,
    0.805245165974627,
    0.8140137109286738,
    0.8228777390769823,
    0.8318382901633681,
    0.8408964152537144,
    0.8500531768592616,
    0.8593096490612387,
    0.8686669176368529,
    0.8781260801866495,
    0.8876882462632604,
    0.8973545375015533,
    0.9071260877501991,
    0.9170040432046711,
    0.9269895625416926,
    0.9370838170551498,
    0.9472879907934827,
    0.9576032806985735,
    0.9680308967461471,
    0.9785720620876999,
    0.9892280131939752,
];

/// Prometheus' table agrees with the exact edges to within 3 ULP; its
/// entries are not all correctly rounded (37 of the 64 are 1 to 3 ULP
/// below the nearest `f64`, 2^(-1/2) among them). So a value within 3 ULP
/// of an edge may be counted one bucket apart by a client that compares
/// with that table; here the exact definition decides.
#[test]
fn bounds_agree_with_prometheus_schema_6_table() {
    for i in MIN_INDEX..=MAX_INDEX {
        let frac = PROMETHEUS_SCHEMA_6[(i & 63) as usize];
        let prom = frac * 2f64.powi((i >> 6) + 1);
        let ours = upper_bound(i, SCALE);
        let ulps = ours.to_bits() - prom.to_bits();
        assert!(ulps <= 3, "bucket {i}: {ours:e} vs {prom:e}");
        // Powers of two (k = 0) are exact in both.
        if i & 63 == 0 {
            assert_eq!(ulps, 0, "bucket {i}");
        }
        // Prometheus' bound is in bucket i, or just past its edge in i + 1.
        let at = index_of(prom).unwrap();
        assert!(at == i || at == i + 1, "bucket {i}: {at}");
    }
    let off = PROMETHEUS_SCHEMA_6
        .iter()
        .enumerate()
        .filter(|(k, b)| upper_bound(*k as i32 - 64, SCALE) != **b)
        .count();
    assert_eq!(off, 37);
    // Powers of two agree exactly, as does the end of the f64 range.
    assert_eq!(upper_bound(64 * 1023, SCALE), 2f64.powi(1023));
    assert_eq!(upper_bound(64 * 1024, SCALE), f64::INFINITY);
}

#[test]
fn the_readers_midpoints_are_the_midpoints() {
    for p in 0..POSITIONS {
        assert_eq!(
            position_midpoint(p).to_bits(),
            midpoint(index_at(p)).to_bits(),
            "{p}"
        );
    }
}

#[test]
fn midpoints_are_within_the_stated_error() {
    let bound = 2f64.powf(1.0 / 128.0) - 1.0;
    assert!(bound < 0.0055);
    let mut worst = 0f64;
    for i in MIN_INDEX..=MAX_INDEX {
        let (lo, hi, mid) = (lower_bound(i, SCALE), upper_bound(i, SCALE), midpoint(i));
        assert!(lo < mid && mid < hi, "{i}");
        // Every value v in (lo, hi] is within the bound of mid, relative to v.
        let err = ((mid - lo) / lo).max((hi - mid) / hi);
        worst = worst.max(err);
    }
    assert!(worst <= bound * (1.0 + 1e-9), "{worst}");
    assert!(worst > bound * 0.99, "{worst}");
}

#[test]
fn downscaled_buckets_contain_their_parts() {
    for k in 0..=16u32 {
        let scale = SCALE - k as i8;
        for i in (MIN_INDEX..=MAX_INDEX).step_by(1 + k as usize * 3) {
            let j = downscale_index(i, k);
            assert!(lower_bound(j, scale) <= lower_bound(i, SCALE), "{i} {k}");
            assert!(upper_bound(i, SCALE) <= upper_bound(j, scale), "{i} {k}");
            // Downscaling in steps equals downscaling at once.
            if k > 0 {
                assert_eq!(downscale_index(downscale_index(i, 1), k - 1), j);
            }
        }
    }
    assert_eq!(upper_bound(0, MIN_SCALE), 1.0);
    assert_eq!(upper_bound(1, MIN_SCALE), f64::INFINITY);
    assert!(upper_bound(0, 7).is_nan());
    assert!(upper_bound(0, -11).is_nan());
}

#[test]
fn quantiles_over_buckets_follow_nearest_rank() {
    let pairs: Vec<(i32, u64)> = (1..=100)
        .map(|v| (index_of(f64::from(v)).unwrap(), 1))
        .collect();
    for (q, v) in [
        (0.5, 50.0),
        (0.9, 90.0),
        (0.99, 99.0),
        (1.0, 100.0),
        (0.001, 1.0),
    ] {
        let got = quantile(0, pairs.iter().copied(), SCALE, q).unwrap();
        assert!((got - v).abs() / v <= 0.0055, "{q}: {got}");
    }
    assert_eq!(quantile(0, pairs.iter().copied(), SCALE, 0.0), None);
    assert_eq!(quantile(0, pairs.iter().copied(), SCALE, f64::NAN), None);
    assert_eq!(nearest_rank(f64::NAN, 3), 3);
    assert_eq!(nearest_rank(0.5, 0), 1);
}

#[test]
fn bad_values_have_no_bucket_and_extremes_clamp() {
    for v in [
        f64::NAN,
        -1.0,
        -0.0,
        0.0,
        f64::NEG_INFINITY,
        -f64::MIN_POSITIVE,
    ] {
        assert_eq!(index_of(v), None, "{v}");
    }
    for v in [f64::MIN_POSITIVE, 5e-324, 1e-300, MIN_TRACKABLE] {
        assert_eq!(index_of(v), Some(MIN_INDEX), "{v}");
    }
    for v in [f64::MAX, f64::INFINITY, 1e300, MAX_TRACKABLE] {
        assert_eq!(index_of(v), Some(MAX_INDEX), "{v}");
    }
    assert_eq!(position(MIN_INDEX), Some(0));
    assert_eq!(position(MAX_INDEX), Some(POSITIONS - 1));
    assert_eq!(position(MAX_INDEX + 1), None);
    assert_eq!(position(i32::MIN), None);
    assert_eq!(index_at(POSITIONS - 1), MAX_INDEX);
}
