//! Real `pyflyte package` output (flytekit 1.16.31, `tests/fixtures`) decodes with these
//! bindings into what Flyte's own Python classes read from it, field by field; and
//! re-encoding it loses what the bindings leave out, which is why specs are edited on the
//! wire and never re-encoded.

use flyte_api::admin::{LaunchPlan, LaunchPlanState, TaskSpec, WorkflowSpec};
use flyte_api::core::{if_else_block, node, task_node, task_template, workflow_node, Node, WorkflowTemplate};
use flyte_api::{wire, Identifier, Kind, Message};

const TASK: &[u8] = include_bytes!("fixtures/0_training.train.vocabulary_1.pb");
const WORKFLOW: &[u8] = include_bytes!("fixtures/7_nested.flows.outer_2.pb");
const LAUNCH_PLAN: &[u8] = include_bytes!("fixtures/4_training_nightly_3.pb");

/// An identifier as pyflyte writes it: kind and name, registration fills the rest.
fn bare(kind: Kind, name: &str) -> Identifier {
    Identifier::new(kind, "", "", name, "")
}

#[test]
fn task_spec() {
    let spec = TaskSpec::decode(TASK).unwrap();
    let template = spec.template.unwrap();
    assert_eq!(template.id, Some(bare(Kind::Task, "training.train.vocabulary")));
    let metadata = template.metadata.unwrap();
    assert!(!metadata.discoverable);
    assert_eq!(metadata.runtime.unwrap().version, "1.16.31", "the flytekit that wrote it");
    let Some(task_template::Target::Container(container)) = template.target else { panic!("a container task") };
    assert_eq!(container.image, "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31");
    assert_eq!(
        container.args[..6],
        [
            "pyflyte-fast-execute",
            "--additional-distribution",
            "{{ .remote_package_path }}",
            "--dest-dir",
            "/root",
            "--"
        ]
    );
    assert_eq!(container.args.len(), 24);
    assert_eq!(container.args.last().map(String::as_str), Some("vocabulary"));
}

/// The references of a node, each with what kind of node or case holds it, depth first.
fn references(node: &Node, place: &str, out: &mut Vec<(String, Identifier)>) {
    match node.target.as_ref().expect("every node of the fixture has a target") {
        node::Target::TaskNode(t) => {
            let Some(task_node::Reference::ReferenceId(id)) = &t.reference else { panic!("{place}: no task") };
            out.push((format!("{place}task"), id.clone()));
        }
        node::Target::WorkflowNode(w) => match w.reference.as_ref().unwrap() {
            workflow_node::Reference::LaunchplanRef(id) => out.push((format!("{place}launch plan"), id.clone())),
            workflow_node::Reference::SubWorkflowRef(id) => out.push((format!("{place}sub-workflow"), id.clone())),
        },
        node::Target::BranchNode(b) => {
            let block = b.if_else.as_ref().unwrap();
            references(block.case.as_ref().unwrap().then_node.as_ref().unwrap(), "if ", out);
            for other in &block.other {
                references(other.then_node.as_ref().unwrap(), "elif ", out);
            }
            let Some(if_else_block::Default::ElseNode(otherwise)) = &block.default else { panic!("no else") };
            references(otherwise, "else ", out);
        }
        node::Target::ArrayNode(a) => references(a.node.as_ref().unwrap(), "array ", out),
        node::Target::GateNode(_) => panic!("{place}: the fixture has no gate node"),
    }
}

fn template_references(template: &WorkflowTemplate) -> Vec<(String, Identifier)> {
    let mut out = Vec::new();
    for node in &template.nodes {
        references(node, "", &mut out);
    }
    if let Some(failure) = &template.failure_node {
        references(failure, "failure ", &mut out);
    }
    out
}

#[test]
fn workflow_spec() {
    let spec = WorkflowSpec::decode(WORKFLOW).unwrap();
    let template = spec.template.unwrap();
    assert_eq!(template.id, Some(bare(Kind::Workflow, "nested.flows.outer")));
    let ids: Vec<&str> = template.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["n0", "n1", "n2"]);
    assert_eq!(template.failure_node.as_ref().unwrap().id, "fn0");
    let map = "nested.flows.map_square_6b3bd0353da5de6e84d7982921ead2b3-arraynode";
    let expected = [
        ("if task", bare(Kind::Task, "nested.flows.square")),
        ("elif sub-workflow", bare(Kind::Workflow, "nested.flows.inner")),
        ("else task", bare(Kind::Task, "nested.flows.neg")),
        ("array task", bare(Kind::Task, map)),
        ("launch plan", bare(Kind::LaunchPlan, "inner_lp")),
        ("failure task", bare(Kind::Task, "nested.flows.cleanup")),
    ];
    let found = template_references(&template);
    assert_eq!(found, expected.map(|(place, id)| (place.to_string(), id)));
    assert_eq!(spec.sub_workflows.len(), 1);
    let sub = &spec.sub_workflows[0];
    assert_eq!(sub.id, Some(bare(Kind::Workflow, "nested.flows.inner")));
    assert_eq!(template_references(sub), [("task".to_string(), bare(Kind::Task, "nested.flows.square"))]);
}

#[test]
fn launch_plan() {
    let plan = LaunchPlan::decode(LAUNCH_PLAN).unwrap();
    assert_eq!(plan.id, Some(bare(Kind::LaunchPlan, "training_nightly")));
    let spec = plan.spec.unwrap();
    assert_eq!(spec.workflow_id, Some(bare(Kind::Workflow, "training.train.training_wf")));
    // pyflyte writes empty labels, annotations and output config, and no roles.
    assert!(spec.labels.unwrap().values.is_empty());
    assert!(spec.annotations.unwrap().values.is_empty());
    assert_eq!(spec.raw_output_data_config.unwrap().output_location_prefix, "");
    assert_eq!((spec.auth_role, spec.security_context, spec.envs), (None, None, None));
    let closure = plan.closure.unwrap();
    assert_eq!(closure.state(), LaunchPlanState::Inactive);
}

#[test]
fn re_encoding_loses_what_the_bindings_leave_out() {
    // The task's custom settings and retries, the workflow's node metadata: written by
    // pyflyte, not declared here.
    let task = TaskSpec::decode(TASK).unwrap().encode_to_vec();
    let workflow = WorkflowSpec::decode(WORKFLOW).unwrap().encode_to_vec();
    for (name, original, again) in [("task", TASK, task), ("workflow", WORKFLOW, workflow)] {
        assert!(again.len() < original.len(), "{name}: {} → {} bytes", original.len(), again.len());
    }
    // LaunchPlan.closure (3): pyflyte writes its expected inputs and outputs (2 and 3),
    // which are declared (the sandbox answers them), so they survive.
    let closure_fields = |plan: &[u8]| -> Vec<u32> {
        let closure = wire::last_len(plan, 3).unwrap().unwrap();
        wire::fields(closure).unwrap().iter().map(|f| f.number).collect()
    };
    assert_eq!(closure_fields(LAUNCH_PLAN), [2, 3]);
    let again = LaunchPlan::decode(LAUNCH_PLAN).unwrap().encode_to_vec();
    assert_eq!(closure_fields(&again), [2, 3]);
}
