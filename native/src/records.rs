//! Consumed messages to the processor's input records, in one call.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::kernel::untrack;

/// `[InputRecord(partition, offset, key, value, timestamp, headers) for each message]`, or
/// None when a message carries an error (the caller sorts those out). The records are made
/// untracked by the cycle collector: they hold ints, bytes, None and a headers list, never
/// anything leading back to them, and tens of thousands of them live while a batch is in
/// flight.
#[pyfunction]
pub fn input_records<'py>(
    py: Python<'py>,
    messages: Bound<'py, PyList>,
    input_record: Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?;
    let records = PyList::empty(py);
    for message in messages.iter() {
        if !message.call_method0("error")?.is_none() {
            return Ok(None);
        }
        let partition = message.call_method0("partition")?;
        let offset = message.call_method0("offset")?;
        let timestamp = message.call_method0("timestamp")?.get_item(1)?;
        let fields = (
            if partition.is_none() {
                0_i32.into_pyobject(py)?.into_any()
            } else {
                partition
            },
            if offset.is_none() {
                0_i32.into_pyobject(py)?.into_any()
            } else {
                offset
            },
            message.call_method0("key")?,
            message.call_method0("value")?,
            timestamp,
            message.call_method0("headers")?,
        );
        let record = tuple_new.call1((&input_record, fields))?;
        untrack(&record);
        records.append(record)?;
    }
    Ok(Some(records))
}
