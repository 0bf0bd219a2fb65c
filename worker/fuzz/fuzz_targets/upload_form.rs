#![no_main]
//! Any bytes as the multipart form of an upload, cut in two anywhere: parts or an
//! error, never a panic or a wait.

use std::convert::Infallible;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use licenseware_worker::serve::uploads::form::FormReader;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the body is cut; the boundary is `b`.
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(body.len());
    let pieces = [Bytes::copy_from_slice(&body[..cut]), Bytes::copy_from_slice(&body[cut..])];
    let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, Infallible>));
    let mut form = FormReader::new(stream, "b");
    futures::executor::block_on(async {
        let mut read = 0;
        while let Ok(Some(_)) = form.next_part().await {
            while let Ok(Some(chunk)) = form.chunk().await {
                assert!(!chunk.is_empty());
                read += chunk.len();
            }
        }
        assert!(read <= body.len());
    });
});
