//! Leaf-value helpers shared by the message parsers. Numbers and booleans are
//! trimmed (captures carry `1 `); strings are kept exactly.

use crate::error::MessageError;
use crate::xml::{Document, NodeId};

fn shorten(value: &str) -> String {
    value.chars().take(64).collect()
}

pub(crate) fn invalid(
    doc: &Document<'_>,
    id: NodeId,
    parent: &str,
    expected: &'static str,
) -> MessageError {
    MessageError::InvalidValue {
        path: format!("{parent}/{}", doc.name(id)),
        value: shorten(doc.text(id)),
        expected,
    }
}

pub(crate) fn uint<T: TryFrom<u64>>(
    doc: &Document<'_>,
    id: NodeId,
    parent: &str,
) -> Result<T, MessageError> {
    decimal(doc.text(id).trim_ascii())
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| invalid(doc, id, parent, "an unsigned integer"))
}

/// What `u64::from_str` accepts (digits, an optional leading `+`, no
/// overflow), without its generic machinery: a SCREEN_REQ has a dozen
/// numbers.
fn decimal(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |value, b| {
        let digit = b.wrapping_sub(b'0');
        (digit <= 9).then_some(())?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// An unsigned integer in a nillable element: empty means absent.
pub(crate) fn opt_uint<T: TryFrom<u64>>(
    doc: &Document<'_>,
    id: NodeId,
    parent: &str,
) -> Result<Option<T>, MessageError> {
    if doc.text(id).trim_ascii().is_empty() {
        return Ok(None);
    }
    uint(doc, id, parent).map(Some)
}

pub(crate) fn int(doc: &Document<'_>, id: NodeId, parent: &str) -> Result<i64, MessageError> {
    doc.text(id)
        .trim_ascii()
        .parse::<i64>()
        .map_err(|_| invalid(doc, id, parent, "an integer"))
}

/// xs:boolean: `0`, `1`, `false`, `true`.
pub(crate) fn boolean(doc: &Document<'_>, id: NodeId, parent: &str) -> Result<bool, MessageError> {
    match doc.text(id).trim_ascii() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(invalid(doc, id, parent, "a boolean (0 or 1)")),
    }
}

/// A nillable string: empty means absent.
pub(crate) fn opt_string(doc: &Document<'_>, id: NodeId) -> Option<String> {
    let t = doc.text(id);
    (!t.is_empty()).then(|| t.to_owned())
}

pub(crate) fn string(doc: &Document<'_>, id: NodeId) -> String {
    doc.text(id).to_owned()
}

pub(crate) fn require<T>(value: Option<T>, path: &str) -> Result<T, MessageError> {
    value.ok_or_else(|| MessageError::MissingElement {
        path: path.to_owned(),
    })
}

/// Checks the body's root element name.
pub(crate) fn expect_root(
    doc: &Document<'_>,
    expected: &'static str,
) -> Result<NodeId, MessageError> {
    let root = doc.root();
    if doc.name(root) != expected {
        return Err(MessageError::UnexpectedRoot {
            part: doc.part(),
            expected,
            found: shorten(doc.name(root)),
        });
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_accepts_what_u64_from_str_accepts() {
        for text in [
            "",
            "+",
            "-1",
            "0",
            "+0",
            "007",
            "42",
            "1 2",
            "x",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "+18446744073709551615",
            "٣",
        ] {
            assert_eq!(decimal(text), text.parse::<u64>().ok(), "{text:?}");
        }
    }
}
