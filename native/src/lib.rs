//! `streams._native`: the processor's per-event work for a whole batch, with the GIL released,
//! and the snapshot bootstrap's CSV converter (`csvfast`).
//!
//! The Python modules (`streams/merge.py`, `streams/codecs/`, `processor/batch.py`) are the
//! specification; the differential tests in `tests/test_native/` hold this crate's outputs
//! equal to theirs.

use pyo3::prelude::*;

// The kernel allocates and frees many small buffers per event (documents, encoded records);
// glibc's malloc spent about a quarter of the kernel's time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod avro_in;
mod copy_rows;
mod csvfast;
mod doc;
mod doc_map;
mod hashing;
mod json_in;
mod json_out;
mod kernel;
mod merge;
mod partition;
mod produce;
mod records;
mod state;
mod timestamps;
mod upsert_in;
mod upsert_out;
mod validate;
mod value;
mod words;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(partition::partition_for, m)?)?;
    m.add_function(wrap_pyfunction!(records::input_records, m)?)?;
    m.add_function(wrap_pyfunction!(records::raw_records, m)?)?;
    m.add_function(wrap_pyfunction!(records::changelog_records, m)?)?;
    m.add_function(wrap_pyfunction!(produce::produce_records, m)?)?;
    m.add_function(wrap_pyfunction!(copy_rows::copy_rows, m)?)?;
    m.add_function(wrap_pyfunction!(copy_rows::suspect_upserts, m)?)?;
    m.add_class::<kernel::Kernel>()?;
    m.add_class::<kernel::Contributors>()?;
    m.add_class::<upsert_in::UpsertDecoder>()?;
    csvfast::register(m)?;
    Ok(())
}
