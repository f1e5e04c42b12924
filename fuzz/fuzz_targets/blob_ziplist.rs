//! Ziplists from old RDB files: a blob must be refused with an error naming an offset, or read
//! the same from both ends, and convert to a valid listpack as the loader would (element by
//! element). The only failure is a panic (or a sanitizer report). Seed the corpus with the
//! ziplists of `snapshot/tests/assets/*.rdb`.
#![no_main]

use forkdb_snapshot::blob::{Listpack, Ziplist};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let zl = match Ziplist::new(data) {
        Ok(zl) => zl,
        Err(e) => {
            assert!(e.offset().is_some());
            let _ = e.to_string();
            return;
        }
    };
    let fwd: Vec<_> = zl.iter().collect();
    assert_eq!(fwd.len(), zl.len());
    assert!(zl.iter().rev().eq(fwd.iter().rev().copied()));
    let mut lp = Listpack::new();
    for e in &fwd {
        lp.append(*e).unwrap();
    }
    assert_eq!(Listpack::validate(lp.as_bytes()), Ok(fwd.len()));
    assert!(lp
        .iter()
        .map(|e| e.to_vec())
        .eq(fwd.iter().map(|e| e.to_vec())));
});
