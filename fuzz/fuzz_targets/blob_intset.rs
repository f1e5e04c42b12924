//! Intsets: a foreign blob must be refused with an error or be fully usable, and inserts and
//! removals must keep a valid intset holding what a `BTreeSet` model holds, with the encoding
//! only ever widening. First byte even = the rest is a foreign intset, odd = an empty one; then
//! 9-byte steps [op, 8 bytes of value] from the rest.
#![no_main]

use std::collections::BTreeSet;

use forkdb_snapshot::blob::Intset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut set = if mode & 1 == 0 {
        match Intset::from_bytes(rest.to_vec()) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.offset().is_some());
                let _ = e.to_string();
                return;
            }
        }
    } else {
        Intset::new()
    };
    let mut model: BTreeSet<i64> = set.iter().collect();
    assert!(set.iter().rev().eq(model.iter().rev().copied()));
    for step in rest.chunks_exact(9).take(64) {
        let v = i64::from_le_bytes(step[1..9].try_into().unwrap()) >> (step[0] % 64);
        let enc = set.encoding();
        if step[0] & 0x80 == 0 {
            assert_eq!(set.insert(v), Ok(model.insert(v)));
        } else {
            assert_eq!(set.remove(v), model.remove(&v));
        }
        assert!(set.encoding() >= enc);
        assert_eq!(set.contains(v), model.contains(&v));
        assert!(set.iter().eq(model.iter().copied()));
        assert!(set.iter().rev().eq(model.iter().rev().copied()));
        if !set.is_empty() {
            assert_eq!(Intset::validate(set.as_bytes()), Ok(model.len()));
        }
    }
});
