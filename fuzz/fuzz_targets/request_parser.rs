//! Feeds arbitrary bytes to both parsers of forkdb-protocol, in chunks whose sizes are taken
//! from the input itself so the fuzzer also explores where reads split a request. The only
//! failure is a panic (or a sanitizer report); errors are expected outcomes.
#![no_main]

use forkdb_protocol::{BytesMut, FrameDecoder, Limits, RequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: chunk size seed; the rest is the stream. Small limits reach the "too big"
    // paths quickly.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(seed % 64) + 1;
    let mut parser = RequestParser::new(Limits {
        max_bulk_len: 1 << 16,
        max_inline_len: 256,
        max_multibulk_len: 1 << 16,
    });
    parser.set_unauthenticated(seed & 0x80 != 0);
    let mut decoder = FrameDecoder::new();
    let (mut req, mut rep) = (BytesMut::new(), BytesMut::new());
    let (mut req_done, mut rep_done) = (false, false);
    for piece in stream.chunks(chunk) {
        if !req_done {
            req.extend_from_slice(piece);
            loop {
                match parser.parse(&mut req) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        req_done = true;
                        break;
                    }
                }
            }
        }
        if !rep_done {
            rep.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut rep) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        rep_done = true;
                        break;
                    }
                }
            }
        }
    }
    let _ = decoder.decode_eof(&mut rep);
});
