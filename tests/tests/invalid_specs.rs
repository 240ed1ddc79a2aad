//! The sandbox refuses what FlyteAdmin refuses, with FlyteAdmin's code and message, and
//! accepts what it accepts: a table of specs built with prost and created over real gRPC
//! against a sandbox on loopback, each case naming in a comment the FlyteAdmin (or
//! flytepropeller compiler) rule it mirrors; and what the real pyflyte writes for every kind
//! of node, type and launch plan registers.

use flyte_api::core::{self, literal_type::Type, Identifier, LiteralType};
use flyte_api::{admin, wire, Kind, Message};
use flyte_deploy::artifacts::specs;
use flyte_deploy::registration::admin::{Admin, Created};
use flyte_deploy::registration::hydrate::Target;
use flyte_deploy::registration::register::{self, Archive, Options};
use flyte_sandbox as sandbox;
use tonic::Code;

const PROJECT: &str = "flytesnacks";
const DOMAIN: &str = "development";
const VERSION: &str = "v1";

fn id(kind: Kind, name: &str) -> Identifier {
    Identifier::new(kind, PROJECT, DOMAIN, name, VERSION)
}

/// An identifier as FlyteAdmin's messages print it (Go's protobuf text form).
fn text(kind: Kind, name: &str) -> String {
    format!(
        "resource_type:{} project:\"{PROJECT}\" domain:\"{DOMAIN}\" name:\"{name}\" version:\"{VERSION}\"",
        kind.proto_name()
    )
}

fn simple(value: i32) -> LiteralType {
    LiteralType { r#type: Some(Type::Simple(value)), ..Default::default() }
}
const NONE: i32 = 0;
const INTEGER: i32 = 1;
const STRING: i32 = 3;
const DATETIME: i32 = 5;
fn int() -> LiteralType {
    simple(INTEGER)
}
fn string() -> LiteralType {
    simple(STRING)
}
fn list(t: LiteralType) -> LiteralType {
    LiteralType { r#type: Some(Type::CollectionType(Box::new(t))), ..Default::default() }
}
fn map(t: LiteralType) -> LiteralType {
    LiteralType { r#type: Some(Type::MapValueType(Box::new(t))), ..Default::default() }
}
fn union(variants: Vec<LiteralType>) -> LiteralType {
    LiteralType { r#type: Some(Type::UnionType(core::UnionType { variants })), ..Default::default() }
}
fn enumeration(values: &[&str]) -> LiteralType {
    let values = values.iter().map(|v| v.to_string()).collect();
    LiteralType { r#type: Some(Type::EnumType(core::EnumType { values })), ..Default::default() }
}
fn blob(format: &str) -> LiteralType {
    LiteralType {
        r#type: Some(Type::Blob(core::BlobType { format: format.into(), dimensionality: 0 })),
        ..Default::default()
    }
}

/// A dataclass `Point(x: int)` as flytekit types it: STRUCT, with its fields' types.
fn point() -> LiteralType {
    let structure = core::TypeStructure { tag: String::new(), dataclass_type: [("x".to_string(), int())].into() };
    LiteralType { structure: Some(structure), ..simple(9) }
}

fn variables(vars: &[(&str, LiteralType)]) -> Option<core::VariableMap> {
    let variables = vars
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), description: String::new() }))
        .collect();
    Some(core::VariableMap { variables })
}

fn interface(inputs: &[(&str, LiteralType)], outputs: &[(&str, LiteralType)]) -> Option<core::TypedInterface> {
    Some(core::TypedInterface { inputs: variables(inputs), outputs: variables(outputs) })
}

/// A task template as pyflyte writes one: type, metadata with the SDK version, interface,
/// a container.
fn template(name: &str, inputs: &[(&str, LiteralType)], outputs: &[(&str, LiteralType)]) -> core::TaskTemplate {
    core::TaskTemplate {
        id: Some(id(Kind::Task, name)),
        r#type: "python-task".into(),
        metadata: Some(core::TaskMetadata {
            runtime: Some(core::RuntimeMetadata { version: "1.16.31".into() }),
            ..Default::default()
        }),
        interface: interface(inputs, outputs),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: vec!["pyflyte-execute".into()],
            ..Default::default()
        })),
    }
}

fn task_spec(template: core::TaskTemplate) -> Vec<u8> {
    admin::TaskSpec { template: Some(template) }.encode_to_vec()
}

fn resources(requests: &[(i32, &str)], limits: &[(i32, &str)]) -> core::TaskTemplate {
    let entries = |e: &[(i32, &str)]| {
        e.iter().map(|(name, value)| core::ResourceEntry { name: *name, value: value.to_string() }).collect()
    };
    let mut t = template("t.resources", &[], &[]);
    if let Some(core::task_template::Target::Container(c)) = &mut t.target {
        c.resources = Some(core::Resources { requests: entries(requests), limits: entries(limits) });
    }
    t
}
const CPU: i32 = 1;
const GPU: i32 = 2;
const MEMORY: i32 = 3;

fn scalar(value: core::primitive::Value) -> core::BindingData {
    let primitive = core::Primitive { value: Some(value) };
    let scalar = core::Scalar { value: Some(core::scalar::Value::Primitive(primitive)) };
    core::BindingData { value: Some(core::binding_data::Value::Scalar(scalar)) }
}
fn int_value(i: i64) -> core::BindingData {
    scalar(core::primitive::Value::Integer(i))
}
fn str_value(s: &str) -> core::BindingData {
    scalar(core::primitive::Value::StringValue(s.into()))
}
fn promise(node: &str, var: &str) -> core::BindingData {
    let reference = core::OutputReference { node_id: node.into(), var: var.into(), attr_path: vec![] };
    core::BindingData { value: Some(core::binding_data::Value::Promise(reference)) }
}
/// `data` (a promise) with `field` read from it, as flytekit writes `p.field`.
fn attribute(mut data: core::BindingData, field: &str) -> core::BindingData {
    if let Some(core::binding_data::Value::Promise(p)) = &mut data.value {
        let value = Some(core::promise_attribute::Value::StringValue(field.into()));
        p.attr_path.push(core::PromiseAttribute { value });
    }
    data
}

fn collection(items: Vec<core::BindingData>) -> core::BindingData {
    let collection = core::BindingDataCollection { bindings: items };
    core::BindingData { value: Some(core::binding_data::Value::Collection(collection)) }
}
fn map_of(items: &[(&str, core::BindingData)]) -> core::BindingData {
    let bindings = items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    core::BindingData { value: Some(core::binding_data::Value::Map(core::BindingDataMap { bindings })) }
}
fn bind(var: &str, data: core::BindingData) -> core::Binding {
    core::Binding { var: var.into(), binding: Some(data) }
}

fn task_node(node: &str, task: &str, inputs: Vec<core::Binding>, upstream: &[&str]) -> core::Node {
    core::Node {
        id: node.into(),
        inputs,
        upstream_node_ids: upstream.iter().map(|s| s.to_string()).collect(),
        target: Some(core::node::Target::TaskNode(core::TaskNode {
            reference: Some(core::task_node::Reference::ReferenceId(id(Kind::Task, task))),
        })),
        ..Default::default()
    }
}

/// A WorkflowSpec of `nodes`, with an interface and output bindings.
fn workflow(
    name: &str,
    inputs: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
    nodes: Vec<core::Node>,
    bound: Vec<core::Binding>,
) -> Vec<u8> {
    let template = core::WorkflowTemplate {
        id: Some(id(Kind::Workflow, name)),
        interface: interface(inputs, outputs),
        nodes,
        outputs: bound,
        failure_node: None,
    };
    admin::WorkflowSpec { template: Some(template), sub_workflows: vec![] }.encode_to_vec()
}

/// A workflow of one node running `task` with `inputs`.
fn one_node(name: &str, task: &str, inputs: Vec<core::Binding>) -> Vec<u8> {
    workflow(name, &[("x", int())], &[], vec![task_node("n0", task, inputs, &[])], vec![])
}

fn launch_plan_node(node: &str, plan: &str, inputs: Vec<core::Binding>) -> core::Node {
    core::Node {
        id: node.into(),
        inputs,
        target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
            reference: Some(core::workflow_node::Reference::LaunchplanRef(id(Kind::LaunchPlan, plan))),
        })),
        ..Default::default()
    }
}

fn array_node(node: &str, inner: core::Node, inputs: Vec<core::Binding>) -> core::Node {
    core::Node {
        id: node.into(),
        inputs,
        target: Some(core::node::Target::ArrayNode(Box::new(core::ArrayNode {
            node: Some(inner),
            ..Default::default()
        }))),
        ..Default::default()
    }
}

fn signal_node(node: &str, output: &str, kind: LiteralType) -> core::Node {
    let signal = core::SignalCondition { r#type: Some(kind), output_variable_name: output.into() };
    core::Node {
        id: node.into(),
        target: Some(core::node::Target::GateNode(core::GateNode {
            condition: Some(core::gate_node::Condition::Signal(signal)),
        })),
        ..Default::default()
    }
}

/// `var > value`, as flytekit writes a condition (a variable the branch node binds, a
/// primitive).
fn greater(var: &str, value: core::primitive::Value) -> core::BooleanExpression {
    let operand = |val| Some(core::Operand { val: Some(val) });
    let comparison = core::ComparisonExpression {
        operator: 2,
        left_value: operand(core::operand::Val::Var(var.into())),
        right_value: operand(core::operand::Val::Primitive(core::Primitive { value: Some(value) })),
    };
    core::BooleanExpression { expr: Some(core::boolean_expression::Expr::Comparison(comparison)) }
}

/// A branch node `b0` binding `.x` from the workflow's input `x`: if `condition` then `then`,
/// else `otherwise` (or no else).
fn branch_node(
    condition: Option<core::BooleanExpression>,
    then: core::Node,
    otherwise: Option<core::Node>,
) -> core::Node {
    core::Node {
        id: "b0".into(),
        inputs: vec![bind(".x", promise("", "x"))],
        target: Some(core::node::Target::BranchNode(Box::new(core::BranchNode {
            if_else: Some(core::IfElseBlock {
                case: Some(core::IfBlock { condition, then_node: Some(then) }),
                other: vec![],
                default: otherwise.map(core::if_else_block::Default::ElseNode),
            }),
        }))),
        ..Default::default()
    }
}

/// A workflow `name` whose node `n0` runs the embedded sub-workflow `wf.inner` (taking `x: int`,
/// giving nothing), whose own node `s0` runs `t.int_to_str` with `inner_binding`.
fn with_sub_workflow(name: &str, inner_binding: core::BindingData) -> Vec<u8> {
    let inner = core::WorkflowTemplate {
        id: Some(id(Kind::Workflow, "wf.inner")),
        interface: interface(&[("x", int())], &[]),
        nodes: vec![task_node("s0", "t.int_to_str", vec![bind("x", inner_binding)], &[])],
        ..Default::default()
    };
    let primary = core::WorkflowTemplate {
        id: Some(id(Kind::Workflow, name)),
        interface: interface(&[("x", int())], &[]),
        nodes: vec![core::Node {
            id: "n0".into(),
            inputs: vec![bind("x", promise("", "x"))],
            target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                reference: Some(core::workflow_node::Reference::SubWorkflowRef(id(Kind::Workflow, "wf.inner"))),
            })),
            ..Default::default()
        }],
        ..Default::default()
    };
    admin::WorkflowSpec { template: Some(primary), sub_workflows: vec![inner] }.encode_to_vec()
}

fn literal(value: core::primitive::Value) -> core::Literal {
    let primitive = core::Primitive { value: Some(value) };
    let scalar = core::Scalar { value: Some(core::scalar::Value::Primitive(primitive)) };
    core::Literal { value: Some(core::literal::Value::Scalar(Box::new(scalar))) }
}

fn required(t: LiteralType) -> core::Parameter {
    core::Parameter {
        var: Some(core::Variable { r#type: Some(t), description: String::new() }),
        behavior: Some(core::parameter::Behavior::Required(true)),
    }
}

fn defaulted(t: LiteralType, value: core::Literal) -> core::Parameter {
    core::Parameter {
        var: Some(core::Variable { r#type: Some(t), description: String::new() }),
        behavior: Some(core::parameter::Behavior::Default(value)),
    }
}

/// A launch plan of `workflow` as pyflyte writes one: every workflow input among the
/// default inputs.
fn launch_plan(workflow: &str, edit: impl FnOnce(&mut admin::LaunchPlanSpec)) -> Vec<u8> {
    let mut spec = admin::LaunchPlanSpec { workflow_id: Some(id(Kind::Workflow, workflow)), ..Default::default() };
    edit(&mut spec);
    spec.encode_to_vec()
}

fn cron(spec: &mut admin::LaunchPlanSpec, kickoff: &str) {
    let schedule = admin::Schedule {
        expression: Some(admin::schedule::Expression::CronSchedule(admin::CronSchedule {
            schedule: "0 * * * *".into(),
            offset: String::new(),
        })),
        kickoff_time_input_arg: kickoff.into(),
    };
    spec.entity_metadata = Some(admin::LaunchPlanMetadata { schedule: Some(schedule) });
}

fn defaults(spec: &mut admin::LaunchPlanSpec, parameters: Vec<(&str, core::Parameter)>) {
    let parameters = parameters.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
    spec.default_inputs = Some(core::ParameterMap { parameters });
}

fn fixed(spec: &mut admin::LaunchPlanSpec, literals: Vec<(&str, core::Literal)>) {
    let literals = literals.into_iter().map(|(n, l)| (n.to_string(), l)).collect();
    spec.fixed_inputs = Some(core::LiteralMap { literals });
}

fn labels(spec: &mut admin::LaunchPlanSpec, values: &[(&str, &str)]) {
    let values = values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    spec.labels = Some(admin::Labels { values });
}

fn create_request(id: &Identifier, spec: &[u8]) -> Vec<u8> {
    let mut out = wire::len_field(1, &id.encode_to_vec());
    out.extend(wire::len_field(2, spec));
    out
}

/// FlyteAdmin's message for a workflow that does not compile: the request id, then
/// flytepropeller's errors, sorted by code and text.
fn compile_error(workflow: &str, errors: &[&str]) -> String {
    let mut out = format!(
        "failed to compile workflow for [{}] with err: Collected Errors: {}\n",
        text(Kind::Workflow, workflow),
        errors.len()
    );
    for (i, e) in errors.iter().enumerate() {
        out.push_str(&format!("\tError {i}: {e}\n"));
    }
    out
}

enum Expect {
    Accepted,
    Refused(Code, String),
}
use Expect::{Accepted, Refused};

fn invalid(message: impl Into<String>) -> Expect {
    Refused(Code::InvalidArgument, message.into())
}

struct Case {
    name: &'static str,
    kind: Kind,
    /// The identifier of the create request.
    id: Identifier,
    spec: Vec<u8>,
    expect: Expect,
}

/// A case creating `entity` (at [`VERSION`]).
fn case(name: &'static str, kind: Kind, entity: &'static str, spec: Vec<u8>, expect: Expect) -> Case {
    Case { name, kind, id: id(kind, entity), spec, expect }
}

/// The tasks and workflows the cases use, registered first.
fn fixtures() -> Vec<(Kind, &'static str, Vec<u8>)> {
    let opt_int = union(vec![int(), simple(NONE)]);
    vec![
        (Kind::Task, "t.int_to_str", task_spec(template("t.int_to_str", &[("x", int())], &[("o0", string())]))),
        (Kind::Task, "t.str_to_int", task_spec(template("t.str_to_int", &[("s", string())], &[("o0", int())]))),
        (Kind::Task, "t.ints", task_spec(template("t.ints", &[("xs", list(int()))], &[]))),
        (Kind::Task, "t.optional", task_spec(template("t.optional", &[("x", opt_int)], &[]))),
        (Kind::Task, "t.color", task_spec(template("t.color", &[("c", enumeration(&["red", "green"]))], &[]))),
        (Kind::Task, "t.csv", task_spec(template("t.csv", &[("f", blob("csv"))], &[]))),
        (
            Kind::Task,
            "t.lists",
            task_spec(template("t.lists", &[("u", union(vec![list(int()), list(string())]))], &[])),
        ),
        (Kind::Task, "t.counts", task_spec(template("t.counts", &[("m", map(int()))], &[]))),
        (Kind::Task, "t.point", task_spec(template("t.point", &[], &[("o0", point())]))),
        (Kind::Task, "t.parquet", task_spec(template("t.parquet", &[], &[("o0", blob("parquet"))]))),
        (
            Kind::Workflow,
            "wf.base",
            workflow(
                "wf.base",
                &[("x", int()), ("when", simple(DATETIME))],
                &[("o", string())],
                vec![task_node("n0", "t.int_to_str", vec![bind("x", promise("start-node", "x"))], &[])],
                vec![bind("o", promise("n0", "o0"))],
            ),
        ),
        (
            Kind::LaunchPlan,
            "lp.base",
            launch_plan("wf.base", |s| defaults(s, vec![("x", required(int())), ("when", required(simple(DATETIME)))])),
        ),
        (
            Kind::Workflow,
            "wf.no_inputs",
            workflow(
                "wf.no_inputs",
                &[],
                &[],
                vec![task_node("n0", "t.int_to_str", vec![bind("x", int_value(1))], &[])],
                vec![],
            ),
        ),
    ]
}

fn cases() -> Vec<Case> {
    use core::primitive::Value as P;
    let (w, t, l) = (Kind::Workflow, Kind::Task, Kind::LaunchPlan);
    let x_from_start = || vec![bind("x", promise("start-node", "x"))];
    vec![
        // --- CreateWorkflow: flyteadmin's workflow manager and flytepropeller's compiler ---

        // Accepted: a workflow input passed to a task, the task's output to the workflow's.
        case("a well-formed workflow", w, "wf.ok", workflow("wf.ok", &[("x", int())], &[("o", string())], vec![task_node("n0", "t.int_to_str", x_from_start(), &[])], vec![bind("o", promise("n0", "o0"))]), Accepted),
        // workflow_manager.getCompiledWorkflow: every launch plan a node launches is read
        // from the store first; a missing one fails the compile with the store's message.
        case("a missing launch plan", w, "wf.lp", workflow("wf.lp", &[], &[], vec![core::Node {
            id: "n0".into(),
            target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                reference: Some(core::workflow_node::Reference::LaunchplanRef(id(Kind::LaunchPlan, "lp.nowhere"))),
            })),
            ..Default::default()
        }], vec![]), invalid(format!(
            "failed to compile workflow for [{}] with err: missing entity of type LAUNCH_PLAN with identifier project:\"{PROJECT}\" domain:\"{DOMAIN}\" name:\"lp.nowhere\" version:\"{VERSION}\"",
            text(w, "wf.lp")
        ))),
        // compiler.GetRequirements: a sub-workflow must be embedded in the spec
        // (WorkflowReferenceNotFound).
        case("a sub-workflow not in the spec", w, "wf.sub", workflow("wf.sub", &[], &[], vec![core::Node {
            id: "n0".into(),
            target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                reference: Some(core::workflow_node::Reference::SubWorkflowRef(id(Kind::Workflow, "wf.elsewhere"))),
            })),
            ..Default::default()
        }], vec![]), invalid(compile_error("wf.sub", &[&format!(
            "Code: WorkflowReferenceNotFound, Node Id: n0, Description: Referenced Workflow [{}] not found.",
            text(w, "wf.elsewhere")
        )]))),
        // workflow_compiler.ValidateWorkflow: a workflow has nodes (NoNodesFound).
        case("no nodes", w, "wf.empty", workflow("wf.empty", &[("x", int())], &[("o", int())], vec![], vec![bind("o", promise("start-node", "x"))]), invalid(compile_error("wf.empty", &[&format!(
            "Code: NoNodesFound, Node Id: {0}, Description: Can't find any nodes in workflow [{0}].",
            text(w, "wf.empty")
        )]))),
        // validators.validateBinding (scalar): a literal's type must cast to the input's
        // (MismatchingTypes).
        case("an int bound to a str input", w, "wf.int_to_str", one_node("wf.int_to_str", "t.str_to_int", vec![bind("s", int_value(3))]), invalid(compile_error("wf.int_to_str", &[
            "Code: MismatchingTypes, Node Id: n0, Description: Variable [s] (type [simple:INTEGER]) doesn't match expected type [simple:STRING].",
        ]))),
        // validators.validateBinding (promise): an upstream output's type must cast to the
        // input's (MismatchingTypes, with the variables named).
        case("a str output bound to an int input", w, "wf.chain", workflow("wf.chain", &[("x", int())], &[], vec![
            task_node("n0", "t.int_to_str", x_from_start(), &[]),
            task_node("n1", "t.int_to_str", vec![bind("x", promise("n0", "o0"))], &[]),
        ], vec![]), invalid(compile_error("wf.chain", &[
            "Code: MismatchingTypes, Node Id: n1, Description: The output variable 'o0' has type [simple:STRING], but it's assigned to the input variable 'x' which has type type [simple:INTEGER].",
        ]))),
        // validators.validateNodeID: a binding's node must be a node of the workflow
        // (NodeReferenceNotFound, and the input is then not bound).
        case("a binding to a node that does not exist", w, "wf.ghost", one_node("wf.ghost", "t.int_to_str", vec![bind("x", promise("n9", "o0"))]), invalid(compile_error("wf.ghost", &[
            "Code: NodeReferenceNotFound, Node Id: n9, Description: Referenced node [n9] not found.",
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [x].",
        ]))),
        // validators.validateOutputVar: the upstream node has that output
        // (VariableNameNotFound).
        case("a binding to an output that does not exist", w, "wf.no_output", one_node("wf.no_output", "t.int_to_str", vec![bind("x", promise("start-node", "y"))]), invalid(compile_error("wf.no_output", &[
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [x].",
            "Code: VariableNameNotFound, Node Id: start-node, Description: Variable [y] not found on node [start-node].",
        ]))),
        // validators.ValidateBindings: every binding names an input of the node
        // (VariableNameNotFound), each input is bound once (ParameterBoundMoreThanOnce)
        // and every required one is bound (ParameterNotBound).
        case("a binding to an input the task does not have", w, "wf.extra", one_node("wf.extra", "t.int_to_str", vec![bind("x", int_value(1)), bind("z", int_value(2))]), invalid(compile_error("wf.extra", &[
            "Code: VariableNameNotFound, Node Id: n0, Description: Variable [z] not found on node [n0].",
        ]))),
        case("an input bound twice", w, "wf.twice", one_node("wf.twice", "t.int_to_str", vec![bind("x", int_value(1)), bind("x", int_value(2))]), invalid(compile_error("wf.twice", &[
            "Code: ParameterBoundMoreThanOnce, Node Id: n0, Description: Input [x] is bound more than once.",
        ]))),
        case("a required input left unbound", w, "wf.unbound", one_node("wf.unbound", "t.int_to_str", vec![]), invalid(compile_error("wf.unbound", &[
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [x].",
        ]))),
        // validators.IsOptionalType: an Optional input may stay unbound; an int binds to it.
        case("an optional input left unbound", w, "wf.optional_unbound", one_node("wf.optional_unbound", "t.optional", vec![]), Accepted),
        case("an int bound to an optional int", w, "wf.optional_int", one_node("wf.optional_int", "t.optional", x_from_start()), Accepted),
        // workflow_compiler.ValidateWorkflow: the end node's inputs are the workflow's
        // outputs; each must be bound, with the right type.
        case("a workflow output left unbound", w, "wf.no_out", workflow("wf.no_out", &[("x", int())], &[("o", string())], vec![task_node("n0", "t.int_to_str", x_from_start(), &[])], vec![]), invalid(compile_error("wf.no_out", &[
            "Code: ParameterNotBound, Node Id: end-node, Description: Parameter not bound [o].",
        ]))),
        case("a workflow output of the wrong type", w, "wf.bad_out", workflow("wf.bad_out", &[("x", int())], &[("o", int())], vec![task_node("n0", "t.int_to_str", x_from_start(), &[])], vec![bind("o", promise("n0", "o0"))]), invalid(compile_error("wf.bad_out", &[
            "Code: MismatchingTypes, Node Id: end-node, Description: The output variable 'o0' has type [simple:STRING], but it's assigned to the input variable 'o' which has type type [simple:INTEGER].",
        ]))),
        // workflow_compiler.validateReachable: no cycle from the start node (CycleDetected).
        case("a cycle", w, "wf.cycle", workflow("wf.cycle", &[("x", int())], &[], vec![
            task_node("n0", "t.int_to_str", x_from_start(), &["n1"]),
            task_node("n1", "t.int_to_str", x_from_start(), &["n0"]),
        ], vec![]), invalid(compile_error("wf.cycle", &[
            "Code: CycleDetected, Node Id: start-node, Description: A cycle has been detected while traversing the Workflow [start-node>n0>n1>n0].",
        ]))),
        // workflow_compiler.validateReachable: an explicit upstream node that is not in the
        // workflow leaves the node unreached (UnreachableNodes).
        case("an upstream node that does not exist", w, "wf.orphan", workflow("wf.orphan", &[], &[], vec![
            task_node("n0", "t.int_to_str", vec![bind("x", int_value(1))], &["n9"]),
        ], vec![]), invalid(compile_error("wf.orphan", &[
            "Code: UnreachableNodes, Node Id: start-node, Description: The Workflow contain unreachable nodes [n0].",
        ]))),
        // validators.validateBinding (collection): a list binding needs a list input
        // (MismatchingBindings) and its items the element type.
        case("a list bound to an int input", w, "wf.list_to_int", one_node("wf.list_to_int", "t.int_to_str", vec![bind("x", collection(vec![int_value(1)]))]), invalid(compile_error("wf.list_to_int", &[
            "Code: MismatchingBindings, Node Id: n0, Description: Input [x] on node [n0] expects bindings of type [simple:INTEGER].  Received [bindings:{scalar:{primitive:{integer:1}}}]",
        ]))),
        case("a list of strings bound to a list of ints", w, "wf.strs", one_node("wf.strs", "t.ints", vec![bind("xs", collection(vec![int_value(1), str_value("two")]))]), invalid(compile_error("wf.strs", &[
            "Code: MismatchingTypes, Node Id: n0, Description: Variable [xs] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        case("a list of ints and a workflow input", w, "wf.ints", one_node("wf.ints", "t.ints", vec![bind("xs", collection(vec![int_value(1), promise("start-node", "x")]))]), Accepted),
        // validators.validateBinding (map): a map binding's values have the map's type.
        case("a map of ints", w, "wf.counts", one_node("wf.counts", "t.counts", vec![bind("m", map_of(&[("a", int_value(1)), ("b", promise("", "x"))]))]), Accepted),
        case("a map of strings bound to a map of ints", w, "wf.bad_counts", one_node("wf.bad_counts", "t.counts", vec![bind("m", map_of(&[("a", str_value("one"))]))]), invalid(compile_error("wf.bad_counts", &[
            "Code: MismatchingTypes, Node Id: n0, Description: Variable [m] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        // validators.validateBinding (scalar to an enum): the value is one of the enum's.
        case("an enum value it has", w, "wf.red", one_node("wf.red", "t.color", vec![bind("c", str_value("red"))]), Accepted),
        case("an enum value it does not have", w, "wf.blue", one_node("wf.blue", "t.color", vec![bind("c", str_value("blue"))]), invalid(compile_error("wf.blue", &[
            "Code: IllegalEnumValue, Node Id: n0, Description: Input [c] on node [n0] is an Enum and expects value to be one of [[red green]].  Received [blue]",
        ]))),
        // validators.blobTypeChecker: a blob of another format does not bind, a string
        // does not bind to a blob.
        case("a string bound to a blob", w, "wf.blob", one_node("wf.blob", "t.csv", vec![bind("f", str_value("s3://x.csv"))]), invalid(compile_error("wf.blob", &[
            "Code: MismatchingTypes, Node Id: n0, Description: Variable [f] (type [simple:STRING]) doesn't match expected type [blob:{format:\"csv\"}].",
        ]))),
        // validators.validateBinding (collection to a union): exactly one variant takes it.
        case("a list of ints bound to list[int] | list[str]", w, "wf.union", one_node("wf.union", "t.lists", vec![bind("u", collection(vec![int_value(1)]))]), Accepted),
        case("an empty list bound to list[int] | list[str]", w, "wf.ambiguous", one_node("wf.ambiguous", "t.lists", vec![bind("u", collection(vec![]))]), invalid(compile_error("wf.ambiguous", &[
            "Code: AmbiguousBindingUnionValue, Node Id: n0, Description: Input [u] on node [n0] expects bindings of union type [union_type:{variants:{collection_type:{simple:INTEGER}} variants:{collection_type:{simple:STRING}}}].  Received [collection:{}] which is ambiguous as both variants [collection_type:{simple:INTEGER}] and [collection_type:{simple:STRING}] match.",
        ]))),
        case("a map bound to list[int] | list[str]", w, "wf.no_variant", one_node("wf.no_variant", "t.lists", vec![bind("u", map_of(&[("a", int_value(1))]))]), invalid(compile_error("wf.no_variant", &[
            "Code: IncompatibleBindingUnionValue, Node Id: n0, Description: Input [u] on node [n0] expects bindings of union type [union_type:{variants:{collection_type:{simple:INTEGER}} variants:{collection_type:{simple:STRING}}}].  Received [map:{bindings:{key:\"a\" value:{scalar:{primitive:{integer:1}}}}}] which does not match any of the variants.",
        ]))),

        // ValidateUnderlyingInterface (launch plan): a launch-plan node takes the plan's
        // expected inputs (required ones and those it binds) and gives its workflow's outputs.
        case("a launch plan called with its inputs", w, "wf.call", workflow("wf.call", &[("x", int())], &[], vec![
            launch_plan_node("n0", "lp.base", vec![bind("x", promise("", "x")), bind("when", scalar(P::Datetime(Default::default())))]),
            task_node("n1", "t.str_to_int", vec![bind("s", promise("n0", "o"))], &[]),
        ], vec![]), Accepted),
        case("a str bound to a launch plan's int input", w, "wf.call_str", workflow("wf.call_str", &[], &[], vec![
            launch_plan_node("n0", "lp.base", vec![bind("x", str_value("3")), bind("when", scalar(P::Datetime(Default::default())))]),
        ], vec![]), invalid(compile_error("wf.call_str", &[
            "Code: MismatchingTypes, Node Id: n0, Description: Variable [x] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        case("a launch plan's required input left unbound", w, "wf.call_short", workflow("wf.call_short", &[], &[], vec![
            launch_plan_node("n0", "lp.base", vec![bind("x", int_value(3))]),
        ], vec![]), invalid(compile_error("wf.call_short", &[
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [when].",
        ]))),
        // ValidateUnderlyingInterface (array): an array node takes what its node takes.
        case("an array node bound as its task takes", w, "wf.array", workflow("wf.array", &[("x", int())], &[], vec![
            array_node("m0", task_node("m0-n0", "t.ints", vec![], &[]), vec![bind("xs", collection(vec![int_value(1), promise("", "x")]))]),
        ], vec![]), Accepted),
        case("an array node bound otherwise", w, "wf.bad_array", workflow("wf.bad_array", &[], &[], vec![
            array_node("m0", task_node("m0-n0", "t.str_to_int", vec![], &[]), vec![bind("s", int_value(1))]),
        ], vec![]), invalid(compile_error("wf.bad_array", &[
            "Code: MismatchingTypes, Node Id: m0, Description: Variable [s] (type [simple:INTEGER]) doesn't match expected type [simple:STRING].",
        ]))),
        // ValidateUnderlyingInterface (gate): a signal gives one output of its type.
        case("a signal's int read as an int", w, "wf.signal", workflow("wf.signal", &[], &[], vec![
            signal_node("g0", "y", int()),
            task_node("n1", "t.int_to_str", vec![bind("x", promise("g0", "y"))], &[]),
        ], vec![]), Accepted),
        case("a signal's int read as a str", w, "wf.bad_signal", workflow("wf.bad_signal", &[], &[], vec![
            signal_node("g0", "y", int()),
            task_node("n1", "t.str_to_int", vec![bind("s", promise("g0", "y"))], &[]),
        ], vec![]), invalid(compile_error("wf.bad_signal", &[
            "Code: MismatchingTypes, Node Id: n1, Description: The output variable 'y' has type [simple:INTEGER], but it's assigned to the input variable 's' which has type type [simple:STRING].",
        ]))),
        // validateBranchInterface: a branch gives the outputs all its cases give.
        case("a branch's str output read as a str", w, "wf.branch", workflow("wf.branch", &[("x", int())], &[], vec![
            branch_node(Some(greater(".x", P::Integer(0))), task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), Some(task_node("b0-n1", "t.int_to_str", vec![bind("x", int_value(0))], &[]))),
            task_node("n1", "t.str_to_int", vec![bind("s", promise("b0", "o0"))], &[]),
        ], vec![]), Accepted),
        case("a branch's str output read as an int", w, "wf.bad_branch", workflow("wf.bad_branch", &[("x", int())], &[], vec![
            branch_node(Some(greater(".x", P::Integer(0))), task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), Some(task_node("b0-n1", "t.int_to_str", vec![bind("x", int_value(0))], &[]))),
            task_node("n1", "t.int_to_str", vec![bind("x", promise("b0", "o0"))], &[]),
        ], vec![]), invalid(compile_error("wf.bad_branch", &[
            "Code: MismatchingTypes, Node Id: n1, Description: The output variable 'o0' has type [simple:STRING], but it's assigned to the input variable 'x' which has type type [simple:INTEGER].",
        ]))),
        // ValidateBranchNode and ValidateBooleanExpression: every case has a condition
        // comparing operands of one type, and there is an else.
        // validateBranchInterface: a branch's nodes are validated under `<branch>-<node>`.
        case("a bad binding in a branch's case", w, "wf.bad_case", workflow("wf.bad_case", &[("x", int())], &[], vec![
            branch_node(Some(greater(".x", P::Integer(0))), task_node("n0", "t.int_to_str", vec![bind("x", str_value("s"))], &[]), Some(task_node("n1", "t.int_to_str", x_from_start(), &[]))),
        ], vec![]), invalid(compile_error("wf.bad_case", &[
            "Code: MismatchingTypes, Node Id: b0-n0, Description: Variable [x] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        case("a branch without a condition", w, "wf.no_condition", workflow("wf.no_condition", &[("x", int())], &[], vec![
            branch_node(None, task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), Some(task_node("b0-n1", "t.int_to_str", x_from_start(), &[]))),
        ], vec![]), invalid(compile_error("wf.no_condition", &[
            "Code: BranchNodeHasNoCondition, Node Id: b0, Description: One of the branches on the node doesn't have a condition.",
        ]))),
        case("a branch comparing an int to a float", w, "wf.int_vs_float", workflow("wf.int_vs_float", &[("x", int())], &[], vec![
            branch_node(Some(greater(".x", P::FloatValue(0.5))), task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), Some(task_node("b0-n1", "t.int_to_str", x_from_start(), &[]))),
        ], vec![]), invalid(compile_error("wf.int_vs_float", &[
            "Code: MismatchingTypes, Node Id: b0, Description: Variable [RightValue] (type [simple:FLOAT]) doesn't match expected type [simple:INTEGER].",
        ]))),
        case("a branch comparing an input it does not bind", w, "wf.unbound_var", workflow("wf.unbound_var", &[("x", int())], &[], vec![
            branch_node(Some(greater(".y", P::Integer(0))), task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), Some(task_node("b0-n1", "t.int_to_str", x_from_start(), &[]))),
        ], vec![]), invalid(compile_error("wf.unbound_var", &[
            "Code: VariableNameNotFound, Node Id: b0, Description: Variable [.y] not found on node [b0].",
        ]))),
        case("a branch without an else", w, "wf.no_else", workflow("wf.no_else", &[("x", int())], &[], vec![
            branch_node(Some(greater(".x", P::Integer(0))), task_node("b0-n0", "t.int_to_str", x_from_start(), &[]), None),
        ], vec![]), invalid(compile_error("wf.no_else", &[
            "Code: BranchNodeHasNoDefault, Node Id: b0, Description: Branch Node must have either the else case set or a default error.",
        ]))),

        // workflow_compiler.AddNode: a second node with an id already taken is passed over,
        // not refused (FlyteAdmin does not require unique node ids).
        case("two nodes with one id", w, "wf.same_id", workflow("wf.same_id", &[("x", int())], &[], vec![
            task_node("n0", "t.int_to_str", x_from_start(), &[]),
            task_node("n0", "t.str_to_int", vec![bind("s", int_value(1))], &[]),
        ], vec![]), Accepted),
        // validators.validateEffectiveOutputParameters: an output is aliased once, only an
        // output that exists; other nodes read it under its alias.
        case("an output read under its alias", w, "wf.alias", workflow("wf.alias", &[("x", int())], &[], vec![
            core::Node { output_aliases: vec![core::Alias { var: "o0".into(), alias: "text".into() }], ..task_node("n0", "t.int_to_str", x_from_start(), &[]) },
            task_node("n1", "t.str_to_int", vec![bind("s", promise("n0", "text"))], &[]),
        ], vec![]), Accepted),
        case("an output aliased twice", w, "wf.alias_twice", workflow("wf.alias_twice", &[("x", int())], &[], vec![
            core::Node { output_aliases: vec![core::Alias { var: "o0".into(), alias: "a".into() }, core::Alias { var: "o0".into(), alias: "b".into() }], ..task_node("n0", "t.int_to_str", x_from_start(), &[]) },
        ], vec![]), invalid(compile_error("wf.alias_twice", &[
            "Code: DuplicateAlias, Node Id: n0, Description: Duplicate alias [b] found. An output alias can only be used once in the Workflow.",
        ]))),
        case("an alias of an output that does not exist", w, "wf.alias_nothing", workflow("wf.alias_nothing", &[("x", int())], &[], vec![
            core::Node { output_aliases: vec![core::Alias { var: "o9".into(), alias: "a".into() }], ..task_node("n0", "t.int_to_str", x_from_start(), &[]) },
        ], vec![]), invalid(compile_error("wf.alias_nothing", &[
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [a].",
        ]))),
        // validators.ValidateBindings and ValidateUnderlyingInterface: a binding has a
        // value, a node has a target.
        // (The input is then not bound either.)
        case("a binding without a value", w, "wf.no_value", one_node("wf.no_value", "t.int_to_str", vec![core::Binding { var: "x".into(), binding: None }]), invalid(compile_error("wf.no_value", &[
            "Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [x].",
            "Code: ValueRequired, Node Id: n0, Description: Value required [Binding].",
        ]))),
        case("a node without a target", w, "wf.no_target", workflow("wf.no_target", &[], &[], vec![core::Node { id: "n0".into(), ..Default::default() }], vec![]), invalid(compile_error("wf.no_target", &[
            "Code: ValueRequired, Node Id: n0, Description: Value required [Target].",
        ]))),
        // validators.ValidateNode: an embedded sub-workflow is compiled too.
        case("an embedded sub-workflow", w, "wf.outer", with_sub_workflow("wf.outer", promise("", "x")), Accepted),
        case("a bad binding inside an embedded sub-workflow", w, "wf.bad_outer", with_sub_workflow("wf.bad_outer", str_value("three")), invalid(compile_error("wf.bad_outer", &[
            "Code: MismatchingTypes, Node Id: s0, Description: Variable [x] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        // workflow_compiler.ValidateWorkflow: the failure node's bindings are checked too.
        case("a failure node bound wrongly", w, "wf.bad_failure", {
            let mut spec = admin::WorkflowSpec::decode(one_node("wf.bad_failure", "t.int_to_str", x_from_start()).as_slice()).unwrap();
            spec.template.as_mut().unwrap().failure_node = Some(task_node("fail", "t.int_to_str", vec![bind("x", str_value("s"))], &[]));
            spec.encode_to_vec()
        }, invalid(compile_error("wf.bad_failure", &[
            "Code: MismatchingTypes, Node Id: fail, Description: Variable [x] (type [simple:STRING]) doesn't match expected type [simple:INTEGER].",
        ]))),
        // validators.validateBinding (attribute path): a dataclass field read by name must
        // exist, and its type is what is checked.
        case("a dataclass field read as its type", w, "wf.field", workflow("wf.field", &[], &[], vec![
            task_node("n0", "t.point", vec![], &[]),
            task_node("n1", "t.int_to_str", vec![bind("x", attribute(promise("n0", "o0"), "x"))], &[]),
        ], vec![]), Accepted),
        case("a dataclass field that does not exist", w, "wf.no_field", workflow("wf.no_field", &[], &[], vec![
            task_node("n0", "t.point", vec![], &[]),
            task_node("n1", "t.int_to_str", vec![bind("x", attribute(promise("n0", "o0"), "z"))], &[]),
        ], vec![]), invalid(compile_error("wf.no_field", &[
            "Code: FieldNotFound, Node Id: n1, Description: Variable [o0] (type [simple:STRUCT structure:{dataclass_type:{key:\"x\" value:{simple:INTEGER}}}]) doesn't have field [z].",
        ]))),
        case("a dataclass field read as another type", w, "wf.field_type", workflow("wf.field_type", &[], &[], vec![
            task_node("n0", "t.point", vec![], &[]),
            task_node("n1", "t.str_to_int", vec![bind("s", attribute(promise("n0", "o0"), "x"))], &[]),
        ], vec![]), invalid(compile_error("wf.field_type", &[
            "Code: MismatchingTypes, Node Id: n1, Description: The output variable 'o0' has type [simple:INTEGER], but it's assigned to the input variable 's' which has type type [simple:STRING].",
        ]))),
        // validators.blobTypeChecker: a file of one format does not go where another is asked.
        case("a parquet file bound to a csv input", w, "wf.formats", workflow("wf.formats", &[], &[], vec![
            task_node("n0", "t.parquet", vec![], &[]),
            task_node("n1", "t.csv", vec![bind("f", promise("n0", "o0"))], &[]),
        ], vec![]), invalid(compile_error("wf.formats", &[
            "Code: MismatchingTypes, Node Id: n1, Description: The output variable 'o0' has type [blob:{format:\"parquet\"}], but it's assigned to the input variable 'f' which has type type [blob:{format:\"csv\"}].",
        ]))),

        // --- every create: ValidateIdentifier ---

        // The request's identifier names the kind created and every part.
        Case {
            id: Identifier { resource_type: 2, ..id(t, "t.kind") },
            ..case("a task created under a workflow identifier", t, "t.kind", task_spec(template("t.kind", &[], &[])), invalid(format!(
                "unexpected resource type workflow for identifier [{}], expected task instead", text(w, "t.kind")
            )))
        },
        Case {
            id: Identifier { version: String::new(), ..id(t, "t.unversioned") },
            ..case("a task identifier without a version", t, "t.unversioned", task_spec(template("t.unversioned", &[], &[])), invalid("missing version"))
        },
        // CreateLaunchPlan: its workflow_id too.
        case("a launch plan of a task identifier", l, "lp.of_task", {
            let mut spec = admin::LaunchPlanSpec::decode(launch_plan("wf.base", |_| {}).as_slice()).unwrap();
            spec.workflow_id = Some(id(t, "wf.base"));
            spec.encode_to_vec()
        }, invalid(format!("unexpected resource type task for identifier [{}], expected workflow instead", text(t, "wf.base")))),

        // --- CreateTask: flyteadmin's task_validator ---

        case("a well-formed task", t, "t.ok", task_spec(template("t.ok", &[("x", int())], &[])), Accepted),
        // validateTaskTemplate: a type, metadata, the SDK's version, an interface.
        case("a task without a type", t, "t.untyped", task_spec(core::TaskTemplate { r#type: String::new(), ..template("t.untyped", &[], &[]) }), invalid("missing type")),
        case("a task without metadata", t, "t.no_metadata", task_spec(core::TaskTemplate { metadata: None, ..template("t.no_metadata", &[], &[]) }), invalid("missing metadata")),
        case("a task whose runtime has no version", t, "t.no_runtime_version", task_spec(core::TaskTemplate {
            metadata: Some(core::TaskMetadata { runtime: Some(core::RuntimeMetadata { version: String::new() }), ..Default::default() }),
            ..template("t.no_runtime_version", &[], &[])
        }), invalid("missing runtime version")),
        case("a task without an interface", t, "t.no_interface", task_spec(core::TaskTemplate { interface: None, ..template("t.no_interface", &[], &[]) }), invalid("missing typed interface")),
        // validateK8sPod: a pod task has a pod spec.
        case("a pod task without a pod spec", t, "t.pod", task_spec(core::TaskTemplate {
            target: Some(core::task_template::Target::K8sPod(core::K8sPod { pod_spec: None })),
            ..template("t.pod", &[], &[])
        }), invalid("invalid TaskSpecification, pod tasks should specify their target as a K8sPod with a defined pod spec")),
        // validateContainer: an image.
        case("a container without an image", t, "t.no_image", task_spec({
            let mut t = template("t.no_image", &[], &[]);
            if let Some(core::task_template::Target::Container(c)) = &mut t.target { c.image.clear(); }
            t
        }), invalid("missing image")),
        // validateTaskResources: quantities as Kubernetes parses them.
        case("resources as Kubernetes writes them", t, "t.resources", task_spec(resources(&[(CPU, "500m"), (MEMORY, "1Gi"), (GPU, "1")], &[(CPU, "2"), (MEMORY, "1.5Gi"), (GPU, "1")])), Accepted),
        case("a quantity Kubernetes does not parse", t, "t.resources", task_spec(resources(&[(CPU, "two")], &[])), invalid(
            "Parsing of CPU request failed for value two - reason  quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'. Please follow K8s conventions for resources https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
        )),
        case("a quantity with an unknown suffix", t, "t.resources", task_spec(resources(&[(MEMORY, "1iK")], &[])), invalid(
            "Parsing of MEMORY request failed for value 1iK - reason  unable to parse quantity's suffix. Please follow K8s conventions for resources https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
        )),
        case("a resource named twice", t, "t.resources", task_spec(resources(&[(CPU, "1"), (CPU, "2")], &[])), invalid(format!(
            "can't specify CPU limit for task [{}] multiple times", text(t, "t.resources")
        ))),
        case("half a GPU", t, "t.resources", task_spec(resources(&[(GPU, "0.5")], &[])), invalid(format!(
            "gpu for [{}] must be a whole number, got: 0.5 instead", text(t, "t.resources")
        ))),
        // validateResource: a request is at most its limit; GPU request and limit agree.
        case("a request above its limit", t, "t.resources", task_spec(resources(&[(MEMORY, "2Gi")], &[(MEMORY, "1Gi")])), invalid(
            "Requested MEMORY default [2Gi] is greater than the limit [1Gi]. Please fix your configuration",
        )),
        case("a GPU request other than its limit", t, "t.resources", task_spec(resources(&[(GPU, "1")], &[(GPU, "2")])), invalid(format!(
            "For extended resource 'gpu' the default value must equal the limit value for task [{}]", text(t, "t.resources")
        ))),

        // --- CreateLaunchPlan: flyteadmin's launch_plan_validator ---

        // Accepted: pyflyte's default launch plan, required inputs among the defaults.
        case("a default launch plan", l, "wf.base", launch_plan("wf.base", |s| defaults(s, vec![("x", required(int())), ("when", required(simple(DATETIME)))])), Accepted),
        // checkAndFetchExpectedInputForLaunchPlan: fixed and default inputs are inputs of
        // the workflow, of types it takes.
        case("a fixed input the workflow does not have", l, "lp.unknown_fixed", launch_plan("wf.base", |s| fixed(s, vec![("nope", literal(P::Integer(1)))])), invalid("unexpected fixed_input nope")),
        case("a fixed input of the wrong type", l, "lp.bad_fixed", launch_plan("wf.base", |s| fixed(s, vec![("x", literal(P::StringValue("one".into())))])), invalid(
            "invalid fixed_input wrong type x, expected simple:INTEGER, got simple:STRING instead",
        )),
        case("a default input the workflow does not have", l, "lp.unknown_default", launch_plan("wf.base", |s| defaults(s, vec![("nope", required(int()))])), invalid("unexpected default_input nope")),
        case("a default input of the wrong type", l, "lp.bad_default", launch_plan("wf.base", |s| defaults(s, vec![("x", required(string()))])), invalid(
            "invalid default_input wrong type x, expected simple:STRING, got simple:INTEGER instead",
        )),
        case("fixed inputs for a workflow without inputs", l, "lp.no_inputs", launch_plan("wf.no_inputs", |s| fixed(s, vec![("x", literal(P::Integer(1)))])), invalid(
            "invalid launch plan fixed inputs, expected none but found 1",
        )),
        // validateParameterMap: a default input has a default or is required, and its
        // default has its type.
        case("a default input with neither default nor required", l, "lp.neither", launch_plan("wf.base", |s| defaults(s, vec![("x", core::Parameter {
            var: Some(core::Variable { r#type: Some(int()), description: String::new() }),
            behavior: None,
        })])), invalid("Invalid variable x in default_inputs - variable has neither default, nor is required. One must be specified")),
        case("a default value of another type", l, "lp.bad_value", launch_plan("wf.base", |s| defaults(s, vec![("x", defaulted(int(), literal(P::StringValue("one".into()))))])), invalid(
            "Type mismatch for Parameter x in default_inputs has type simple:INTEGER, expected simple:STRING",
        )),
        // validateSchedule: a scheduled launch plan binds every required input but the
        // kickoff time, which must be a datetime input.
        case("a schedule with an unbound required input", l, "lp.scheduled", launch_plan("wf.base", |s| {
            defaults(s, vec![("x", required(int())), ("when", required(simple(DATETIME)))]);
            cron(s, "when");
        }), invalid("Cannot create a launch plan with a schedule if there is an unbound required input. [x] is required")),
        case("a schedule whose kickoff input is not a datetime", l, "lp.kickoff_int", launch_plan("wf.base", |s| {
            defaults(s, vec![("x", required(int())), ("when", defaulted(simple(DATETIME), literal(P::Datetime(Default::default()))))]);
            cron(s, "x");
        }), invalid("KickoffTimeInputArg must reference a datetime input. [x] is a [simple:INTEGER]")),
        case("a schedule with every input bound", l, "lp.nightly", launch_plan("wf.base", |s| {
            defaults(s, vec![("x", defaulted(int(), literal(P::Integer(3)))), ("when", required(simple(DATETIME)))]);
            cron(s, "when");
        }), Accepted),
        // validateSchedule: a cron expression parses as robfig/cron's standard one (five
        // fields).
        case("a cron expression with seconds", l, "lp.seconds", launch_plan("wf.base", |s| {
            defaults(s, vec![("x", defaulted(int(), literal(P::Integer(3)))), ("when", required(simple(DATETIME)))]);
            cron(s, "when");
            if let Some(admin::schedule::Expression::CronSchedule(c)) = &mut s.entity_metadata.as_mut().unwrap().schedule.as_mut().unwrap().expression {
                c.schedule = "0 0 2 * * *".into();
            }
        }), invalid("Invalid cron expression: expected exactly 5 fields, found 6: [0 0 2 * * *]")),
        // validateLabels: keys and values as Kubernetes accepts them, at most 16.
        case("labels Kubernetes accepts", l, "lp.labelled", launch_plan("wf.base", |s| labels(s, &[("team", "ml"), ("example.com/owner", "a.b_c-d"), ("empty", "")])), Accepted),
        case("a label value Kubernetes refuses", l, "lp.bad_value_label", launch_plan("wf.base", |s| labels(s, &[("team", "-ml")])), invalid(
            "invalid label value [-ml]: [a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]",
        )),
        case("a label key Kubernetes refuses", l, "lp.bad_key_label", launch_plan("wf.base", |s| labels(s, &[("my team", "ml")])), invalid(
            "invalid label key [my team]: [name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]",
        )),
        case("seventeen labels", l, "lp.many_labels", launch_plan("wf.base", |s| {
            let keys: Vec<String> = (0..17).map(|i| format!("k{i}")).collect();
            let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
            labels(s, &pairs);
        }), invalid("labels map cannot exceed 16 entries")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_refuses_what_flyteadmin_refuses_with_its_code_and_message() {
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    for (kind, name, spec) in fixtures() {
        let created = admin.create(kind, &create_request(&id(kind, name), &spec)).await;
        assert_eq!(created.map_err(|s| s.message().to_string()), Ok(Created::New), "fixture {name}");
    }
    let mut wrong = Vec::new();
    for case in cases() {
        let answer = admin.create(case.kind, &create_request(&case.id, &case.spec)).await;
        let got = match answer {
            Ok(_) => "accepted".to_string(),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        let want = match &case.expect {
            Accepted => "accepted".to_string(),
            Refused(code, message) => format!("{code:?}: {message}"),
        };
        if got != want {
            wrong.push(format!("{}:\n  want {want}\n  got  {got}", case.name));
        }
    }
    assert!(wrong.is_empty(), "{} case(s) answered otherwise:\n{}", wrong.len(), wrong.join("\n"));
    running.stop().await.unwrap();
}

/// GetWorkflow answers the compiled closure, as FlyteAdmin does: each template with the
/// edges its compile found (start node → first, explicit upstream and data edges, last → end);
/// GetLaunchPlan the expected inputs and outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_answers_the_compiled_workflow_and_the_launch_plans_expected_interface() {
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    for (kind, name, spec) in fixtures().into_iter().filter(|(k, _, _)| *k == Kind::Task) {
        admin.create(kind, &create_request(&id(kind, name), &spec)).await.unwrap();
    }
    // n0 turns the input into a string, n1 reads it back; n2 runs after n1 (explicitly).
    let nodes = vec![
        task_node("n0", "t.int_to_str", vec![bind("x", promise("", "x"))], &[]),
        task_node("n1", "t.str_to_int", vec![bind("s", promise("n0", "o0"))], &[]),
        task_node("n2", "t.point", vec![], &["n1"]),
    ];
    let spec = workflow("wf.chain", &[("x", int())], &[("y", int())], nodes, vec![bind("y", promise("n1", "o0"))]);
    let wf_id = id(Kind::Workflow, "wf.chain");
    admin.create(Kind::Workflow, &create_request(&wf_id, &spec)).await.unwrap();
    let got = admin.get(Kind::Workflow, &wf_id).await.unwrap().expect("registered");
    let workflow = admin::Workflow::decode(got.as_slice()).unwrap();
    let compiled = workflow.closure.and_then(|c| c.compiled_workflow).and_then(|c| c.primary).unwrap();
    let set = compiled.connections.expect("the compiled workflow carries its connections");
    let ids = |map: &std::collections::BTreeMap<String, core::IdList>, node: &str| {
        map.get(node).map(|l| l.ids.clone()).unwrap_or_default()
    };
    assert_eq!(ids(&set.downstream, "start-node"), ["n0"], "{set:?}");
    assert_eq!(ids(&set.downstream, "n0"), ["n1"]);
    assert_eq!(ids(&set.downstream, "n1"), ["end-node", "n2"]);
    assert_eq!(ids(&set.downstream, "n2"), ["end-node"]);
    assert_eq!(ids(&set.upstream, "n1"), ["n0"]);
    assert_eq!(ids(&set.upstream, "end-node"), ["n1", "n2"]);
    assert_eq!(compiled.template.unwrap().nodes.len(), 3);

    // A launch plan's closure carries its expected inputs (the workflow's, less the fixed,
    // a default as given, else required) and the workflow's outputs, as FlyteAdmin keeps them.
    let three = literal(core::primitive::Value::Integer(3));
    let plans = [
        ("lp.required", launch_plan("wf.chain", |_| {})),
        ("lp.defaulted", launch_plan("wf.chain", |spec| defaults(spec, vec![("x", defaulted(int(), three.clone()))]))),
        ("lp.fixed", launch_plan("wf.chain", |spec| fixed(spec, vec![("x", three.clone())]))),
    ];
    for (name, spec) in &plans {
        admin.create(Kind::LaunchPlan, &create_request(&id(Kind::LaunchPlan, name), spec)).await.unwrap();
    }
    let expected = |name: &str| {
        let admin = admin.clone();
        let name = name.to_string();
        async move {
            let got = admin.get(Kind::LaunchPlan, &id(Kind::LaunchPlan, &name)).await.unwrap().unwrap();
            let closure = admin::LaunchPlan::decode(got.as_slice()).unwrap().closure.unwrap();
            let outputs: Vec<String> = closure.expected_outputs.unwrap().variables.into_keys().collect();
            assert_eq!(outputs, ["y"], "{name}");
            closure.expected_inputs.unwrap_or_default().parameters
        }
    };
    let required = expected("lp.required").await;
    assert_eq!(required["x"].behavior, Some(core::parameter::Behavior::Required(true)));
    assert_eq!(required["x"].var.as_ref().and_then(|v| v.r#type.clone()), Some(int()));
    let defaulted_x = expected("lp.defaulted").await;
    assert_eq!(defaulted_x["x"].behavior, Some(core::parameter::Behavior::Default(three.clone())));
    assert!(expected("lp.fixed").await.is_empty(), "a fixed input is not expected");
    running.stop().await.unwrap();
}

/// A package using what flytekit offers: dataclasses and attribute access, enums, Optional
/// and unions, files and directories, nested collections, datetimes, a dynamic task,
/// branches with a sub-workflow, map tasks (with a partial, and over a launch plan), a
/// launch-plan call, gate nodes, a failure node, scheduled launch plans with fixed and
/// default inputs.
const KITCHEN: &str = r#"
import enum
import functools
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta

from flytekit import CronSchedule, FixedRate, LaunchPlan, approve, conditional, dynamic, map_task, sleep, task, wait_for_input, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: float
    label: str


@task
def make_point(x: int) -> Point:
    return Point(x=x, y=1.5, label="p")


@task
def use_int(x: int) -> int:
    return x


@task
def use_float(y: float) -> float:
    return y


@task
def maybe(x: typing.Optional[int] = None) -> typing.Optional[str]:
    return None if x is None else str(x)


@task
def paint(c: Color) -> Color:
    return c


@task
def either(v: typing.Union[int, str]) -> typing.Union[int, str]:
    return v


@task
def files(f: FlyteFile, d: FlyteDirectory) -> typing.List[FlyteFile]:
    return [f]


@task
def nested(m: typing.Dict[str, typing.List[int]]) -> typing.List[typing.Dict[str, int]]:
    return [{k: sum(v)} for k, v in m.items()]


@task
def square(x: int) -> int:
    return x * x


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def stamp(when: datetime, every: timedelta) -> str:
    return f"{when} {every}"


@dynamic
def fan_out(n: int) -> typing.List[int]:
    return [square(x=i) for i in range(n)]


@task
def cleanup(x: int, xs: typing.List[int], c: Color, when: datetime) -> None:
    print("failed", x)


@workflow
def sub(x: int) -> int:
    return square(x=x)


sub_lp = LaunchPlan.get_or_create(workflow=sub, name="sub_lp")


@workflow(on_failure=cleanup)
def kitchen(x: int = 3, xs: typing.List[int] = [1, 2], c: Color = Color.RED, when: datetime = datetime(2024, 1, 1)) -> typing.Tuple[int, typing.Optional[str], float]:
    p = make_point(x=x)
    a = use_int(x=p.x)
    f = use_float(y=p.y)
    b = conditional("sign").if_(x > 0).then(square(x=x)).elif_(x < -5).then(sub(x=x)).else_().then(use_int(x=x))
    squares = map_task(square)(x=xs)
    partial = map_task(functools.partial(add, y=1))(x=xs)
    m = maybe(x=x)
    conditional("none").if_(m.is_none()).then(use_int(x=x)).else_().then(square(x=x))
    maybe()
    paint(c=c)
    paint(c=Color.GREEN)
    either(v=x)
    either(v="s")
    nested(m={"a": xs, "b": [x, 2]})
    stamp(when=when, every=timedelta(minutes=5))
    fan_out(n=x)
    s = sub_lp(x=b)
    squares >> partial >> s
    return a, m, f


@workflow
def gated(x: int) -> int:
    y = wait_for_input("y", timeout=timedelta(hours=1), expected_type=int)
    z = approve(square(x=x), "ok", timeout=timedelta(hours=1))
    sleeping = sleep(timedelta(seconds=1))
    w = add(x=y, y=z)
    sleeping >> w
    return w


@workflow
def over_plans(xs: typing.List[int] = [1, 2]) -> typing.List[int]:
    return map_task(sub_lp)(x=xs)


nightly = LaunchPlan.get_or_create(
    workflow=kitchen, name="kitchen_nightly", schedule=CronSchedule(schedule="0 2 * * *", kickoff_time_input_arg="when"),
    fixed_inputs={"x": 4}, default_inputs={"xs": [3]},
)
hourly = LaunchPlan.get_or_create(workflow=sub, name="sub_hourly", schedule=FixedRate(duration=timedelta(hours=1)), default_inputs={"x": 1}, labels=None)
"#;

/// More of it, beside [`KITCHEN`]: nested dataclasses read by attribute, list index and
/// dict key, named tuples, inputs left to their defaults, file formats, dataclasses in
/// unions and dicts, a sub-workflow's default input, nested branches ending in a failure,
/// an eager workflow, an imperative workflow, a map with concurrency and a success ratio.
const KITCHEN_MORE: &str = r#"
import typing
from dataclasses import dataclass
from datetime import timedelta

from flytekit import Workflow, conditional, dynamic, map_task, task, workflow
from flytekit import eager
from flytekit.types.file import FlyteFile

CSV = FlyteFile[typing.TypeVar("csv")]


@dataclass
class Inner:
    a: int


@dataclass
class Outer:
    inner: Inner
    items: typing.List[int]
    tags: typing.Dict[str, str]


class Pair(typing.NamedTuple):
    left: int
    right: str


@task
def make() -> Outer:
    return Outer(inner=Inner(a=1), items=[1, 2], tags={"k": "v"})


@task
def take_int(x: int) -> int:
    return x


@task
def take_str(s: str) -> str:
    return s


@task
def pair(x: int) -> Pair:
    return Pair(left=x, right=str(x))


@task
def with_default(x: int, y: int = 5, z: typing.Optional[typing.List[int]] = None) -> int:
    return x + y


@task
def csv_out() -> CSV:
    return CSV("s3://x.csv")


@task
def any_file(f: FlyteFile) -> FlyteFile:
    return f


@task
def files_in(fs: typing.List[CSV]) -> int:
    return len(fs)


@task
def dicts(d: typing.Dict[str, Outer]) -> int:
    return len(d)


@task
def either(u: typing.Union[Inner, int]) -> int:
    return 1


@workflow
def sub2(x: int, y: int = 7) -> int:
    return take_int(x=x)


@workflow
def nested_cond(x: int) -> int:
    return (
        conditional("outer")
        .if_(x > 0)
        .then(conditional("inner").if_(x > 10).then(take_int(x=x)).else_().then(with_default(x=x)))
        .else_()
        .fail("negative")
    )


@eager
async def eager_wf(x: int) -> int:
    return await take_int(x=x)


@workflow
def k2(x: int = 1) -> typing.Tuple[int, Inner, int, str]:
    o = make()
    a = take_int(x=o.inner.a)
    b = take_int(x=o.items[0])
    c = take_str(s=o.tags["k"])
    p = pair(x=x)
    take_int(x=p.left).with_overrides(name="renamed")
    take_str(s=p.right)
    with_default(x=x)
    with_default(x=x, z=[1])
    f = csv_out()
    any_file(f=f)
    files_in(fs=[f, f])
    dicts(d={"a": o})
    either(u=Inner(a=1))
    either(u=3)
    either(u=o.inner)
    s = sub2(x=x)
    nested_cond(x=s)
    map_task(take_int, concurrency=2, min_success_ratio=0.5)(x=[1, 2])
    return a, o.inner, b, c


imperative = Workflow(name="kitchen.imperative")
imperative.add_workflow_input("x", int)
node = imperative.add_entity(take_int, x=imperative.inputs["x"])
imperative.add_workflow_output("out", node.outputs["o0"])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_pyflyte_writes_for_every_kind_of_node_and_type_registers() {
    if tests::flytekit_python().is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("kitchen")).unwrap();
    std::fs::write(work.path().join("kitchen/__init__.py"), "").unwrap();
    std::fs::write(work.path().join("kitchen/flows.py"), KITCHEN).unwrap();
    std::fs::write(work.path().join("kitchen/more.py"), KITCHEN_MORE).unwrap();
    let package = specs::read_package(&tests::pyflyte_package(work.path(), "kitchen")).unwrap();
    for module in ["kitchen.flows.kitchen_2", "kitchen.more.k2_2", "kitchen.imperative_2", "kitchen_nightly_3"] {
        assert!(package.entities.iter().any(|e| e.file_name.contains(module)), "pyflyte wrote {module}");
    }
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    let target = Target {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        version: VERSION.into(),
        code_url: None,
        dest_dir: "/root".into(),
        settings: Default::default(),
    };
    let (filename, bytes) = package.fast_archive.as_ref().expect("packaged with --copy all");
    let archive = Archive { filename, bytes };
    let summary =
        register::register_package(&admin, &package, &target, Some(archive), &Options::default()).await.unwrap();
    assert!(summary.errors.is_empty(), "{:#?}", summary.errors);
    assert_eq!(summary.created(), package.entities.len(), "every entity created");
    running.stop().await.unwrap();
}
