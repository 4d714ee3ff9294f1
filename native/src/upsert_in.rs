//! Upserts read back (the connectors' `UpsertCodec.decode` in `streams/codecs/upserts.py`):
//! Avro single-object messages in the current ProfileUpsert schema and JSON objects, straight
//! into `Upsert` and `PropertyState` tuples.
//!
//! Only the certain case is read here: anything else (a malformed message, an older schema, a
//! number or a shape the reference might take otherwise, a repeated key) is `None`, and the
//! Python reference decodes it, so results and errors stay the reference's by construction.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyString, PyType};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::avro_in::{HEADER_SIZE, MARKER};
use crate::copy_rows::wire_rows;
use crate::hashing::FastMap;
use crate::json_in::{refuse, Long, Scalar, Text};
use crate::records::{new_record, record_class, untrack};
use crate::upsert_out::UPSERT_V1;

/// An upsert's fields as read, strings borrowed from the message where they can be.
pub(crate) struct Wire<'a> {
    pub(crate) customer_id: Cow<'a, str>,
    pub(crate) delete: bool,
    pub(crate) properties: Vec<(Cow<'a, str>, Scalar<'a>, i64)>,
    deleted_at: Option<i64>,
    pub(crate) source: Cow<'a, str>,
    event_id: Option<Cow<'a, str>>,
    processed_at: i64,
}

/// Reads upserts into the classes it was built with; `decode` is None for what it leaves to
/// the reference.
#[pyclass(frozen, module = "streams._native")]
pub struct UpsertDecoder {
    /// Marker and fingerprint of the current schema; None when that schema is not the one
    /// this reader knows (every Avro message then goes to the reference).
    header: Option<Vec<u8>>,
    upsert: Py<PyType>,
    property_state: Py<PyType>,
    ops: [Py<PyAny>; 2],
    /// Property names and sources as Python strings: few, and in every upsert. One object
    /// per name, with its hash kept, for every upsert a connector holds.
    names: Mutex<FastMap<Box<str>, Py<PyString>>>,
}

/// Distinct names kept; more (a flood of one-off names) are made afresh each time.
const NAMES_KEPT: usize = 4096;

#[pymethods]
impl UpsertDecoder {
    /// `schema` is the current ProfileUpsert's (fingerprint, parsing canonical form); `ops`
    /// the model's (UPSERT, DELETE).
    #[new]
    #[pyo3(signature = (*, schema, upsert, property_state, ops))]
    fn new(
        schema: (Vec<u8>, String),
        upsert: Bound<'_, PyAny>,
        property_state: Bound<'_, PyAny>,
        ops: (Py<PyAny>, Py<PyAny>),
    ) -> PyResult<Self> {
        let (fingerprint, canonical) = schema;
        if fingerprint.len() != HEADER_SIZE - MARKER.len() {
            return Err(PyValueError::new_err("a schema fingerprint has 8 bytes"));
        }
        Ok(Self {
            header: (canonical == UPSERT_V1).then(|| [&MARKER[..], &fingerprint].concat()),
            upsert: record_class(&upsert, 7)?.unbind(),
            property_state: record_class(&property_state, 3)?.unbind(),
            ops: [ops.0, ops.1],
            names: Mutex::default(),
        })
    }

    /// The upsert in `data`, or None for the reference to decode.
    fn decode<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.wire(data) {
            Some(wire) => self.build(py, wire),
            None => Ok(None),
        }
    }

    /// The PostgreSQL sink's staging rows straight from a batch of upsert messages, with the
    /// GIL released (`copy_rows::wire_rows`): `(texts, to_fold, placed)`, one COPY text and
    /// one list of message positions per share, and the positions left to the Python fold.
    /// None when a message is not one this reads: the sink then decodes the batch in Python.
    fn copy_text<'py>(
        &self,
        py: Python<'py>,
        values: Vec<PyBackedBytes>,
        shares: usize,
    ) -> Option<CopyText<'py>> {
        let rows = py.detach(|| {
            let wires: Option<Vec<Wire<'_>>> = values.iter().map(|v| self.wire(v)).collect();
            wires.map(|wires| wire_rows(&wires, shares.max(1)))
        })?;
        let texts = rows.texts.iter().map(|t| PyBytes::new(py, t)).collect();
        Some((texts, rows.to_fold, rows.placed))
    }
}

/// What `copy_text` answers: per share its COPY text and the messages in it, then the rest.
type CopyText<'py> = (Vec<Bound<'py, PyBytes>>, Vec<usize>, Vec<Vec<usize>>);

impl UpsertDecoder {
    fn wire<'a>(&self, data: &'a [u8]) -> Option<Wire<'a>> {
        if data.starts_with(&MARKER) {
            match &self.header {
                Some(header) if data.starts_with(header) => read_avro(data),
                _ => None,
            }
        } else {
            read_json(data)
        }
    }

    fn build<'py>(&self, py: Python<'py>, wire: Wire<'_>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Not waited for: a collection during this call may run Python code that lets another
        // thread in here, which would then hold the GIL waiting for this thread.
        let mut names = self.names.try_lock().ok();
        let mut name_of = |text: &str| {
            let Some(names) = names.as_mut() else {
                return PyString::new(py, text);
            };
            if let Some(name) = names.get(text) {
                return name.clone_ref(py).into_bound(py);
            }
            let name = PyString::new(py, text);
            if names.len() < NAMES_KEPT {
                names.insert(text.into(), name.clone().unbind());
            }
            name
        };
        // One source object for the upsert and each of its states, as the reference shares it.
        let source = name_of(&wire.source).into_any();
        let property_state = self.property_state.bind(py);
        let count = wire.properties.len();
        let properties = PyDict::new(py);
        // Properties of one upsert mostly share their update time: one int object for a run.
        let mut last: Option<(i64, Bound<'py, PyAny>)> = None;
        for (name, value, last_update) in wire.properties {
            let stamp = match &last {
                Some((at, stamp)) if *at == last_update => stamp.clone(),
                _ => {
                    let stamp = last_update.into_pyobject(py)?.into_any();
                    last = Some((last_update, stamp.clone()));
                    stamp
                }
            };
            let state = new_record(property_state, [scalar(py, value), stamp, source.clone()])?;
            properties.set_item(name_of(&name), state)?;
        }
        drop(names);
        if properties.len() != count {
            return Ok(None); // a repeated name: the reference keeps the last value
        }
        // It holds untracked states only (a tracked value put in later tracks it again).
        untrack(&properties);
        let none = || py.None().into_bound(py);
        let upsert = new_record(
            self.upsert.bind(py),
            [
                PyString::new(py, &wire.customer_id).into_any(),
                self.ops[usize::from(wire.delete)].bind(py).clone(),
                properties.into_any(),
                match wire.deleted_at {
                    Some(at) => at.into_pyobject(py)?.into_any(),
                    None => none(),
                },
                source,
                match &wire.event_id {
                    Some(id) => PyString::new(py, id).into_any(),
                    None => none(),
                },
                wire.processed_at.into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok(Some(upsert))
    }
}

fn scalar<'py>(py: Python<'py>, value: Scalar<'_>) -> Bound<'py, PyAny> {
    match value {
        Scalar::Null => py.None().into_bound(py),
        Scalar::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Scalar::Int(i) => i.into_pyobject(py).expect("infallible").into_any(),
        Scalar::Float(f) => PyFloat::new(py, f).into_any(),
        Scalar::Str(s) => PyString::new(py, &s).into_any(),
    }
}

// ----- Avro: the body of the current schema, as fastavro reads it -----

struct Avro<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Avro<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A zigzag varint of at most 64 bits (fastavro wraps longer ones).
    fn long(&mut self) -> Option<i64> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return None;
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        None
    }

    fn text(&mut self) -> Option<&'a str> {
        let size = usize::try_from(self.long()?).ok()?;
        let end = self.pos.checked_add(size)?;
        let text = std::str::from_utf8(self.data.get(self.pos..end)?).ok()?;
        self.pos = end;
        Some(text)
    }

    fn double(&mut self) -> Option<f64> {
        let end = self.pos + 8;
        let bytes = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(f64::from_le_bytes(bytes.try_into().ok()?))
    }

    /// An enum symbol's or union branch's index below `count` (Python would read a negative
    /// one from the end).
    fn index(&mut self, count: usize) -> Option<usize> {
        usize::try_from(self.long()?).ok().filter(|i| *i < count)
    }

    /// PropertyState.value: ["null", "boolean", "long", "double", "string"].
    fn value(&mut self) -> Option<Scalar<'a>> {
        Some(match self.index(5)? {
            0 => Scalar::Null,
            1 => match self.byte()? {
                0 => Scalar::Bool(false),
                1 => Scalar::Bool(true),
                _ => return None,
            },
            2 => Scalar::Int(self.long()?),
            3 => Scalar::Float(self.double()?),
            _ => Scalar::Str(Cow::Borrowed(self.text()?)),
        })
    }
}

fn read_avro(data: &[u8]) -> Option<Wire<'_>> {
    let mut r = Avro {
        data,
        pos: HEADER_SIZE,
    };
    let customer_id = Cow::Borrowed(r.text()?);
    let delete = r.index(2)? == 1;
    let mut properties = Vec::new();
    loop {
        let count = r.long()?;
        if count == 0 {
            break;
        }
        if count < 0 {
            r.long()?; // the block's size in bytes
        }
        for _ in 0..count.checked_abs()? {
            let name = Cow::Borrowed(r.text()?);
            let value = r.value()?;
            properties.push((name, value, r.long()?));
        }
    }
    let deleted_at = match r.index(2)? {
        0 => None,
        _ => Some(r.long()?),
    };
    let source = Cow::Borrowed(r.text()?);
    let event_id = match r.index(2)? {
        0 => None,
        _ => Some(Cow::Borrowed(r.text()?)),
    };
    let processed_at = r.long()?;
    (r.pos == data.len()).then_some(Wire {
        customer_id,
        delete,
        properties,
        deleted_at,
        source,
        event_id,
        processed_at,
    })
}

// ----- JSON: what orjson reads and `_to_upsert` accepts, straight from serde_json's events -----

fn read_json(data: &[u8]) -> Option<Wire<'_>> {
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let wire = deserializer.deserialize_map(UpsertVisitor).ok()?;
    deserializer.end().ok()?;
    Some(wire)
}

struct UpsertVisitor;

impl<'de> Visitor<'de> for UpsertVisitor {
    type Value = Wire<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an upsert")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de>, A::Error> {
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
            match slot.replace(value) {
                None => Ok(()),
                Some(_) => Err(refuse()), // a repeated key
            }
        }
        let mut customer_id = None;
        let mut delete = None;
        let mut properties = None;
        let mut deleted_at = None;
        let mut source = None;
        let mut event_id = None;
        let mut processed_at = None;
        while let Some(key) = map.next_key::<Text<'_>>()? {
            match &*key.0 {
                "customer_id" => once(&mut customer_id, map.next_value::<Text<'de>>()?.0)?,
                "op" => {
                    let op = match &*map.next_value::<Text<'_>>()?.0 {
                        "UPSERT" => false,
                        "DELETE" => true,
                        _ => return Err(refuse()),
                    };
                    once(&mut delete, op)?;
                }
                "properties" => once(&mut properties, map.next_value_seed(PropertiesSeed)?)?,
                "deleted_at" => once(
                    &mut deleted_at,
                    map.next_value::<Option<Long>>()?.map(|at| at.0),
                )?,
                "source" => once(&mut source, map.next_value::<Text<'de>>()?.0)?,
                "event_id" => once(
                    &mut event_id,
                    map.next_value::<Option<Text<'de>>>()?.map(|id| id.0),
                )?,
                "processed_at" => once(&mut processed_at, map.next_value::<Long>()?.0)?,
                _ => return Err(refuse()), // the reference ignores it: left to it
            }
        }
        Ok(Wire {
            customer_id: customer_id.ok_or_else(refuse)?,
            delete: delete.ok_or_else(refuse)?,
            properties: properties.ok_or_else(refuse)?,
            deleted_at: deleted_at.flatten(),
            source: source.ok_or_else(refuse)?,
            event_id: event_id.flatten(),
            processed_at: processed_at.ok_or_else(refuse)?,
        })
    }
}

type Properties<'a> = Vec<(Cow<'a, str>, Scalar<'a>, i64)>;

struct PropertiesSeed;

impl<'de> DeserializeSeed<'de> for PropertiesSeed {
    type Value = Properties<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PropertiesSeed {
    type Value = Properties<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("properties")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut properties = Vec::new();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let state = map.next_value_seed(StateSeed)?;
            properties.push((name.0, state.0, state.1));
        }
        Ok(properties)
    }
}

/// `{"value": scalar, "last_update": int}`, nothing more.
struct StateSeed;

impl<'de> DeserializeSeed<'de> for StateSeed {
    type Value = (Scalar<'de>, i64);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StateSeed {
    type Value = (Scalar<'de>, i64);

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a property state")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        let mut last_update = None;
        while let Some(key) = map.next_key::<Text<'_>>()? {
            let repeated = match &*key.0 {
                "value" => value.replace(map.next_value::<Scalar<'de>>()?).is_some(),
                "last_update" => last_update.replace(map.next_value::<Long>()?.0).is_some(),
                _ => true,
            };
            if repeated {
                return Err(refuse());
            }
        }
        Ok((value.ok_or_else(refuse)?, last_update.ok_or_else(refuse)?))
    }
}
