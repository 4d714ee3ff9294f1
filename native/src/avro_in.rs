//! Avro single-object change events read into a `Doc`, as fastavro reads them with the
//! current schema as reader. Written by hand for the two layouts the kernel knows: the Avro
//! crates read maps into hash maps, which lose the order properties must keep.

use crate::doc_map::DocMap;

use crate::doc::Doc;
use crate::validate::{Reject, Verdict};

/// Parsing canonical forms of the ProfileChange versions this reader knows.
pub const CHANGE_V1: &str = r#"{"name":"dev.profilestreams.ProfileChange","type":"record","fields":[{"name":"customer_id","type":"string"},{"name":"source","type":"string"},{"name":"event_id","type":["null","string"]},{"name":"op","type":{"name":"dev.profilestreams.ChangeOp","type":"enum","symbols":["upsert","delete"]}},{"name":"update_timestamp","type":["null","long","double","string"]},{"name":"properties","type":{"type":"map","values":["null","boolean","long","double","string"]}},{"name":"property_timestamps","type":{"type":"map","values":["long","double","string"]}}]}"#;
pub const CHANGE_V0: &str = r#"{"name":"dev.profilestreams.ProfileChange","type":"record","fields":[{"name":"customer_id","type":"string"},{"name":"source","type":"string"},{"name":"op","type":{"name":"dev.profilestreams.ChangeOp","type":"enum","symbols":["upsert","delete"]}},{"name":"update_timestamp","type":["null","long","double","string"]},{"name":"properties","type":{"type":"map","values":["null","boolean","long","double","string"]}}]}"#;

pub const MARKER: [u8; 2] = [0xc3, 0x01];
pub const HEADER_SIZE: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    V0,
    V1,
    /// Known to the registry, not to this reader: the reference decodes it.
    Other,
}

pub fn layout_of(canonical: &str) -> Layout {
    match canonical {
        CHANGE_V1 => Layout::V1,
        CHANGE_V0 => Layout::V0,
        _ => Layout::Other,
    }
}

enum Failure {
    Bad(&'static str),
    Defer,
}

type Read<T> = Result<T, Failure>;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Read<u8> {
        let b = *self.data.get(self.pos).ok_or(Failure::Bad("EOFError"))?;
        self.pos += 1;
        Ok(b)
    }

    /// A zigzag varint. Longer than 64 bits is left to the reference (fastavro wraps it).
    fn long(&mut self) -> Read<i64> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(Failure::Defer);
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(Failure::Defer)
    }

    fn string(&mut self) -> Read<String> {
        let size = self.long()?;
        if size < 0 {
            return Err(Failure::Defer);
        }
        let end = self
            .pos
            .checked_add(size as usize)
            .filter(|end| *end <= self.data.len())
            .ok_or(Failure::Bad("EOFError"))?;
        let text = std::str::from_utf8(&self.data[self.pos..end])
            .map_err(|_| Failure::Bad("UnicodeDecodeError"))?;
        self.pos = end;
        Ok(text.to_string())
    }

    fn double(&mut self) -> Read<f64> {
        let end = self.pos + 8;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(Failure::Bad("EOFError"))?;
        self.pos = end;
        Ok(f64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn index(&mut self, count: i64) -> Read<i64> {
        let index = self.long()?;
        if index < 0 {
            return Err(Failure::Defer); // Python would index from the end
        }
        if index >= count {
            return Err(Failure::Bad("IndexError"));
        }
        Ok(index)
    }

    /// A union of `branches` (each "null", "boolean", "long", "double" or "string").
    fn union(&mut self, branches: &[&str]) -> Read<Doc> {
        let index = self.index(branches.len() as i64)? as usize;
        Ok(match branches[index] {
            "null" => Doc::Null,
            "boolean" => match self.byte()? {
                0 => Doc::Bool(false),
                1 => Doc::Bool(true),
                _ => return Err(Failure::Defer),
            },
            "long" => Doc::Int(self.long()?),
            "double" => Doc::Float(self.double()?),
            _ => Doc::Str(self.string()?),
        })
    }

    fn map(&mut self, branches: &[&str]) -> Read<Doc> {
        let mut out = DocMap::default();
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(Doc::Map(out));
            }
            if count < 0 {
                count = count.checked_neg().ok_or(Failure::Defer)?;
                self.long()?; // the block's size in bytes
            }
            for _ in 0..count {
                let key = self.string()?;
                let value = self.union(branches)?;
                out.insert(key, value);
            }
        }
    }
}

const PROPERTY_VALUES: [&str; 5] = ["null", "boolean", "long", "double", "string"];
const TIMESTAMP_VALUES: [&str; 3] = ["long", "double", "string"];
const UPDATE_TIMESTAMP: [&str; 4] = ["null", "long", "double", "string"];
const OPS: [&str; 2] = ["upsert", "delete"];

/// The record's fields in the current schema's order (defaults for fields `layout` lacks).
pub fn read_change(data: &[u8], layout: Layout) -> Result<Doc, Verdict> {
    let mut reader = Reader {
        data,
        pos: HEADER_SIZE,
    };
    match read_fields(&mut reader, layout) {
        Ok(doc) if reader.pos == data.len() => Ok(doc),
        Ok(_) => Err(Verdict::Reject(Reject::new(
            "bad_avro",
            format!("{} trailing bytes", data.len() - reader.pos),
        ))),
        Err(Failure::Bad(kind)) => Err(Verdict::Reject(Reject::new(
            "bad_avro",
            format!("undecodable body: {kind}"),
        ))),
        Err(Failure::Defer) => Err(Verdict::Defer),
    }
}

fn read_fields(r: &mut Reader<'_>, layout: Layout) -> Read<Doc> {
    let customer_id = Doc::Str(r.string()?);
    let source = Doc::Str(r.string()?);
    let event_id = if layout == Layout::V1 {
        r.union(&["null", "string"])?
    } else {
        Doc::Null
    };
    let op = Doc::Str(OPS[r.index(2)? as usize].to_string());
    let update_timestamp = r.union(&UPDATE_TIMESTAMP)?;
    let properties = r.map(&PROPERTY_VALUES)?;
    let property_timestamps = if layout == Layout::V1 {
        r.map(&TIMESTAMP_VALUES)?
    } else {
        Doc::Map(DocMap::default())
    };
    let mut fields = DocMap::with_capacity(7);
    fields.insert("customer_id".to_string(), customer_id);
    fields.insert("source".to_string(), source);
    fields.insert("event_id".to_string(), event_id);
    fields.insert("op".to_string(), op);
    fields.insert("update_timestamp".to_string(), update_timestamp);
    fields.insert("properties".to_string(), properties);
    fields.insert("property_timestamps".to_string(), property_timestamps);
    Ok(Doc::Map(fields))
}
