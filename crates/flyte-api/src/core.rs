//! `flyteidl.core`: the identifier and entity kind every call names, and the task and workflow
//! templates, with the fields this tool reads (Flyte 1.16 numbering).
//!
//! Decoding skips fields not declared here, so a decoded template is for reading only: specs
//! are edited on the wire (see [`crate::fields`]), never re-encoded from these types.

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
}

/// `flyteidl.core.K8sPod`: a pod spec as a `google.protobuf.Struct`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct K8sPod {
    #[prost(message, optional, tag = "2")]
    pub pod_spec: Option<prost_types::Struct>,
}

/// `flyteidl.core.WorkflowTemplate`: id, nodes and failure node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTemplate {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, repeated, tag = "4")]
    pub nodes: Vec<Node>,
    #[prost(message, optional, tag = "6")]
    pub failure_node: Option<Node>,
}

/// `flyteidl.core.Node`: its id and what it runs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(oneof = "node::Target", tags = "6, 7, 8, 10")]
    pub target: Option<node::Target>,
}

/// The `target` oneof of [`Node`].
pub mod node {
    /// The kinds of node that reference other entities (a gate node, the oneof's fifth case,
    /// references none and is not read here).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Target {
        #[prost(message, tag = "6")]
        TaskNode(super::TaskNode),
        #[prost(message, tag = "7")]
        WorkflowNode(super::WorkflowNode),
        #[prost(message, tag = "8")]
        BranchNode(Box<super::BranchNode>),
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
    #[prost(oneof = "if_else_block::Default", tags = "3")]
    pub default: Option<if_else_block::Default>,
}

/// The `default` oneof of [`IfElseBlock`].
pub mod if_else_block {
    /// The `else` node (an error, the oneof's other case, references nothing and is not
    /// read here).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Default {
        #[prost(message, tag = "3")]
        ElseNode(super::Node),
    }
}

/// `flyteidl.core.IfBlock`: the node a condition leads to (the condition is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IfBlock {
    #[prost(message, optional, tag = "2")]
    pub then_node: Option<Node>,
}

/// `flyteidl.core.ArrayNode`: the node it maps (parallelism, success criteria and the other
/// settings are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayNode {
    #[prost(message, optional, tag = "1")]
    pub node: Option<Node>,
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

/// `flyteidl.core.CompiledWorkflow`: a workflow template as FlyteAdmin compiled it (its
/// connections are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompiledWorkflow {
    #[prost(message, optional, tag = "1")]
    pub template: Option<WorkflowTemplate>,
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
