//! Framing for interactive streams (`exec -it`): after the HTTP connection
//! is upgraded, both sides exchange frames of one type byte, a big-endian
//! `u32` payload length and the payload.
//!
//! A client sends [`Frame::Stdin`] and [`Frame::Resize`]; the daemon sends
//! [`Frame::Output`], then one [`Frame::Exit`] or [`Frame::Error`] last.
//! Frames are small and self-delimiting, so terminal bytes (any value) and
//! control messages share one connection without escaping.

use thiserror::Error;

/// The largest payload accepted; bigger frames mean a confused peer.
pub const MAX_PAYLOAD: usize = 1 << 20;

const STDIN: u8 = 0;
const RESIZE: u8 = 1;
const STDIN_CLOSED: u8 = 2;
const OUTPUT: u8 = 3;
const EXIT: u8 = 4;
const ERROR: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes typed by the user, for the process's terminal.
    Stdin(Vec<u8>),
    /// The user's terminal changed size.
    Resize { cols: u16, rows: u16 },
    /// The user's input ended.
    StdinClosed,
    /// Bytes the process wrote to its terminal.
    Output(Vec<u8>),
    /// The process ended with this exit code; the last frame.
    Exit(i32),
    /// The exec failed before or while running; the last frame.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("unknown frame type {0}; client and daemon versions differ")]
    UnknownType(u8),
    #[error("frame of {0} bytes is larger than the limit of {MAX_PAYLOAD}")]
    TooLarge(usize),
    #[error("frame type {kind} has a payload of {len} bytes, expected {expected}")]
    BadLength { kind: u8, len: usize, expected: usize },
}

impl Frame {
    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Frame::Stdin(b) => (STDIN, b.clone()),
            Frame::Resize { cols, rows } => (RESIZE, [cols.to_be_bytes(), rows.to_be_bytes()].concat()),
            Frame::StdinClosed => (STDIN_CLOSED, Vec::new()),
            Frame::Output(b) => (OUTPUT, b.clone()),
            Frame::Exit(code) => (EXIT, code.to_be_bytes().to_vec()),
            Frame::Error(e) => (ERROR, e.as_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn decode(kind: u8, payload: Vec<u8>) -> Result<Frame, FrameError> {
        let exact = |expected: usize| {
            if payload.len() == expected {
                Ok(())
            } else {
                Err(FrameError::BadLength { kind, len: payload.len(), expected })
            }
        };
        Ok(match kind {
            STDIN => Frame::Stdin(payload),
            RESIZE => {
                exact(4)?;
                Frame::Resize {
                    cols: u16::from_be_bytes([payload[0], payload[1]]),
                    rows: u16::from_be_bytes([payload[2], payload[3]]),
                }
            }
            STDIN_CLOSED => {
                exact(0)?;
                Frame::StdinClosed
            }
            OUTPUT => Frame::Output(payload),
            EXIT => {
                exact(4)?;
                Frame::Exit(i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]))
            }
            ERROR => Frame::Error(String::from_utf8_lossy(&payload).into_owned()),
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

/// Collects bytes as they arrive and yields whole frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until one has fully arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Frame::decode(kind, payload).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Stdin(b"ls\r".to_vec()),
            Frame::Resize { cols: 132, rows: 43 },
            Frame::StdinClosed,
            Frame::Output(vec![0, 255, 27, b'[']),
            Frame::Exit(-1),
            Frame::Error("no such container".into()),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let mut d = Decoder::default();
        for f in all_kinds() {
            d.push(&f.encode());
        }
        for f in all_kinds() {
            assert_eq!(d.next_frame().unwrap(), Some(f));
        }
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn bad_frames_are_named() {
        let mut d = Decoder::default();
        d.push(&[9, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::UnknownType(9)));
        let mut d = Decoder::default();
        d.push(&[RESIZE, 0, 0, 0, 1, 7]);
        assert_eq!(d.next_frame(), Err(FrameError::BadLength { kind: RESIZE, len: 1, expected: 4 }));
        let mut d = Decoder::default();
        d.push(&[OUTPUT, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge(_))));
    }

    proptest! {
        /// However the bytes are split on the way, the same frames come out.
        #[test]
        fn split_anywhere(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..400, code in any::<i32>()) {
            let frames = vec![Frame::Output(data.clone()), Frame::Stdin(data), Frame::Exit(code)];
            let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
            let cut = cut.min(wire.len());
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, frames);
        }
    }
}
