//! Field types for providers' typed wire rows, where services agree on a loose shape.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use crate::time::Timestamp;

/// A timestamp field: absent, `null` or empty is none; anything but a timestamp is an
/// error, so the row is undecodable (a garbled date never reads as "never").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp(pub Option<Timestamp>);

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Stamp(None)),
            Some(s) if s.trim().is_empty() => Ok(Stamp(None)),
            Some(s) => Timestamp::parse(&s)
                .map(|t| Stamp(Some(t)))
                .ok_or_else(|| de::Error::custom(format!("not a timestamp: {s:?}"))),
        }
    }
}

/// A year or a count sent as a number or a numeric string (`"1995"`); anything else is
/// none (these only describe a title, so an odd value is not worth a bad row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loose(pub Option<u64>);

impl Loose {
    /// A release year: none when zero or past `u16`.
    pub fn year(self) -> Option<u16> {
        self.0
            .and_then(|y| u16::try_from(y).ok())
            .filter(|y| *y > 0)
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Loose(match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_are_strict_and_numbers_loose() {
        let s: Stamp = serde_json::from_value(json!("2025-06-01T20:00:00Z")).unwrap();
        assert!(s.0.is_some());
        assert_eq!(
            serde_json::from_value::<Stamp>(json!(null)).unwrap(),
            Stamp(None)
        );
        assert_eq!(
            serde_json::from_value::<Stamp>(json!("")).unwrap(),
            Stamp(None)
        );
        assert!(serde_json::from_value::<Stamp>(json!("yesterday")).is_err());
        assert!(serde_json::from_value::<Stamp>(json!(5)).is_err());
        let y = |v| serde_json::from_value::<Loose>(v).unwrap();
        assert_eq!(y(json!("1995")).year(), Some(1995));
        assert_eq!(y(json!(1995)).year(), Some(1995));
        assert_eq!(y(json!(0)).year(), None);
        assert_eq!(y(json!("soon")).0, None);
        assert_eq!(y(json!(3.0)).0, Some(3));
    }
}
