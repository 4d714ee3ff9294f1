//! Output records: upserts (Avro single-object or JSON, as `streams/codecs/upserts.py` and
//! `upsert_writer.py`) and stale writes (JSON, as `processor/batch.py`'s `_stale_json`).

use crate::json_out;
use crate::merge::{MergeResult, Stale};
use crate::validate::Event;
use crate::value::Value;

/// Parsing canonical form of the ProfileUpsert schema this writer writes.
pub const UPSERT_V1: &str = r#"{"name":"dev.profilestreams.ProfileUpsert","type":"record","fields":[{"name":"customer_id","type":"string"},{"name":"op","type":{"name":"dev.profilestreams.Op","type":"enum","symbols":["UPSERT","DELETE"]}},{"name":"properties","type":{"type":"map","values":{"name":"dev.profilestreams.PropertyState","type":"record","fields":[{"name":"value","type":["null","boolean","long","double","string"]},{"name":"last_update","type":"long"}]}}},{"name":"deleted_at","type":["null","long"]},{"name":"source","type":"string"},{"name":"event_id","type":["null","string"]},{"name":"processed_at","type":"long"}]}"#;

fn long(value: i64, out: &mut Vec<u8>) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n > 0x7f {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(text: &str, out: &mut Vec<u8>) {
    long(text.len() as i64, out);
    out.extend_from_slice(text.as_bytes());
}

pub fn upsert_avro(
    header: &[u8],
    event: &Event,
    merged: &MergeResult<'_>,
    processed_at: i64,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(header);
    string(&event.customer_id, out);
    out.push(if event.delete { 2 } else { 0 });
    if !merged.changed.is_empty() {
        long(merged.changed.len() as i64, out);
        for &(index, timestamp) in &merged.changed {
            let (name, value) = &event.properties[index];
            string(name, out);
            match value {
                Value::Null => out.push(0),
                Value::Bool(b) => out.extend_from_slice(&[2, u8::from(*b)]),
                Value::Int(i) => {
                    out.push(4);
                    long(*i, out);
                }
                Value::Float(f) => {
                    out.push(6);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Value::Str(s) => {
                    out.push(8);
                    string(s, out);
                }
            }
            long(timestamp, out);
        }
    }
    out.push(0);
    match merged.deleted_at {
        None => out.push(0),
        Some(at) => {
            out.push(2);
            long(at, out);
        }
    }
    string(&event.source, out);
    match &event.event_id {
        None => out.push(0),
        Some(id) => {
            out.push(2);
            string(id, out);
        }
    }
    long(processed_at, out);
}

pub fn upsert_json(event: &Event, merged: &MergeResult<'_>, processed_at: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"customer_id\":");
    json_out::string(&event.customer_id, out);
    out.extend_from_slice(if event.delete {
        b",\"op\":\"DELETE\",\"properties\":{"
    } else {
        b",\"op\":\"UPSERT\",\"properties\":{"
    });
    for (i, &(index, timestamp)) in merged.changed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (name, value) = &event.properties[index];
        json_out::string(name, out);
        out.extend_from_slice(b":{\"value\":");
        json_out::value(value, out);
        out.extend_from_slice(b",\"last_update\":");
        json_out::int(timestamp, out);
        out.push(b'}');
    }
    out.extend_from_slice(b"},\"deleted_at\":");
    json_out::opt_int(merged.deleted_at, out);
    json_tail(event, processed_at, out);
}

pub fn stale_json(event: &Event, stale: &Stale<'_>, processed_at: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"customer_id\":");
    json_out::string(&event.customer_id, out);
    out.extend_from_slice(b",\"property\":");
    json_out::opt_string(stale.property, out);
    out.extend_from_slice(b",\"value\":");
    match stale.value {
        Some(value) => json_out::value(value, out),
        None => json_out::null(out),
    }
    out.extend_from_slice(b",\"timestamp\":");
    json_out::int(stale.timestamp, out);
    out.extend_from_slice(b",\"stored_last_update\":");
    json_out::int(stale.stored_last_update, out);
    out.extend_from_slice(b",\"reason\":\"");
    out.extend_from_slice(stale.reason.as_str().as_bytes());
    out.push(b'"');
    json_tail(event, processed_at, out);
}

/// `,"source":..,"event_id":..,"processed_at":..}`: how upserts and stale records end.
fn json_tail(event: &Event, processed_at: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"source\":");
    json_out::string(&event.source, out);
    out.extend_from_slice(b",\"event_id\":");
    json_out::opt_string(event.event_id.as_deref(), out);
    out.extend_from_slice(b",\"processed_at\":");
    json_out::int(processed_at, out);
    out.push(b'}');
}
