//! A decoded input document typed as the Python decoder types it (orjson's or fastavro's
//! output), so one validation serves JSON and Avro alike.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::doc_map::DocMap;

#[derive(Clone, Debug)]
pub enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer orjson keeps as a Python int beyond int64: 2^63..2^64-1.
    BigInt,
    Float(f64),
    Str(String),
    List(Vec<Doc>),
    /// Keys in first-seen order, a repeated key keeping its first place and last value.
    Map(DocMap<Doc>),
}

impl Doc {
    pub fn type_name(&self) -> &'static str {
        match self {
            Doc::Null => "NoneType",
            Doc::Bool(_) => "bool",
            Doc::Int(_) | Doc::BigInt => "int",
            Doc::Float(_) => "float",
            Doc::Str(_) => "str",
            Doc::List(_) => "list",
            Doc::Map(_) => "dict",
        }
    }

    /// Python's truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Doc::Null => false,
            Doc::Bool(b) => *b,
            Doc::Int(i) => *i != 0,
            Doc::BigInt => true,
            Doc::Float(f) => *f != 0.0,
            Doc::Str(s) => !s.is_empty(),
            Doc::List(l) => !l.is_empty(),
            Doc::Map(m) => !m.is_empty(),
        }
    }
}

pub enum Parsed {
    /// The document, and whether it holds an integer literal outside int64 anywhere.
    Doc(Doc, bool),
    BadJson(String),
    /// Nested deeper than serde_json's limit (orjson reads up to 1024 levels), or text this
    /// reader would take otherwise than Python: the reference decoder judges it.
    Unusual,
}

/// The key serde_json's `arbitrary_precision` uses to carry a number's text: an object with it
/// in the input would read as a number here and as an object in Python.
const NUMBER_TOKEN: &[u8] = b"$serde_json::private::Number";

pub fn parse_json(data: &[u8]) -> Parsed {
    if memchr::memmem::find(data, NUMBER_TOKEN).is_some() {
        return Parsed::Unusual;
    }
    let wide = Cell::new(false);
    // Text checked as UTF-8 once is not checked again string by string; other bytes are read
    // as bytes, for serde_json to say where they go wrong.
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => read_doc(serde_json::Deserializer::from_str(text), &wide),
        Err(_) => read_doc(serde_json::Deserializer::from_slice(data), &wide),
    };
    match parsed {
        Ok(doc) => Parsed::Doc(doc, wide.get()),
        Err(err) => {
            let text = err.to_string();
            if text.starts_with("recursion limit exceeded") {
                return Parsed::Unusual;
            }
            Parsed::BadJson(text)
        }
    }
}

fn read_doc<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    wide: &Cell<bool>,
) -> serde_json::Result<Doc> {
    let doc = DocSeed { wide }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(doc)
}

/// Builds a `Doc` straight from serde_json's events (no intermediate `serde_json::Value`).
#[derive(Clone, Copy)]
struct DocSeed<'a> {
    wide: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Doc;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Doc, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = Doc;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Doc, E> {
        Ok(Doc::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Doc, E> {
        Ok(Doc::Int(value))
    }

    /// 2^63..2^64-1 is an int for orjson too, but outside int64.
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Doc, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => Doc::Int(value),
            Err(_) => {
                self.wide.set(true);
                Doc::BigInt
            }
        })
    }

    // Other numbers (floats, "-0", integers beyond 64 bits) come as their text: visit_map.

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Doc, E> {
        Ok(Doc::Str(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Doc, E> {
        Ok(Doc::Str(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Doc::Map(DocMap::default()));
        };
        // arbitrary_precision hands a number over as a one-entry map under this key; the
        // input itself cannot hold the key (see parse_json).
        if first.as_bytes() == NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return number(&text, self.wide).map_err(de::Error::custom);
        }
        // An event's object has about this many fields: room for them at once.
        let mut out = DocMap::with_capacity(8);
        out.insert(first, map.next_value_seed(self)?);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Doc::Map(out))
    }
}

/// orjson's reading of a number literal: an integer in int64 is an int, one in 2^63..2^64 a
/// big int, any other a float (flagged wide); a float that overflows is an error.
fn number(text: &str, wide: &Cell<bool>) -> Result<Doc, String> {
    let integer = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Doc::Int(i));
        }
        wide.set(true);
        if text.parse::<u64>().is_ok() {
            return Ok(Doc::BigInt);
        }
    }
    let value: f64 = text.parse().map_err(|_| "invalid number".to_string())?;
    if value.is_infinite() {
        return Err("number is infinity when parsed as double".to_string());
    }
    Ok(Doc::Float(value))
}
