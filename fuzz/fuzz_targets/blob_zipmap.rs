//! Zipmaps from old RDB files: a blob must be refused with an error naming an offset, or yield
//! exactly the number of pairs it claims. The only failure is a panic (or a sanitizer report).
//! A zipmap has no back links, so it is only read forwards.
#![no_main]

use forkdb_snapshot::blob::Zipmap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Zipmap::new(data) {
        Ok(zm) => {
            let mut total = 0usize;
            for (k, v) in zm.iter() {
                total += k.len() + v.len();
            }
            assert!(total <= data.len());
            assert_eq!(zm.iter().count(), zm.len());
        }
        Err(e) => {
            assert!(e.offset().is_some());
            let _ = e.to_string();
        }
    }
});
