//! The field numbers the lossless wire edits read and write, one module per message, named
//! as in the protocol (Flyte 1.16). Code that edits or assembles wire bytes names fields
//! only through these; the typed messages of [`crate::core`], [`crate::admin`] and
//! [`crate::service`] carry the same numbers, which this module's tests check against them.

/// `flyteidl.core.Identifier`.
pub mod identifier {
    pub const RESOURCE_TYPE: u32 = 1;
    pub const PROJECT: u32 = 2;
    pub const DOMAIN: u32 = 3;
    pub const NAME: u32 = 4;
    pub const VERSION: u32 = 5;
    pub const ORG: u32 = 6;
}

/// `flyteidl.admin.TaskCreateRequest`, `WorkflowCreateRequest`, `LaunchPlanCreateRequest`:
/// the same two fields.
pub mod create_request {
    pub const ID: u32 = 1;
    pub const SPEC: u32 = 2;
}

/// `flyteidl.admin.TaskSpec`.
pub mod task_spec {
    pub const TEMPLATE: u32 = 1;
}

/// `flyteidl.core.TaskTemplate`.
pub mod task_template {
    pub const ID: u32 = 1;
    pub const CONTAINER: u32 = 6;
    pub const K8S_POD: u32 = 17;
}

/// `flyteidl.core.Container`.
pub mod container {
    pub const ARGS: u32 = 3;
}

/// `flyteidl.core.K8sPod`.
pub mod k8s_pod {
    /// A `google.protobuf.Struct`.
    pub const POD_SPEC: u32 = 2;
}

/// `flyteidl.admin.WorkflowSpec`.
pub mod workflow_spec {
    pub const TEMPLATE: u32 = 1;
    pub const SUB_WORKFLOWS: u32 = 2;
}

/// `flyteidl.core.WorkflowTemplate`.
pub mod workflow_template {
    pub const ID: u32 = 1;
    pub const NODES: u32 = 4;
    pub const FAILURE_NODE: u32 = 6;
}

/// `flyteidl.core.Node`: the cases of its `target` oneof that reference entities.
pub mod node {
    pub const TASK_NODE: u32 = 6;
    pub const WORKFLOW_NODE: u32 = 7;
    pub const BRANCH_NODE: u32 = 8;
    pub const ARRAY_NODE: u32 = 10;
}

/// `flyteidl.core.TaskNode`.
pub mod task_node {
    pub const REFERENCE_ID: u32 = 1;
}

/// `flyteidl.core.WorkflowNode`.
pub mod workflow_node {
    pub const LAUNCHPLAN_REF: u32 = 1;
    pub const SUB_WORKFLOW_REF: u32 = 2;
}

/// `flyteidl.core.BranchNode`.
pub mod branch_node {
    pub const IF_ELSE: u32 = 1;
}

/// `flyteidl.core.IfElseBlock`.
pub mod if_else_block {
    pub const CASE: u32 = 1;
    pub const OTHER: u32 = 2;
    pub const ELSE_NODE: u32 = 3;
}

/// `flyteidl.core.IfBlock`.
pub mod if_block {
    pub const THEN_NODE: u32 = 2;
}

/// `flyteidl.core.ArrayNode`.
pub mod array_node {
    pub const NODE: u32 = 1;
}

/// `flyteidl.admin.LaunchPlan`.
pub mod launch_plan {
    pub const ID: u32 = 1;
    pub const SPEC: u32 = 2;
    pub const CLOSURE: u32 = 3;
}

/// `flyteidl.admin.LaunchPlanSpec`: the fields a domain's settings set.
pub mod launch_plan_spec {
    pub const WORKFLOW_ID: u32 = 1;
    pub const LABELS: u32 = 6;
    pub const ANNOTATIONS: u32 = 7;
    pub const AUTH_ROLE: u32 = 9;
    pub const SECURITY_CONTEXT: u32 = 10;
    pub const RAW_OUTPUT_DATA_CONFIG: u32 = 17;
    pub const ENVS: u32 = 21;
}

/// `flyteidl.admin.LaunchPlanClosure`.
pub mod launch_plan_closure {
    /// A `LaunchPlanState`.
    pub const STATE: u32 = 1;
    /// A `ParameterMap`.
    pub const EXPECTED_INPUTS: u32 = 2;
    /// A `VariableMap`.
    pub const EXPECTED_OUTPUTS: u32 = 3;
    pub const CREATED_AT: u32 = 4;
    pub const UPDATED_AT: u32 = 5;
}

/// `flyteidl.admin.AuthRole`.
pub mod auth_role {
    pub const ASSUMABLE_IAM_ROLE: u32 = 1;
    pub const KUBERNETES_SERVICE_ACCOUNT: u32 = 2;
}

/// `flyteidl.core.SecurityContext`.
pub mod security_context {
    pub const RUN_AS: u32 = 1;
}

/// `flyteidl.core.Identity`.
pub mod identity {
    pub const IAM_ROLE: u32 = 1;
    pub const K8S_SERVICE_ACCOUNT: u32 = 2;
}

/// `flyteidl.admin.RawOutputDataConfig`.
pub mod raw_output_data_config {
    pub const OUTPUT_LOCATION_PREFIX: u32 = 1;
}

/// `flyteidl.admin.Labels` and `Annotations` (a `map<string, string>`), and `Envs` (a
/// `repeated KeyValuePair`): all three keep their pairs in field 1.
pub mod labels {
    pub const VALUES: u32 = 1;
}

/// A pair: an entry of a protobuf map and `flyteidl.core.KeyValuePair` alike.
pub mod key_value {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
}

/// `flyteidl.admin.Task` and `Workflow`, as Get answers them.
pub mod entity {
    pub const ID: u32 = 1;
    pub const CLOSURE: u32 = 2;
}

/// `flyteidl.admin.TaskClosure` and `WorkflowClosure`: the compiled form and when it was
/// created.
pub mod entity_closure {
    pub const COMPILED: u32 = 1;
    pub const CREATED_AT: u32 = 2;
}

/// `flyteidl.core.CompiledTask` and `CompiledWorkflow`.
pub mod compiled {
    pub const TEMPLATE: u32 = 1;
    /// `CompiledWorkflow.connections`.
    pub const CONNECTIONS: u32 = 2;
}

/// `flyteidl.core.CompiledWorkflowClosure`.
pub mod compiled_workflow_closure {
    pub const PRIMARY: u32 = 1;
    pub const SUB_WORKFLOWS: u32 = 2;
    pub const TASKS: u32 = 3;
}

/// `flyteidl.admin.TaskList`, `WorkflowList` and `LaunchPlanList`: entities and the next
/// page's token.
pub mod entity_list {
    pub const ENTITIES: u32 = 1;
    pub const TOKEN: u32 = 2;
}

/// `flyteidl.admin.ProjectDomainAttributesUpdateRequest`.
pub mod project_domain_attributes_update_request {
    pub const ATTRIBUTES: u32 = 1;
}

/// `flyteidl.admin.ProjectDomainAttributesGetResponse`.
pub mod project_domain_attributes_get_response {
    pub const ATTRIBUTES: u32 = 1;
}

/// `flyteidl.admin.ProjectDomainAttributes`.
pub mod project_domain_attributes {
    pub const PROJECT: u32 = 1;
    pub const DOMAIN: u32 = 2;
    /// A `MatchingAttributes`, whose oneof case numbers are the `MatchableResource` values
    /// plus one.
    pub const MATCHING_ATTRIBUTES: u32 = 3;
}

/// `google.protobuf.Struct`.
pub mod protobuf_struct {
    /// Map entries: key (string) → `Value`.
    pub const FIELDS: u32 = 1;
}

/// `google.protobuf.Value`: the cases of its `kind` oneof that pod specs use.
pub mod protobuf_value {
    pub const STRING_VALUE: u32 = 3;
    pub const STRUCT_VALUE: u32 = 5;
    pub const LIST_VALUE: u32 = 6;
}

/// `google.protobuf.ListValue`.
pub mod protobuf_list_value {
    pub const VALUES: u32 = 1;
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::{value, ListValue, Struct, Value};

    use crate::admin::*;
    use crate::core::*;

    /// The number of the one field `message` encodes (proto3 leaves unset fields out).
    fn number(message: impl Message) -> u32 {
        let bytes = message.encode_to_vec();
        let (number, _) = prost::encoding::decode_key(&mut bytes.as_slice()).expect("a field");
        number
    }

    fn some<T: Default>() -> Option<T> {
        Some(T::default())
    }

    fn id() -> Identifier {
        Identifier::default()
    }

    fn node(target: node::Target) -> Node {
        Node { target: Some(target), ..Default::default() }
    }

    #[test]
    fn identifier() {
        use super::identifier::*;
        let set = |f: fn(&mut Identifier)| {
            let mut id = id();
            f(&mut id);
            number(id)
        };
        assert_eq!(set(|i| i.resource_type = 1), RESOURCE_TYPE);
        assert_eq!(set(|i| i.project = "p".into()), PROJECT);
        assert_eq!(set(|i| i.domain = "d".into()), DOMAIN);
        assert_eq!(set(|i| i.name = "n".into()), NAME);
        assert_eq!(set(|i| i.version = "v".into()), VERSION);
        assert_eq!(set(|i| i.org = "o".into()), ORG);
    }

    #[test]
    fn create_requests() {
        use super::create_request::*;
        for (id, spec) in [
            (
                number(TaskCreateRequest { id: some(), spec: None }),
                number(TaskCreateRequest { id: None, spec: some() }),
            ),
            (
                number(WorkflowCreateRequest { id: some(), spec: None }),
                number(WorkflowCreateRequest { id: None, spec: some() }),
            ),
            (
                number(LaunchPlanCreateRequest { id: some(), spec: None }),
                number(LaunchPlanCreateRequest { id: None, spec: some() }),
            ),
        ] {
            assert_eq!((id, spec), (ID, SPEC));
        }
    }

    #[test]
    fn tasks() {
        assert_eq!(number(TaskSpec { template: some() }), super::task_spec::TEMPLATE);
        let template = |t: TaskTemplate| number(t);
        assert_eq!(template(TaskTemplate { id: some(), ..Default::default() }), super::task_template::ID);
        let target = |t| template(TaskTemplate { target: Some(t), ..Default::default() });
        assert_eq!(target(task_template::Target::Container(Container::default())), super::task_template::CONTAINER);
        assert_eq!(target(task_template::Target::K8sPod(K8sPod::default())), super::task_template::K8S_POD);
        assert_eq!(number(Container { args: vec!["a".into()], ..Default::default() }), super::container::ARGS);
        assert_eq!(number(K8sPod { pod_spec: some() }), super::k8s_pod::POD_SPEC);
    }

    #[test]
    fn workflows() {
        use super::*;
        assert_eq!(number(WorkflowSpec { template: some(), sub_workflows: vec![] }), workflow_spec::TEMPLATE);
        assert_eq!(
            number(WorkflowSpec { template: None, sub_workflows: vec![Default::default()] }),
            workflow_spec::SUB_WORKFLOWS
        );
        assert_eq!(number(WorkflowTemplate { id: some(), ..Default::default() }), workflow_template::ID);
        assert_eq!(
            number(WorkflowTemplate { nodes: vec![Node::default()], ..Default::default() }),
            workflow_template::NODES
        );
        assert_eq!(
            number(WorkflowTemplate { failure_node: some(), ..Default::default() }),
            workflow_template::FAILURE_NODE
        );
        use crate::core::node::Target;
        assert_eq!(number(node(Target::TaskNode(TaskNode::default()))), node::TASK_NODE);
        assert_eq!(number(node(Target::WorkflowNode(WorkflowNode::default()))), node::WORKFLOW_NODE);
        assert_eq!(number(node(Target::BranchNode(Box::default()))), node::BRANCH_NODE);
        assert_eq!(number(node(Target::ArrayNode(Box::default()))), node::ARRAY_NODE);
        let reference = Some(crate::core::task_node::Reference::ReferenceId(id()));
        assert_eq!(number(TaskNode { reference }), task_node::REFERENCE_ID);
        use crate::core::workflow_node::Reference;
        assert_eq!(
            number(WorkflowNode { reference: Some(Reference::LaunchplanRef(id())) }),
            workflow_node::LAUNCHPLAN_REF
        );
        assert_eq!(
            number(WorkflowNode { reference: Some(Reference::SubWorkflowRef(id())) }),
            workflow_node::SUB_WORKFLOW_REF
        );
        assert_eq!(number(BranchNode { if_else: some() }), branch_node::IF_ELSE);
        assert_eq!(number(IfElseBlock { case: some(), ..Default::default() }), if_else_block::CASE);
        assert_eq!(number(IfElseBlock { other: vec![IfBlock::default()], ..Default::default() }), if_else_block::OTHER);
        let default = Some(crate::core::if_else_block::Default::ElseNode(Node::default()));
        assert_eq!(number(IfElseBlock { default, ..Default::default() }), if_else_block::ELSE_NODE);
        assert_eq!(number(IfBlock { then_node: some(), ..Default::default() }), if_block::THEN_NODE);
        assert_eq!(number(ArrayNode { node: some(), ..Default::default() }), array_node::NODE);
    }

    #[test]
    fn launch_plans() {
        use super::*;
        assert_eq!(number(LaunchPlan { id: some(), spec: None, closure: None }), launch_plan::ID);
        assert_eq!(number(LaunchPlan { id: None, spec: some(), closure: None }), launch_plan::SPEC);
        assert_eq!(number(LaunchPlan { id: None, spec: None, closure: some() }), launch_plan::CLOSURE);
        let spec = |s: LaunchPlanSpec| number(s);
        assert_eq!(spec(LaunchPlanSpec { workflow_id: some(), ..Default::default() }), launch_plan_spec::WORKFLOW_ID);
        assert_eq!(spec(LaunchPlanSpec { labels: some(), ..Default::default() }), launch_plan_spec::LABELS);
        assert_eq!(spec(LaunchPlanSpec { annotations: some(), ..Default::default() }), launch_plan_spec::ANNOTATIONS);
        assert_eq!(spec(LaunchPlanSpec { auth_role: some(), ..Default::default() }), launch_plan_spec::AUTH_ROLE);
        assert_eq!(
            spec(LaunchPlanSpec { security_context: some(), ..Default::default() }),
            launch_plan_spec::SECURITY_CONTEXT
        );
        assert_eq!(
            spec(LaunchPlanSpec { raw_output_data_config: some(), ..Default::default() }),
            launch_plan_spec::RAW_OUTPUT_DATA_CONFIG
        );
        assert_eq!(spec(LaunchPlanSpec { envs: some(), ..Default::default() }), launch_plan_spec::ENVS);
        let closure = |c: LaunchPlanClosure| number(c);
        assert_eq!(closure(LaunchPlanClosure { state: 1, ..Default::default() }), launch_plan_closure::STATE);
        assert_eq!(
            closure(LaunchPlanClosure { expected_inputs: some(), ..Default::default() }),
            launch_plan_closure::EXPECTED_INPUTS
        );
        assert_eq!(
            closure(LaunchPlanClosure { expected_outputs: some(), ..Default::default() }),
            launch_plan_closure::EXPECTED_OUTPUTS
        );
        assert_eq!(
            closure(LaunchPlanClosure { created_at: some(), ..Default::default() }),
            launch_plan_closure::CREATED_AT
        );
        assert_eq!(
            closure(LaunchPlanClosure { updated_at: some(), ..Default::default() }),
            launch_plan_closure::UPDATED_AT
        );
        let role = |r: AuthRole| number(r);
        assert_eq!(
            role(AuthRole { assumable_iam_role: "r".into(), ..Default::default() }),
            auth_role::ASSUMABLE_IAM_ROLE
        );
        assert_eq!(
            role(AuthRole { kubernetes_service_account: "a".into(), ..Default::default() }),
            auth_role::KUBERNETES_SERVICE_ACCOUNT
        );
        assert_eq!(number(SecurityContext { run_as: some() }), security_context::RUN_AS);
        assert_eq!(number(Identity { iam_role: "r".into(), ..Default::default() }), identity::IAM_ROLE);
        assert_eq!(
            number(Identity { k8s_service_account: "a".into(), ..Default::default() }),
            identity::K8S_SERVICE_ACCOUNT
        );
        assert_eq!(
            number(RawOutputDataConfig { output_location_prefix: "s3://b".into() }),
            raw_output_data_config::OUTPUT_LOCATION_PREFIX
        );
        let pairs = [("k".to_string(), "v".to_string())].into_iter().collect();
        assert_eq!(number(Labels { values: pairs }), labels::VALUES);
        let pairs = [("k".to_string(), "v".to_string())].into_iter().collect();
        assert_eq!(number(Annotations { values: pairs }), labels::VALUES);
        assert_eq!(number(Envs { values: vec![KeyValuePair::default()] }), labels::VALUES);
        assert_eq!(number(KeyValuePair { key: "k".into(), ..Default::default() }), key_value::KEY);
        assert_eq!(number(KeyValuePair { value: "v".into(), ..Default::default() }), key_value::VALUE);
        // A map entry is {key = 1, value = 2}, as a KeyValuePair.
        let labels = Labels { values: [("k".to_string(), "v".to_string())].into_iter().collect() }.encode_to_vec();
        let pair = KeyValuePair { key: "k".into(), value: "v".into() }.encode_to_vec();
        assert!(labels.ends_with(&pair));
    }

    #[test]
    fn registered_entities_and_lists() {
        use super::*;
        for (id, closure) in [
            (number(Task { id: some(), closure: None }), number(Task { id: None, closure: some() })),
            (number(Workflow { id: some(), closure: None }), number(Workflow { id: None, closure: some() })),
        ] {
            assert_eq!((id, closure), (entity::ID, entity::CLOSURE));
        }
        assert_eq!(number(TaskClosure { compiled_task: some(), created_at: None }), entity_closure::COMPILED);
        assert_eq!(number(TaskClosure { compiled_task: None, created_at: some() }), entity_closure::CREATED_AT);
        assert_eq!(number(WorkflowClosure { compiled_workflow: some(), created_at: None }), entity_closure::COMPILED);
        assert_eq!(number(WorkflowClosure { compiled_workflow: None, created_at: some() }), entity_closure::CREATED_AT);
        assert_eq!(number(CompiledTask { template: some() }), compiled::TEMPLATE);
        assert_eq!(number(CompiledWorkflow { template: some(), connections: None }), compiled::TEMPLATE);
        assert_eq!(number(CompiledWorkflow { template: None, connections: some() }), compiled::CONNECTIONS);
        let closure = |c: CompiledWorkflowClosure| number(c);
        assert_eq!(
            closure(CompiledWorkflowClosure { primary: some(), ..Default::default() }),
            compiled_workflow_closure::PRIMARY
        );
        assert_eq!(
            closure(CompiledWorkflowClosure { sub_workflows: vec![Default::default()], ..Default::default() }),
            compiled_workflow_closure::SUB_WORKFLOWS
        );
        assert_eq!(
            closure(CompiledWorkflowClosure { tasks: vec![Default::default()], ..Default::default() }),
            compiled_workflow_closure::TASKS
        );
        let token = || "next".to_string();
        assert_eq!(number(TaskList { tasks: vec![Task::default()], token: String::new() }), entity_list::ENTITIES);
        assert_eq!(number(TaskList { tasks: vec![], token: token() }), entity_list::TOKEN);
        assert_eq!(
            number(WorkflowList { workflows: vec![Workflow::default()], token: String::new() }),
            entity_list::ENTITIES
        );
        assert_eq!(number(WorkflowList { workflows: vec![], token: token() }), entity_list::TOKEN);
        assert_eq!(
            number(LaunchPlanList { launch_plans: vec![LaunchPlan::default()], token: String::new() }),
            entity_list::ENTITIES
        );
        assert_eq!(number(LaunchPlanList { launch_plans: vec![], token: token() }), entity_list::TOKEN);
    }

    #[test]
    fn protobuf_struct() {
        use super::*;
        let string = || Value { kind: Some(value::Kind::StringValue("s".into())) };
        let fields = [("k".to_string(), string())].into_iter().collect();
        assert_eq!(number(Struct { fields }), protobuf_struct::FIELDS);
        assert_eq!(number(string()), protobuf_value::STRING_VALUE);
        assert_eq!(
            number(Value { kind: Some(value::Kind::StructValue(Struct::default())) }),
            protobuf_value::STRUCT_VALUE
        );
        assert_eq!(
            number(Value { kind: Some(value::Kind::ListValue(ListValue::default())) }),
            protobuf_value::LIST_VALUE
        );
        assert_eq!(number(ListValue { values: vec![string()] }), protobuf_list_value::VALUES);
    }
}
