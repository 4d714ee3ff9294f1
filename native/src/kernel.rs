//! The batch call: a batch's per-event work between two Python steps (reading the stored
//! states, building the output records), with the GIL released for all of it.

use std::collections::HashMap;
use std::mem::take;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::avro_in::{self, Layout, CHANGE_V1, HEADER_SIZE, MARKER};
use crate::doc::{parse_json, Parsed};
use crate::hashing::FastMap;
use crate::merge::{apply_event, Policy, Profile};
use crate::partition::home;
use crate::records::{new_record, record_class, record_list, untrack};
use crate::state;
use crate::upsert_out::{self, UPSERT_V1};
use crate::validate::{validate, Event, Limits, Reject, Verdict};
use crate::value::Value;

/// `(partition, offset, key, value, timestamp_ms, headers)`: an `InputRecord`.
type RecordIn<'py> = (
    i32,
    i64,
    Option<PyBackedBytes>,
    Option<PyBackedBytes>,
    i64,
    Bound<'py, PyAny>,
);

struct Record {
    partition: i32,
    offset: i64,
    key: Option<PyBackedBytes>,
    value: Option<PyBackedBytes>,
    timestamp_ms: i64,
}

enum Outcome {
    Parked,
    Accepted(Event),
    Rejected(Reject),
    Reroute(u32, String),
    Deferred,
}

// Kinds of the outputs Python builds itself: a parked record's dead letter, a rejected
// record's dead letter `(reason, detail)`, a reroute `(home partition, customer key)`.
const FILL_PARKED: u8 = 0;
const FILL_REJECTED: u8 = 1;
const FILL_REROUTE: u8 = 2;

/// Where a record's bytes lie in `Merged::bytes`.
type Span = std::ops::Range<usize>;

/// What the merge of one accepted record put out, in order.
enum Emitted {
    Stale(usize, Span),
    Upsert(usize, Span),
    TooLarge(usize, Reject),
}

#[derive(Default, Clone)]
struct MergeCounts {
    applied: u64,
    stale_events: u64,
    stale_writes: u64,
    too_large: u64,
}

/// A customer's profile slot and where its new state bytes lie.
type SlotState = (usize, Span);

/// The output buffer a batch keeps for the next one up to this size: a batch writes tens of
/// MiB, and memory freed after every batch came back as fresh pages to fault in.
const KEPT_BUFFER_BYTES: usize = 64 << 20;

struct Merged {
    /// Every upsert, stale record and state of the batch, back to back.
    bytes: Vec<u8>,
    emitted: Vec<Emitted>,
    counts: MergeCounts,
    /// Partitions in the order of their first change, each with its customers in that order.
    states: Vec<(i32, Vec<SlotState>)>,
    /// (profile slot, input offset) of every record merged into a new state.
    contributors: Vec<(usize, i64)>,
}

#[pyclass(frozen, module = "streams._native")]
pub struct Kernel {
    limits: Limits,
    partitions: u32,
    policy: Policy,
    upsert_header: Option<Vec<u8>>,
    layouts: FastMap<Vec<u8>, Layout>,
    max_state_bytes: usize,
    output_record: Py<PyType>,
    upserts_topic: Py<PyString>,
    stale_topic: Py<PyString>,
    /// The last batch's `Merged::bytes`, for the next batch to write into (`merge_pass`
    /// empties it).
    buffer: Mutex<Vec<u8>>,
}

#[pymethods]
impl Kernel {
    /// `change_schemas`: (fingerprint, parsing canonical form) of every known ProfileChange
    /// version, the current one first; `upsert_schema` likewise for the upserts written.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, max_event_bytes, max_properties, max_clock_skew_ms, partitions, priorities, output_format, change_schemas, upsert_schema, max_state_bytes, output_record, upserts_topic, stale_topic))]
    fn new(
        max_event_bytes: usize,
        max_properties: usize,
        max_clock_skew_ms: i64,
        partitions: u32,
        priorities: HashMap<String, i64>,
        output_format: &str,
        change_schemas: Vec<(Vec<u8>, String)>,
        upsert_schema: (Vec<u8>, String),
        max_state_bytes: usize,
        output_record: Bound<'_, PyAny>,
        upserts_topic: Py<PyString>,
        stale_topic: Py<PyString>,
    ) -> PyResult<Self> {
        let output_record = record_class(&output_record, 7)?.unbind();
        let current = change_schemas
            .first()
            .map(|(_, canonical)| canonical.as_str());
        if current != Some(CHANGE_V1) {
            return Err(PyValueError::new_err(
                "the native kernel reads ProfileChange as the Rust code knows it, and the current \
                 schema differs: rebuild the kernel for it, or set STREAMS_KERNEL=python",
            ));
        }
        let upsert_header = match output_format {
            "avro" if upsert_schema.1 == UPSERT_V1 => {
                Some([&MARKER[..], &upsert_schema.0].concat())
            }
            "avro" => {
                return Err(PyValueError::new_err(
                    "the native kernel writes ProfileUpsert as the Rust code knows it, and the \
                     current schema differs: rebuild the kernel for it, or set STREAMS_KERNEL=python",
                ))
            }
            "json" => None,
            other => return Err(PyValueError::new_err(format!("unknown output format {other:?}"))),
        };
        if partitions == 0 {
            return Err(PyValueError::new_err("partitions must be at least 1"));
        }
        Ok(Kernel {
            limits: Limits {
                max_event_bytes,
                max_properties,
                max_skew_ms: max_clock_skew_ms,
            },
            partitions,
            policy: Policy {
                priorities: priorities.into_iter().collect(),
            },
            upsert_header,
            layouts: change_schemas
                .into_iter()
                .map(|(fingerprint, canonical)| (fingerprint, avro_in::layout_of(&canonical)))
                .collect(),
            max_state_bytes,
            output_record,
            upserts_topic,
            stale_topic,
            buffer: Mutex::new(Vec::new()),
        })
    }

    /// One batch. `parked[i]`: record i is not to be decoded nor merged. `decode_reference(i)`
    /// returns the reference decoder's `ChangeEvent` for record i or its `InvalidEventError`;
    /// `load_states(partition, keys)` the stored states. Returns `(outputs, fills, states,
    /// counts, rejected, next_offsets, contributors)`: `fills` are `(position, record index,
    /// kind, a, b)` for the outputs Python builds itself (dead letters and reroutes, see
    /// `FILL_*`), left `None` in `outputs`.
    #[allow(clippy::too_many_arguments)]
    fn process<'py>(
        &self,
        py: Python<'py>,
        records: Bound<'py, PyList>,
        parked: Vec<bool>,
        now_ms: i64,
        load_states: Bound<'py, PyAny>,
        decode_reference: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let mut extracted: Vec<Record> = Vec::with_capacity(records.len());
        for item in records.iter() {
            let (partition, offset, key, value, timestamp_ms, _): RecordIn<'py> = item.extract()?;
            // An input record holds ints, bytes, None and its headers: no cycle leads back to
            // it, and batches in flight keep tens of thousands alive.
            untrack(&item);
            extracted.push(Record {
                partition,
                offset,
                key,
                value,
                timestamp_ms,
            });
        }
        let records = extracted;
        let mut outcomes: Vec<Outcome> = py.detach(|| {
            records
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    if parked.get(i).copied().unwrap_or(false) {
                        return Outcome::Parked;
                    }
                    catch_unwind(AssertUnwindSafe(|| self.decode(record, now_ms))).unwrap_or_else(
                        |_| Outcome::Rejected(Reject::new("undecodable", "kernel panic".into())),
                    )
                })
                .collect()
        });
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            if matches!(outcome, Outcome::Deferred) {
                *outcome = self.decode_by_reference(&decode_reference, i, &records[i])?;
            }
        }

        // The customers to read, per partition in order of first appearance.
        let mut slots: FastMap<(i32, &str), usize> = FastMap::default();
        let mut keys: Vec<(i32, &str)> = Vec::new();
        let mut record_slot: Vec<usize> = vec![usize::MAX; records.len()];
        for (i, outcome) in outcomes.iter().enumerate() {
            if let Outcome::Accepted(event) = outcome {
                let id = (records[i].partition, event.customer_id.as_str());
                record_slot[i] = *slots.entry(id).or_insert_with(|| {
                    keys.push(id);
                    keys.len() - 1
                });
            }
        }
        let mut partition_order: Vec<i32> = Vec::new();
        let mut by_partition: FastMap<i32, Vec<usize>> = FastMap::default();
        for (slot, (partition, _)) in keys.iter().enumerate() {
            by_partition
                .entry(*partition)
                .or_insert_with(|| {
                    partition_order.push(*partition);
                    Vec::new()
                })
                .push(slot);
        }
        let mut stored: Vec<Option<PyBackedBytes>> = (0..keys.len()).map(|_| None).collect();
        for partition in &partition_order {
            let slots_here = &by_partition[partition];
            let wanted = PyList::new(
                py,
                slots_here
                    .iter()
                    .map(|slot| PyBytes::new(py, keys[*slot].1.as_bytes())),
            )?;
            let found: Vec<Option<PyBackedBytes>> =
                load_states.call1((*partition, wanted))?.extract()?;
            if found.len() != slots_here.len() {
                return Err(PyRuntimeError::new_err(
                    "load_states returned a list of another length",
                ));
            }
            for (slot, state) in slots_here.iter().zip(found) {
                stored[*slot] = state;
            }
        }

        let merged = py
            .detach(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    self.merge_batch(&records, &outcomes, &record_slot, &keys, &stored, now_ms)
                }))
            })
            .map_err(|_| PyRuntimeError::new_err("the native kernel panicked merging a batch"))?
            .map_err(PyRuntimeError::new_err)?;

        self.build(py, &records, &outcomes, &record_slot, &keys, merged)
    }
}

impl Kernel {
    fn decode(&self, record: &Record, now_ms: i64) -> Outcome {
        let Some(value) = record.value.as_deref().filter(|v| !v.is_empty()) else {
            return Outcome::Rejected(Reject::new("empty", "record has no value".into()));
        };
        if value.len() > self.limits.max_event_bytes {
            return Outcome::Rejected(Reject::new(
                "too_large",
                format!("{} bytes > {}", value.len(), self.limits.max_event_bytes),
            ));
        }
        let doc = if value[0] == MARKER[0] {
            match self.read_avro(value) {
                Ok(doc) => doc,
                Err(verdict) => return outcome_of(verdict),
            }
        } else {
            match parse_json(value) {
                Parsed::Doc(_, true) => {
                    return Outcome::Rejected(Reject::integer_out_of_range(
                        "an integer in the event",
                    ))
                }
                Parsed::Doc(doc, false) => doc,
                Parsed::BadJson(detail) => {
                    return Outcome::Rejected(Reject::new("bad_json", detail))
                }
                Parsed::Unusual => return Outcome::Deferred,
            }
        };
        match validate(
            doc,
            record.key.as_deref(),
            record.timestamp_ms,
            now_ms,
            &self.limits,
        ) {
            Ok(event) => self.route(record, event),
            Err(verdict) => outcome_of(verdict),
        }
    }

    fn read_avro(&self, value: &[u8]) -> Result<crate::doc::Doc, Verdict> {
        if !value.starts_with(&MARKER) {
            return Err(Reject::new("bad_avro", "no single-object marker C3 01".into()).into());
        }
        if value.len() < HEADER_SIZE {
            return Err(Reject::new(
                "bad_avro",
                format!("shorter than the {HEADER_SIZE}-byte header"),
            )
            .into());
        }
        let fingerprint = &value[MARKER.len()..HEADER_SIZE];
        match self.layouts.get(fingerprint) {
            None => Err(Reject::new(
                "unknown_schema",
                format!(
                    "no known ProfileChange schema has fp='{}'",
                    hex(fingerprint)
                ),
            )
            .into()),
            Some(Layout::Other) => Err(Verdict::Defer),
            Some(layout) => avro_in::read_change(value, *layout),
        }
    }

    fn route(&self, record: &Record, event: Event) -> Outcome {
        let partition = home(event.customer_id.as_bytes(), self.partitions);
        if i64::from(partition) != i64::from(record.partition) {
            return Outcome::Reroute(partition, event.customer_id);
        }
        Outcome::Accepted(event)
    }

    fn decode_by_reference(
        &self,
        decode_reference: &Bound<'_, PyAny>,
        index: usize,
        record: &Record,
    ) -> PyResult<Outcome> {
        let answer = decode_reference.call1((index,))?;
        if let Ok(reason) = answer.getattr("reason") {
            let detail: String = answer.getattr("detail")?.extract()?;
            let reason: String = reason.extract()?;
            return Ok(Outcome::Rejected(Reject::new(
                intern_reason(&reason),
                detail,
            )));
        }
        Ok(self.route(record, event_from_python(&answer)?))
    }

    fn merge_batch(
        &self,
        records: &[Record],
        outcomes: &[Outcome],
        record_slot: &[usize],
        keys: &[(i32, &str)],
        stored: &[Option<PyBackedBytes>],
        now_ms: i64,
    ) -> Result<Merged, String> {
        // Read again for the (rare) second pass rather than copied for every batch.
        let load = || -> Result<Vec<Profile>, String> {
            stored
                .iter()
                .map(|raw| {
                    raw.as_deref()
                        .map_or_else(|| Ok(Profile::default()), state::decode)
                })
                .collect()
        };
        let pass = |guarded: &[bool], bytes: Vec<u8>| -> Result<Merged, String> {
            let profiles = load()?;
            Ok(self.merge_pass(
                records,
                outcomes,
                record_slot,
                keys,
                profiles,
                now_ms,
                guarded,
                bytes,
            ))
        };
        let buffer = self
            .buffer
            .lock()
            .map(|mut kept| take(&mut *kept))
            .unwrap_or_default();
        let first = pass(&[], buffer)?;
        let oversized: Vec<bool> = {
            let mut flags = vec![false; keys.len()];
            for (_, states) in &first.states {
                for (slot, span) in states {
                    flags[*slot] = span.len() > self.max_state_bytes;
                }
            }
            flags
        };
        if !oversized.iter().any(|f| *f) {
            return Ok(first);
        }
        // Rare: merge again, checking those customers event by event.
        pass(&oversized, first.bytes)
    }

    #[allow(clippy::too_many_arguments)]
    fn merge_pass(
        &self,
        records: &[Record],
        outcomes: &[Outcome],
        record_slot: &[usize],
        keys: &[(i32, &str)],
        mut profiles: Vec<Profile>,
        now_ms: i64,
        guarded: &[bool],
        mut bytes: Vec<u8>,
    ) -> Merged {
        bytes.clear();
        let mut out = Merged {
            bytes,
            emitted: Vec::new(),
            counts: MergeCounts::default(),
            states: Vec::new(),
            contributors: Vec::new(),
        };
        let mut changed_slots: Vec<bool> = vec![false; keys.len()];
        let mut state_order: Vec<(i32, Vec<usize>)> = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            let Outcome::Accepted(event) = outcome else {
                continue;
            };
            let slot = record_slot[i];
            let profile = &mut profiles[slot];
            let merged = if guarded.get(slot).copied().unwrap_or(false) {
                let before = profile.clone();
                let merged = apply_event(profile, event, &self.policy);
                let size = state::encoded_len(profile);
                if size > self.max_state_bytes {
                    *profile = before;
                    out.counts.too_large += 1;
                    let detail = format!("state would be {size} bytes > {}", self.max_state_bytes);
                    out.emitted.push(Emitted::TooLarge(
                        i,
                        Reject::new("profile_too_large", detail),
                    ));
                    continue;
                }
                merged
            } else {
                apply_event(profile, event, &self.policy)
            };
            out.contributors.push((slot, records[i].offset));
            for stale in &merged.stale {
                let start = out.bytes.len();
                upsert_out::stale_json(event, stale, now_ms, &mut out.bytes);
                out.emitted.push(Emitted::Stale(i, start..out.bytes.len()));
            }
            out.counts.stale_writes += merged.stale.len() as u64;
            if !merged.accepted() {
                out.counts.stale_events += 1;
                continue;
            }
            out.counts.applied += 1;
            let start = out.bytes.len();
            match &self.upsert_header {
                Some(header) => {
                    upsert_out::upsert_avro(header, event, &merged, now_ms, &mut out.bytes)
                }
                None => upsert_out::upsert_json(event, &merged, now_ms, &mut out.bytes),
            }
            out.emitted.push(Emitted::Upsert(i, start..out.bytes.len()));
            if !changed_slots[slot] {
                changed_slots[slot] = true;
                let partition = records[i].partition;
                match state_order.iter_mut().find(|(p, _)| *p == partition) {
                    Some((_, slots)) => slots.push(slot),
                    None => state_order.push((partition, vec![slot])),
                }
            }
        }
        let bytes = &mut out.bytes;
        out.states = state_order
            .into_iter()
            .map(|(partition, slots)| {
                let states = slots
                    .into_iter()
                    .map(|slot| {
                        let start = bytes.len();
                        state::encode(&profiles[slot], bytes);
                        (slot, start..bytes.len())
                    })
                    .collect();
                (partition, states)
            })
            .collect();
        out
    }

    fn build<'py>(
        &self,
        py: Python<'py>,
        records: &[Record],
        outcomes: &[Outcome],
        record_slot: &[usize],
        keys: &[(i32, &str)],
        merged: Merged,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let outputs = record_list(py, Vec::new())?;
        let fills = PyList::empty(py);
        let mut rejected: HashMap<&str, u64> = HashMap::new();
        let mut rerouted = 0_u64;
        let none = py.None();
        for (i, outcome) in outcomes.iter().enumerate() {
            let fill = match outcome {
                Outcome::Accepted(_) => continue,
                Outcome::Deferred => unreachable!("deferred records are decided before the merge"),
                Outcome::Parked => (
                    outputs.len(),
                    i,
                    FILL_PARKED,
                    none.clone_ref(py),
                    none.clone_ref(py),
                ),
                Outcome::Rejected(reject) => {
                    *rejected.entry(reject.reason).or_default() += 1;
                    let reason = PyString::new(py, reject.reason).into_any().unbind();
                    let detail = PyString::new(py, &reject.detail).into_any().unbind();
                    (outputs.len(), i, FILL_REJECTED, reason, detail)
                }
                Outcome::Reroute(home, customer_id) => {
                    rerouted += 1;
                    let home = home.into_pyobject(py)?.into_any().unbind();
                    let key = PyBytes::new(py, customer_id.as_bytes()).into_any().unbind();
                    (outputs.len(), i, FILL_REROUTE, home, key)
                }
            };
            fills.append(fill)?;
            outputs.append(&none)?;
        }
        let key_objects: Vec<Bound<'py, PyBytes>> = keys
            .iter()
            .map(|(_, id)| PyBytes::new(py, id.as_bytes()))
            .collect();
        let cls = self.output_record.bind(py);
        let mut upserts_out = 0_u64;
        let mut origins: Vec<Option<Bound<'py, PyTuple>>> = vec![None; records.len()];
        for emitted in merged.emitted {
            let (i, topic, span) = match emitted {
                Emitted::TooLarge(i, reject) => {
                    *rejected.entry(reject.reason).or_default() += 1;
                    fills.append((
                        outputs.len(),
                        i,
                        FILL_REJECTED,
                        PyString::new(py, reject.reason),
                        PyString::new(py, &reject.detail),
                    ))?;
                    outputs.append(&none)?;
                    continue;
                }
                Emitted::Stale(i, span) => (i, &self.stale_topic, span),
                Emitted::Upsert(i, span) => {
                    upserts_out += 1;
                    (i, &self.upserts_topic, span)
                }
            };
            let record = &records[i];
            let key = key_objects[record_slot[i]].clone();
            // An input's upsert and stale records share its origin.
            let origin = match &origins[i] {
                Some(origin) => origin.clone(),
                None => {
                    let origin = (record.partition, record.offset).into_pyobject(py)?;
                    untrack(&origin);
                    origins[i] = Some(origin.clone());
                    origin
                }
            };
            let output = new_record(
                cls,
                [
                    topic.bind(py).clone().into_any(),
                    record.partition.into_pyobject(py)?.into_any(),
                    key.into_any(),
                    PyBytes::new(py, &merged.bytes[span]).into_any(),
                    none.bind(py).clone(),
                    none.bind(py).clone(),
                    origin.into_any(),
                ],
            )?;
            outputs.append(output)?;
        }
        let states = PyDict::new(py);
        for (partition, entries) in &merged.states {
            let per_partition = PyDict::new(py);
            for (slot, span) in entries {
                per_partition.set_item(
                    &key_objects[*slot],
                    PyBytes::new(py, &merged.bytes[span.clone()]),
                )?;
            }
            states.set_item(partition, per_partition)?;
        }
        if merged.bytes.capacity() <= KEPT_BUFFER_BYTES {
            if let Ok(mut kept) = self.buffer.lock() {
                *kept = merged.bytes;
            }
        }
        let counts = merged.counts;
        if counts.too_large > 0 {
            debug_assert_eq!(
                rejected.get("profile_too_large").copied(),
                Some(counts.too_large)
            );
        }
        let counts_tuple = (
            records.len(),
            counts.applied,
            counts.stale_events,
            counts.stale_writes,
            upserts_out,
            rerouted,
        );
        let rejected_dict = PyDict::new(py);
        for (reason, count) in rejected {
            rejected_dict.set_item(reason, count)?;
        }
        let mut last: Vec<(i32, i64)> = Vec::new();
        for record in records {
            match last.iter_mut().find(|(p, _)| *p == record.partition) {
                Some(entry) => entry.1 = record.offset,
                None => last.push((record.partition, record.offset)),
            }
        }
        let next_offsets = PyDict::new(py);
        for (partition, offset) in last {
            next_offsets.set_item(partition, offset + 1)?;
        }
        let contributors = Contributors {
            entries: merged
                .contributors
                .iter()
                .map(|(slot, offset)| (keys[*slot].0, keys[*slot].1.as_bytes().to_vec(), *offset))
                .collect(),
        };
        PyTuple::new(
            py,
            [
                outputs.into_any(),
                fills.into_any(),
                states.into_any(),
                counts_tuple.into_pyobject(py)?.into_any(),
                rejected_dict.into_any(),
                next_offsets.into_any(),
                Bound::new(py, contributors)?.into_any(),
            ],
        )
    }
}

/// (partition, customer key, input offset) of every record merged into a new state, turned
/// into Python objects only when asked (Kafka refused a state: rare).
#[pyclass(frozen, module = "streams._native")]
pub struct Contributors {
    entries: Vec<(i32, Vec<u8>, i64)>,
}

#[pymethods]
impl Contributors {
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let table = PyDict::new(py);
        for (partition, key, offset) in &self.entries {
            let id = (*partition, PyBytes::new(py, key));
            match table.get_item(&id)? {
                Some(offsets) => offsets.cast::<PyList>()?.append(*offset)?,
                None => table.set_item(id, PyList::new(py, [*offset])?)?,
            }
        }
        Ok(table)
    }
}

fn outcome_of(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Reject(reject) => Outcome::Rejected(reject),
        Verdict::Defer => Outcome::Deferred,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reasons are `&'static str` in the kernel; a reason only the reference knows is leaked
/// once (there are a handful of reason codes).
fn intern_reason(reason: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static KNOWN: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut known = KNOWN
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    if let Some(found) = known.get(reason) {
        return found;
    }
    let leaked: &'static str = Box::leak(reason.to_string().into_boxed_str());
    known.insert(reason.to_string(), leaked);
    leaked
}

/// A reference `ChangeEvent` into the kernel's event.
fn event_from_python(event: &Bound<'_, PyAny>) -> PyResult<Event> {
    let op: String = event.getattr("op")?.getattr("value")?.extract()?;
    let properties_obj = event.getattr("properties")?;
    let mut properties = Vec::new();
    for item in properties_obj.call_method0("items")?.try_iter()? {
        let (name, value): (String, Bound<'_, PyAny>) = item?.extract()?;
        properties.push((name, value_from_python(&value)?));
    }
    let mut property_timestamps = FastMap::default();
    for item in event
        .getattr("property_timestamps")?
        .call_method0("items")?
        .try_iter()?
    {
        let (name, ms): (String, i64) = item?.extract()?;
        property_timestamps.insert(name, ms);
    }
    Ok(Event {
        customer_id: event.getattr("customer_id")?.extract()?,
        source: event.getattr("source")?.extract()?,
        event_id: event.getattr("event_id")?.extract()?,
        delete: op == "delete",
        timestamp: event.getattr("timestamp")?.extract()?,
        properties,
        property_timestamps,
    })
}

fn value_from_python(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    use pyo3::types::{PyBool, PyFloat, PyInt};
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        Ok(Value::Int(value.extract()?))
    } else if let Ok(f) = value.cast::<PyFloat>() {
        Ok(Value::Float(f.value()))
    } else {
        Ok(Value::Str(value.extract()?))
    }
}
