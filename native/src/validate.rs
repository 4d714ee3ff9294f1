//! `EventDecoder._validate`: a decoded document to a change event, rule for rule and in the
//! same order, so the first rule an event breaks gives the same reason on both paths.

use crate::doc::Doc;
use crate::doc_map::DocMap;
use crate::hashing::FastMap;
use crate::timestamps::{to_epoch_ms, MAX_SECONDS, UNKNOWN_TS};
use crate::value::Value;

const FIELDS: [&str; 7] = [
    "customer_id",
    "source",
    "event_id",
    "op",
    "update_timestamp",
    "properties",
    "property_timestamps",
];
const NAME_CLIP: usize = 64;

#[derive(Clone, Debug)]
pub struct Event {
    pub customer_id: String,
    pub source: String,
    pub event_id: Option<String>,
    pub delete: bool,
    pub timestamp: i64,
    pub properties: Vec<(String, Value)>,
    pub property_timestamps: FastMap<String, i64>,
}

#[derive(Clone, Debug)]
pub struct Reject {
    pub reason: &'static str,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: &'static str, detail: String) -> Self {
        Reject { reason, detail }
    }

    pub fn integer_out_of_range(where_: &str) -> Self {
        Reject::new(
            "integer_out_of_range",
            format!("{where_} is an integer outside the signed 64-bit range"),
        )
    }
}

/// Why an event is not turned into one here.
#[derive(Clone, Debug)]
pub enum Verdict {
    Reject(Reject),
    /// Beyond what the kernel reads itself (an unusual ISO-8601 form, deep nesting, an odd
    /// Avro varint): the reference decoder decides.
    Defer,
}

impl From<Reject> for Verdict {
    fn from(reject: Reject) -> Self {
        Verdict::Reject(reject)
    }
}

pub struct Limits {
    pub max_event_bytes: usize,
    pub max_properties: usize,
    pub max_skew_ms: i64,
}

fn reject(reason: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict::Reject(Reject::new(reason, detail.into()))
}

/// `logs.clip_name`: short, an email's local part masked.
pub fn clip_name(name: &str) -> String {
    let masked = match name.find('@') {
        Some(at) => {
            let first: String = name.chars().take(1).collect();
            format!("{first}***{}", &name[at..])
        }
        None => name.to_string(),
    };
    if masked.chars().count() <= NAME_CLIP {
        masked
    } else {
        let head: String = masked.chars().take(NAME_CLIP).collect();
        format!("{head}...")
    }
}

pub fn validate(
    doc: Doc,
    key: Option<&[u8]>,
    record_timestamp_ms: i64,
    now_ms: i64,
    limits: &Limits,
) -> Result<Event, Verdict> {
    let mut map = match doc {
        Doc::Map(map) => map,
        other => {
            return Err(reject(
                "not_an_object",
                format!("top level is {}", other.type_name()),
            ))
        }
    };
    if map.keys().any(|name| !FIELDS.contains(&name.as_str())) {
        let mut unknown: Vec<String> = map
            .keys()
            .filter(|name| !FIELDS.contains(&name.as_str()))
            .map(|name| clip_name(name))
            .collect();
        unknown.sort();
        return Err(reject(
            "unknown_field",
            format!("unknown field(s): {}", unknown.join(", ")),
        ));
    }

    let customer_id = match map.swap_remove("customer_id") {
        Some(Doc::Str(s)) => s,
        None | Some(Doc::Null) => {
            return Err(reject("missing_customer_id", "customer_id is required"))
        }
        Some(_) => return Err(reject("bad_type", "customer_id must be a string")),
    };
    if customer_id.is_empty() {
        return Err(reject("missing_customer_id", "customer_id is empty"));
    }
    if customer_id.starts_with('\0') {
        return Err(reject("bad_type", "customer_id must not start with NUL"));
    }
    if let Some(key) = key {
        if key != customer_id.as_bytes() {
            return Err(reject("key_mismatch", "Kafka key differs from customer_id"));
        }
    }
    let source = match map.swap_remove("source") {
        Some(Doc::Str(s)) if !s.is_empty() => s,
        _ => {
            return Err(reject(
                "missing_source",
                "source must be a non-empty string",
            ))
        }
    };
    let event_id = match map.swap_remove("event_id") {
        None | Some(Doc::Null) => None,
        Some(Doc::Str(s)) => Some(s),
        Some(_) => return Err(reject("bad_type", "event_id must be a string")),
    };
    let delete = match map.swap_remove("op") {
        None => false,
        Some(Doc::Str(op)) if op == "upsert" => false,
        Some(Doc::Str(op)) if op == "delete" => true,
        Some(_) => return Err(reject("bad_op", "op must be \"upsert\" or \"delete\"")),
    };

    let properties = match map.swap_remove("properties") {
        None => DocMap::default(),
        Some(Doc::Map(properties)) => properties,
        Some(_) => return Err(reject("bad_type", "properties must be an object")),
    };
    let properties = check_values(properties, limits)?;

    let timestamp = match map.swap_remove("update_timestamp") {
        None | Some(Doc::Null) => {
            if record_timestamp_ms >= 0 {
                record_timestamp_ms
            } else {
                UNKNOWN_TS
            }
        }
        Some(Doc::Float(v)) if (0.0..=MAX_SECONDS as f64).contains(&v) => {
            (v * 1000.0).round_ties_even() as i64
        }
        Some(other) => to_epoch_ms(&other, "update_timestamp")?,
    };
    let limit = now_ms.saturating_add(limits.max_skew_ms);
    if timestamp > limit {
        return Err(reject(
            "future_timestamp",
            format!("update time {timestamp} ms > now + skew"),
        ));
    }
    if delete {
        if !properties.is_empty() {
            return Err(reject(
                "bad_op",
                "a delete removes the whole profile: no properties",
            ));
        }
        if timestamp == UNKNOWN_TS {
            return Err(reject(
                "bad_timestamp",
                "a delete needs a known update time",
            ));
        }
    }

    let property_timestamps = match map.swap_remove("property_timestamps") {
        Some(raw) if raw.truthy() => property_timestamps(raw, &properties, limit)?,
        None | Some(Doc::Null) | Some(Doc::Map(_)) => FastMap::default(),
        Some(_) => return Err(reject("bad_type", "property_timestamps must be an object")),
    };
    Ok(Event {
        customer_id,
        source,
        event_id,
        delete,
        timestamp,
        properties,
        property_timestamps,
    })
}

fn check_values(properties: DocMap<Doc>, limits: &Limits) -> Result<Vec<(String, Value)>, Verdict> {
    if properties.len() > limits.max_properties {
        return Err(reject(
            "too_many_properties",
            format!(
                "{} properties > {}",
                properties.len(),
                limits.max_properties
            ),
        ));
    }
    if properties.contains_key("") {
        return Err(reject("bad_type", "property names must not be empty"));
    }
    let mut out = Vec::with_capacity(properties.len());
    for (name, value) in properties {
        let value = match value {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(b),
            Doc::Str(s) => Value::Str(s),
            Doc::Int(i) => Value::Int(i),
            Doc::BigInt => {
                return Err(Reject::integer_out_of_range(&format!(
                    "property {:?}",
                    clip_name(&name)
                ))
                .into())
            }
            // A float beyond +-2^63 may stand for an integer literal out of range: such JSON
            // documents were refused before validation (`Parsed::Doc`'s flag).
            Doc::Float(f) if f.is_finite() => Value::Float(f),
            Doc::Float(_) => {
                return Err(reject(
                    "bad_type",
                    format!("property {:?}: non-finite float", clip_name(&name)),
                ))
            }
            other => {
                return Err(reject(
                    "bad_type",
                    format!(
                        "property {:?}: {} is not null/bool/number/string",
                        clip_name(&name),
                        other.type_name()
                    ),
                ))
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

fn property_timestamps(
    raw: Doc,
    properties: &[(String, Value)],
    limit: i64,
) -> Result<FastMap<String, i64>, Verdict> {
    let Doc::Map(raw) = raw else {
        return Err(reject("bad_type", "property_timestamps must be an object"));
    };
    let mut result = FastMap::with_capacity_and_hasher(raw.len(), Default::default());
    let names: FastMap<&str, ()> = properties
        .iter()
        .map(|(name, _)| (name.as_str(), ()))
        .collect();
    for (name, value) in raw {
        if !names.contains_key(name.as_str()) {
            return Err(reject(
                "bad_timestamp",
                format!(
                    "property_timestamps names {:?}, not in properties",
                    clip_name(&name)
                ),
            ));
        }
        let field = format!("property_timestamps.{}", clip_name(&name));
        let ms = to_epoch_ms(&value, &field)?;
        if ms > limit {
            return Err(reject(
                "future_timestamp",
                format!("{:?} time {ms} ms > now + skew", clip_name(&name)),
            ));
        }
        result.insert(name, ms);
    }
    Ok(result)
}
