//! A profile's stored bytes, as `streams/processor/state_codec.py` writes them with orjson:
//! `{"p":{name:[value,last_update,source]},"d":watermark}`.

use serde_json::Value as Json;

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
    let json: Json = serde_json::from_slice(data).map_err(|e| format!("stored state: {e}"))?;
    let mut profile = Profile::default();
    let Json::Object(mut top) = json else {
        return Err("stored state is not an object".into());
    };
    match top.swap_remove("p") {
        Some(Json::Object(properties)) => {
            for (name, entry) in properties {
                profile.properties.insert(name, property(entry)?);
            }
        }
        _ => return Err("stored state has no \"p\" object".into()),
    }
    profile.deleted_at = match top.swap_remove("d") {
        Some(Json::Null) => None,
        Some(Json::Number(n)) => Some(integer(&n)?),
        _ => return Err("stored state has no \"d\"".into()),
    };
    Ok(profile)
}

fn property(entry: Json) -> Result<PropertyState, String> {
    let Json::Array(items) = entry else {
        return Err("stored property is not a list".into());
    };
    let [value, last_update, source]: [Json; 3] = items
        .try_into()
        .map_err(|_| "stored property is not [value, time, source]")?;
    let value = match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::String(s) => Value::Str(s),
        Json::Number(n) => {
            let text = n.as_str();
            if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                Value::Float(text.parse().map_err(|_| "stored float")?)
            } else {
                Value::Int(text.parse().map_err(|_| "stored integer beyond int64")?)
            }
        }
        _ => return Err("stored value is not a scalar".into()),
    };
    let Json::Number(last_update) = last_update else {
        return Err("stored time is not a number".into());
    };
    let Json::String(source) = source else {
        return Err("stored source is not a string".into());
    };
    Ok(PropertyState {
        value,
        last_update: integer(&last_update)?,
        source,
    })
}

fn integer(n: &serde_json::Number) -> Result<i64, String> {
    n.as_str()
        .parse()
        .map_err(|_| format!("stored time {} is not an int64", n.as_str()))
}
