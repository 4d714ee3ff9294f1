//! `streams._native`: the processor's per-event work for a whole batch, with the GIL released.
//!
//! The Python modules (`streams/merge.py`, `streams/codecs/`) are the specification; the
//! differential tests in `tests/test_native/` hold this crate's outputs equal to theirs.

use pyo3::prelude::*;

mod csvfast;
mod partition;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(partition::partition_for, m)?)?;
    csvfast::register(m)?;
    Ok(())
}
