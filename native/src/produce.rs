//! The delivery loop's common case: `produce` called for each record of a batch from here,
//! sparing the Python loop's own steps per record (unpacking the record, the checks, the
//! call) on the worker's thread. `BatchDelivery._produce_one` is the reference: it produces
//! each record this loop leaves to it.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// Records produced between two chances for another thread to take the GIL. A Python loop
/// hands the GIL over when another thread has waited for it (the switch interval); a native
/// loop can only do so where it lets go of it.
const YIELD_EVERY: usize = 1024;

/// Calls `produce(topic, value, key, partition, on_delivery)` for `records[start:]`, output
/// records (`topic, partition, key, value, headers, timestamp_ms, origin`), in order. Stops at
/// the first record that has headers or a timestamp, or whose `produce` raised (nothing was
/// queued then: the caller produces it again, and meets the error itself). Returns the index
/// it stopped at, `len(records)` once all were produced.
#[pyfunction]
pub fn produce_records<'py>(
    produce: Bound<'py, PyAny>,
    records: Bound<'py, PyList>,
    on_delivery: Bound<'py, PyAny>,
    start: usize,
) -> PyResult<usize> {
    let py = produce.py();
    let mut index = start;
    while index < records.len() {
        if index > start && (index - start).is_multiple_of(YIELD_EVERY) {
            py.detach(|| ());
        }
        let item = records.get_item(index)?;
        let record = item.cast::<PyTuple>()?;
        if record.len() != 7 || !record.get_item(4)?.is_none() || !record.get_item(5)?.is_none() {
            return Ok(index);
        }
        let args = PyTuple::new(
            py,
            [
                record.get_item(0)?,
                record.get_item(3)?,
                record.get_item(2)?,
                record.get_item(1)?,
                on_delivery.clone(),
            ],
        )?;
        if produce.call1(args).is_err() {
            return Ok(index);
        }
        index += 1;
    }
    Ok(index)
}
