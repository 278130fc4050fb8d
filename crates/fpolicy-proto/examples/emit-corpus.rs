//! Writes the header and body of every kind of message this crate emits as
//! separate XML files, for validation against NetApp's XSDs (`.ci/run`).
//!
//! Usage: `cargo run -p fpolicy-proto --example emit-corpus -- OUT_DIR`
//! Writes `OUT_DIR/<name>.header.xml` and `OUT_DIR/<name>.body.<root>.xml`,
//! where `<root>` is the body's root element (which selects the XSD).
//! SMB_LNK and SMB_SYM_LNK are skipped: NetApp's schema does not list them.

use std::path::PathBuf;

use fpolicy_proto::{Encoder, Message, frame, sample};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: emit-corpus OUT_DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    let mut encoder = Encoder::new(false);
    let mut written = 0;
    for (name, message) in sample::every_message() {
        if let Message::ScreenReq(req) = &message
            && !req.req_type.in_netapp_schema()
        {
            eprintln!("skip {name}: {} is not in NetApp's schema", req.req_type);
            continue;
        }
        let mut frame_bytes = Vec::new();
        encoder.encode(&message, &mut frame_bytes);
        let payload = std::str::from_utf8(&frame_bytes[frame::PREFIX_LEN..])?;
        let (header, body) = match payload.split_once("\n\n") {
            Some((h, b)) => (h, Some(b)),
            None => (payload, None),
        };
        std::fs::write(dir.join(format!("{name}.header.xml")), header)?;
        if let Some(body) = body {
            let root = body
                .trim_start_matches("<?xml version=\"1.0\"?>")
                .trim_start_matches('<')
                .split(['>', ' ', '/'])
                .next()
                .unwrap_or_default();
            std::fs::write(dir.join(format!("{name}.body.{root}.xml")), body)?;
        }
        written += 1;
    }
    println!("wrote {written} messages to {}", dir.display());
    Ok(())
}
