use std::convert::Infallible;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

/// Every part of the form in `pieces`, read as the API reads it.
fn read_all(pieces: Vec<Vec<u8>>, boundary: &str) -> Result<Vec<(PartHead, Vec<u8>)>, FormError> {
    let stream =
        futures::stream::iter(pieces.into_iter().map(|p| Ok::<_, Infallible>(Bytes::from(p))));
    let mut form = FormReader::new(stream, boundary);
    futures::executor::block_on(async {
        let mut parts = Vec::new();
        while let Some(head) = form.next_part().await? {
            let mut bytes = Vec::new();
            while let Some(chunk) = form.chunk().await? {
                assert!(!chunk.is_empty(), "no empty chunks");
                bytes.extend_from_slice(&chunk);
            }
            parts.push((head, bytes));
        }
        Ok(parts)
    })
}

/// A part as sent: its field name, its file name if any, its bytes.
type SentPart = (String, Option<String>, Vec<u8>);

fn encode(boundary: &str, preamble: &[u8], parts: &[SentPart]) -> Vec<u8> {
    let mut body = preamble.to_vec();
    if !preamble.is_empty() {
        body.extend_from_slice(b"\r\n");
    }
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = file_name.as_ref().map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n").as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\nthe epilogue").as_bytes());
    body
}

/// `body` cut at `cuts` (positions, any order, any repeats).
fn split(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([body.len()]) {
        pieces.push(body[from..cut].to_vec());
        from = cut;
    }
    pieces
}

/// Part contents that look like a delimiter, or its beginning, wherever they are cut.
fn tricky_bytes(boundary: String) -> impl Strategy<Value = Vec<u8>> {
    let delimiter = format!("\r\n--{boundary}");
    let pieces = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (1..delimiter.len()).prop_map(move |n| delimiter.as_bytes()[..n].to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r\n--".to_vec()),
        Just(format!("--{boundary}").into_bytes()),
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|pieces| pieces.concat())
}

/// A boundary, a preamble and the parts.
fn form_strategy() -> impl Strategy<Value = (String, Vec<u8>, Vec<SentPart>)> {
    "[A-Za-z0-9'()+_,./:=?-]{1,70}".prop_flat_map(|boundary| {
        let part = (
            "[a-z_\\[\\]]{1,12}",
            proptest::option::of("[A-Za-z0-9 ._-]{0,20}"),
            tricky_bytes(boundary.clone()),
        );
        let preamble = proptest::collection::vec(b'a'..=b'z', 0..30);
        (Just(boundary), preamble, proptest::collection::vec(part, 0..5))
    })
    // A client picks a boundary that its contents do not hold.
    .prop_filter("the boundary occurs in a part", |(boundary, _, parts)| {
        let delimiter = format!("\r\n--{boundary}");
        parts.iter().all(|(_, _, bytes)| memchr::memmem::find(bytes, delimiter.as_bytes()).is_none())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_part_comes_back_whole_however_the_body_is_cut(
        (boundary, preamble, parts) in form_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let body = encode(&boundary, &preamble, &parts);
        let read = read_all(split(&body, &cuts), &boundary).unwrap();
        let expected: Vec<(PartHead, Vec<u8>)> = parts
            .into_iter()
            .map(|(name, file_name, bytes)| (PartHead { name: Some(name), file_name }, bytes))
            .collect();
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn a_body_cut_short_is_incomplete_never_a_wait(
        (boundary, preamble, parts) in form_strategy(),
        keep in any::<usize>(),
    ) {
        let body = encode(&boundary, &preamble, &parts);
        let end = body.len() - "--\r\nthe epilogue".len();
        let cut = keep % end;
        let read = read_all(vec![body[..cut].to_vec()], &boundary);
        prop_assert!(read.is_err(), "{:?}", read);
    }

    #[test]
    fn any_bytes_give_parts_or_an_error(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut with_boundaries = b"--b\r\n".to_vec();
        with_boundaries.extend_from_slice(&body);
        let _ = read_all(split(&body, &cuts), "b");
        let _ = read_all(split(&with_boundaries, &cuts), "b");
    }
}

#[test]
fn a_form_without_parts_has_none() {
    assert_eq!(read_all(vec![b"--b--\r\n".to_vec()], "b").unwrap(), vec![]);
    assert_eq!(read_all(vec![b"--b--".to_vec()], "b").unwrap(), vec![]);
}

#[test]
fn an_unread_part_is_skipped_for_the_next() {
    let body = encode(
        "b",
        b"",
        &[
            ("a".into(), None, b"skipped".to_vec()),
            ("files".into(), Some("x.csv".into()), b"kept".to_vec()),
        ],
    );
    let stream = futures::stream::iter([Ok::<_, Infallible>(Bytes::from(body))]);
    let mut form = FormReader::new(stream, "b");
    futures::executor::block_on(async {
        assert_eq!(form.next_part().await.unwrap().unwrap().name.as_deref(), Some("a"));
        let head = form.next_part().await.unwrap().unwrap();
        assert_eq!(head.file_name.as_deref(), Some("x.csv"));
        assert_eq!(form.chunk().await.unwrap().unwrap(), Bytes::from_static(b"kept"));
        assert_eq!(form.chunk().await.unwrap(), None);
        assert_eq!(form.next_part().await.unwrap(), None);
    });
}

#[test]
fn large_pieces_come_back_as_slices_of_themselves() {
    let contents = vec![7_u8; 1 << 20];
    let body = encode("b", b"", &[("files".into(), Some("big".into()), contents.clone())]);
    let received = Bytes::from(body);
    let stream = futures::stream::iter([Ok::<_, Infallible>(received.clone())]);
    let mut form = FormReader::new(stream, "b");
    futures::executor::block_on(async {
        form.next_part().await.unwrap().unwrap();
        let chunk = form.chunk().await.unwrap().unwrap();
        assert_eq!(chunk.len(), contents.len());
        let inside = received.as_ptr_range();
        assert!(inside.contains(&chunk.as_ptr()), "a slice of the received bytes, not a copy");
    });
}

#[test]
fn the_preamble_and_part_headers_are_bounded() {
    let preamble = vec![b'x'; MAX_PREAMBLE + 10];
    let body = encode("b", &preamble, &[("a".into(), None, b"1".to_vec())]);
    assert_eq!(read_all(vec![body], "b"), Err(FormError::PreambleTooLong));

    let mut body = b"--b\r\nX-Long: ".to_vec();
    body.extend(vec![b'y'; MAX_PART_HEAD]);
    assert_eq!(read_all(vec![body], "b"), Err(FormError::HeadTooLong));

    let mut body = b"--b\r\n".to_vec();
    for n in 0..=MAX_HEADERS {
        body.extend_from_slice(format!("X-{n}: v\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\nvalue\r\n--b--");
    assert!(matches!(read_all(vec![body], "b"), Err(FormError::BadHead(_))));
}

#[test]
fn a_boundary_must_end_its_line() {
    let body = b"--bx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--".to_vec();
    assert!(matches!(read_all(vec![body], "b"), Err(FormError::BadHead(_))));
    let padded = b"--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--".to_vec();
    let parts = read_all(vec![padded], "b").unwrap();
    assert_eq!(parts[0].0.name.as_deref(), Some("a"));
}

#[test]
fn content_disposition_names_quoted_escaped_or_bare() {
    let head = |value: &str| content_disposition(value.as_bytes());
    assert_eq!(
        head(r#"form-data; name="files"; filename="a \"b\".csv""#),
        PartHead { name: Some("files".into()), file_name: Some(r#"a "b".csv"#.into()) }
    );
    assert_eq!(head("form-data; NAME = event_id ").name.as_deref(), Some("event_id"));
    assert_eq!(
        head(r#"form-data; filename="x;y.csv"; name=files"#).file_name.as_deref(),
        Some("x;y.csv")
    );
    assert_eq!(head(r#"form-data; name="files"; filename="""#).file_name.as_deref(), Some(""));
    assert_eq!(head("form-data; flag; name=a").name.as_deref(), Some("a"));
    assert_eq!(head(r#"form-data; name="a"; name="b""#).name.as_deref(), Some("a"), "the first");
    assert_eq!(head("form-data"), PartHead::default());
    assert_eq!(head("form-data; filename=\"你好.csv\"").file_name.as_deref(), Some("你好.csv"));
}

#[test]
fn the_boundary_of_a_form_content_type() {
    assert_eq!(boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
    assert_eq!(
        boundary("Multipart/Form-Data; charset=utf-8; Boundary=\"a b\"").as_deref(),
        Some("a b")
    );
    assert_eq!(boundary("multipart/form-data"), None);
    assert_eq!(boundary("multipart/form-data; boundary="), None);
    assert_eq!(boundary("application/json; boundary=abc"), None);
    assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(201))), None);
}
