//! Reading tar streams whose headers are bounded before they are read.
//!
//! Why not `tar::Archive`: it reads a GNU long name, long link or PAX
//! extended header whole into memory (`read_to_end`) whatever size the
//! header declares, so one 512-byte header claiming 3 GiB, followed by a few
//! megabytes of gzip'd zeros, makes it allocate 3 GiB. This reader does the
//! framing itself (512-byte blocks, extension headers, padding) and checks
//! what each extension header declares *before* reading a byte of it;
//! `tar::Header` still decodes the fields of each block.
//!
//! Semantics, as GNU tar and Go's `archive/tar` read streams:
//! - an all-zero block ends the archive (what follows is the caller's);
//! - `L` (GNU long name), `K` (GNU long link) and `x` (PAX) headers describe
//!   the next member and are not returned; at most one of each per member;
//!   PAX `path`/`linkpath` win over GNU long names, which win over the
//!   header's own fields; PAX `size`, `uid` and `gid` override the header's;
//! - `g` (PAX global) headers are returned as entries for the caller to skip;
//! - GNU sparse members are refused (no OCI image builder writes them).
//!
//! It must never allocate more than [`HeaderLimits`] allows for one member's
//! extension headers, whatever the stream says.

use std::borrow::Cow;
use std::io::{self, Read};

use tar::{EntryType, Header};

const BLOCK: u64 = 512;

/// Caps on the metadata a tar stream may attach to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Most bytes of extension headers (PAX records, GNU long name and long
    /// link together) one member may carry.
    pub max_extended: u64,
    /// Longest name or link target a member may have (PATH_MAX).
    pub max_name: u64,
}

impl HeaderLimits {
    /// 1 MiB of extended headers per member: enough for names at PATH_MAX
    /// and hundreds of xattrs (file capabilities, ACLs), far below anything
    /// that could hurt the daemon.
    pub const DEFAULT: Self = Self { max_extended: 1 << 20, max_name: 4096 };
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot read the tar stream {position}: {source}")]
    Read { position: String, source: io::Error },
    #[error("tar header {position} is corrupt: {detail}")]
    Corrupt { position: String, detail: String },
    #[error("{what} {header:?} {position} declares {declared} bytes, over the limit of {limit} bytes berth reads for one entry")]
    TooLarge { what: &'static str, header: String, position: String, declared: u64, limit: u64 },
    #[error("tar entry {entry:?} {position} is a GNU sparse file, which berth does not read; rebuild the archive without --sparse")]
    Sparse { entry: String, position: String },
}

impl FrameError {
    /// Whether the stream itself could not be read (truncated, or the
    /// decompressor failed), as opposed to a header berth refuses.
    pub fn is_read(&self) -> bool {
        matches!(self, Self::Read { .. })
    }
}

/// Reads a tar stream member by member. See the module docs.
pub struct TarReader<R> {
    inner: R,
    limits: HeaderLimits,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Data bytes of the current member not yet read by the caller.
    remaining: u64,
    /// Padding after the current member's data.
    padding: u64,
    /// Name of the last member returned, for error messages.
    last: Option<String>,
    done: bool,
}

/// One member of the stream. Reading it yields the member's data.
pub struct Entry<'a, R: Read> {
    header: Header,
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
    size: u64,
    reader: &'a mut TarReader<R>,
}

/// Extension headers collected for the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
    bytes: u64,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R, limits: HeaderLimits) -> Self {
        Self { inner, limits, pos: 0, remaining: 0, padding: 0, last: None, done: false }
    }

    /// The underlying reader, positioned after the end-of-archive block (or
    /// wherever reading stopped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Bytes read from the underlying stream so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn where_(&self, at: u64) -> String {
        match &self.last {
            Some(name) => format!("at byte {at} (after entry {name:?})"),
            None => format!("at byte {at} (before the first entry)"),
        }
    }

    /// The next member, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>, FrameError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let at = self.pos;
            let Some(header) = self.read_header()? else {
                self.done = true;
                if pending.long_name.is_some() || pending.long_link.is_some() || pending.pax.is_some() {
                    let detail = "the archive ends after extension headers, before the entry they describe".into();
                    return Err(FrameError::Corrupt { position: self.where_(at), detail });
                }
                return Ok(None);
            };
            let kind = header.entry_type();
            let corrupt = |this: &Self, detail: String| FrameError::Corrupt { position: this.where_(at), detail };
            // tar's own messages quote the raw header name; never echo it.
            let declared = header.entry_size().map_err(|_| corrupt(self, "its size field is not a number".into()))?;
            let slot = match kind {
                EntryType::GNULongName => Some(("GNU long name header", &mut pending.long_name, true)),
                EntryType::GNULongLink => Some(("GNU long link header", &mut pending.long_link, true)),
                EntryType::XHeader => Some(("PAX extended header", &mut pending.pax, false)),
                _ => None,
            };
            if let Some((what, slot, is_name)) = slot {
                let header_name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
                let too_large = |limit: u64| FrameError::TooLarge {
                    what,
                    header: header_name.clone(),
                    position: self.where_(at),
                    declared,
                    limit,
                };
                // A name is stored with its terminating NUL.
                if is_name && declared > self.limits.max_name + 1 {
                    return Err(too_large(self.limits.max_name));
                }
                if pending.bytes.saturating_add(declared) > self.limits.max_extended {
                    return Err(too_large(self.limits.max_extended));
                }
                if slot.is_some() {
                    return Err(corrupt(self, format!("two {what}s describe the same entry")));
                }
                pending.bytes += declared;
                // Bounded by the checks above.
                let mut data = vec![0; declared as usize];
                self.read_exact_at(&mut data, at)?;
                self.discard(padding_of(declared), at)?;
                *slot = Some(data);
                continue;
            }
            if matches!(kind, EntryType::GNUSparse) {
                let entry = String::from_utf8_lossy(&header.path_bytes()).into_owned();
                return Err(FrameError::Sparse { entry, position: self.where_(at) });
            }
            return self.member(header, pending, declared, at).map(Some);
        }
    }

    /// Builds the member from its header and the extension headers before it.
    fn member(
        &mut self,
        mut header: Header,
        pending: Pending,
        declared: u64,
        at: u64,
    ) -> Result<Entry<'_, R>, FrameError> {
        let mut size = declared;
        let mut path = match pending.long_name {
            Some(mut name) => {
                truncate_at_nul(&mut name);
                name
            }
            None => header.path_bytes().into_owned(),
        };
        let mut link = match pending.long_link {
            Some(mut name) => {
                truncate_at_nul(&mut name);
                Some(name)
            }
            None => header.link_name_bytes().map(Cow::into_owned),
        };
        let corrupt = |this: &Self, detail: String| FrameError::Corrupt { position: this.where_(at), detail };
        if let Some(pax) = &pending.pax {
            let records = pax_records(pax).map_err(|detail| corrupt(self, format!("PAX header: {detail}")))?;
            for (key, value) in records {
                let number = |key: &str| -> Result<u64, FrameError> {
                    let text = std::str::from_utf8(value)
                        .ok()
                        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
                    let value = text.and_then(|v| v.parse::<u64>().ok());
                    value.ok_or_else(|| corrupt(self, format!("PAX record {key} is not a number")))
                };
                match key {
                    b"path" => path = value.to_vec(),
                    b"linkpath" => link = Some(value.to_vec()),
                    b"size" => size = number("size")?,
                    b"uid" => header.set_uid(number("uid")?),
                    b"gid" => header.set_gid(number("gid")?),
                    _ => {}
                }
            }
        }
        for (what, name) in [("name", Some(&path)), ("link target", link.as_ref())] {
            let len = name.map_or(0, |n| n.len() as u64);
            if len > self.limits.max_name {
                return Err(FrameError::TooLarge {
                    what: if what == "name" { "entry name" } else { "link target" },
                    header: String::from_utf8_lossy(&path[..path.len().min(64)]).into_owned() + "…",
                    position: self.where_(at),
                    declared: len,
                    limit: self.limits.max_name,
                });
            }
        }
        self.remaining = size;
        self.padding = padding_of(size);
        self.last = Some(String::from_utf8_lossy(&path).into_owned());
        Ok(Entry { header, path, link, pax: pending.pax, size, reader: self })
    }

    /// Reads one header block; `None` at the end of the archive (a zero
    /// block, or the stream ending cleanly between members).
    fn read_header(&mut self) -> Result<Option<Header>, FrameError> {
        let at = self.pos;
        let mut block = [0u8; BLOCK as usize];
        let mut got = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(FrameError::Read { position: self.where_(at), source }),
            }
        }
        self.pos += got as u64;
        if got == 0 {
            return Ok(None);
        }
        if got < block.len() {
            let source = io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ends inside a header");
            return Err(FrameError::Read { position: self.where_(at), source });
        }
        if block.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let header = Header::from_byte_slice(&block).clone();
        let sum: u32 = block[..148].iter().chain(&block[156..]).map(|b| u32::from(*b)).sum::<u32>() + 8 * 32;
        // tar's own messages quote the raw header name; never echo it.
        let stored = header.cksum().map_err(|_| FrameError::Corrupt {
            position: self.where_(at),
            detail: "its checksum field is not a number (not a tar stream, or a damaged one)".into(),
        })?;
        if sum != stored {
            let detail = "header checksum mismatch (not a tar stream, or a damaged one)".into();
            return Err(FrameError::Corrupt { position: self.where_(at), detail });
        }
        Ok(Some(header))
    }

    fn read_exact_at(&mut self, buf: &mut [u8], at: u64) -> Result<(), FrameError> {
        self.inner.read_exact(buf).map_err(|source| FrameError::Read { position: self.where_(at), source })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads and drops `n` bytes.
    fn discard(&mut self, n: u64, at: u64) -> Result<(), FrameError> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|source| FrameError::Read { position: self.where_(at), source })?;
        self.pos += copied;
        if copied < n {
            let source = io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ends inside an entry");
            return Err(FrameError::Read { position: self.where_(at), source });
        }
        Ok(())
    }

    /// Skips what the caller left unread of the current member.
    fn skip_rest(&mut self) -> Result<(), FrameError> {
        let n = self.remaining + self.padding;
        (self.remaining, self.padding) = (0, 0);
        if n > 0 {
            self.discard(n, self.pos)?;
        }
        Ok(())
    }
}

/// One PAX record: key and value, as bytes.
pub type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// Splits PAX extended header data into its `LEN KEY=VALUE\n` records.
/// The length prefix counts the whole record, so values may hold any byte
/// (newlines included, as binary xattr values do).
pub fn pax_records(mut data: &[u8]) -> Result<Vec<PaxRecord<'_>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data.iter().take(20).position(|b| *b == b' ').ok_or("a record has no length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("a record's length is not a number")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(format!("a record's length {len} does not fit the data"));
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|b| *b == b'=').ok_or("a record has no '='")?;
        if eq == 0 {
            return Err("a record has an empty key".into());
        }
        out.push((&record[..eq], &record[eq + 1..]));
        data = &data[len..];
    }
    Ok(out)
}

fn padding_of(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn truncate_at_nul(name: &mut Vec<u8>) {
    if let Some(i) = name.iter().position(|b| *b == 0) {
        name.truncate(i);
    }
}

impl<R: Read> Entry<'_, R> {
    /// The member's header, with PAX `uid`/`gid` applied.
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn entry_type(&self) -> EntryType {
        self.header.entry_type()
    }

    /// The member's full name (PAX path, GNU long name or header fields).
    pub fn path_bytes(&self) -> &[u8] {
        &self.path
    }

    /// The link target, when the member has one.
    pub fn link_name_bytes(&self) -> Option<&[u8]> {
        self.link.as_deref()
    }

    /// The PAX records (key, value) that apply to this member; already
    /// checked to parse when the member was read.
    pub fn pax_records(&self) -> Vec<PaxRecord<'_>> {
        self.pax.as_deref().map(|p| pax_records(p).unwrap_or_default()).unwrap_or_default()
    }

    /// Bytes of data the member holds (after any PAX `size`).
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(r.remaining).unwrap_or(usize::MAX));
        let n = r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ends inside an entry's data"));
        }
        r.remaining -= n as u64;
        r.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
