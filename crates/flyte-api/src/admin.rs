//! `flyteidl.admin`: the specs pyflyte writes and FlyteAdmin registers, and the requests and
//! answers of the AdminService calls the tool and the sandbox make, with the fields they read
//! or set (Flyte 1.16 numbering).
//!
//! Specs decode for reading only: fields not declared here are skipped, so a spec is never
//! re-encoded from these types (the wire edits of [`crate::fields`] keep every byte).

use std::collections::BTreeMap;

use crate::core::{
    CompiledTask, CompiledWorkflowClosure, Identifier, KeyValuePair, LiteralMap, ParameterMap, SecurityContext,
    TaskTemplate, WorkflowTemplate,
};

/// `flyteidl.admin.TaskSpec`: what `<index>_<name>_1.pb` holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskSpec {
    #[prost(message, optional, tag = "1")]
    pub template: Option<TaskTemplate>,
}

/// `flyteidl.admin.WorkflowSpec`: what `<index>_<name>_2.pb` holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowSpec {
    #[prost(message, optional, tag = "1")]
    pub template: Option<WorkflowTemplate>,
    /// The sub-workflows the template embeds.
    #[prost(message, repeated, tag = "2")]
    pub sub_workflows: Vec<WorkflowTemplate>,
}

/// `flyteidl.admin.LaunchPlan`: what `<index>_<name>_3.pb` holds (id and spec), and what
/// GetLaunchPlan answers (with the closure).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlan {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<LaunchPlanSpec>,
    #[prost(message, optional, tag = "3")]
    pub closure: Option<LaunchPlanClosure>,
}

/// `flyteidl.admin.LaunchPlanSpec`: the workflow it launches and the settings a domain sets.
/// pyflyte writes more (schedule, inputs, cluster assignment, concurrency policy, …), which
/// the wire edits keep and this type skips.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanSpec {
    #[prost(message, optional, tag = "1")]
    pub workflow_id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub entity_metadata: Option<LaunchPlanMetadata>,
    #[prost(message, optional, tag = "3")]
    pub default_inputs: Option<ParameterMap>,
    #[prost(message, optional, tag = "4")]
    pub fixed_inputs: Option<LiteralMap>,
    #[prost(message, optional, tag = "6")]
    pub labels: Option<Labels>,
    #[prost(message, optional, tag = "7")]
    pub annotations: Option<Annotations>,
    /// Deprecated in the protocol in favour of `security_context`, and still read by
    /// FlyteAdmin: the tool sets both.
    #[prost(message, optional, tag = "9")]
    pub auth_role: Option<AuthRole>,
    #[prost(message, optional, tag = "10")]
    pub security_context: Option<SecurityContext>,
    #[prost(message, optional, tag = "17")]
    pub raw_output_data_config: Option<RawOutputDataConfig>,
    #[prost(message, optional, tag = "21")]
    pub envs: Option<Envs>,
}

/// `flyteidl.admin.LaunchPlanMetadata`: the schedule (notifications and launch conditions
/// are not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanMetadata {
    #[prost(message, optional, tag = "1")]
    pub schedule: Option<Schedule>,
}

/// `flyteidl.admin.Schedule`: a cron expression or a fixed rate, and the input that receives
/// the kickoff time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Schedule {
    #[prost(oneof = "schedule::Expression", tags = "1, 2, 4")]
    pub expression: Option<schedule::Expression>,
    #[prost(string, tag = "3")]
    pub kickoff_time_input_arg: String,
}

/// The `ScheduleExpression` oneof of [`Schedule`].
pub mod schedule {
    /// How often a schedule runs.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Expression {
        /// Deprecated in the protocol in favour of `cron_schedule`.
        #[prost(string, tag = "1")]
        CronExpression(String),
        #[prost(message, tag = "2")]
        Rate(super::FixedRate),
        #[prost(message, tag = "4")]
        CronSchedule(super::CronSchedule),
    }
}

/// `flyteidl.admin.FixedRate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FixedRate {
    #[prost(uint32, tag = "1")]
    pub value: u32,
    /// MINUTE 0, HOUR 1, DAY 2.
    #[prost(int32, tag = "2")]
    pub unit: i32,
}

/// `flyteidl.admin.CronSchedule`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CronSchedule {
    #[prost(string, tag = "1")]
    pub schedule: String,
    #[prost(string, tag = "2")]
    pub offset: String,
}

/// `flyteidl.admin.LaunchPlanClosure`: its state and times (the interface is not read here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanClosure {
    #[prost(enumeration = "LaunchPlanState", tag = "1")]
    pub state: i32,
    /// The workflow's inputs less the fixed ones, each with its default or required.
    #[prost(message, optional, tag = "2")]
    pub expected_inputs: Option<ParameterMap>,
    /// The workflow's outputs.
    #[prost(message, optional, tag = "3")]
    pub expected_outputs: Option<crate::core::VariableMap>,
    #[prost(message, optional, tag = "4")]
    pub created_at: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub updated_at: Option<prost_types::Timestamp>,
}

/// `flyteidl.admin.LaunchPlanState`. Only an ACTIVE launch plan's schedule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LaunchPlanState {
    Inactive = 0,
    Active = 1,
}

/// `flyteidl.admin.Task`: what GetTask answers; its template is in the closure.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Task {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub closure: Option<TaskClosure>,
}

/// `flyteidl.admin.TaskClosure`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskClosure {
    #[prost(message, optional, tag = "1")]
    pub compiled_task: Option<CompiledTask>,
    #[prost(message, optional, tag = "2")]
    pub created_at: Option<prost_types::Timestamp>,
}

/// `flyteidl.admin.Workflow`: what GetWorkflow answers; its templates are in the closure.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Workflow {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub closure: Option<WorkflowClosure>,
}

/// `flyteidl.admin.WorkflowClosure`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowClosure {
    #[prost(message, optional, tag = "1")]
    pub compiled_workflow: Option<CompiledWorkflowClosure>,
    #[prost(message, optional, tag = "2")]
    pub created_at: Option<prost_types::Timestamp>,
}

/// `flyteidl.admin.TaskList`: one page of ListTasks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskList {
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<Task>,
    /// The next page's token; empty on the last page.
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `flyteidl.admin.WorkflowList`: one page of ListWorkflows.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowList {
    #[prost(message, repeated, tag = "1")]
    pub workflows: Vec<Workflow>,
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `flyteidl.admin.LaunchPlanList`: one page of ListLaunchPlans or ListActiveLaunchPlans.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanList {
    #[prost(message, repeated, tag = "1")]
    pub launch_plans: Vec<LaunchPlan>,
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `flyteidl.admin.Labels`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Labels {
    #[prost(btree_map = "string, string", tag = "1")]
    pub values: BTreeMap<String, String>,
}

/// `flyteidl.admin.Annotations`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Annotations {
    #[prost(btree_map = "string, string", tag = "1")]
    pub values: BTreeMap<String, String>,
}

/// `flyteidl.admin.Envs`: environment variables of executions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envs {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValuePair>,
}

/// `flyteidl.admin.AuthRole`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRole {
    #[prost(string, tag = "1")]
    pub assumable_iam_role: String,
    #[prost(string, tag = "2")]
    pub kubernetes_service_account: String,
}

/// `flyteidl.admin.RawOutputDataConfig`: where executions write their data.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawOutputDataConfig {
    #[prost(string, tag = "1")]
    pub output_location_prefix: String,
}

/// `flyteidl.admin.TaskCreateRequest` (sent as bytes: id and hydrated spec bytes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskCreateRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<TaskSpec>,
}

/// `flyteidl.admin.WorkflowCreateRequest` (sent as bytes, as [`TaskCreateRequest`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowCreateRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<WorkflowSpec>,
}

/// `flyteidl.admin.LaunchPlanCreateRequest` (sent as bytes, as [`TaskCreateRequest`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanCreateRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<LaunchPlanSpec>,
}

/// `flyteidl.admin.ObjectGetRequest`: GetTask, GetWorkflow, GetLaunchPlan.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ObjectGetRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
}

/// `flyteidl.admin.NamedEntityIdentifier`: an entity name, all versions.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NamedEntityIdentifier {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub org: String,
}

/// `flyteidl.admin.ResourceListRequest`: ListTasks, ListWorkflows, ListLaunchPlans (filters
/// and sort order are not sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceListRequest {
    /// An empty name lists every name of the project and domain.
    #[prost(message, optional, tag = "1")]
    pub id: Option<NamedEntityIdentifier>,
    /// Page size; FlyteAdmin refuses 0.
    #[prost(uint32, tag = "2")]
    pub limit: u32,
    /// The previous page's token; empty for the first page.
    #[prost(string, tag = "3")]
    pub token: String,
}

/// `flyteidl.admin.NamedEntityIdentifierListRequest`: ListTaskIds, ListWorkflowIds,
/// ListLaunchPlanIds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedEntityIdentifierListRequest {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(uint32, tag = "3")]
    pub limit: u32,
    #[prost(string, tag = "4")]
    pub token: String,
    #[prost(string, tag = "7")]
    pub org: String,
}

/// `flyteidl.admin.NamedEntityIdentifierList`: one page of names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedEntityIdentifierList {
    #[prost(message, repeated, tag = "1")]
    pub entities: Vec<NamedEntityIdentifier>,
    /// The next page's token; empty on the last page.
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `flyteidl.admin.LaunchPlanUpdateRequest`: activates or deactivates one version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanUpdateRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Identifier>,
    #[prost(enumeration = "LaunchPlanState", tag = "2")]
    pub state: i32,
}

/// `flyteidl.admin.LaunchPlanUpdateResponse` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaunchPlanUpdateResponse {}

/// `flyteidl.admin.ActiveLaunchPlanRequest`: the active version of a name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActiveLaunchPlanRequest {
    #[prost(message, optional, tag = "1")]
    pub id: Option<NamedEntityIdentifier>,
}

/// `flyteidl.admin.ActiveLaunchPlanListRequest`: the active launch plans of a project and
/// domain.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActiveLaunchPlanListRequest {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(uint32, tag = "3")]
    pub limit: u32,
    #[prost(string, tag = "4")]
    pub token: String,
}

/// `flyteidl.admin.Project`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Project {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "3")]
    pub domains: Vec<Domain>,
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `flyteidl.admin.Projects`: ListProjects' answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Projects {
    #[prost(message, repeated, tag = "1")]
    pub projects: Vec<Project>,
    #[prost(string, tag = "2")]
    pub token: String,
}

/// `flyteidl.admin.Domain`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Domain {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub name: String,
}

/// `flyteidl.admin.ProjectRegisterRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProjectRegisterRequest {
    #[prost(message, optional, tag = "1")]
    pub project: Option<Project>,
}

/// `flyteidl.admin.ProjectRegisterResponse` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProjectRegisterResponse {}

/// `flyteidl.admin.ProjectGetRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProjectGetRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `flyteidl.admin.ProjectDomainAttributesGetRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProjectDomainAttributesGetRequest {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    /// A `flyteidl.admin.MatchableResource` value (`WORKFLOW_EXECUTION_CONFIG` is 6).
    #[prost(int32, tag = "3")]
    pub resource_type: i32,
}

/// `flyteidl.admin.GetVersionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetVersionResponse {
    #[prost(message, optional, tag = "1")]
    pub control_plane_version: Option<Version>,
}

/// `flyteidl.admin.Version`: FlyteAdmin's build (the sandbox names itself here).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Version {
    #[prost(string, tag = "1")]
    pub build: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub build_time: String,
}
