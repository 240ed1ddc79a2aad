//! The sandbox's gRPC services: FlyteAdmin's rules over the store. Every call is routed by
//! its method path to a handler over bytes: entity create/get/list and project-domain
//! attributes keep the spec bytes exactly as received; the rest decode their requests and
//! encode their answers with `flyte-api`'s messages; any other method answers UNIMPLEMENTED.

// gRPC answers are `tonic::Status`, the error type every tonic service and client uses.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flyte_api::core::{self, Identifier};
use flyte_api::fields;
use flyte_api::query::{self, Filter, Op};
use flyte_api::server::Handler;
use flyte_api::{admin, canonical, method, prost, prost_types, service, wire, Kind, Message};
use tonic::{Code, Status};

use super::store::{Inserted, Key, Store, Stored};

/// What the sandbox answers to GetVersion in `Version.build`, so clients know it is one.
pub const SANDBOX_BUILD: &str = "flyte-deploy-sandbox";

/// The sandbox's state and rules, shared by its services.
pub(crate) struct Sandbox {
    pub store: Arc<Store>,
    /// The domains it accepts.
    pub domains: Vec<String>,
    /// Base URL of the HTTP endpoint for uploads (`http://127.0.0.1:PORT`).
    pub http_base: String,
    /// The sign-in required, when started with one (AuthMetadataService answers from it).
    pub guard: Option<Arc<super::token::Guard>>,
}

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

    /// One call: the method's path and request bytes in, the answer's bytes out.
    pub(crate) fn answer(&self, path: &str, request: &[u8]) -> Result<Vec<u8>, Status> {
        match path {
            method::CREATE_TASK => self.create(Kind::Task, request),
            method::CREATE_WORKFLOW => self.create(Kind::Workflow, request),
            method::CREATE_LAUNCH_PLAN => self.create(Kind::LaunchPlan, request),
            method::GET_TASK => self.get(Kind::Task, request),
            method::GET_WORKFLOW => self.get(Kind::Workflow, request),
            method::GET_LAUNCH_PLAN => self.get(Kind::LaunchPlan, request),
            method::LIST_TASKS => self.list(Kind::Task, request),
            method::LIST_WORKFLOWS => self.list(Kind::Workflow, request),
            method::LIST_LAUNCH_PLANS => self.list(Kind::LaunchPlan, request),
            method::LIST_TASK_IDS => self.ids(Kind::Task, request),
            method::LIST_WORKFLOW_IDS => self.ids(Kind::Workflow, request),
            method::LIST_LAUNCH_PLAN_IDS => self.ids(Kind::LaunchPlan, request),
            method::GET_ACTIVE_LAUNCH_PLAN => self.get_active_launch_plan(request),
            method::LIST_ACTIVE_LAUNCH_PLANS => self.list_active_launch_plans(request),
            method::UPDATE_LAUNCH_PLAN => self.update_launch_plan(request),
            method::UPDATE_PROJECT_DOMAIN_ATTRIBUTES => self.update_attributes(request),
            method::GET_PROJECT_DOMAIN_ATTRIBUTES => self.get_attributes(request),
            method::REGISTER_PROJECT => self.register_project(request),
            method::GET_PROJECT => self.get_project(request),
            method::LIST_PROJECTS => self.list_projects(request),
            method::GET_VERSION => Ok(version()),
            method::CREATE_UPLOAD_LOCATION => self.create_upload_location(request),
            // FlyteAdmin without sign-in configured serves no auth metadata either.
            method::GET_OAUTH2_METADATA if self.guard.is_some() => {
                Ok(self.guard.as_ref().map(|g| g.metadata.clone()).unwrap_or_default())
            }
            method::GET_PUBLIC_CLIENT_CONFIG if self.guard.is_some() => {
                Ok(self.guard.as_ref().map(|g| g.public_client.clone()).unwrap_or_default())
            }
            other => Err(unimplemented(method::name(other))),
        }
    }

    fn create(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let id_bytes = wire::last_len(request, fields::create_request::ID)
            .ok()
            .flatten()
            .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let spec = wire::last_len(request, fields::create_request::SPEC)
            .ok()
            .flatten()
            .ok_or_else(|| Status::invalid_argument("missing spec"))?;
        let id = Identifier::decode(id_bytes).map_err(|e| Status::invalid_argument(format!("bad id: {e}")))?;
        super::validate::identifier(kind, &id)?;
        let key = key_of(kind, &id)?;
        self.check_project_domain(&key.project, &key.domain)?;
        match kind {
            Kind::Task => self.check_task(&key, spec)?,
            Kind::Workflow => self.check_workflow(&key, spec)?,
            Kind::LaunchPlan => self.check_launch_plan(spec)?,
        }
        match self.store.insert(&key, spec).map_err(internal)? {
            Inserted::New => Ok(Vec::new()),
            // FlyteAdmin compares a digest of a canonical form: field and map-entry order
            // do not count (flyteadmin's pbhash of the compiled entity).
            Inserted::Existing(stored) if canonical::identical(canonical::Spec::of(kind), &stored, spec) => {
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

    fn check_task(&self, key: &Key, spec_bytes: &[u8]) -> Result<(), Status> {
        let spec =
            admin::TaskSpec::decode(spec_bytes).map_err(|e| Status::invalid_argument(format!("bad task spec: {e}")))?;
        let template = spec.template.ok_or_else(|| Status::invalid_argument("missing spec"))?;
        check_template_id(key, template.id.as_ref())?;
        super::validate::task(&identifier(key), spec_bytes)
    }

    fn check_workflow(&self, key: &Key, spec: &[u8]) -> Result<(), Status> {
        if let Some(template) = admin::WorkflowSpec::decode(spec).ok().and_then(|s| s.template) {
            check_template_id(key, template.id.as_ref())?;
        }
        self.compile(key, spec).map(|_| ())
    }

    /// What FlyteAdmin keeps in a launch plan's closure: its expected inputs (the workflow's
    /// inputs less the fixed ones: a default input as given, any other required) and its
    /// workflow's outputs. `None` when the workflow cannot be read.
    fn launch_plan_interface(&self, spec: &[u8]) -> Option<(core::ParameterMap, core::VariableMap)> {
        let spec = admin::LaunchPlanSpec::decode(spec).ok()?;
        let workflow = self.store.get(&key_of(Kind::Workflow, spec.workflow_id.as_ref()?).ok()?).ok()??;
        let template = admin::WorkflowSpec::decode(workflow.spec.as_slice()).ok()?.template?;
        let interface = template.interface.unwrap_or_default();
        let fixed = spec.fixed_inputs.map(|m| m.literals).unwrap_or_default();
        let defaults = spec.default_inputs.map(|m| m.parameters).unwrap_or_default();
        let mut parameters = std::collections::BTreeMap::new();
        for (name, variable) in interface.inputs.map(|m| m.variables).unwrap_or_default() {
            let parameter = match defaults.get(&name) {
                Some(given) => given.clone(),
                None if fixed.contains_key(&name) => continue,
                None => {
                    core::Parameter { var: Some(variable), behavior: Some(core::parameter::Behavior::Required(true)) }
                }
            };
            parameters.insert(name, parameter);
        }
        let outputs = interface.outputs.unwrap_or_default();
        Some((core::ParameterMap { parameters }, outputs))
    }

    /// The workflow's compile (its edges), reading what it uses from the store.
    fn compile(&self, key: &Key, spec: &[u8]) -> Result<super::compile::Connections, Status> {
        super::compile::workflow(&identifier(key), spec, |kind, id| {
            Ok(self.store.get(&key_of(kind, id)?).map_err(internal)?.map(|stored| stored.spec))
        })
    }

    fn check_launch_plan(&self, spec: &[u8]) -> Result<(), Status> {
        let spec = admin::LaunchPlanSpec::decode(spec)
            .map_err(|e| Status::invalid_argument(format!("bad launch plan spec: {e}")))?;
        let workflow = spec.workflow_id.as_ref().ok_or_else(|| Status::invalid_argument("missing workflow_id"))?;
        super::validate::identifier(Kind::Workflow, workflow)?;
        let key = key_of(Kind::Workflow, workflow)?;
        let Some(stored) = self.store.get(&key).map_err(internal)? else {
            return Err(Status::not_found(format!(
                "missing entity of type WORKFLOW with identifier {}",
                show_id(workflow)
            )));
        };
        super::validate::launch_plan(&spec, &stored.spec)
    }

    fn get(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ObjectGetRequest::decode(request).map_err(bad_request)?;
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let key = key_of(kind, &id)?;
        let stored = self.store.get(&key).map_err(internal)?.ok_or_else(|| not_found(&key))?;
        Ok(self.entity_message(&stored))
    }

    fn list(&self, kind: Kind, raw: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ResourceListRequest::decode(raw).map_err(bad_request)?;
        let id = request.id.ok_or_else(|| Status::invalid_argument("missing id"))?;
        let name = Some(id.name.as_str()).filter(|n| !n.is_empty());
        let (filters, sort) = query::resource_list(raw).map_err(Status::invalid_argument)?;
        let mut all = self.store.list(kind, &id.project, &id.domain, name, false).map_err(internal)?;
        let mut kept = Vec::with_capacity(all.len());
        for stored in all.drain(..) {
            if passes(kind, &stored, &filters)? {
                kept.push(stored);
            }
        }
        sort_listed(&mut kept, sort.as_ref())?;
        self.page(kept, request.limit, &request.token)
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

    /// A list response (`TaskList`, `WorkflowList`, `LaunchPlanList`: entities and the
    /// next page's token). As FlyteAdmin, a limit of 0 is refused.
    fn page(&self, all: Vec<Stored>, limit: u32, token: &str) -> Result<Vec<u8>, Status> {
        let (start, end, next) = page_bounds(all.len(), limit, token)?;
        let mut out = Vec::new();
        for stored in &all[start..end] {
            out.extend(wire::len_field(fields::entity_list::ENTITIES, &self.entity_message(stored)));
        }
        if let Some(next) = next {
            out.extend(wire::len_field(fields::entity_list::TOKEN, next.as_bytes()));
        }
        Ok(out)
    }

    /// `admin.Task`, `admin.Workflow` or `admin.LaunchPlan` around the stored spec bytes.
    fn entity_message(&self, stored: &Stored) -> Vec<u8> {
        use fields::{compiled, compiled_workflow_closure as closure, entity, entity_closure, launch_plan};
        let key = &stored.key;
        let created = timestamp(stored.created_at).encode_to_vec();
        // The template of a stored TaskSpec or WorkflowSpec.
        let template = wire::last_len(&stored.spec, fields::task_spec::TEMPLATE).ok().flatten().unwrap_or_default();
        let mut out = wire::len_field(entity::ID, &identifier(key).encode_to_vec());
        match key.kind {
            Kind::Task => {
                // Task{closure: TaskClosure{compiled_task: CompiledTask{template}, created_at}}
                let mut task_closure =
                    wire::len_field(entity_closure::COMPILED, &wire::len_field(compiled::TEMPLATE, template));
                task_closure.extend(wire::len_field(entity_closure::CREATED_AT, &created));
                out.extend(wire::len_field(entity::CLOSURE, &task_closure));
            }
            Kind::Workflow => {
                // Workflow{closure: WorkflowClosure{compiled_workflow: CompiledWorkflowClosure{
                //   primary: CompiledWorkflow{template}, sub_workflows, tasks}, created_at}}
                // With each template's edges, as FlyteAdmin's compiler found them (compiled
                // again here: the spec, and what it uses, are in the store).
                let connections = self.compile(key, &stored.spec).unwrap_or_default();
                let compiled_template = |template: &[u8], id: Option<String>| {
                    let mut out = wire::len_field(compiled::TEMPLATE, template);
                    if let Some(set) = id.and_then(|id| connections.get(&id)) {
                        out.extend(wire::len_field(compiled::CONNECTIONS, &set.encode_to_vec()));
                    }
                    out
                };
                let primary_id = super::compile::identifier_text(&identifier(key), true);
                let mut compiled_closure =
                    wire::len_field(closure::PRIMARY, &compiled_template(template, Some(primary_id)));
                for sub in wire::all_len(&stored.spec, fields::workflow_spec::SUB_WORKFLOWS).unwrap_or_default() {
                    let id = core::WorkflowTemplate::decode(sub)
                        .ok()
                        .and_then(|t| t.id)
                        .map(|id| super::compile::identifier_text(&id, true));
                    compiled_closure.extend(wire::len_field(closure::SUB_WORKFLOWS, &compiled_template(sub, id)));
                }
                for task in self.referenced_task_templates(&stored.spec) {
                    compiled_closure
                        .extend(wire::len_field(closure::TASKS, &wire::len_field(compiled::TEMPLATE, &task)));
                }
                let mut workflow_closure = wire::len_field(entity_closure::COMPILED, &compiled_closure);
                workflow_closure.extend(wire::len_field(entity_closure::CREATED_AT, &created));
                out.extend(wire::len_field(entity::CLOSURE, &workflow_closure));
            }
            Kind::LaunchPlan => {
                // LaunchPlan{spec, closure: LaunchPlanClosure{state, created_at, updated_at}}
                out.extend(wire::len_field(launch_plan::SPEC, &stored.spec));
                let mut plan_closure = Vec::new();
                if stored.active {
                    let active = admin::LaunchPlanState::Active as u64;
                    plan_closure.extend(wire::varint_field(fields::launch_plan_closure::STATE, active));
                }
                if let Some((inputs, outputs)) = self.launch_plan_interface(&stored.spec) {
                    use fields::launch_plan_closure::{EXPECTED_INPUTS, EXPECTED_OUTPUTS};
                    plan_closure.extend(wire::len_field(EXPECTED_INPUTS, &inputs.encode_to_vec()));
                    plan_closure.extend(wire::len_field(EXPECTED_OUTPUTS, &outputs.encode_to_vec()));
                }
                plan_closure.extend(wire::len_field(fields::launch_plan_closure::CREATED_AT, &created));
                plan_closure.extend(wire::len_field(fields::launch_plan_closure::UPDATED_AT, &created));
                out.extend(wire::len_field(launch_plan::CLOSURE, &plan_closure));
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
                let template =
                    wire::last_len(&task.spec, fields::task_spec::TEMPLATE).ok().flatten().unwrap_or_default().to_vec();
                if !out.contains(&template) {
                    out.push(template);
                }
            }
        }
        out
    }

    fn update_attributes(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        use fields::project_domain_attributes as pda;
        let attributes = wire::last_len(request, fields::project_domain_attributes_update_request::ATTRIBUTES)
            .ok()
            .flatten()
            .ok_or_else(|| Status::invalid_argument("missing attributes"))?;
        let text = |n| {
            wire::last_len(attributes, n)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let (project, domain) = (text(pda::PROJECT), text(pda::DOMAIN));
        self.check_project_domain(&project, &domain)?;
        let matching = wire::last_len(attributes, pda::MATCHING_ATTRIBUTES)
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
        Ok(wire::len_field(fields::project_domain_attributes_get_response::ATTRIBUTES, &stored))
    }

    fn project_message(&self, project: &super::store::Project) -> admin::Project {
        admin::Project {
            id: project.id.clone(),
            name: project.name.clone(),
            description: project.description.clone(),
            domains: self.domains.iter().map(|d| admin::Domain { id: d.clone(), name: d.clone() }).collect(),
        }
    }

    /// ListTaskIds, ListWorkflowIds, ListLaunchPlanIds: one page of names.
    fn ids(&self, kind: Kind, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::NamedEntityIdentifierListRequest::decode(request).map_err(bad_request)?;
        let names = self.store.names(kind, &request.project, &request.domain).map_err(internal)?;
        let (start, end, next) = page_bounds(names.len(), request.limit, &request.token)?;
        let page = admin::NamedEntityIdentifierList {
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
        };
        Ok(page.encode_to_vec())
    }

    fn update_launch_plan(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::LaunchPlanUpdateRequest::decode(request).map_err(bad_request)?;
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
        Ok(admin::LaunchPlanUpdateResponse {}.encode_to_vec())
    }

    fn register_project(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = admin::ProjectRegisterRequest::decode(request).map_err(bad_request)?;
        let project = request.project.ok_or_else(|| Status::invalid_argument("missing project"))?;
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
        Ok(admin::ProjectRegisterResponse {}.encode_to_vec())
    }

    fn get_project(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let id = admin::ProjectGetRequest::decode(request).map_err(bad_request)?.id;
        let project = self
            .store
            .project(&id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("project {id} not found")))?;
        Ok(self.project_message(&project).encode_to_vec())
    }

    /// ListProjects as FlyteAdmin answers it: filtered (`identifier`, `name`, `description`,
    /// `state`; every project here is active, state 0), sorted (by default by identifier,
    /// ascending), one page of `limit` (0: all) from `token`, with the next page's token
    /// when the page is full.
    fn list_projects(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let (limit, token, filters, sort) = query::project_list(request).map_err(Status::invalid_argument)?;
        let mut projects = self.store.projects().map_err(internal)?;
        let field = |p: &super::store::Project, name: &str| -> Result<String, Status> {
            match name {
                "identifier" | "id" => Ok(p.id.clone()),
                "name" => Ok(p.name.clone()),
                "description" => Ok(p.description.clone()),
                "state" => Ok("0".into()),
                other => Err(Status::invalid_argument(format!("unknown field {other} for filtering projects"))),
            }
        };
        let mut kept = Vec::new();
        for project in projects.drain(..) {
            let mut keep = true;
            for filter in &filters {
                let value = field(&project, &filter.field)?;
                let first = filter.values.first().map(String::as_str).unwrap_or_default();
                keep &= match filter.op {
                    Op::Eq => value == first,
                    Op::Ne => value != first,
                    Op::Gt => value.as_str() > first,
                    Op::Gte => value.as_str() >= first,
                    Op::Lt => value.as_str() < first,
                    Op::Lte => value.as_str() <= first,
                    Op::Contains => value.contains(first),
                    Op::ValueIn => filter.values.contains(&value),
                };
            }
            if keep {
                kept.push(project);
            }
        }
        let (key, ascending) = match &sort {
            Some(sort) if !sort.key.is_empty() => (sort.key.as_str(), sort.ascending),
            _ => ("identifier", true),
        };
        if !matches!(key, "identifier" | "id" | "name" | "description") {
            return Err(Status::invalid_argument(format!("invalid sort key {key}")));
        }
        let mut sort_error = None;
        kept.sort_by(|a, b| match (field(a, key), field(b, key)) {
            (Ok(x), Ok(y)) if ascending => x.cmp(&y),
            (Ok(x), Ok(y)) => y.cmp(&x),
            (Err(e), _) | (_, Err(e)) => {
                sort_error.get_or_insert(e);
                std::cmp::Ordering::Equal
            }
        });
        if let Some(e) = sort_error {
            return Err(e);
        }
        let offset = if token.is_empty() {
            0
        } else {
            token
                .parse::<usize>()
                .map_err(|_| Status::invalid_argument(format!("invalid pagination token {token} for ListProjects")))?
        };
        let page: Vec<_> =
            kept.iter().skip(offset).take(if limit == 0 { usize::MAX } else { limit as usize }).collect();
        let token =
            if limit > 0 && page.len() == limit as usize { (offset + page.len()).to_string() } else { String::new() };
        let answer = admin::Projects { projects: page.into_iter().map(|p| self.project_message(p)).collect(), token };
        Ok(answer.encode_to_vec())
    }

    /// DataProxyService.CreateUploadLocation: a signed URL of the HTTP endpoint, good for
    /// the bytes with this MD5 only.
    fn create_upload_location(&self, request: &[u8]) -> Result<Vec<u8>, Status> {
        let request = service::CreateUploadLocationRequest::decode(request).map_err(bad_request)?;
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
        // As FlyteAdmin's data proxy: a location that holds other bytes is not handed out again
        // (uploads are immutable; the same bytes may be uploaded again).
        let stored = self.store.upload_path(&request.project, &request.domain, &root, &request.filename);
        if let Ok(bytes) = std::fs::read(&stored) {
            use md5::Digest as _;
            if md5::Md5::digest(&bytes).as_slice() != request.content_md5.as_slice() {
                return Err(Status::already_exists(format!(
                    "file already exists at location [{}], specify a matching hash if you wish to rewrite",
                    native_url(&request.project, &request.domain, &root, &request.filename)
                )));
            }
        }
        let path = super::http::upload_path(&request.project, &request.domain, &root, &request.filename);
        let signature = super::http::signature(self.store.secret(), &path, &md5, expires);
        use base64::Engine as _;
        let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&request.content_md5);
        let answer = service::CreateUploadLocationResponse {
            signed_url: format!("{}{path}?md5={md5}&expires={expires}&signature={signature}", self.http_base),
            native_url: native_url(&request.project, &request.domain, &root, &request.filename),
            expires_at: Some(prost_types::Timestamp { seconds: expires, nanos: 0 }),
            headers: [("Content-MD5".to_string(), md5_b64)].into_iter().collect(),
        };
        Ok(answer.encode_to_vec())
    }
}

/// GetVersion's answer: the sandbox names itself in `build`.
fn version() -> Vec<u8> {
    let version = admin::Version {
        build: SANDBOX_BUILD.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        build_time: String::new(),
    };
    admin::GetVersionResponse { control_plane_version: Some(version) }.encode_to_vec()
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
    found: Vec<(Kind, Identifier)>,
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
                    let cases = block.case.iter().chain(&block.other);
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
    let lines = canonical::differences(canonical::Spec::of(kind), stored, new, 40);
    format!("--- registered\n+++ new (by field number path)\n{}\n", lines.join("\n"))
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

fn key_of(kind: Kind, id: &Identifier) -> Result<Key, Status> {
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

fn check_template_id(key: &Key, template: Option<&Identifier>) -> Result<(), Status> {
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

fn identifier(key: &Key) -> Identifier {
    Identifier::new(key.kind, &key.project, &key.domain, &key.name, &key.version)
}

fn show_id(id: &Identifier) -> String {
    format!("{}/{}/{}/{}", id.project, id.domain, id.name, id.version)
}

fn not_found(key: &Key) -> Status {
    Status::not_found(format!(
        "missing entity of type {} with identifier {}/{}/{}/{}",
        key.kind.proto_name(),
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

/// A time in nanoseconds since the epoch as a protobuf Timestamp.
fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: nanos.div_euclid(1_000_000_000), nanos: nanos.rem_euclid(1_000_000_000) as i32 }
}

/// A listed entity's value of a filter or sort field, as FlyteAdmin names them; `None`
/// for a field it does not filter this kind on.
enum Value<'a> {
    Text(&'a str),
    Time(i64),
    Number(i64),
}

fn field_value<'a>(kind: Kind, stored: &'a Stored, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "project" => Value::Text(&stored.key.project),
        "domain" => Value::Text(&stored.key.domain),
        "name" => Value::Text(&stored.key.name),
        "version" => Value::Text(&stored.key.version),
        "created_at" => Value::Time(stored.created_at),
        "state" if kind == Kind::LaunchPlan => Value::Number(i64::from(stored.active)),
        _ => return None,
    })
}

/// Whether a listed entity passes every filter (they are joined by AND, as in FlyteAdmin).
fn passes(kind: Kind, stored: &Stored, filters: &[Filter]) -> Result<bool, Status> {
    use std::cmp::Ordering;
    for filter in filters {
        let value = field_value(kind, stored, &filter.field).ok_or_else(|| {
            Status::invalid_argument(format!("invalid filter field {} for {}", filter.field, kind.noun()))
        })?;
        let compare = |wanted: &str| -> Result<Ordering, Status> {
            match &value {
                Value::Text(text) => Ok((*text).cmp(wanted)),
                Value::Time(nanos) => {
                    let at = humantime::parse_rfc3339_weak(wanted).map_err(|e| {
                        Status::invalid_argument(format!("invalid timestamp {wanted} for created_at: {e}"))
                    })?;
                    let at = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
                    Ok(i128::from(*nanos).cmp(&at))
                }
                Value::Number(n) => {
                    let wanted: i64 = wanted.parse().map_err(|_| {
                        Status::invalid_argument(format!("invalid value {wanted} for {}", filter.field))
                    })?;
                    Ok(n.cmp(&wanted))
                }
            }
        };
        let first = filter.values.first().map(String::as_str).unwrap_or_default();
        let ok = match filter.op {
            Op::Eq => compare(first)?.is_eq(),
            Op::Ne => compare(first)?.is_ne(),
            Op::Gt => compare(first)?.is_gt(),
            Op::Gte => compare(first)?.is_ge(),
            Op::Lt => compare(first)?.is_lt(),
            Op::Lte => compare(first)?.is_le(),
            Op::Contains => match &value {
                Value::Text(text) => text.contains(first),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "contains applies to text fields, not {}",
                        filter.field
                    )))
                }
            },
            Op::ValueIn => {
                let mut any = false;
                for wanted in &filter.values {
                    any |= compare(wanted)?.is_eq();
                }
                any
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Orders a list by `sort` (FlyteAdmin's default: newest first); ties by name and version.
fn sort_listed(list: &mut [Stored], sort: Option<&query::Sort>) -> Result<(), Status> {
    let (key, ascending) = match sort {
        Some(sort) if !sort.key.is_empty() => (sort.key.as_str(), sort.ascending),
        _ => ("created_at", false),
    };
    if !matches!(key, "created_at" | "name" | "version" | "project" | "domain") {
        return Err(Status::invalid_argument(format!("invalid sort key {key}")));
    }
    list.sort_by(|a, b| {
        let order = match key {
            "created_at" => a.created_at.cmp(&b.created_at),
            "name" => a.key.name.cmp(&b.key.name),
            "version" => a.key.version.cmp(&b.key.version),
            "project" => a.key.project.cmp(&b.key.project),
            _ => a.key.domain.cmp(&b.key.domain),
        };
        let order = if ascending { order } else { order.reverse() };
        order.then_with(|| (&a.key.name, &a.key.version).cmp(&(&b.key.name, &b.key.version)))
    });
    Ok(())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Handler for Sandbox {
    /// Answers on a blocking thread: the store is SQLite behind a mutex.
    async fn call(self: Arc<Self>, method: String, request: Vec<u8>) -> Result<Vec<u8>, Status> {
        tokio::task::spawn_blocking(move || self.answer(&method, &request))
            .await
            .map_err(|e| Status::internal(format!("sandbox worker: {e}")))?
    }
}
