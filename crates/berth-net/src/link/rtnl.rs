//! A blocking rtnetlink socket: one request at a time, answered by an
//! acknowledgement, one message or a dump. Opened in the calling thread's
//! network namespace (or, with [`Rtnl::open_in`], in another one through a
//! short-lived thread); the socket stays in that namespace.

use std::io;
use std::path::Path;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::netns::{run_in, NetnsError};

/// `NLMSGERR_ATTR_MSG`: the kernel's extended-ack text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Dumps arrive in datagrams of at most a few pages; 64 KiB never truncates.
const RECV_BUF: usize = 64 * 1024;

/// A request the kernel refused (or a socket error), with the kernel's
/// explanation when it gave one (extended ack).
#[derive(Debug)]
pub(crate) struct NlError {
    pub source: io::Error,
    pub detail: Option<String>,
}

impl NlError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl From<io::Error> for NlError {
    fn from(source: io::Error) -> Self {
        Self { source, detail: None }
    }
}

fn bad_answer(what: String) -> NlError {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected netlink answer: {what}")).into()
}

pub(crate) struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Errors carry the kernel's text but not our request back.
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        // Dumps honour the filters in the request header (e.g. ifindex).
        socket.set_netlink_get_strict_chk(true)?;
        Ok(Self { socket, seq: 0, buf: Vec::with_capacity(RECV_BUF) })
    }

    /// A socket in the network namespace at `netns`, opened by a
    /// short-lived thread that joins it.
    pub fn open_in(netns: &Path) -> Result<io::Result<Self>, NetnsError> {
        run_in(netns, Self::open)
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.header.length as usize];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        Ok(self.seq)
    }

    /// Reads answers to request `seq` until `done` says so; other
    /// sequence numbers (answers to an earlier, abandoned request) are
    /// skipped.
    fn receive(
        &mut self,
        seq: u32,
        mut each: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Result<bool, NlError>,
    ) -> Result<(), NlError> {
        loop {
            self.buf.clear();
            let len = self.socket.recv(&mut self.buf, 0)?;
            let data = &self.buf[..len.min(self.buf.len())];
            let mut offset = 0;
            while offset + 16 <= data.len() {
                let frame =
                    NetlinkBuffer::new_checked(&data[offset..]).map_err(|e| bad_answer(format!("bad header: {e}")))?;
                let length = frame.length() as usize;
                let header_seq = frame.sequence_number();
                let flags = frame.flags();
                if length < 16 || offset + length > data.len() {
                    return Err(bad_answer(format!("message length {length}")));
                }
                let bytes = &data[offset..offset + length];
                offset += (length + 3) & !3;
                if header_seq != seq {
                    continue;
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| bad_answer(format!("cannot decode: {e}")))?;
                if let NetlinkPayload::Error(err) = &msg.payload {
                    if err.code.is_some() {
                        let detail = (flags & NLM_F_ACK_TLVS != 0).then(|| ext_ack_text(&err.header)).flatten();
                        return Err(NlError { source: err.to_io(), detail });
                    }
                }
                if each(msg.payload)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends a change (`NewLink`, `DelAddress`, …) and waits for the ack.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.receive(seq, |payload| match payload {
            NetlinkPayload::Error(_) => Ok(true),
            NetlinkPayload::Noop => Ok(false),
            other => Err(bad_answer(format!("{other:?} instead of an ack"))),
        })
    }

    /// Sends a `Get…` request for one object and returns the answer.
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> Result<RouteNetlinkMessage, NlError> {
        let seq = self.send(msg, 0)?;
        let mut answer = None;
        self.receive(seq, |payload| match payload {
            NetlinkPayload::InnerMessage(m) => {
                answer = Some(m);
                Ok(true)
            }
            NetlinkPayload::Noop => Ok(false),
            other => Err(bad_answer(format!("{other:?} instead of an object"))),
        })?;
        answer.ok_or_else(|| bad_answer("no object".into()))
    }

    /// Sends a dump request and collects every answer.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut all = Vec::new();
        self.receive(seq, |payload| match payload {
            NetlinkPayload::InnerMessage(m) => {
                all.push(m);
                Ok(false)
            }
            NetlinkPayload::Done(_) => Ok(true),
            NetlinkPayload::Noop => Ok(false),
            other => Err(bad_answer(format!("{other:?} in a dump"))),
        })?;
        Ok(all)
    }
}

/// The `NLMSGERR_ATTR_MSG` text of an error's payload (our request's
/// 16-byte header, as `NETLINK_CAP_ACK` leaves it, then attributes).
fn ext_ack_text(payload: &[u8]) -> Option<String> {
    let attrs = payload.get(16..)?;
    NlasIterator::new(attrs).filter_map(Result::ok).find(|nla| nla.kind() == NLMSGERR_ATTR_MSG).map(|nla| {
        let v = nla.value();
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_text_is_read_after_the_request_header() {
        let mut payload = vec![0u8; 16];
        let text = b"Nexthop has invalid gateway\0";
        let len = 4 + text.len();
        payload.extend_from_slice(&(len as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        payload.resize(16 + ((len + 3) & !3), 0);
        assert_eq!(ext_ack_text(&payload).as_deref(), Some("Nexthop has invalid gateway"));
        assert_eq!(ext_ack_text(&payload[..16]), None);
        assert_eq!(ext_ack_text(&[]), None);
    }
}
