//! A decoded input document typed as the Python decoder types it (orjson's or fastavro's
//! output), so one validation serves JSON and Avro alike.

use crate::hashing::OrderedMap;
use serde_json::Value as Json;

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
    Map(OrderedMap<String, Doc>),
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
    let json: Json = match serde_json::from_slice(data) {
        Ok(json) => json,
        Err(err) => {
            let text = err.to_string();
            if text.starts_with("recursion limit exceeded") {
                return Parsed::Unusual;
            }
            return Parsed::BadJson(text);
        }
    };
    let mut wide = false;
    match convert(json, &mut wide) {
        Ok(doc) => Parsed::Doc(doc, wide),
        Err(detail) => Parsed::BadJson(detail),
    }
}

fn convert(json: Json, wide: &mut bool) -> Result<Doc, String> {
    Ok(match json {
        Json::Null => Doc::Null,
        Json::Bool(b) => Doc::Bool(b),
        Json::Number(n) => number(n.as_str(), wide)?,
        Json::String(s) => Doc::Str(s),
        Json::Array(items) => Doc::List(
            items
                .into_iter()
                .map(|item| convert(item, wide))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            let mut out = OrderedMap::with_capacity_and_hasher(map.len(), Default::default());
            for (key, item) in map {
                out.insert(key, convert(item, wide)?);
            }
            Doc::Map(out)
        }
    })
}

/// orjson's reading of a number literal: an integer in int64 is an int, one in 2^63..2^64 a
/// big int, any other a float (flagged wide); a float that overflows is an error.
fn number(text: &str, wide: &mut bool) -> Result<Doc, String> {
    let integer = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Doc::Int(i));
        }
        *wide = true;
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
