//! The client side of RELP, the Reliable Event Logging Protocol that
//! rsyslog's `imrelp` serves: every message is a numbered transaction the
//! server answers with `rsp 200` once it has taken the message.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR counts from 1
//! to 999,999,999 and wraps to 1; DATALEN is DATA's length in bytes. A
//! session starts with `open` (offers `relp_version=0`, `commands=syslog`),
//! carries `syslog` frames, and ends with `close`; the server may end it
//! with `serverclose` (TXNR 0). Encoding and parsing here are pure; the
//! session in `mod.rs` does the I/O.

/// Largest TXNR; the next is 1.
pub const MAX_TXNR: u32 = 999_999_999;
/// Largest frame the client accepts from the server (responses are tiny;
/// an `open` answer lists offers).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The TXNR after `txnr`.
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR { 1 } else { txnr + 1 }
}

/// Appends one frame to `out`.
pub fn encode(txnr: u32, command: &str, data: &[u8], out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(n.format(txnr).as_bytes());
    out.push(b' ');
    out.extend_from_slice(command.as_bytes());
    out.push(b' ');
    out.extend_from_slice(n.format(data.len()).as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// The `open` offers of this client.
pub fn open_offers(version: &str) -> Vec<u8> {
    format!("relp_version=0\nrelp_software=fpolicy-bridge,{version},https://github.com/fpolicy-bridge/fpolicy-bridge\ncommands=syslog").into_bytes()
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

impl Frame {
    /// For `rsp` frames: the status code at the start of DATA (`200 OK`).
    pub fn status(&self) -> Option<u16> {
        let code = self.data.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("RELP frame from the server is malformed: {0}")]
    Malformed(&'static str),
    #[error("RELP frame from the server is larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// Parses one frame from the start of `buf`: `Ok(None)` when more bytes
/// are needed, else the frame and the bytes it used.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let mut at = 0;
    let mut token = |what: &'static str, max: usize| -> Result<Option<&[u8]>, FrameError> {
        let rest = &buf[at..];
        match rest
            .iter()
            .take(max + 1)
            .position(|&b| b == b' ' || b == b'\n')
        {
            Some(i) => {
                let t = &rest[..i];
                // A zero DATALEN may end the frame right after it.
                at += i + usize::from(rest[i] == b' ');
                if t.is_empty() {
                    return Err(FrameError::Malformed(what));
                }
                Ok(Some(t))
            }
            None if rest.len() > max => Err(FrameError::Malformed(what)),
            None => Ok(None),
        }
    };
    let number = |t: &[u8], what| -> Result<usize, FrameError> {
        if t.len() > 9 || !t.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::Malformed(what));
        }
        Ok(t.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
    };
    let Some(txnr) = token("transaction number", 9)? else {
        return Ok(None);
    };
    let txnr = number(txnr, "transaction number")? as u32;
    let Some(command) = token("command", 32)? else {
        return Ok(None);
    };
    if !command.iter().all(u8::is_ascii_alphabetic) {
        return Err(FrameError::Malformed("command"));
    }
    let command = String::from_utf8_lossy(command).into_owned();
    let Some(len) = token("data length", 9)? else {
        return Ok(None);
    };
    let len = number(len, "data length")?;
    if len > MAX_RESPONSE {
        return Err(FrameError::TooLarge);
    }
    if len == 0 {
        // `TXNR rsp 0 LF`.
        return match buf.get(at) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((
                Frame {
                    txnr,
                    command,
                    data: Vec::new(),
                },
                at + 1,
            ))),
            Some(_) => Err(FrameError::Malformed("trailer")),
        };
    }
    if buf.get(at - 1) != Some(&b' ') {
        return Err(FrameError::Malformed("data length"));
    }
    let Some(data) = buf.get(at..at + len) else {
        return Ok(None);
    };
    match buf.get(at + len) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((
            Frame {
                txnr,
                command,
                data: data.to_vec(),
            },
            at + len + 1,
        ))),
        Some(_) => Err(FrameError::Malformed("trailer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_encode_as_the_protocol_says() {
        let mut out = Vec::new();
        encode(1, "syslog", b"<134>1 x", &mut out);
        encode(2, "close", b"", &mut out);
        assert_eq!(out, b"1 syslog 8 <134>1 x\n2 close 0\n");
        assert_eq!(next_txnr(MAX_TXNR), 1);
        assert_eq!(next_txnr(7), 8);
    }

    #[test]
    fn responses_parse_whole_or_wait_for_more() {
        let buf = b"1 rsp 6 200 OK\n0 serverclose 0\n2 rsp 0\n";
        let (f, used) = parse(buf).unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.status()),
            (1, "rsp", Some(200))
        );
        let (f, used2) = parse(&buf[used..]).unwrap().unwrap();
        assert_eq!((f.txnr, f.command.as_str()), (0, "serverclose"));
        let (f, _) = parse(&buf[used + used2..]).unwrap().unwrap();
        assert_eq!((f.txnr, f.data.len()), (2, 0));
        for cut in 0..15 {
            assert_eq!(parse(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [
            &b"x rsp 6 200 OK\n"[..],
            b"1 rsp 6 200 OKX",
            b"1 r$p 6 200 OK\n",
            b"1 rsp 99999999999 x",
            b"1 rsp 999999 x",
            b" rsp 1 x\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn any_frame_round_trips(
            txnr in 0u32..=MAX_TXNR,
            command in "[a-z]{1,12}",
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut buf = Vec::new();
            encode(txnr, &command, &data, &mut buf);
            let (f, used) = parse(&buf).unwrap().unwrap();
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!(f, Frame { txnr, command, data });
        }

        #[test]
        fn no_input_panics_or_reads_past_its_end(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some((_, used))) = parse(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
