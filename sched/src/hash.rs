//! The kernel's hash functions, as the hashing schedulers call them.
//!
//! - [`hash_32`]: `include/linux/hash.h`, the multiplicative hash (high bits of
//!   `v * GOLDEN_RATIO_32`), used by sh, dh, lblc and lblcr.
//! - [`addr_fold`]: the address folding every IPVS hashing scheduler does before `ntohl()`
//!   (an IPv6 address is the XOR of its four 32-bit words).
//! - [`hsiphash`]: `lib/siphash.c` on a 64-bit kernel, where `hsiphash()` is SipHash-1-3
//!   with a 128-bit key truncated to 32 bits (32-bit kernels run HalfSipHash-1-3 instead and
//!   build different mh tables). Used by mh.

use core::net::IpAddr;

/// `GOLDEN_RATIO_32` of `include/linux/hash.h`.
pub(crate) const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// Mirrors `hash_32()` (generic version, as on x86 and arm64): the top `bits` bits of
/// `v * GOLDEN_RATIO_32 mod 2^32`.
#[inline]
pub(crate) const fn hash_32(v: u32, bits: u32) -> u32 {
    assert!(bits >= 1 && bits <= 32, "hash_32: bits must be in 1..=32");
    v.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The `addr_fold` of `ip_vs_{sh,dh,mh,lblc,lblcr}_hashkey()`, already through `ntohl()`:
/// an IPv4 address as a host-order integer, an IPv6 address as the XOR of its four
/// 32-bit words. (XOR commutes with the byte swap, so folding the big-endian words and
/// swapping once, as the kernel does, gives the same value.)
#[inline]
pub(crate) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            (0..4).fold(0, |acc, i| {
                acc ^ u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// `hsiphash_key_t` on a 64-bit kernel: two `unsigned long` words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HsipKey(pub(crate) [u64; 2]);

/// The SipHash initialisation constants ("somepseudorandomlygeneratedbytes").
const SIP_CONST: [u64; 4] =
    [0x736f_6d65_7073_6575, 0x646f_7261_6e64_6f6d, 0x6c79_6765_6e65_7261, 0x7465_6462_7974_6573];

/// One SipRound on the state `v`.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-`C`-`D` of `data` under the 128-bit key `key` (`key[0]` the low word), with
/// the standard constants and padding (length in the top byte of the last word).
///
/// The structure follows `lib/siphash.c`: `PREAMBLE` (key mixed into the constants),
/// one compression per whole little-endian 64-bit word, the tail bytes and length as the
/// last word, then `POSTAMBLE` (`v2 ^= 0xff` and the finalisation rounds).
fn siphash<const C: usize, const D: usize>(data: &[u8], key: &HsipKey) -> u64 {
    let [k0, k1] = key.0;
    let mut v = [SIP_CONST[0] ^ k0, SIP_CONST[1] ^ k1, SIP_CONST[2] ^ k0, SIP_CONST[3] ^ k1];
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        for _ in 0..C {
            sip_round(v);
        }
        v[0] ^= m;
    };
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        compress(&mut v, u64::from_le_bytes(w.try_into().expect("chunks_exact gives 8 bytes")));
    }
    // The length is taken mod 256 into the top byte, as `((u64)len) << 56` does.
    let mut last = (data.len() as u64) << 56;
    for (i, &byte) in words.remainder().iter().enumerate() {
        last |= u64::from(byte) << (8 * i);
    }
    compress(&mut v, last);
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Mirrors `hsiphash()` on a 64-bit kernel (`BITS_PER_LONG == 64` in `lib/siphash.c`):
/// SipHash-1-3, truncated to the low 32 bits.
#[inline]
pub(crate) fn hsiphash(data: &[u8], key: &HsipKey) -> u32 {
    siphash::<1, 3>(data, key) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for a `u32` held in the memory of a little-endian host
/// (x86_64, arm64), as `ip_vs_mh_hashkey()` calls it.
#[inline]
pub(crate) fn hsiphash_u32(v: u32, key: &HsipKey) -> u32 {
    hsiphash(&v.to_le_bytes(), key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// The key of the SipHash reference vectors: bytes 00 01 .. 0f, little-endian words.
    const TEST_KEY: HsipKey = HsipKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);

    /// SipHash-2-4 of the inputs `[]`, `[0]`, `[0, 1]`, ... `[0..=15]` under `TEST_KEY`:
    /// the first 16 vectors of the reference implementation (github.com/veorq/SipHash,
    /// `vectors.h`), as the kernel also checks them in `lib/siphash_kunit.c`
    /// (`test_vectors_siphash`). They check the shared core (rounds, padding, key).
    const SIPHASH24_VECTORS: [u64; 16] = [
        0x726fdb47dd0e0e31,
        0x74f839c593dc67fd,
        0x0d6c8009d9a94f5a,
        0x85676696d7fb7e2d,
        0xcf2794e0277187b7,
        0x18765564cd99a68d,
        0xcbc9466e58fee3ce,
        0xab0200f58b01d137,
        0x93f5f5799a932462,
        0x9e0082df0ba9e4b0,
        0x7a5dbbc594ddb9f3,
        0xf4b32f46226bada7,
        0x751e8fbc860ee5fb,
        0x14ea5627c0843d90,
        0xf723ca908e7af2ee,
        0xa129ca6149be45e5,
    ];

    /// `hsiphash()` of the inputs `[]`, `[0]`, ... `[0..=63]` under `TEST_KEY` on a 64-bit
    /// kernel: `test_vectors_hsiphash` (the `BITS_PER_LONG == 64` branch) of the kernel's
    /// `lib/siphash_kunit.c`.
    const HSIPHASH64_VECTORS: [u32; 64] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
        0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
        0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
        0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc,
        0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392,
        0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
        0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
        0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
    ];

    fn prefix(n: usize) -> Vec<u8> {
        (0..n as u8).collect()
    }

    #[test]
    fn siphash_2_4_reference_vectors() {
        for (n, &want) in SIPHASH24_VECTORS.iter().enumerate() {
            assert_eq!(siphash::<2, 4>(&prefix(n), &TEST_KEY), want, "SipHash-2-4 of {n} bytes");
        }
    }

    #[test]
    fn hsiphash_kernel_vectors() {
        for (n, &want) in HSIPHASH64_VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&prefix(n), &TEST_KEY), want, "hsiphash of {n} bytes");
        }
        // The kunit file also checks hsiphash_1u32(0x03020100) against the 4-byte vector:
        // the mh path (a u32 in little-endian memory) is the same computation.
        assert_eq!(hsiphash_u32(0x0302_0100, &TEST_KEY), HSIPHASH64_VECTORS[4]);
    }

    #[test]
    fn hash_32_vectors() {
        // Worked by hand from the definition: 1 * 0x61C88647 = 0x61C88647.
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(1, 10), 0x187); // 0x61C88647 >> 22
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        // 2 * 0x61C88647 = 0xC3910C8E.
        assert_eq!(hash_32(2, 8), 0xC3);
        // 3 * 0x61C88647 = 0x1_2559_92D5, wraps to 0x255992D5.
        assert_eq!(hash_32(3, 8), 0x25);
        // 10.0.0.1 = 0x0A000001: (0x0A << 24) * 0x61C88647 keeps only the low byte of
        // 0x0A * 0x47 = 0x2C6, so the product is 0xC6000000 + 0x61C88647 = 0x27C88647.
        let v = u32::from(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(hash_32(v, 32), 0x27C8_8647);
        assert_eq!(hash_32(v, 8), 0x27);
        assert_eq!(hash_32(v, 10), 0x9F);
        assert_eq!(hash_32(u32::MAX, 8), 0x9E); // -0x61C88647 = 0x9E3779B9
    }

    #[test]
    fn fold_addresses() {
        assert_eq!(addr_fold(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2))), 0xC0A8_0102);
        let v6: Ipv6Addr = "2001:db8::1:0:0:5".parse().unwrap();
        // Words 0x20010db8, 0x00000000, 0x00010000, 0x00000005.
        assert_eq!(addr_fold(IpAddr::V6(v6)), 0x2001_0db8 ^ 0x0001_0000 ^ 0x5);
    }
}
