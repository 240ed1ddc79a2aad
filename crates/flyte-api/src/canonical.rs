//! Identity of specs as FlyteAdmin decides it: a canonical form of the wire bytes in which
//! field order and map-entry order do not count (protobuf writers, Python's among them, emit
//! map entries in an order that varies from process to process). Decode-free: fields are
//! put in field-number order (repeated fields keep their relative order, which counts) and
//! the entries of every map are sorted by key, recursively through the message structure
//! of flyteidl 1.16 below; bytes of fields outside it are kept as they are. Used by the
//! sandbox to answer ALREADY_EXISTS or INVALID_ARGUMENT and by the client to compare.

use anyhow::Result;

use crate::wire::{self, WireType};
use crate::Kind;

/// The top-level messages whose identity is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `flyteidl.admin.TaskSpec` (what CreateTask carries; pyflyte's `_1.pb`).
    TaskSpec,
    /// `flyteidl.admin.WorkflowSpec` (CreateWorkflow; `_2.pb`).
    WorkflowSpec,
    /// `flyteidl.admin.LaunchPlanSpec` (CreateLaunchPlan).
    LaunchPlanSpec,
    /// `flyteidl.admin.LaunchPlan` (id, spec, closure; pyflyte's `_3.pb`).
    LaunchPlan,
}

impl Spec {
    /// The spec a create request of `kind` carries.
    pub fn of(kind: Kind) -> Spec {
        match kind {
            Kind::Task => Spec::TaskSpec,
            Kind::Workflow => Spec::WorkflowSpec,
            Kind::LaunchPlan => Spec::LaunchPlanSpec,
        }
    }

    fn message(self) -> M {
        match self {
            Spec::TaskSpec => M::TaskSpec,
            Spec::WorkflowSpec => M::WorkflowSpec,
            Spec::LaunchPlanSpec => M::LaunchPlanSpec,
            Spec::LaunchPlan => M::LaunchPlan,
        }
    }
}

/// The messages on the way from a spec to a map (read from flyteidl 1.16's descriptors:
/// only messages that contain a map somewhere below them are named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    TaskSpec,
    TaskTemplate,
    TaskMetadata,
    K8sObjectMetadata,
    TypedInterface,
    VariableMap,
    Variable,
    LiteralType,
    StructuredDatasetType,
    DatasetColumn,
    UnionType,
    Struct,
    Value,
    ListValue,
    TypeAnnotation,
    TypeStructure,
    ArtifactId,
    Partitions,
    K8sPod,
    WorkflowSpec,
    WorkflowTemplate,
    WorkflowMetadata,
    Node,
    NodeMetadata,
    Binding,
    BindingData,
    Scalar,
    StructuredDataset,
    StructuredDatasetMetadata,
    Union,
    Literal,
    LiteralCollection,
    LiteralMap,
    LiteralOffloadedMetadata,
    BindingDataCollection,
    BindingDataMap,
    UnionInfo,
    TaskNode,
    TaskNodeOverrides,
    BranchNode,
    IfElseBlock,
    IfBlock,
    BooleanExpression,
    ConjunctionExpression,
    ComparisonExpression,
    Operand,
    GateNode,
    SignalCondition,
    ArrayNode,
    LaunchPlan,
    LaunchPlanSpec,
    ParameterMap,
    Parameter,
    ArtifactQuery,
    StringMap,
    ExecutionEnvAssignment,
    ExecutionEnv,
    LaunchPlanClosure,
    /// A message outside the structure above (read only to show differences).
    Other,
}

/// What a field of a message holds, as far as canonical order cares.
#[derive(Debug, Clone, Copy)]
enum Child {
    Message(M),
    /// A map whose values are messages of this type (`None`: scalar values).
    Map(Option<M>),
}

/// The child of field `number` of message `m` (None: bytes kept as they are).
fn child(m: M, number: u32) -> Option<Child> {
    use Child::{Map, Message as Msg};
    let c = match (m, number) {
        (M::TaskSpec, 1) => Msg(M::TaskTemplate),
        (M::TaskTemplate, 3) => Msg(M::TaskMetadata),
        (M::TaskTemplate, 4) => Msg(M::TypedInterface),
        (M::TaskTemplate, 5) => Msg(M::Struct),
        (M::TaskTemplate, 16) => Map(None),
        (M::TaskTemplate, 17) => Msg(M::K8sPod),
        (M::TaskMetadata, 11) => Map(None),
        (M::TaskMetadata, 16) => Msg(M::K8sObjectMetadata),
        (M::K8sObjectMetadata, 1 | 2) => Map(None),
        (M::TypedInterface, 1 | 2) => Msg(M::VariableMap),
        (M::VariableMap, 1) => Map(Some(M::Variable)),
        (M::Variable, 1) => Msg(M::LiteralType),
        (M::Variable, 3) => Msg(M::ArtifactId),
        (M::LiteralType, 3 | 4) => Msg(M::LiteralType),
        (M::LiteralType, 6) => Msg(M::Struct),
        (M::LiteralType, 8) => Msg(M::StructuredDatasetType),
        (M::LiteralType, 9) => Msg(M::TypeAnnotation),
        (M::LiteralType, 10) => Msg(M::UnionType),
        (M::LiteralType, 11) => Msg(M::TypeStructure),
        (M::StructuredDatasetType, 1) => Msg(M::DatasetColumn),
        (M::DatasetColumn, 2) => Msg(M::LiteralType),
        (M::UnionType, 1) => Msg(M::LiteralType),
        (M::Struct, 1) => Map(Some(M::Value)),
        (M::Value, 5) => Msg(M::Struct),
        (M::Value, 6) => Msg(M::ListValue),
        (M::ListValue, 1) => Msg(M::Value),
        (M::TypeAnnotation, 1) => Msg(M::Struct),
        (M::TypeStructure, 2) => Map(Some(M::LiteralType)),
        (M::ArtifactId, 3) => Msg(M::Partitions),
        (M::Partitions, 1) => Map(None),
        (M::K8sPod, 1) => Msg(M::K8sObjectMetadata),
        (M::K8sPod, 2) => Msg(M::Struct),
        (M::WorkflowSpec, 1 | 2) => Msg(M::WorkflowTemplate),
        (M::WorkflowTemplate, 2) => Msg(M::WorkflowMetadata),
        (M::WorkflowTemplate, 3) => Msg(M::TypedInterface),
        (M::WorkflowTemplate, 4 | 6) => Msg(M::Node),
        (M::WorkflowTemplate, 5) => Msg(M::Binding),
        (M::WorkflowMetadata, 3) => Map(None),
        (M::Node, 2) => Msg(M::NodeMetadata),
        (M::Node, 3) => Msg(M::Binding),
        (M::Node, 6) => Msg(M::TaskNode),
        (M::Node, 8) => Msg(M::BranchNode),
        (M::Node, 9) => Msg(M::GateNode),
        (M::Node, 10) => Msg(M::ArrayNode),
        (M::NodeMetadata, 10) => Map(None),
        (M::Binding, 2) => Msg(M::BindingData),
        (M::BindingData, 1) => Msg(M::Scalar),
        (M::BindingData, 2) => Msg(M::BindingDataCollection),
        (M::BindingData, 4) => Msg(M::BindingDataMap),
        (M::BindingData, 5) => Msg(M::UnionInfo),
        (M::BindingData, 6) => Msg(M::LiteralOffloadedMetadata),
        (M::Scalar, 7) => Msg(M::Struct),
        (M::Scalar, 8) => Msg(M::StructuredDataset),
        (M::Scalar, 9) => Msg(M::Union),
        (M::StructuredDataset, 2) => Msg(M::StructuredDatasetMetadata),
        (M::StructuredDatasetMetadata, 1) => Msg(M::StructuredDatasetType),
        (M::Union, 1) => Msg(M::Literal),
        (M::Union, 2) => Msg(M::LiteralType),
        (M::Literal, 1) => Msg(M::Scalar),
        (M::Literal, 2) => Msg(M::LiteralCollection),
        (M::Literal, 3) => Msg(M::LiteralMap),
        (M::Literal, 5) => Map(None),
        (M::Literal, 8) => Msg(M::LiteralOffloadedMetadata),
        (M::LiteralCollection, 1) => Msg(M::Literal),
        (M::LiteralMap, 1) => Map(Some(M::Literal)),
        (M::LiteralOffloadedMetadata, 3) => Msg(M::LiteralType),
        (M::BindingDataCollection, 1) => Msg(M::BindingData),
        (M::BindingDataMap, 1) => Map(Some(M::BindingData)),
        (M::UnionInfo, 1) => Msg(M::LiteralType),
        (M::TaskNode, 2) => Msg(M::TaskNodeOverrides),
        (M::TaskNodeOverrides, 4) => Msg(M::K8sPod),
        (M::BranchNode, 1) => Msg(M::IfElseBlock),
        (M::IfElseBlock, 1 | 2) => Msg(M::IfBlock),
        (M::IfElseBlock, 3) => Msg(M::Node),
        (M::IfBlock, 1) => Msg(M::BooleanExpression),
        (M::IfBlock, 2) => Msg(M::Node),
        (M::BooleanExpression, 1) => Msg(M::ConjunctionExpression),
        (M::BooleanExpression, 2) => Msg(M::ComparisonExpression),
        (M::ConjunctionExpression, 2 | 3) => Msg(M::BooleanExpression),
        (M::ComparisonExpression, 2 | 3) => Msg(M::Operand),
        (M::Operand, 3) => Msg(M::Scalar),
        (M::GateNode, 2) => Msg(M::SignalCondition),
        (M::SignalCondition, 2) => Msg(M::LiteralType),
        (M::ArrayNode, 1) => Msg(M::Node),
        (M::LaunchPlan, 2) => Msg(M::LaunchPlanSpec),
        (M::LaunchPlan, 3) => Msg(M::LaunchPlanClosure),
        (M::LaunchPlanSpec, 3) => Msg(M::ParameterMap),
        (M::LaunchPlanSpec, 4) => Msg(M::LiteralMap),
        (M::LaunchPlanSpec, 6 | 7) => Msg(M::StringMap),
        (M::LaunchPlanSpec, 22) => Msg(M::ExecutionEnvAssignment),
        (M::ParameterMap, 1) => Map(Some(M::Parameter)),
        (M::Parameter, 1) => Msg(M::Variable),
        (M::Parameter, 2) => Msg(M::Literal),
        (M::Parameter, 4) => Msg(M::ArtifactQuery),
        (M::Parameter, 5) => Msg(M::ArtifactId),
        (M::ArtifactQuery, 1) => Msg(M::ArtifactId),
        // admin.Labels and admin.Annotations: `map<string, string> values = 1`.
        (M::StringMap, 1) => Map(None),
        (M::ExecutionEnvAssignment, 3) => Msg(M::ExecutionEnv),
        (M::ExecutionEnv, 3 | 4) => Msg(M::Struct),
        (M::LaunchPlanClosure, 2) => Msg(M::ParameterMap),
        (M::LaunchPlanClosure, 3) => Msg(M::VariableMap),
        _ => return None,
    };
    Some(c)
}

/// Field numbers of a map entry message.
const MAP_KEY: u32 = 1;
const MAP_VALUE: u32 = 2;

/// The canonical form of `bytes`, a `spec` message: equal for two encodings of the same
/// content whatever their field and map-entry order. Fails on malformed wire bytes.
pub fn canonical(spec: Spec, bytes: &[u8]) -> Result<Vec<u8>> {
    message(spec.message(), bytes)
}

/// True when `a` and `b` are the same `spec` as FlyteAdmin decides identity (canonical
/// forms equal). Malformed bytes compare by their bytes.
pub fn identical(spec: Spec, a: &[u8], b: &[u8]) -> bool {
    match (canonical(spec, a), canonical(spec, b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn message(m: M, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut parts: Vec<(u32, Vec<u8>)> = Vec::new();
    // Map entries by field number: (key bytes, canonical entry) in wire order.
    let mut maps: Vec<(u32, Vec<MapEntry>)> = Vec::new();
    for field in wire::fields(bytes)? {
        let value = &bytes[field.value.clone()];
        match (child(m, field.number), field.wire_type) {
            (Some(Child::Message(t)), WireType::Len) => {
                parts.push((field.number, wire::len_field(field.number, &message(t, value)?)));
            }
            (Some(Child::Map(t)), WireType::Len) => {
                let (key, entry) = map_entry(t, value)?;
                match maps.iter_mut().find(|(n, _)| *n == field.number) {
                    Some((_, entries)) => entries.push((key, entry)),
                    None => maps.push((field.number, vec![(key, entry)])),
                }
            }
            _ => parts.push((field.number, bytes[field.span.clone()].to_vec())),
        }
    }
    for (number, entries) in maps {
        // The last entry of a key wins, as when a map is decoded; then sorted by key.
        let mut by_key = std::collections::BTreeMap::new();
        for (key, entry) in entries {
            by_key.insert(key, entry);
        }
        for entry in by_key.into_values() {
            parts.push((number, wire::len_field(number, &entry)));
        }
    }
    parts.sort_by_key(|(number, _)| *number);
    Ok(parts.into_iter().flat_map(|(_, bytes)| bytes).collect())
}

/// A map entry's key bytes and its canonical form.
type MapEntry = (Vec<u8>, Vec<u8>);

/// A map entry's key (its bytes) and canonical form (key then value).
fn map_entry(value_type: Option<M>, entry: &[u8]) -> Result<MapEntry> {
    let mut key = Vec::new();
    let mut value = None;
    for field in wire::fields(entry)? {
        let bytes = &entry[field.value.clone()];
        match field.number {
            MAP_KEY => key = bytes.to_vec(),
            MAP_VALUE => {
                value = Some(match (value_type, field.wire_type) {
                    (Some(t), WireType::Len) => wire::len_field(MAP_VALUE, &message(t, bytes)?),
                    _ => entry[field.span.clone()].to_vec(),
                })
            }
            _ => {}
        }
    }
    let mut out = if key.is_empty() { Vec::new() } else { wire::len_field(MAP_KEY, &key) };
    out.extend(value.unwrap_or_default());
    Ok((key, out))
}

/// What differs between two `spec`s, one line per differing leaf (`-` only in `a`, `+`
/// only in `b`), each named by its path of field numbers, map keys in brackets and repeated
/// occurrences by index: e.g. `1.3.11["team"] = "ml"`. At most `limit` lines.
pub fn differences(spec: Spec, a: &[u8], b: &[u8], limit: usize) -> Vec<String> {
    let leaves = |bytes: &[u8]| {
        let mut out = Vec::new();
        if flatten(spec.message(), bytes, String::new(), &mut out).is_err() {
            out = vec![format!("(malformed: {} bytes)", bytes.len())];
        }
        out
    };
    let (a, b) = (leaves(a), leaves(b));
    let only = |x: &[String], y: &[String]| -> Vec<String> {
        let y: std::collections::BTreeSet<&String> = y.iter().collect();
        x.iter().filter(|l| !y.contains(l)).cloned().collect()
    };
    let removed = only(&a, &b).into_iter().map(|l| format!("-{l}"));
    let added = only(&b, &a).into_iter().map(|l| format!("+{l}"));
    removed.chain(added).take(limit).collect()
}

fn flatten(m: M, bytes: &[u8], path: String, out: &mut Vec<String>) -> Result<()> {
    let mut seen: Vec<(u32, usize)> = Vec::new();
    let canonical = message(m, bytes)?;
    for field in wire::fields(&canonical)? {
        let value = &canonical[field.value.clone()];
        let index = match seen.iter_mut().find(|(n, _)| *n == field.number) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                seen.push((field.number, 0));
                0
            }
        };
        let here = if path.is_empty() { field.number.to_string() } else { format!("{path}.{}", field.number) };
        match (child(m, field.number), field.wire_type) {
            (Some(Child::Message(t)), WireType::Len) => flatten(t, value, format!("{here}[{index}]"), out)?,
            (Some(Child::Map(t)), WireType::Len) => {
                let key = wire::last_len(value, MAP_KEY)?.unwrap_or_default();
                let here = format!("{here}[{}]", show(key));
                match (t, wire::last_len(value, MAP_VALUE)?) {
                    (Some(t), Some(v)) => flatten(t, v, here, out)?,
                    _ => out.push(format!("{here} = {}", show(wire::last_len(value, MAP_VALUE)?.unwrap_or_default()))),
                }
            }
            (_, WireType::Len) if printable(value).is_none() && looks_like_message(value) => {
                flatten(M::Other, value, format!("{here}[{index}]"), out)?
            }
            (_, WireType::Len) => out.push(format!("{here}[{index}] = {}", show(value))),
            _ => out.push(format!("{here}[{index}] = {}", hex_of(&canonical[field.span.clone()]))),
        }
    }
    Ok(())
}

/// A value for a reader: quoted text when it is printable UTF-8, else hex (shortened).
fn show(bytes: &[u8]) -> String {
    printable(bytes).map_or_else(|| hex_of(bytes), |text| format!("{text:?}"))
}

fn printable(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|text| text.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'))
}

/// Bytes that read as protobuf fields to their end (a sub-message outside the structure).
fn looks_like_message(bytes: &[u8]) -> bool {
    !bytes.is_empty() && wire::fields(bytes).is_ok_and(|fields| fields.iter().all(|f| f.number > 0))
}

fn hex_of(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 48 {
        format!("0x{shown}… ({} bytes)", bytes.len())
    } else {
        format!("0x{shown}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut e = wire::len_field(MAP_KEY, key.as_bytes());
        e.extend(value);
        e
    }

    /// LaunchPlanSpec{workflow_id (1), labels (6): Labels{values (1): map}} with the labels
    /// in the given order, and field 24 (unknown to the crate) before or after.
    fn launch_plan(labels: &[(&str, &str)], unknown_first: bool) -> Vec<u8> {
        let mut map = Vec::new();
        for (k, v) in labels {
            map.extend(wire::len_field(1, &entry(k, &wire::len_field(MAP_VALUE, v.as_bytes()))));
        }
        let unknown = wire::len_field(24, b"\x08\x01");
        let mut out = Vec::new();
        if unknown_first {
            out.extend(&unknown);
        }
        out.extend(wire::len_field(1, b"\x0a\x01p"));
        out.extend(wire::len_field(6, &map));
        if !unknown_first {
            out.extend(&unknown);
        }
        out
    }

    #[test]
    fn map_entry_and_field_order_do_not_count() {
        let a = launch_plan(&[("a", "1"), ("b", "2")], false);
        let b = launch_plan(&[("b", "2"), ("a", "1")], true);
        assert_ne!(a, b);
        assert!(identical(Spec::LaunchPlanSpec, &a, &b));
        assert_eq!(canonical(Spec::LaunchPlanSpec, &a).unwrap(), canonical(Spec::LaunchPlanSpec, &b).unwrap());
    }

    #[test]
    fn different_content_differs_and_says_where() {
        let a = launch_plan(&[("a", "1"), ("b", "2")], false);
        let b = launch_plan(&[("b", "3"), ("a", "1")], false);
        assert!(!identical(Spec::LaunchPlanSpec, &a, &b));
        let diff = differences(Spec::LaunchPlanSpec, &a, &b, 10);
        assert_eq!(diff, vec![r#"-6[0].1["b"] = "2""#.to_string(), r#"+6[0].1["b"] = "3""#.to_string()]);
    }

    #[test]
    fn repeated_order_counts() {
        // Two nodes of a workflow template in either order: a different workflow.
        let node = |id: &str| wire::len_field(4, &wire::len_field(1, id.as_bytes()));
        let template = |first: &str, second: &str| {
            let mut t = node(first);
            t.extend(node(second));
            wire::len_field(1, &t)
        };
        assert!(!identical(Spec::WorkflowSpec, &template("n0", "n1"), &template("n1", "n0")));
    }

    #[test]
    fn nested_structs_are_sorted_at_every_depth() {
        // TaskSpec{template: TaskTemplate{custom (5): Struct{fields: {x: Value{struct_value:
        // Struct{fields: {p, q}}}}}}}, inner entries in either order.
        let number = |n: u8| wire::len_field(MAP_VALUE, &[0x11, 0, 0, 0, 0, 0, 0, 0xf0, n]);
        let inner = |order: [&str; 2]| {
            let mut s = Vec::new();
            for k in order {
                s.extend(wire::len_field(1, &entry(k, &number(0x3f))));
            }
            s
        };
        let spec = |order| {
            let value = wire::len_field(5, &inner(order));
            let outer = wire::len_field(1, &entry("x", &wire::len_field(MAP_VALUE, &value)));
            wire::len_field(1, &wire::len_field(5, &outer))
        };
        assert!(identical(Spec::TaskSpec, &spec(["p", "q"]), &spec(["q", "p"])));
    }
}
