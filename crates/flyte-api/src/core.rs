//! `flyteidl.core`: the identifier and entity kind every call names, and the task and workflow
//! templates, with the fields this tool reads (Flyte 1.16 numbering).
//!
//! Decoding skips fields not declared here, so a decoded template is for reading only: specs
//! are edited on the wire (see [`crate::fields`]), never re-encoded from these types.

use std::collections::BTreeMap;
use std::fmt;

/// The kind of an entity the tool registers, numbered as `flyteidl.core.ResourceType`. That
/// enum also has `UNSPECIFIED` (0) and `DATASET` (4), which name nothing registered here: an
/// identifier carrying one has no [`Identifier::kind`].
///
/// The same numbers end the names of the spec files `pyflyte package` writes
/// (`<index>_<name>_<1|2|3>.pb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `TASK`: an `admin.TaskSpec`.
    Task = 1,
    /// `WORKFLOW`: an `admin.WorkflowSpec`.
    Workflow = 2,
    /// `LAUNCH_PLAN`: an `admin.LaunchPlan` (its `spec` is what is registered).
    LaunchPlan = 3,
}

impl Kind {
    /// Every kind, in registration order (a workflow needs its tasks, a launch plan its
    /// workflow).
    pub const ALL: [Kind; 3] = [Kind::Task, Kind::Workflow, Kind::LaunchPlan];

    /// The kind of a `resource_type` value, if it is one that is registered.
    pub fn from_resource_type(value: i32) -> Option<Kind> {
        match value {
            1 => Some(Kind::Task),
            2 => Some(Kind::Workflow),
            3 => Some(Kind::LaunchPlan),
            _ => None,
        }
    }

    /// The `resource_type` value.
    pub fn resource_type(self) -> i32 {
        self as i32
    }

    /// The words FlyteAdmin uses in its messages: `task`, `workflow`, `launch plan`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Task => "task",
            Kind::Workflow => "workflow",
            Kind::LaunchPlan => "launch plan",
        }
    }

    /// The enum value's name in the protocol: `TASK`, `WORKFLOW`, `LAUNCH_PLAN`.
    pub fn proto_name(self) -> &'static str {
        match self {
            Kind::Task => "TASK",
            Kind::Workflow => "WORKFLOW",
            Kind::LaunchPlan => "LAUNCH_PLAN",
        }
    }
}

impl fmt::Display for Kind {
    /// [`Kind::noun`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

impl From<Kind> for i32 {
    fn from(kind: Kind) -> i32 {
        kind.resource_type()
    }
}

/// `flyteidl.core.Identifier`: one version of a task, workflow or launch plan.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Identifier {
    /// A `ResourceType` value; see [`Identifier::kind`].
    #[prost(int32, tag = "1")]
    pub resource_type: i32,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(string, tag = "3")]
    pub domain: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub version: String,
    #[prost(string, tag = "6")]
    pub org: String,
}

impl Identifier {
    /// The identifier of `name` at `version` in `project` and `domain` (no org).
    pub fn new(kind: Kind, project: &str, domain: &str, name: &str, version: &str) -> Identifier {
        Identifier {
            resource_type: kind.resource_type(),
            project: project.into(),
            domain: domain.into(),
            name: name.into(),
            version: version.into(),
            org: String::new(),
        }
    }

    /// The kind it names, if it is one that is registered.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_resource_type(self.resource_type)
    }

    /// The same entity with the given kind (a Get or an update names the kind it asks for).
    pub fn with_kind(&self, kind: Kind) -> Identifier {
        Identifier { resource_type: kind.resource_type(), ..self.clone() }
    }
}

impl fmt::Display for Identifier {
    /// `task flytesnacks/development/hello.greet.shout@v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Some(kind) => write!(f, "{kind} ")?,
            None => write!(f, "resource type {} ", self.resource_type)?,
        }
        write!(f, "{}/{}/{}@{}", self.project, self.domain, self.name, self.version)
    }
}

/// `flyteidl.core.KeyValuePair`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct KeyValuePair {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `flyteidl.core.TaskTemplate`: id, type, metadata and what runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskTemplate {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    /// The plugin that runs it (`python-task`, …).
    #[prost(string, tag = "2")]
    pub r#type: String,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<TaskMetadata>,
    #[prost(message, optional, tag = "4")]
    pub interface: Option<TypedInterface>,
    #[prost(oneof = "task_template::Target", tags = "6, 17")]
    pub target: Option<task_template::Target>,
}

/// The `target` oneof of [`TaskTemplate`].
pub mod task_template {
    /// What the task runs (a SQL statement, the oneof's third case, is not read here).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Target {
        #[prost(message, tag = "6")]
        Container(super::Container),
        #[prost(message, tag = "17")]
        K8sPod(super::K8sPod),
    }
}

/// `flyteidl.core.TaskMetadata`; pyflyte writes more (`is_eager`, `generates_deck`, …), which
/// the wire edits keep and this type skips.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskMetadata {
    #[prost(bool, tag = "1")]
    pub discoverable: bool,
    /// The SDK that wrote the task.
    #[prost(message, optional, tag = "2")]
    pub runtime: Option<RuntimeMetadata>,
}

/// `flyteidl.core.RuntimeMetadata`: which SDK version wrote a task (flytekit's, for pyflyte).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeMetadata {
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `flyteidl.core.Container`: the image and the arguments (which carry the code archive's
/// URL and the destination dir of a fast-registered task).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub image: String,
    #[prost(string, repeated, tag = "3")]
    pub args: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub resources: Option<Resources>,
}

/// `flyteidl.core.Resources`: a container's requests and limits.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resources {
    #[prost(message, repeated, tag = "1")]
    pub requests: Vec<ResourceEntry>,
    #[prost(message, repeated, tag = "2")]
    pub limits: Vec<ResourceEntry>,
}

/// `flyteidl.core.Resources.ResourceEntry`: a `ResourceName` (CPU 1, GPU 2, MEMORY 3,
/// STORAGE 4, EPHEMERAL_STORAGE 5) and a Kubernetes quantity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceEntry {
    #[prost(int32, tag = "1")]
    pub name: i32,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `flyteidl.core.K8sPod`: a pod spec as a `google.protobuf.Struct`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct K8sPod {
    #[prost(message, optional, tag = "2")]
    pub pod_spec: Option<prost_types::Struct>,
}

/// `flyteidl.core.WorkflowTemplate`: id, interface, nodes, output bindings and failure node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTemplate {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "3")]
    pub interface: Option<TypedInterface>,
    #[prost(message, repeated, tag = "4")]
    pub nodes: Vec<Node>,
    /// The workflow's outputs, bound to node outputs.
    #[prost(message, repeated, tag = "5")]
    pub outputs: Vec<Binding>,
    #[prost(message, optional, tag = "6")]
    pub failure_node: Option<Node>,
}

/// `flyteidl.core.Node`: its id, input bindings, explicit upstream nodes and what it runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<NodeMetadata>,
    #[prost(message, repeated, tag = "3")]
    pub inputs: Vec<Binding>,
    #[prost(string, repeated, tag = "4")]
    pub upstream_node_ids: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub output_aliases: Vec<Alias>,
    #[prost(oneof = "node::Target", tags = "6, 7, 8, 9, 10")]
    pub target: Option<node::Target>,
}

/// `flyteidl.core.NodeMetadata`: the node's display name (timeouts, retries and the rest are
/// not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `flyteidl.core.Alias`: an output of a node under another name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Alias {
    #[prost(string, tag = "1")]
    pub var: String,
    #[prost(string, tag = "2")]
    pub alias: String,
}

/// `flyteidl.core.GateNode`: waits for an approval, a signal or a time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GateNode {
    #[prost(oneof = "gate_node::Condition", tags = "1, 2, 3")]
    pub condition: Option<gate_node::Condition>,
}

/// The `condition` oneof of [`GateNode`].
pub mod gate_node {
    /// What a gate waits for (the ids and the duration are not read here).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Condition {
        #[prost(message, tag = "1")]
        Approve(super::ApproveCondition),
        #[prost(message, tag = "2")]
        Signal(super::SignalCondition),
        #[prost(message, tag = "3")]
        Sleep(super::SleepCondition),
    }
}

/// `flyteidl.core.ApproveCondition`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApproveCondition {}

/// `flyteidl.core.SignalCondition`: the type of the value a signal carries, and the output
/// it becomes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignalCondition {
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<LiteralType>,
    #[prost(string, tag = "3")]
    pub output_variable_name: String,
}

/// `flyteidl.core.SleepCondition`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SleepCondition {}

/// The `target` oneof of [`Node`].
pub mod node {
    /// What a node runs: a task, a launch plan or sub-workflow, a branch, a gate (which
    /// references nothing) or an array of one node.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Target {
        #[prost(message, tag = "6")]
        TaskNode(super::TaskNode),
        #[prost(message, tag = "7")]
        WorkflowNode(super::WorkflowNode),
        #[prost(message, tag = "8")]
        BranchNode(Box<super::BranchNode>),
        #[prost(message, tag = "9")]
        GateNode(super::GateNode),
        #[prost(message, tag = "10")]
        ArrayNode(Box<super::ArrayNode>),
    }
}

/// `flyteidl.core.TaskNode`: the task it runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskNode {
    #[prost(oneof = "task_node::Reference", tags = "1")]
    pub reference: Option<task_node::Reference>,
}

/// The `reference` oneof of [`TaskNode`].
pub mod task_node {
    /// The task, by identifier.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Reference {
        #[prost(message, tag = "1")]
        ReferenceId(super::Identifier),
    }
}

/// `flyteidl.core.WorkflowNode`: a launch plan or a sub-workflow it runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowNode {
    #[prost(oneof = "workflow_node::Reference", tags = "1, 2")]
    pub reference: Option<workflow_node::Reference>,
}

/// The `reference` oneof of [`WorkflowNode`].
pub mod workflow_node {
    /// A launch plan or a sub-workflow, by identifier.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Reference {
        #[prost(message, tag = "1")]
        LaunchplanRef(super::Identifier),
        #[prost(message, tag = "2")]
        SubWorkflowRef(super::Identifier),
    }
}

/// `flyteidl.core.BranchNode`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BranchNode {
    #[prost(message, optional, tag = "1")]
    pub if_else: Option<IfElseBlock>,
}

/// `flyteidl.core.IfElseBlock`: the `if`, the `elif`s and the `else`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IfElseBlock {
    #[prost(message, optional, tag = "1")]
    pub case: Option<IfBlock>,
    #[prost(message, repeated, tag = "2")]
    pub other: Vec<IfBlock>,
    #[prost(oneof = "if_else_block::Default", tags = "3, 4")]
    pub default: Option<if_else_block::Default>,
}

/// The `default` oneof of [`IfElseBlock`].
pub mod if_else_block {
    /// The `else` node, or the error the branch fails with when no case holds.
    #[allow(clippy::large_enum_variant)] // read once per spec; boxing would change every user
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Default {
        #[prost(message, tag = "3")]
        ElseNode(super::Node),
        #[prost(message, tag = "4")]
        Error(super::Error),
    }
}

/// `flyteidl.core.Error`: a failure a branch ends in.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    #[prost(string, tag = "1")]
    pub failed_node_id: String,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `flyteidl.core.IfBlock`: a condition and the node it leads to (the condition is read only
/// for being there).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IfBlock {
    #[prost(message, optional, tag = "1")]
    pub condition: Option<BooleanExpression>,
    #[prost(message, optional, tag = "2")]
    pub then_node: Option<Node>,
}

/// `flyteidl.core.BooleanExpression`: a conjunction or a comparison.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BooleanExpression {
    #[prost(oneof = "boolean_expression::Expr", tags = "1, 2")]
    pub expr: Option<boolean_expression::Expr>,
}

/// The `expr` oneof of [`BooleanExpression`].
pub mod boolean_expression {
    /// A conjunction of two expressions or a comparison of two operands.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Expr {
        #[prost(message, tag = "1")]
        Conjunction(Box<super::ConjunctionExpression>),
        #[prost(message, tag = "2")]
        Comparison(super::ComparisonExpression),
    }
}

/// `flyteidl.core.ConjunctionExpression`: AND (0) or OR (1) of two expressions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConjunctionExpression {
    #[prost(int32, tag = "1")]
    pub operator: i32,
    #[prost(message, optional, boxed, tag = "2")]
    pub left_expression: Option<Box<BooleanExpression>>,
    #[prost(message, optional, boxed, tag = "3")]
    pub right_expression: Option<Box<BooleanExpression>>,
}

/// `flyteidl.core.ComparisonExpression`: EQ 0, NEQ 1, GT 2, GTE 3, LT 4, LTE 5 of two operands.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ComparisonExpression {
    #[prost(int32, tag = "1")]
    pub operator: i32,
    #[prost(message, optional, tag = "2")]
    pub left_value: Option<Operand>,
    #[prost(message, optional, tag = "3")]
    pub right_value: Option<Operand>,
}

/// `flyteidl.core.Operand`: a value, or an input of the branch node by name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Operand {
    #[prost(oneof = "operand::Val", tags = "1, 2, 3")]
    pub val: Option<operand::Val>,
}

/// The `val` oneof of [`Operand`].
pub mod operand {
    /// A primitive (what flytekit writes), a variable, or a scalar.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Val {
        #[prost(message, tag = "1")]
        Primitive(super::Primitive),
        #[prost(string, tag = "2")]
        Var(String),
        #[prost(message, tag = "3")]
        Scalar(super::Scalar),
    }
}

/// `flyteidl.core.ArrayNode`: the node it maps, and whether that node keeps its original
/// (not list-wrapped) interface (parallelism, success criteria and the other settings are
/// not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayNode {
    #[prost(message, optional, tag = "1")]
    pub node: Option<Node>,
    /// A `google.protobuf.BoolValue`.
    #[prost(message, optional, tag = "6")]
    pub is_original_sub_node_interface: Option<bool>,
}

/// `flyteidl.core.SecurityContext`: whom an execution runs as.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecurityContext {
    #[prost(message, optional, tag = "1")]
    pub run_as: Option<Identity>,
}

/// `flyteidl.core.Identity`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Identity {
    #[prost(string, tag = "1")]
    pub iam_role: String,
    #[prost(string, tag = "2")]
    pub k8s_service_account: String,
}

/// `flyteidl.core.CompiledTask`: a task as FlyteAdmin compiled it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompiledTask {
    #[prost(message, optional, tag = "1")]
    pub template: Option<TaskTemplate>,
}

/// `flyteidl.core.CompiledWorkflow`: a workflow template as FlyteAdmin compiled it, with
/// the edges between its nodes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompiledWorkflow {
    #[prost(message, optional, tag = "1")]
    pub template: Option<WorkflowTemplate>,
    #[prost(message, optional, tag = "2")]
    pub connections: Option<ConnectionSet>,
}

/// `flyteidl.core.ConnectionSet`: a compiled workflow's adjacency lists, by node id (the
/// start node is `start-node`, the end node `end-node`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionSet {
    #[prost(btree_map = "string, message", tag = "7")]
    pub downstream: BTreeMap<String, IdList>,
    #[prost(btree_map = "string, message", tag = "8")]
    pub upstream: BTreeMap<String, IdList>,
}

/// `flyteidl.core.ConnectionSet.IdList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IdList {
    #[prost(string, repeated, tag = "1")]
    pub ids: Vec<String>,
}

/// `flyteidl.core.CompiledWorkflowClosure`: a workflow with the sub-workflows and tasks it
/// uses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompiledWorkflowClosure {
    #[prost(message, optional, tag = "1")]
    pub primary: Option<CompiledWorkflow>,
    #[prost(message, repeated, tag = "2")]
    pub sub_workflows: Vec<CompiledWorkflow>,
    #[prost(message, repeated, tag = "3")]
    pub tasks: Vec<CompiledTask>,
}

/// `flyteidl.core.TypedInterface`: a task's or workflow's inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypedInterface {
    #[prost(message, optional, tag = "1")]
    pub inputs: Option<VariableMap>,
    #[prost(message, optional, tag = "2")]
    pub outputs: Option<VariableMap>,
}

/// `flyteidl.core.VariableMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VariableMap {
    #[prost(btree_map = "string, message", tag = "1")]
    pub variables: BTreeMap<String, Variable>,
}

/// `flyteidl.core.Variable`: a typed input or output (its artifact fields are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Variable {
    #[prost(message, optional, tag = "1")]
    pub r#type: Option<LiteralType>,
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `flyteidl.core.LiteralType`: the type of a value (its annotation is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LiteralType {
    #[prost(oneof = "literal_type::Type", tags = "1, 2, 3, 4, 5, 7, 8, 10")]
    pub r#type: Option<literal_type::Type>,
    /// For a `STRUCT`, its JSON schema.
    #[prost(message, optional, tag = "6")]
    pub metadata: Option<prost_types::Struct>,
    #[prost(message, optional, tag = "11")]
    pub structure: Option<TypeStructure>,
}

/// The `type` oneof of [`LiteralType`].
pub mod literal_type {
    /// A simple type, or a composite one.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Type {
        /// A `SimpleType`: NONE 0, INTEGER 1, FLOAT 2, STRING 3, BOOLEAN 4, DATETIME 5,
        /// DURATION 6, BINARY 7, ERROR 8, STRUCT 9.
        #[prost(int32, tag = "1")]
        Simple(i32),
        #[prost(message, tag = "2")]
        Schema(super::SchemaType),
        #[prost(message, tag = "3")]
        CollectionType(Box<super::LiteralType>),
        #[prost(message, tag = "4")]
        MapValueType(Box<super::LiteralType>),
        #[prost(message, tag = "5")]
        Blob(super::BlobType),
        #[prost(message, tag = "7")]
        EnumType(super::EnumType),
        #[prost(message, tag = "8")]
        StructuredDatasetType(super::StructuredDatasetType),
        #[prost(message, tag = "10")]
        UnionType(super::UnionType),
    }
}

/// `flyteidl.core.SchemaType`: columns of a (legacy) schema.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SchemaType {
    #[prost(message, repeated, tag = "3")]
    pub columns: Vec<SchemaColumn>,
}

/// `flyteidl.core.SchemaType.SchemaColumn`: a name and a `SchemaColumnType` (INTEGER 0,
/// FLOAT 1, STRING 2, BOOLEAN 3, DATETIME 4, DURATION 5).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SchemaColumn {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub r#type: i32,
}

/// `flyteidl.core.StructuredDatasetType`: columns and storage format.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StructuredDatasetType {
    #[prost(message, repeated, tag = "1")]
    pub columns: Vec<DatasetColumn>,
    #[prost(string, tag = "2")]
    pub format: String,
}

/// `flyteidl.core.StructuredDatasetType.DatasetColumn`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DatasetColumn {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub literal_type: Option<LiteralType>,
}

/// `flyteidl.core.BlobType`: a file or directory of a format.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobType {
    #[prost(string, tag = "1")]
    pub format: String,
    /// SINGLE 0, MULTIPART 1.
    #[prost(int32, tag = "2")]
    pub dimensionality: i32,
}

/// `flyteidl.core.EnumType`: the values a string may take.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnumType {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

/// `flyteidl.core.UnionType`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UnionType {
    #[prost(message, repeated, tag = "1")]
    pub variants: Vec<LiteralType>,
}

/// `flyteidl.core.TypeStructure`: a type's tag and, for a dataclass, its fields' types.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeStructure {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(btree_map = "string, message", tag = "2")]
    pub dataclass_type: BTreeMap<String, LiteralType>,
}

/// `flyteidl.core.Binding`: an input (or workflow output) and where its value comes from.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Binding {
    #[prost(string, tag = "1")]
    pub var: String,
    #[prost(message, optional, tag = "2")]
    pub binding: Option<BindingData>,
}

/// `flyteidl.core.BindingData`: a value, a node's output, or a collection or map of them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BindingData {
    #[prost(oneof = "binding_data::Value", tags = "1, 2, 3, 4, 6")]
    pub value: Option<binding_data::Value>,
}

/// The `value` oneof of [`BindingData`].
pub mod binding_data {
    /// Where a bound value comes from.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        Scalar(super::Scalar),
        #[prost(message, tag = "2")]
        Collection(super::BindingDataCollection),
        #[prost(message, tag = "3")]
        Promise(super::OutputReference),
        #[prost(message, tag = "4")]
        Map(super::BindingDataMap),
        #[prost(message, tag = "6")]
        OffloadedMetadata(super::LiteralOffloadedMetadata),
    }
}

/// `flyteidl.core.BindingDataCollection`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BindingDataCollection {
    #[prost(message, repeated, tag = "1")]
    pub bindings: Vec<BindingData>,
}

/// `flyteidl.core.BindingDataMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BindingDataMap {
    #[prost(btree_map = "string, message", tag = "1")]
    pub bindings: BTreeMap<String, BindingData>,
}

/// `flyteidl.core.OutputReference`: an output of another node (the start node's are the
/// workflow's inputs); `attr_path` reaches inside it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutputReference {
    #[prost(string, tag = "1")]
    pub node_id: String,
    #[prost(string, tag = "2")]
    pub var: String,
    #[prost(message, repeated, tag = "3")]
    pub attr_path: Vec<PromiseAttribute>,
}

/// `flyteidl.core.PromiseAttribute`: a field name or an index.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PromiseAttribute {
    #[prost(oneof = "promise_attribute::Value", tags = "1, 2")]
    pub value: Option<promise_attribute::Value>,
}

/// The `value` oneof of [`PromiseAttribute`].
pub mod promise_attribute {
    /// A field name or an index.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(int32, tag = "2")]
        IntValue(i32),
    }
}

/// `flyteidl.core.Literal`: a value (its hash and metadata are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Literal {
    #[prost(oneof = "literal::Value", tags = "1, 2, 3, 8")]
    pub value: Option<literal::Value>,
}

/// The `value` oneof of [`Literal`].
pub mod literal {
    /// A scalar, a collection, a map, or a value stored elsewhere.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        Scalar(Box<super::Scalar>),
        #[prost(message, tag = "2")]
        Collection(super::LiteralCollection),
        #[prost(message, tag = "3")]
        Map(super::LiteralMap),
        #[prost(message, tag = "8")]
        OffloadedMetadata(super::LiteralOffloadedMetadata),
    }
}

/// `flyteidl.core.LiteralCollection`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LiteralCollection {
    #[prost(message, repeated, tag = "1")]
    pub literals: Vec<Literal>,
}

/// `flyteidl.core.LiteralMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LiteralMap {
    #[prost(btree_map = "string, message", tag = "1")]
    pub literals: BTreeMap<String, Literal>,
}

/// `flyteidl.core.LiteralOffloadedMetadata`: where a large value is, and its type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LiteralOffloadedMetadata {
    #[prost(string, tag = "1")]
    pub uri: String,
    #[prost(message, optional, tag = "3")]
    pub inferred_type: Option<LiteralType>,
}

/// `flyteidl.core.Scalar`: one value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Scalar {
    #[prost(oneof = "scalar::Value", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9")]
    pub value: Option<scalar::Value>,
}

/// The `value` oneof of [`Scalar`].
pub mod scalar {
    /// The kinds of scalar.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        Primitive(super::Primitive),
        #[prost(message, tag = "2")]
        Blob(super::Blob),
        #[prost(message, tag = "3")]
        Binary(super::Binary),
        #[prost(message, tag = "4")]
        Schema(super::Schema),
        #[prost(message, tag = "5")]
        NoneType(super::Void),
        #[prost(message, tag = "6")]
        Error(super::Error),
        #[prost(message, tag = "7")]
        Generic(prost_types::Struct),
        #[prost(message, tag = "8")]
        StructuredDataset(super::StructuredDataset),
        #[prost(message, tag = "9")]
        Union(Box<super::Union>),
    }
}

/// `flyteidl.core.Primitive`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Primitive {
    #[prost(oneof = "primitive::Value", tags = "1, 2, 3, 4, 5, 6")]
    pub value: Option<primitive::Value>,
}

/// The `value` oneof of [`Primitive`].
pub mod primitive {
    /// The primitive values.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(int64, tag = "1")]
        Integer(i64),
        #[prost(double, tag = "2")]
        FloatValue(f64),
        #[prost(string, tag = "3")]
        StringValue(String),
        #[prost(bool, tag = "4")]
        Boolean(bool),
        #[prost(message, tag = "5")]
        Datetime(prost_types::Timestamp),
        #[prost(message, tag = "6")]
        Duration(prost_types::Duration),
    }
}

/// `flyteidl.core.Void`: the none value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Void {}

/// `flyteidl.core.Blob`: a file or directory (its URI is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Blob {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<BlobMetadata>,
}

/// `flyteidl.core.BlobMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobMetadata {
    #[prost(message, optional, tag = "1")]
    pub r#type: Option<BlobType>,
}

/// `flyteidl.core.Binary`: serialized bytes and their format (`msgpack` for a dataclass).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Binary {
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `flyteidl.core.Schema` (its URI is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Schema {
    #[prost(message, optional, tag = "3")]
    pub r#type: Option<SchemaType>,
}

/// `flyteidl.core.StructuredDataset` (its URI is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StructuredDataset {
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<StructuredDatasetMetadata>,
}

/// `flyteidl.core.StructuredDatasetMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StructuredDatasetMetadata {
    #[prost(message, optional, tag = "1")]
    pub structured_dataset_type: Option<StructuredDatasetType>,
}

/// `flyteidl.core.Union`: a value and the variant it is of.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Union {
    #[prost(message, optional, boxed, tag = "1")]
    pub value: Option<Box<Literal>>,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<LiteralType>,
}

/// `flyteidl.core.Parameter`: a launch plan's input, with a default or required (artifact
/// queries are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Parameter {
    #[prost(message, optional, tag = "1")]
    pub var: Option<Variable>,
    #[prost(oneof = "parameter::Behavior", tags = "2, 3, 4, 5")]
    pub behavior: Option<parameter::Behavior>,
}

/// The `behavior` oneof of [`Parameter`].
pub mod parameter {
    /// A default value, or required.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Behavior {
        #[prost(message, tag = "2")]
        Default(super::Literal),
        #[prost(bool, tag = "3")]
        Required(bool),
        #[prost(message, tag = "4")]
        ArtifactQuery(super::Artifact),
        #[prost(message, tag = "5")]
        ArtifactId(super::Artifact),
    }
}

/// `flyteidl.core.ArtifactQuery` or `ArtifactID`: where a parameter's value comes from (not
/// read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Artifact {}

/// `flyteidl.core.ParameterMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ParameterMap {
    #[prost(btree_map = "string, message", tag = "1")]
    pub parameters: BTreeMap<String, Parameter>,
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn kinds_are_numbered_as_resource_types() {
        for (kind, value, proto, noun) in [
            (Kind::Task, 1, "TASK", "task"),
            (Kind::Workflow, 2, "WORKFLOW", "workflow"),
            (Kind::LaunchPlan, 3, "LAUNCH_PLAN", "launch plan"),
        ] {
            assert_eq!((i32::from(kind), Kind::from_resource_type(value)), (value, Some(kind)));
            assert_eq!((kind.proto_name(), kind.to_string().as_str()), (proto, noun));
        }
        // UNSPECIFIED and DATASET name nothing registered.
        assert_eq!((Kind::from_resource_type(0), Kind::from_resource_type(4)), (None, None));
        assert_eq!(Kind::ALL.map(i32::from), [1, 2, 3]);
    }

    #[test]
    fn identifiers_show_and_round_trip() {
        let id = Identifier::new(Kind::LaunchPlan, "flytesnacks", "development", "pkg.lp", "v1");
        assert_eq!(id.to_string(), "launch plan flytesnacks/development/pkg.lp@v1");
        assert_eq!(id.kind(), Some(Kind::LaunchPlan));
        assert_eq!(Identifier::decode(id.encode_to_vec().as_slice()).unwrap(), id);
        let dataset = Identifier { resource_type: 4, ..id.clone() };
        assert_eq!(dataset.to_string(), "resource type 4 flytesnacks/development/pkg.lp@v1");
        assert_eq!(dataset.with_kind(Kind::Workflow).kind(), Some(Kind::Workflow));
        // Unknown fields are skipped, a later occurrence of a field wins (as on the wire).
        let mut bytes = id.encode_to_vec();
        bytes.extend([0xc2, 0x02, 1, b'x']); // field 40
        bytes.extend(Identifier { version: "v2".into(), ..Default::default() }.encode_to_vec());
        assert_eq!(Identifier::decode(bytes.as_slice()).unwrap().version, "v2");
    }
}
