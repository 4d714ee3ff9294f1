//! `Converter`: a block of plain CSV lines to change events, mostly without the GIL.

use std::collections::HashSet;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyList, PyRange, PyRangeMethods, PyTuple};

use super::cells::{email_ok, put_int, put_line, put_plain, put_repr, Number};
use super::keyindex::KeyIndex;
use super::memo::{Found, Table, Value};
use super::out::Out;
use super::sequence_items;
use super::words::{hash_bytes, json_plain, split};

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
    number: i64,  // the file's line number
    start: usize, // the line in the block
    length: usize,
    event: usize, // the event in the output buffer
    event_length: usize,
    key: usize, // the id cell in the block
    key_length: usize,
    stamp: f64,
    verdict: Verdict,
}

struct Slot {
    kind: Kind,
    field: usize,
}

/// What a converter converts: fixed when it is made.
struct Spec {
    delimiter: u8,
    width: usize,
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

/// Plain CSV lines to change events (see streams/bootstrap/native.py).
#[pyclass(module = "streams._native.csvfast")]
pub struct Converter {
    spec: Spec,
    tables: Tables,
    // Kept from one convert() to the next: growing them anew per chunk cost reallocations and
    // fresh pages.
    events: Out,
    rows: Vec<Row>,
    starts: Vec<usize>, // two rows' fields: the next row is split before this one converts
    ends: Vec<usize>,
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
/// `Verdict::Gil` for rows that need it.
#[allow(clippy::too_many_arguments)]
fn convert_row(
    spec: &Spec,
    tables: &mut Tables,
    line: &[u8],
    starts: &[usize],
    ends: &[usize],
    number: i64,
    b: &mut Out,
    stamp: &mut f64,
    gil: Option<Python<'_>>,
) -> PyResult<Verdict> {
    let cell = |field: usize| &line[starts[field]..ends[field]];
    if let Some((field, since)) = spec.since {
        let s = cell(field);
        if s.is_empty() {
            return Ok(Verdict::Python);
        }
        let Some(found) = memo_entry(spec, &mut tables.modified, WHICH_MODIFIED, s, gil)? else {
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
        let s = cell(field);
        if s.is_empty() {
            if empty_removes {
                return Ok(Verdict::Python);
            }
        } else {
            let Some(found) = memo_entry(spec, &mut tables.removal, WHICH_REMOVAL, s, gil)? else {
                return Ok(Verdict::Gil);
            };
            if tables.removal.flag(found) {
                return Ok(Verdict::Python); // removals: Python knows what they become
            }
        }
    }
    let start = b.len();
    // Room for the row's event: cells hold at most the line's bytes (the last field ends it)
    // and no slot adds more than SLOT_EXTRA to its cell, but for memo texts and CPython's
    // reprs, which are put with a check of their own and then the room made again.
    let room = spec.fragment_bytes + ends[spec.width - 1] + SLOT_EXTRA * spec.slots.len();
    b.reserve(room);
    for (i, slot) in spec.slots.iter().enumerate() {
        b.append(&spec.fragments[i]);
        if slot.kind == Kind::Line {
            put_line(b, number);
            continue;
        }
        let s = cell(slot.field);
        if s.is_empty() {
            return Ok(Verdict::Python); // empty cells: Python knows what they mean
        }
        match slot.kind {
            Kind::Id | Kind::String => {
                if !json_plain(s) {
                    return Ok(Verdict::Python);
                }
                b.append(s);
            }
            Kind::Email => {
                if !email_ok(s) {
                    return Ok(Verdict::Python);
                }
                b.append(s);
            }
            Kind::Int => {
                if !put_int(b, s) {
                    return Ok(Verdict::Python);
                }
            }
            Kind::Float | Kind::Ts => {
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
                        b.reserve(room);
                        value
                    }
                };
                if slot.kind == Kind::Ts {
                    if !(0.0..=spec.latest).contains(&value) {
                        return Ok(Verdict::Python);
                    }
                    *stamp = value;
                }
            }
            Kind::Memo => {
                let table = &mut tables.memos[i];
                let Some(found) = memo_entry(spec, table, i as isize, s, gil)? else {
                    return Ok(Verdict::Gil);
                };
                if !table.usable(found) {
                    return Ok(Verdict::Python); // empty or not convertible
                }
                b.put(table.text(found));
                b.reserve(room);
            }
            Kind::Line => unreachable!("written above"),
        }
    }
    b.append(&spec.fragments[spec.slots.len()]);
    let fits = isize::try_from(b.len() - start).is_ok_and(|length| length <= spec.max_bytes);
    Ok(if fits {
        Verdict::Event
    } else {
        Verdict::Python
    })
}

/// Starts loading the table slots a row will look up (its memo cells, its id in the duplicate
/// index): they are all over tables larger than the cache, and a lookup otherwise waits for
/// memory. Only a hint: nothing is read or written.
fn prefetch_row(
    spec: &Spec,
    tables: &Tables,
    line: &[u8],
    starts: &[usize],
    ends: &[usize],
    index: Option<&KeyIndex>,
) {
    for (slot, table) in spec.slots.iter().zip(&tables.memos) {
        if slot.kind == Kind::Memo {
            table.prefetch(hash_bytes(&line[starts[slot.field]..ends[slot.field]]));
        }
    }
    if let Some(index) = index {
        index.prefetch(hash_bytes(
            &line[starts[spec.id_field]..ends[spec.id_field]],
        ));
    }
}

/// Where the block's lines are (verdicts reset): the number of lines found, one more than the
/// rows when there are more.
fn find_rows(block: &[u8], rows: &mut [Row]) -> usize {
    let mut pos = 0;
    for (r, row) in rows.iter_mut().enumerate() {
        if pos >= block.len() {
            return r;
        }
        let length = memchr::memchr(b'\n', &block[pos..]).unwrap_or(block.len() - pos);
        *row = Row {
            number: row.number,
            start: pos,
            length,
            ..Row::default()
        };
        pos += length + 1;
    }
    if pos < block.len() {
        rows.len() + 1
    } else {
        rows.len()
    }
}

/// The line numbers of a chunk: a range(first, first + count) (what a block chunk's lines
/// are), read without making a list of it, or any other sequence of ints.
enum Lines {
    Range { first: i64, count: usize },
    Listed(Vec<i64>),
}

impl Lines {
    fn read(lines: &Bound<'_, PyAny>) -> PyResult<Lines> {
        if let Ok(range) = lines.cast::<PyRange>() {
            // Anything odd about it (a step, ints beyond 64 bits): the general way says what.
            if let (Ok(first), Ok(1), Ok(count)) = (range.start(), range.step(), range.len()) {
                let first = first as i64;
                if i64::try_from(count).is_ok_and(|count| first <= i64::MAX - count) {
                    return Ok(Lines::Range { first, count });
                }
            }
        }
        let numbers = sequence_items(lines)?;
        Ok(Lines::Listed(
            numbers
                .iter()
                .map(|n| n.extract())
                .collect::<PyResult<_>>()?,
        ))
    }

    fn count(&self) -> usize {
        match self {
            Lines::Range { count, .. } => *count,
            Lines::Listed(numbers) => numbers.len(),
        }
    }

    fn number(&self, r: usize) -> i64 {
        match self {
            Lines::Range { first, .. } => first + r as i64,
            Lines::Listed(numbers) => numbers[r],
        }
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
    Bound<'py, PyList>,         // fallback: (line, raw line) for Python
    usize,                      // skipped (modified before since)
);

impl Converter {
    /// The rows whose verdict is `pending`, converted with or without the GIL.
    fn pass(
        &mut self,
        block: &[u8],
        pending: Verdict,
        mut index: Option<&mut KeyIndex>,
        gil: Option<Python<'_>>,
    ) -> PyResult<()> {
        let Converter {
            spec,
            tables,
            events: b,
            rows,
            starts,
            ends,
        } = self;
        let (width, delimiter, count) = (spec.width, spec.delimiter, rows.len());
        let (mut split_row, mut fields) = (usize::MAX, 0);
        for r in 0..count {
            if rows[r].verdict != pending {
                continue;
            }
            let line = &block[rows[r].start..rows[r].start + rows[r].length];
            if split_row != r {
                fields = split(line, delimiter, &mut starts[..width], &mut ends[..width]);
            }
            let next = (r + 1..count).find(|&next| rows[next].verdict == pending);
            let mut next_fields = 0;
            if let Some(next) = next {
                let next_line = &block[rows[next].start..rows[next].start + rows[next].length];
                next_fields = split(
                    next_line,
                    delimiter,
                    &mut starts[width..],
                    &mut ends[width..],
                );
                if next_fields == width {
                    prefetch_row(
                        spec,
                        tables,
                        next_line,
                        &starts[width..],
                        &ends[width..],
                        index.as_deref(),
                    );
                }
            }
            let row = &mut rows[r];
            if fields != width {
                row.verdict = Verdict::Python;
            } else {
                let mark = b.len();
                row.event = mark;
                let (starts, ends) = (&starts[..width], &ends[..width]);
                row.verdict = convert_row(
                    spec,
                    tables,
                    line,
                    starts,
                    ends,
                    row.number,
                    b,
                    &mut row.stamp,
                    gil,
                )?;
                if row.verdict == Verdict::Event {
                    row.event_length = b.len() - mark;
                    row.key = row.start + starts[spec.id_field];
                    row.key_length = ends[spec.id_field] - starts[spec.id_field];
                    if let Some(index) = index.as_deref_mut() {
                        let key = &block[row.key..row.key + row.key_length];
                        index.add_one(key, row.number, row.stamp, spec.has_ts)?;
                    }
                } else {
                    b.truncate(mark); // drop what was written
                }
            }
            if let Some(next) = next {
                // The next row's fields move to the front.
                starts.copy_within(width.., 0);
                ends.copy_within(width.., 0);
                split_row = next;
                fields = next_fields;
            }
        }
        Ok(())
    }

    /// The memo cells the rows left for the GIL have not seen yet, converted by one miss()
    /// call per memo column (a call per cell costs several times more), in the order met.
    fn learn_cells(&mut self, py: Python<'_>, block: &[u8]) -> PyResult<()> {
        let Converter {
            spec,
            tables,
            rows,
            starts,
            ends,
            ..
        } = self;
        let width = spec.width;
        // Slots, then removal, then modified-at.
        let mut pending: Vec<NewCells<'_>> = Vec::new();
        pending.resize_with(spec.slots.len() + 2, Default::default);
        let (removal, modified) = (spec.slots.len(), spec.slots.len() + 1);
        for row in rows.iter().filter(|row| row.verdict == Verdict::Gil) {
            let line = &block[row.start..row.start + row.length];
            if split(
                line,
                spec.delimiter,
                &mut starts[..width],
                &mut ends[..width],
            ) != width
            {
                continue;
            }
            let mut note = |which: usize, table: &Table, field: usize| {
                let s = &line[starts[field]..ends[field]];
                let new = &mut pending[which];
                if !s.is_empty() && table.find(s, hash_bytes(s)).is_none() && new.seen.insert(s) {
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

    fn convert_block<'py>(
        &mut self,
        py: Python<'py>,
        block: &[u8],
        lines: &Bound<'py, PyAny>,
        mut index: Option<PyRefMut<'py, KeyIndex>>,
    ) -> PyResult<Converted<'py>> {
        let mut index: Option<&mut KeyIndex> = index.as_deref_mut();
        let lines = Lines::read(lines)?;
        let count = lines.count();
        self.rows.clear();
        self.rows.extend((0..count).map(|r| Row {
            number: lines.number(r),
            ..Row::default()
        }));
        self.events.truncate(0);
        // Without the GIL: every row that needs no Python (nearly all of them).
        let found = py.detach(|| {
            let found = find_rows(block, &mut self.rows);
            if found != count {
                return Ok(found);
            }
            self.pass(block, Verdict::Pending, index.as_deref_mut(), None)
                .map(|()| found)
        })?;
        if found != count {
            return Err(PyValueError::new_err(if found < count {
                "the block holds fewer lines than given"
            } else {
                "the block holds more lines than given"
            }));
        }
        // With the GIL: the new memo cells those rows met, a column at a time; then the rows
        // that waited for them, without the GIL again when they are many (the first chunks of
        // a file); what is left (CPython's float reprs) with it.
        self.learn_cells(py, block)?;
        let waiting = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Gil)
            .count();
        if waiting >= GIL_FREE_ROWS {
            py.detach(|| self.pass(block, Verdict::Gil, index.as_deref_mut(), None))?;
        }
        self.pass(block, Verdict::Gil, index, Some(py))?;

        // Gathered first: a list is made at its size only from an iterator that knows it.
        let events: Vec<&Row> = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Event)
            .collect();
        let keys = PyList::new(
            py,
            events
                .iter()
                .map(|row| PyBytes::new(py, &block[row.key..row.key + row.key_length])),
        )?;
        let payloads = PyList::new(
            py,
            events
                .iter()
                .map(|row| PyBytes::new(py, self.events.bytes(row.event, row.event_length))),
        )?;
        let numbers = PyList::new(py, events.iter().map(|row| row.number))?;
        let stamps = if self.spec.has_ts {
            Some(PyList::new(py, events.iter().map(|row| row.stamp))?)
        } else {
            None
        };
        let fallback = PyList::empty(py);
        for row in self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Python)
        {
            let raw = PyBytes::new(py, &block[row.start..row.start + row.length]);
            fallback.append((row.number, raw))?;
        }
        let skipped = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Skipped)
            .count();
        Ok((keys, payloads, numbers, stamps, fallback, skipped))
    }
}

#[pymethods]
impl Converter {
    #[new]
    #[pyo3(signature = (delimiter, width, fragments, slots, removal, since, latest, max_bytes, miss, memo_limit))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        delimiter: i64,
        width: isize,
        fragments: &Bound<'_, PyTuple>,
        slots: &Bound<'_, PyTuple>,
        removal: Option<(isize, bool)>,
        since: Option<(isize, f64)>,
        latest: f64,
        max_bytes: isize,
        miss: &Bound<'_, PyAny>,
        memo_limit: isize,
    ) -> PyResult<Self> {
        let delimiter = u8::try_from(delimiter)
            .ok()
            .filter(|&d| (1..=127).contains(&d) && d != b'\n');
        let (Some(delimiter), Ok(width @ 1..), Ok(memo_limit @ 1..), true) = (
            delimiter,
            usize::try_from(width),
            usize::try_from(memo_limit),
            miss.is_callable(),
        ) else {
            return Err(PyValueError::new_err(
                "an ASCII delimiter, width >= 1, memo_limit >= 1, a callable miss",
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
        // A field of -1 is none, as the C extension had it.
        let field = |field: isize| match field {
            -1 => Ok(None),
            f if (0..width as isize).contains(&f) => Ok(Some(f as usize)),
            _ => Err(PyValueError::new_err("a field out of range")),
        };
        let removal = match removal {
            Some((f, empty_removes)) => field(f)?.map(|f| (f, empty_removes)),
            None => None,
        };
        let since = match since {
            Some((f, earliest)) => field(f)?.map(|f| (f, earliest)),
            None => None,
        };
        let nslots = parsed.len();
        Ok(Converter {
            spec: Spec {
                delimiter,
                width,
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
            events: Out::default(),
            rows: Vec::new(),
            starts: vec![0; 2 * width],
            ends: vec![0; 2 * width],
        })
    }

    /// convert(block, lines[, index]) -> (keys, payloads, lines, stamps, fallback, skipped)
    #[pyo3(signature = (block, lines, index=None))]
    fn convert<'py>(
        &mut self,
        py: Python<'py>,
        block: &[u8],
        lines: &Bound<'py, PyAny>,
        index: Option<PyRefMut<'py, KeyIndex>>,
    ) -> PyResult<Converted<'py>> {
        let converted = self.convert_block(py, block, lines, index);
        if self.events.capacity() > KEPT_BYTES {
            self.events = Out::default(); // an odd chunk of huge rows: not kept
        }
        converted
    }
}
