//! Property tests of the blob formats, run by `cargo test` (the cargo-fuzz
//! targets `fuzz/fuzz_targets/blob_*.rs` do the same without a bound on
//! time): random operation sequences agree with a plain model and keep the
//! blob valid; random and mutated blobs are refused with an error or read
//! consistently, and never panic.

use std::collections::BTreeSet;

use forkdb_snapshot::blob::listpack::Where;
use forkdb_snapshot::blob::{Elem, Intset, Listpack, Ziplist, Zipmap};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Str(Vec<u8>),
}

impl Val {
    fn elem(&self) -> Elem<'_> {
        match self {
            Val::Int(v) => Elem::Int(*v),
            Val::Str(s) => Elem::Str(s),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        any::<i64>().prop_map(Val::Int),
        (-5000i64..5000).prop_map(Val::Int),
        (any::<i64>(), 0u32..64).prop_map(|(v, s)| Val::Int(v >> s)),
        // Canonical and look-alike integer texts.
        any::<i32>().prop_map(|v| Val::Str(v.to_string().into_bytes())),
        prop::sample::select(vec!["012", " 1", "+1", "-0", "", "1.5"])
            .prop_map(|s| Val::Str(s.as_bytes().to_vec())),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(Val::Str),
        // Lengths around the 12-bit/32-bit string and back-length edges.
        prop::sample::select(vec![4094usize, 4095, 4096, 16377, 16378])
            .prop_map(|n| Val::Str(vec![b'q'; n])),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Append(Val),
    Prepend(Val),
    Insert(i8, bool, Val),
    Replace(i8, Val),
    Delete(i8),
    DeleteRange(i8, u8),
    Find(Val, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => val().prop_map(Op::Append),
        1 => val().prop_map(Op::Prepend),
        1 => (any::<i8>(), any::<bool>(), val()).prop_map(|(i, a, v)| Op::Insert(i, a, v)),
        1 => (any::<i8>(), val()).prop_map(|(i, v)| Op::Replace(i, v)),
        1 => any::<i8>().prop_map(Op::Delete),
        1 => (any::<i8>(), 0u8..6).prop_map(|(i, n)| Op::DeleteRange(i, n)),
        1 => (val(), 0u8..3).prop_map(|(v, s)| Op::Find(v, s)),
    ]
}

fn check_lp(lp: &Listpack, model: &[Vec<u8>]) {
    assert_eq!(Listpack::validate(lp.as_bytes()), Ok(model.len()));
    assert_eq!(lp.len(), model.len());
    let fwd: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
    assert_eq!(fwd, model);
    assert!(lp
        .iter()
        .rev()
        .map(|e| e.to_vec())
        .eq(model.iter().rev().cloned()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn listpack_agrees_with_a_vec(ops in prop::collection::vec(op(), 0..40)) {
        let mut lp = Listpack::new();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            let n = model.len() as i64;
            let norm = |i: i8| { let i = i64::from(i); if i < 0 { i + n } else { i } };
            let in_range = |i: i8| (0..n).contains(&norm(i));
            match op {
                Op::Append(v) => { lp.append(v.elem()).unwrap(); model.push(v.elem().to_vec()); }
                Op::Prepend(v) => { lp.prepend(v.elem()).unwrap(); model.insert(0, v.elem().to_vec()); }
                Op::Insert(i, after, v) => {
                    prop_assert_eq!(lp.seek(i64::from(i)).is_some(), in_range(i));
                    if let Some(p) = lp.seek(i64::from(i)) {
                        let w = if after { Where::After } else { Where::Before };
                        let at = lp.insert(p, w, v.elem()).unwrap();
                        let k = norm(i) as usize + usize::from(after);
                        model.insert(k, v.elem().to_vec());
                        prop_assert_eq!(lp.get(at).to_vec(), model[k].clone());
                    }
                }
                Op::Replace(i, v) => {
                    if let Some(p) = lp.seek(i64::from(i)) {
                        lp.replace(p, v.elem()).unwrap();
                        model[norm(i) as usize] = v.elem().to_vec();
                    }
                }
                Op::Delete(i) => {
                    if let Some(p) = lp.seek(i64::from(i)) {
                        let next = lp.delete(p);
                        model.remove(norm(i) as usize);
                        prop_assert_eq!(next.map(|p| lp.get(p).to_vec()), model.get(norm(i) as usize).cloned());
                    }
                }
                Op::DeleteRange(i, num) => {
                    lp.delete_range(i64::from(i), usize::from(num));
                    if in_range(i) {
                        let s = norm(i) as usize;
                        model.drain(s..(s + usize::from(num)).min(model.len()));
                    }
                }
                Op::Find(v, skip) => {
                    let needle = v.elem().to_vec();
                    let found = lp.first().and_then(|p| lp.find(p, &needle, usize::from(skip)));
                    let want = model.iter().step_by(usize::from(skip) + 1).position(|e| *e == needle);
                    prop_assert_eq!(found.is_some(), want.is_some());
                    if let Some(p) = found {
                        prop_assert_eq!(lp.get(p).to_vec(), needle);
                    }
                }
            }
            check_lp(&lp, &model);
        }
    }

    #[test]
    fn intset_agrees_with_a_btreeset(ops in prop::collection::vec((any::<bool>(), any::<i64>(), 0u32..64), 0..80)) {
        let mut set = Intset::new();
        let mut model = BTreeSet::new();
        for (add, v, shift) in ops {
            let v = v >> shift;
            let enc = set.encoding();
            if add {
                prop_assert_eq!(set.insert(v), Ok(model.insert(v)));
            } else {
                prop_assert_eq!(set.remove(v), model.remove(&v));
            }
            prop_assert!(set.encoding() >= enc);
            prop_assert!(set.iter().eq(model.iter().copied()));
            prop_assert!(set.iter().rev().eq(model.iter().rev().copied()));
            if !model.is_empty() {
                prop_assert_eq!(Intset::validate(set.as_bytes()), Ok(model.len()));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        exercise_foreign(&bytes);
    }

    #[test]
    fn mutated_valid_blobs_never_panic(
        vals in prop::collection::vec(val(), 1..8),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        // A valid listpack and intset, and a ziplist and zipmap built by
        // hand, then damaged.
        let mut lp = Listpack::new();
        let mut set = Intset::new();
        for v in &vals {
            lp.append(v.elem()).unwrap();
            if let Val::Int(i) = v { set.insert(*i).unwrap(); }
        }
        set.insert(7).unwrap();
        let zl = ziplist_of(&vals);
        let zm = zipmap_of(&vals);
        for blob in [lp.as_bytes().to_vec(), set.as_bytes().to_vec(), zl, zm] {
            exercise_foreign(&blob);
            let mut bad = blob.clone();
            for (i, b) in &edits {
                let i = i.index(bad.len());
                bad[i] = *b;
            }
            exercise_foreign(&bad);
            exercise_foreign(&blob[..cut.index(blob.len())]);
        }
    }
}

/// Every parser on the bytes: an error naming an offset, or a blob that
/// reads consistently.
fn exercise_foreign(b: &[u8]) {
    match Listpack::from_bytes(b.to_vec()) {
        Ok(lp) => {
            let model: Vec<Vec<u8>> = lp.iter().map(|e| e.to_vec()).collect();
            check_lp(&lp, &model);
        }
        Err(e) => assert!(e.offset().is_some(), "{e}"),
    }
    match Intset::from_bytes(b.to_vec()) {
        Ok(s) => {
            let v: Vec<i64> = s.iter().collect();
            assert!(v.windows(2).all(|w| w[0] < w[1]));
            assert!(s.iter().rev().eq(v.iter().rev().copied()));
        }
        Err(e) => assert!(e.offset().is_some(), "{e}"),
    }
    match Ziplist::new(b) {
        Ok(zl) => {
            let v: Vec<Elem> = zl.iter().collect();
            assert_eq!(v.len(), zl.len());
            assert!(zl.iter().rev().eq(v.iter().rev().copied()));
        }
        Err(e) => assert!(e.offset().is_some(), "{e}"),
    }
    match Zipmap::new(b) {
        Ok(zm) => assert_eq!(zm.iter().count(), zm.len()),
        Err(e) => assert!(e.offset().is_some(), "{e}"),
    }
}

/// A ziplist of the values, encoded as ziplist.c would (ints in the smallest
/// ziplist integer encoding, strings with 6/14/32-bit lengths).
fn ziplist_of(vals: &[Val]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10usize;
    for v in vals {
        let mut e = Vec::new();
        if prev < 254 {
            e.push(prev as u8);
        } else {
            e.push(0xFE);
            e.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        let int = match v {
            Val::Int(i) => Some(*i),
            Val::Str(s) => forkdb_snapshot::blob::string_to_i64(s),
        };
        match (int, v) {
            (Some(i), _) if (0..=12).contains(&i) => e.push(0xF1 + i as u8),
            (Some(i), _) if i8::try_from(i).is_ok() => e.extend_from_slice(&[0xFE, i as u8]),
            (Some(i), _) if i16::try_from(i).is_ok() => {
                e.push(0xC0);
                e.extend_from_slice(&(i as i16).to_le_bytes());
            }
            (Some(i), _) if (-(1 << 23)..(1 << 23)).contains(&i) => {
                e.push(0xF0);
                e.extend_from_slice(&(i as i32).to_le_bytes()[..3]);
            }
            (Some(i), _) if i32::try_from(i).is_ok() => {
                e.push(0xD0);
                e.extend_from_slice(&(i as i32).to_le_bytes());
            }
            (Some(i), _) => {
                e.push(0xE0);
                e.extend_from_slice(&i.to_le_bytes());
            }
            (None, Val::Str(s)) => {
                if s.len() <= 0x3F {
                    e.push(s.len() as u8);
                } else if s.len() <= 0x3FFF {
                    e.extend_from_slice(&[0x40 | (s.len() >> 8) as u8, s.len() as u8]);
                } else {
                    e.push(0x80);
                    e.extend_from_slice(&(s.len() as u32).to_be_bytes());
                }
                e.extend_from_slice(s);
            }
            (None, Val::Int(_)) => unreachable!(),
        }
        tail = 10 + body.len();
        prev = e.len();
        body.extend_from_slice(&e);
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((10 + body.len() + 1) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(vals.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    let parsed = Ziplist::new(&zl).expect("hand-built ziplist");
    assert!(parsed
        .iter()
        .map(|e| e.to_vec())
        .eq(vals.iter().map(|v| v.elem().to_vec())));
    zl
}

/// A zipmap pairing each value's text with the next one's.
fn zipmap_of(vals: &[Val]) -> Vec<u8> {
    let texts: Vec<Vec<u8>> = vals.iter().map(|v| v.elem().to_vec()).collect();
    let len = |out: &mut Vec<u8>, n: usize| {
        if n < 254 {
            out.push(n as u8);
        } else {
            out.push(0xFE);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    };
    let mut zm = vec![texts.len().min(254) as u8];
    for (i, k) in texts.iter().enumerate() {
        let v = &texts[(i + 1) % texts.len()];
        len(&mut zm, k.len());
        zm.extend_from_slice(k);
        len(&mut zm, v.len());
        zm.push(1); // one free byte
        zm.extend_from_slice(v);
        zm.push(0);
    }
    zm.push(0xFF);
    assert_eq!(
        Zipmap::new(&zm).expect("hand-built zipmap").len(),
        texts.len()
    );
    zm
}
