//! `Converter`: the rows of a CSV or JSONL snapshot to change events, mostly without the GIL.

use std::collections::HashSet;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyList, PyString, PyTuple};

use super::cells::{email_ok, put_escaped, put_int, put_line, put_plain, put_repr, Number};
use super::keyindex::KeyIndex;
use super::memo::{Found, Table, Value};
use super::out::Out;
use super::parse::{Cell, CellKind, Format, Input, Parsed};
use crate::words::{hash_bytes, json_plain};

/// `which` of `miss(which, cells)` for the removal flags and the modified-at times (memo
/// slots are named by their index).
const WHICH_REMOVAL: isize = -1;
const WHICH_MODIFIED: isize = -2;
/// The largest event buffer a converter keeps between chunks.
const KEPT_BYTES: usize = 64 << 20;
/// Rows worth letting the GIL go for once more (see `convert`).
const GIL_FREE_ROWS: usize = 256;
/// A slot's text beyond its cell's length (at most: a line number, 20 bytes with its sign).
const SLOT_EXTRA: usize = 24;

/// Slot kinds, as streams/bootstrap/native.py numbers them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Id,
    Line,
    Ts,
    String,
    Email,
    Int,
    Float,
    Memo,
}

impl Kind {
    fn from_number(number: i64) -> Option<Kind> {
        const KINDS: [Kind; 8] = [
            Kind::Id,
            Kind::Line,
            Kind::Ts,
            Kind::String,
            Kind::Email,
            Kind::Int,
            Kind::Float,
            Kind::Memo,
        ];
        usize::try_from(number)
            .ok()
            .and_then(|n| KINDS.get(n).copied())
    }
}

/// What became of a row.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Verdict {
    #[default]
    Pending,
    Event,
    Python,
    Skipped,
    /// It needs the GIL: a memo cell not seen yet, or a number for CPython's float().
    Gil,
}

#[derive(Clone, Copy, Default)]
struct Row {
    record: usize, // in Parsed::records
    event: usize,  // the event in the output buffer
    event_length: usize,
    stamp: f64,
    verdict: Verdict,
}

struct Slot {
    kind: Kind,
    field: usize,
}

/// What a converter converts: fixed when it is made.
struct Spec {
    slots: Vec<Slot>,
    fragments: Vec<Vec<u8>>, // one more than slots: the event's text around them
    fragment_bytes: usize,
    id_field: usize,
    has_ts: bool,
    removal: Option<(usize, bool)>, // field, and whether an empty cell marks a removal
    since: Option<(usize, f64)>,    // the modified-at field and the earliest time kept
    latest: f64,
    max_bytes: isize,
    miss: Py<PyAny>,
    memo_limit: usize,
}

/// What `miss()` made of the cells met so far.
struct Tables {
    memos: Vec<Table>, // per slot (used by memo slots)
    removal: Table,
    modified: Table,
}

/// Snapshot rows to change events (see streams/bootstrap/native.py).
#[pyclass(module = "streams._native.csvfast")]
pub struct Converter {
    spec: Spec,
    tables: Tables,
    format: Format,
    input: Input,
    // Kept from one convert() to the next: growing them anew per chunk cost reallocations and
    // fresh pages.
    parsed: Parsed,
    events: Out,
    rows: Vec<Row>,
}

/// miss(which, cells) for new cells: each value remembered.
fn learn(
    py: Python<'_>,
    spec: &Spec,
    table: &mut Table,
    which: isize,
    cells: &[&[u8]],
) -> PyResult<()> {
    let list = PyList::new(py, cells.iter().map(|cell| PyBytes::new(py, cell)))?;
    let values = spec.miss.bind(py).call1((which, list))?;
    let values = values
        .cast::<PyList>()
        .ok()
        .filter(|values| values.len() == cells.len())
        .ok_or_else(|| PyTypeError::new_err("miss() returns a list of one value per cell"))?;
    for (cell, value) in cells.iter().zip(values.iter()) {
        let value = match which {
            WHICH_REMOVAL => Value::Removal(value.is_truthy()?),
            WHICH_MODIFIED if value.is_instance_of::<PyFloat>() => {
                Value::Modified(Some(value.extract()?))
            }
            WHICH_MODIFIED => Value::Modified(None),
            _ => Value::Text(
                value
                    .cast::<PyBytes>()
                    .ok()
                    .map(|text| text.as_bytes().to_vec()),
            ),
        };
        table.insert(cell, value, spec.memo_limit);
    }
    Ok(())
}

/// The memo entry of a cell; with the GIL a new cell is converted by miss() and remembered.
/// None: without the GIL, a cell not seen yet.
#[inline(always)]
fn memo_entry(
    spec: &Spec,
    table: &mut Table,
    which: isize,
    s: &[u8],
    gil: Option<Python<'_>>,
) -> PyResult<Option<Found>> {
    match (table.lookup(s), gil) {
        (Some(found), _) => Ok(Some(found)),
        (None, None) => Ok(None),
        (None, Some(py)) => learn_one(py, spec, table, which, s).map(Some),
    }
}

#[cold]
#[inline(never)]
fn learn_one(
    py: Python<'_>,
    spec: &Spec,
    table: &mut Table,
    which: isize,
    s: &[u8],
) -> PyResult<Found> {
    learn(py, spec, table, which, &[s])?;
    table
        .find(s, hash_bytes(s))
        .ok_or_else(|| PyRuntimeError::new_err("a memo lost its value"))
}

/// One row's event appended to `b` (`Verdict::Event`; `stamp` set when there is an update-time
/// column), or another verdict. Without the GIL (`gil` None) it calls no Python and answers
/// `Verdict::Gil` for rows that need it. A cell is converted here only where the Python
/// converter makes the same of its text as of the typed JSON value it came from; anything else
/// (empty cells, removals, values Python converts otherwise or rejects) goes to Python.
#[allow(clippy::too_many_arguments)]
fn convert_row(
    spec: &Spec,
    tables: &mut Tables,
    parsed: &Parsed,
    cells: &[Cell],
    number: i64,
    b: &mut Out,
    stamp: &mut f64,
    gil: Option<Python<'_>>,
) -> PyResult<Verdict> {
    let text = |cell: Cell| parsed.cell(cell);
    if let Some((field, since)) = spec.since {
        let cell = cells[field];
        if cell.kind != CellKind::Text {
            return Ok(Verdict::Python);
        }
        let Some(found) = memo_entry(spec, &mut tables.modified, WHICH_MODIFIED, text(cell), gil)?
        else {
            return Ok(Verdict::Gil);
        };
        if !tables.modified.usable(found) {
            return Ok(Verdict::Python);
        }
        if tables.modified.number(found) < since {
            return Ok(Verdict::Skipped);
        }
    }
    if let Some((field, empty_removes)) = spec.removal {
        let cell = cells[field];
        match cell.kind {
            CellKind::Empty if empty_removes => return Ok(Verdict::Python),
            CellKind::Empty => {}
            CellKind::Text => {
                let Some(found) =
                    memo_entry(spec, &mut tables.removal, WHICH_REMOVAL, text(cell), gil)?
                else {
                    return Ok(Verdict::Gil);
                };
                if tables.removal.flag(found) {
                    return Ok(Verdict::Python); // removals: Python knows what they become
                }
            }
            _ => return Ok(Verdict::Python),
        }
    }
    let start = b.len();
    // Room for the row's fragments and line number, made again after each cell (a cell's
    // text is at most SLOT_EXTRA more than its bytes, but for escaped strings, memo texts and
    // CPython's reprs, which are put with a check of their own).
    let room = spec.fragment_bytes + SLOT_EXTRA * spec.slots.len();
    b.reserve(room);
    for (i, slot) in spec.slots.iter().enumerate() {
        b.append(&spec.fragments[i]);
        if slot.kind == Kind::Line {
            put_line(b, number);
            continue;
        }
        let cell = cells[slot.field];
        let s = text(cell);
        b.reserve(s.len() + SLOT_EXTRA);
        let kind = cell.kind;
        let ok = match (slot.kind, kind) {
            (_, CellKind::Empty | CellKind::Other) => false, // Python knows what they mean
            (Kind::Id, CellKind::Text) => {
                json_plain(s) && {
                    b.append(s);
                    true
                }
            }
            (Kind::Id, CellKind::Int) => {
                canonical_int(s) && {
                    b.append(s);
                    true
                }
            }
            (Kind::String, CellKind::Text) => {
                if json_plain(s) {
                    b.append(s);
                } else {
                    put_escaped(b, s);
                }
                true
            }
            (Kind::String, CellKind::Int) => put_int(b, s),
            (Kind::String, CellKind::Bool) => {
                b.append(s);
                true
            }
            (Kind::Email, CellKind::Text) => {
                email_ok(s) && {
                    b.append(s);
                    true
                }
            }
            (Kind::Int, CellKind::Text | CellKind::Int) => put_int(b, s),
            (Kind::Float | Kind::Ts, CellKind::Text | CellKind::Int | CellKind::Float) => {
                let Some(parts) = Number::split(s) else {
                    return Ok(Verdict::Python);
                };
                let value = match put_plain(b, &parts) {
                    Some(value) => value,
                    None => {
                        let Some(py) = gil else {
                            return Ok(Verdict::Gil);
                        };
                        let Some(value) = put_repr(py, b, s)? else {
                            return Ok(Verdict::Python);
                        };
                        value
                    }
                };
                if slot.kind == Kind::Ts {
                    if !(0.0..=spec.latest).contains(&value) {
                        return Ok(Verdict::Python);
                    }
                    *stamp = value;
                }
                true
            }
            (Kind::Memo, _) => {
                let table = &mut tables.memos[i];
                let Some(found) = memo_entry(spec, table, i as isize, s, gil)? else {
                    return Ok(Verdict::Gil);
                };
                if !table.usable(found) {
                    return Ok(Verdict::Python); // empty or not convertible
                }
                b.put(table.text(found));
                true
            }
            _ => false,
        };
        if !ok {
            return Ok(Verdict::Python);
        }
        b.reserve(room);
    }
    b.append(&spec.fragments[spec.slots.len()]);
    let fits = isize::try_from(b.len() - start).is_ok_and(|length| length <= spec.max_bytes);
    Ok(if fits {
        Verdict::Event
    } else {
        Verdict::Python
    })
}

/// An integer as str(int) writes it: -?[0-9]{1,18}, no leading zero, no "-0".
fn canonical_int(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    (1..=18).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || s == b"0")
}

/// Starts loading the table slots a row will look up (its memo cells, its id in the duplicate
/// index): they are all over tables larger than the cache, and a lookup otherwise waits for
/// memory. Only a hint: nothing is read or written.
fn prefetch_row(
    spec: &Spec,
    tables: &Tables,
    parsed: &Parsed,
    cells: &[Cell],
    index: Option<&KeyIndex>,
) {
    for (slot, table) in spec.slots.iter().zip(&tables.memos) {
        if slot.kind == Kind::Memo {
            table.prefetch(hash_bytes(parsed.cell(cells[slot.field])));
        }
    }
    if let Some(index) = index {
        index.prefetch(hash_bytes(parsed.cell(cells[spec.id_field])));
    }
}

/// A memo table's cells not seen yet, in the order met.
#[derive(Default)]
struct NewCells<'a> {
    cells: Vec<&'a [u8]>,
    seen: HashSet<&'a [u8]>,
}

type Converted<'py> = (
    Bound<'py, PyList>,         // keys
    Bound<'py, PyList>,         // payloads
    Bound<'py, PyList>,         // lines
    Option<Bound<'py, PyList>>, // update times (None without an update-time column)
    Bound<'py, PyList>,         // fallback: (line, [cells] or raw JSON line) for Python
    Bound<'py, PyList>,         // bad: (line, fields) of CSV records of another width
    usize,                      // skipped (modified before since)
    usize,                      // rows read (bad ones too): 0 when the input needs more bytes
    i64,                        // the last line read
);

impl Converter {
    /// The rows whose verdict is `pending`, converted with or without the GIL.
    fn pass(
        &mut self,
        pending: Verdict,
        mut index: Option<&mut KeyIndex>,
        gil: Option<Python<'_>>,
    ) -> PyResult<()> {
        let Converter {
            spec,
            tables,
            format,
            parsed,
            events: b,
            rows,
            ..
        } = self;
        let width = format.width();
        let count = rows.len();
        for r in 0..count {
            if rows[r].verdict != pending {
                continue;
            }
            let record = parsed.records[rows[r].record];
            let cells = parsed.row_cells(&record, width);
            if let Some(next) = rows[r + 1..].iter().find(|row| row.verdict == pending) {
                let next = parsed.row_cells(&parsed.records[next.record], width);
                prefetch_row(spec, tables, parsed, next, index.as_deref());
            }
            let row = &mut rows[r];
            let mark = b.len();
            row.event = mark;
            row.verdict = convert_row(
                spec,
                tables,
                parsed,
                cells,
                record.number,
                b,
                &mut row.stamp,
                gil,
            )?;
            if row.verdict == Verdict::Event {
                row.event_length = b.len() - mark;
                if let Some(index) = index.as_deref_mut() {
                    let key = parsed.cell(cells[spec.id_field]);
                    index.add_one(key, record.number, row.stamp, spec.has_ts)?;
                }
            } else {
                b.truncate(mark); // drop what was written
            }
        }
        Ok(())
    }

    /// The memo cells the rows left for the GIL have not seen yet, converted by one miss()
    /// call per memo column (a call per cell costs several times more), in the order met.
    fn learn_cells(&mut self, py: Python<'_>) -> PyResult<()> {
        let Converter {
            spec,
            tables,
            format,
            parsed,
            rows,
            ..
        } = self;
        let width = format.width();
        // Slots, then removal, then modified-at.
        let mut pending: Vec<NewCells<'_>> = Vec::new();
        pending.resize_with(spec.slots.len() + 2, Default::default);
        let (removal, modified) = (spec.slots.len(), spec.slots.len() + 1);
        for row in rows.iter().filter(|row| row.verdict == Verdict::Gil) {
            let cells = parsed.row_cells(&parsed.records[row.record], width);
            let mut note = |which: usize, table: &Table, field: usize| {
                let cell = cells[field];
                if matches!(cell.kind, CellKind::Empty | CellKind::Other) {
                    return;
                }
                let s = parsed.cell(cell);
                let new = &mut pending[which];
                if table.find(s, hash_bytes(s)).is_none() && new.seen.insert(s) {
                    new.cells.push(s);
                }
            };
            if let Some((field, _)) = spec.since {
                note(modified, &tables.modified, field);
            }
            if let Some((field, _)) = spec.removal {
                note(removal, &tables.removal, field);
            }
            for (i, slot) in spec.slots.iter().enumerate() {
                if slot.kind == Kind::Memo {
                    note(i, &tables.memos[i], slot.field);
                }
            }
        }
        for (t, NewCells { cells, .. }) in pending.iter().enumerate() {
            if cells.is_empty() {
                continue;
            }
            let (table, which) = match t {
                t if t == modified => (&mut tables.modified, WHICH_MODIFIED),
                t if t == removal => (&mut tables.removal, WHICH_REMOVAL),
                t => (&mut tables.memos[t], t as isize),
            };
            learn(py, spec, table, which, cells)?;
        }
        Ok(())
    }

    fn convert_rows<'py>(
        &mut self,
        py: Python<'py>,
        max_rows: usize,
        mut index: Option<PyRefMut<'py, KeyIndex>>,
    ) -> PyResult<Converted<'py>> {
        let mut index: Option<&mut KeyIndex> = index.as_deref_mut();
        self.events.truncate(0);
        // Without the GIL: parsing, and every row that needs no Python (nearly all of them).
        py.detach(|| {
            self.format
                .parse(&mut self.input, max_rows, &mut self.parsed);
            self.rows.clear();
            self.rows
                .extend((0..self.parsed.records.len()).map(|record| Row {
                    record,
                    ..Row::default()
                }));
            self.pass(Verdict::Pending, index.as_deref_mut(), None)
        })?;
        if let Some(line) = self.parsed.not_utf8 {
            return Err(PyValueError::new_err(("not UTF-8", line)));
        }
        // With the GIL: the new memo cells those rows met, a column at a time; then the rows
        // that waited for them, without the GIL again when they are many (the first chunks of
        // a file); what is left (CPython's float reprs) with it.
        self.learn_cells(py)?;
        let waiting = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Gil)
            .count();
        if waiting >= GIL_FREE_ROWS {
            py.detach(|| self.pass(Verdict::Gil, index.as_deref_mut(), None))?;
        }
        self.pass(Verdict::Gil, index, Some(py))?;
        self.outputs(py)
    }

    /// The Python objects of a converted chunk.
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Converted<'py>> {
        let (parsed, width) = (&self.parsed, self.format.width());
        let id = |row: &Row| {
            parsed.cell(parsed.row_cells(&parsed.records[row.record], width)[self.spec.id_field])
        };
        // Gathered first: a list is made at its size only from an iterator that knows it.
        let events: Vec<&Row> = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Event)
            .collect();
        let keys = PyList::new(py, events.iter().map(|row| PyBytes::new(py, id(row))))?;
        let payloads = PyList::new(
            py,
            events
                .iter()
                .map(|row| PyBytes::new(py, self.events.bytes(row.event, row.event_length))),
        )?;
        let number = |row: &Row| parsed.records[row.record].number;
        let numbers = PyList::new(py, events.iter().map(|row| number(row)))?;
        let stamps = if self.spec.has_ts {
            Some(PyList::new(py, events.iter().map(|row| row.stamp))?)
        } else {
            None
        };
        let fallback = PyList::empty(py);
        let raw = |start: usize, end: usize| PyBytes::new(py, &self.input.bytes[start..end]);
        for row in self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Python)
        {
            let record = parsed.records[row.record];
            let cells = match self.format {
                Format::Jsonl { .. } => raw(record.raw.0, record.raw.1).into_any(),
                Format::Csv { .. } => {
                    let mut texts = Vec::with_capacity(width);
                    for &cell in parsed.row_cells(&record, width) {
                        let text = std::str::from_utf8(parsed.cell(cell))
                            .map_err(|_| PyValueError::new_err("a CSV cell is not UTF-8"))?;
                        texts.push(PyString::new(py, text));
                    }
                    PyList::new(py, texts)?.into_any()
                }
            };
            fallback.append((record.number, cells))?;
        }
        for &(line, start, end) in &parsed.odd {
            fallback.append((line, raw(start, end)))?;
        }
        let bad = PyList::new(py, parsed.bad.iter().copied())?;
        let skipped = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Skipped)
            .count();
        let read = parsed.records.len() + parsed.bad.len() + parsed.odd.len();
        let last = parsed.records.last().map_or(0, |record| record.number);
        let last = last.max(parsed.bad.last().map_or(0, |bad| bad.0));
        Ok((
            keys,
            payloads,
            numbers,
            stamps,
            fallback,
            bad,
            skipped,
            read,
            last.max(self.input.line),
        ))
    }
}

#[pymethods]
impl Converter {
    /// Converter(columns, delimiter, fragments, slots, removal, since, latest, max_bytes, miss,
    /// memo_limit): `delimiter` None reads JSONL (`columns`: the keys read, slots' fields
    /// index them), else CSV with a header of `columns` fields.
    #[new]
    #[pyo3(signature = (columns, delimiter, fragments, slots, removal, since, latest, max_bytes, miss, memo_limit))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        columns: Vec<String>,
        delimiter: Option<i64>,
        fragments: &Bound<'_, PyTuple>,
        slots: &Bound<'_, PyTuple>,
        removal: Option<(isize, bool)>,
        since: Option<(isize, f64)>,
        latest: f64,
        max_bytes: isize,
        miss: &Bound<'_, PyAny>,
        memo_limit: isize,
    ) -> PyResult<Self> {
        let width = columns.len();
        let format = match delimiter {
            None => Format::Jsonl { names: columns },
            Some(delimiter) => match u8::try_from(delimiter) {
                Ok(d) if (1..=127).contains(&d) && !matches!(d, b'\n' | b'\r' | b'"') => {
                    Format::csv(d, width)
                }
                _ => return Err(PyValueError::new_err("an ASCII delimiter")),
            },
        };
        let (1.., Ok(memo_limit @ 1..), true) =
            (width, usize::try_from(memo_limit), miss.is_callable())
        else {
            return Err(PyValueError::new_err(
                "columns, memo_limit >= 1, a callable miss",
            ));
        };
        if fragments.len() != slots.len() + 1 {
            return Err(PyValueError::new_err("one fragment more than slots"));
        }
        let fragments = fragments
            .iter()
            .map(|fragment| match fragment.cast::<PyBytes>() {
                Ok(bytes) => Ok(bytes.as_bytes().to_vec()),
                Err(_) => Err(PyTypeError::new_err("fragments are bytes")),
            })
            .collect::<PyResult<Vec<_>>>()?;
        let mut parsed = Vec::with_capacity(slots.len());
        let (mut id_field, mut has_ts) = (None, false);
        for slot in slots.iter() {
            let (kind, field): (i64, isize) = slot.extract()?;
            let kind = Kind::from_number(kind);
            let field = usize::try_from(field).ok().filter(|&field| field < width);
            let (kind, field) = match (kind, field) {
                (Some(Kind::Line), _) => (Kind::Line, 0),
                (Some(kind), Some(field)) => (kind, field),
                _ => return Err(PyValueError::new_err("a slot of an unknown kind or field")),
            };
            if kind == Kind::Id {
                id_field = Some(field);
            }
            has_ts |= kind == Kind::Ts;
            parsed.push(Slot { kind, field });
        }
        let Some(id_field) = id_field else {
            return Err(PyValueError::new_err("no id slot"));
        };
        let field = |field: isize| match usize::try_from(field) {
            Ok(f) if f < width => Ok(f),
            _ => Err(PyValueError::new_err("a field out of range")),
        };
        let removal = match removal {
            Some((f, empty_removes)) => Some((field(f)?, empty_removes)),
            None => None,
        };
        let since = match since {
            Some((f, earliest)) => Some((field(f)?, earliest)),
            None => None,
        };
        let nslots = parsed.len();
        Ok(Converter {
            spec: Spec {
                slots: parsed,
                fragment_bytes: fragments.iter().map(Vec::len).sum(),
                fragments,
                id_field,
                has_ts,
                removal,
                since,
                latest,
                max_bytes,
                miss: miss.clone().unbind(),
                memo_limit,
            },
            tables: Tables {
                memos: (0..nslots).map(|_| Table::default()).collect(),
                removal: Table::default(),
                modified: Table::default(),
            },
            format,
            input: Input::default(),
            parsed: Parsed::default(),
            events: Out::default(),
            rows: Vec::new(),
        })
    }

    /// feed(data, last): more bytes of the file (UTF-8); `last`: the file ends after them.
    fn feed(&mut self, data: &[u8], last: bool) {
        self.input.feed(data);
        self.input.last |= last;
    }

    /// Bytes fed and not read yet.
    fn buffered(&self) -> usize {
        self.input.bytes.len() - self.input.pos
    }

    /// convert(rows[, index]) -> (keys, payloads, lines, stamps, fallback, bad, skipped, read,
    /// last_line): the next `rows` rows at most, of the complete ones fed.
    #[pyo3(signature = (rows, index=None))]
    fn convert<'py>(
        &mut self,
        py: Python<'py>,
        rows: usize,
        index: Option<PyRefMut<'py, KeyIndex>>,
    ) -> PyResult<Converted<'py>> {
        let converted = self.convert_rows(py, rows, index);
        if self.events.capacity() > KEPT_BYTES {
            self.events = Out::default(); // an odd chunk of huge rows: not kept
        }
        converted
    }
}
