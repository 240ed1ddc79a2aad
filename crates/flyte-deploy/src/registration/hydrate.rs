//! Lossless hydration of the specs pyflyte writes: sets project, domain and version on every
//! identifier FlyteAdmin resolves, substitutes the code archive URL and destination dir in
//! task args, and applies a domain's launch-plan settings — by editing the wire bytes of the
//! touched fields only (`flyte_api::wire`, with the numbers of `flyte_api::fields`), so
//! fields the bindings do not declare reach FlyteAdmin intact. It does no I/O and never
//! re-encodes a spec through prost.
//!
//! # API
//! - [`hydrate`]`(kind, file_bytes, &target) -> Hydrated`: `file_bytes` is one `.pb` file of
//!   a `pyflyte package` archive (see `specs.rs`): an `admin.TaskSpec` (kind Task), an
//!   `admin.WorkflowSpec` (Workflow) or an `admin.LaunchPlan` (LaunchPlan). [`Hydrated`] holds
//!   the entity's id (decoded, and as wire bytes), the hydrated spec's wire bytes
//!   (`TaskSpec` / `WorkflowSpec` / `LaunchPlanSpec`) and the entities it references.
//! - [`create_request`]`(&hydrated)`: the wire bytes of `TaskCreateRequest` /
//!   `WorkflowCreateRequest` / `LaunchPlanCreateRequest` (id = 1, spec = 2), to send through a
//!   pass-through codec.
//! - [`hydrate_package`]`(&specs::Package, &target) -> Vec<Hydrated>`: all of a package's
//!   specs, in its order, an error naming the file.
//!
//! # What is set
//! Project and domain where empty or `{{ registration.project }}` / `{{ registration.domain }}`,
//! version where empty or `{{ registration.version }}`, on: the task template id; the
//! workflow template id and sub-workflow ids; every node reference (task node, launch-plan
//! and sub-workflow refs), inside branch (`if`, `elif`, `else`), array and failure nodes too;
//! the launch plan id and its workflow id. A container arg that is exactly
//! `{{ .remote_package_path }}` becomes [`Target::code_url`], exactly `{{ .dest_dir }}` becomes
//! [`Target::dest_dir`] (`.` when empty, as flytectl does); the same in the `containers` of a
//! `k8s_pod` target's pod spec (a `google.protobuf.Struct`).
//!
//! Launch plans only, from [`config::DomainSettings`]: the domain's settings win. Service
//! account and IAM role go into both `auth_role` (deprecated, still read) and
//! `security_context.run_as`; the raw output prefix into `raw_output_data_config`. Labels,
//! annotations and env (`LaunchPlanSpec.envs`, field 21) are merged key by key into what the
//! launch plan declares itself, the domain's value winning on a shared key. A setting left
//! out (or empty) leaves the spec as pyflyte wrote it.
//!
//! Hydrating an already hydrated spec with the same target returns the same bytes.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use flyte_api::fields::{
    array_node, auth_role, branch_node, container, create_request, identifier, identity, if_block, if_else_block,
    k8s_pod, key_value, labels, launch_plan, launch_plan_spec, node, protobuf_list_value, protobuf_struct,
    protobuf_value, raw_output_data_config, security_context, task_node, task_spec, task_template, workflow_node,
    workflow_spec, workflow_template,
};
use flyte_api::{wire, Identifier, Kind, Message};

use crate::artifacts::specs::Package;
use crate::config::DomainSettings;

/// Where and how the specs are registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    pub domain: String,
    pub version: String,
    /// The uploaded code archive's native URL (from CreateUploadLocation); `None` when the
    /// package was not fast-registered. Required when a task arg asks for it.
    pub code_url: Option<String>,
    /// Where the code archive is unpacked in the container; empty means `.`.
    pub dest_dir: String,
    /// The domain's launch-plan settings.
    pub settings: DomainSettings,
}

/// One hydrated entity, ready to be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hydrated {
    pub kind: Kind,
    pub id: Identifier,
    /// Wire bytes of the `core.Identifier` (taken from the spec, so identical to it).
    pub id_bytes: Vec<u8>,
    /// Wire bytes of the hydrated `admin.TaskSpec` / `WorkflowSpec` / `LaunchPlanSpec`.
    pub spec: Vec<u8>,
    /// Entities that must be registered before this one (hydrated ids, no duplicates):
    /// a workflow's task and launch-plan references and sub-workflow references it does not
    /// embed; a launch plan's workflow. References to entities outside the package are listed
    /// too (they must already exist).
    pub references: Vec<Identifier>,
}

const PROJECT_TEMPLATE: &str = "{{ registration.project }}";
const DOMAIN_TEMPLATE: &str = "{{ registration.domain }}";
const VERSION_TEMPLATE: &str = "{{ registration.version }}";
/// The container arg replaced by the code archive's URL.
pub const REMOTE_PACKAGE_PATH: &str = "{{ .remote_package_path }}";
/// The container arg replaced by the destination dir.
pub const DEST_DIR: &str = "{{ .dest_dir }}";

/// Hydrates one spec file for `target`.
pub fn hydrate(kind: Kind, file_bytes: &[u8], target: &Target) -> Result<Hydrated> {
    hydrate_with(kind, file_bytes, target, None)
}

/// What a spec registered in one domain is moved from, for [`retarget`].
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The source domain: identifiers of `target.project` at `target.version` in it move to
    /// `target.domain`.
    pub domain: &'a str,
    /// The code archive URL its tasks use: an arg equal to it becomes `target.code_url`.
    pub code_url: Option<&'a str>,
}

/// Like [`hydrate`] for a spec as registered in another domain (`admin::spec_of` of a Get
/// answer): besides what `hydrate` sets, identifiers of the target's project and version in
/// `source.domain` move to the target's domain, and the source's code archive URL becomes
/// the target's. The target's launch-plan settings are applied on top of the source's (the
/// caller makes sure they cover every setting the source applied). Wire edits only.
pub fn retarget(kind: Kind, spec_bytes: &[u8], source: Source<'_>, target: &Target) -> Result<Hydrated> {
    hydrate_with(kind, spec_bytes, target, Some(source))
}

fn hydrate_with(kind: Kind, file_bytes: &[u8], target: &Target, source: Option<Source<'_>>) -> Result<Hydrated> {
    hydrate_resolving(kind, file_bytes, target, source, None)
}

/// For a reference to an entity of another workflow of the monorepo: that workflow's
/// version, by the referenced entity's name (`None`: not another workflow's).
pub type OtherVersion<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Like [`hydrate_package`], and a reference whose version is empty or
/// `{{ registration.version }}` to an entity `other` names gets that workflow's version
/// instead of the target's.
pub fn hydrate_package_resolving(package: &Package, target: &Target, other: OtherVersion<'_>) -> Result<Vec<Hydrated>> {
    package
        .entities
        .iter()
        .map(|e| {
            hydrate_resolving(e.kind, &e.bytes, target, None, Some(other))
                .with_context(|| format!("{} of the pyflyte package", e.file_name))
        })
        .collect()
}

fn hydrate_resolving(
    kind: Kind,
    file_bytes: &[u8],
    target: &Target,
    source: Option<Source<'_>>,
    other: Option<OtherVersion<'_>>,
) -> Result<Hydrated> {
    for (what, value) in [("project", &target.project), ("domain", &target.domain), ("version", &target.version)] {
        if value.is_empty() {
            bail!("cannot hydrate a {kind}: the target {what} is empty");
        }
    }
    let mut hydrator = Hydrator { target, source, other, references: Vec::new() };
    let (id_bytes, spec) = match kind {
        Kind::Task => hydrator.task_spec(file_bytes),
        Kind::Workflow => hydrator.workflow_spec(file_bytes),
        Kind::LaunchPlan => hydrator.launch_plan(file_bytes),
    }
    .with_context(|| format!("hydrating a {kind} spec"))?;
    let id = identifier_of(&id_bytes)?;
    if id.name.is_empty() {
        bail!("the {kind} spec has no identifier name: is this really a {kind} file?");
    }
    let mut references = Vec::new();
    for r in hydrator.references {
        if !references.contains(&r) {
            references.push(r);
        }
    }
    Ok(Hydrated { kind, id, id_bytes, spec, references })
}

/// Hydrates every spec of a package, in the package's order; an error names the file.
pub fn hydrate_package(package: &Package, target: &Target) -> Result<Vec<Hydrated>> {
    package
        .entities
        .iter()
        .map(|e| hydrate(e.kind, &e.bytes, target).with_context(|| format!("{} of the pyflyte package", e.file_name)))
        .collect()
}

/// The wire bytes of the create request for `h` (`TaskCreateRequest`,
/// `WorkflowCreateRequest` or `LaunchPlanCreateRequest`: id = 1, spec = 2).
pub fn create_request(h: &Hydrated) -> Vec<u8> {
    let mut out = wire::len_field(create_request::ID, &h.id_bytes);
    out.extend(wire::len_field(create_request::SPEC, &h.spec));
    out
}

/// Decodes the wire bytes of a `core.Identifier` (fields it does not declare are skipped
/// here, and kept in the bytes).
fn identifier_of(bytes: &[u8]) -> Result<Identifier> {
    Identifier::decode(bytes).context("a malformed identifier")
}

struct Hydrator<'a> {
    target: &'a Target,
    /// Set by [`retarget`].
    source: Option<Source<'a>>,
    /// Set by [`hydrate_package_resolving`].
    other: Option<OtherVersion<'a>>,
    references: Vec<Identifier>,
}

impl Hydrator<'_> {
    /// Sets project, domain and version where empty or templated.
    fn identifier(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        let current = identifier_of(bytes)?;
        let t = self.target;
        let mut out = bytes.to_vec();
        if current.project.is_empty() || current.project == PROJECT_TEMPLATE {
            out = wire::set_len(&out, identifier::PROJECT, t.project.as_bytes())?;
        }
        let moved = self.source.is_some_and(|s| {
            current.domain == s.domain && current.project == t.project && current.version == t.version
        });
        if current.domain.is_empty() || current.domain == DOMAIN_TEMPLATE || moved {
            out = wire::set_len(&out, identifier::DOMAIN, t.domain.as_bytes())?;
        }
        if current.version.is_empty() || current.version == VERSION_TEMPLATE {
            out = wire::set_len(&out, identifier::VERSION, t.version.as_bytes())?;
        }
        Ok(out)
    }

    /// Hydrates an identifier this entity depends on, and records it.
    fn reference(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let current = identifier_of(bytes)?;
        let other = self.other.and_then(|f| f(&current.name));
        let bytes = match other {
            Some(v) if current.version.is_empty() || current.version == VERSION_TEMPLATE => {
                wire::set_len(bytes, identifier::VERSION, v.as_bytes())?
            }
            _ => bytes.to_vec(),
        };
        let out = self.identifier(&bytes)?;
        self.references.push(identifier_of(&out)?);
        Ok(out)
    }

    /// admin.TaskSpec → (template id, spec).
    fn task_spec(&mut self, spec: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        if wire::last_len(spec, task_spec::TEMPLATE)?.is_none() {
            bail!("the task spec has no template");
        }
        let spec = wire::edit_each(spec, task_spec::TEMPLATE, |template| {
            let template = wire::edit_each(template, task_template::ID, |id| self.identifier(id))?;
            let template = wire::edit_each(&template, task_template::CONTAINER, |c| self.container(c))?;
            wire::edit_each(&template, task_template::K8S_POD, |pod| {
                wire::edit_each(pod, k8s_pod::POD_SPEC, |pod_spec| self.pod_spec(pod_spec))
            })
        })?;
        let template = wire::last_len(&spec, task_spec::TEMPLATE)?.unwrap_or_default();
        let id = wire::last_len(template, task_template::ID)?.context("the task template has no id")?;
        Ok((id.to_vec(), spec))
    }

    /// The replacement of one container arg, if it is a registration placeholder.
    fn arg(&self, arg: &[u8]) -> Result<Option<Vec<u8>>> {
        let source_url = self.source.and_then(|s| s.code_url).filter(|u| !u.is_empty());
        if arg == REMOTE_PACKAGE_PATH.as_bytes() || source_url.is_some_and(|u| arg == u.as_bytes()) {
            let Some(url) = &self.target.code_url else {
                bail!(
                    "a container arg is `{REMOTE_PACKAGE_PATH}` (a fast-registered task) but no code archive URL \
                     was given: upload the package's fast archive first"
                );
            };
            return Ok(Some(url.as_bytes().to_vec()));
        }
        if arg == DEST_DIR.as_bytes() {
            let dir = if self.target.dest_dir.is_empty() { "." } else { &self.target.dest_dir };
            return Ok(Some(dir.as_bytes().to_vec()));
        }
        Ok(None)
    }

    /// core.Container: placeholders in `args`.
    fn container(&self, container: &[u8]) -> Result<Vec<u8>> {
        wire::rewrite(container, |f| {
            if f.number != container::ARGS || f.wire_type != wire::WireType::Len {
                return Ok(wire::Edit::Keep);
            }
            Ok(match self.arg(&container[f.value.clone()])? {
                Some(new) => wire::Edit::Replace(wire::len_field(container::ARGS, &new)),
                None => wire::Edit::Keep,
            })
        })
    }

    /// A pod spec (google.protobuf.Struct): placeholders in `containers[].args[]`.
    fn pod_spec(&self, pod_spec: &[u8]) -> Result<Vec<u8>> {
        struct_entry(pod_spec, "containers", |containers| {
            list_items(containers, |container| {
                wire::edit_each(container, protobuf_value::STRUCT_VALUE, |container| {
                    struct_entry(container, "args", |args| {
                        list_items(args, |arg| {
                            let Some(text) = wire::last_len(arg, protobuf_value::STRING_VALUE)? else {
                                return Ok(arg.to_vec());
                            };
                            match self.arg(text)? {
                                Some(new) => wire::set_len(arg, protobuf_value::STRING_VALUE, &new),
                                None => Ok(arg.to_vec()),
                            }
                        })
                    })
                })
            })
        })
    }

    /// admin.WorkflowSpec → (template id, spec).
    fn workflow_spec(&mut self, spec: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        if wire::last_len(spec, workflow_spec::TEMPLATE)?.is_none() {
            bail!("the workflow spec has no template");
        }
        let spec = wire::edit_each(spec, workflow_spec::TEMPLATE, |t| self.workflow_template(t))?;
        let spec = wire::edit_each(&spec, workflow_spec::SUB_WORKFLOWS, |t| self.workflow_template(t))?;
        // Sub-workflows the spec embeds need no registration of their own.
        let mut embedded = Vec::new();
        for sub in wire::all_len(&spec, workflow_spec::SUB_WORKFLOWS)? {
            if let Some(id) = wire::last_len(sub, workflow_template::ID)? {
                embedded.push(identifier_of(id)?);
            }
        }
        self.references.retain(|r| !embedded.contains(r));
        let template = wire::last_len(&spec, workflow_spec::TEMPLATE)?.unwrap_or_default();
        let id = wire::last_len(template, workflow_template::ID)?.context("the workflow template has no id")?;
        Ok((id.to_vec(), spec))
    }

    /// core.WorkflowTemplate: its id, nodes and failure node.
    fn workflow_template(&mut self, template: &[u8]) -> Result<Vec<u8>> {
        let template = wire::edit_each(template, workflow_template::ID, |id| self.identifier(id))?;
        let template = wire::edit_each(&template, workflow_template::NODES, |n| self.node(n))?;
        wire::edit_each(&template, workflow_template::FAILURE_NODE, |n| self.node(n))
    }

    /// core.Node, recursively through branch and array nodes.
    fn node(&mut self, node: &[u8]) -> Result<Vec<u8>> {
        let node = wire::edit_each(node, node::TASK_NODE, |task_node| {
            wire::edit_each(task_node, task_node::REFERENCE_ID, |id| self.reference(id))
        })?;
        let node = wire::edit_each(&node, node::WORKFLOW_NODE, |workflow_node| {
            let w = wire::edit_each(workflow_node, workflow_node::LAUNCHPLAN_REF, |id| self.reference(id))?;
            wire::edit_each(&w, workflow_node::SUB_WORKFLOW_REF, |id| self.reference(id))
        })?;
        let node = wire::edit_each(&node, node::BRANCH_NODE, |branch| {
            wire::edit_each(branch, branch_node::IF_ELSE, |if_else| {
                let b = wire::edit_each(if_else, if_else_block::CASE, |block| {
                    wire::edit_each(block, if_block::THEN_NODE, |n| self.node(n))
                })?;
                let b = wire::edit_each(&b, if_else_block::OTHER, |block| {
                    wire::edit_each(block, if_block::THEN_NODE, |n| self.node(n))
                })?;
                wire::edit_each(&b, if_else_block::ELSE_NODE, |n| self.node(n))
            })
        })?;
        wire::edit_each(&node, node::ARRAY_NODE, |array| wire::edit_each(array, array_node::NODE, |n| self.node(n)))
    }

    /// admin.LaunchPlan → (id, LaunchPlanSpec); the closure is not registered.
    fn launch_plan(&mut self, file: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let id = wire::last_len(file, launch_plan::ID)?.context("the launch plan has no id")?;
        let spec = wire::last_len(file, launch_plan::SPEC)?.context("the launch plan has no spec")?;
        let id = self.identifier(id)?;
        let spec = wire::edit_each(spec, launch_plan_spec::WORKFLOW_ID, |w| self.reference(w))?;
        let spec = self.launch_plan_settings(&spec)?;
        Ok((id, spec))
    }

    /// The domain's settings, into a LaunchPlanSpec.
    fn launch_plan_settings(&self, spec: &[u8]) -> Result<Vec<u8>> {
        let s = &self.target.settings;
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let (service_account, iam_role, prefix) =
            (given(&s.service_account), given(&s.iam_role), given(&s.raw_output_prefix));
        let mut spec = spec.to_vec();
        if service_account.is_some() || iam_role.is_some() {
            let set_both = |msg: &[u8], iam_field: u32, sa_field: u32| -> Result<Vec<u8>> {
                let mut msg = msg.to_vec();
                if let Some(role) = &iam_role {
                    msg = wire::set_len(&msg, iam_field, role.as_bytes())?;
                }
                if let Some(account) = &service_account {
                    msg = wire::set_len(&msg, sa_field, account.as_bytes())?;
                }
                Ok(msg)
            };
            spec = wire::edit_or_insert(&spec, launch_plan_spec::AUTH_ROLE, |auth| {
                set_both(auth, auth_role::ASSUMABLE_IAM_ROLE, auth_role::KUBERNETES_SERVICE_ACCOUNT)
            })?;
            spec = wire::edit_or_insert(&spec, launch_plan_spec::SECURITY_CONTEXT, |sc| {
                wire::edit_or_insert(sc, security_context::RUN_AS, |identity| {
                    set_both(identity, identity::IAM_ROLE, identity::K8S_SERVICE_ACCOUNT)
                })
            })?;
        }
        if let Some(prefix) = prefix {
            spec = wire::edit_or_insert(&spec, launch_plan_spec::RAW_OUTPUT_DATA_CONFIG, |config| {
                wire::set_len(config, raw_output_data_config::OUTPUT_LOCATION_PREFIX, prefix.as_bytes())
            })?;
        }
        for (number, values) in [
            (launch_plan_spec::LABELS, &s.labels),
            (launch_plan_spec::ANNOTATIONS, &s.annotations),
            (launch_plan_spec::ENVS, &s.env),
        ] {
            if !values.is_empty() {
                spec = wire::edit_or_insert(&spec, number, |map| merge_pairs(map, values))?;
            }
        }
        Ok(spec)
    }
}

/// Merges `values` into a message whose field 1 holds {key = 1, value = 2} pairs (a
/// `map<string, string>` or `repeated KeyValuePair`): `values` win on shared keys, the
/// result is written sorted by key after the message's other fields.
fn merge_pairs(msg: &[u8], values: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for pair in wire::all_len(msg, labels::VALUES)? {
        let key = wire::string(pair, key_value::KEY)?.unwrap_or_default();
        merged.insert(key, wire::string(pair, key_value::VALUE)?.unwrap_or_default());
    }
    merged.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut out = wire::remove(msg, labels::VALUES)?;
    for (key, value) in &merged {
        let mut pair = wire::len_field(key_value::KEY, key.as_bytes());
        pair.extend(wire::len_field(key_value::VALUE, value.as_bytes()));
        out.extend(wire::len_field(labels::VALUES, &pair));
    }
    Ok(out)
}

/// Edits the value (a google.protobuf.Value) of entry `key` of a google.protobuf.Struct.
fn struct_entry(msg: &[u8], key: &str, mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    wire::edit_each(msg, protobuf_struct::FIELDS, |entry| {
        if wire::string(entry, key_value::KEY)?.as_deref() == Some(key) {
            wire::edit_each(entry, key_value::VALUE, &mut edit)
        } else {
            Ok(entry.to_vec())
        }
    })
}

/// Edits each item (a google.protobuf.Value) of a Value holding a list.
fn list_items(value: &[u8], mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    wire::edit_each(value, protobuf_value::LIST_VALUE, |list| {
        wire::edit_each(list, protobuf_list_value::VALUES, &mut edit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use flyte_api::{admin, core};

    fn target() -> Target {
        Target {
            project: "flytesnacks".into(),
            domain: "development".into(),
            version: "v1".into(),
            code_url: Some("s3://bucket/fast123.tar.gz".into()),
            dest_dir: "/root".into(),
            settings: DomainSettings::default(),
        }
    }

    /// An identifier as pyflyte writes it: kind and name.
    fn bare(kind: Kind, name: &str) -> Identifier {
        Identifier::new(kind, "", "", name, "")
    }

    fn task_node(id: &str, task: &str) -> core::Node {
        core::Node {
            id: id.into(),
            target: Some(core::node::Target::TaskNode(core::TaskNode {
                reference: Some(core::task_node::Reference::ReferenceId(bare(Kind::Task, task))),
            })),
            ..Default::default()
        }
    }

    fn workflow_node(id: &str, reference: core::workflow_node::Reference) -> core::Node {
        core::Node {
            id: id.into(),
            target: Some(core::node::Target::WorkflowNode(core::WorkflowNode { reference: Some(reference) })),
            ..Default::default()
        }
    }

    fn branch(then: core::Node, elif: core::Node, otherwise: core::Node) -> core::Node {
        let block = |n| core::IfBlock { then_node: Some(n), ..Default::default() };
        core::Node {
            id: "branch".into(),
            target: Some(core::node::Target::BranchNode(Box::new(core::BranchNode {
                if_else: Some(core::IfElseBlock {
                    case: Some(block(then)),
                    other: vec![block(elif)],
                    default: Some(core::if_else_block::Default::ElseNode(otherwise)),
                }),
            }))),
            ..Default::default()
        }
    }

    fn array(inner: core::Node) -> core::Node {
        core::Node {
            id: "map".into(),
            target: Some(core::node::Target::ArrayNode(Box::new(core::ArrayNode {
                node: Some(inner),
                ..Default::default()
            }))),
            ..Default::default()
        }
    }

    /// A workflow with every kind of reference, nested in branch, array and failure nodes,
    /// one embedded sub-workflow and one launch-plan reference.
    fn rich_workflow() -> admin::WorkflowSpec {
        use core::workflow_node::Reference;
        let sub = core::WorkflowTemplate {
            id: Some(bare(Kind::Workflow, "pkg.sub")),
            nodes: vec![task_node("s0", "pkg.t_sub")],
            ..Default::default()
        };
        let template = core::WorkflowTemplate {
            id: Some(bare(Kind::Workflow, "pkg.main")),
            nodes: vec![
                task_node("n0", "pkg.t0"),
                branch(
                    task_node("b0", "pkg.t_then"),
                    task_node("b1", "pkg.t_elif"),
                    array(task_node("b2", "pkg.t_else_map")),
                ),
                array(task_node("m0", "pkg.t_map")),
                workflow_node("w0", Reference::SubWorkflowRef(bare(Kind::Workflow, "pkg.sub"))),
                workflow_node("w1", Reference::LaunchplanRef(bare(Kind::LaunchPlan, "pkg.other_lp"))),
            ],
            failure_node: Some(task_node("fail", "pkg.t_fail")),
            ..Default::default()
        };
        admin::WorkflowSpec { template: Some(template), sub_workflows: vec![sub] }
    }

    /// Every identifier the nodes of a decoded template reference, recursively.
    fn node_refs(node: &core::Node, out: &mut Vec<Identifier>) {
        use core::node::Target;
        match node.target.as_ref().unwrap() {
            Target::TaskNode(t) => match t.reference.as_ref().unwrap() {
                core::task_node::Reference::ReferenceId(id) => out.push(id.clone()),
            },
            Target::WorkflowNode(w) => match w.reference.as_ref().unwrap() {
                core::workflow_node::Reference::LaunchplanRef(id)
                | core::workflow_node::Reference::SubWorkflowRef(id) => out.push(id.clone()),
            },
            Target::BranchNode(b) => {
                let ie = b.if_else.as_ref().unwrap();
                node_refs(ie.case.as_ref().unwrap().then_node.as_ref().unwrap(), out);
                for o in &ie.other {
                    node_refs(o.then_node.as_ref().unwrap(), out);
                }
                if let Some(core::if_else_block::Default::ElseNode(n)) = &ie.default {
                    node_refs(n, out);
                }
            }
            Target::ArrayNode(a) => node_refs(a.node.as_ref().unwrap(), out),
            Target::GateNode(_) => {}
        }
    }

    fn template_ids(t: &core::WorkflowTemplate) -> Vec<Identifier> {
        let mut out = vec![t.id.clone().unwrap()];
        for n in t.nodes.iter().chain(t.failure_node.as_ref()) {
            node_refs(n, &mut out);
        }
        out
    }

    fn assert_filled(id: &Identifier, project: &str, domain: &str, version: &str) {
        assert_eq!(
            (id.project.as_str(), id.domain.as_str(), id.version.as_str()),
            (project, domain, version),
            "{id:?}"
        );
    }

    #[test]
    fn retarget_moves_the_source_domains_identifiers_and_code_url_only() {
        let mut staging = target();
        staging.domain = "staging".into();
        let registered = hydrate(Kind::Workflow, &rich_workflow().encode_to_vec(), &staging).unwrap();
        // A reference to another version in staging stays where it is.
        let mut foreign = admin::WorkflowSpec::decode(registered.spec.as_slice()).unwrap();
        let mut other = bare(Kind::Task, "pkg.elsewhere");
        (other.project, other.domain, other.version) = ("flytesnacks".into(), "staging".into(), "v0".into());
        foreign.template.as_mut().unwrap().nodes.push(core::Node {
            id: "x".into(),
            target: Some(core::node::Target::TaskNode(core::TaskNode {
                reference: Some(core::task_node::Reference::ReferenceId(other.clone())),
            })),
            ..Default::default()
        });
        let mut production = target();
        production.domain = "production".into();
        let source = Source { domain: "staging", code_url: None };
        let moved = retarget(Kind::Workflow, &foreign.encode_to_vec(), source, &production).unwrap();
        let spec = admin::WorkflowSpec::decode(moved.spec.as_slice()).unwrap();
        let ids = template_ids(spec.template.as_ref().unwrap());
        assert_eq!(ids.len(), 10);
        for id in ids.iter().filter(|id| id.name != "pkg.elsewhere") {
            assert_filled(id, "flytesnacks", "production", "v1");
        }
        assert!(ids.contains(&other), "{ids:?}");
        assert_eq!(moved.id.domain, "production");
        // Same as hydrating for production from the start, once the foreign node is gone.
        let direct = hydrate(Kind::Workflow, &rich_workflow().encode_to_vec(), &production).unwrap();
        let plain = retarget(Kind::Workflow, &registered.spec, source, &production).unwrap();
        assert_eq!(plain.spec, direct.spec);

        // The source's code archive URL becomes the target's; other args stay.
        let task = |url: &str| admin::TaskSpec {
            template: Some(core::TaskTemplate {
                id: Some(bare(Kind::Task, "pkg.t")),
                target: Some(core::task_template::Target::Container(core::Container {
                    args: vec!["--additional-distribution".into(), url.into(), "--dest-dir".into(), "/root".into()],
                    ..Default::default()
                })),
                ..Default::default()
            }),
        };
        let mut staged = staging.clone();
        staged.code_url = Some("s3://b/staging/fast.tar.gz".into());
        let registered = hydrate(Kind::Task, &task(REMOTE_PACKAGE_PATH).encode_to_vec(), &staged).unwrap();
        let source = Source { domain: "staging", code_url: Some("s3://b/staging/fast.tar.gz") };
        production.code_url = Some("s3://b/production/fast.tar.gz".into());
        let moved = retarget(Kind::Task, &registered.spec, source, &production).unwrap();
        let direct = hydrate(Kind::Task, &task(REMOTE_PACKAGE_PATH).encode_to_vec(), &production).unwrap();
        assert_eq!(moved.spec, direct.spec);
    }

    #[test]
    fn every_workflow_identifier_is_filled_even_nested() {
        let bytes = rich_workflow().encode_to_vec();
        let h = hydrate(Kind::Workflow, &bytes, &target()).unwrap();
        let spec = admin::WorkflowSpec::decode(h.spec.as_slice()).unwrap();
        let ids = template_ids(spec.template.as_ref().unwrap());
        // id, t0, then, elif, else-in-map, map, sub, lp, failure
        assert_eq!(ids.len(), 9);
        for id in ids.iter().chain(template_ids(&spec.sub_workflows[0]).iter()) {
            assert_filled(id, "flytesnacks", "development", "v1");
        }
        assert_eq!(h.id.name, "pkg.main");
        assert_eq!(h.id_bytes, spec.template.unwrap().id.unwrap().encode_to_vec());
        // The embedded sub-workflow is not a reference; its task is.
        let names: Vec<&str> = h.references.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pkg.t0",
                "pkg.t_then",
                "pkg.t_elif",
                "pkg.t_else_map",
                "pkg.t_map",
                "pkg.other_lp",
                "pkg.t_fail",
                "pkg.t_sub"
            ]
        );
        assert!(h.references.iter().all(|r| r.version == "v1"));
        assert_eq!(hydrate(Kind::Workflow, &h.spec, &target()).unwrap().spec, h.spec, "idempotent");
    }

    #[test]
    fn set_identifiers_and_templates() {
        let mut id = bare(Kind::Task, "t");
        id.project = "other".into();
        id.domain = DOMAIN_TEMPLATE.into();
        id.version = VERSION_TEMPLATE.into();
        let spec = admin::TaskSpec { template: Some(core::TaskTemplate { id: Some(id), ..Default::default() }) };
        let h = hydrate(Kind::Task, &spec.encode_to_vec(), &target()).unwrap();
        assert_eq!(
            (h.id.project.as_str(), h.id.domain.as_str(), h.id.version.as_str()),
            ("other", "development", "v1"),
            "a set project is kept, templates are replaced"
        );
    }

    fn task_with_args(args: &[&str]) -> Vec<u8> {
        admin::TaskSpec {
            template: Some(core::TaskTemplate {
                id: Some(bare(Kind::Task, "t")),
                target: Some(core::task_template::Target::Container(core::Container {
                    image: "img".into(),
                    args: args.iter().map(|a| a.to_string()).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    fn args_of(spec: &[u8]) -> Vec<String> {
        let spec = admin::TaskSpec::decode(spec).unwrap();
        match spec.template.unwrap().target.unwrap() {
            core::task_template::Target::Container(c) => c.args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn placeholders_in_args() {
        let bytes = task_with_args(&["a", REMOTE_PACKAGE_PATH, "--dest-dir", DEST_DIR, "x{{ .dest_dir }}"]);
        let h = hydrate(Kind::Task, &bytes, &target()).unwrap();
        assert_eq!(args_of(&h.spec), ["a", "s3://bucket/fast123.tar.gz", "--dest-dir", "/root", "x{{ .dest_dir }}"]);
        let mut t = target();
        t.dest_dir.clear();
        assert_eq!(args_of(&hydrate(Kind::Task, &bytes, &t).unwrap().spec)[3], ".");
        t.code_url = None;
        let err = hydrate(Kind::Task, &bytes, &t).unwrap_err();
        assert!(format!("{err:#}").contains("no code archive URL"), "{err:#}");
        // Without the placeholder no URL is needed.
        assert!(hydrate(Kind::Task, &task_with_args(&["a"]), &t).is_ok());
    }

    #[test]
    fn placeholders_in_pod_spec_containers() {
        use flyte_api::prost_types::{value::Kind as V, ListValue, Struct, Value};
        let s = |x: &str| Value { kind: Some(V::StringValue(x.into())) };
        let list = |xs: Vec<Value>| Value { kind: Some(V::ListValue(ListValue { values: xs })) };
        let obj = |xs: Vec<(&str, Value)>| Struct { fields: xs.into_iter().map(|(k, v)| (k.to_string(), v)).collect() };
        let container = obj(vec![
            ("name", s("primary")),
            ("args", list(vec![s("pyflyte-fast-execute"), s(REMOTE_PACKAGE_PATH), s(DEST_DIR)])),
        ]);
        let pod_spec = obj(vec![("containers", list(vec![Value { kind: Some(V::StructValue(container)) }]))]);
        let spec = admin::TaskSpec {
            template: Some(core::TaskTemplate {
                id: Some(bare(Kind::Task, "t")),
                target: Some(core::task_template::Target::K8sPod(core::K8sPod { pod_spec: Some(pod_spec) })),
                ..Default::default()
            }),
        };
        let h = hydrate(Kind::Task, &spec.encode_to_vec(), &target()).unwrap();
        let decoded = admin::TaskSpec::decode(h.spec.as_slice()).unwrap();
        let Some(core::task_template::Target::K8sPod(pod)) = decoded.template.unwrap().target else { panic!() };
        let Some(V::ListValue(containers)) = &pod.pod_spec.unwrap().fields["containers"].kind else { panic!() };
        let Some(V::StructValue(c)) = &containers.values[0].kind else { panic!() };
        let Some(V::ListValue(args)) = &c.fields["args"].kind else { panic!() };
        let args: Vec<_> = args.values.iter().map(|v| v.kind.clone().unwrap()).collect();
        assert_eq!(
            args,
            [
                V::StringValue("pyflyte-fast-execute".into()),
                V::StringValue("s3://bucket/fast123.tar.gz".into()),
                V::StringValue("/root".into())
            ]
        );
    }

    fn launch_plan() -> admin::LaunchPlan {
        let mut labels = BTreeMap::new();
        labels.insert("team".to_string(), "from-code".to_string());
        labels.insert("owner".to_string(), "alice".to_string());
        admin::LaunchPlan {
            id: Some(bare(Kind::LaunchPlan, "pkg.lp")),
            spec: Some(admin::LaunchPlanSpec {
                workflow_id: Some(bare(Kind::Workflow, "pkg.main")),
                labels: Some(admin::Labels { values: labels }),
                raw_output_data_config: Some(admin::RawOutputDataConfig::default()),
                ..Default::default()
            }),
            closure: None,
        }
    }

    fn settings() -> DomainSettings {
        DomainSettings {
            raw_output_prefix: Some("s3://bucket/dev".into()),
            service_account: Some("flyte-dev".into()),
            iam_role: Some("arn:aws:iam::123:role/dev".into()),
            labels: [("team".to_string(), "ml".to_string())].into(),
            annotations: [("note".to_string(), "x".to_string())].into(),
            env: [("MODE".to_string(), "dev".to_string())].into(),
        }
    }

    #[test]
    fn launch_plan_ids_and_settings() {
        let mut t = target();
        t.settings = settings();
        let h = hydrate(Kind::LaunchPlan, &launch_plan().encode_to_vec(), &t).unwrap();
        assert_eq!(h.id.name, "pkg.lp");
        assert_eq!(h.id.version, "v1");
        let spec = admin::LaunchPlanSpec::decode(h.spec.as_slice()).unwrap();
        assert_filled(spec.workflow_id.as_ref().unwrap(), "flytesnacks", "development", "v1");
        assert_eq!(h.references, [spec.workflow_id.clone().unwrap()]);
        let auth = spec.auth_role.unwrap();
        assert_eq!(
            (auth.assumable_iam_role.as_str(), auth.kubernetes_service_account.as_str()),
            ("arn:aws:iam::123:role/dev", "flyte-dev")
        );
        let run_as = spec.security_context.unwrap().run_as.unwrap();
        assert_eq!(
            (run_as.iam_role.as_str(), run_as.k8s_service_account.as_str()),
            ("arn:aws:iam::123:role/dev", "flyte-dev")
        );
        assert_eq!(spec.raw_output_data_config.unwrap().output_location_prefix, "s3://bucket/dev");
        let labels = spec.labels.unwrap().values;
        assert_eq!((labels["team"].as_str(), labels["owner"].as_str(), labels.len()), ("ml", "alice", 2));
        assert_eq!(spec.annotations.unwrap().values["note"], "x");
        let envs = spec.envs.unwrap().values;
        assert_eq!((envs[0].key.as_str(), envs[0].value.as_str()), ("MODE", "dev"));
        // Idempotent.
        let file = admin::LaunchPlan {
            id: Some(Identifier::decode(h.id_bytes.as_slice()).unwrap()),
            spec: None,
            closure: None,
        };
        let mut again = file.encode_to_vec();
        again.extend(wire::len_field(launch_plan::SPEC, &h.spec));
        let h2 = hydrate(Kind::LaunchPlan, &again, &t).unwrap();
        assert_eq!((h2.spec, h2.id_bytes), (h.spec, h.id_bytes));
    }

    #[test]
    fn no_settings_leave_the_launch_plan_spec_as_written() {
        let file = launch_plan().encode_to_vec();
        let h = hydrate(Kind::LaunchPlan, &file, &target()).unwrap();
        let original = wire::last_len(&file, launch_plan::SPEC).unwrap().unwrap();
        // Only the workflow id (field 1, first) changed: every byte after it is the same.
        let old_rest = &original[wire::fields(original).unwrap()[0].span.end..];
        let new_rest = &h.spec[wire::fields(&h.spec).unwrap()[0].span.end..];
        assert_eq!(old_rest, new_rest);
    }

    #[test]
    fn identifier_round_trips_through_the_crate_type() {
        let h = hydrate(Kind::LaunchPlan, &launch_plan().encode_to_vec(), &target()).unwrap();
        assert_eq!(h.id.encode_to_vec(), h.id_bytes);
        assert_eq!(h.id.to_string(), "launch plan flytesnacks/development/pkg.lp@v1");
    }

    #[test]
    fn create_request_decodes_as_the_request() {
        let h = hydrate(Kind::LaunchPlan, &launch_plan().encode_to_vec(), &target()).unwrap();
        let req = admin::LaunchPlanCreateRequest::decode(create_request(&h).as_slice()).unwrap();
        assert_eq!(req.id.unwrap().encode_to_vec(), h.id_bytes);
        assert_eq!(req.spec.unwrap().workflow_id.unwrap().version, "v1");
    }

    #[test]
    fn wrong_kind_or_garbage_is_an_error() {
        let lp = launch_plan().encode_to_vec();
        assert!(hydrate(Kind::Task, &lp, &target()).is_err());
        assert!(hydrate(Kind::Workflow, &[0x0a, 0x05], &target()).is_err());
        let mut t = target();
        t.version.clear();
        assert!(hydrate(Kind::Task, &task_with_args(&[]), &t).is_err());
    }
}
