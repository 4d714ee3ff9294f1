//! The PostgreSQL sink's staging rows (`upsert_row` and `profile_row` in
//! `streams/connect/sinks/postgres_sql.py`, the reference) as one buffer of COPY text: per row
//! `customer_id`, the properties JSON `{name: [value, last_update, source]}` (a float adds its
//! sign, 1 or -1) and `deleted_at` (or `\N`), tab separated, newline terminated, in the order
//! `FoldedBatch.rows` yields them.
//!
//! The sink validated every record (`refusal`), but this reads Python objects of any shape:
//! a value it cannot write exactly as the reference does (another type, a subclass, a
//! non-finite float, an integer beyond 64 bits, a lone surrogate, a NUL) makes it answer
//! None, and the sink encodes that share in Python.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::hashing::FastMap;
use crate::json_in::Scalar;
use crate::json_out;
use crate::upsert_in::Wire;

/// `Upsert` fields (a named tuple): customer_id, op, properties, deleted_at, source, ...
const UPSERT_CUSTOMER: usize = 0;
const UPSERT_PROPERTIES: usize = 2;
const UPSERT_DELETED_AT: usize = 3;
const UPSERT_SOURCE: usize = 4;
const UPSERT_FIELDS: usize = 7;
/// `PropertyState` fields: value, last_update, source.
const STATE_FIELDS: usize = 3;
/// A first guess of a row's size: growing a buffer of megabytes copies it each time.
const ROW_BYTES: usize = 512;

/// A value the reference writes, read out of its Python object.
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// The reason a share goes to the Python encoder: something not written here exactly.
struct Unencodable;

/// Python errors are bugs (an object of the wrong shape): they propagate. Unencodable
/// values are not: the caller gets None.
enum Stop {
    Unencodable,
    Error(PyErr),
}

impl From<PyErr> for Stop {
    fn from(error: PyErr) -> Self {
        Stop::Error(error)
    }
}

impl From<Unencodable> for Stop {
    fn from(_: Unencodable) -> Self {
        Stop::Unencodable
    }
}

type Step<T> = Result<T, Stop>;

/// The COPY text of a share's rows: its `singles` (`{customer_id: Upsert}`, each row the
/// upsert's own, every property its source's, without a watermark), then its `profiles`
/// (`{customer_id: Profile}`); customers with nothing to write are skipped. None when a value
/// is not one this writes exactly.
#[pyfunction]
pub fn copy_rows<'py>(
    singles: &Bound<'py, PyDict>,
    profiles: &Bound<'py, PyDict>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let py = singles.py();
    let mut out = Vec::with_capacity(ROW_BYTES * (singles.len() + profiles.len()));
    let written =
        write_singles(singles, &mut out).and_then(|()| write_profiles(profiles, &mut out));
    match written {
        Ok(()) => Ok(Some(PyBytes::new(py, &out))),
        Err(Stop::Unencodable) => Ok(None),
        Err(Stop::Error(error)) => Err(error),
    }
}

/// The positions of the `upserts` (a list of `Upsert`) that this module might not write
/// exactly: every upsert the sink's `refusal` refuses is among them (a NUL, a lone surrogate,
/// a non-finite float, an integer or timestamp beyond 64 bits), and so is anything of an
/// unusual type. The sink runs its Python `refusal` on these alone.
#[pyfunction]
pub fn suspect_upserts(upserts: &Bound<'_, PyList>) -> PyResult<Vec<usize>> {
    let mut suspects = Vec::new();
    for (index, upsert) in upserts.iter().enumerate() {
        match screen(upsert) {
            Ok(()) => {}
            Err(Stop::Unencodable) => suspects.push(index),
            Err(Stop::Error(error)) => return Err(error),
        }
    }
    Ok(suspects)
}

/// Whether `write_singles` (or `write_profiles`, after a fold) writes every field of this
/// upsert exactly, its watermark included.
fn screen(upsert: Bound<'_, PyAny>) -> Step<()> {
    let upsert = upsert.cast_into::<PyTuple>().map_err(PyErr::from)?;
    if upsert.len() != UPSERT_FIELDS {
        return Err(Stop::Unencodable);
    }
    text(&upsert.get_item(UPSERT_CUSTOMER)?)?;
    text(&upsert.get_item(UPSERT_SOURCE)?)?;
    let deleted_at = upsert.get_item(UPSERT_DELETED_AT)?;
    if !deleted_at.is_none() {
        int(&deleted_at)?;
    }
    let properties = upsert.get_item(UPSERT_PROPERTIES)?;
    for (name, state) in exact_dict(&properties)?.iter() {
        text(&name)?;
        let state = property_state(state)?;
        value(&state.get_item(0)?)?;
        int(&state.get_item(1)?)?;
        text(&state.get_item(2)?)?;
    }
    Ok(())
}

/// A batch's staging rows written straight from its messages (`UpsertDecoder.copy_text`).
pub(crate) struct WireRows {
    pub(crate) texts: Vec<Vec<u8>>,
    /// Per share, the positions of the messages its rows came from.
    pub(crate) placed: Vec<Vec<usize>>,
    /// The positions the sink folds in Python: deletes, every message of a customer seen more
    /// than once, and what `refusal` might refuse (a NUL, a non-finite float).
    pub(crate) to_fold: Vec<usize>,
}

/// The rows of the customers with one plain upsert in the batch, dealt round-robin over
/// `shares`, each exactly the row `upsert_row` makes of it; an upsert without properties has
/// no row (and no position anywhere: there is nothing to write).
pub(crate) fn wire_rows(wires: &[Wire<'_>], shares: usize) -> WireRows {
    let mut seen: FastMap<&str, u32> = FastMap::default();
    for wire in wires {
        *seen.entry(&wire.customer_id).or_default() += 1;
    }
    let mut rows = WireRows {
        texts: (0..shares)
            .map(|_| Vec::with_capacity(ROW_BYTES * wires.len() / shares))
            .collect(),
        placed: vec![Vec::new(); shares],
        to_fold: Vec::new(),
    };
    let mut next = 0;
    for (index, wire) in wires.iter().enumerate() {
        if wire.delete || seen[wire.customer_id.as_ref()] > 1 || !storable(wire) {
            rows.to_fold.push(index);
            continue;
        }
        if wire.properties.is_empty() {
            continue;
        }
        let share = next % shares;
        next += 1;
        rows.placed[share].push(index);
        let out = &mut rows.texts[share];
        let json = row_start(&wire.customer_id, out);
        for (at, (name, scalar, last_update)) in wire.properties.iter().enumerate() {
            let value = match scalar {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(*b),
                Scalar::Int(i) => Value::Int(*i),
                Scalar::Float(f) => Value::Float(*f),
                Scalar::Str(s) => Value::Str(s),
            };
            entry(at, name, &value, *last_update, &wire.source, out);
        }
        row_end(json, None, out);
    }
    rows
}

/// Whether `refusal` lets every field through: text without NUL (Rust strings are valid
/// UTF-8, so no lone surrogate), finite floats (64-bit integers and timestamps by type).
fn storable(wire: &Wire<'_>) -> bool {
    let clean = |text: &str| memchr::memchr(0, text.as_bytes()).is_none();
    clean(&wire.customer_id)
        && clean(&wire.source)
        && wire.properties.iter().all(|(name, value, _)| {
            clean(name)
                && match value {
                    Scalar::Float(f) => f.is_finite(),
                    Scalar::Str(s) => clean(s),
                    _ => true,
                }
        })
}

fn write_singles(singles: &Bound<'_, PyDict>, out: &mut Vec<u8>) -> Step<()> {
    for upsert in singles.values().iter() {
        let upsert = upsert.cast_into::<PyTuple>().map_err(PyErr::from)?;
        if upsert.len() != UPSERT_FIELDS {
            return Err(Stop::Unencodable);
        }
        let properties = upsert.get_item(UPSERT_PROPERTIES)?;
        let properties = exact_dict(&properties)?;
        if properties.is_empty() {
            continue;
        }
        let source = upsert.get_item(UPSERT_SOURCE)?;
        let source = text(&source)?;
        let customer = upsert.get_item(UPSERT_CUSTOMER)?;
        let json = row_start(text(&customer)?, out);
        for (index, (name, state)) in properties.iter().enumerate() {
            let state = property_state(state)?;
            let value_obj = state.get_item(0)?;
            let last_update = state.get_item(1)?;
            let value = value(&value_obj)?;
            entry(index, text(&name)?, &value, int(&last_update)?, source, out);
        }
        row_end(json, None, out);
    }
    Ok(())
}

fn write_profiles(profiles: &Bound<'_, PyDict>, out: &mut Vec<u8>) -> Step<()> {
    let py = profiles.py();
    for (customer, profile) in profiles.iter() {
        let properties = profile.getattr(pyo3::intern!(py, "properties"))?;
        let properties = exact_dict(&properties)?;
        let deleted_at = profile.getattr(pyo3::intern!(py, "deleted_at"))?;
        let deleted_at = if deleted_at.is_none() {
            None
        } else {
            Some(int(&deleted_at)?)
        };
        if properties.is_empty() && deleted_at.is_none() {
            continue;
        }
        let json = row_start(text(&customer)?, out);
        for (index, (name, state)) in properties.iter().enumerate() {
            let state = property_state(state)?;
            let value_obj = state.get_item(0)?;
            let last_update = state.get_item(1)?;
            let source = state.get_item(2)?;
            let value = value(&value_obj)?;
            let last_update = int(&last_update)?;
            entry(
                index,
                text(&name)?,
                &value,
                last_update,
                text(&source)?,
                out,
            );
        }
        row_end(json, deleted_at, out);
    }
    Ok(())
}

fn exact_dict<'a, 'py>(
    object: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyDict>, Unencodable> {
    if !object.is_exact_instance_of::<PyDict>() {
        return Err(Unencodable);
    }
    object.cast::<PyDict>().map_err(|_| Unencodable)
}

fn property_state(object: Bound<'_, PyAny>) -> Result<Bound<'_, PyTuple>, Unencodable> {
    match object.cast_into::<PyTuple>() {
        Ok(state) if state.len() == STATE_FIELDS => Ok(state),
        _ => Err(Unencodable),
    }
}

/// A str as the reference writes it: exactly a str, UTF-8 (no lone surrogate), no NUL
/// (PostgreSQL's text and jsonb refuse it; the reference's error is the one to raise).
fn text<'a>(object: &'a Bound<'_, PyAny>) -> Result<&'a str, Unencodable> {
    if !object.is_exact_instance_of::<PyString>() {
        return Err(Unencodable);
    }
    let text = object
        .cast::<PyString>()
        .map_err(|_| Unencodable)?
        .to_str()
        .map_err(|_| Unencodable)?;
    if memchr::memchr(0, text.as_bytes()).is_some() {
        return Err(Unencodable);
    }
    Ok(text)
}

/// Exactly an int, within 64 bits.
fn int(object: &Bound<'_, PyAny>) -> Result<i64, Unencodable> {
    if !object.is_exact_instance_of::<PyInt>() {
        return Err(Unencodable);
    }
    object.extract::<i64>().map_err(|_| Unencodable)
}

fn value<'a>(object: &'a Bound<'_, PyAny>) -> Result<Value<'a>, Unencodable> {
    if object.is_none() {
        Ok(Value::Null)
    } else if object.is_exact_instance_of::<PyBool>() {
        Ok(Value::Bool(object.is_truthy().map_err(|_| Unencodable)?))
    } else if object.is_exact_instance_of::<PyInt>() {
        int(object).map(Value::Int)
    } else if object.is_exact_instance_of::<PyFloat>() {
        let number = object.cast::<PyFloat>().map_err(|_| Unencodable)?.value();
        if number.is_finite() {
            Ok(Value::Float(number))
        } else {
            Err(Unencodable) // JSON has no NaN or Infinity
        }
    } else {
        text(object).map(Value::Str)
    }
}

/// `"name":[value,last_update,"source"]`, a float's with its sign after the source (jsonb
/// keeps numbers as decimals: the sign tells `-0.0` from `0.0` and a float from an int);
/// after a comma unless it is the first.
fn entry(
    index: usize,
    name: &str,
    value: &Value<'_>,
    last_update: i64,
    source: &str,
    json: &mut Vec<u8>,
) {
    if index > 0 {
        json.push(b',');
    }
    json_out::string(name, json);
    json.extend_from_slice(b":[");
    match value {
        Value::Null => json_out::null(json),
        Value::Bool(true) => json.extend_from_slice(b"true"),
        Value::Bool(false) => json.extend_from_slice(b"false"),
        Value::Int(number) => json_out::int(*number, json),
        Value::Float(number) => json_out::float(*number, json),
        Value::Str(text) => json_out::string(text, json),
    }
    json.push(b',');
    json_out::int(last_update, json);
    json.push(b',');
    json_out::string(source, json);
    if let Value::Float(number) = value {
        json.extend_from_slice(if number.is_sign_negative() {
            b",-1"
        } else {
            b",1"
        });
    }
    json.push(b']');
}

/// Starts a COPY text row: the customer id and its tab. Returns where the properties JSON
/// starts, which the caller writes next.
fn row_start(customer_id: &str, out: &mut Vec<u8>) -> usize {
    copy_field(customer_id.as_bytes(), out);
    out.push(b'\t');
    out.push(b'{');
    out.len() - 1
}

/// Ends the row whose properties JSON starts at `json`. JSON escapes every control
/// character, so a backslash is the only byte of it that COPY needs escaped.
fn row_end(json: usize, deleted_at: Option<i64>, out: &mut Vec<u8>) {
    out.push(b'}');
    if memchr::memchr(b'\\', &out[json..]).is_some() {
        let written = out.split_off(json);
        let mut start = 0;
        for at in memchr::memchr_iter(b'\\', &written) {
            out.extend_from_slice(&written[start..=at]);
            out.push(b'\\');
            start = at + 1;
        }
        out.extend_from_slice(&written[start..]);
    }
    out.push(b'\t');
    match deleted_at {
        Some(at) => json_out::int(at, out),
        None => out.extend_from_slice(b"\\N"),
    }
    out.push(b'\n');
}

/// A text field in COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_field(field: &[u8], out: &mut Vec<u8>) {
    for &byte in field {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}
