//! Flyte's type rules as flytepropeller applies them at registration: which literal types a
//! value of another type may be bound to (`AreTypesCastable`), the type of a literal, and
//! types written as Go prints them in FlyteAdmin's messages. Pure.

use flyte_api::core::{literal, literal_type::Type, scalar, LiteralType, Primitive, SchemaType, StructuredDatasetType};

/// `SimpleType` values.
pub(crate) mod simple {
    pub(crate) const NONE: i32 = 0;
    pub(crate) const INTEGER: i32 = 1;
    pub(crate) const FLOAT: i32 = 2;
    pub(crate) const STRING: i32 = 3;
    pub(crate) const BOOLEAN: i32 = 4;
    pub(crate) const DATETIME: i32 = 5;
    pub(crate) const DURATION: i32 = 6;
    pub(crate) const BINARY: i32 = 7;
    pub(crate) const ERROR: i32 = 8;
    pub(crate) const STRUCT: i32 = 9;
}

fn simple_of(t: &LiteralType) -> Option<i32> {
    match t.r#type {
        Some(Type::Simple(s)) => Some(s),
        _ => None,
    }
}

fn of_simple(value: i32) -> LiteralType {
    LiteralType { r#type: Some(Type::Simple(value)), ..Default::default() }
}

fn is_none_type(t: &LiteralType) -> bool {
    simple_of(t) == Some(simple::NONE)
}

/// Whether a variable of this type may be left unbound: a union with a none variant.
pub(crate) fn is_optional(t: &LiteralType) -> bool {
    match &t.r#type {
        Some(Type::UnionType(union)) => union.variants.iter().any(is_none_type),
        _ => false,
    }
}

fn tag(t: &LiteralType) -> &str {
    t.structure.as_ref().map_or("", |s| s.tag.as_str())
}

/// flytepropeller's `AreTypesCastable`: whether a value of `upstream`'s type may be bound
/// to an input of `downstream`'s type.
pub(crate) fn castable(upstream: &LiteralType, downstream: &LiteralType) -> bool {
    // A union of one variant is taken as that variant.
    if let Some(Type::UnionType(union)) = &upstream.r#type {
        if let [only] = union.variants.as_slice() {
            if casts_from(downstream, only) {
                return true;
            }
        }
    }
    casts_from(downstream, upstream)
}

/// Whether `downstream` accepts a value of `upstream`'s type (the type checker chosen by
/// the downstream type).
fn casts_from(downstream: &LiteralType, upstream: &LiteralType) -> bool {
    match &downstream.r#type {
        Some(Type::CollectionType(element)) => match &upstream.r#type {
            Some(Type::CollectionType(up)) => is_none_type(up) || casts_from(element, up),
            _ => false,
        },
        Some(Type::MapValueType(value)) => match &upstream.r#type {
            Some(Type::MapValueType(up)) => is_none_type(up) || casts_from(value, up),
            _ => false,
        },
        Some(Type::Blob(down)) => match &upstream.r#type {
            // A blob without a format takes any blob, and any blob goes where no format is asked.
            Some(Type::Blob(up)) => up.format.is_empty() || down.format.is_empty() || up.format == down.format,
            _ => false,
        },
        Some(Type::Schema(down)) => match &upstream.r#type {
            Some(Type::Schema(up)) => schema_from_schema(up, down),
            Some(Type::StructuredDatasetType(up)) => {
                (up.format.is_empty() || up.format.eq_ignore_ascii_case("parquet")) && schema_from_dataset(up, down)
            }
            _ => false,
        },
        Some(Type::UnionType(down)) => match &upstream.r#type {
            // Every upstream variant must fit some downstream variant.
            Some(Type::UnionType(up)) => up.variants.iter().all(|u| down.variants.iter().any(|d| castable(u, d))),
            // Otherwise exactly one variant must take it.
            _ => down.variants.iter().filter(|d| castable(upstream, d)).count() == 1,
        },
        Some(Type::StructuredDatasetType(down)) => {
            if is_none_type(upstream) {
                return true; // structured datasets are nullable
            }
            match &upstream.r#type {
                Some(Type::StructuredDatasetType(up)) => dataset_from_dataset(up, down),
                Some(Type::Schema(up)) => {
                    (down.format.is_empty() || down.format.eq_ignore_ascii_case("parquet"))
                        && dataset_from_schema(up, down)
                }
                _ => false,
            }
        }
        _ if is_none_type(downstream) => is_none_type(upstream),
        _ => trivially_castable(upstream, downstream),
    }
}

/// flytepropeller's trivial checker: the same type, metadata aside; enums and strings take
/// each other; two dataclasses with JSON schemas are accepted (flytepropeller compares the
/// schemas, which the sandbox does not).
fn trivially_castable(upstream: &LiteralType, downstream: &LiteralType) -> bool {
    let string = Some(simple::STRING);
    if matches!(upstream.r#type, Some(Type::EnumType(_))) && simple_of(downstream) == string {
        return true;
    }
    if matches!(downstream.r#type, Some(Type::EnumType(_))) && simple_of(upstream) == string {
        return true;
    }
    if !tag(upstream).is_empty() && tag(upstream) != tag(downstream) {
        return false;
    }
    let structs = Some(simple::STRUCT);
    if simple_of(upstream) == structs && simple_of(downstream) == structs {
        return true;
    }
    upstream.r#type == downstream.r#type
}

fn schema_from_schema(up: &SchemaType, down: &SchemaType) -> bool {
    up.columns.is_empty()
        || down.columns.is_empty()
        || down.columns.iter().all(|d| up.columns.iter().any(|u| u.name == d.name && u.r#type == d.r#type))
}

/// Schema column types (INTEGER 0 … DURATION 5) against simple types (INTEGER 1 … DURATION 6).
fn schema_column_matches(column: i32, simple_type: Option<i32>) -> bool {
    (0..=5).contains(&column) && simple_type == Some(column + 1)
}

fn schema_from_dataset(up: &StructuredDatasetType, down: &SchemaType) -> bool {
    up.columns.is_empty()
        || down.columns.is_empty()
        || down.columns.iter().all(|d| {
            up.columns.iter().any(|u| {
                u.name == d.name && schema_column_matches(d.r#type, u.literal_type.as_ref().and_then(simple_of))
            })
        })
}

fn dataset_from_schema(up: &SchemaType, down: &StructuredDatasetType) -> bool {
    up.columns.is_empty()
        || down.columns.is_empty()
        || down.columns.iter().all(|d| {
            up.columns.iter().any(|u| {
                u.name == d.name && schema_column_matches(u.r#type, d.literal_type.as_ref().and_then(simple_of))
            })
        })
}

fn dataset_from_dataset(up: &StructuredDatasetType, down: &StructuredDatasetType) -> bool {
    if !up.format.is_empty() && !down.format.is_empty() && !up.format.eq_ignore_ascii_case(&down.format) {
        return false;
    }
    up.columns.is_empty()
        || down.columns.is_empty()
        || down.columns.iter().all(|d| {
            up.columns.iter().any(|u| {
                u.name == d.name
                    && match (&d.literal_type, &u.literal_type) {
                        (Some(d), Some(u)) => casts_from(d, u),
                        (d, u) => d == u,
                    }
            })
        })
}

/// The type of a scalar value (flytepropeller's `literalTypeForScalar`); `None` for one it
/// does not recognise.
pub(crate) fn literal_type_for_scalar(value: &flyte_api::core::Scalar) -> Option<LiteralType> {
    Some(match value.value.as_ref()? {
        scalar::Value::Primitive(p) => of_simple(primitive_type(p)),
        scalar::Value::Blob(blob) => {
            let metadata = blob.metadata.as_ref()?;
            LiteralType { r#type: Some(Type::Blob(metadata.r#type.clone().unwrap_or_default())), ..Default::default() }
        }
        scalar::Value::Binary(binary) if binary.tag == "msgpack" => of_simple(simple::STRUCT),
        scalar::Value::Binary(_) => of_simple(simple::BINARY),
        scalar::Value::Schema(schema) => {
            LiteralType { r#type: Some(Type::Schema(schema.r#type.clone().unwrap_or_default())), ..Default::default() }
        }
        scalar::Value::StructuredDataset(dataset) => {
            let kind = dataset.metadata.as_ref().and_then(|m| m.structured_dataset_type.clone()).unwrap_or_default();
            LiteralType { r#type: Some(Type::StructuredDatasetType(kind)), ..Default::default() }
        }
        scalar::Value::NoneType(_) => of_simple(simple::NONE),
        scalar::Value::Error(_) => of_simple(simple::ERROR),
        scalar::Value::Generic(_) => of_simple(simple::STRUCT),
        scalar::Value::Union(union) => LiteralType {
            r#type: Some(Type::UnionType(flyte_api::core::UnionType {
                variants: vec![union.r#type.clone().unwrap_or_default()],
            })),
            ..Default::default()
        },
    })
}

fn primitive_type(primitive: &Primitive) -> i32 {
    use flyte_api::core::primitive::Value;
    match primitive.value {
        Some(Value::Integer(_)) => simple::INTEGER,
        Some(Value::FloatValue(_)) => simple::FLOAT,
        Some(Value::StringValue(_)) => simple::STRING,
        Some(Value::Boolean(_)) => simple::BOOLEAN,
        Some(Value::Datetime(_)) => simple::DATETIME,
        Some(Value::Duration(_)) => simple::DURATION,
        None => simple::NONE,
    }
}

/// The type of a literal, for a launch plan's fixed and default inputs; `None` where the
/// sandbox does not work it out (then the value is accepted).
pub(crate) fn literal_type_for_literal(value: &flyte_api::core::Literal) -> Option<LiteralType> {
    match value.value.as_ref()? {
        literal::Value::Scalar(s) => literal_type_for_scalar(s),
        literal::Value::Collection(items) => {
            let element = common_type(items.literals.iter().map(literal_type_for_literal))?;
            Some(LiteralType { r#type: Some(Type::CollectionType(Box::new(element))), ..Default::default() })
        }
        literal::Value::Map(items) => {
            let value = common_type(items.literals.values().map(literal_type_for_literal))?;
            Some(LiteralType { r#type: Some(Type::MapValueType(Box::new(value))), ..Default::default() })
        }
        literal::Value::OffloadedMetadata(offloaded) => offloaded.inferred_type.clone(),
    }
}

/// The one type of all elements (none for an empty collection); `None` when they differ or
/// one is unknown.
fn common_type(types: impl Iterator<Item = Option<LiteralType>>) -> Option<LiteralType> {
    let mut common: Option<LiteralType> = None;
    for t in types {
        let t = t?;
        match &common {
            None => common = Some(t),
            Some(c) if c.r#type == t.r#type => {}
            Some(_) => return None,
        }
    }
    Some(common.unwrap_or_else(|| of_simple(simple::NONE)))
}

fn simple_name(value: i32) -> String {
    let name = match value {
        simple::NONE => "NONE",
        simple::INTEGER => "INTEGER",
        simple::FLOAT => "FLOAT",
        simple::STRING => "STRING",
        simple::BOOLEAN => "BOOLEAN",
        simple::DATETIME => "DATETIME",
        simple::DURATION => "DURATION",
        simple::BINARY => "BINARY",
        simple::ERROR => "ERROR",
        simple::STRUCT => "STRUCT",
        other => return other.to_string(),
    };
    name.to_string()
}

/// A literal type as FlyteAdmin's messages print it (Go's protobuf text form, as
/// flytepropeller's `LiteralTypeToStr`): `simple:INTEGER`, `collection_type:{simple:STRING}`.
pub(crate) fn show_type(t: Option<&LiteralType>) -> String {
    let Some(t) = t else { return "None".into() };
    let inner = |t: &LiteralType| show_type(Some(t));
    let mut out = match &t.r#type {
        Some(Type::Simple(simple::STRUCT)) => {
            let fields: Vec<String> = t
                .structure
                .iter()
                .flat_map(|s| &s.dataclass_type)
                .map(|(k, v)| format!("dataclass_type:{{key:{k} value:{{{}}}", inner(v)))
                .collect();
            return format!("simple: STRUCT structure{{{}}}", fields.join(", "));
        }
        Some(Type::Simple(s)) => format!("simple:{}", simple_name(*s)),
        Some(Type::Schema(schema)) => {
            let columns: Vec<String> =
                schema.columns.iter().map(|c| format!("columns:{{name:{:?} type:{}}}", c.name, c.r#type)).collect();
            format!("schema:{{{}}}", columns.join(" "))
        }
        Some(Type::CollectionType(element)) => format!("collection_type:{{{}}}", inner(element)),
        Some(Type::MapValueType(value)) => format!("map_value_type:{{{}}}", inner(value)),
        Some(Type::Blob(blob)) => {
            let mut fields = Vec::new();
            if !blob.format.is_empty() {
                fields.push(format!("format:{:?}", blob.format));
            }
            if blob.dimensionality == 1 {
                fields.push("dimensionality:MULTIPART".into());
            }
            format!("blob:{{{}}}", fields.join(" "))
        }
        Some(Type::EnumType(e)) => {
            let values: Vec<String> = e.values.iter().map(|v| format!("values:{v:?}")).collect();
            format!("enum_type:{{{}}}", values.join(" "))
        }
        Some(Type::StructuredDatasetType(d)) => {
            let mut fields: Vec<String> = d
                .columns
                .iter()
                .map(|c| {
                    format!("columns:{{name:{:?} literal_type:{{{}}}}}", c.name, show_type(c.literal_type.as_ref()))
                })
                .collect();
            if !d.format.is_empty() {
                fields.push(format!("format:{:?}", d.format));
            }
            format!("structured_dataset_type:{{{}}}", fields.join(" "))
        }
        Some(Type::UnionType(u)) => {
            let variants: Vec<String> = u.variants.iter().map(|v| format!("variants:{{{}}}", inner(v))).collect();
            format!("union_type:{{{}}}", variants.join(" "))
        }
        None => String::new(),
    };
    if !tag(t).is_empty() {
        out.push_str(&format!(" structure:{{tag:{:?}}}", tag(t)));
    }
    out
}

/// A literal type in Go's protobuf text form (`LiteralType.String()`), which some messages
/// use instead of [`show_type`]: a dataclass prints its structure as a field.
pub(crate) fn type_text(t: &LiteralType) -> String {
    if simple_of(t) != Some(simple::STRUCT) {
        return show_type(Some(t));
    }
    let fields: Vec<String> = t
        .structure
        .iter()
        .flat_map(|s| &s.dataclass_type)
        .map(|(k, v)| format!("dataclass_type:{{key:{k:?} value:{{{}}}}}", type_text(v)))
        .collect();
    format!("simple:STRUCT structure:{{{}}}", fields.join(" "))
}

#[cfg(test)]
mod tests {
    use flyte_api::core::{BlobType, EnumType, UnionType};

    use super::*;

    fn list(t: LiteralType) -> LiteralType {
        LiteralType { r#type: Some(Type::CollectionType(Box::new(t))), ..Default::default() }
    }
    fn map(t: LiteralType) -> LiteralType {
        LiteralType { r#type: Some(Type::MapValueType(Box::new(t))), ..Default::default() }
    }
    fn union(variants: Vec<LiteralType>) -> LiteralType {
        LiteralType { r#type: Some(Type::UnionType(UnionType { variants })), ..Default::default() }
    }
    fn blob(format: &str) -> LiteralType {
        LiteralType {
            r#type: Some(Type::Blob(BlobType { format: format.into(), dimensionality: 0 })),
            ..Default::default()
        }
    }
    fn enumeration(values: &[&str]) -> LiteralType {
        let values = values.iter().map(|v| v.to_string()).collect();
        LiteralType { r#type: Some(Type::EnumType(EnumType { values })), ..Default::default() }
    }
    fn dataset(format: &str) -> LiteralType {
        let kind = StructuredDatasetType { format: format.into(), ..Default::default() };
        LiteralType { r#type: Some(Type::StructuredDatasetType(kind)), ..Default::default() }
    }

    #[test]
    fn casting_follows_flytepropellers_checkers() {
        let (int, float, string, none) =
            (of_simple(simple::INTEGER), of_simple(simple::FLOAT), of_simple(simple::STRING), of_simple(simple::NONE));
        // (upstream, downstream, castable): each line one rule of validators/typing.go.
        let cases = [
            (int.clone(), int.clone(), true),
            (int.clone(), string.clone(), false), // simple types match exactly
            (int.clone(), float.clone(), false),
            (list(int.clone()), list(int.clone()), true),
            (list(int.clone()), list(string.clone()), false),
            (list(none.clone()), list(string.clone()), true), // an empty list fits any list
            (int.clone(), list(int.clone()), false),
            (map(int.clone()), map(int.clone()), true),
            (map(int.clone()), map(float.clone()), false),
            (blob("csv"), blob("csv"), true),
            (blob("csv"), blob("parquet"), false),
            (blob(""), blob("csv"), true), // a generic blob fits any
            (blob("csv"), blob(""), true),
            (enumeration(&["a", "b"]), string.clone(), true), // enums and strings take each other
            (string.clone(), enumeration(&["a"]), true),
            (enumeration(&["a"]), enumeration(&["b"]), false),
            (int.clone(), union(vec![int.clone(), none.clone()]), true), // Optional[int]
            (none.clone(), union(vec![int.clone(), none.clone()]), true),
            (string.clone(), union(vec![int.clone(), none.clone()]), false),
            (union(vec![int.clone()]), int.clone(), true), // a one-variant union is its variant
            (union(vec![int.clone(), string.clone()]), union(vec![string.clone(), int.clone(), none.clone()]), true),
            (union(vec![int.clone(), float.clone()]), union(vec![int.clone()]), false),
            (dataset("parquet"), dataset(""), true),
            (dataset("csv"), dataset("parquet"), false),
            (none.clone(), dataset("parquet"), true), // structured datasets are nullable
            (of_simple(simple::STRUCT), of_simple(simple::STRUCT), true),
            (none.clone(), int.clone(), false),
        ];
        for (i, (up, down, expected)) in cases.iter().enumerate() {
            assert_eq!(castable(up, down), *expected, "case {i}: {} -> {}", show_type(Some(up)), show_type(Some(down)));
        }
        assert!(is_optional(&union(vec![int.clone(), none])) && !is_optional(&union(vec![int])));
    }

    #[test]
    fn types_print_as_go_prints_them() {
        assert_eq!(show_type(Some(&of_simple(simple::INTEGER))), "simple:INTEGER");
        assert_eq!(show_type(Some(&list(of_simple(simple::STRING)))), "collection_type:{simple:STRING}");
        assert_eq!(show_type(Some(&enumeration(&["a", "b"]))), r#"enum_type:{values:"a" values:"b"}"#);
        assert_eq!(show_type(None), "None");
    }
}
