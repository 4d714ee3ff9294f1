//! `streams/merge.py`'s `apply_event`: per-property last-writer-wins with a delete watermark.

use crate::hashing::{FastMap, OrderedMap};
use std::cmp::Ordering;

use crate::validate::Event;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct PropertyState {
    pub value: Value,
    pub last_update: i64,
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub properties: OrderedMap<String, PropertyState>,
    pub deleted_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleReason {
    Older,
    TieLost,
    Duplicate,
    Deleted,
}

impl StaleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StaleReason::Older => "older",
            StaleReason::TieLost => "tie_lost",
            StaleReason::Duplicate => "duplicate",
            StaleReason::Deleted => "deleted",
        }
    }
}

/// A dropped write; `property` is `None` for a superseded delete.
pub struct Stale<'e> {
    pub property: Option<&'e str>,
    pub value: Option<&'e Value>,
    pub timestamp: i64,
    pub stored_last_update: i64,
    pub reason: StaleReason,
}

pub struct MergeResult<'e> {
    /// (index into the event's properties, its timestamp), in the event's order.
    pub changed: Vec<(usize, i64)>,
    pub stale: Vec<Stale<'e>>,
    pub deleted_at: Option<i64>,
}

impl MergeResult<'_> {
    pub fn accepted(&self) -> bool {
        !self.changed.is_empty() || self.deleted_at.is_some()
    }
}

pub struct Policy {
    pub priorities: FastMap<String, i64>,
}

impl Policy {
    fn priority(&self, source: &str) -> i64 {
        self.priorities.get(source).copied().unwrap_or(0)
    }

    /// `policy.rank(a) <=> policy.rank(b)`: timestamp, source priority, value, source name.
    fn compare(&self, a: (&Value, i64, &str), b: (&Value, i64, &str)) -> Ordering {
        a.1.cmp(&b.1)
            .then_with(|| self.priority(a.2).cmp(&self.priority(b.2)))
            .then_with(|| a.0.rank_cmp(b.0))
            .then_with(|| a.2.cmp(b.2))
    }
}

fn event_timestamp(event: &Event, name: &str) -> i64 {
    if event.property_timestamps.is_empty() {
        return event.timestamp;
    }
    event
        .property_timestamps
        .get(name)
        .copied()
        .unwrap_or(event.timestamp)
}

pub fn apply_event<'e>(
    profile: &mut Profile,
    event: &'e Event,
    policy: &Policy,
) -> MergeResult<'e> {
    let mut result = MergeResult {
        changed: Vec::new(),
        stale: Vec::new(),
        deleted_at: None,
    };
    if event.delete {
        apply_delete(profile, event, &mut result);
        return result;
    }
    result.changed.reserve(event.properties.len());
    if profile.properties.is_empty() {
        // A new customer (every row of a backfill): sized once instead of grown and rehashed.
        profile.properties.reserve(event.properties.len());
    }
    let watermark = profile.deleted_at;
    for (index, (name, value)) in event.properties.iter().enumerate() {
        let timestamp = event_timestamp(event, name);
        let stale = |stored, reason| Stale {
            property: Some(name.as_str()),
            value: Some(value),
            timestamp,
            stored_last_update: stored,
            reason,
        };
        if let Some(mark) = watermark {
            if timestamp <= mark {
                result.stale.push(stale(mark, StaleReason::Deleted));
                continue;
            }
        }
        if let Some(stored) = profile.properties.get(name) {
            let order = policy.compare(
                (value, timestamp, &event.source),
                (&stored.value, stored.last_update, &stored.source),
            );
            let reason = match order {
                Ordering::Greater => None,
                Ordering::Equal => Some(StaleReason::Duplicate),
                Ordering::Less if timestamp == stored.last_update => Some(StaleReason::TieLost),
                Ordering::Less => Some(StaleReason::Older),
            };
            if let Some(reason) = reason {
                result.stale.push(stale(stored.last_update, reason));
                continue;
            }
        }
        let state = PropertyState {
            value: value.clone(),
            last_update: timestamp,
            source: event.source.clone(),
        };
        profile.properties.insert(name.clone(), state);
        result.changed.push((index, timestamp));
    }
    result
}

fn apply_delete<'e>(profile: &mut Profile, event: &'e Event, result: &mut MergeResult<'e>) {
    let at = event.timestamp;
    if let Some(mark) = profile.deleted_at {
        if at <= mark {
            result.stale.push(Stale {
                property: None,
                value: None,
                timestamp: at,
                stored_last_update: mark,
                reason: if at == mark {
                    StaleReason::Duplicate
                } else {
                    StaleReason::Older
                },
            });
            return;
        }
    }
    profile.deleted_at = Some(at);
    profile.properties.retain(|_, state| state.last_update > at);
    result.deleted_at = Some(at);
}
