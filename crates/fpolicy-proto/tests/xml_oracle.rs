//! Differential test: the crate's XML parser against quick-xml.
//!
//! Generated well-formed documents (entities, character references,
//! comments, CDATA, declarations, indentation, Unicode) must give the same
//! element outline from both. Mutated documents must never panic, and when
//! the crate's parser accepts one, quick-xml must accept it with the same
//! outline (the crate's parser may be stricter, never looser).

use fpolicy_proto::xml::{OutlineEntry, outline};
use proptest::collection::vec;
use proptest::prelude::*;
use quick_xml::events::Event;

/// The same outline, built from quick-xml events.
fn oracle(input: &str) -> Result<Vec<OutlineEntry>, String> {
    let mut reader = quick_xml::Reader::from_str(input);
    let mut out: Vec<OutlineEntry> = Vec::new();
    // (index in out, has children)
    let mut stack: Vec<(usize, bool)> = Vec::new();
    let mut done = false;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        if done {
            match event {
                Event::Eof => return Ok(out),
                Event::Text(t) if t.xml10_content().trim().is_empty() => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                other => return Err(format!("content after root: {other:?}")),
            }
        }
        let open = |out: &mut Vec<OutlineEntry>, stack: &mut Vec<(usize, bool)>, name: &str| {
            if let Some(top) = stack.last_mut() {
                if !top.1 {
                    out[top.0].text.clear();
                }
                top.1 = true;
            }
            out.push(OutlineEntry {
                depth: stack.len(),
                name: name.to_owned(),
                text: String::new(),
            });
            out.len() - 1
        };
        let append =
            |out: &mut Vec<OutlineEntry>, stack: &[(usize, bool)], s: &str| -> Result<(), String> {
                match stack.last() {
                    Some(&(i, false)) => {
                        out[i].text.push_str(s);
                        Ok(())
                    }
                    Some(_) => Ok(()),
                    None if s.trim().is_empty() => Ok(()),
                    None => Err("text outside root".into()),
                }
            };
        match event {
            Event::Start(s) => {
                let name = s.name();
                let i = open(&mut out, &mut stack, name.as_ref());
                stack.push((i, false));
            }
            Event::Empty(s) => {
                let name = s.name();
                open(&mut out, &mut stack, name.as_ref());
                if stack.is_empty() {
                    done = true;
                }
            }
            Event::End(_) => {
                stack.pop();
                if stack.is_empty() {
                    done = true;
                }
            }
            Event::Text(t) => append(&mut out, &stack, &t.xml10_content())?,
            Event::CData(c) => append(&mut out, &stack, &c.into_inner())?,
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| format!("unknown entity {}", &*r))?
                        .to_owned(),
                };
                append(&mut out, &stack, &s)?;
            }
            Event::DocType(_) => return Err("doctype".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => return Err("eof inside document".into()),
        }
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Leaf(String, Vec<Piece>),
    Node(String, Vec<Tree>),
}

#[derive(Debug, Clone)]
enum Piece {
    Plain(String),
    Entity(&'static str),
    CharRef(char, bool),
    CData(String),
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.-]{0,8}"
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[^<&\r\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,12}"
            .prop_filter("no ]]>", |s| !s.contains("]]>"))
            .prop_map(Piece::Plain),
        prop::sample::select(vec!["amp", "lt", "gt", "quot", "apos"]).prop_map(Piece::Entity),
        (prop::char::range('\u{20}', '\u{2FFFF}'), any::<bool>())
            .prop_filter("xml char", |(c, _)| *c != '\u{FFFE}' && *c != '\u{FFFF}')
            .prop_map(|(c, hex)| Piece::CharRef(c, hex)),
        "[a-z <>&]{0,8}".prop_map(Piece::CData),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (name(), vec(piece(), 0..4)).prop_map(|(n, p)| Tree::Leaf(n, p));
    leaf.prop_recursive(5, 40, 6, |inner| {
        (name(), vec(inner, 0..6)).prop_map(|(n, c)| Tree::Node(n, c))
    })
}

fn render(t: &Tree, indent: bool, depth: usize, out: &mut String) {
    let pad = |out: &mut String| {
        if indent {
            out.push('\n');
            out.push_str(&"\t".repeat(depth));
        }
    };
    match t {
        Tree::Leaf(n, pieces) => {
            pad(out);
            if pieces.is_empty() && depth % 2 == 1 {
                out.push_str(&format!("<{n}/>"));
                return;
            }
            out.push_str(&format!("<{n}>"));
            for p in pieces {
                match p {
                    Piece::Plain(s) => out.push_str(&s.replace('>', "&gt;")),
                    Piece::Entity(e) => out.push_str(&format!("&{e};")),
                    Piece::CharRef(c, true) => out.push_str(&format!("&#x{:X};", *c as u32)),
                    Piece::CharRef(c, false) => out.push_str(&format!("&#{};", *c as u32)),
                    Piece::CData(s) => out.push_str(&format!("<![CDATA[{s}]]>")),
                }
            }
            out.push_str(&format!("</{n} >"));
        }
        Tree::Node(n, children) => {
            pad(out);
            out.push_str(&format!("<{n} a=\"1\" b='x>y'>"));
            if depth == 1 {
                out.push_str("<!-- a comment -->");
            }
            for c in children {
                render(c, indent, depth + 1, out);
            }
            pad(out);
            out.push_str(&format!("</{n}>"));
        }
    }
}

fn document() -> impl Strategy<Value = String> {
    (tree(), any::<bool>(), any::<bool>()).prop_map(|(t, indent, decl)| {
        let mut s = String::new();
        if decl {
            s.push_str("<?xml version=\"1.0\"?>\n");
        }
        render(&t, indent, 0, &mut s);
        s.push('\n');
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn well_formed_documents_agree(doc in document()) {
        let mine = outline(&doc).map_err(|e| e.to_string());
        let theirs = oracle(&doc);
        prop_assert!(mine.is_ok(), "crate parser rejected: {:?}\n{}", mine, doc);
        prop_assert_eq!(mine.unwrap(), theirs.unwrap(), "{}", doc);
    }

    #[test]
    fn mutated_documents_are_never_accepted_more_loosely(
        doc in document(),
        edits in vec((any::<prop::sample::Index>(), prop::sample::select(vec!["<", ">", "/", "&", ";", "\"", "'", "=", " ", "!", "?", "-", "[", "]", "&#0;", "&#xD800;", "<!DOCTYPE a>", "</x>", ""])), 1..4),
    ) {
        let mut doc = doc;
        for (at, ins) in edits {
            let mut i = at.index(doc.len() + 1);
            while !doc.is_char_boundary(i) { i -= 1; }
            if ins.is_empty() {
                // Delete one character.
                if let Some(c) = doc[i..].chars().next() {
                    doc.replace_range(i..i + c.len_utf8(), "");
                }
            } else {
                doc.insert_str(i, ins);
            }
        }
        if let Ok(mine) = outline(&doc) {
            let theirs = oracle(&doc);
            prop_assert!(theirs.is_ok(), "crate parser accepted what quick-xml rejects ({:?}):\n{}", theirs, doc);
            prop_assert_eq!(mine, theirs.unwrap(), "{}", doc);
        }
    }
}
