//! The request's objects are read from JSON objects only. serde's derive also reads a struct
//! from an array, field by field in order, which let `[...]` stand for a whole request or its
//! `options` and answered `[]` with "expected struct MigrationRequest with 7 elements".
//!
//! Each request struct is declared with `#[serde(remote = "Self")]` (the derive then writes
//! inherent `serialize` / `deserialize` functions) and [`objects_only!`] implements the traits
//! on top of them, reading through [`MapOnly`], which asks the data format for a map where
//! the derive would accept either.

use serde::de::{Deserializer, Visitor};

/// A deserializer that reads a struct only from a map (a JSON object).
pub(crate) struct MapOnly<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// `Serialize` and `Deserialize` for structs declared with `#[serde(remote = "Self")]`,
/// read from objects only (see the module).
macro_rules! objects_only {
    ($($t:ty),* $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize($crate::domain::request::objects::MapOnly(d))
            }
        }
    )*};
}
pub(crate) use objects_only;
