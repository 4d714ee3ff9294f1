//! `streams._native.csvfast`: the rows of a CSV or JSONL snapshot to change events, mostly
//! without the GIL (the bootstrap's converter, streams/bootstrap/native.py), and the duplicate
//! index.
//!
//! `Converter(columns, delimiter, fragments, slots, removal, since, latest, max_bytes, miss,
//! memo_limit)` is fed the file's bytes (`feed(data, last)`, UTF-8) and `convert(rows[, index])`
//! returns the next rows as
//!     (keys, payloads, lines, stamps or None, fallback, bad, skipped, read, last_line)
//! CSV is parsed by `csv_core` (quotes, CR/LF/CRLF line ends, a BOM), JSONL by `serde_json`
//! (parse.rs). Every row is either turned into an event that decodes to what the Python
//! converter (streams.bootstrap.rows.ChunkConverter) makes of it, or handed back in `fallback`
//! as (line, cells) or (line, raw JSON line) for that converter to build or reject with its
//! reason. A check here may send a good row to Python; it never lets through a row Python
//! would treat otherwise:
//!   - ids: not empty, nothing a JSON string escapes; strings: any text, escaped; JSON numbers
//!     and booleans where Python writes them as their text (cells.rs, converter.rs);
//!   - emails: the exact language of emails.EMAIL_PATTERN, at most 254 bytes;
//!   - ints: -?[0-9]{1,18}, written as str(int(text)) writes them;
//!   - floats and update times: -?[0-9]+(.[0-9]+)?, finite, times in [0, latest], written as
//!     repr(float(text)) writes them: with at most 15 significant digits in repr's fixed range
//!     that is the text itself, tidied (see `cells::put_plain`); other values go through
//!     CPython's own float() and repr() (`PyOS_string_to_double`, `PyOS_double_to_string`)
//!     under the GIL;
//!   - memo columns (booleans, dates; removal flags; modified-at times): looked up per cell in
//!     tables that `miss(which, cells)` fills, one Python conversion per distinct value;
//!   - the event no larger than max_bytes.
//!
//! Empty cells and removals always go to Python.
//!
//! A chunk is converted in passes: without the GIL, parsing and every row that needs no
//! Python (nearly all of them); with the GIL, the new memo values those rows met are converted
//! by miss(), a column at a time; the rows that waited for them are converted (without the GIL
//! again when they are many); with the GIL, what is left (odd numbers); then the Python objects
//! (keys, payloads) are made. With a `KeyIndex` as `index` every converted row's id is noted in
//! it in the same passes (duplicate ids, see dedupe.py).

mod cells;
mod converter;
mod keyindex;
mod memo;
mod out;
mod parse;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// Adds the submodule `csvfast` to `parent` (and to `sys.modules`, for `import`).
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let name = format!("{}.csvfast", parent.name()?);
    let module = PyModule::new(py, &name)?;
    module.add(
        "__doc__",
        "Snapshot rows to change events (see streams/bootstrap/native.py).",
    )?;
    module.add_class::<converter::Converter>()?;
    module.add_class::<keyindex::KeyIndex>()?;
    parent.add_submodule(&module)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(name, &module)?;
    Ok(())
}

/// The items of a list, a tuple or any other iterable.
fn sequence_items<'py>(items: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = items.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = items.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    items.try_iter()?.collect()
}

/// A hint to start loading `item` into the cache.
#[inline(always)]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and faults on nothing; SSE is in every x86-64.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}
