//! [`Value`]: a borrowed view of one value in simd-json's tape, read
//! straight from the tape's nodes.
//!
//! Why not simd-json's own `tape::Value`: its accessors (`as_object`,
//! `into_string`, the object iterator's `next`...) are not marked
//! `#[inline]` and are not generic, so without whole-program LTO every key
//! of every record was a call into simd-json; walking a record's top-level
//! keys to build the field index was 30 instructions a key in those calls
//! alone. The tape's [`Node`]s are public, so this view walks them in
//! loops the compiler can see through. It reads exactly what simd-json's
//! view reads: the same keys in the same order, the same scalars (through
//! [`StaticNode`]'s own conversions), and the encoding of `decode::render`
//! is checked against simd-json's `encode()` on every real record
//! (`tests/real_records.rs`).
//!
//! Tape layout, as simd-json writes it: an object is an
//! `Object { len, count }` node followed by `len` key/value pairs (a key is
//! a `String` node), an array an `Array { len, count }` node followed by
//! its `len` elements; `count` is the number of nodes inside, nested ones
//! included, so a container spans `count + 1` nodes and a scalar one.

use simd_json::prelude::*;
use simd_json::{Node, StaticNode, Tape};

/// One value of a tape: the nodes it spans (never empty).
#[derive(Clone, Copy)]
pub struct Value<'a>(&'a [Node<'a>]);

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::new();
        super::render::write_value(&mut out, *self);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// The number of nodes the value starting with `n` spans.
#[inline(always)]
fn span(n: &Node<'_>) -> usize {
    match *n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

impl<'a> Value<'a> {
    /// The document a tape holds.
    #[inline]
    pub fn root(tape: &'a Tape<'a>) -> Value<'a> {
        match tape.0.first() {
            Some(n) => Value(&tape.0[..span(n)]),
            None => Value::NULL,
        }
    }

    const NULL: Value<'static> = Value(&[Node::Static(StaticNode::Null)]);

    #[inline(always)]
    fn head(self) -> Node<'a> {
        self.0[0]
    }

    #[inline]
    fn as_static(self) -> Option<StaticNode> {
        match self.head() {
            Node::Static(s) => Some(s),
            _ => None,
        }
    }

    #[inline]
    pub fn as_str(self) -> Option<&'a str> {
        match self.head() {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    #[inline]
    pub fn as_object(self) -> Option<Object<'a>> {
        match self.head() {
            Node::Object { .. } => Some(Object(self.0)),
            _ => None,
        }
    }

    #[inline]
    pub fn as_array(self) -> Option<Array<'a>> {
        match self.head() {
            Node::Array { .. } => Some(Array(self.0)),
            _ => None,
        }
    }

    #[inline]
    pub fn is_object(self) -> bool {
        matches!(self.head(), Node::Object { .. })
    }

    #[inline]
    pub fn is_array(self) -> bool {
        matches!(self.head(), Node::Array { .. })
    }

    #[inline]
    pub fn value_type(self) -> ValueType {
        self.head().value_type()
    }

    #[inline]
    pub fn as_bool(self) -> Option<bool> {
        self.as_static()?.as_bool()
    }

    #[inline]
    pub fn as_i64(self) -> Option<i64> {
        self.as_static()?.as_i64()
    }

    #[inline]
    pub fn as_u64(self) -> Option<u64> {
        self.as_static()?.as_u64()
    }

    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        self.as_static()?.as_f64()
    }

    /// The value of `key` when this is an object (its first occurrence).
    #[inline]
    pub fn get(self, key: &str) -> Option<Value<'a>> {
        self.as_object()?.get(key)
    }
}

/// An object of a tape: its header node and everything inside.
#[derive(Clone, Copy)]
pub struct Object<'a>(&'a [Node<'a>]);

impl<'a> Object<'a> {
    /// Key/value pairs in document order, duplicates included.
    #[inline]
    pub fn iter(self) -> ObjectIter<'a> {
        ObjectIter(&self.0[1..])
    }

    /// The value of the first occurrence of `key`.
    #[inline]
    pub fn get(self, key: &str) -> Option<Value<'a>> {
        self.iter().find_map(|(k, v)| (k == key).then_some(v))
    }
}

/// Iterator over an object's pairs.
pub struct ObjectIter<'a>(&'a [Node<'a>]);

impl<'a> Iterator for ObjectIter<'a> {
    type Item = (&'a str, Value<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let [Node::String(k), v, ..] = self.0 else {
            return None;
        };
        let (value, rest) = self.0[1..].split_at(span(v));
        self.0 = rest;
        Some((k, Value(value)))
    }
}

/// An array of a tape: its header node and everything inside.
#[derive(Clone, Copy)]
pub struct Array<'a>(&'a [Node<'a>]);

impl<'a> Array<'a> {
    #[inline]
    pub fn iter(self) -> ArrayIter<'a> {
        ArrayIter(&self.0[1..])
    }

    /// The number of elements (the header node says it).
    #[inline]
    pub fn len(self) -> usize {
        match self.0[0] {
            Node::Array { len, .. } => len,
            _ => unreachable!("an Array is made from an array's header"),
        }
    }

    #[inline]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Iterator over an array's elements.
pub struct ArrayIter<'a>(&'a [Node<'a>]);

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let first = self.0.first()?;
        let (value, rest) = self.0.split_at(span(first));
        self.0 = rest;
        Some(Value(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a view reads, as text: the same walk is written for our
    /// view and for simd-json's (their methods share names, not a trait).
    macro_rules! walk {
        ($name:ident, $value:ty) => {
            fn $name(v: $value, out: &mut String) {
                use std::fmt::Write;
                if let Some(o) = v.as_object() {
                    out.push('{');
                    for (k, v) in o.iter() {
                        write!(out, "{k:?}=").unwrap();
                        $name(v, out);
                        out.push(';');
                    }
                    out.push('}');
                } else if let Some(a) = v.as_array() {
                    write!(out, "[{}:", a.len()).unwrap();
                    for v in a.iter() {
                        $name(v, out);
                        out.push(',');
                    }
                    out.push(']');
                } else {
                    write!(
                        out,
                        "{:?}/{:?}/{:?}/{:?}/{:?}/{:?}/{:?}",
                        v.value_type(),
                        v.as_str(),
                        v.as_bool(),
                        v.as_i64(),
                        v.as_u64(),
                        v.as_f64(),
                        v.is_object() || v.is_array()
                    )
                    .unwrap();
                }
            }
        };
    }
    walk!(walk_ours, Value<'_>);
    walk!(walk_simd, simd_json::tape::Value<'_, '_>);

    #[test]
    fn the_view_reads_what_simd_jsons_view_reads() {
        let docs = [
            r#"{"a":1,"b":[1,-2,3.5,{"c":null,"c":true}],"d":{},"e":[],"f":"x\"y","a":"dup"}"#,
            r#"[{"x":[[[]]],"y":{"z":{"w":18446744073709551615}}},false,"s",-9223372036854775808]"#,
            r#""just a string""#,
            "42",
            "null",
            r#"{"Records":[{"eventName":"A","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"}},{}]}"#,
        ];
        for doc in docs {
            let mut buf = doc.as_bytes().to_vec();
            let tape = simd_json::to_tape(&mut buf).unwrap();
            let (mut ours, mut theirs) = (String::new(), String::new());
            walk_ours(Value::root(&tape), &mut ours);
            walk_simd(tape.as_value(), &mut theirs);
            assert_eq!(ours, theirs, "{doc}");
            // `get` finds the first occurrence, as simd-json's does.
            let root = Value::root(&tape);
            for key in ["a", "b", "d", "Records", "missing"] {
                let ours = root.get(key).map(|v| {
                    let mut s = String::new();
                    walk_ours(v, &mut s);
                    s
                });
                let theirs = tape.as_value().get(key).map(|v| {
                    let mut s = String::new();
                    walk_simd(v, &mut s);
                    s
                });
                assert_eq!(ours, theirs, "{doc} / {key}");
            }
        }
    }
}
