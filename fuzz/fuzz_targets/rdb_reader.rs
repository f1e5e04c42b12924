//! Feeds arbitrary bytes to the RDB loader, as a start-up load would read a damaged file. Every
//! outcome but a panic (or a sanitizer report) is fine: a bad file must give an error naming its
//! offset, never a crash. Seed the corpus with real files: `cp ../snapshot/tests/data/*.rdb
//! corpus/rdb_reader/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut records = 0u64;
    let result = forkdb_snapshot::load(data, |_| {
        records += 1;
        Ok::<(), std::convert::Infallible>(())
    });
    if let Err(e) = result {
        // Formatting the error must not panic either.
        let _ = e.to_string();
    }
});
