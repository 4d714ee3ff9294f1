//! `streams._native.csvfast`: plain CSV lines to change events, mostly without the GIL (the
//! bootstrap's native path, streams/bootstrap/native.py), and the reading helpers of
//! streams/bootstrap/files.py.
//!
//! `Converter(delimiter, width, fragments, slots, removal, since, latest, max_bytes, miss,
//! memo_limit).convert(block, lines[, index])` takes a block of plain CSV lines (UTF-8, LF
//! ends, no quotes, no CR: see `CsvSource._block`) and returns
//!     (keys, payloads, lines, stamps or None, fallback, skipped)
//! Every row is either turned into exactly the bytes the Python converter
//! (streams.bootstrap.rows.ChunkConverter) makes of it, or handed back in `fallback` as
//! (line, raw line) for that converter to build or reject with its reason. A check here may
//! send a good row to Python; it never lets through a row Python would treat otherwise:
//!   - ids and strings: not empty, nothing a JSON string escapes (< 0x20, '"', '\\');
//!   - emails: the exact language of convert.EMAIL_PATTERN, at most 254 bytes;
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
//! A chunk is converted in passes: without the GIL, every row that needs no Python (nearly all
//! of them); with the GIL, the new memo values those rows met are converted by miss(), a
//! column at a time; the rows that waited for them are converted (without the GIL again when
//! they are many); with the GIL, what is left (odd numbers); then the Python objects (keys,
//! payloads) are made. With a `KeyIndex` as `index` every converted row's id is noted in it in
//! the same passes (duplicate ids, see dedupe.py).
//!
//! The bootstrap's reader thread calls this while the main thread produces and holds the GIL
//! most of the time: every return from a GIL-free section waits for it (up to the switch
//! interval), so a chunk's work is gathered into as few such sections as possible
//! (`scan_block` does every check of a block in one, `convert` notes ids in its own).

mod cells;
mod converter;
mod keyindex;
mod memo;
mod out;
mod words;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use words::count_byte;

/// What `scan_block` finds in a block (streams/bootstrap/files.py has the same numbers).
const SCAN_QUOTE: u8 = 1; // a '"': the csv module's parsing is needed
const SCAN_LONE_CR: u8 = 2; // a CR not before a LF: a line end csv knows and we do not
const SCAN_CRLF: u8 = 4; // CRLF line ends: to be made LF, then the block scanned again
const SCAN_NOT_UTF8: u8 = 8; // bytes strict UTF-8 decoding refuses

/// Adds the submodule `csvfast` to `parent` (and to `sys.modules`, for `import`).
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let name = format!("{}.csvfast", parent.name()?);
    let module = PyModule::new(py, &name)?;
    module.add(
        "__doc__",
        "Plain CSV lines to change events (see streams/bootstrap/native.py).",
    )?;
    module.add_class::<converter::Converter>()?;
    module.add_class::<keyindex::KeyIndex>()?;
    module.add_function(wrap_pyfunction!(line_end, &module)?)?;
    module.add_function(wrap_pyfunction!(scan_block, &module)?)?;
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

/// line_end(buffer, pos, count) -> (end, found): the position after the count-th newline from
/// pos, or after the last one there is, and how many were found.
#[pyfunction]
fn line_end(buffer: &[u8], pos: isize, count: isize) -> PyResult<(usize, usize)> {
    let (Ok(pos), Ok(count)) = (usize::try_from(pos), usize::try_from(count)) else {
        return Err(PyValueError::new_err(
            "pos outside the buffer or a negative count",
        ));
    };
    if pos > buffer.len() {
        return Err(PyValueError::new_err(
            "pos outside the buffer or a negative count",
        ));
    }
    let (mut end, mut found) = (pos, 0);
    for newline in memchr::memchr_iter(b'\n', &buffer[pos..]).take(count) {
        end = pos + newline + 1;
        found += 1;
    }
    Ok((end, found))
}

/// scan_block(block, delimiter, width) -> (flags, [(index, fields)]): what stops a block from
/// being read as plain lines (SCAN_* flags), and, when nothing about its line ends does, its
/// lines (LF ends) that are blank (fields 0) or have another number of fields than width. One
/// pass of each kind, all without the GIL (a block is megabytes).
#[pyfunction]
fn scan_block(
    py: Python<'_>,
    block: &[u8],
    delimiter: u8,
    width: isize,
) -> (u8, Vec<(usize, usize)>) {
    py.detach(|| scan(block, delimiter, width))
}

fn scan(block: &[u8], delimiter: u8, width: isize) -> (u8, Vec<(usize, usize)>) {
    let mut flags = 0;
    if memchr::memchr(b'"', block).is_some() {
        flags |= SCAN_QUOTE;
    }
    for cr in memchr::memchr_iter(b'\r', block) {
        flags |= if block.get(cr + 1) == Some(&b'\n') {
            SCAN_CRLF
        } else {
            SCAN_LONE_CR
        };
        if flags & (SCAN_CRLF | SCAN_LONE_CR) == SCAN_CRLF | SCAN_LONE_CR {
            break;
        }
    }
    if std::str::from_utf8(block).is_err() {
        flags |= SCAN_NOT_UTF8;
    }
    let mut odd = Vec::new();
    if flags & (SCAN_QUOTE | SCAN_LONE_CR | SCAN_CRLF) != 0 {
        return (flags, odd);
    }
    let mut start = 0;
    for index in 0.. {
        if start >= block.len() {
            break;
        }
        let stop = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |at| start + at);
        let line = &block[start..stop];
        let fields = if line.is_empty() {
            0
        } else {
            1 + count_byte(line, delimiter)
        };
        if fields == 0 || fields as isize != width {
            odd.push((index, fields));
        }
        start = stop + 1;
    }
    (flags, odd)
}
