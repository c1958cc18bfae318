//! Random operation sequences from a hostile guest (see `scenario`): after
//! every step the audit and the MMU-walk invariants hold, a refused step
//! changes nothing, and tearing everything down returns every count to 0.

use super::scenario::{self, Op};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

fn op() -> impl Strategy<Value = Op> {
    let frame = any::<u8>();
    prop_oneof![
        8 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>(), any::<bool>()).prop_map(
            |(table, slot, target, flags, preserve_ad)| Op::Update {
                table,
                slot,
                target,
                flags,
                preserve_ad,
            }
        ),
        2 => (frame, any::<u8>(), any::<u8>(), any::<u16>()).prop_map(
            |(frame, slot, target, flags)| Op::GuestWrite {
                frame,
                slot,
                target,
                flags,
            }
        ),
        3 => (frame, 0u8..4).prop_map(|(frame, level)| Op::Pin { frame, level }),
        2 => frame.prop_map(|frame| Op::Unpin { frame }),
        2 => frame.prop_map(|frame| Op::NewBase { frame }),
        1 => proptest::option::of(frame).prop_map(|frame| Op::NewUserBase { frame }),
        1 => frame.prop_map(|frame| Op::Machphys { frame }),
        1 => (frame, any::<u16>()).prop_map(|(frame, entries)| Op::SetGdt { frame, entries }),
        1 => frame.prop_map(|frame| Op::MapWritable { frame }),
        1 => any::<u8>().prop_map(|which| Op::UnmapWritable { which }),
        1 => (frame, any::<u8>(), any::<u64>()).prop_map(|(frame, index, descriptor)| {
            Op::UpdateDescriptor {
                frame,
                index,
                descriptor,
            }
        }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(ops in ops()) {
        scenario::run(&ops);
    }

    #[test]
    fn fuzzer_byte_decoding_keeps_every_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        scenario::run(&scenario::decode_ops(&bytes));
    }
}

/// The property above is only as good as the states it reaches: check that
/// random runs do build deep pinned trees, linear entries and writable
/// leaves, and that both successes and refusals happen.
#[test]
fn random_runs_reach_the_interesting_states() {
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        ..Config::default()
    });
    let strategy = ops();
    let mut total = scenario::Coverage::default();
    for _ in 0..60 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let coverage = scenario::run(&ops);
        total.successes += coverage.successes;
        total.failures += coverage.failures;
        total.linear_entries += coverage.linear_entries;
        total.writable_leaves += coverage.writable_leaves;
        total.deepest_pinned_tree = total.deepest_pinned_tree.max(coverage.deepest_pinned_tree);
    }
    eprintln!("coverage {total:?}");
    assert!(total.successes > 500, "{total:?}");
    assert!(total.failures > 500, "{total:?}");
    assert!(total.linear_entries > 0, "{total:?}");
    assert!(total.writable_leaves > 0, "{total:?}");
    assert!(total.deepest_pinned_tree >= 3, "{total:?}");
}

/// A hand-written run through the scenario's own machinery: a full
/// four-level tree with a writable leaf, a linear entry, a base switch.
#[test]
fn scenario_builds_a_full_tree() {
    let [l4, l3, l2, l1, data] = [10u8, 11, 12, 13, 14];
    let present_rw_user = (1 << 3) | (1 << 4) | 1;
    let update =
        |table, target| Op::Update { table, slot: 0, target, flags: present_rw_user, preserve_ad: false };
    let ops = [
        Op::Pin { frame: l4, level: 3 },
        update(l4, l3),
        update(l3, l2),
        update(l2, l1),
        update(l1, data),
        Op::NewBase { frame: l4 },
        Op::Unpin { frame: l4 },
        Op::Pin { frame: 15, level: 3 },
        Op::Update { table: 15, slot: 1, target: l4, flags: (1 << 4) | 1, preserve_ad: false },
    ];
    let mut run = scenario::Scenario::new();
    for op in &ops {
        run.step(op);
    }
    assert_eq!(run.coverage.failures, 0, "{:?}", run.coverage);
    assert_eq!(run.coverage.deepest_pinned_tree, 4);
    assert!(run.coverage.writable_leaves > 0);
    assert!(run.coverage.linear_entries > 0);
    run.teardown_and_check();
}
