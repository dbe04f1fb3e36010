//! Honest runs must be provable: regression tests for witnesses the AIR refused.

mod common;
use common::*;

/// echo reads after it has written output: a read's IO tokens carry the output cursor's value
/// like a write's (once, the witness left it 0 for reads and the IO chain did not close).
#[test]
fn reads_after_output_are_provable() {
    for len in [1usize, 5, 1024, 1025, 2500] {
        let input: Vec<u8> = (0..len as u32).map(|i| (i * 7919 % 256) as u8).collect();
        let g = Forgery::honest(&fixture("echo"), &input, 1 << 10);
        assert_eq!(g.statement.output, input);
        g.constraints_hold().unwrap();
        g.buses_balance()
            .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
    }
    let g = Forgery::honest(&fixture("echo"), &[7; 1100], 1 << 10);
    g.verify().expect("the proof verifies");
}
