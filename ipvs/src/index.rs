//! The key → entry index of the connection table: open addressing over `u32` slots.
//!
//! A slot holds an entry id (25 bits), the entry's displacement from its home slot
//! (4 bits, saturating at 15) and 3 more bits of its key's hash (a tag). The keys
//! themselves live in the slab entries: the index is told how to hash and compare an id
//! by closures. Linear probing, at most 3/4 full,
//! backward-shift deletion (no tombstones, so probe lengths never degrade). 4 bytes per
//! slot: 5.3 to 10.7 bytes per entry depending on where between two doublings it is.
//!
//! Displacement and tag spare slab reads, each a likely cache miss in a large table: a
//! lookup compares the key only of entries with the same home slot and tag as the key
//! sought (a miss reads the slab once in about 20 lookups at load 3/4), and a deletion
//! shifts later entries back without rehashing their keys.
//!
//! Deterministic: the hash is a fixed function of the key (no per-process seed), and
//! nothing here depends on iteration order.

/// An empty slot.
const EMPTY: u32 = u32::MAX;
/// Bits of a slot holding the entry id: 33.5 million entries, 2 GB of them.
const ID_BITS: u32 = 25;
const ID_MASK: u32 = (1 << ID_BITS) - 1;
/// Largest entry id an index can hold (`ID_MASK` itself would make `EMPTY`).
pub(crate) const MAX_ID: u32 = ID_MASK - 1;
/// Bits of the displacement, above the id.
const DISP_BITS: u32 = 4;
/// A stored displacement of `SATURATED` means "this far or farther: rehash the key".
const SATURATED: usize = (1 << DISP_BITS) - 1;
/// Smallest table, in slots.
const MIN_SLOTS: usize = 16;

/// An open-addressing index of entry ids by key hash.
#[derive(Debug, Default)]
pub(crate) struct Index {
    slots: Vec<u32>,
    len: usize,
}

/// The tag of a hash, in place: 3 low bits (the home slot comes from the top ones).
fn tag(hash: u64) -> u32 {
    (hash as u32 & 0x7) << (ID_BITS + DISP_BITS)
}

/// The bits above the id of a slot for a key with `tag` at displacement `disp`.
fn meta(tag: u32, disp: usize) -> u32 {
    tag | (disp.min(SATURATED) as u32) << ID_BITS
}

/// The stored (possibly saturated) displacement of a full slot.
fn stored_disp(s: u32) -> usize {
    (s >> ID_BITS) as usize & SATURATED
}

impl Index {
    /// Number of ids held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u32>()
    }

    /// The home slot of a hash (its top bits, which the final multiply mixes best).
    fn home(&self, hash: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (hash >> (64 - bits)) as usize
    }

    /// The id whose key hashes to `hash` and for which `is_key(id)` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let t = tag(hash);
        let mut i = self.home(hash);
        let mut disp = 0;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            // Only an entry with the same home and tag can hold the key.
            if s & !ID_MASK == meta(t, disp) && is_key(s & ID_MASK) {
                return Some(s & ID_MASK);
            }
            i = (i + 1) & mask;
            disp += 1;
        }
    }

    /// Add `id`, whose key hashes to `hash` and is not in the index yet. `hash_of(id)`
    /// rehashes any held id, for growing.
    pub(crate) fn insert(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) {
        assert!(id <= MAX_ID, "more than 2^25 - 1 entries in the IPVS table");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(hash_of);
        }
        self.place(hash, id | tag(hash));
        self.len += 1;
    }

    /// Store `tagged` (an id with its tag) in the first free slot from its home.
    fn place(&mut self, hash: u64, tagged: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        let mut disp = 0;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
            disp += 1;
        }
        self.slots[i] = tagged | meta(0, disp);
    }

    fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let n = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let hash = hash_of(s & ID_MASK);
            self.place(hash, (s & ID_MASK) | tag(hash));
        }
    }

    /// Remove `id`, whose key hashes to `hash`; false if it is not held. Later members
    /// of the probe run shift back into the hole, so no tombstone is left.
    pub(crate) fn remove(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        if self.len == 0 {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut hole = self.home(hash);
        loop {
            let s = self.slots[hole];
            if s == EMPTY {
                return false;
            }
            if s & ID_MASK == id {
                break;
            }
            hole = (hole + 1) & mask;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let disp = match stored_disp(s) {
                SATURATED => j.wrapping_sub(self.home(hash_of(s & ID_MASK))) & mask,
                d => d,
            };
            // The entry at j may fill the hole if the hole lies between its home and j.
            let gap = j.wrapping_sub(hole) & mask;
            if disp >= gap {
                let tagged = s & !((SATURATED as u32) << ID_BITS);
                self.slots[hole] = tagged | meta(0, disp - gap);
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

/// The fixed hash of a key given as 64-bit words: FxHash's rotate-xor-multiply per word,
/// then a murmur3 finaliser so that the top bits (the home slot) and the low bits (the
/// tag) depend on every input bit. Never seeded: runs are reproducible.
#[inline]
pub(crate) fn hash_words(words: impl IntoIterator<Item = u64>) -> u64 {
    const K: u64 = 0x517C_C1B7_2722_0A95;
    let mut h = 0u64;
    for w in words {
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are the ids' values in `keys`; hashing is deliberately poor for some tests.
    fn fill(keys: &[u64], hash: impl Fn(u64) -> u64 + Copy) -> Index {
        let mut ix = Index::default();
        for (id, &k) in keys.iter().enumerate() {
            ix.insert(hash(k), id as u32, |i| hash(keys[i as usize]));
        }
        ix
    }

    #[test]
    fn finds_every_key_and_stays_at_most_three_quarters_full() {
        let keys: Vec<u64> = (0..10_000u64).map(|i| i * 7919).collect();
        let h = |k: u64| hash_words([k]);
        let ix = fill(&keys, h);
        assert_eq!(ix.len(), 10_000);
        // 10 000 / 0.75 = 13 334 slots at least: the next power of two is 16 384.
        assert_eq!(ix.slots.len(), 16_384);
        for (id, &k) in keys.iter().enumerate() {
            assert_eq!(ix.find(h(k), |i| keys[i as usize] == k), Some(id as u32));
        }
        assert_eq!(ix.find(h(3), |i| keys[i as usize] == 3), None);
    }

    /// Every stored displacement is the true one, saturated.
    fn check_displacements(ix: &Index, hash_of: impl Fn(u32) -> u64) {
        let mask = ix.slots.len() - 1;
        for (j, &s) in ix.slots.iter().enumerate().filter(|(_, s)| **s != EMPTY) {
            let disp = j.wrapping_sub(ix.home(hash_of(s & ID_MASK))) & mask;
            assert_eq!(stored_disp(s), disp.min(SATURATED), "slot {j}");
        }
    }

    #[test]
    fn backward_shift_deletion_keeps_colliding_runs_reachable() {
        // Every key hashes to one of two homes (the last slot and the first): two runs of
        // 50 that wrap around the table, with displacements far past the saturation.
        let keys: Vec<u64> = (0..100).collect();
        let h = |k: u64| if k % 2 == 0 { u64::MAX } else { 0 };
        let hash_of = |i: u32| h(keys[i as usize]);
        let mut ix = fill(&keys, h);
        check_displacements(&ix, hash_of);
        let mut present: Vec<bool> = vec![true; keys.len()];
        for victim in [0u64, 5, 4, 99, 1, 50, 51, 98] {
            assert!(ix.remove(h(victim), victim as u32, hash_of));
            present[victim as usize] = false;
            assert!(!ix.remove(h(victim), victim as u32, hash_of), "already gone");
            check_displacements(&ix, hash_of);
            for (id, &k) in keys.iter().enumerate() {
                let found = ix.find(h(k), |i| keys[i as usize] == k);
                assert_eq!(found, present[id].then_some(id as u32), "key {k} after removing {victim}");
            }
        }
        assert_eq!(ix.len(), 92);
        assert_eq!(ix.slots.iter().filter(|&&s| s != EMPTY).count(), 92, "no tombstones");
    }

    #[test]
    fn sequential_keys_probe_as_random_ones_would() {
        // One client's ports 0..49 152 at load 0.75 of 65 536 slots. For uniformly random
        // homes, linear probing needs (1 + 1/(1 - a)) / 2 = 2.5 probes on average for a
        // hit (Knuth); a weak hash of structured keys would cluster far above that. The
        // bound 2.8 leaves room for the sample's spread (about +-0.05 at this size).
        let keys: Vec<u64> = (0..49_152u64).map(|p| (10 << 32) | p).collect();
        let h = |k: u64| hash_words([k]);
        let ix = fill(&keys, h);
        assert_eq!(ix.slots.len(), 65_536);
        let mask = ix.slots.len() - 1;
        let probes: usize = ix
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != EMPTY)
            .map(|(j, s)| (j.wrapping_sub(ix.home(h(keys[(s & ID_MASK) as usize]))) & mask) + 1)
            .sum();
        let mean = probes as f64 / keys.len() as f64;
        assert!(mean < 2.8, "mean probes per hit {mean}");
    }
}
