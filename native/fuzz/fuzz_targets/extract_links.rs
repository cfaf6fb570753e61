//! The core's entry point (`walk::extract`, what `linkcrawl_native.extract_links` runs) on
//! any bytes, in any of the encodings Python passes, flattened or not: no panic, no hang, and
//! the bounds hold. The first byte picks the encoding and the flattening.
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/arena.rs"]
mod arena;
#[path = "../../src/walk.rs"]
mod walk;

const LABELS: [&str; 8] = [
    "utf-8", "windows-1252", "shift_jis", "utf-16le", "gb18030", "euc-kr", "iso-2022-jp",
    "replacement",
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let label = LABELS[(flags & 7) as usize];
    let page = walk::extract(body, label, flags & 8 != 0).expect("a WHATWG label");
    let (_, _, _, _, alternates, _, metas, _, links) = page;
    assert!(links.len() <= 100_000 && alternates.len() <= 200 && metas.len() <= 64);
    for (_, tag, _, _, _, is_image, alts) in &links {
        assert!(*tag == "a" || *tag == "area");
        assert!(*tag == "a" || (!is_image && alts.len() == 1));
    }
});
