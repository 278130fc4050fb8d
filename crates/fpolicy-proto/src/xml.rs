//! A small, bounded, borrowed element tree over quick-xml events, and an
//! escaping writer.
//!
//! FPolicy bodies are short documents of nested elements with text leaves and
//! no attributes that matter. Building a flat tree first (one `Vec`, text
//! borrowed from the input unless it carries entities) lets the typed parsers
//! walk children by name in any order, ignore unknown elements, and report
//! the path of a bad field, without a streaming state machine per message.

use std::borrow::Cow;

use quick_xml::events::Event;

use crate::error::{MessageError, Part};

/// Deepest nesting accepted. A SCREEN_REQ is 8 levels deep; anything far
/// deeper is hostile or broken.
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one part (a SCREEN_REQ has about 50).
pub const MAX_ELEMENTS: usize = 4096;

const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Node<'a> {
    name: &'a str,
    text: Cow<'a, str>,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// One parsed XML part (header or body).
#[derive(Debug)]
pub(crate) struct Document<'a> {
    nodes: Vec<Node<'a>>,
    part: Part,
}

/// Index of an element in a [`Document`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeId(u32);

impl<'a> Document<'a> {
    /// Parses one XML document (optional declaration, one root element).
    /// Returns the document and the number of input bytes up to the end of
    /// the root element, so that the header can be split from the body.
    pub(crate) fn parse_prefix(input: &'a str, part: Part) -> Result<(Self, usize), MessageError> {
        let mut reader = quick_xml::Reader::from_str(input);
        // End-name checks are on by default; keep them explicit, since a
        // mismatched end tag means a torn or hostile document.
        reader.config_mut().check_end_names = true;
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(64);
        let mut stack: Vec<u32> = Vec::with_capacity(16);

        let xml_err = |offset: u64, reason: String| MessageError::Xml {
            part,
            offset: offset as usize,
            reason,
        };

        loop {
            let offset = reader.buffer_position();
            let event = reader
                .read_event()
                .map_err(|e| xml_err(reader.error_position(), e.to_string()))?;
            match event {
                Event::Start(start) => {
                    let name = element_name(input, &start, part, offset)?;
                    let id = push_node(&mut nodes, &stack, name, part, offset)?;
                    stack.push(id);
                    if stack.len() > MAX_DEPTH {
                        return Err(MessageError::TooDeep {
                            part,
                            max: MAX_DEPTH,
                        });
                    }
                }
                Event::Empty(start) => {
                    let name = element_name(input, &start, part, offset)?;
                    push_node(&mut nodes, &stack, name, part, offset)?;
                    if stack.is_empty() {
                        return Ok((Document { nodes, part }, reader.buffer_position() as usize));
                    }
                }
                Event::End(_) => {
                    stack.pop();
                    if stack.is_empty() {
                        return Ok((Document { nodes, part }, reader.buffer_position() as usize));
                    }
                }
                Event::Text(text) => {
                    // Line endings normalised as XML 1.0 requires; borrowed
                    // from the input unless a CR had to be rewritten.
                    let s = text.xml10_content();
                    match stack.last() {
                        Some(&top) => append_text(&mut nodes[top as usize], s),
                        None if s.trim().is_empty() => {}
                        None => {
                            return Err(xml_err(offset, "text outside the root element".into()));
                        }
                    }
                }
                Event::CData(data) => match stack.last() {
                    Some(&top) => append_text(&mut nodes[top as usize], data.into_inner()),
                    None => return Err(xml_err(offset, "CDATA outside the root element".into())),
                },
                Event::GeneralRef(reference) => {
                    let resolved = if let Some(ch) = reference
                        .resolve_char_ref()
                        .map_err(|e| xml_err(offset, e.to_string()))?
                    {
                        ch.to_string()
                    } else {
                        let name: &str = &reference;
                        match quick_xml::escape::resolve_predefined_entity(name) {
                            Some(s) => s.to_owned(),
                            None => {
                                return Err(xml_err(offset, format!("unknown entity &{name};")));
                            }
                        }
                    };
                    match stack.last() {
                        Some(&top) => append_text(&mut nodes[top as usize], Cow::Owned(resolved)),
                        None => {
                            return Err(xml_err(
                                offset,
                                "reference outside the root element".into(),
                            ));
                        }
                    }
                }
                Event::DocType(_) => {
                    // No DTDs: nothing legitimate needs one, and entity
                    // definitions are a classic amplification vector.
                    return Err(xml_err(offset, "DOCTYPE is not allowed".into()));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    return Err(if nodes.is_empty() {
                        MessageError::Xml {
                            part,
                            offset: input.len(),
                            reason: "no root element".into(),
                        }
                    } else {
                        MessageError::Xml {
                            part,
                            offset: input.len(),
                            reason: "document ends inside an element".into(),
                        }
                    });
                }
            }
        }
    }

    /// Parses a whole part: one root element and nothing but whitespace after.
    pub(crate) fn parse(input: &'a str, part: Part) -> Result<Self, MessageError> {
        let (doc, end) = Self::parse_prefix(input, part)?;
        let rest = &input[end..];
        if !rest
            .trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0')
            .is_empty()
        {
            return Err(MessageError::Xml {
                part,
                offset: end,
                reason: "content after the root element".into(),
            });
        }
        Ok(doc)
    }

    pub(crate) fn part(&self) -> Part {
        self.part
    }

    pub(crate) fn root(&self) -> NodeId {
        NodeId(0)
    }

    pub(crate) fn name(&self, id: NodeId) -> &'a str {
        self.nodes[id.0 as usize].name
    }

    /// Text of a leaf element, entities resolved. Empty for elements with children.
    pub(crate) fn text(&self, id: NodeId) -> &str {
        &self.nodes[id.0 as usize].text
    }

    pub(crate) fn children(&self, id: NodeId) -> Children<'_, 'a> {
        Children {
            doc: self,
            next: self.nodes[id.0 as usize].first_child,
        }
    }

    pub(crate) fn first_child(&self, id: NodeId) -> Option<NodeId> {
        let c = self.nodes[id.0 as usize].first_child;
        (c != NONE).then_some(NodeId(c))
    }
}

pub(crate) struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let id = self.next;
        self.next = self.doc.nodes[id as usize].next_sibling;
        Some(NodeId(id))
    }
}

/// The element's name as a slice of `input`. quick-xml's events borrow the
/// input, so the name is found by its address; the lookup is checked, and a
/// name that is somehow not inside `input` is reported as malformed.
fn element_name<'a>(
    input: &'a str,
    start: &quick_xml::events::BytesStart<'_>,
    part: Part,
    offset: u64,
) -> Result<&'a str, MessageError> {
    let name = start.name();
    let qname: &str = name.as_ref();
    let begin = (qname.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
    let qname = input
        .get(begin..begin + qname.len())
        .ok_or_else(|| MessageError::Xml {
            part,
            offset: offset as usize,
            reason: "element name outside the input".into(),
        })?;
    // Namespaces play no part in FPolicy; match on the local name.
    Ok(qname.rsplit(':').next().unwrap_or(qname))
}

fn push_node<'a>(
    nodes: &mut Vec<Node<'a>>,
    stack: &[u32],
    name: &'a str,
    part: Part,
    offset: u64,
) -> Result<u32, MessageError> {
    if nodes.len() >= MAX_ELEMENTS {
        return Err(MessageError::TooManyElements {
            part,
            max: MAX_ELEMENTS,
        });
    }
    if stack.is_empty() && !nodes.is_empty() {
        return Err(MessageError::Xml {
            part,
            offset: offset as usize,
            reason: "more than one root element".into(),
        });
    }
    let id = nodes.len() as u32;
    nodes.push(Node {
        name,
        text: Cow::Borrowed(""),
        first_child: NONE,
        last_child: NONE,
        next_sibling: NONE,
    });
    if let Some(&parent) = stack.last() {
        let parent_node = &mut nodes[parent as usize];
        let prev_last = parent_node.last_child;
        parent_node.last_child = id;
        // Text of an element with children is indentation: drop it.
        parent_node.text = Cow::Borrowed("");
        if prev_last == NONE {
            parent_node.first_child = id;
        } else {
            nodes[prev_last as usize].next_sibling = id;
        }
    }
    Ok(id)
}

fn append_text<'a>(node: &mut Node<'a>, more: Cow<'a, str>) {
    if node.first_child != NONE {
        return; // mixed content: only leaves carry values
    }
    if node.text.is_empty() {
        node.text = more;
    } else {
        node.text.to_mut().push_str(&more);
    }
}

/// Appends XML text with the five predefined entities escaped, and control
/// characters that XML 1.0 cannot carry replaced by U+FFFD.
pub(crate) fn escape_into(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            // A literal CR would be normalised to LF by the peer's parser.
            b'\r' => b"&#13;",
            b'\t' | b'\n' => continue,
            0..=0x1f => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A minimal writer for the flat, attribute-free XML FPolicy uses.
pub(crate) struct XmlWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> XmlWriter<'o> {
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        XmlWriter { out }
    }

    pub(crate) fn declaration(&mut self) {
        self.out.extend_from_slice(b"<?xml version=\"1.0\"?>");
    }

    pub(crate) fn open(&mut self, name: &str) {
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    pub(crate) fn text(&mut self, name: &str, value: &str) {
        self.open(name);
        escape_into(self.out, value);
        self.close(name);
    }

    pub(crate) fn uint(&mut self, name: &str, value: u64) {
        self.open(name);
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(value).as_bytes());
        self.close(name);
    }

    pub(crate) fn int(&mut self, name: &str, value: i64) {
        self.open(name);
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(value).as_bytes());
        self.close(name);
    }

    pub(crate) fn bool(&mut self, name: &str, value: bool) {
        self.text(name, if value { "1" } else { "0" });
    }
}
