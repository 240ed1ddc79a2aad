//! The sandbox's gRPC services: FlyteAdmin's rules over the store. Entity create/get/list
//! and project-domain attributes are served with the pass-through codec (spec bytes are
//! stored and returned exactly as received); everything else through the `flyteidl` crate's
//! generated traits, and what registration does not use answers UNIMPLEMENTED.

// gRPC answers are `tonic::Status`, the error type every tonic service and client uses.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flyte_api::admin;
use flyte_api::core;
use flyte_api::service;
use flyte_api::service::admin_service_server::{AdminService, AdminServiceServer};
use flyte_api::service::data_proxy_service_server::{DataProxyService, DataProxyServiceServer};
use prost::Message;
use tonic::body::BoxBody;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::Body;
use tonic::{Code, Request, Response, Status};

use super::store::{Inserted, Key, Kind, Store, Stored};
use flyte_api::codec::RawCodec;
use flyte_api::wire;

/// What the sandbox answers to GetVersion in `Version.build`, so clients know it is one.
pub const SANDBOX_BUILD: &str = "flyte-deploy-sandbox";

/// The sandbox's state and rules, shared by its services.
pub(crate) struct Sandbox {
    pub store: Arc<Store>,
    /// The domains it accepts.
    pub domains: Vec<String>,
    /// Base URL of the HTTP endpoint for uploads (`http://127.0.0.1:PORT`).
    pub http_base: String,
}

/// The AdminService methods served with the pass-through codec.
const RAW_METHODS: &[&str] = &[
    "CreateTask",
    "GetTask",
    "ListTasks",
    "CreateWorkflow",
    "GetWorkflow",
    "ListWorkflows",
    "CreateLaunchPlan",
    "GetLaunchPlan",
    "ListLaunchPlans",
    "GetActiveLaunchPlan",
    "ListActiveLaunchPlans",
    "UpdateProjectDomainAttributes",
    "GetProjectDomainAttributes",
];

impl Sandbox {
    fn check_project_domain(&self, project: &str, domain: &str) -> Result<(), Status> {
        if !self.domains.iter().any(|d| d == domain) {
            return Err(Status::invalid_argument(format!(
                "failed to validate that project [{project}] and domain [{domain}] are registered, \
                 err: [domain {domain} is not one of {:?}]",
                self.domains
            )));
        }
        if self.store.project(project).map_err(internal)?.is_none() {
            return Err(Status::invalid_argument(format!(
                "failed to validate that project [{project}] and domain [{domain}] are registered, \
                 err: [project {project} is not registered]"
            )));
        }
        Ok(())
    }

    /// One call of a pass-through method: request bytes in, response bytes out.
    pub(crate) fn raw_call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Status> {
        match method {
            "CreateTask" => self.create(Kind::Task, request),
            "CreateWorkflow" => self.create(Kind::Workflow, request),
            "CreateLaunchPlan" => self.create(Kind::LaunchPlan, request),
            "GetTask" => self.get(Kind::Task, request),
            "GetWorkflow" => self.get(Kind::Workflow, request),
            "GetLaunchPlan" => self.get(Kind::LaunchPlan, request),
            "ListTasks" => self.list(Kind::Task, request),
            "ListWorkflows" => self.list(Kind::Workflow, request),
            "ListLaunchPlans" => self.list(Kind::LaunchPlan, request),
            "GetActiveLaunchPlan" => self.get_active_launch_plan(request),
            "ListActiveLaunchPlans" => self.list_active_launch_plans(request),
            "UpdateProjectDomainAttributes" => self.update_attributes(request),
            "GetProjectDomainAttributes" => self.get_attributes(request),
            other => Err(Status::unimplemented(format!("{other} is not served by the sandbox"))),
        }
    }

    fn create(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let id_bytes =
            wire::last_len(request, 1).ok().flatten().ok_or_else(|| Status::invalid_argument("missing id"))?;
        let spec = wire::last_len(request, 2).ok().flatten().ok_or_else(|| Status::invalid_argument("missing spec"))?;
        let id = core::Identifier::decode(id_bytes).map_err(|e| Status::invalid_argument(format!("bad id: {e}")))?;
        let key = key_of(kind, &id)?;
        self.check_project_domain(&key.project, &key.domain)?;
        match kind {
            Kind::Task => self.check_task(&key, spec)?,
            Kind::Workflow => self.check_workflow(&key, spec)?,
            Kind::LaunchPlan => self.check_launch_plan(spec)?,
        }
        match self.store.insert(&key, spec).map_err(internal)? {
            Inserted::New => Ok(Vec::new()),
            Inserted::Existing(stored) if stored == spec => {
                Err(Status::already_exists(format!("{} with identical structure already exists", kind.noun())))
            }
            Inserted::Existing(stored) => Err(Status::invalid_argument(format!(
                "{} {} with different structure already exists. (Please register a new version of the {})\n{}",
                key.name,
                kind.noun(),
                kind.noun(),
                spec_difference(kind, &stored, spec)
            ))),
        }
    }

    fn check_task(&self, key: &Key, spec: &[u8]) -> Result<(), Status> {
        let spec =
            admin::TaskSpec::decode(spec).map_err(|e| Status::invalid_argument(format!("bad task spec: {e}")))?;
        let template = spec.template.ok_or_else(|| Status::invalid_argument("missing task template"))?;
        check_template_id(key, template.id.as_ref())
    }

    fn check_workflow(&self, key: &Key, spec: &[u8]) -> Result<(), Status> {
        let spec = admin::WorkflowSpec::decode(spec)
            .map_err(|e| Status::invalid_argument(format!("bad workflow spec: {e}")))?;
        let template = spec.template.as_ref().ok_or_else(|| Status::invalid_argument("missing workflow template"))?;
        check_template_id(key, template.id.as_ref())?;
        let mut refs = References::default();
        for t in std::iter::once(template).chain(&spec.sub_workflows) {
            refs.collect(t);
        }
        let local: Vec<&core::Identifier> = spec.sub_workflows.iter().filter_map(|t| t.id.as_ref()).collect();
        for (kind, id) in refs.found {
            if kind == Kind::Workflow && local.iter().any(|l| same_id(l, &id)) {
                continue;
            }
            let key = key_of(kind, &id)?;
            if self.store.get(&key).map_err(internal)?.is_none() {
                return Err(Status::not_found(format!(
                    "missing entity of type {} with identifier {}",
                    kind_word(kind),
                    show_id(&id)
                )));
            }
        }
        Ok(())
    }

    fn check_launch_plan(&self, spec: &[u8]) -> Result<(), Status> {
        let spec = admin::LaunchPlanSpec::decode(spec)
            .map_err(|e| Status::invalid_argument(format!("bad launch plan spec: {e}")))?;
        let workflow = spec.workflow_id.ok_or_else(|| Status::invalid_argument("missing workflow_id"))?;
        let key = key_of(Kind::Workflow, &workflow)?;
        if self.store.get(&key).map_err(internal)?.is_none() {
            return Err(Status::not_found(format!(
                "missing entity of type WORKFLOW with identifier {}",
                show_id(&workflow)
            )));
        }
        Ok(())
    }

    fn get(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ObjectGetRequest::decode(request).map_err(bad_request)?;
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let key = key_of(kind, &id)?;
        let stored = self.store.get(&key).map_err(internal)?.ok_or_else(|| not_found(&key))?;
        Ok(self.entity_message(&stored))
    }

    fn list(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ResourceListRequest::decode(request).map_err(bad_request)?;
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let name = Some(id.name.as_str()).filter(|n| !n.is_empty());
        let all = self.store.list(kind, &id.project, &id.domain, name, false).map_err(internal)?;
        self.page(all, request.limit, &request.token)
    }

    fn get_active_launch_plan(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ActiveLaunchPlanRequest::decode(request).map_err(bad_request)?;
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let active =
            self.store.list(Kind::LaunchPlan, &id.project, &id.domain, Some(&id.name), true).map_err(internal)?;
        let stored = active.first().ok_or_else(|| {
            Status::not_found(format!("no active launch plan named {}/{}/{}", id.project, id.domain, id.name))
        })?;
        Ok(self.entity_message(stored))
    }

    fn list_active_launch_plans(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ActiveLaunchPlanListRequest::decode(request).map_err(bad_request)?;
        let all = self.store.list(Kind::LaunchPlan, &request.project, &request.domain, None, true).map_err(internal)?;
        self.page(all, request.limit, &request.token)
    }

    /// A list response (`TaskList`, `WorkflowList`, `LaunchPlanList`: entities in field 1,
    /// next-page token in field 2). As FlyteAdmin, a limit of 0 is refused.
    fn page(&self, all: Vec<Stored>, limit: u32, token: &str) -> Result<Vec<u8>, Status> {
        let (start, end, next) = page_bounds(all.len(), limit, token)?;
        let mut out = Vec::new();
        for stored in &all[start..end] {
            out.extend(wire::len_field(1, &self.entity_message(stored)));
        }
        if let Some(next) = next {
            out.extend(wire::len_field(2, next.as_bytes()));
        }
        Ok(out)
    }

    /// `admin.Task`, `admin.Workflow` or `admin.LaunchPlan` around the stored spec bytes.
    fn entity_message(&self, stored: &Stored) -> Vec<u8> {
        let key = &stored.key;
        let id = identifier(key).encode_to_vec();
        let created = prost_types::Timestamp { seconds: stored.created_at, nanos: 0 }.encode_to_vec();
        let mut out = Vec::new();
        out.extend(wire::len_field(1, &id));
        match key.kind {
            Kind::Task => {
                // Task{closure: TaskClosure{compiled_task: CompiledTask{template}, created_at}}
                let mut compiled = Vec::new();
                compiled.extend(wire::len_field(1, wire::last_len(&stored.spec, 1).ok().flatten().unwrap_or_default()));
                let mut closure = Vec::new();
                closure.extend(wire::len_field(1, &compiled));
                closure.extend(wire::len_field(2, &created));
                out.extend(wire::len_field(2, &closure));
            }
            Kind::Workflow => {
                // Workflow{closure: WorkflowClosure{compiled_workflow: CompiledWorkflowClosure{
                //   primary: CompiledWorkflow{template}, sub_workflows, tasks}, created_at}}
                let mut compiled = Vec::new();
                let mut primary = Vec::new();
                primary.extend(wire::len_field(1, wire::last_len(&stored.spec, 1).ok().flatten().unwrap_or_default()));
                compiled.extend(wire::len_field(1, &primary));
                for sub in wire::all_len(&stored.spec, 2).unwrap_or_default() {
                    let mut sub_compiled = Vec::new();
                    sub_compiled.extend(wire::len_field(1, sub));
                    compiled.extend(wire::len_field(2, &sub_compiled));
                }
                for task in self.referenced_task_templates(&stored.spec) {
                    let mut task_compiled = Vec::new();
                    task_compiled.extend(wire::len_field(1, &task));
                    compiled.extend(wire::len_field(3, &task_compiled));
                }
                let mut closure = Vec::new();
                closure.extend(wire::len_field(1, &compiled));
                closure.extend(wire::len_field(2, &created));
                out.extend(wire::len_field(2, &closure));
            }
            Kind::LaunchPlan => {
                // LaunchPlan{spec, closure: LaunchPlanClosure{state, created_at, updated_at}}
                out.extend(wire::len_field(2, &stored.spec));
                let mut closure = Vec::new();
                if stored.active {
                    closure.extend(wire::varint_field(1, admin::LaunchPlanState::Active as u64));
                }
                closure.extend(wire::len_field(4, &created));
                closure.extend(wire::len_field(5, &created));
                out.extend(wire::len_field(3, &closure));
            }
        }
        out
    }

    /// The stored templates of the tasks a workflow spec references, as FlyteAdmin puts
    /// them in the compiled closure.
    fn referenced_task_templates(&self, spec: &[u8]) -> Vec<Vec<u8>> {
        let Ok(spec) = admin::WorkflowSpec::decode(spec) else { return Vec::new() };
        let mut refs = References::default();
        for t in spec.template.iter().chain(&spec.sub_workflows) {
            refs.collect(t);
        }
        let mut out = Vec::new();
        for (kind, id) in refs.found {
            if kind != Kind::Task {
                continue;
            }
            let Ok(key) = key_of(kind, &id) else { continue };
            if let Ok(Some(task)) = self.store.get(&key) {
                let template = wire::last_len(&task.spec, 1).ok().flatten().unwrap_or_default().to_vec();
                if !out.contains(&template) {
                    out.push(template);
                }
            }
        }
        out
    }

    fn update_attributes(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let attributes =
            wire::last_len(request, 1).ok().flatten().ok_or_else(|| Status::invalid_argument("missing attributes"))?;
        let text = |n| {
            wire::last_len(attributes, n)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let (project, domain) = (text(1), text(2));
        self.check_project_domain(&project, &domain)?;
        let matching = wire::last_len(attributes, 3)
            .ok()
            .flatten()
            .ok_or_else(|| Status::invalid_argument("missing matching_attributes"))?;
        let target = wire::fields(matching)
            .ok()
            .and_then(|f| f.last().map(|f| f.number))
            .ok_or_else(|| Status::invalid_argument("empty matching_attributes"))?;
        // MatchingAttributes' oneof numbers are the MatchableResource values plus one.
        self.store.set_attributes(&project, &domain, target as i32 - 1, attributes).map_err(internal)?;
        Ok(Vec::new())
    }

    fn get_attributes(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ProjectDomainAttributesGetRequest::decode(request).map_err(bad_request)?;
        self.check_project_domain(&request.project, &request.domain)?;
        let stored = self
            .store
            .attributes(&request.project, &request.domain, request.resource_type)
            .map_err(internal)?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "Resource [{{Project:{} Domain:{} ResourceType:{}}}] not found",
                    request.project, request.domain, request.resource_type
                ))
            })?;
        let mut out = Vec::new();
        out.extend(wire::len_field(1, &stored));
        Ok(out)
    }

    fn project_message(&self, project: &super::store::Project) -> admin::Project {
        admin::Project {
            id: project.id.clone(),
            name: project.name.clone(),
            description: project.description.clone(),
            domains: self.domains.iter().map(|d| admin::Domain { id: d.clone(), name: d.clone() }).collect(),
            ..Default::default()
        }
    }

    fn ids(
        &self,
        kind: Kind,
        request: admin::NamedEntityIdentifierListRequest,
    ) -> Result<admin::NamedEntityIdentifierList, Status> {
        let names = self.store.names(kind, &request.project, &request.domain).map_err(internal)?;
        let (start, end, next) = page_bounds(names.len(), request.limit, &request.token)?;
        Ok(admin::NamedEntityIdentifierList {
            entities: names[start..end]
                .iter()
                .map(|name| admin::NamedEntityIdentifier {
                    project: request.project.clone(),
                    domain: request.domain.clone(),
                    name: name.clone(),
                    org: request.org.clone(),
                })
                .collect(),
            token: next.unwrap_or_default(),
        })
    }
}

/// Start, end and next-page token of a page; the token is the offset, as a string.
fn page_bounds(len: usize, limit: u32, token: &str) -> Result<(usize, usize, Option<String>), Status> {
    if limit == 0 {
        return Err(Status::invalid_argument("invalid value for limit: 0 (a list needs a limit > 0)"));
    }
    let start = if token.is_empty() {
        0
    } else {
        token.parse::<usize>().map_err(|_| Status::invalid_argument(format!("invalid pagination token {token:?}")))?
    };
    let start = start.min(len);
    let end = (start + limit as usize).min(len);
    Ok((start, end, (end < len).then(|| end.to_string())))
}

/// The node references of workflow templates: tasks, launch plans and sub-workflows,
/// inside branch, array and failure nodes too.
#[derive(Default)]
struct References {
    found: Vec<(Kind, core::Identifier)>,
}

impl References {
    fn collect(&mut self, template: &core::WorkflowTemplate) {
        for node in template.nodes.iter().chain(template.failure_node.as_ref()) {
            self.node(node);
        }
    }

    fn node(&mut self, node: &core::Node) {
        use core::node::Target;
        match &node.target {
            Some(Target::TaskNode(task)) => {
                if let Some(core::task_node::Reference::ReferenceId(id)) = &task.reference {
                    self.found.push((Kind::Task, id.clone()));
                }
            }
            Some(Target::WorkflowNode(wf)) => match &wf.reference {
                Some(core::workflow_node::Reference::LaunchplanRef(id)) => {
                    self.found.push((Kind::LaunchPlan, id.clone()))
                }
                Some(core::workflow_node::Reference::SubWorkflowRef(id)) => {
                    self.found.push((Kind::Workflow, id.clone()))
                }
                None => {}
            },
            Some(Target::BranchNode(branch)) => {
                if let Some(block) = &branch.if_else {
                    let cases = block.case.iter().map(|c| c.as_ref()).chain(&block.other);
                    for case in cases {
                        if let Some(then) = &case.then_node {
                            self.node(then);
                        }
                    }
                    if let Some(core::if_else_block::Default::ElseNode(node)) = &block.default {
                        self.node(node);
                    }
                }
            }
            Some(Target::ArrayNode(array)) => {
                if let Some(inner) = &array.node {
                    self.node(inner);
                }
            }
            Some(Target::GateNode(_)) | None => {}
        }
    }
}

/// What differs between two specs, for the different-structure refusal: the lines of
/// their decoded forms that differ, or where their bytes part when only fields the
/// bindings do not know differ.
fn spec_difference(kind: Kind, stored: &[u8], new: &[u8]) -> String {
    let show = |bytes: &[u8]| -> Option<String> {
        match kind {
            Kind::Task => admin::TaskSpec::decode(bytes).ok().map(|s| format!("{s:#?}")),
            Kind::Workflow => admin::WorkflowSpec::decode(bytes).ok().map(|s| format!("{s:#?}")),
            Kind::LaunchPlan => admin::LaunchPlanSpec::decode(bytes).ok().map(|s| format!("{s:#?}")),
        }
    };
    if let (Some(a), Some(b)) = (show(stored), show(new)) {
        if a != b {
            return line_difference(&a, &b);
        }
    }
    let at = stored.iter().zip(new).position(|(a, b)| a != b).unwrap_or(stored.len().min(new.len()));
    format!(
        "the specs differ in fields outside this sandbox's schema: byte {at} of {} (registered) vs {} (new)",
        stored.len(),
        new.len()
    )
}

fn line_difference(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    let mut out = String::from("--- registered\n+++ new\n");
    for line in old[prefix..old.len() - suffix].iter().take(20) {
        out.push_str(&format!("-{}\n", line.trim_start()));
    }
    for line in new[prefix..new.len() - suffix].iter().take(20) {
        out.push_str(&format!("+{}\n", line.trim_start()));
    }
    out
}

fn key_of(kind: Kind, id: &core::Identifier) -> Result<Key, Status> {
    for (field, value) in
        [("project", &id.project), ("domain", &id.domain), ("name", &id.name), ("version", &id.version)]
    {
        if value.is_empty() {
            return Err(Status::invalid_argument(format!("missing {field} in identifier {}", show_id(id))));
        }
    }
    Ok(Key {
        kind,
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
        version: id.version.clone(),
    })
}

fn check_template_id(key: &Key, template: Option<&core::Identifier>) -> Result<(), Status> {
    let template = template.ok_or_else(|| Status::invalid_argument("missing template id"))?;
    let same = template.project == key.project
        && template.domain == key.domain
        && template.name == key.name
        && template.version == key.version;
    if !same {
        return Err(Status::invalid_argument(format!(
            "the template id {} does not match the request id {}/{}/{}/{}",
            show_id(template),
            key.project,
            key.domain,
            key.name,
            key.version
        )));
    }
    Ok(())
}

fn same_id(a: &core::Identifier, b: &core::Identifier) -> bool {
    (&a.project, &a.domain, &a.name, &a.version) == (&b.project, &b.domain, &b.name, &b.version)
}

fn identifier(key: &Key) -> core::Identifier {
    core::Identifier {
        resource_type: key.kind as i32,
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.name.clone(),
        version: key.version.clone(),
        org: String::new(),
    }
}

fn show_id(id: &core::Identifier) -> String {
    format!("{}/{}/{}/{}", id.project, id.domain, id.name, id.version)
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => "TASK",
        Kind::Workflow => "WORKFLOW",
        Kind::LaunchPlan => "LAUNCH_PLAN",
    }
}

fn not_found(key: &Key) -> Status {
    Status::not_found(format!(
        "missing entity of type {} with identifier {}/{}/{}/{}",
        kind_word(key.kind),
        key.project,
        key.domain,
        key.name,
        key.version
    ))
}

fn internal(err: anyhow::Error) -> Status {
    Status::internal(format!("sandbox store: {err:#}"))
}

fn bad_request(err: prost::DecodeError) -> Status {
    Status::invalid_argument(format!("malformed request: {err}"))
}

fn unimplemented(method: &str) -> Status {
    Status::new(Code::Unimplemented, format!("{method} is not served by the flyte-deploy sandbox"))
}

/// The typed AdminService: implements what registration uses besides the pass-through
/// methods; the rest answers UNIMPLEMENTED.
macro_rules! admin_service {
    ({ $($implemented:tt)* } unimplemented { $($name:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl AdminService for Sandbox {
            $($implemented)*
            $(
                async fn $name(&self, _request: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

admin_service!({
    async fn get_version(&self, _request: Request<admin::GetVersionRequest>) -> Result<Response<admin::GetVersionResponse>, Status> {
        Ok(Response::new(admin::GetVersionResponse {
            control_plane_version: Some(admin::Version {
                build: SANDBOX_BUILD.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                build_time: String::new(),
            }),
        }))
    }

    async fn list_task_ids(
        &self,
        request: Request<admin::NamedEntityIdentifierListRequest>,
    ) -> Result<Response<admin::NamedEntityIdentifierList>, Status> {
        self.ids(Kind::Task, request.into_inner()).map(Response::new)
    }

    async fn list_workflow_ids(
        &self,
        request: Request<admin::NamedEntityIdentifierListRequest>,
    ) -> Result<Response<admin::NamedEntityIdentifierList>, Status> {
        self.ids(Kind::Workflow, request.into_inner()).map(Response::new)
    }

    async fn list_launch_plan_ids(
        &self,
        request: Request<admin::NamedEntityIdentifierListRequest>,
    ) -> Result<Response<admin::NamedEntityIdentifierList>, Status> {
        self.ids(Kind::LaunchPlan, request.into_inner()).map(Response::new)
    }

    async fn update_launch_plan(
        &self,
        request: Request<admin::LaunchPlanUpdateRequest>,
    ) -> Result<Response<admin::LaunchPlanUpdateResponse>, Status> {
        let request = request.into_inner();
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let key = key_of(Kind::LaunchPlan, &id)?;
        let active = match admin::LaunchPlanState::try_from(request.state) {
            Ok(admin::LaunchPlanState::Active) => true,
            Ok(admin::LaunchPlanState::Inactive) => false,
            Err(_) => return Err(Status::invalid_argument(format!("unknown launch plan state {}", request.state))),
        };
        if !self.store.set_launch_plan_active(&key, active).map_err(internal)? {
            return Err(not_found(&key));
        }
        Ok(Response::new(admin::LaunchPlanUpdateResponse {}))
    }

    async fn register_project(
        &self,
        request: Request<admin::ProjectRegisterRequest>,
    ) -> Result<Response<admin::ProjectRegisterResponse>, Status> {
        let project = request.into_inner().project.ok_or_else(|| Status::invalid_argument("missing project"))?;
        if project.id.is_empty() {
            return Err(Status::invalid_argument("missing project id"));
        }
        let stored = super::store::Project {
            name: if project.name.is_empty() { project.id.clone() } else { project.name },
            id: project.id,
            description: project.description,
        };
        if !self.store.register_project(&stored).map_err(internal)? {
            return Err(Status::already_exists(format!("project with id {} already exists", stored.id)));
        }
        Ok(Response::new(admin::ProjectRegisterResponse {}))
    }

    async fn get_project(&self, request: Request<admin::ProjectGetRequest>) -> Result<Response<admin::Project>, Status> {
        let id = request.into_inner().id;
        let project = self.store.project(&id).map_err(internal)?.ok_or_else(|| Status::not_found(format!("project {id} not found")))?;
        Ok(Response::new(self.project_message(&project)))
    }

    async fn list_projects(&self, _request: Request<admin::ProjectListRequest>) -> Result<Response<admin::Projects>, Status> {
        let projects = self.store.projects().map_err(internal)?;
        Ok(Response::new(admin::Projects {
            projects: projects.iter().map(|p| self.project_message(p)).collect(),
            token: String::new(),
        }))
    }
} unimplemented {
    create_task(admin::TaskCreateRequest) -> admin::TaskCreateResponse;
    get_task(admin::ObjectGetRequest) -> admin::Task;
    list_tasks(admin::ResourceListRequest) -> admin::TaskList;
    create_workflow(admin::WorkflowCreateRequest) -> admin::WorkflowCreateResponse;
    get_workflow(admin::ObjectGetRequest) -> admin::Workflow;
    list_workflows(admin::ResourceListRequest) -> admin::WorkflowList;
    create_launch_plan(admin::LaunchPlanCreateRequest) -> admin::LaunchPlanCreateResponse;
    get_launch_plan(admin::ObjectGetRequest) -> admin::LaunchPlan;
    get_active_launch_plan(admin::ActiveLaunchPlanRequest) -> admin::LaunchPlan;
    list_active_launch_plans(admin::ActiveLaunchPlanListRequest) -> admin::LaunchPlanList;
    list_launch_plans(admin::ResourceListRequest) -> admin::LaunchPlanList;
    create_execution(admin::ExecutionCreateRequest) -> admin::ExecutionCreateResponse;
    relaunch_execution(admin::ExecutionRelaunchRequest) -> admin::ExecutionCreateResponse;
    recover_execution(admin::ExecutionRecoverRequest) -> admin::ExecutionCreateResponse;
    get_execution(admin::WorkflowExecutionGetRequest) -> admin::Execution;
    update_execution(admin::ExecutionUpdateRequest) -> admin::ExecutionUpdateResponse;
    get_execution_data(admin::WorkflowExecutionGetDataRequest) -> admin::WorkflowExecutionGetDataResponse;
    list_executions(admin::ResourceListRequest) -> admin::ExecutionList;
    terminate_execution(admin::ExecutionTerminateRequest) -> admin::ExecutionTerminateResponse;
    get_node_execution(admin::NodeExecutionGetRequest) -> admin::NodeExecution;
    get_dynamic_node_workflow(admin::GetDynamicNodeWorkflowRequest) -> admin::DynamicNodeWorkflowResponse;
    list_node_executions(admin::NodeExecutionListRequest) -> admin::NodeExecutionList;
    list_node_executions_for_task(admin::NodeExecutionForTaskListRequest) -> admin::NodeExecutionList;
    get_node_execution_data(admin::NodeExecutionGetDataRequest) -> admin::NodeExecutionGetDataResponse;
    update_project(admin::Project) -> admin::ProjectUpdateResponse;
    create_workflow_event(admin::WorkflowExecutionEventRequest) -> admin::WorkflowExecutionEventResponse;
    create_node_event(admin::NodeExecutionEventRequest) -> admin::NodeExecutionEventResponse;
    create_task_event(admin::TaskExecutionEventRequest) -> admin::TaskExecutionEventResponse;
    get_task_execution(admin::TaskExecutionGetRequest) -> admin::TaskExecution;
    list_task_executions(admin::TaskExecutionListRequest) -> admin::TaskExecutionList;
    get_task_execution_data(admin::TaskExecutionGetDataRequest) -> admin::TaskExecutionGetDataResponse;
    update_project_domain_attributes(admin::ProjectDomainAttributesUpdateRequest) -> admin::ProjectDomainAttributesUpdateResponse;
    get_project_domain_attributes(admin::ProjectDomainAttributesGetRequest) -> admin::ProjectDomainAttributesGetResponse;
    delete_project_domain_attributes(admin::ProjectDomainAttributesDeleteRequest) -> admin::ProjectDomainAttributesDeleteResponse;
    update_project_attributes(admin::ProjectAttributesUpdateRequest) -> admin::ProjectAttributesUpdateResponse;
    get_project_attributes(admin::ProjectAttributesGetRequest) -> admin::ProjectAttributesGetResponse;
    delete_project_attributes(admin::ProjectAttributesDeleteRequest) -> admin::ProjectAttributesDeleteResponse;
    update_workflow_attributes(admin::WorkflowAttributesUpdateRequest) -> admin::WorkflowAttributesUpdateResponse;
    get_workflow_attributes(admin::WorkflowAttributesGetRequest) -> admin::WorkflowAttributesGetResponse;
    delete_workflow_attributes(admin::WorkflowAttributesDeleteRequest) -> admin::WorkflowAttributesDeleteResponse;
    list_matchable_attributes(admin::ListMatchableAttributesRequest) -> admin::ListMatchableAttributesResponse;
    list_named_entities(admin::NamedEntityListRequest) -> admin::NamedEntityList;
    get_named_entity(admin::NamedEntityGetRequest) -> admin::NamedEntity;
    update_named_entity(admin::NamedEntityUpdateRequest) -> admin::NamedEntityUpdateResponse;
    get_description_entity(admin::ObjectGetRequest) -> admin::DescriptionEntity;
    list_description_entities(admin::DescriptionEntityListRequest) -> admin::DescriptionEntityList;
    get_execution_metrics(admin::WorkflowExecutionGetMetricsRequest) -> admin::WorkflowExecutionGetMetricsResponse;
});

#[tonic::async_trait]
impl DataProxyService for Sandbox {
    async fn create_upload_location(
        &self,
        request: Request<service::CreateUploadLocationRequest>,
    ) -> Result<Response<service::CreateUploadLocationResponse>, Status> {
        let request = request.into_inner();
        self.check_project_domain(&request.project, &request.domain)?;
        if request.content_md5.len() != 16 {
            return Err(Status::invalid_argument("content_md5 is required: the 16-byte MD5 of the bytes to upload"));
        }
        check_path_part("filename", &request.filename)?;
        let md5 = hex::encode(&request.content_md5);
        let root = if request.filename_root.is_empty() { md5.clone() } else { request.filename_root.clone() };
        check_path_part("filename_root", &root)?;
        let ttl = request.expires_in.map_or(3600, |d| d.seconds.clamp(1, 7 * 24 * 3600));
        let expires = now() + ttl;
        let path = super::http::upload_path(&request.project, &request.domain, &root, &request.filename);
        let signature = super::http::signature(self.store.secret(), &path, &md5, expires);
        use base64::Engine as _;
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&request.content_md5);
        Ok(Response::new(service::CreateUploadLocationResponse {
            signed_url: format!("{}{path}?md5={md5}&expires={expires}&signature={signature}", self.http_base),
            native_url: native_url(&request.project, &request.domain, &root, &request.filename),
            expires_at: Some(prost_types::Timestamp { seconds: expires, nanos: 0 }),
            headers: [("Content-MD5".to_string(), md5_b64)].into_iter().collect(),
        }))
    }

    async fn create_download_location(
        &self,
        _request: Request<service::CreateDownloadLocationRequest>,
    ) -> Result<Response<service::CreateDownloadLocationResponse>, Status> {
        Err(unimplemented("create_download_location"))
    }

    async fn create_download_link(
        &self,
        _request: Request<service::CreateDownloadLinkRequest>,
    ) -> Result<Response<service::CreateDownloadLinkResponse>, Status> {
        Err(unimplemented("create_download_link"))
    }

    async fn get_data(
        &self,
        _request: Request<service::GetDataRequest>,
    ) -> Result<Response<service::GetDataResponse>, Status> {
        Err(unimplemented("get_data"))
    }
}

/// The stable name of an uploaded archive, independent of the sandbox's address (it goes
/// into task specs, so it must not change when the sandbox restarts on another port).
pub(crate) fn native_url(project: &str, domain: &str, root: &str, filename: &str) -> String {
    format!("sandbox://uploads/{project}/{domain}/{root}/{filename}")
}

fn check_path_part(what: &str, value: &str) -> Result<(), Status> {
    let ok = !value.is_empty()
        && value != "."
        && value != ".."
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!("{what} {value:?} must be non-empty and use only A-Z a-z 0-9 . _ -")))
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// AdminService as served: the pass-through methods by path, the rest by the generated
/// server.
#[derive(Clone)]
pub(crate) struct AdminRoutes {
    sandbox: Arc<Sandbox>,
    typed: AdminServiceServer<Sandbox>,
}

impl AdminRoutes {
    pub(crate) fn new(sandbox: Arc<Sandbox>) -> AdminRoutes {
        AdminRoutes { typed: AdminServiceServer::from_arc(sandbox.clone()), sandbox }
    }
}

impl NamedService for AdminRoutes {
    const NAME: &'static str = "flyteidl.service.AdminService";
}

impl Service<http::Request<Body>> for AdminRoutes {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().strip_prefix("/flyteidl.service.AdminService/").unwrap_or_default();
        if let Some(method) = RAW_METHODS.iter().copied().find(|m| *m == method) {
            let handler = RawMethod { sandbox: self.sandbox.clone(), method };
            Box::pin(async move { Ok(tonic::server::Grpc::new(RawCodec).unary(handler, req).await) })
        } else {
            let mut typed = self.typed.clone();
            Box::pin(async move { typed.call(req).await })
        }
    }
}

struct RawMethod {
    sandbox: Arc<Sandbox>,
    method: &'static str,
}

impl tonic::server::UnaryService<Vec<u8>> for RawMethod {
    type Response = Vec<u8>;
    type Future = BoxFuture<Response<Vec<u8>>, Status>;

    fn call(&mut self, request: Request<Vec<u8>>) -> Self::Future {
        let sandbox = self.sandbox.clone();
        let method = self.method;
        Box::pin(async move {
            let body = request.into_inner();
            let answer = tokio::task::spawn_blocking(move || sandbox.raw_call(method, &body))
                .await
                .map_err(|e| Status::internal(format!("sandbox worker: {e}")))?;
            answer.map(Response::new)
        })
    }
}

/// The DataProxyService as served.
pub(crate) fn data_proxy(sandbox: Arc<Sandbox>) -> DataProxyServiceServer<Sandbox> {
    DataProxyServiceServer::from_arc(sandbox)
}

/// A service whose every call waits `delay` first (the benchmark's stand-in for network
/// and database latency).
#[derive(Clone)]
pub(crate) struct Delayed<S> {
    pub inner: S,
    pub delay: Duration,
}

impl<S: NamedService> NamedService for Delayed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Delayed<S>
where
    S: Service<http::Request<Body>, Response = http::Response<BoxBody>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        let delay = self.delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            inner.call(req).await
        })
    }
}
