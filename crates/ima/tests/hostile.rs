//! Hostile and malformed lines: typed errors with the line number, never a panic.

use keylime_ima::{
    Entries, ImaError, MAX_LINE_LEN, ParseErrorKind, Template, parse_line, parse_log,
};

const NG: &str = "10 91f34b5c671d73504b274a919661cf80dab1e127 ima-ng sha1:1b2ba0b4ed9ec4f1e7cef3a4ad58c35d0c9a6de5 /usr/bin/bash";

fn kind(line: &str) -> ParseErrorKind {
    match parse_line(line, 7) {
        Err(ImaError::Parse { line: 7, kind }) => kind,
        other => panic!("{line:?}: expected a parse error on line 7, got {other:?}"),
    }
}

#[test]
fn malformed_fields_are_named() {
    assert!(parse_line(NG, 1).is_ok());
    assert_eq!(kind("10"), ParseErrorKind::MissingField("template_hash"));
    assert_eq!(
        kind("10 abcd"),
        ParseErrorKind::MissingField("template_name")
    );
    assert_eq!(
        kind("10 abcd ima-ng"),
        ParseErrorKind::MissingField("file digest")
    );
    assert_eq!(
        kind("10 abcd ima-ng sha1:00"),
        ParseErrorKind::MissingField("name")
    );
    assert!(matches!(
        kind("x1 abcd ima-ng a b"),
        ParseErrorKind::BadPcr(_)
    ));
    assert!(matches!(
        kind("99 abcd ima-ng a b"),
        ParseErrorKind::BadPcr(_)
    ));
    assert!(matches!(
        kind("-1 abcd ima-ng a b"),
        ParseErrorKind::BadPcr(_)
    ));
    assert_eq!(
        kind("10 abzd ima-ng a b"),
        ParseErrorKind::BadHex {
            field: "template_hash",
            offset: 2
        }
    );
    assert!(matches!(
        kind("10 abc ima-ng a b"),
        ParseErrorKind::BadHex { .. }
    ));
    assert!(matches!(
        kind(&format!("10 {} ima-ng a b", "00".repeat(65))),
        ParseErrorKind::BadLength {
            field: "template_hash",
            ..
        }
    ));
    assert_eq!(
        kind("10 abcd ima-xx sha1:00 /a"),
        ParseErrorKind::UnknownTemplate("ima-xx".into())
    );
    assert!(matches!(
        kind("10 abcd ima-ng sha256:00112233 /a"),
        ParseErrorKind::BadLength {
            field: "d-ng",
            len: 4,
            ..
        }
    ));
    assert!(matches!(
        kind("10 abcd ima-ng sha1:zz /a"),
        ParseErrorKind::BadHex { field: "d-ng", .. }
    ));
    assert!(matches!(
        kind("10 abcd ima-ng sh a:00 /a"),
        ParseErrorKind::MissingField(_)
            | ParseErrorKind::BadDigestAlgorithm(_)
            | ParseErrorKind::BadHex { .. }
    ));
    assert!(matches!(
        kind("10 abcd ima-ng s/a:00 /a"),
        ParseErrorKind::BadDigestAlgorithm(_)
    ));
    assert!(matches!(
        kind("10 abcd ima 00 /a"),
        ParseErrorKind::BadLength { field: "d", .. }
    ));
    let long_name = "x".repeat(256);
    assert_eq!(
        kind(&format!("10 abcd ima {} {long_name}", "00".repeat(20))),
        ParseErrorKind::NameTooLong { len: 256 }
    );
    assert!(matches!(
        kind(&format!("10 abcd ima-sig sha1:{} /a 03x2", "00".repeat(20))),
        ParseErrorKind::BadHex {
            field: "sig",
            offset: 2
        }
    ));
    assert!(matches!(
        kind(&format!("10 abcd ima-buf sha1:{} name 0", "00".repeat(20))),
        ParseErrorKind::BadHex { field: "buf", .. }
    ));
    assert_eq!(
        kind(&format!(
            "10 abcd ima-buf sha1:{} namewithoutbuf",
            "00".repeat(20)
        )),
        ParseErrorKind::MissingField("buf")
    );
}

#[test]
fn oversized_line_is_refused_without_parsing() {
    let huge = format!(
        "10 abcd ima-buf sha1:{} n {}",
        "00".repeat(20),
        "ab".repeat(MAX_LINE_LEN)
    );
    assert!(matches!(kind(&huge), ParseErrorKind::LineTooLong { .. }));
    // error text quoting untrusted input is bounded
    let e = parse_line(&format!("10 ab {} x y", "t".repeat(100_000)), 1).unwrap_err();
    assert!(e.to_string().len() < 300, "{}", e.to_string().len());
}

#[test]
fn line_numbers_count_skipped_empty_lines() {
    let text = format!("{NG}\n\n{NG}\nbroken\n");
    let items: Vec<_> = parse_log(&text).collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].as_ref().unwrap().line, 3);
    assert!(matches!(items[2], Err(ImaError::Parse { line: 4, .. })));
    let shifted: Vec<_> = Entries::starting_at_line(NG, 101).collect();
    assert_eq!(shifted[0].as_ref().unwrap().line, 101);
    assert_eq!(parse_log("").count(), 0);
    assert_eq!(parse_log("\n\n").count(), 0);
}

#[test]
fn templates_parse_their_fields() {
    let e = parse_line(NG, 1).unwrap();
    assert_eq!(
        (e.pcr, e.template, e.name),
        (10, Template::ImaNg, "/usr/bin/bash")
    );
    assert_eq!(e.digest.algorithm_name(), "sha1");
    let sig_line = format!(
        "10 abcd ima-sig sha256:{} /usr/bin/my file 030204aabb",
        "11".repeat(32)
    );
    let sig = parse_line(&sig_line, 1).unwrap();
    assert_eq!(sig.name, "/usr/bin/my file");
    assert_eq!(sig.signature(), vec![3, 2, 4, 0xaa, 0xbb]);
    let unsigned_line = format!("10 abcd ima-sig sha256:{} /a ", "11".repeat(32));
    let unsigned = parse_line(&unsigned_line, 1).unwrap();
    assert_eq!((unsigned.name, unsigned.sig_hex), ("/a", ""));
    let modsig_line = format!(
        "10 abcd ima-modsig sha256:{d} /lib/m.ko  sha256:{d} 0102",
        d = "22".repeat(32)
    );
    let modsig = parse_line(&modsig_line, 1).unwrap();
    assert_eq!(modsig.template, Template::ImaModsig);
    assert!(!modsig.template.accepted_upstream());
    assert_eq!(
        (modsig.name, modsig.sig_hex, modsig.modsig_hex),
        ("/lib/m.ko", "", "0102")
    );
    assert!(modsig.modsig_digest.is_some());
    let bare_line = format!("10 abcd ima-ng {} /a", "33".repeat(16));
    let bare = parse_line(&bare_line, 1).unwrap();
    assert_eq!(bare.digest.algorithm_name(), "md5");
}

#[test]
fn truncations_and_byte_mutations_never_panic() {
    let sig = "10 5d4d5141ccd5066d50dc3f21d79ba02fedc24256 ima-sig sha256:b8ae0b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b /usr/bin/zmore 030204531f40";
    let buf = "10 fdcd389a7d084c7e1af8ed6917d080b1f0ee0625 ima-buf sha256:09e8a13203b10ce8d352aaafcdaf74986a6e2940e42c44c1a6603624135e1117 dm_table_load 646d5f76";
    let ima = "10 83519a71fe7500a3ae575f8f6c7160d96c4e2a15 ima 19f13b42c2745066347e76454788c0fe083643f3 /init";
    let mut outcomes = [0usize; 2];
    for line in [NG, sig, buf, ima] {
        for cut in 0..=line.len() {
            outcomes[usize::from(parse_line(&line[..cut], 1).is_ok())] += 1;
        }
        for i in 0..line.len() {
            for c in [' ', ':', 'g', '0', 'é', '\0'] {
                let mut s = line.to_owned();
                s.replace_range(i..i + 1, &c.to_string());
                if let Ok(e) = parse_line(&s, 1) {
                    // whatever parsed must hash and replay
                    let _ = keylime_ima::template_hash(&e, keylime_ima::HashAlg::Sha256).unwrap();
                    outcomes[1] += 1;
                } else {
                    outcomes[0] += 1;
                }
            }
        }
    }
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
