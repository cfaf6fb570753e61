//! `bound_body` (`src/bound.rs`, the bounds a body gets before its parse) on any bytes: no
//! panic, no hang, and the same answer as the implementation before its fast path
//! (`src/bound_ref.rs`): the bytes, the bounds hit, the two flags. The first byte, when
//! odd, lowers the bounds (the cuts then run on short inputs).
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/bounds.rs"]
mod bounds;
#[path = "../../src/bound.rs"]
mod bound;
#[path = "../../src/bound_ref.rs"]
mod bound_ref;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let low = flags & 1 == 1;
    let pick = |low_value: usize, value: usize| if low { low_value } else { value };
    let (parse, tags, reopened) = (pick(4000, 8 << 20), pick(60, 500_000), pick(20, 100_000));
    let (check, depth, readings) = (pick(8, 8192), pick(4, 256), pick(2, 8));
    let limits = bound::Limits {
        max_parse_bytes: parse,
        max_tags: tags,
        max_reopened: reopened as i64,
        nesting_check_tags: check,
        max_dom_depth: depth,
        caps: bound::Caps { readings, ..bound::Caps::default() },
    };
    let old_limits = bound_ref::Limits {
        max_parse_bytes: parse,
        max_tags: tags,
        max_reopened: reopened as i64,
        nesting_check_tags: check,
        max_dom_depth: depth,
        caps: bound_ref::Caps { readings, ..bound_ref::Caps::default() },
    };
    let got = bound::bound_body(body, &limits);
    let want = bound_ref::bound_body(body, &old_limits);
    assert_eq!(
        (&got.body, &got.limits, got.many_tags, got.deep),
        (&want.body, &want.limits, want.many_tags, want.deep)
    );
});
