//! The PostgreSQL sink's staging rows (`pack`, through `upsert_row` and `profile_row`, in
//! `streams/connect/sinks/postgres/sql.py`, the reference) as one buffer of COPY text, in the
//! order `FoldedBatch.rows` yields them. Per row, tab separated and newline terminated:
//! `customer_id`; the properties JSON `{name: value}`; the `last_update` and `source` most of
//! the properties share (the first seen of the most common pair; `\N` for none); the stamps
//! JSON `{name: [last_update, source]}` of the properties with another pair, and
//! `[last_update, source, sign]` of every float whose JSON jsonb would not read back as a
//! float (`float_mark`), or `\N` when there are none; `deleted_at` or `\N`.
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
/// From here on a float is written with an exponent and no fraction (`1e+16`), which jsonb
/// reads as an integer.
const FLOAT_EXPONENT_FROM: f64 = 1e16;

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
    let mut scratch = Scratch::default();
    let written = write_singles(singles, &mut scratch, &mut out)
        .and_then(|()| write_profiles(profiles, &mut scratch, &mut out));
    match written {
        Ok(()) => Ok(Some(PyBytes::new(py, &out))),
        Err(Stop::Unencodable) => Ok(None),
        Err(Stop::Error(error)) => Err(error),
    }
}

/// What a row is made of, kept across rows so that a row allocates nothing.
#[derive(Default)]
struct Scratch<'py> {
    properties: Vec<Property<'py>>,
    stamps: Vec<u8>,
}

/// A property read out of its dict: the common pair is known only once all are read.
struct Property<'py> {
    name: Bound<'py, PyAny>,
    value: Bound<'py, PyAny>,
    last_update: i64,
    source: Bound<'py, PyAny>,
    /// The position of the row's first property with an equal source: pairs compare as ints.
    source_key: usize,
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
    let mut stamps = Vec::new();
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
        let properties = &wire.properties;
        let json = row_start(&wire.customer_id, out);
        // One source for all: the common pair is the most common update time.
        let common = properties[most_common(properties.len(), |at| properties[at].2)].2;
        for (at, (name, scalar, last_update)) in properties.iter().enumerate() {
            let value = match scalar {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(*b),
                Scalar::Int(i) => Value::Int(*i),
                Scalar::Float(f) => Value::Float(*f),
                Scalar::Str(s) => Value::Str(s),
            };
            value_entry(at, name, &value, out);
            let mark = float_mark(&value);
            if mark.is_some() || *last_update != common {
                stamp_entry(name, *last_update, &wire.source, mark, &mut stamps);
            }
        }
        row_end(json, Some((common, &wire.source)), &mut stamps, None, out);
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

fn write_singles<'py>(
    singles: &Bound<'py, PyDict>,
    scratch: &mut Scratch<'py>,
    out: &mut Vec<u8>,
) -> Step<()> {
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
        text(&source)?;
        let customer = upsert.get_item(UPSERT_CUSTOMER)?;
        let customer = text(&customer)?;
        scratch.properties.clear();
        for (name, state) in properties.iter() {
            let state = property_state(state)?;
            scratch.properties.push(Property {
                name,
                value: state.get_item(0)?,
                last_update: int(&state.get_item(1)?)?,
                source: source.clone(),
                source_key: 0,
            });
        }
        python_row(customer, scratch, None, out)?;
    }
    Ok(())
}

fn write_profiles<'py>(
    profiles: &Bound<'py, PyDict>,
    scratch: &mut Scratch<'py>,
    out: &mut Vec<u8>,
) -> Step<()> {
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
        let customer = text(&customer)?;
        let properties_read = &mut scratch.properties;
        properties_read.clear();
        for (name, state) in properties.iter() {
            let state = property_state(state)?;
            let value = state.get_item(0)?;
            let last_update = int(&state.get_item(1)?)?;
            let source = state.get_item(2)?;
            let source_text = text(&source)?;
            // Sources are few per profile and mostly one object (the fold shares them).
            let source_key = (0..properties_read.len())
                .find(|&at| {
                    let seen = &properties_read[at];
                    seen.source_key == at
                        && (seen.source.is(&source) || text(&seen.source).ok() == Some(source_text))
                })
                .unwrap_or(properties_read.len());
            properties_read.push(Property {
                name,
                value,
                last_update,
                source,
                source_key,
            });
        }
        python_row(customer, scratch, deleted_at, out)?;
    }
    Ok(())
}

/// The row of the properties read into `scratch`.
fn python_row(
    customer_id: &str,
    scratch: &mut Scratch<'_>,
    deleted_at: Option<i64>,
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    let (properties, stamps) = (&scratch.properties, &mut scratch.stamps);
    let pair = |at: usize| (properties[at].last_update, properties[at].source_key);
    let json = row_start(customer_id, out);
    let common = most_common(properties.len(), pair);
    for (at, property) in properties.iter().enumerate() {
        let name = text(&property.name)?;
        let value = value(&property.value)?;
        value_entry(at, name, &value, out);
        let mark = float_mark(&value);
        if mark.is_some() || pair(at) != pair(common) {
            let source = text(&property.source)?;
            stamp_entry(name, property.last_update, source, mark, stamps);
        }
    }
    let common = match properties.get(common) {
        Some(property) => Some((property.last_update, text(&property.source)?)),
        None => None,
    };
    row_end(json, common, stamps, deleted_at, out);
    Ok(())
}

/// The position of the first property of the most common pair (`pair(at)`), the first seen
/// of those equally common; 0 when there are none.
fn most_common<T: PartialEq>(count: usize, pair: impl Fn(usize) -> T) -> usize {
    let (mut best, mut best_count) = (0, 0);
    // Counting from each position, a pair's first one counts all of them and a later one
    // fewer, so only a pair's first one can win.
    for at in 0..count {
        if best_count >= count - at {
            break;
        }
        let this = pair(at);
        let this_count = (at..count).filter(|&other| pair(other) == this).count();
        if this_count > best_count {
            (best, best_count) = (at, this_count);
        }
    }
    best
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

/// The sign a float keeps beside its value when its JSON alone would not say it is a float:
/// jsonb reads `1e+16` as an integer and `-0.0` as `0.0`.
fn float_mark(value: &Value<'_>) -> Option<i8> {
    match *value {
        Value::Float(number) if number.abs() >= FLOAT_EXPONENT_FROM => {
            Some(if number < 0.0 { -1 } else { 1 })
        }
        Value::Float(number) if number == 0.0 && number.is_sign_negative() => Some(-1),
        _ => None,
    }
}

/// `"name":value` in the properties JSON, after a comma unless it is the first.
fn value_entry(index: usize, name: &str, value: &Value<'_>, json: &mut Vec<u8>) {
    if index > 0 {
        json.push(b',');
    }
    json_out::string(name, json);
    json.push(b':');
    match value {
        Value::Null => json_out::null(json),
        Value::Bool(true) => json.extend_from_slice(b"true"),
        Value::Bool(false) => json.extend_from_slice(b"false"),
        Value::Int(number) => json_out::int(*number, json),
        Value::Float(number) => json_out::float(*number, json),
        Value::Str(text) => json_out::string(text, json),
    }
}

/// `"name":[last_update,"source"]` (and the float's mark) in the stamps JSON, which starts
/// with the first.
fn stamp_entry(name: &str, last_update: i64, source: &str, mark: Option<i8>, json: &mut Vec<u8>) {
    json.push(if json.is_empty() { b'{' } else { b',' });
    json_out::string(name, json);
    json.extend_from_slice(b":[");
    json_out::int(last_update, json);
    json.push(b',');
    json_out::string(source, json);
    match mark {
        Some(1) => json.extend_from_slice(b",1"),
        Some(_) => json.extend_from_slice(b",-1"),
        None => {}
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

/// Ends the row whose properties JSON starts at `json`: the common pair (None without
/// properties), the `stamps` JSON written so far (which it empties) and the watermark.
fn row_end(
    json: usize,
    common: Option<(i64, &str)>,
    stamps: &mut Vec<u8>,
    deleted_at: Option<i64>,
    out: &mut Vec<u8>,
) {
    out.push(b'}');
    escape_json(json, out);
    out.push(b'\t');
    match common {
        Some((last_update, source)) => {
            json_out::int(last_update, out);
            out.push(b'\t');
            copy_field(source.as_bytes(), out);
        }
        None => out.extend_from_slice(b"\\N\t\\N"),
    }
    out.push(b'\t');
    if stamps.is_empty() {
        out.extend_from_slice(b"\\N");
    } else {
        stamps.push(b'}');
        let json = out.len();
        out.extend_from_slice(stamps);
        escape_json(json, out);
        stamps.clear();
    }
    out.push(b'\t');
    match deleted_at {
        Some(at) => json_out::int(at, out),
        None => out.extend_from_slice(b"\\N"),
    }
    out.push(b'\n');
}

/// The JSON from `json` to the end of `out` as a COPY text field, in place. JSON escapes
/// every control character, so a backslash is the only byte of it that COPY needs escaped.
fn escape_json(json: usize, out: &mut Vec<u8>) {
    let backslashes = memchr::memchr_iter(b'\\', &out[json..]).count();
    if backslashes == 0 {
        return;
    }
    // Moved right from the end, each backslash doubled on the way.
    let mut read = out.len();
    out.resize(read + backslashes, 0);
    let mut write = out.len();
    while read > json {
        read -= 1;
        write -= 1;
        out[write] = out[read];
        if out[read] == b'\\' {
            write -= 1;
            out[write] = b'\\';
        }
    }
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
