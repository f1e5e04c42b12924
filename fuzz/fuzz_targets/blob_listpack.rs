//! Listpacks: a foreign blob must be refused with an error or be fully usable, and every
//! mutation must keep a valid listpack holding what a plain `Vec` model holds. The only failure
//! is a panic (or a sanitizer report), or a disagreement with the model.
//!
//! Input: first byte even = the rest is a foreign listpack (validated, then mutated by a script
//! taken from its own bytes); odd = the rest is a script applied to an empty listpack. Script:
//! 10-byte steps [op, a0..a8]. Seed with real listpacks: `cargo test -p forkdb-snapshot --test
//! blobs_redis` builds them; any DUMP payload's listpack, prefixed with 0x00, is a good seed.
#![no_main]

use forkdb_snapshot::blob::listpack::Where;
use forkdb_snapshot::blob::{Elem, Listpack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let lp = if mode & 1 == 0 {
        match Listpack::from_bytes(rest.to_vec()) {
            Ok(lp) => lp,
            Err(e) => {
                assert!(e.offset().is_some());
                let _ = e.to_string();
                return;
            }
        }
    } else {
        Listpack::new()
    };
    exercise(lp, rest);
});

fn check(lp: &Listpack, model: &[Vec<u8>]) {
    assert_eq!(Listpack::validate(lp.as_bytes()), Ok(model.len()));
    assert_eq!(lp.len(), model.len());
    let fwd: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
    assert_eq!(fwd, model);
    let back: Vec<Vec<u8>> = lp.iter().rev().map(|e| e.to_vec()).collect();
    assert!(back.iter().rev().eq(model.iter()));
}

fn exercise(mut lp: Listpack, script: &[u8]) {
    let mut model: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
    check(&lp, &model);
    for step in script.chunks_exact(10).take(48) {
        let (op, a) = (step[0], &step[1..]);
        let int = i64::from_le_bytes(a[1..9].try_into().unwrap()) >> (a[0] % 64);
        let reps = [1usize, 1, 2, 40, 700, 2100][usize::from(op >> 5) % 6];
        let text: Vec<u8> = a[1..1 + usize::from(a[0] % 9)].repeat(reps);
        let elem = if op & 0x10 != 0 {
            Elem::Int(int)
        } else {
            Elem::Str(&text)
        };
        let ev = elem.to_vec();
        let idx = i64::from(a[0] as i8);
        let n = model.len() as i64;
        let norm = if idx < 0 { idx + n } else { idx };
        let in_range = (0..n).contains(&norm);
        match op % 8 {
            0 => {
                lp.append(elem).unwrap();
                model.push(ev);
            }
            1 => {
                lp.prepend(elem).unwrap();
                model.insert(0, ev);
            }
            2 | 3 => {
                let Some(p) = lp.seek(idx) else {
                    assert!(!in_range);
                    continue;
                };
                let after = op % 8 == 3;
                let at = lp
                    .insert(p, if after { Where::After } else { Where::Before }, elem)
                    .unwrap();
                let i = norm as usize + usize::from(after);
                model.insert(i, ev);
                assert_eq!(lp.get(at).to_vec(), model[i]);
            }
            4 => {
                let Some(p) = lp.seek(idx) else {
                    assert!(!in_range);
                    continue;
                };
                let p = lp.replace(p, elem).unwrap();
                model[norm as usize] = ev;
                assert_eq!(lp.get(p).to_vec(), model[norm as usize]);
            }
            5 => {
                let Some(p) = lp.seek(idx) else {
                    assert!(!in_range);
                    continue;
                };
                let next = lp.delete(p);
                model.remove(norm as usize);
                assert_eq!(
                    next.map(|p| lp.get(p).to_vec()),
                    model.get(norm as usize).cloned()
                );
            }
            6 => {
                let num = usize::from(a[1] % 8);
                lp.delete_range(idx, num);
                if in_range && num > 0 {
                    let end = (norm as usize + num).min(model.len());
                    model.drain(norm as usize..end);
                }
            }
            _ => {
                let skip = usize::from(a[1] % 3);
                let found = lp
                    .first()
                    .and_then(|p| lp.find(p, &ev, skip))
                    .map(|p| lp.get(p).to_vec());
                let want = model.iter().step_by(skip + 1).find(|e| **e == ev).cloned();
                assert_eq!(found, want);
            }
        }
        // Seeking the same index after the operation agrees with the model.
        let n = model.len() as i64;
        let norm = if idx < 0 { idx + n } else { idx };
        match lp.seek(idx) {
            Some(p) => assert_eq!(lp.get(p).to_vec(), model[norm as usize]),
            None => assert!(!(0..n).contains(&norm)),
        }
        check(&lp, &model);
    }
}
