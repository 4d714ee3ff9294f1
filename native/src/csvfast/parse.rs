//! The rows of a CSV or JSONL snapshot as cells: CSV parsed by `csv_core`, JSONL by
//! `serde_json`. Runs without the GIL. Line numbers are the Python reference's: a CSV record
//! is numbered by the line it ends on, counting CR, LF and CRLF as line ends (what `csv.reader`
//! over a file opened with `newline=""` counts); a JSONL row by its LF-terminated line.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use serde_json::{Map, Value};

/// What a cell holds. CSV cells are text (or empty); JSON cells keep their JSON type, whose
/// text (a number's as written) is the cell's bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Empty, // "", null or missing
    Text,
    Int,
    Float,
    Bool,
    Other, // an array or an object
}

#[derive(Clone, Copy)]
pub struct Cell {
    pub kind: CellKind,
    pub start: usize,
    pub end: usize,
}

/// One parsed row: its line, its first cell in `Parsed::cells` and its bytes in the input.
#[derive(Clone, Copy)]
pub struct Record {
    pub number: i64,
    pub first: usize,
    pub raw: (usize, usize),
}

/// The rows of one chunk.
#[derive(Default)]
pub struct Parsed {
    pub data: Vec<u8>,
    pub cells: Vec<Cell>,
    pub records: Vec<Record>,
    /// CSV records of another width than the header's: (line, fields).
    pub bad: Vec<(i64, usize)>,
    /// JSONL lines that are not a JSON object here: (line, start, end) in the input, for
    /// Python to read (it reports them, or reads what serde_json would not).
    pub odd: Vec<(i64, usize, usize)>,
    /// The line of a CSV record that is not UTF-8: the file is not what the mapping says.
    pub not_utf8: Option<i64>,
}

impl Parsed {
    fn clear(&mut self) {
        self.data.clear();
        self.cells.clear();
        self.records.clear();
        self.bad.clear();
        self.odd.clear();
        self.not_utf8 = None;
    }

    pub fn cell(&self, cell: Cell) -> &[u8] {
        &self.data[cell.start..cell.end]
    }

    pub fn row_cells(&self, record: &Record, width: usize) -> &[Cell] {
        &self.cells[record.first..record.first + width]
    }
}

/// The bytes fed and not parsed yet.
#[derive(Default)]
pub struct Input {
    pub bytes: Vec<u8>,
    pub pos: usize,
    pub line: i64, // line ends consumed
    prev_cr: bool,
    at_line_end: bool, // the last byte consumed ends a line
    pub last: bool,    // no more bytes will come
}

impl Input {
    pub fn feed(&mut self, data: &[u8]) {
        self.bytes.drain(..self.pos);
        self.pos = 0;
        self.bytes.extend_from_slice(data);
    }

    /// Counts the line ends of the consumed `bytes[start..end]` (CR, LF, CRLF once).
    fn count_lines(&mut self, start: usize, end: usize) {
        for at in memchr::memchr2_iter(b'\r', b'\n', &self.bytes[start..end]) {
            let p = start + at;
            let after_cr = if p > start {
                self.bytes[p - 1] == b'\r'
            } else {
                self.prev_cr
            };
            if self.bytes[p] == b'\r' || !after_cr {
                self.line += 1;
            }
        }
        if end > start {
            self.prev_cr = self.bytes[end - 1] == b'\r';
            self.at_line_end = matches!(self.bytes[end - 1], b'\r' | b'\n');
        }
    }
}

pub enum Format {
    Csv {
        width: usize,
        reader: Box<Reader>, // (large: boxed)
        header: bool,        // read
        out: Vec<u8>,
        ends: Vec<usize>,
        partial: (usize, usize), // output and ends of a record read in part
    },
    Jsonl {
        names: Vec<String>,
    },
}

impl Format {
    pub fn csv(delimiter: u8, width: usize) -> Format {
        Format::Csv {
            width,
            reader: Box::new(ReaderBuilder::new().delimiter(delimiter).build()),
            header: false,
            out: vec![0; 1 << 12],
            ends: vec![0; width.max(8)],
            partial: (0, 0),
        }
    }

    pub fn width(&self) -> usize {
        match self {
            Format::Csv { width, .. } => *width,
            Format::Jsonl { names } => names.len(),
        }
    }

    /// Up to `rows` rows (CSV: and records of the wrong width) from `input` into `parsed`.
    pub fn parse(&mut self, input: &mut Input, rows: usize, parsed: &mut Parsed) {
        parsed.clear();
        match self {
            Format::Csv { .. } => self.parse_csv(input, rows, parsed),
            Format::Jsonl { names } => parse_jsonl(names, input, rows, parsed),
        }
    }

    fn parse_csv(&mut self, input: &mut Input, rows: usize, parsed: &mut Parsed) {
        let Format::Csv {
            width,
            reader,
            header,
            out,
            ends,
            partial,
            ..
        } = self
        else {
            unreachable!("a CSV format")
        };
        while parsed.records.len() + parsed.bad.len() < rows {
            let start = input.pos;
            let (mut nout, mut nend) = std::mem::take(partial);
            let result = loop {
                if nout == out.len() {
                    out.resize(out.len() * 2, 0);
                }
                if nend == ends.len() {
                    ends.resize(ends.len() * 2, 0);
                }
                let rest = &input.bytes[input.pos..];
                if rest.is_empty() && !input.last {
                    // csv_core reads empty input as the end of the file: the record read so
                    // far waits for more bytes.
                    *partial = (nout, nend);
                    return;
                }
                let (result, nin, o, e) =
                    reader.read_record(rest, &mut out[nout..], &mut ends[nend..]);
                input.count_lines(input.pos, input.pos + nin);
                input.pos += nin;
                nout += o;
                nend += e;
                match result {
                    ReadRecordResult::Record => break result,
                    ReadRecordResult::End => return,
                    _ => continue, // more room, more bytes, or the end of the input to tell
                }
            };
            debug_assert!(matches!(result, ReadRecordResult::Record));
            let number = input.line + i64::from(!input.at_line_end);
            if std::str::from_utf8(&out[..nout]).is_err() {
                parsed.not_utf8 = Some(number);
                return;
            }
            if !*header {
                *header = true;
                continue;
            }
            if nend == 1 && ends[0] == 0 && *width != 1 {
                continue; // a line of "": Python's csv reads it as a blank line
            }
            if nend != *width {
                parsed.bad.push((number, nend));
                continue;
            }
            let base = parsed.data.len();
            let first = parsed.cells.len();
            let mut from = 0;
            for &end in &ends[..nend] {
                let kind = if end == from {
                    CellKind::Empty
                } else {
                    CellKind::Text
                };
                parsed.cells.push(Cell {
                    kind,
                    start: base + from,
                    end: base + end,
                });
                from = end;
            }
            parsed.data.extend_from_slice(&out[..nout]);
            parsed.records.push(Record {
                number,
                first,
                raw: (start, input.pos),
            });
        }
    }
}

fn parse_jsonl(names: &[String], input: &mut Input, rows: usize, parsed: &mut Parsed) {
    while parsed.records.len() + parsed.odd.len() < rows {
        let rest = &input.bytes[input.pos..];
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(at) => (input.pos + at, input.pos + at + 1),
            None if input.last && !rest.is_empty() => (input.bytes.len(), input.bytes.len()),
            None => return,
        };
        let start = input.pos;
        input.pos = next;
        input.line += 1;
        let line = &input.bytes[start..end];
        if line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r')) {
            continue; // a blank line is not a row
        }
        let Ok(object) = serde_json::from_slice::<Map<String, Value>>(line) else {
            parsed.odd.push((input.line, start, end));
            continue;
        };
        let first = parsed.cells.len();
        for name in names {
            let start = parsed.data.len();
            let kind = match object.get(name) {
                None | Some(Value::Null) => CellKind::Empty,
                Some(Value::String(text)) if text.is_empty() => CellKind::Empty,
                Some(Value::String(text)) => {
                    parsed.data.extend_from_slice(text.as_bytes());
                    CellKind::Text
                }
                Some(Value::Number(number)) => {
                    let text = number.to_string();
                    parsed.data.extend_from_slice(text.as_bytes());
                    if text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
                        CellKind::Float
                    } else {
                        CellKind::Int
                    }
                }
                Some(Value::Bool(flag)) => {
                    let text: &[u8] = if *flag { b"true" } else { b"false" };
                    parsed.data.extend_from_slice(text);
                    CellKind::Bool
                }
                Some(_) => CellKind::Other,
            };
            parsed.cells.push(Cell {
                kind,
                start,
                end: parsed.data.len(),
            });
        }
        parsed.records.push(Record {
            number: input.line,
            first,
            raw: (start, end),
        });
    }
}
