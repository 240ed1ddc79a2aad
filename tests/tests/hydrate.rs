//! Hydration of real pyflyte output: every example package, plus a package with every node
//! kind that carries references (branch, array, failure node, sub-workflow, launch plan),
//! is packaged by the real pyflyte, read, hydrated and checked through prost; and the bytes
//! of fields the bindings (`flyte-api`) do not declare survive, as does every untouched byte.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use flyte_api::{admin, core, wire, Identifier, Kind, Message};
use flyte_deploy::artifacts::specs::{self, Package};
use flyte_deploy::config::DomainSettings;
use flyte_deploy::registration::hydrate::{self, Hydrated, Target};
use flyte_deploy::registration::register;
use tests::{flytekit_python, project_root};

/// A package whose workflow `outer` has a branch (`if` → task, `elif` → sub-workflow,
/// `else` → task), a map task (array node), a launch-plan call and a failure node.
const NESTED: &str = r#"
import typing

from flytekit import LaunchPlan, conditional, map_task, task, workflow


@task
def square(x: int) -> int:
    return x * x


@task
def neg(x: int) -> int:
    return -x


@task
def cleanup(x: int, xs: typing.List[int]) -> None:
    print("failed", x, xs)


@workflow
def inner(x: int) -> int:
    return square(x=x)


inner_lp = LaunchPlan.get_or_create(workflow=inner, name="inner_lp")


@workflow(on_failure=cleanup)
def outer(x: int = 3, xs: typing.List[int] = [1, 2]) -> int:
    a = conditional("sign").if_(x > 0).then(square(x=x)).elif_(x < -5).then(inner(x=x)).else_().then(neg(x=x))
    map_task(square)(x=xs)
    return inner_lp(x=a)
"#;

const CODE_URL: &str = "s3://my-s3-bucket/flytesnacks/development/ABCD/fastc0b6.tar.gz";

/// The real pyflyte packages of the examples and of [`NESTED`], read; built once per run.
fn packages() -> Option<&'static BTreeMap<String, Package>> {
    flytekit_python()?;
    static PACKAGES: OnceLock<BTreeMap<String, Package>> = OnceLock::new();
    Some(PACKAGES.get_or_init(|| {
        let mut out = BTreeMap::new();
        for name in ["etl", "features", "hello", "training"] {
            let work = tempfile::tempdir().unwrap();
            tests::copy_tree(&project_root().join("workflows").join(name), work.path());
            out.insert(name.to_string(), specs::read_package(&tests::pyflyte_package(work.path(), name)).unwrap());
        }
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir(work.path().join("nested")).unwrap();
        std::fs::write(work.path().join("nested/__init__.py"), "").unwrap();
        std::fs::write(work.path().join("nested/flows.py"), NESTED).unwrap();
        out.insert("nested".into(), specs::read_package(&tests::pyflyte_package(work.path(), "nested")).unwrap());
        out
    }))
}

fn target(settings: DomainSettings) -> Target {
    Target {
        project: "flytesnacks".into(),
        domain: "development".into(),
        version: "v-3f2a".into(),
        code_url: Some(CODE_URL.into()),
        dest_dir: "/root".into(),
        settings,
    }
}

fn dev_settings() -> DomainSettings {
    DomainSettings {
        raw_output_prefix: Some("s3://bucket/dev".into()),
        service_account: Some("flyte-dev".into()),
        iam_role: Some("arn:aws:iam::123:role/flyte-dev".into()),
        labels: [("team".to_string(), "ml".to_string())].into(),
        annotations: [("owner".to_string(), "data".to_string())].into(),
        env: [("STAGE".to_string(), "dev".to_string())].into(),
    }
}

fn assert_filled(id: &Identifier, place: &str) {
    assert_eq!(
        (id.project.as_str(), id.domain.as_str(), id.version.as_str()),
        ("flytesnacks", "development", "v-3f2a"),
        "{place}: {id:?}"
    );
    assert!(!id.name.is_empty(), "{place}: {id:?}");
}

/// Every identifier a node references, through branch and array nodes; counts node kinds.
fn node_ids(node: &core::Node, out: &mut Vec<Identifier>, seen: &mut BTreeMap<&'static str, usize>) {
    use core::node::Target as T;
    let kind = match node.target.as_ref().expect("node target") {
        T::TaskNode(t) => {
            let core::task_node::Reference::ReferenceId(id) = t.reference.as_ref().unwrap();
            out.push(id.clone());
            "task"
        }
        T::WorkflowNode(w) => match w.reference.as_ref().unwrap() {
            core::workflow_node::Reference::LaunchplanRef(id) => {
                out.push(id.clone());
                "launch plan ref"
            }
            core::workflow_node::Reference::SubWorkflowRef(id) => {
                out.push(id.clone());
                "sub-workflow ref"
            }
        },
        T::BranchNode(b) => {
            let ie = b.if_else.as_ref().unwrap();
            node_ids(ie.case.as_ref().unwrap().then_node.as_ref().unwrap(), out, seen);
            for o in &ie.other {
                node_ids(o.then_node.as_ref().unwrap(), out, seen);
            }
            if let Some(core::if_else_block::Default::ElseNode(n)) = &ie.default {
                node_ids(n, out, seen);
            }
            "branch"
        }
        T::ArrayNode(a) => {
            node_ids(a.node.as_ref().unwrap(), out, seen);
            "array"
        }
        T::GateNode(_) => "gate",
    };
    *seen.entry(kind).or_default() += 1;
}

fn template_ids(t: &core::WorkflowTemplate, out: &mut Vec<Identifier>, seen: &mut BTreeMap<&'static str, usize>) {
    out.push(t.id.clone().unwrap());
    for n in &t.nodes {
        node_ids(n, out, seen);
    }
    if let Some(n) = &t.failure_node {
        node_ids(n, out, seen);
        *seen.entry("failure").or_default() += 1;
    }
}

fn hydrate_all(package: &Package, target: &Target) -> Vec<Hydrated> {
    package
        .entities
        .iter()
        .map(|e| hydrate::hydrate(e.kind, &e.bytes, target).unwrap_or_else(|err| panic!("{}: {err:#}", e.file_name)))
        .collect()
}

#[test]
fn every_identifier_of_real_packages_is_filled() {
    let Some(packages) = packages() else { return };
    let target = target(dev_settings());
    let mut node_kinds = BTreeMap::new();
    for (name, package) in packages {
        assert!(package.fast_archive.as_ref().is_some_and(|(f, b)| f.starts_with("fast") && !b.is_empty()), "{name}");
        for (file, h) in package.entities.iter().zip(hydrate_all(package, &target)) {
            let place = format!("{name}/{}", file.file_name);
            assert_eq!(h.kind, file.kind);
            assert_eq!((h.id.project.as_str(), h.id.version.as_str()), ("flytesnacks", "v-3f2a"), "{place}");
            assert_eq!(Identifier::decode(h.id_bytes.as_slice()).unwrap().name, h.id.name, "{place}");
            match h.kind {
                Kind::Task => {
                    let spec = admin::TaskSpec::decode(h.spec.as_slice()).unwrap();
                    let template = spec.template.unwrap();
                    assert_filled(template.id.as_ref().unwrap(), &place);
                    let Some(core::task_template::Target::Container(c)) = template.target else {
                        panic!("{place}: no container")
                    };
                    let url_at = c.args.iter().position(|a| a == CODE_URL).expect("the code URL in the args");
                    assert_eq!(c.args[url_at - 1], "--additional-distribution", "{place}");
                    assert!(!c.args.iter().any(|a| a.contains("remote_package_path")), "{place}: {:?}", c.args);
                    assert!(h.references.is_empty());
                }
                Kind::Workflow => {
                    let spec = admin::WorkflowSpec::decode(h.spec.as_slice()).unwrap();
                    let mut ids = Vec::new();
                    template_ids(spec.template.as_ref().unwrap(), &mut ids, &mut node_kinds);
                    for sub in &spec.sub_workflows {
                        template_ids(sub, &mut ids, &mut node_kinds);
                    }
                    for id in &ids {
                        assert_filled(id, &place);
                    }
                    // Every reference is one of the spec's ids; embedded sub-workflows are not references.
                    let subs: Vec<_> = spec.sub_workflows.iter().map(|s| s.id.clone().unwrap()).collect();
                    for r in &h.references {
                        assert!(ids.iter().any(|id| id.name == r.name && id.resource_type == r.resource_type));
                        assert!(!subs.iter().any(|s| s.name == r.name), "{place}: {r}");
                    }
                }
                Kind::LaunchPlan => {
                    let spec = admin::LaunchPlanSpec::decode(h.spec.as_slice()).unwrap();
                    let workflow = spec.workflow_id.as_ref().unwrap();
                    assert_filled(workflow, &place);
                    assert_eq!(h.references.len(), 1);
                    assert_eq!(h.references[0].name, workflow.name);
                    let auth = spec.auth_role.unwrap();
                    assert_eq!(auth.kubernetes_service_account, "flyte-dev");
                    assert_eq!(auth.assumable_iam_role, "arn:aws:iam::123:role/flyte-dev");
                    let run_as = spec.security_context.unwrap().run_as.unwrap();
                    assert_eq!(
                        (run_as.k8s_service_account.as_str(), run_as.iam_role.as_str()),
                        ("flyte-dev", auth.assumable_iam_role.as_str())
                    );
                    assert_eq!(spec.raw_output_data_config.unwrap().output_location_prefix, "s3://bucket/dev");
                    assert_eq!(spec.labels.unwrap().values["team"], "ml");
                    assert_eq!(spec.annotations.unwrap().values["owner"], "data");
                    let envs = spec.envs.unwrap().values;
                    assert_eq!((envs.len(), envs[0].key.as_str(), envs[0].value.as_str()), (1, "STAGE", "dev"));
                    if file.file_name.ends_with("training_nightly_3.pb") {
                        // LaunchPlanSpec.entity_metadata (2) → schedule → cron: bytes the bindings skip.
                        let metadata = wire::last_len(&h.spec, 2).unwrap().expect("entity_metadata");
                        assert!(metadata.windows(9).any(|w| w == b"0 2 * * *"), "the schedule is kept");
                    }
                }
            }
        }
    }
    // The nested package reached every kind of node that carries references.
    for kind in ["branch", "array", "failure", "sub-workflow ref", "launch plan ref", "task"] {
        assert!(node_kinds.get(kind).is_some_and(|n| *n > 0), "no {kind} node seen: {node_kinds:?}");
    }
}

#[test]
fn references_and_levels_of_the_nested_package() {
    let Some(packages) = packages() else { return };
    let hydrated = hydrate_all(&packages["nested"], &target(DomainSettings::default()));
    let names: Vec<String> = hydrated.iter().map(|h| format!("{}:{}", h.kind, h.id.name)).collect();
    let outer = hydrated.iter().find(|h| h.kind == Kind::Workflow && h.id.name == "nested.flows.outer").unwrap();
    let mut refs: Vec<String> = outer.references.iter().map(|r| r.to_string()).collect();
    refs.sort();
    let map_task = hydrated.iter().find(|h| h.id.name.ends_with("-arraynode")).unwrap();
    let mut expected = vec![
        "launch plan flytesnacks/development/inner_lp@v-3f2a".to_string(),
        "task flytesnacks/development/nested.flows.cleanup@v-3f2a".into(),
        "task flytesnacks/development/nested.flows.neg@v-3f2a".into(),
        "task flytesnacks/development/nested.flows.square@v-3f2a".into(),
        format!("task flytesnacks/development/{}@v-3f2a", map_task.id.name),
    ];
    expected.sort();
    assert_eq!(refs, expected, "the embedded sub-workflow `inner` is not a reference");

    // The order registration takes (`register::levels`, over the entities sent).
    let entities: Vec<register::Entity> = hydrated.iter().map(register::entity).collect();
    let (levels, cyclic) = register::levels(&entities);
    assert!(cyclic.is_empty());
    let level_names: Vec<Vec<&str>> = levels.iter().map(|l| l.iter().map(|&i| names[i].as_str()).collect()).collect();
    assert!(level_names[0].iter().all(|n| n.starts_with("task:")) && level_names[0].len() == 4, "{level_names:?}");
    let level_of = |name: &str| levels.iter().position(|l| l.iter().any(|&i| names[i] == name)).unwrap();
    assert_eq!(level_of("workflow:nested.flows.inner"), 1);
    assert_eq!(level_of("launch plan:inner_lp"), 2);
    assert_eq!(level_of("workflow:nested.flows.outer"), 3, "after the launch plan it calls: {level_names:?}");
    assert_eq!(level_of("launch plan:nested.flows.outer"), 4);
    // Every reference inside the package is registered at an earlier level.
    for (i, h) in hydrated.iter().enumerate() {
        for r in &h.references {
            if let Some(j) = hydrated.iter().position(|e| &e.id == r) {
                assert!(level_of(&names[j]) < level_of(&names[i]), "{} before {}", names[j], names[i]);
            }
        }
    }
    // The examples are the usual three levels.
    let hello = hydrate_all(&packages["hello"], &target(DomainSettings::default()));
    let (hello, cyclic) = register::levels(&hello.iter().map(register::entity).collect::<Vec<_>>());
    assert_eq!((hello, cyclic), (vec![vec![0, 1], vec![2], vec![3]], vec![]));
}

/// The paths (field numbers from the root) where `old` and `new` differ, as deep as both
/// sides have the same field layout.
fn differing_paths(old: &[u8], new: &[u8], path: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
    if old == new {
        return;
    }
    let (Ok(a), Ok(b)) = (wire::fields(old), wire::fields(new)) else {
        out.push(path.clone());
        return;
    };
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.number != y.number || x.wire_type != y.wire_type) {
        out.push(path.clone());
        return;
    }
    for (x, y) in a.iter().zip(&b) {
        if old[x.span.clone()] == new[y.span.clone()] {
            continue;
        }
        path.push(x.number);
        if x.wire_type == wire::WireType::Len {
            differing_paths(&old[x.value.clone()], &new[y.value.clone()], path, out);
        } else {
            out.push(path.clone());
        }
        path.pop();
    }
}

fn diff(old: &[u8], new: &[u8]) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    differing_paths(old, new, &mut Vec::new(), &mut out);
    out
}

/// Where hydration may change bytes, as path endings: identifiers (template ids, node
/// references) and container args.
fn allowed_change(kind: Kind, path: &[u32]) -> bool {
    let ends = |suffix: &[u32]| (1..=path.len()).any(|k| path[..k].ends_with(suffix));
    match kind {
        Kind::Task => path == [1, 1] || ends(&[1, 6, 3]),
        // template / sub-workflow id; task node ref; launch-plan and sub-workflow refs.
        Kind::Workflow => {
            path == [1, 1] || (path.len() == 2 && path == [2, 1]) || ends(&[6, 1]) || ends(&[7, 1]) || ends(&[7, 2])
        }
        Kind::LaunchPlan => path == [1],
    }
}

#[test]
fn only_identifiers_and_placeholders_change() {
    let Some(packages) = packages() else { return };
    let target = target(DomainSettings::default());
    for (name, package) in packages {
        for e in &package.entities {
            let h = hydrate::hydrate(e.kind, &e.bytes, &target).unwrap();
            let original = match e.kind {
                Kind::LaunchPlan => wire::last_len(&e.bytes, 2).unwrap().unwrap().to_vec(),
                _ => e.bytes.clone(),
            };
            let changed = diff(&original, &h.spec);
            assert!(!changed.is_empty(), "{name}/{}: nothing hydrated", e.file_name);
            for path in &changed {
                assert!(allowed_change(e.kind, path), "{name}/{}: bytes changed at {path:?}", e.file_name);
            }
            // Inside a changed identifier only project, domain and version are new.
            if e.kind == Kind::LaunchPlan {
                let old_id = wire::last_len(&e.bytes, 1).unwrap().unwrap();
                let mut kept = h.id_bytes.clone();
                for n in [2, 3, 5] {
                    kept = wire::remove(&kept, n).unwrap();
                }
                assert_eq!(kept, old_id, "{name}/{}: the id's other fields are untouched", e.file_name);
            }
        }
    }
}

#[test]
fn hydrating_twice_gives_the_same_bytes() {
    let Some(packages) = packages() else { return };
    let target = target(dev_settings());
    for package in packages.values() {
        for e in &package.entities {
            let once = hydrate::hydrate(e.kind, &e.bytes, &target).unwrap();
            let again_input = match e.kind {
                // A launch plan file is an admin.LaunchPlan: rebuild one around the hydrated spec.
                Kind::LaunchPlan => [wire::len_field(1, &once.id_bytes), wire::len_field(2, &once.spec)].concat(),
                _ => once.spec.clone(),
            };
            let twice = hydrate::hydrate(e.kind, &again_input, &target).unwrap();
            assert_eq!(twice, once, "{}", e.file_name);
            assert_eq!(hydrate::create_request(&twice), hydrate::create_request(&once));
        }
    }
}

fn find<'a>(package: &'a Package, suffix: &str) -> &'a [u8] {
    &package.entities.iter().find(|e| e.file_name.ends_with(suffix)).unwrap().bytes
}

/// Bytes of an unknown field: `field` with a length-delimited payload.
fn unknown(field: u32, payload: &[u8]) -> Vec<u8> {
    wire::len_field(field, payload)
}

#[test]
fn fields_the_crate_does_not_know_survive_byte_for_byte() {
    let Some(packages) = packages() else { return };
    let training = &packages["training"];

    // LaunchPlanSpec.cluster_assignment (23) and concurrency_policy (24: max = 1,
    // behavior = SKIP), appended to the real scheduled launch plan's spec.
    let cluster_assignment = unknown(23, &wire::len_field(3, b"gpu-pool"));
    let concurrency_policy = unknown(24, &[wire::varint_field(1, 1), wire::varint_field(2, 1)].concat());
    let lp_file = wire::edit_each(find(training, "training_nightly_3.pb"), 2, |spec| {
        Ok([spec, &cluster_assignment, &concurrency_policy].concat())
    })
    .unwrap();
    let original_spec = wire::last_len(&lp_file, 2).unwrap().unwrap().to_vec();
    for settings in [DomainSettings::default(), dev_settings()] {
        let h = hydrate::hydrate(Kind::LaunchPlan, &lp_file, &target(settings.clone())).unwrap();
        let fields = wire::fields(&h.spec).unwrap();
        let field = |n: u32| fields.iter().find(|f| f.number == n).map(|f| &h.spec[f.span.clone()]);
        assert_eq!(field(23), Some(cluster_assignment.as_slice()));
        assert_eq!(field(24), Some(concurrency_policy.as_slice()));
        // What the settings do not touch is byte for byte what pyflyte wrote.
        let strip = |spec: &[u8]| {
            let mut s = spec.to_vec();
            for n in [1, 6, 7, 9, 10, 17, 21] {
                s = wire::remove(&s, n).unwrap();
            }
            s
        };
        assert_eq!(strip(&h.spec), strip(&original_spec));
        // The request carries them too.
        let request = hydrate::create_request(&h);
        assert!(request.windows(concurrency_policy.len()).any(|w| w == concurrency_policy));
        // A prost round trip would have lost them: this is what the test guards against.
        let reencoded = admin::LaunchPlanSpec::decode(h.spec.as_slice()).unwrap().encode_to_vec();
        assert!(!wire::fields(&reencoded).unwrap().iter().any(|f| f.number == 23 || f.number == 24));
    }

    // TaskMetadata.is_eager (14) added to the real task, whose metadata already carries
    // generates_deck (15, a BoolValue the bindings do not declare either), plus an
    // unknown field inside the task's identifier and one at the top of the TaskSpec.
    let task_file = find(training, "training.train.vocabulary_1.pb");
    let edited = wire::edit_each(task_file, 1, |template| {
        let t = wire::edit_each(template, 3, |metadata| Ok([metadata, &wire::varint_field(14, 1)].concat()))?;
        wire::edit_each(&t, 1, |id| Ok([id, &unknown(40, b"id-extension")].concat()))
    })
    .unwrap();
    let edited = [edited, unknown(99, b"top-level")].concat();
    let metadata_of = |spec: &[u8]| {
        let template = wire::last_len(spec, 1).unwrap().unwrap().to_vec();
        wire::last_len(&template, 3).unwrap().unwrap().to_vec()
    };
    let before = metadata_of(&edited);
    assert!(wire::fields(&before).unwrap().iter().any(|f| f.number == 15), "pyflyte writes generates_deck");
    let h = hydrate::hydrate(Kind::Task, &edited, &target(dev_settings())).unwrap();
    assert_eq!(metadata_of(&h.spec), before, "TaskMetadata bytes intact");
    assert!(wire::fields(&before).unwrap().iter().any(|f| f.number == 14));
    assert!(h.spec.ends_with(&unknown(99, b"top-level")));
    let id = wire::last_len(&h.id_bytes, 40).unwrap();
    assert_eq!(id, Some(&b"id-extension"[..]), "unknown identifier field kept");
    assert_eq!(h.id.project, "flytesnacks");
    for path in diff(&edited, &h.spec) {
        assert!(allowed_change(Kind::Task, &path), "bytes changed at {path:?}");
    }
    let reencoded = admin::TaskSpec::decode(h.spec.as_slice()).unwrap().encode_to_vec();
    assert_ne!(metadata_of(&reencoded), before, "prost would have dropped is_eager and generates_deck");

    // ArrayNode.is_original_sub_node_interface (6), written by pyflyte and not declared by the
    // bindings, is kept (their decode→encode drops it).
    let outer = find(&packages["nested"], "nested.flows.outer_2.pb");
    let h = hydrate::hydrate(Kind::Workflow, outer, &target(DomainSettings::default())).unwrap();
    let array_fields = |spec: &[u8]| -> Vec<Vec<u8>> {
        let template = wire::last_len(spec, 1).unwrap().unwrap().to_vec();
        let mut out = Vec::new();
        for node in wire::all_len(&template, 4).unwrap() {
            for array in wire::all_len(node, 10).unwrap() {
                for f in wire::fields(array).unwrap().iter().filter(|f| f.number != 1) {
                    out.push(array[f.span.clone()].to_vec());
                }
            }
        }
        out
    };
    let kept = array_fields(&h.spec);
    assert_eq!(kept, array_fields(outer));
    assert!(kept.iter().any(|f| f[0] == (6 << 3 | 2)), "is_original_sub_node_interface present: {kept:?}");
    let reencoded = admin::WorkflowSpec::decode(h.spec.as_slice()).unwrap().encode_to_vec();
    assert_ne!(array_fields(&reencoded), kept, "prost would have dropped it");
}

#[test]
fn a_fast_task_without_code_url_is_refused() {
    let Some(packages) = packages() else { return };
    let mut t = target(DomainSettings::default());
    t.code_url = None;
    let err = hydrate::hydrate(Kind::Task, find(&packages["hello"], "greeting_1.pb"), &t).unwrap_err();
    assert!(format!("{err:#}").contains("no code archive URL"), "{err:#}");
}
