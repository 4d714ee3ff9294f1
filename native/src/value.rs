//! Property values and the total order that breaks timestamp ties (`merge.value_rank`).

use std::cmp::Ordering;

/// A property value: a JSON scalar, as the Python decoder types it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    fn kind(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Str(_) => 4,
        }
    }

    /// `value_rank(a) <=> value_rank(b)`: type first, then the value; a float's sign breaks
    /// the tie between -0.0 and 0.0. Values are never NaN (the decoder refuses them).
    pub fn rank_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a
                .partial_cmp(b)
                .unwrap_or(Ordering::Equal)
                .then_with(|| sign(*a).total_cmp(&sign(*b))),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

fn sign(value: f64) -> f64 {
    1.0_f64.copysign(value)
}
