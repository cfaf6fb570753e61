//! The URL rules (`src/urls.rs`, what the rows' targets go through) on any strings: no panic,
//! no hang, and what they promise holds. The input is an href, a NUL, then a base URL; the
//! first byte picks the encoding of the legacy query step.
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/urls.rs"]
mod urls;

use urls::Tracking;

const LABELS: [&str; 4] = ["windows-1251", "shift_jis", "gb18030", "iso-2022-jp"];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let (href, base) = text.split_once('\0').unwrap_or((text, "http://s.test/a/b"));
    let tracking = Tracking::default();
    let resolved = urls::resolve_href(href, Some(base));
    let link = urls::resolve_link(href, Some(base), &tracking);
    // One parse or two, the same target; a target is normalized already.
    assert_eq!(link, resolved.as_deref().and_then(|u| urls::normalize_url(u, &tracking)));
    if let Some(link) = &link {
        assert!(link.starts_with("http://") || link.starts_with("https://"), "{link}");
        assert_eq!(urls::normalize_url(link, &tracking).as_deref(), Some(link.as_str()));
    }
    let escaped = urls::normalize_escapes(href);
    assert_eq!(urls::normalize_escapes(&escaped), escaped);
    let _ = urls::is_skipped_href(href, flags & 1 != 0);
    assert!(urls::is_same_document(base, base));
    let encoding = encoding_rs::Encoding::for_label(LABELS[(flags >> 1 & 3) as usize].as_bytes());
    let encoded = urls::encode_query(href, encoding.expect("a WHATWG label"));
    assert!(urls::non_ascii_query(&encoded).is_none(), "{encoded}");
});
