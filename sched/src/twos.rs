//! twos: power of two choices (`ip_vs_twos.c`), drawing from an injected seeded generator
//! instead of the kernel's `get_random_u32_below()`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dest::DestId;
use crate::service::DestList;

/// The generator, seeded by whoever created the service.
#[derive(Clone, Debug)]
pub(crate) struct TwosState {
    rng: ChaCha8Rng,
}

impl TwosState {
    pub(crate) fn new(seed: u64) -> Self {
        TwosState { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Mirrors `ip_vs_twos_schedule()`: two weighted draws in `0..=total`, keep the one
    /// with the lower overhead per weight (plain `int` products, as in the kernel).
    pub(crate) fn schedule(&mut self, list: DestList<'_>) -> Option<DestId> {
        let total: u32 = list.iter().filter(|(_, d)| d.usable()).map(|(_, d)| d.weight as u32).sum();
        if total == 0 {
            return None;
        }
        let mut r1 = self.rng.random_range(0..=total) as i32;
        let mut r2 = self.rng.random_range(0..=total) as i32;
        let mut c1: Option<(DestId, i32, i32)> = None;
        let mut c2: Option<(DestId, i32, i32)> = None;
        for (id, d) in list.iter().filter(|(_, d)| d.usable()) {
            r1 = r1.wrapping_sub(d.weight);
            r2 = r2.wrapping_sub(d.weight);
            if r1 <= 0 && c1.is_none() {
                c1 = Some((id, d.weight, d.conn_overhead()));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((id, d.weight, d.conn_overhead()));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (id1, w1, oh1) = c1.expect("r1 <= total is used up by the last server");
        let (id2, w2, oh2) = c2.expect("r2 <= total is used up by the last server");
        if w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2) { Some(id2) } else { Some(id1) }
    }
}
