//! Redis's HyperLogLog, byte for byte: the "HYLL" string value with its
//! sparse and dense register encodings, MurmurHash64A element hashing,
//! 2^14 six-bit registers and Ertl's cardinality estimator.
//!
//! Invariants: every value this module produces is a value Redis 7 itself
//! would produce from the same operations (so `GET` of an HLL key can be
//! `SET` into real Redis and counts the same, and vice versa); a sparse
//! value never grows past [`SPARSE_MAX_BYTES`] (it is promoted to dense
//! instead, as Redis does with `hll-sparse-max-bytes` at its default); a
//! dense value is exactly [`DENSE_SIZE`] bytes. Malformed input is never
//! trusted: every walk of a sparse value checks its bounds and reports
//! [`HllError::Corrupt`] instead of reading outside the value.

/// Register index bits (Redis `HLL_P`).
pub const P: u32 = 14;
/// Hash bits left for the run of zeros (Redis `HLL_Q`).
pub const Q: u32 = 64 - P;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Header: magic (4), encoding (1), unused (3), cached cardinality (8, LE).
pub const HEADER_SIZE: usize = 16;
/// Size of a dense value.
pub const DENSE_SIZE: usize = HEADER_SIZE + (REGISTERS * BITS).div_ceil(8);
/// Redis's default `hll-sparse-max-bytes`.
pub const SPARSE_MAX_BYTES: usize = 3000;

const MAGIC: &[u8; 4] = b"HYLL";
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
const CACHE_INVALID_BIT: u8 = 0x80;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;

/// Why a value cannot be used as a HyperLogLog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not a HYLL value at all (bad magic, encoding or dense size).
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// A HYLL value whose sparse opcodes do not cover the registers.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

/// A HyperLogLog value being read or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    bytes: Vec<u8>,
}

impl Hll {
    /// An empty sparse HLL, as PFADD/PFMERGE create it: one XZERO opcode
    /// covering every register, cached cardinality 0 (valid).
    pub fn new() -> Hll {
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[4] = ENCODING_SPARSE;
        push_xzero(&mut bytes, REGISTERS);
        Hll { bytes }
    }

    /// Accepts a stored string value the way Redis's `isHLLObjectOrReply`
    /// does: magic, a known encoding, the exact dense size. Sparse opcodes
    /// are checked only when walked.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Hll, HllError> {
        if bytes.len() < HEADER_SIZE || &bytes[..4] != MAGIC {
            return Err(HllError::NotHll);
        }
        match bytes[4] {
            ENCODING_SPARSE => {}
            ENCODING_DENSE if bytes.len() == DENSE_SIZE => {}
            _ => return Err(HllError::NotHll),
        }
        Ok(Hll { bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn is_dense(&self) -> bool {
        self.bytes[4] == ENCODING_DENSE
    }

    /// The cached cardinality when it is valid.
    pub fn cached_cardinality(&self) -> Option<u64> {
        if self.bytes[15] & CACHE_INVALID_BIT != 0 {
            return None;
        }
        let mut card = [0u8; 8];
        card.copy_from_slice(&self.bytes[8..16]);
        Some(u64::from_le_bytes(card))
    }

    pub fn set_cached_cardinality(&mut self, card: u64) {
        self.bytes[8..16].copy_from_slice(&card.to_le_bytes());
    }

    pub fn invalidate_cache(&mut self) {
        self.bytes[15] |= CACHE_INVALID_BIT;
    }

    /// Adds one element; true when a register grew. Does not touch the
    /// cache (PFADD invalidates it once for the whole command).
    pub fn add(&mut self, element: &[u8]) -> Result<bool, HllError> {
        let (index, count) = pattern_len(element);
        self.set_register(index, count)
    }

    /// Raises register `index` to `count` if it is lower; true if it was.
    pub fn set_register(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        if self.is_dense() {
            return Ok(dense_set(&mut self.bytes[HEADER_SIZE..], index, count));
        }
        self.sparse_set(index, count)
    }

    /// Raises each of `max`'s registers to its value in this HLL
    /// (Redis `hllMerge`).
    pub fn merge_into(&self, max: &mut [u8; REGISTERS]) -> Result<(), HllError> {
        let registers = &self.bytes[HEADER_SIZE..];
        if self.is_dense() {
            for (i, slot) in max.iter_mut().enumerate() {
                *slot = (*slot).max(dense_get(registers, i));
            }
            return Ok(());
        }
        let mut index = 0usize;
        for op in SparseOps::new(registers) {
            match op {
                Op::Zero(run) | Op::XZero(run) => index += run,
                Op::Val(value, run) => {
                    if index + run > REGISTERS {
                        break;
                    }
                    for slot in &mut max[index..index + run] {
                        *slot = (*slot).max(value);
                    }
                    index += run;
                }
            }
        }
        if index == REGISTERS {
            Ok(())
        } else {
            Err(HllError::Corrupt)
        }
    }

    /// The estimated cardinality (Redis `hllCount`), ignoring the cache.
    pub fn count(&self) -> Result<u64, HllError> {
        let mut histogram = [0u32; 64];
        let registers = &self.bytes[HEADER_SIZE..];
        if self.is_dense() {
            for i in 0..REGISTERS {
                histogram[usize::from(dense_get(registers, i))] += 1;
            }
        } else {
            let mut index = 0usize;
            for op in SparseOps::new(registers) {
                match op {
                    Op::Zero(run) | Op::XZero(run) => {
                        // Past the last register the value is corrupt
                        // whatever follows (the index only grows).
                        if index + run > REGISTERS {
                            return Err(HllError::Corrupt);
                        }
                        histogram[0] += run as u32;
                        index += run;
                    }
                    Op::Val(value, run) => {
                        if index + run > REGISTERS {
                            break;
                        }
                        histogram[usize::from(value)] += run as u32;
                        index += run;
                    }
                }
            }
            if index != REGISTERS {
                return Err(HllError::Corrupt);
            }
        }
        Ok(estimate(&histogram))
    }

    /// Converts a sparse value to dense, keeping the header's magic and
    /// cached cardinality (Redis `hllSparseToDense`).
    pub fn to_dense(&mut self) -> Result<(), HllError> {
        if self.is_dense() {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_SIZE];
        dense[..HEADER_SIZE].copy_from_slice(&self.bytes[..HEADER_SIZE]);
        dense[4] = ENCODING_DENSE;
        let mut index = 0usize;
        for op in SparseOps::new(&self.bytes[HEADER_SIZE..]) {
            match op {
                Op::Zero(run) | Op::XZero(run) => index += run,
                Op::Val(value, run) => {
                    if index + run > REGISTERS {
                        break;
                    }
                    for i in index..index + run {
                        dense_write(&mut dense[HEADER_SIZE..], i, value);
                    }
                    index += run;
                }
            }
        }
        if index != REGISTERS {
            return Err(HllError::Corrupt);
        }
        self.bytes = dense;
        Ok(())
    }

    /// Redis `hllSparseSet`: splits the opcode covering `index`, merges
    /// equal neighbouring VAL opcodes, promotes to dense when the value is
    /// too large for a VAL opcode or the value would outgrow the limit.
    fn sparse_set(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        if count > SPARSE_VAL_MAX_VALUE {
            return self.promote_and_set(index, count);
        }
        let bytes = &self.bytes;
        let end = bytes.len();
        let mut p = HEADER_SIZE;
        let mut first = 0usize;
        let mut prev: Option<usize> = None;
        let mut span = 0usize;
        let mut found = None;
        while p < end {
            let (op, oplen) = decode_op(bytes, p).ok_or(HllError::Corrupt)?;
            span = op.run();
            if index < first + span {
                found = Some(op);
                break;
            }
            prev = Some(p);
            p += oplen;
            first += span;
        }
        let Some(op) = found else {
            return Err(HllError::Corrupt);
        };
        if matches!(op, Op::XZero(_)) && p + 2 > end {
            // A cut XZERO: Redis would write a cut opcode sequence; refuse.
            return Err(HllError::Corrupt);
        }
        if span == 0 {
            return Err(HllError::Corrupt);
        }
        match op {
            Op::Val(old, _) if old >= count => return Ok(false),
            Op::Val(_, 1) | Op::Zero(1) => {
                self.bytes[p] = val_opcode(count, 1);
                self.merge_adjacent_vals(prev);
                self.invalidate_cache();
                return Ok(true);
            }
            _ => {}
        }
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        match op {
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_opcode(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
            Op::Val(current, _) => {
                if index != first {
                    seq.push(val_opcode(current, index - first));
                }
                seq.push(val_opcode(count, 1));
                if index != last {
                    seq.push(val_opcode(current, last - index));
                }
            }
        }
        let old_len = if matches!(op, Op::XZero(_)) { 2 } else { 1 };
        if seq.len() > old_len && self.bytes.len() + seq.len() - old_len > SPARSE_MAX_BYTES {
            return self.promote_and_set(index, count);
        }
        self.bytes.splice(p..p + old_len, seq);
        self.merge_adjacent_vals(prev);
        self.invalidate_cache();
        Ok(true)
    }

    fn promote_and_set(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        self.to_dense()?;
        Ok(dense_set(&mut self.bytes[HEADER_SIZE..], index, count))
    }

    /// Redis's step 4 of `hllSparseSet`: from the opcode before the
    /// updated one, scan up to five opcodes and merge equal VAL pairs.
    fn merge_adjacent_vals(&mut self, prev: Option<usize>) {
        let mut p = prev.unwrap_or(HEADER_SIZE);
        let mut budget = 5;
        while p < self.bytes.len() && budget > 0 {
            budget -= 1;
            let byte = self.bytes[p];
            if byte & 0xc0 == 0x40 {
                p += 2;
                continue;
            }
            if byte & 0x80 == 0 {
                p += 1;
                continue;
            }
            if let Some(&next) = self.bytes.get(p + 1)
                && next & 0x80 != 0
            {
                let (v1, l1) = val_fields(byte);
                let (v2, l2) = val_fields(next);
                if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                    self.bytes[p + 1] = val_opcode(v1, l1 + l2);
                    self.bytes.remove(p);
                    continue;
                }
            }
            p += 1;
        }
    }
}

impl Default for Hll {
    fn default() -> Self {
        Hll::new()
    }
}

/// The estimate for a register histogram (Ertl, arXiv:1702.01284, as in
/// Redis `hllCount`).
pub fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    let alpha_inf = 0.721_347_520_444_481_7_f64;
    (alpha_inf * m * m / z).round() as u64
}

/// The estimate of a raw register array (PFCOUNT over several keys).
pub fn estimate_registers(registers: &[u8; REGISTERS]) -> u64 {
    let mut histogram = [0u32; 64];
    for &r in registers {
        histogram[usize::from(r & 63)] += 1;
    }
    estimate(&histogram)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// Austin Appleby's MurmurHash64A, reading blocks little-endian (as Redis
/// does on every platform).
pub fn murmurhash64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element updates and the value it offers (Redis
/// `hllPatLen`): low 14 hash bits pick the register, the position of the
/// first set bit in the rest (capped by a sentinel bit) is the value.
pub fn pattern_len(element: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * BITS;
    let byte = bit / 8;
    let shift = bit % 8;
    let low = u16::from(registers[byte]);
    let high = u16::from(registers.get(byte + 1).copied().unwrap_or(0));
    (((low | (high << 8)) >> shift) as u8) & REGISTER_MAX
}

fn dense_set(registers: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(registers, index) {
        dense_write(registers, index, count);
        true
    } else {
        false
    }
}

fn dense_write(registers: &mut [u8], index: usize, value: u8) {
    let bit = index * BITS;
    let byte = bit / 8;
    let shift = bit % 8;
    let value = u16::from(value & REGISTER_MAX);
    let mask = u16::from(REGISTER_MAX) << shift;
    registers[byte] = (registers[byte] & !(mask as u8)) | ((value << shift) as u8);
    if let Some(next) = registers.get_mut(byte + 1) {
        *next = (*next & !((mask >> 8) as u8)) | (((value << shift) >> 8) as u8);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Run of zero registers (1..=64), one byte.
    Zero(usize),
    /// Run of zero registers (1..=16384), two bytes.
    XZero(usize),
    /// Run (1..=4) of registers holding a value (1..=32), one byte.
    Val(u8, usize),
}

impl Op {
    fn run(self) -> usize {
        match self {
            Op::Zero(run) | Op::XZero(run) | Op::Val(_, run) => run,
        }
    }
}

/// The opcode at `at` and its length; None past the end. An XZERO cut
/// after its first byte reads its missing byte as 0, as Redis does (it
/// reads the string's hidden terminator), so such values count the same.
fn decode_op(bytes: &[u8], at: usize) -> Option<(Op, usize)> {
    let byte = *bytes.get(at)?;
    if byte & 0x80 != 0 {
        let (value, run) = val_fields(byte);
        Some((Op::Val(value, run), 1))
    } else if byte & 0x40 != 0 {
        let low = bytes.get(at + 1).copied().unwrap_or(0);
        let run = ((usize::from(byte & 0x3f) << 8) | usize::from(low)) + 1;
        Some((Op::XZero(run), 2))
    } else {
        Some((Op::Zero(usize::from(byte & 0x3f) + 1), 1))
    }
}

struct SparseOps<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> SparseOps<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        SparseOps { bytes, at: 0 }
    }
}

impl Iterator for SparseOps<'_> {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        let (op, len) = decode_op(self.bytes, self.at)?;
        self.at += len;
        Some(op)
    }
}

fn val_fields(byte: u8) -> (u8, usize) {
    (((byte >> 2) & 0x1f) + 1, usize::from(byte & 0x3) + 1)
}

fn val_opcode(value: u8, run: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (run as u8 - 1)
}

fn push_xzero(out: &mut Vec<u8>, run: usize) {
    let encoded = run - 1;
    out.push(0x40 | (encoded >> 8) as u8);
    out.push((encoded & 0xff) as u8);
}

fn push_zeros(out: &mut Vec<u8>, run: usize) {
    if run > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, run);
    } else {
        out.push((run - 1) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registers(hll: &Hll) -> Box<[u8; REGISTERS]> {
        let mut max = Box::new([0u8; REGISTERS]);
        hll.merge_into(&mut max).unwrap();
        max
    }

    #[test]
    fn empty_hll_counts_zero_and_has_a_valid_cache() {
        let hll = Hll::new();
        assert_eq!(hll.as_bytes().len(), HEADER_SIZE + 2);
        assert_eq!(hll.cached_cardinality(), Some(0));
        assert_eq!(hll.count().unwrap(), 0);
    }

    #[test]
    fn estimate_is_within_two_percent_and_promotes_to_dense() {
        let mut hll = Hll::new();
        let mut promoted_at = None;
        for i in 0..50_000u32 {
            hll.add(format!("element-{i}").as_bytes()).unwrap();
            if promoted_at.is_none() && hll.is_dense() {
                promoted_at = Some(i);
            }
            if !hll.is_dense() {
                assert!(hll.as_bytes().len() <= SPARSE_MAX_BYTES);
            }
        }
        assert!(promoted_at.is_some());
        assert_eq!(hll.as_bytes().len(), DENSE_SIZE);
        let count = hll.count().unwrap() as f64;
        assert!((count - 50_000.0).abs() / 50_000.0 < 0.02, "{count}");
    }

    #[test]
    fn adding_an_element_twice_changes_nothing() {
        let mut hll = Hll::new();
        assert!(hll.add(b"a").unwrap());
        let before = hll.clone();
        assert!(!hll.add(b"a").unwrap());
        assert_eq!(hll, before);
    }

    #[test]
    fn dense_register_packing_round_trips_at_every_boundary() {
        let mut bytes = vec![0u8; DENSE_SIZE - HEADER_SIZE];
        for i in 0..REGISTERS {
            dense_write(&mut bytes, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&bytes, i), (i % 64) as u8);
        }
    }

    #[test]
    fn murmur_tail_and_block_paths_differ_by_input() {
        let a = murmurhash64a(b"12345678", 0);
        let b = murmurhash64a(b"123456789", 0);
        let c = murmurhash64a(b"", 0);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(murmurhash64a(b"abc", 7), murmurhash64a(b"abc", 7));
    }

    #[test]
    fn values_that_are_not_hyll_are_rejected() {
        assert_eq!(Hll::from_bytes(b"hello".to_vec()), Err(HllError::NotHll));
        let mut dense_short = Hll::new().into_bytes();
        dense_short[4] = ENCODING_DENSE;
        assert_eq!(Hll::from_bytes(dense_short), Err(HllError::NotHll));
        let mut bad_encoding = Hll::new().into_bytes();
        bad_encoding[4] = 2;
        assert_eq!(Hll::from_bytes(bad_encoding), Err(HllError::NotHll));
    }

    #[test]
    fn sparse_value_not_covering_all_registers_is_corrupt() {
        let mut bytes = Hll::new().into_bytes();
        bytes.truncate(HEADER_SIZE);
        push_xzero(&mut bytes, REGISTERS - 1);
        let mut hll = Hll::from_bytes(bytes).unwrap();
        assert_eq!(hll.count(), Err(HllError::Corrupt));
        assert_eq!(hll.to_dense(), Err(HllError::Corrupt));
        let mut max = Box::new([0u8; REGISTERS]);
        assert_eq!(hll.merge_into(&mut max), Err(HllError::Corrupt));
    }

    // Vectors below were produced by redis-server 7.0.15 (PFADD, GET,
    // PFDEBUG GETREG); tests/redis_hll.rs re-checks the same properties
    // live against whatever redis-server is installed.

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    fn pfadd(hll: &mut Hll, elements: impl IntoIterator<Item = Vec<u8>>) {
        let mut updated = false;
        for element in elements {
            updated |= hll.add(&element).unwrap();
        }
        if updated {
            hll.invalidate_cache();
        }
    }

    fn numbered(range: std::ops::Range<u32>) -> impl Iterator<Item = Vec<u8>> {
        range.map(|i| format!("e{i}").into_bytes())
    }

    #[test]
    fn small_sparse_value_is_byte_identical_to_redis() {
        let mut hll = Hll::new();
        hll.invalidate_cache(); // PFADD on a new key always invalidates
        pfadd(&mut hll, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(
            hll.as_bytes(),
            unhex("48594c4c01000000000000000000008060f38050b1844bfb80425a")
        );
        let count = hll.count().unwrap();
        assert_eq!(count, 3);
        hll.set_cached_cardinality(count);
        assert_eq!(
            hll.as_bytes(),
            unhex("48594c4c01000000030000000000000060f38050b1844bfb80425a")
        );
    }

    #[test]
    fn element_hashing_picks_redis_registers() {
        let elements: [&[u8]; 6] = [
            b"",
            &[0; 7],
            &[0xff; 8],
            &[b'x'; 9],
            &[b'y'; 15],
            &[b'z'; 17],
        ];
        let mut hll = Hll::new();
        hll.invalidate_cache();
        pfadd(&mut hll, elements.iter().map(|e| e.to_vec()));
        let registers = registers(&hll);
        let set: Vec<(usize, u8)> = registers
            .iter()
            .enumerate()
            .filter(|(_, value)| **value != 0)
            .map(|(index, value)| (index, *value))
            .collect();
        assert_eq!(
            set,
            vec![
                (1964, 1),
                (2027, 3),
                (2779, 5),
                (3284, 1),
                (5938, 2),
                (13333, 2)
            ]
        );
        assert_eq!(
            hll.as_bytes(),
            unhex("48594c4c01000000000000000000008047ab803d8842ee9041f7804a5c845ce1844be9")
        );
        assert_eq!(hll.count().unwrap(), 6);
    }

    #[test]
    fn larger_sparse_and_dense_values_match_redis() {
        let mut sparse = Hll::new();
        sparse.invalidate_cache();
        pfadd(&mut sparse, numbered(0..1000));
        assert!(!sparse.is_dense());
        assert_eq!(sparse.as_bytes().len(), 1906);
        assert_eq!(
            sha256_hex(sparse.as_bytes()),
            "519a7f0764d633e025ff9f8cdeb30cd2f452e2ad37f729f6b9ea7a4699791162"
        );
        assert_eq!(sparse.count().unwrap(), 1008);

        let mut dense = Hll::new();
        dense.invalidate_cache();
        for start in (0..100_000).step_by(5000) {
            pfadd(&mut dense, numbered(start..start + 5000));
        }
        assert!(dense.is_dense());
        assert_eq!(
            sha256_hex(dense.as_bytes()),
            "db44442a96c3ca475b58a386c4e1263c33d76900a2a9f2a934e50769c36644f9"
        );
        assert_eq!(dense.count().unwrap(), 100_853);

        let mut small = Hll::new();
        small.invalidate_cache();
        pfadd(&mut small, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        let mut union = Box::new([0u8; REGISTERS]);
        for hll in [&small, &sparse, &dense] {
            hll.merge_into(&mut union).unwrap();
        }
        assert_eq!(estimate_registers(&union), 100_853);
    }

    #[test]
    fn empty_value_created_by_pfadd_matches_redis() {
        let mut hll = Hll::new();
        hll.invalidate_cache();
        assert_eq!(
            hll.as_bytes(),
            unhex("48594c4c0100000000000000000000807fff")
        );
    }

    #[test]
    fn a_cut_xzero_reads_its_missing_byte_as_zero_like_redis() {
        // A full sparse value plus one stray XZERO byte (APPEND 'a' in
        // Redis): the stray opcode covers 0x21 << 8 | 0 + 1 registers, so
        // the value is corrupt for Redis and for us.
        let mut hll = Hll::new();
        hll.add(b"x").unwrap();
        let mut bytes = hll.into_bytes();
        bytes.push(b'a');
        let hll = Hll::from_bytes(bytes).unwrap();
        assert_eq!(hll.count(), Err(HllError::Corrupt));
        let mut max = Box::new([0u8; REGISTERS]);
        assert_eq!(hll.merge_into(&mut max), Err(HllError::Corrupt));
        // A lone cut XZERO covering register 0 only: registers beyond it
        // are missing, and updating register 0 is refused.
        let mut bytes = Hll::new().into_bytes();
        bytes.truncate(HEADER_SIZE);
        bytes.push(0x40);
        let mut hll = Hll::from_bytes(bytes).unwrap();
        assert_eq!(hll.set_register(0, 3), Err(HllError::Corrupt));
        assert_eq!(hll.set_register(5, 3), Err(HllError::Corrupt));
    }

    #[test]
    fn runaway_zero_runs_are_corrupt_not_an_overflow() {
        let mut bytes = Hll::new().into_bytes();
        bytes.truncate(HEADER_SIZE);
        for _ in 0..300_000 {
            push_xzero(&mut bytes, REGISTERS);
        }
        let hll = Hll::from_bytes(bytes).unwrap();
        assert_eq!(hll.count(), Err(HllError::Corrupt));
    }

    proptest! {
        #[test]
        fn sparse_and_dense_forms_hold_the_same_registers(
            elements in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..400)
        ) {
            let mut sparse = Hll::new();
            let mut dense = Hll::new();
            dense.to_dense().unwrap();
            for e in &elements {
                prop_assert_eq!(sparse.add(e).unwrap(), dense.add(e).unwrap());
            }
            prop_assert_eq!(registers(&sparse), registers(&dense));
            prop_assert_eq!(sparse.count().unwrap(), dense.count().unwrap());
            let mut converted = sparse.clone();
            converted.to_dense().unwrap();
            prop_assert_eq!(converted.as_bytes()[HEADER_SIZE..].to_vec(), dense.as_bytes()[HEADER_SIZE..].to_vec());
            // The encoded value decodes back to the same HLL.
            prop_assert_eq!(Hll::from_bytes(sparse.as_bytes().to_vec()).unwrap(), sparse);
        }

        #[test]
        fn set_register_matches_a_plain_register_array(
            updates in proptest::collection::vec((0usize..REGISTERS, 1u8..=40), 0..300)
        ) {
            let mut hll = Hll::new();
            let mut model = Box::new([0u8; REGISTERS]);
            for &(index, value) in &updates {
                let grew = hll.set_register(index, value).unwrap();
                prop_assert_eq!(grew, value > model[index]);
                model[index] = model[index].max(value);
            }
            prop_assert_eq!(registers(&hll), model.clone());
            prop_assert_eq!(hll.count().unwrap(), estimate_registers(&model));
        }

        #[test]
        fn arbitrary_sparse_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64), index in 0usize..REGISTERS, value in 1u8..=63) {
            let mut bytes = Hll::new().into_bytes();
            bytes.truncate(HEADER_SIZE);
            bytes.extend_from_slice(&body);
            let mut hll = Hll::from_bytes(bytes).unwrap();
            let _ = hll.count();
            let mut max = Box::new([0u8; REGISTERS]);
            let _ = hll.merge_into(&mut max);
            let _ = hll.set_register(index, value);
            let _ = hll.to_dense();
        }
    }
}
