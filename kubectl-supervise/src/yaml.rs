//! A YAML document tree that keeps what `inject` does not own: key order, and each scalar as it
//! was written.
//!
//! Theory of operation. `saphyr-parser` turns the text into events; we build a small tree of
//! mappings (ordered key/value pairs), sequences and scalars. A scalar keeps its text and how it
//! was quoted: Kubernetes reads manifests with a YAML 1.1 resolver (`no`, `on`, `0755` are not
//! strings there), so re-emitting a plain scalar exactly as written, and a quoted one quoted,
//! means the API server reads the same value from our output as from the input, whatever its
//! resolver. New strings we add are written plain only when every resolver reads them as
//! strings, as literal blocks when they span lines, and double-quoted otherwise. The emitter
//! writes block style with two-space indents. Lost on the way: comments, anchors (aliases are
//! expanded), flow style (`[a, b]` becomes a block list), folded scalars (written as literal
//! blocks or quoted, same value), document-level directives and blank-line layout.
//!
//! The input is hostile until bounded: [`parse`] takes at most [`MAX_INPUT`] bytes, nests at
//! most [`MAX_DEPTH`] levels, and charges every alias the size of the tree it copies against
//! a budget that grows with the input, so what a text can cost is a small multiple of its own
//! size whatever its shape (a YAML bomb stops at its first alias past the budget). Duplicate
//! keys are found through a set per mapping, so a wide mapping costs linear time.
//!
//! `to_json` resolves plain scalars the way Kubernetes does (YAML 1.1 booleans, octal and hex
//! integers), so typed views (k8s-openapi) see what the API server would.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    /// An explicit tag, as written (`!!str`, `!foo`).
    pub tag: Option<String>,
}

/// How a scalar was written, or how a new one should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Written plain: re-emitted verbatim; resolved like Kubernetes does.
    Plain,
    Single,
    Double,
    Block,
    /// A string we made: the emitter picks the plainest style that keeps it a string.
    Text,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum YamlError {
    #[error("invalid YAML: {info} at line {line} column {col}")]
    Syntax {
        info: String,
        line: usize,
        col: usize,
    },
    #[error("unsupported YAML at line {line}: {what}")]
    Unsupported { what: &'static str, line: usize },
    #[error("duplicate key {key:?} at line {line}")]
    DuplicateKey { key: String, line: usize },
    #[error("the input is {size} bytes, larger than {} MiB (the most that is read)", max >> 20)]
    TooLarge { size: usize, max: usize },
    #[error("collections nested deeper than {max} levels at line {line}")]
    TooDeep { line: usize, max: usize },
    #[error(
        "aliases at line {line} expand to more than the input allows (a YAML bomb?): write the values out"
    )]
    AliasBudget { line: usize },
    #[error("the object holds more than {max} values (a pod holds a few thousand)")]
    TooManyValues { max: usize },
    #[error("the object nests deeper than {max} levels")]
    ObjectTooDeep { max: usize },
}

impl Node {
    /// A string value; the emitter chooses its style.
    pub fn text(s: impl Into<String>) -> Node {
        Node::Scalar(Scalar {
            value: s.into(),
            style: Style::Text,
            tag: None,
        })
    }

    /// A plain scalar written as is (numbers, booleans).
    pub fn plain(s: impl Into<String>) -> Node {
        Node::Scalar(Scalar {
            value: s.into(),
            style: Style::Plain,
            tag: None,
        })
    }

    pub fn map() -> Node {
        Node::Map(Vec::new())
    }

    /// The string a scalar holds when Kubernetes would read it as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => match s.resolve() {
                serde_json::Value::String(_) => Some(&s.value),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match self {
            Node::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match self {
            Node::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s) if s.resolve().is_null())
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k.key_is(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(m) => m.iter_mut().find(|(k, _)| k.key_is(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    pub fn at_mut(&mut self, path: &[&str]) -> Option<&mut Node> {
        path.iter().try_fold(self, |n, k| n.get_mut(k))
    }

    /// Sets `key` in a mapping: in place when present (its position kept), else appended.
    /// Does nothing on a non-mapping.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Node::Map(m) = self {
            match m.iter_mut().find(|(k, _)| k.key_is(key)) {
                Some((_, v)) => *v = value,
                None => m.push((Node::text(key), value)),
            }
        }
    }

    /// Sets `key`: in place when present, else right after the first of `after` that exists
    /// (so `command` lands beside `image`, not at the end), else appended.
    pub fn set_after(&mut self, after: &[&str], key: &str, value: Node) {
        if let Node::Map(m) = self {
            if let Some((_, v)) = m.iter_mut().find(|(k, _)| k.key_is(key)) {
                *v = value;
                return;
            }
            let at = after
                .iter()
                .find_map(|a| m.iter().position(|(k, _)| k.key_is(a)))
                .map_or(m.len(), |i| i + 1);
            m.insert(at, (Node::text(key), value));
        }
    }

    /// Sets `key` (when missing) right before the first of `before` that exists, else appends.
    pub fn set_before(&mut self, before: &[&str], key: &str, value: Node) {
        if let Node::Map(m) = self {
            if let Some((_, v)) = m.iter_mut().find(|(k, _)| k.key_is(key)) {
                *v = value;
                return;
            }
            let at = before
                .iter()
                .find_map(|b| m.iter().position(|(k, _)| k.key_is(b)))
                .unwrap_or(m.len());
            m.insert(at, (Node::text(key), value));
        }
    }

    /// The value at `key`, created (as `make()`) when missing or null; None when this is not
    /// a mapping.
    pub fn entry(&mut self, key: &str, make: fn() -> Node) -> Option<&mut Node> {
        if self.get(key).is_none_or(Node::is_null) {
            self.set(key, make());
        }
        match self {
            Node::Map(m) => m.iter_mut().find(|(k, _)| k.key_is(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Map(m) => {
                let i = m.iter().position(|(k, _)| k.key_is(key))?;
                Some(m.remove(i).1)
            }
            _ => None,
        }
    }

    fn key_is(&self, key: &str) -> bool {
        matches!(self, Node::Scalar(s) if s.value == key)
    }

    /// The value Kubernetes reads (see the module doc).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Scalar(s) => s.resolve(),
            Node::Seq(v) => serde_json::Value::Array(v.iter().map(Node::to_json).collect()),
            Node::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| match k {
                        Node::Scalar(s) => (s.value.clone(), v.to_json()),
                        other => (emit(std::slice::from_ref(other)), v.to_json()),
                    })
                    .collect(),
            ),
        }
    }

    /// A tree from JSON (strings become [`Style::Text`]).
    pub fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as V;
        match v {
            V::Null => Node::plain("null"),
            V::Bool(b) => Node::plain(b.to_string()),
            V::Number(n) => Node::plain(n.to_string()),
            V::String(s) => Node::text(s.clone()),
            V::Array(a) => Node::Seq(a.iter().map(Node::from_json).collect()),
            V::Object(o) => Node::Map(
                o.iter()
                    .map(|(k, v)| (Node::text(k.clone()), Node::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl Scalar {
    /// This scalar's value as Kubernetes' YAML 1.1 resolver reads it.
    pub fn resolve(&self) -> serde_json::Value {
        use serde_json::Value as V;
        let plain = self.style == Style::Plain;
        match self.tag.as_deref() {
            Some("!!str") => return V::String(self.value.clone()),
            Some(_) => {}
            None if !plain => return V::String(self.value.clone()),
            None => {}
        }
        resolve_plain(&self.value).unwrap_or_else(|| V::String(self.value.clone()))
    }
}

/// The non-string value a plain scalar stands for under YAML 1.1 (a superset of 1.2's core
/// schema), or None for a string.
fn resolve_plain(s: &str) -> Option<serde_json::Value> {
    use serde_json::Value as V;
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(V::Null),
        "true" | "True" | "TRUE" | "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Some(V::Bool(true));
        }
        "false" | "False" | "FALSE" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some(V::Bool(false));
        }
        _ => {}
    }
    if let Some(i) = resolve_int(s) {
        return Some(V::from(i));
    }
    if is_float(s) {
        let f: f64 = s.replace('_', "").parse().ok()?;
        return serde_json::Number::from_f64(f).map(V::Number);
    }
    None
}

fn resolve_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body.replace('_', "");
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x") {
        (16, h.to_string())
    } else if let Some(o) = body.strip_prefix("0o") {
        (8, o.to_string())
    } else if let Some(b) = body.strip_prefix("0b") {
        (2, b.to_string())
    } else if body.len() > 1 && body.starts_with('0') {
        (8, body[1..].to_string())
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn is_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s).replace('_', "");
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t.as_str(), None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok && (mantissa.contains('.') || exp.is_some())
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// The most text [`parse`] takes, and `kubectl-supervise` reads from all its inputs together:
/// far more than any manifest (the API server takes objects of at most 3 MiB), and little
/// enough that the tree, however the text is shaped, stays within a few hundred MiB.
pub const MAX_INPUT: usize = 8 << 20;
/// How deeply collections may nest. A CronJob's pod spec is about fifteen levels down; the
/// bound keeps every recursive walk of the tree (and its drop) far from the stack's end.
pub const MAX_DEPTH: usize = 100;
/// What a node costs besides its text, in bytes (its enum, vector slot and allocation), for
/// the alias budget.
const NODE_COST: usize = 64;
/// Aliases may expand to at most this many bytes of tree, or [`ALIAS_FACTOR`] times the
/// input's size when that is more: anchors as people use them (an env list repeated in a
/// few containers) cost kilobytes, a YAML bomb terabytes. The budget grows with the input,
/// as serde_yaml's (100 times its events) and go-yaml's (a share of the decoded nodes) do.
const ALIAS_FLOOR: usize = 4 << 20;
const ALIAS_FACTOR: usize = 4;

/// A collection being built, with the size and height of what it holds so far.
struct Frame {
    items: Items,
    anchor: usize,
    cost: usize,
    height: usize,
}

enum Items {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        pending: Option<Node>,
        /// The keys so far: a duplicate is found in constant time, however wide the mapping.
        keys: std::collections::HashSet<String>,
    },
}

/// An anchored node, with its cost and height, for each alias to it.
struct Anchored {
    node: Node,
    cost: usize,
    height: usize,
}

/// Builds the documents from the parser's events: a stack of open collections, the anchors
/// seen so far (an alias is expanded to a copy of its anchor's node, within the budget), the
/// documents done.
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Anchored>,
    /// Bytes of tree aliases may still expand to.
    alias_budget: usize,
}

fn scalar_node(value: String, style: ScalarStyle, tag: Option<&saphyr_parser::Tag>) -> Node {
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::Single,
        ScalarStyle::DoubleQuoted => Style::Double,
        ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
    };
    Node::Scalar(Scalar {
        value,
        style,
        tag: tag.map(tag_text),
    })
}

/// A tag as it can be written back: `!!suffix` for the core schema's, `!suffix` for local
/// ones, `!<...>` for one a `%TAG` directive expanded (there is no directive in our output).
/// The parser decodes `%XX` escapes, so characters a tag cannot hold are escaped again.
fn tag_text(t: &saphyr_parser::Tag) -> String {
    let suffix = escape_tag(&t.suffix);
    match t.handle.as_str() {
        "tag:yaml.org,2002:" | "!!" => format!("!!{suffix}"),
        "!" => format!("!{suffix}"),
        handle => format!("!<{}{suffix}>", escape_tag(handle)),
    }
}

fn escape_tag(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-#;/?:@&=+$_.~*'()".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn scalar_cost(s: &Scalar) -> usize {
    NODE_COST + s.value.len() + s.tag.as_ref().map_or(0, String::len)
}

impl Builder {
    fn new(input_len: usize) -> Builder {
        Builder {
            docs: Vec::new(),
            stack: Vec::new(),
            anchors: Default::default(),
            alias_budget: ALIAS_FLOOR.max(input_len.saturating_mul(ALIAS_FACTOR)),
        }
    }

    fn open(&mut self, items: Items, anchor: usize, line: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::TooDeep {
                line,
                max: MAX_DEPTH,
            });
        }
        self.stack.push(Frame {
            items,
            anchor,
            cost: NODE_COST,
            height: 1,
        });
        Ok(())
    }

    /// A copy of an anchored node, charged to the alias budget.
    fn alias(&mut self, id: usize, line: usize) -> Result<(Node, usize, usize), YamlError> {
        let a = self.anchors.get(&id).ok_or(YamlError::Unsupported {
            what: "an alias to an unknown anchor",
            line,
        })?;
        if self.stack.len() + a.height > MAX_DEPTH {
            return Err(YamlError::TooDeep {
                line,
                max: MAX_DEPTH,
            });
        }
        self.alias_budget = self
            .alias_budget
            .checked_sub(a.cost)
            .ok_or(YamlError::AliasBudget { line })?;
        Ok((a.node.clone(), a.cost, a.height))
    }

    /// Takes one event; `line` is where it starts.
    fn on_event(&mut self, event: Event, line: usize) -> Result<(), YamlError> {
        let (node, anchor, cost, height) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                // A copy of the exact length: the scanner's buffer may be far larger than a
                // short scalar, and a wide input holds millions of them.
                let s = scalar_node(String::from(&*value), style, tag.as_deref());
                let cost = match &s {
                    Node::Scalar(s) => scalar_cost(s),
                    _ => NODE_COST,
                };
                (s, anchor, cost, 0)
            }
            Event::Alias(id) => {
                let (node, cost, height) = self.alias(id, line)?;
                (node, 0, cost, height)
            }
            Event::SequenceStart(anchor, _) => {
                return self.open(Items::Seq(Vec::new()), anchor, line);
            }
            Event::MappingStart(anchor, _) => {
                let items = Items::Map {
                    entries: Vec::new(),
                    pending: None,
                    keys: Default::default(),
                };
                return self.open(items, anchor, line);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(f) = self.stack.pop() else {
                    unreachable!("the parser balances collections")
                };
                // The spare capacity of a grown vector would be most of a wide input's cost.
                let node = match f.items {
                    Items::Seq(mut v) => {
                        v.shrink_to_fit();
                        Node::Seq(v)
                    }
                    Items::Map { mut entries, .. } => {
                        entries.shrink_to_fit();
                        Node::Map(entries)
                    }
                };
                (node, f.anchor, f.cost, f.height)
            }
            _ => return Ok(()),
        };
        if anchor > 0 {
            let anchored = Anchored {
                node: node.clone(),
                cost,
                height,
            };
            self.anchors.insert(anchor, anchored);
        }
        self.add(node, cost, height, line)
    }

    /// Puts a finished node where it belongs: in the open collection, or as a document.
    fn add(
        &mut self,
        node: Node,
        cost: usize,
        height: usize,
        line: usize,
    ) -> Result<(), YamlError> {
        let Some(f) = self.stack.last_mut() else {
            if !node.is_null() {
                self.docs.push(node);
            }
            return Ok(());
        };
        f.cost = f.cost.saturating_add(cost);
        f.height = f.height.max(height + 1);
        match &mut f.items {
            Items::Seq(v) => v.push(node),
            Items::Map {
                entries,
                pending,
                keys,
            } => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let Node::Scalar(k) = &node else {
                        return Err(YamlError::Unsupported {
                            what: "a mapping key that is not a scalar",
                            line,
                        });
                    };
                    if !keys.insert(k.value.clone()) {
                        return Err(YamlError::DuplicateKey {
                            key: k.value.clone(),
                            line,
                        });
                    }
                    *pending = Some(node);
                }
            },
        }
        Ok(())
    }
}

/// The most values [`check_json`] lets through: a hundred times a big pod.
pub const MAX_JSON_VALUES: usize = 1 << 17;

/// Checks that a JSON value (an admission request's object) is within the bounds a tree may
/// have: at most [`MAX_DEPTH`] levels and [`MAX_JSON_VALUES`] values. It walks the value
/// without allocating, so a hostile object costs no more than what holds it already.
pub fn check_json(v: &serde_json::Value) -> Result<(), YamlError> {
    let mut count = 0usize;
    let mut stack: Vec<(&serde_json::Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        count += 1;
        if count > MAX_JSON_VALUES {
            return Err(YamlError::TooManyValues {
                max: MAX_JSON_VALUES,
            });
        }
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(YamlError::ObjectTooDeep { max: MAX_DEPTH });
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// Parses every document of a YAML stream; empty documents are dropped. Bounded: at most
/// [`MAX_INPUT`] bytes, [`MAX_DEPTH`] levels, and aliases within a budget that grows with the
/// input; anything beyond is an error, found before it costs more than the input itself.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    if text.len() > MAX_INPUT {
        return Err(YamlError::TooLarge {
            size: text.len(),
            max: MAX_INPUT,
        });
    }
    let mut b = Builder::new(text.len());
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError::Syntax {
            info: e.info().to_string(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
        })?;
        b.on_event(event, span.start.line())?;
    }
    Ok(b.docs)
}

// ---------------------------------------------------------------------------------------------
// Emitting
// ---------------------------------------------------------------------------------------------

/// Writes documents as one YAML stream, `---` between them.
pub fn emit(docs: &[Node]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match d {
            Node::Map(m) if !m.is_empty() => emit_map(&mut out, m, 0, false),
            Node::Seq(v) if !v.is_empty() => emit_seq(&mut out, v, 0, false),
            other => {
                out.push_str(&scalar_or_empty(other, 0));
                out.push('\n');
            }
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// An inline rendering for scalars and empty collections; None for the rest.
fn inline(node: &Node, indent: usize) -> Option<String> {
    match node {
        Node::Scalar(s) => Some(scalar(s, indent)),
        Node::Map(m) if m.is_empty() => Some("{}".into()),
        Node::Seq(v) if v.is_empty() => Some("[]".into()),
        _ => None,
    }
}

fn scalar_or_empty(node: &Node, indent: usize) -> String {
    inline(node, indent).unwrap_or_default()
}

fn emit_map(out: &mut String, m: &[(Node, Node)], indent: usize, first_inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        let key = key_text(k);
        // YAML reads a key written before `:` only when it is at most 1024 characters long:
        // a longer one goes after `? `, its value on the next line.
        if key.chars().count() > 1000 {
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            pad(out, indent);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        match inline(v, indent) {
            Some(s) if s.is_empty() => out.push('\n'),
            Some(s) => {
                out.push(' ');
                out.push_str(&s);
                out.push('\n');
            }
            None => {
                out.push('\n');
                match v {
                    Node::Map(m) => emit_map(out, m, indent + 2, false),
                    Node::Seq(s) => emit_seq(out, s, indent + 2, false),
                    Node::Scalar(_) => unreachable!("scalars are inline"),
                }
            }
        }
    }
}

/// A mapping key on one line: a block scalar cannot be one, so a key with a line break is
/// double-quoted.
fn key_text(k: &Node) -> String {
    match k {
        Node::Scalar(s) if s.value.contains('\n') => {
            let tag = s.tag.as_ref().map(|t| format!("{t} ")).unwrap_or_default();
            format!("{tag}{}", double_quoted(&s.value))
        }
        other => scalar_or_empty(other, 0),
    }
}

fn emit_seq(out: &mut String, v: &[Node], indent: usize, first_inline: bool) {
    for (i, item) in v.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        match inline(item, indent) {
            Some(s) if s.is_empty() => out.push_str("-\n"),
            Some(s) => {
                out.push_str("- ");
                out.push_str(&s);
                out.push('\n');
            }
            None => {
                out.push_str("- ");
                match item {
                    Node::Map(m) => emit_map(out, m, indent + 2, true),
                    Node::Seq(s) => emit_seq(out, s, indent + 2, true),
                    Node::Scalar(_) => unreachable!("scalars are inline"),
                }
            }
        }
    }
}

/// One scalar, in the style it came with when that still holds its value (see the module
/// doc). `indent` is the column of the key or dash it follows; block content goes two deeper.
fn scalar(s: &Scalar, indent: usize) -> String {
    let tag = s.tag.as_ref().map(|t| format!("{t} ")).unwrap_or_default();
    let v = &s.value;
    let one_line = !v.contains('\n') && v.trim() == v;
    let body = match s.style {
        // Written plain and still plain in block context: verbatim (a non-string value, a
        // number or a boolean, always is); else quoted, which keeps a string a string.
        Style::Plain if block_plain(v) => v.clone(),
        Style::Plain if v.is_empty() && s.tag.is_none() => String::new(),
        Style::Single if one_line && !has_control(v) => format!("'{}'", v.replace('\'', "''")),
        Style::Text if is_plain_string(v) => v.clone(),
        _ if v.contains('\n') && literal_ok(v) => literal(v, indent + 2),
        _ => double_quoted(v),
    };
    format!("{tag}{body}")
}

/// A plain scalar that starts like `---` or `...` is a document marker when it lands at the
/// start of a line (a document that is a lone scalar): quote it wherever it is.
fn document_marker(v: &str) -> bool {
    v.starts_with("---") || v.starts_with("...")
}

fn has_control(v: &str) -> bool {
    v.chars().any(|c| c.is_control() && c != '\n')
}

/// Whether `v` can be written plain in block context and still be read as this very string by
/// YAML 1.1 and 1.2 resolvers.
fn is_plain_string(v: &str) -> bool {
    block_plain(v) && resolve_plain(v).is_none() && !is_special_float(v)
}

/// Whether `v` written plain in block context reads back as these very characters: no
/// indicator first, no `: ` or ` #` inside, no line break or tab, nothing that looks like a
/// document marker. A scalar written plain in flow context (`[>, y]`) may fail this.
fn block_plain(v: &str) -> bool {
    let Some(first) = v.chars().next() else {
        return false;
    };
    if v.trim() != v || has_control(v) {
        return false;
    }
    let second = v.chars().nth(1);
    let indicator_start = match first {
        '-' | '?' | ':' => second.is_none_or(|c| c == ' '),
        '[' | ']' | '{' | '}' | ',' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => true,
        _ => false,
    };
    !indicator_start
        && !document_marker(v)
        && !v.contains(": ")
        && !v.contains(" #")
        && !v.ends_with(':')
        && !v.contains('\n')
        && !v.contains('\t')
}

fn is_special_float(v: &str) -> bool {
    let t = v.strip_prefix(['-', '+']).unwrap_or(v);
    matches!(
        t,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" | "<<" | "="
    )
}

/// Literal blocks cannot hold trailing spaces on a line (they would survive, but editors and
/// linters strip them), control characters, or a first line starting with a space (that needs
/// an indentation indicator).
fn literal_ok(v: &str) -> bool {
    !has_control(v)
        && !v.starts_with([' ', '\n'])
        && v.lines()
            .all(|l| !l.ends_with([' ', '\t']) && !l.contains('\r'))
}

fn literal(v: &str, content_indent: usize) -> String {
    let trailing = v.len() - v.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    for line in v.trim_end_matches('\n').split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', content_indent));
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

fn double_quoted(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        emit(&parse(text).expect("parses"))
    }

    #[test]
    fn plain_scalars_come_back_as_written() {
        let text = "a: no\nb: 0755\nc: 1.50\nd: on\ne: \"no\"\nf: 'x y'\ng: --flag=x:y\n";
        assert_eq!(round(text), text);
        let doc = &parse(text).expect("parses")[0];
        let j = doc.to_json();
        assert_eq!(j["a"], false);
        assert_eq!(j["b"], 493);
        assert_eq!(j["d"], true);
        assert_eq!(j["e"], "no");
        assert_eq!(j["g"], "--flag=x:y");
    }

    #[test]
    fn new_strings_stay_strings() {
        for s in [
            "no",
            "on",
            "y",
            "0755",
            "1e3",
            "",
            " x",
            "a: b",
            "#c",
            "- x",
            "-",
            "null",
            "~",
            "1_000",
            ".inf",
            "x:",
            "@a",
            "*a",
            "a #b",
            "tab\there",
            "ctl\u{1}",
        ] {
            let doc = Node::Map(vec![(Node::text("k"), Node::text(s))]);
            let back = parse(&emit(&[doc])).expect("parses");
            assert_eq!(back[0].to_json()["k"], s, "{s:?} -> {}", emit(&back));
        }
        let doc = Node::Map(vec![(Node::text("k"), Node::text("--done-file=/x/y"))]);
        assert_eq!(emit(&[doc]), "k: --done-file=/x/y\n");
    }

    #[test]
    fn multi_line_strings_become_literal_blocks() {
        for s in ["a\nb\n", "a\n\nb", "a\nb\n\n", "x:\n  - y\n"] {
            let doc = Node::Map(vec![(Node::text("k"), Node::Seq(vec![Node::text(s)]))]);
            let text = emit(&[doc]);
            assert!(text.contains('|'), "{text}");
            assert_eq!(
                parse(&text).expect("parses")[0].to_json()["k"][0],
                s,
                "{text}"
            );
        }
    }

    #[test]
    fn structure_order_and_documents_round_trip() {
        let text = "z: 1\na:\n  - x\n  - k: v\n    j: []\n  - - n\nm: {}\n---\nkind: List\n";
        assert_eq!(
            round(text),
            "z: 1\na:\n  - x\n  - k: v\n    j: []\n  - - n\nm: {}\n---\nkind: List\n"
        );
        assert_eq!(round(&round(text)), round(text));
        // Flow style becomes block; aliases are expanded; comments go.
        let text = "a: &x [1, 'two']  # c\nb: *x\n";
        assert_eq!(round(text), "a:\n  - 1\n  - 'two'\nb:\n  - 1\n  - 'two'\n");
    }

    #[test]
    fn a_document_of_one_scalar_is_not_a_document_marker() {
        // Found by the `yaml` fuzz target: a plain scalar "--- >- folded text" came back as a
        // document marker and a broken block scalar.
        let text = "--- --- >-\n  folded\n  text\n";
        let docs = parse(text).expect("parses");
        let out = emit(&docs);
        let back = parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(back[0].to_json(), "--- >- folded text");
        let made = emit(&[Node::text("... end")]);
        assert_eq!(parse(&made).expect("parses")[0].to_json(), "... end");
    }

    #[test]
    fn plain_in_flow_is_not_always_plain_in_block() {
        // Found by the `yaml` fuzz target: `>` is plain inside `[...]`, a folded block
        // scalar's indicator as a block list item.
        let text = "a: &a [>, y, x#y]\nb: *a\n";
        let docs = parse(text).expect("parses");
        let out = emit(&docs);
        let back = parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(back[0].to_json(), docs[0].to_json(), "{out}");
        assert_eq!(docs[0].to_json()["a"][1], true);
    }

    #[test]
    fn tags_are_written_as_tags() {
        // Found by the `inject` fuzz target: `%00` in a tag is decoded to a NUL, which the
        // emitter wrote as it was.
        for text in [
            "!h0%00@u x\n",
            "a: !<tag:example.com,2000:x> 1\n",
            "%TAG !e! tag:example.com,2000:\n---\na: !e!foo 2\n",
            "a: !!str 3\nb: !local y\n",
        ] {
            let docs = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let out = emit(&docs);
            let back = parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert_eq!(back, docs, "{out}");
        }
    }

    #[test]
    fn keys_stay_keys() {
        let long = "k".repeat(1500);
        for text in [
            "? |\n  two\n  lines\n: v\n".to_string(),
            format!("? \"{long}\"\n: [a]\n"),
        ] {
            let docs = parse(&text).expect("parses");
            let out = emit(&docs);
            let back = parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert_eq!(back[0].to_json(), docs[0].to_json(), "{out}");
        }
    }

    #[test]
    fn input_is_bounded() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            parse(&nest(MAX_DEPTH + 1)),
            Err(YamlError::TooDeep {
                line: 1,
                max: MAX_DEPTH
            })
        );
        // An alias cannot carry a tree past the bound either.
        let via_alias = format!("a: &a {}\nb: [[[[[[*a]]]]]]\n", nest(MAX_DEPTH - 2));
        assert_eq!(
            parse(&via_alias),
            Err(YamlError::TooDeep {
                line: 2,
                max: MAX_DEPTH
            })
        );
        // A bomb stops at its first alias past the budget; anchors as people use them pass.
        let bomb = include_str!("../tests/attacks/nested-aliases-10.yaml");
        assert!(
            matches!(parse(bomb), Err(YamlError::AliasBudget { line }) if line > 1),
            "{:?}",
            parse(bomb).err()
        );
        let env = "x: &env\n  - {name: A, value: '1'}\n";
        let uses: String = (1..200).map(|i| format!("c{i}: *env\n")).collect();
        let used = format!("{env}{uses}");
        assert_eq!(
            parse(&used).expect("anchors")[0].to_json()["c199"][0]["name"],
            "A"
        );
        let big = format!("a: {}", "x".repeat(MAX_INPUT));
        assert!(matches!(parse(&big), Err(YamlError::TooLarge { .. })));
        let e = parse(&big).expect_err("too large").to_string();
        assert!(e.contains("larger than 8 MiB"), "{e}");
    }

    #[test]
    fn bad_yaml_is_one_error() {
        let e = parse("a: [\n").expect_err("unterminated");
        assert!(e.to_string().starts_with("invalid YAML"), "{e}");
        let e = parse("a: 1\na: 2\n").expect_err("duplicate");
        assert!(e.to_string().contains("duplicate key \"a\""), "{e}");
        assert_eq!(parse("---\n---\n").expect("empty docs"), vec![]);
    }
}
