//! What the crate's property tests share: how many cases they run, and from which seed.

use proptest::test_runner::{Config, RngSeed};

/// The seed of every property test run by `cargo test`: a failure in CI reproduces as it is.
pub const SEED: u64 = 0x0050_0271_C0DE;

/// `cases` cases from [`SEED`], nothing written to disk. For a longer run, `PROPTEST_CASES`
/// (the case count) and `PROPTEST_RNG_SEED` (another seed) override both (see docs/src/proof.md).
pub fn config(cases: u32) -> Config {
    let from_env = Config::default(); // proptest reads the PROPTEST_* variables here
    let set = |name: &str| std::env::var_os(name).is_some();
    Config {
        cases: if set("PROPTEST_CASES") { from_env.cases } else { cases },
        rng_seed: if set("PROPTEST_RNG_SEED") { from_env.rng_seed } else { RngSeed::Fixed(SEED) },
        failure_persistence: None,
        ..from_env
    }
}
