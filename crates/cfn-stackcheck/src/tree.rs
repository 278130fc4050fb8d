//! Templates as a small tree with positions: YAML (with CloudFormation's
//! short-form tags) and JSON both go through saphyr, a YAML 1.2 parser that
//! keeps tags and spans. Comments are not part of the tree.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Map(Vec<(Key, Node)>),
    Seq(Vec<Node>),
    /// Every scalar, as written (numbers and booleans too).
    Str(String),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// Short-form tag without `!` (`Sub`, `Ref`, `GetAtt`, …).
    pub tag: Option<String>,
    pub line: usize,
    pub col: usize,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(m) => m,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The function of an intrinsic, long (`{"Fn::Sub": …}`) or short
    /// (`!Sub …`) form, and its argument.
    pub fn intrinsic(&self) -> Option<(&str, &Node)> {
        if let Some(t) = &self.tag {
            return Some((t.as_str(), self));
        }
        match &self.value {
            Value::Map(m) if m.len() == 1 => {
                let (k, v) = &m[0];
                let f = k.name.strip_prefix("Fn::").unwrap_or(&k.name);
                matches!(
                    f,
                    "Ref"
                        | "Sub"
                        | "Join"
                        | "GetAtt"
                        | "If"
                        | "Select"
                        | "Split"
                        | "FindInMap"
                        | "ImportValue"
                        | "Base64"
                        | "Cidr"
                        | "GetAZs"
                        | "Equals"
                        | "And"
                        | "Or"
                        | "Not"
                        | "Condition"
                        | "Length"
                        | "ToJsonString"
                )
                .then_some((f, v))
            }
            _ => None,
        }
    }
}

fn text(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Str(b.to_string()),
        Scalar::Integer(i) => Value::Str(i.to_string()),
        Scalar::FloatingPoint(f) => Value::Str(f.to_string()),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}

fn convert(y: &MarkedYaml<'_>, depth: usize) -> Node {
    let (line, col) = (y.span.start.line(), y.span.start.col() + 1);
    let mk = |value| Node {
        value,
        tag: None,
        line,
        col,
    };
    if depth > 256 {
        return mk(Value::Null);
    }
    match &y.data {
        YamlData::Value(s) => mk(text(s)),
        YamlData::Representation(s, _, _) => mk(Value::Str(s.to_string())),
        YamlData::Sequence(items) => mk(Value::Seq(
            items.iter().map(|i| convert(i, depth + 1)).collect(),
        )),
        YamlData::Mapping(m) => mk(Value::Map(
            m.iter()
                .map(|(k, v)| {
                    let name = match convert(k, depth + 1).value {
                        Value::Str(s) => s,
                        _ => String::new(),
                    };
                    (
                        Key {
                            name,
                            line: k.span.start.line(),
                            col: k.span.start.col() + 1,
                        },
                        convert(v, depth + 1),
                    )
                })
                .collect(),
        )),
        YamlData::Tagged(tag, inner) => {
            let mut n = convert(inner, depth + 1);
            let suffix = tag.suffix.trim_start_matches('!');
            if tag.handle == "!" || tag.handle.is_empty() {
                n.tag = Some(suffix.to_owned());
            }
            n.line = line;
            n.col = col;
            n
        }
        _ => mk(Value::Null),
    }
}

/// Parses a template; `Err` carries (line, column, message).
pub fn parse(text: &str) -> Result<Node, (usize, usize, String)> {
    let docs = MarkedYaml::load_from_str(text)
        .map_err(|e| (e.marker().line(), e.marker().col() + 1, e.info().to_owned()))?;
    let doc = docs.first().ok_or((1, 1, "empty document".to_owned()))?;
    Ok(convert(doc, 0))
}
