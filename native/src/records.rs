//! The processor's records as Python objects: consumed messages to input records, new states
//! to changelog records, and the named tuples the kernel hands back.
//!
//! Tens of thousands of these live while a batch is in flight. They hold ints, bytes, str,
//! None and headers lists, never anything leading back to them, so they are made untracked by
//! the cycle collector, which would otherwise walk them in every full collection.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::{ffi, intern};

/// Takes an object out of the cycle collector's care. CPython untracks plain tuples of atomic
/// values by itself, but not instances of a tuple subclass, and never a Kafka message.
pub fn untrack<T>(object: &Bound<'_, T>) {
    // SAFETY: the object is alive (borrowed), and the callers untrack only objects that no
    // reference cycle can go through; untracking only stops the collector from visiting it.
    unsafe { ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) }
}

/// A list of records, itself untracked: it only ever holds records (and None, and the rare
/// dead letter Python puts in its place), none of which leads back to it.
pub fn record_list<'py>(
    py: Python<'py>,
    records: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::new(py, records)?;
    untrack(&list);
    Ok(list)
}

/// `cls(*items)` for a named tuple class `cls`, untracked, without running its Python
/// `__new__` (which costs more than the rest of making a record).
pub fn new_record<'py, const N: usize>(
    cls: &Bound<'py, PyType>,
    items: [Bound<'py, PyAny>; N],
) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    // SAFETY: `cls` is a tuple subclass (checked by `record_class`), whose allocator makes a
    // zeroed tuple of N slots; each slot is then filled once, taking over one reference, while
    // the new object is referenced by nothing else (PyTuple_SetItem's precondition).
    unsafe {
        let raw = ffi::PyType_GenericAlloc(cls.as_ptr().cast(), N as ffi::Py_ssize_t);
        let record = Bound::from_owned_ptr_or_err(py, raw)?;
        for (i, item) in items.into_iter().enumerate() {
            if ffi::PyTuple_SetItem(raw, i as ffi::Py_ssize_t, item.into_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        untrack(&record);
        Ok(record)
    }
}

/// `cls` as a record class of `fields` fields: a named tuple, whose instances are tuples
/// without a `__dict__`, as `new_record` makes them.
pub fn record_class<'py>(cls: &Bound<'py, PyAny>, fields: usize) -> PyResult<Bound<'py, PyType>> {
    let py = cls.py();
    let cls = cls.cast::<PyType>()?.clone();
    let is_record = cls.is_subclass(&py.get_type::<PyTuple>())?
        && cls
            .getattr(intern!(py, "__dictoffset__"))?
            .extract::<isize>()?
            == 0
        && cls
            .getattr_opt(intern!(py, "_fields"))?
            .is_some_and(|names| names.len().is_ok_and(|n| n == fields));
    if !is_record {
        return Err(PyTypeError::new_err(format!(
            "a record class must be a named tuple of {fields} fields"
        )));
    }
    Ok(cls)
}

/// Appends `InputRecord(partition, offset, key, value, timestamp, headers)` of each message
/// to `records` and returns True; appends nothing and returns False when a message carries an
/// error (the caller sorts those out). The messages are untracked too: they are the batch's
/// largest crowd of objects until it is merged. `records` must hold records only.
#[pyfunction]
pub fn input_records<'py>(
    messages: Bound<'py, PyList>,
    input_record: Bound<'py, PyAny>,
    records: Bound<'py, PyList>,
) -> PyResult<bool> {
    let py = messages.py();
    let cls = record_class(&input_record, 6)?;
    let zero = 0_i32.into_pyobject(py)?.into_any();
    append_records(&messages, &records, |message| {
        new_record(
            &cls,
            [
                or(call(message, intern!(py, "partition"))?, &zero),
                or(call(message, intern!(py, "offset"))?, &zero),
                call(message, intern!(py, "key"))?,
                call(message, intern!(py, "value"))?,
                call(message, intern!(py, "timestamp"))?.get_item(1)?,
                call(message, intern!(py, "headers"))?,
            ],
        )
    })
}

/// Appends `RawRecord(topic, partition, offset, key, value)` of each message to `records`
/// (a connector's batch, which a sink decodes itself), as `input_records` does: a connector
/// keeps two batches of them alive, which the cycle collector walked in every collection.
#[pyfunction]
pub fn raw_records<'py>(
    messages: Bound<'py, PyList>,
    raw_record: Bound<'py, PyAny>,
    records: Bound<'py, PyList>,
) -> PyResult<bool> {
    let py = messages.py();
    let cls = record_class(&raw_record, 5)?;
    let zero = 0_i32.into_pyobject(py)?.into_any();
    let no_topic = PyString::new(py, "").into_any();
    let no_value = pyo3::types::PyBytes::new(py, b"").into_any();
    append_records(&messages, &records, |message| {
        new_record(
            &cls,
            [
                or(call(message, intern!(py, "topic"))?, &no_topic),
                or(call(message, intern!(py, "partition"))?, &zero),
                or(call(message, intern!(py, "offset"))?, &zero),
                call(message, intern!(py, "key"))?,
                or(call(message, intern!(py, "value"))?, &no_value),
            ],
        )
    })
}

/// `make(message)` of each message appended to `records`, the messages and `records`
/// untracked; False and nothing appended when a message carries an error.
fn append_records<'py>(
    messages: &Bound<'py, PyList>,
    records: &Bound<'py, PyList>,
    make: impl Fn(&Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<bool> {
    let py = messages.py();
    let mut made = Vec::with_capacity(messages.len());
    for message in messages.iter() {
        if !call(&message, intern!(py, "error"))?.is_none() {
            return Ok(false);
        }
        made.push(make(&message)?);
    }
    for message in messages.iter() {
        untrack(&message);
    }
    untrack(records);
    for record in made {
        records.append(record)?;
    }
    Ok(true)
}

fn call<'py>(
    object: &Bound<'py, PyAny>,
    method: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    object.call_method0(method)
}

/// `value`, or `default` when it is None.
fn or<'py>(value: Bound<'py, PyAny>, default: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    if value.is_none() {
        default.clone()
    } else {
        value
    }
}

/// `[OutputRecord(topic, partition, key, state) for each new state]` from a batch's
/// `{partition: {key: state}}`.
#[pyfunction]
pub fn changelog_records<'py>(
    topic: Bound<'py, PyString>,
    states: Bound<'py, PyDict>,
    output_record: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let py = topic.py();
    let cls = record_class(&output_record, 7)?;
    let none = py.None().into_bound(py);
    let mut records = Vec::new();
    for (partition, per_partition) in states.iter() {
        for (key, state) in per_partition.cast::<PyDict>()?.iter() {
            records.push(new_record(
                &cls,
                [
                    topic.clone().into_any(),
                    partition.clone(),
                    key,
                    state,
                    none.clone(),
                    none.clone(),
                    none.clone(),
                ],
            )?);
        }
    }
    record_list(py, records)
}
