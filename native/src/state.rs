//! A profile's stored bytes, as `streams/state/codec.py` writes them with orjson:
//! `{"p":{name:[value,last_update,source]},"d":watermark}`.

use crate::doc::{parse_json, Doc, Parsed};
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
