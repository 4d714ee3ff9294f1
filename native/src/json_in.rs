//! Borrowing readers of JSON scalars and strings for serde_json (with `arbitrary_precision`):
//! what the connector's upsert reader and the state reader share. Anything they do not take
//! as the Python reference would is refused, and the caller leaves it to the reference.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A property value as the reference types it.
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

/// The key serde_json's `arbitrary_precision` hands a number's text under, as a one-entry map.
pub(crate) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Any refusal: the reference decides what it is.
pub(crate) fn refuse<E: de::Error>() -> E {
    E::custom("left to the reference")
}

/// A JSON string, borrowed when it has no escapes.
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(value)))
    }
}

/// An integer orjson reads as an int in int64 (the reference takes larger ones too, which are
/// left to it).
pub(crate) struct Long(pub(crate) i64);

impl<'de> Deserialize<'de> for Long {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(ScalarVisitor)? {
            Scalar::Int(i) => Ok(Long(i)),
            _ => Err(refuse()),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON scalar")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar<'de>, E> {
        i64::try_from(value).map(Scalar::Int).map_err(|_| refuse())
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(value)))
    }

    /// A number's text under `NUMBER_TOKEN`. An object in the input with that key is told
    /// apart by its value: serde_json hands a number's text over as an owned `String`, and a
    /// string read from the input never (borrowed, or copied out of its escapes). Only a float
    /// literal is read here: an integer literal that comes as text ("-0", or one beyond int64)
    /// is an int or a float to orjson, as the reference judges.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        if !map.next_key::<NumberKey>()?.is_some_and(|key| key.0) {
            return Err(refuse());
        }
        let text = map.next_value::<NumberText>()?.0;
        if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            return Err(refuse());
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Scalar::Float(value)),
            _ => Err(refuse()),
        }
    }
}

/// A number's text, as serde_json's number map holds it.
pub(crate) struct NumberText(pub(crate) String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(NumberTextVisitor)
    }
}

struct NumberTextVisitor;

impl Visitor<'_> for NumberTextVisitor {
    type Value = NumberText;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a number's text")
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<NumberText, E> {
        Ok(NumberText(value))
    }

    /// A string read from the input: an object that only looks like a number.
    fn visit_str<E: de::Error>(self, _value: &str) -> Result<NumberText, E> {
        Err(refuse())
    }
}

/// Whether a map's first key is serde_json's number token.
pub(crate) struct NumberKey(pub(crate) bool);

impl<'de> Deserialize<'de> for NumberKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(NumberKeyVisitor)
    }
}

struct NumberKeyVisitor;

impl<'de> Visitor<'de> for NumberKeyVisitor {
    type Value = NumberKey;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<NumberKey, E> {
        Ok(NumberKey(value == NUMBER_TOKEN))
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<NumberKey, E> {
        Ok(NumberKey(false))
    }
}
