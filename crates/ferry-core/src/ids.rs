//! Table-driven id mapping between a service's wire names for external ids
//! (`ProviderIds: {"Tmdb": "603"}`, `ids: {"imdb": "tt0133093"}`) and ferry's [`IdKind`]s.
//! A provider declares its table once; reading and writing ids both go through it, so a
//! kind is never read under one spelling and written under another.

use serde_json::{Map, Value};

use crate::identity::{IdKind, Ids};

/// A service's id names, each with the kind it carries. Names match case-insensitively
/// when read; they are written as spelled here.
#[derive(Debug, Clone, Copy)]
pub struct IdTable(pub &'static [(&'static str, IdKind)]);

impl IdTable {
    /// The kind a wire name carries.
    pub fn kind_of(&self, name: &str) -> Option<IdKind> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| *k)
    }

    /// The wire name of a kind.
    pub fn name_of(&self, kind: IdKind) -> Option<&'static str> {
        self.0.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n)
    }

    /// The ids of a wire map; strings and integers are read, unknown names and other
    /// values are ignored, and each id is normalized ([`Ids::set`]).
    pub fn read<'a>(&self, pairs: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Ids {
        let mut ids = Ids::new();
        for (name, v) in pairs {
            let Some(kind) = self.kind_of(name) else {
                continue;
            };
            match v {
                Value::String(s) => ids.set(kind, s),
                Value::Number(n) => ids.set(kind, &n.to_string()),
                _ => false,
            };
        }
        ids
    }

    /// The wire map of the ids this table names.
    pub fn write(&self, ids: &Ids) -> Map<String, Value> {
        ids.iter()
            .filter_map(|(k, v)| Some((self.name_of(k)?.to_owned(), Value::String(v.to_owned()))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: IdTable = IdTable(&[
        ("Tmdb", IdKind::Tmdb),
        ("Imdb", IdKind::Imdb),
        ("Tvdb", IdKind::Tvdb),
    ]);

    #[test]
    fn names_read_case_insensitively_and_write_as_declared() {
        let wire = json!({"TMDB": 603, "imdb": "tt0133093", "TvRage": "x", "Tvdb": null});
        let ids = T.read(wire.as_object().unwrap());
        assert_eq!(ids.get(IdKind::Tmdb), Some("603"));
        assert_eq!(ids.get(IdKind::Imdb), Some("tt0133093"));
        assert_eq!(ids.len(), 2);
        let out = T.write(&ids.with(IdKind::Trakt, "5"));
        assert_eq!(
            Value::Object(out),
            json!({"Tmdb": "603", "Imdb": "tt0133093"})
        );
    }
}
