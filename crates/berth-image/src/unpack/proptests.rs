//! Property tests of the layer unpacker and its tar framing: arbitrary and
//! mutated streams never panic, never write outside the target directory,
//! leave it empty when refused, and never read (so never buffer) more of a
//! member's extension headers than the caps allow.

use super::tests::Layer;
use super::*;
use crate::tarstream::{HeaderLimits, TarReader};
use proptest::prelude::*;
use tempfile::TempDir;

/// A valid layer to mutate: files, dirs, links, a PAX record, whiteouts.
fn seed() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n")
        .symlink("etc/link", "passwd")
        .hardlink("etc/hard", "etc/passwd")
        .dir("usr/", 0o755)
        .marker("usr/.wh.gone")
        .file("usr/big", 0o755, &[7; 3000]);
    l.finish()
}

/// Unpacks `stream` into a directory beside a sibling; checks that nothing
/// appeared outside the target and that a refusal leaves the target empty.
fn unpack_contained(stream: &[u8]) {
    let parent = TempDir::new().unwrap();
    let dest = parent.path().join("dest");
    let outside = parent.path().join("outside");
    fs::create_dir(&dest).unwrap();
    fs::create_dir(&outside).unwrap();
    let limits = UnpackLimits { max_bytes: 1 << 20, max_entries: 1000, allow_devices: false };
    let result = unpack_layer(stream, Compression::None, &dest, &limits);
    let mut beside: Vec<_> = fs::read_dir(parent.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    beside.sort();
    assert_eq!(beside, ["dest", "outside"], "something was written beside the target");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "something was written outside");
    if let Err(e) = result {
        assert!(fs::read_dir(&dest).unwrap().next().is_none(), "refused ({e}) but not emptied");
        assert!(!e.to_string().contains('\n'), "message spans lines: {e}");
    }
}

/// Tar header kinds worth combining: extension headers and members.
fn kind() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![b'x', b'L', b'K', b'g', b'0', b'5', b'2', b'1', b'S', b'3'])
}

fn header(kind: u8, size: u64, name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(EntryType::new(kind));
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96)
}

proptest! {
    // 96 cases in CI; PROPTEST_CASES=100000 for a longer run.
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_escape(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        unpack_contained(&bytes);
    }

    #[test]
    fn mutated_layers_never_panic_or_escape(
        flips in prop::collection::vec((0usize..8192, any::<u8>()), 1..12),
        cut in prop::option::of(0usize..8192),
    ) {
        let mut stream = seed();
        for (at, value) in flips {
            let at = at % stream.len();
            stream[at] = value;
            // Keep some mutated headers valid, so the unpacker sees them.
            let block = at / 512 * 512;
            if value % 2 == 0 && block + 512 <= stream.len() {
                let mut h = tar::Header::from_byte_slice(&stream[block..block + 512]).clone();
                h.set_cksum();
                stream[block..block + 512].copy_from_slice(h.as_bytes());
            }
        }
        if let Some(cut) = cut {
            stream.truncate(cut % (stream.len() + 1));
        }
        unpack_contained(&stream);
    }

    /// Whatever headers come first and whatever sizes they declare, with
    /// endless zeros behind them, the reader returns after reading at most
    /// the headers plus one member's capped extension data.
    #[test]
    fn extension_headers_are_never_read_past_the_caps(
        heads in prop::collection::vec((kind(), 0u64..(1 << 40)), 1..6),
    ) {
        let limits = HeaderLimits { max_extended: 64 << 10, max_name: 4096 };
        let mut prefix = Vec::new();
        for (kind, size) in &heads {
            prefix.extend_from_slice(&header(*kind, *size, "h"));
        }
        let stream = io::Cursor::new(prefix).chain(io::repeat(0));
        let mut r = TarReader::new(stream, limits);
        let _ = r.next_entry().map(|e| e.map(|e| e.size()));
        // At most three extension headers (one of each kind) are read per
        // member, each padded to a block.
        let bound = 512 * heads.len() as u64 + limits.max_extended + 3 * 512;
        prop_assert!(r.position() <= bound, "read {} bytes, bound {}", r.position(), bound);
    }

    #[test]
    fn pax_records_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = crate::tarstream::pax_records(&data);
    }
}
