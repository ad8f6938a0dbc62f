//! Tests of the bounded tar reader: what it reads as `tar` writes it, and
//! that every oversized extension header is refused before it is read.

use super::*;
use std::io::Cursor;

/// One header block (ustar), checksummed, declaring `size` bytes.
pub(crate) fn header(name: &str, kind: EntryType, size: u64) -> Vec<u8> {
    let mut h = Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A member with its data, padded.
pub(crate) fn member(name: &str, kind: EntryType, data: &[u8]) -> Vec<u8> {
    let mut out = header(name, kind, data.len() as u64);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

pub(crate) fn pax_data(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {key}=").as_bytes());
        data.extend_from_slice(value);
        data.push(b'\n');
    }
    data
}

fn end(mut stream: Vec<u8>) -> Vec<u8> {
    stream.resize(stream.len() + 1024, 0);
    stream
}

/// A member as (name, link, size, data).
type Read4 = (String, Option<String>, u64, Vec<u8>);

fn read_all(stream: &[u8]) -> Result<Vec<Read4>, FrameError> {
    let mut r = TarReader::new(stream, HeaderLimits::DEFAULT);
    let mut out = Vec::new();
    while let Some(mut e) = r.next_entry()? {
        let name = String::from_utf8_lossy(e.path_bytes()).into_owned();
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(l).into_owned());
        let size = e.size();
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(|source| FrameError::Read { position: "in data".into(), source })?;
        out.push((name, link, size, data));
    }
    Ok(out)
}

#[test]
fn reads_what_tar_builder_writes_including_long_names_and_pax() {
    let long = format!("{}/file", "d".repeat(300));
    let long_link = format!("/{}", "t".repeat(200));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    b.append_data(&mut h, "short", &b"hello"[..]).unwrap();
    let mut h = Header::new_gnu();
    h.set_size(3);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "link", &long_link).unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.a", &b"v\nwith newline"[..]), ("uid", b"4000000")]).unwrap();
    let mut h = Header::new_ustar();
    h.set_size(0);
    b.append_data(&mut h, "paxed", &b""[..]).unwrap();
    let stream = b.into_inner().unwrap();

    let got = read_all(&stream).unwrap();
    let names: Vec<_> = got.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(names, ["short", long.as_str(), "link", "paxed"]);
    assert_eq!(got[0].3, b"hello");
    assert_eq!(got[1].3, b"abc");
    assert_eq!(got[2].1.as_deref(), Some(long_link.as_str()));

    let mut r = TarReader::new(&stream[..], HeaderLimits::DEFAULT);
    for _ in 0..3 {
        r.next_entry().unwrap().unwrap();
    }
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!(e.header().uid().unwrap(), 4_000_000);
    let records = e.pax_records();
    assert_eq!(records[0], (&b"SCHILY.xattr.user.a"[..], &b"v\nwith newline"[..]));
}

#[test]
fn unread_data_is_skipped_and_pax_size_overrides_the_header() {
    // The header says 0 bytes; the PAX record says 700, as writers do for
    // files too large for the octal field.
    let mut s = member("x", EntryType::XHeader, &pax_data(&[("size", b"700"), ("path", b"big")]));
    let mut data = header("ignored", EntryType::Regular, 0);
    data.extend_from_slice(&[7; 700]);
    data.resize(data.len().div_ceil(512) * 512, 0);
    s.extend_from_slice(&data);
    s.extend_from_slice(&member("after", EntryType::Regular, b"z"));
    let s = end(s);
    let mut r = TarReader::new(&s[..], HeaderLimits::DEFAULT);
    let e = r.next_entry().unwrap().unwrap();
    assert_eq!((e.path_bytes(), e.size()), (&b"big"[..], 700));
    drop(e); // unread
    let mut e = r.next_entry().unwrap().unwrap();
    assert_eq!(e.path_bytes(), b"after");
    let mut z = String::new();
    e.read_to_string(&mut z).unwrap();
    assert_eq!(z, "z");
    assert!(r.next_entry().unwrap().is_none());
}

/// A stream that has a header and then endless zeros, as a small gzip
/// member can yield them: anything that read the declared size would
/// allocate it.
fn bomb(kind: EntryType, declared: u64) -> impl Read {
    Cursor::new(header("PaxHeaders.0/etc/passwd", kind, declared)).chain(io::repeat(0))
}

#[test]
fn oversized_extension_headers_are_refused_before_they_are_read() {
    for kind in [EntryType::XHeader, EntryType::GNULongName, EntryType::GNULongLink] {
        let mut r = TarReader::new(bomb(kind, 3 << 30), HeaderLimits::DEFAULT);
        let e = r.next_entry().err().expect("refused");
        assert!(matches!(e, FrameError::TooLarge { declared, .. } if declared == 3 << 30), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("PaxHeaders.0/etc/passwd") && msg.contains("3221225472"), "{msg}");
        assert!(msg.contains("at byte 0"), "{msg}");
        assert_eq!(r.position(), 512, "read past the header of {kind:?}");
    }
    // Names are capped at PATH_MAX, extension headers at 1 MiB.
    let mut r = TarReader::new(bomb(EntryType::GNULongName, 4098), HeaderLimits::DEFAULT);
    assert!(matches!(r.next_entry(), Err(FrameError::TooLarge { limit: 4096, .. })));
    let mut r = TarReader::new(bomb(EntryType::XHeader, (1 << 20) + 1), HeaderLimits::DEFAULT);
    assert!(matches!(r.next_entry(), Err(FrameError::TooLarge { limit: 1048576, .. })));
}

#[test]
fn the_cap_covers_all_extension_headers_of_one_entry_together() {
    let limits = HeaderLimits { max_extended: 1000, max_name: 600 };
    let mut s = member("L", EntryType::GNULongName, &[b'a'; 600]);
    s.extend_from_slice(&header("x", EntryType::XHeader, 401));
    let mut r = TarReader::new(Cursor::new(s.clone()).chain(io::repeat(0)), limits);
    assert!(matches!(r.next_entry(), Err(FrameError::TooLarge { limit: 1000, .. })));
    assert_eq!(r.position(), s.len() as u64);
}

#[test]
fn pax_names_past_path_max_are_refused() {
    let name = "n".repeat(5000);
    let s = end([
        member("x", EntryType::XHeader, &pax_data(&[("path", name.as_bytes())])),
        member("f", EntryType::Regular, b""),
    ]
    .concat());
    let e = read_all(&s).unwrap_err();
    assert!(matches!(e, FrameError::TooLarge { what: "entry name", declared: 5000, .. }), "{e:?}");
    let s = end([
        member("x", EntryType::XHeader, &pax_data(&[("linkpath", name.as_bytes())])),
        member("f", EntryType::Symlink, b""),
    ]
    .concat());
    assert!(matches!(read_all(&s), Err(FrameError::TooLarge { what: "link target", .. })));
}

#[test]
fn malformed_streams_are_corrupt_not_panics() {
    let pax = member("x", EntryType::XHeader, b"a");
    let two = end([pax.clone(), member("x", EntryType::XHeader, b""), member("f", EntryType::Regular, b"")].concat());
    assert!(matches!(read_all(&two), Err(FrameError::Corrupt { .. })));
    let dangling = end(member("x", EntryType::XHeader, &pax_data(&[("path", b"p")])));
    assert!(matches!(read_all(&dangling), Err(FrameError::Corrupt { .. })));
    let bad_record =
        end([member("x", EntryType::XHeader, b"99 path=x\n"), member("f", EntryType::Regular, b"")].concat());
    assert!(matches!(read_all(&bad_record), Err(FrameError::Corrupt { .. })));
    let bad_size =
        end([member("x", EntryType::XHeader, &pax_data(&[("size", b"-1")])), member("f", EntryType::Regular, b"")]
            .concat());
    assert!(matches!(read_all(&bad_size), Err(FrameError::Corrupt { .. })));
    let mut bad_sum = member("f", EntryType::Regular, b"x");
    bad_sum[0] ^= 1;
    assert!(matches!(read_all(&end(bad_sum)), Err(FrameError::Corrupt { .. })));
    let sparse = end(member("s", EntryType::GNUSparse, b""));
    assert!(matches!(read_all(&sparse), Err(FrameError::Sparse { .. })));
    let mut truncated = member("f", EntryType::Regular, &[1; 2000]);
    truncated.truncate(1000);
    assert!(read_all(&truncated).unwrap_err().is_read());
    assert!(read_all(&[1u8; 100]).unwrap_err().is_read());
    assert!(read_all(&[]).unwrap().is_empty());
}

#[test]
fn pax_records_take_lengths_at_their_word() {
    assert_eq!(pax_records(b"9 a=b\nc\n\n").unwrap(), vec![(&b"a"[..], &b"b\nc\n"[..])]);
    assert!(pax_records(b"7 a=b\n").is_err());
    assert_eq!(pax_records(b"6 a=b\n").unwrap().len(), 1);
    assert!(pax_records(b"5 =b\n").is_err());
    assert!(pax_records(b"x a=b\n").is_err());
    assert!(pax_records(b"99999999999999999999999 a=b\n").is_err());
    assert!(pax_records(b"3 a\n").is_err());
}
