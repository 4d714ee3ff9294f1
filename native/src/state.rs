//! A profile's stored bytes, as `streams/state/codec.py` writes them with orjson:
//! `{"p":{name:[value,last_update,source]},"d":watermark}`.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::doc::{parse_json, Doc, Parsed};
use crate::hashing::OrderedMap;
use crate::json_in::{refuse, Long, Scalar, Text};
use crate::json_out;
use crate::merge::{Profile, PropertyState};
use crate::value::Value;

pub fn encode(profile: &Profile, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"p\":{");
    for (i, (name, state)) in profile.properties.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_out::string(name, out);
        out.extend_from_slice(b":[");
        json_out::value(&state.value, out);
        out.push(b',');
        json_out::int(state.last_update, out);
        out.push(b',');
        json_out::string(&state.source, out);
        out.push(b']');
    }
    out.extend_from_slice(b"},\"d\":");
    json_out::opt_int(profile.deleted_at, out);
    out.push(b'}');
}

pub fn encoded_len(profile: &Profile) -> usize {
    let mut out = Vec::new();
    encode(profile, &mut out);
    out.len()
}

pub fn decode(data: &[u8]) -> Result<Profile, String> {
    if let Some(profile) = decode_as_written(data) {
        return Ok(profile);
    }
    let mut top = match parse_json(data) {
        Parsed::Doc(Doc::Map(top), false) => top,
        Parsed::BadJson(detail) => return Err(format!("stored state: {detail}")),
        _ => return Err("stored state is not an object of int64 numbers".into()),
    };
    let mut profile = Profile::default();
    match top.swap_remove("p") {
        Some(Doc::Map(properties)) => {
            profile.properties.reserve(properties.len());
            for (name, entry) in properties {
                profile.properties.insert(name, property(entry)?);
            }
        }
        _ => return Err("stored state has no \"p\" object".into()),
    }
    profile.deleted_at = match top.swap_remove("d") {
        Some(Doc::Null) => None,
        Some(Doc::Int(at)) => Some(at),
        _ => return Err("stored state has no \"d\"".into()),
    };
    Ok(profile)
}

fn property(entry: Doc) -> Result<PropertyState, String> {
    let Doc::List(items) = entry else {
        return Err("stored property is not a list".into());
    };
    let [value, last_update, source]: [Doc; 3] = items
        .try_into()
        .map_err(|_| "stored property is not [value, time, source]")?;
    let value = match value {
        Doc::Null => Value::Null,
        Doc::Bool(b) => Value::Bool(b),
        Doc::Str(s) => Value::Str(s),
        Doc::Int(i) => Value::Int(i),
        Doc::Float(f) => Value::Float(f),
        _ => return Err("stored value is not a scalar".into()),
    };
    let (Doc::Int(last_update), Doc::Str(source)) = (last_update, source) else {
        return Err("stored property is not [value, int time, source]".into());
    };
    Ok(PropertyState {
        value,
        last_update,
        source,
    })
}

/// The bytes `encode` writes, read straight into a profile (no document in between: most of a
/// batch's reading is its stored states). None for any other layout or a value this reader
/// does not type as the reference does; `decode` reads those as documents.
fn decode_as_written(data: &[u8]) -> Option<Profile> {
    // Checked as UTF-8 once, not string by string; `decode` judges any other bytes.
    let mut deserializer = serde_json::Deserializer::from_str(std::str::from_utf8(data).ok()?);
    let profile = ProfileSeed.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(profile)
}

/// `{"p": {...}, "d": watermark}`, in that order and nothing more.
struct ProfileSeed;

impl<'de> DeserializeSeed<'de> for ProfileSeed {
    type Value = Profile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Profile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProfileSeed {
    type Value = Profile;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a stored state")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Profile, A::Error> {
        if map.next_key::<Text<'_>>()?.is_none_or(|key| key.0 != "p") {
            return Err(refuse());
        }
        let properties = map.next_value_seed(PropertiesSeed)?;
        if map.next_key::<Text<'_>>()?.is_none_or(|key| key.0 != "d") {
            return Err(refuse());
        }
        let deleted_at = map.next_value::<Option<Long>>()?.map(|at| at.0);
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(refuse());
        }
        Ok(Profile {
            properties,
            deleted_at,
        })
    }
}

/// `{name: [value, last_update, source]}`; a repeated name keeps its first place and last
/// entry, as a Python dict does.
struct PropertiesSeed;

impl<'de> DeserializeSeed<'de> for PropertiesSeed {
    type Value = OrderedMap<String, PropertyState>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PropertiesSeed {
    type Value = OrderedMap<String, PropertyState>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("stored properties")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut properties =
            OrderedMap::with_capacity_and_hasher(map.size_hint().unwrap_or(8), Default::default());
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let state = map.next_value_seed(EntrySeed)?;
            properties.insert(name.0.into_owned(), state);
        }
        Ok(properties)
    }
}

/// `[value, last_update, source]`.
struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = PropertyState;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = PropertyState;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a stored property")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PropertyState, A::Error> {
        let value = match seq.next_element::<Scalar<'de>>()?.ok_or_else(refuse)? {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Str(s) => Value::Str(s.into_owned()),
        };
        let last_update = seq.next_element::<Long>()?.ok_or_else(refuse)?.0;
        let source = seq.next_element::<Text<'de>>()?.ok_or_else(refuse)?.0;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(refuse());
        }
        Ok(PropertyState {
            value,
            last_update,
            source: source.into_owned(),
        })
    }
}
