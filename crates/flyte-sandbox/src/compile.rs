//! Workflow compilation at CreateWorkflow, as FlyteAdmin runs flytepropeller's compiler:
//! referenced tasks, launch plans and sub-workflows exist, node references resolve, bindings
//! type-check against interfaces, no cycles, every output bound. Decides only; the caller
//! reads registered entities from the store.
//!
//! Where the compiler's verdict depends on what this module does not model (what an
//! approval gate passes on, whether a branch's cases agree on their output types, two
//! dataclasses' JSON schemas, operands that are scalars), it accepts: refusing what
//! FlyteAdmin accepts would be worse than missing a refusal.

// gRPC answers are `tonic::Status`, the error type every tonic service and client uses.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use flyte_api::core::{
    self, binding_data, literal_type::Type, node::Target, scalar, workflow_node, Binding, BindingData, Identifier,
    LiteralType, TaskTemplate, Variable, WorkflowTemplate,
};
use flyte_api::{admin, Kind, Message};
use tonic::Status;

use crate::types::{castable, is_optional, literal_type_for_scalar, show_type, type_text};

/// The node every workflow starts from; its outputs are the workflow's inputs.
const START: &str = "start-node";
/// The node every workflow ends in; its inputs are the workflow's outputs.
const END: &str = "end-node";

/// The edges of each compiled workflow template (the primary under the id it is registered
/// as, each sub-workflow under its own), by `identifier_text(id, true)`: what GetWorkflow's
/// compiled closure carries.
pub(crate) type Connections = BTreeMap<String, core::ConnectionSet>;

/// Compiles the WorkflowSpec `spec` registered as `id`. `fetch` reads the spec bytes of a
/// registered entity, if there is one. A failure is INVALID_ARGUMENT worded as FlyteAdmin's
/// (`failed to compile workflow for [<id>] with err: …`).
pub(crate) fn workflow(
    id: &Identifier,
    spec: &[u8],
    fetch: impl Fn(Kind, &Identifier) -> Result<Option<Vec<u8>>, Status>,
) -> Result<Connections, Status> {
    let spec =
        admin::WorkflowSpec::decode(spec).map_err(|e| Status::invalid_argument(format!("bad workflow spec: {e}")))?;
    // ValidateWorkflow: a spec with a template.
    let primary = spec.template.as_ref().ok_or_else(|| Status::invalid_argument("missing spec"))?;
    let failed = |err: String| {
        Status::invalid_argument(format!(
            "failed to compile workflow for [{}] with err: {err}",
            identifier_text(id, true)
        ))
    };
    let subs: BTreeMap<Key, &WorkflowTemplate> =
        spec.sub_workflows.iter().filter_map(|t| t.id.as_ref().map(|i| (key(i), t))).collect();

    // GetRequirements: the tasks and launch plans used, following embedded sub-workflows.
    let mut needs = Needs::default();
    needs.workflow(primary, &subs);
    if !needs.errors.is_empty() {
        return Err(failed(needs.errors.render()));
    }
    // Each is read from the store; the first missing one fails the compile.
    let mut tasks = BTreeMap::new();
    for task in needs.tasks.values() {
        let bytes = fetch(Kind::Task, task)?.ok_or_else(|| failed(missing_entity(Kind::Task, task)))?;
        let template = admin::TaskSpec::decode(bytes.as_slice()).ok().and_then(|s| s.template).unwrap_or_default();
        tasks.insert(key(task), template);
    }
    let mut launch_plans = BTreeMap::new();
    for plan in needs.launch_plans.values() {
        let bytes = fetch(Kind::LaunchPlan, plan)?.ok_or_else(|| failed(missing_entity(Kind::LaunchPlan, plan)))?;
        launch_plans.insert(key(plan), plan_interface(&bytes, &fetch)?);
    }

    let mut compiler = Compiler {
        tasks,
        launch_plans,
        subs,
        compiled: BTreeSet::new(),
        errors: Errors::default(),
        connections: Connections::new(),
    };
    let mut primary = primary.clone();
    // FlyteAdmin compiles the template under the request's id.
    primary.id = Some(id.clone());
    compiler.validate_workflow(&primary);
    if compiler.errors.is_empty() {
        Ok(compiler.connections)
    } else {
        Err(failed(compiler.errors.render()))
    }
}

/// What a registered launch plan exposes, as FlyteAdmin stores it in its closure: the
/// expected inputs its validation worked out, and its workflow's outputs.
fn plan_interface(
    spec: &[u8],
    fetch: &impl Fn(Kind, &Identifier) -> Result<Option<Vec<u8>>, Status>,
) -> Result<PlanInterface, Status> {
    let Ok(spec) = admin::LaunchPlanSpec::decode(spec) else { return Ok(None) };
    let Some(workflow) = &spec.workflow_id else { return Ok(None) };
    let Some(bytes) = fetch(Kind::Workflow, workflow)? else { return Ok(None) };
    let interface =
        admin::WorkflowSpec::decode(bytes.as_slice()).ok().and_then(|s| s.template).and_then(|t| t.interface);
    let interface = interface.unwrap_or_default();
    let inputs = interface.inputs.map(|m| m.variables).unwrap_or_default();
    let outputs = interface.outputs.map(|m| m.variables).unwrap_or_default();
    let fixed = spec.fixed_inputs.map(|m| m.literals).unwrap_or_default();
    let defaults = spec.default_inputs.map(|m| m.parameters).unwrap_or_default();
    Ok(crate::validate::expected_inputs(&inputs, &fixed, &defaults).ok().map(|expected| (expected, outputs)))
}

/// An identifier's project, domain, name and version: how references are matched.
type Key = (String, String, String, String);

fn key(id: &Identifier) -> Key {
    (id.project.clone(), id.domain.clone(), id.name.clone(), id.version.clone())
}

/// An identifier as Go prints a protobuf message (`resource_type:TASK project:"p" …`), with
/// or without its resource type.
pub(crate) fn identifier_text(id: &Identifier, with_kind: bool) -> String {
    let mut parts = Vec::new();
    if with_kind {
        match (id.kind(), id.resource_type) {
            (Some(kind), _) => parts.push(format!("resource_type:{}", kind.proto_name())),
            (None, 4) => parts.push("resource_type:DATASET".into()),
            _ => {}
        }
    }
    for (field, value) in [
        ("project", &id.project),
        ("domain", &id.domain),
        ("name", &id.name),
        ("version", &id.version),
        ("org", &id.org),
    ] {
        if !value.is_empty() {
            parts.push(format!("{field}:{value:?}"));
        }
    }
    parts.join(" ")
}

/// FlyteAdmin's store's answer for an entity it does not have.
fn missing_entity(kind: Kind, id: &Identifier) -> String {
    format!("missing entity of type {} with identifier {}", kind.proto_name(), identifier_text(id, false))
}

/// One compile error: flytepropeller's code, the node it is about, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CompileError {
    code: &'static str,
    text: String,
}

/// The compile errors found, each once, in flytepropeller's order (by code, then text).
#[derive(Default)]
struct Errors {
    set: BTreeSet<CompileError>,
    /// How many were collected, repeats included: a scope's "has errors".
    count: usize,
}

impl Errors {
    fn add(&mut self, code: &'static str, node: &str, description: String) {
        self.count += 1;
        self.set
            .insert(CompileError { code, text: format!("Code: {code}, Node Id: {node}, Description: {description}") });
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `Collected Errors: N` and one line per error, as flytepropeller writes them.
    fn render(&self) -> String {
        let mut out = format!("Collected Errors: {}\n", self.set.len());
        for (i, error) in self.set.iter().enumerate() {
            out.push_str(&format!("\tError {i}: {}\n", error.text));
        }
        out
    }
}

/// What a workflow needs from the store.
#[derive(Default)]
struct Needs {
    tasks: BTreeMap<Key, Identifier>,
    launch_plans: BTreeMap<Key, Identifier>,
    followed: BTreeSet<Key>,
    errors: Errors,
}

impl Needs {
    fn workflow(&mut self, template: &WorkflowTemplate, subs: &BTreeMap<Key, &WorkflowTemplate>) {
        for node in template.nodes.iter().chain(template.failure_node.as_ref()) {
            self.node(node, subs);
        }
    }

    fn node(&mut self, node: &core::Node, subs: &BTreeMap<Key, &WorkflowTemplate>) {
        match &node.target {
            Some(Target::TaskNode(task)) => {
                if let Some(core::task_node::Reference::ReferenceId(id)) = &task.reference {
                    self.tasks.insert(key(id), id.clone());
                }
            }
            Some(Target::WorkflowNode(wf)) => match &wf.reference {
                Some(workflow_node::Reference::LaunchplanRef(id)) => {
                    self.launch_plans.insert(key(id), id.clone());
                }
                Some(workflow_node::Reference::SubWorkflowRef(id)) => match subs.get(&key(id)) {
                    // A sub-workflow must come embedded in the spec (flytepropeller's
                    // requirements: WorkflowReferenceNotFound).
                    None => self.errors.add(
                        "WorkflowReferenceNotFound",
                        &node.id,
                        format!("Referenced Workflow [{}] not found.", identifier_text(id, true)),
                    ),
                    Some(sub) => {
                        if self.followed.insert(key(id)) {
                            self.workflow(sub, subs);
                        }
                    }
                },
                None => {}
            },
            Some(Target::BranchNode(branch)) => {
                if let Some(block) = &branch.if_else {
                    for case in block.case.iter().chain(&block.other) {
                        if let Some(then) = &case.then_node {
                            self.node(then, subs);
                        }
                    }
                    if let Some(core::if_else_block::Default::ElseNode(node)) = &block.default {
                        self.node(node, subs);
                    }
                }
            }
            Some(Target::ArrayNode(array)) => {
                if let Some(inner) = &array.node {
                    self.node(inner, subs);
                }
            }
            Some(Target::GateNode(_)) | None => {}
        }
    }
}

/// A node's interface: its inputs and its outputs, each typed or open (`None`) where this
/// module does not model it; what is bound to open inputs or taken from open outputs is
/// accepted.
#[derive(Clone, Default)]
struct Interface {
    inputs: Option<Vars>,
    outputs: Option<Vars>,
}

type Vars = BTreeMap<String, Variable>;

impl Interface {
    fn open() -> Interface {
        Interface { inputs: None, outputs: None }
    }

    fn typed(interface: &core::TypedInterface) -> Interface {
        Interface {
            inputs: Some(interface.inputs.clone().map(|m| m.variables).unwrap_or_default()),
            outputs: Some(interface.outputs.clone().map(|m| m.variables).unwrap_or_default()),
        }
    }
}

/// What a launch plan a node launches exposes: its expected inputs (type, required) and its
/// workflow's outputs; `None` when they could not be worked out (then open).
type PlanInterface = Option<(BTreeMap<String, (Option<LiteralType>, bool)>, Vars)>;

/// How a binding's node reference turns into edges (flytepropeller's edge directions).
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Both,
    Upstream,
}

/// A node of the graph being built.
struct GraphNode {
    /// `None` when computing the interface failed: such a node gets no edges of its own.
    interface: Option<Interface>,
    /// Its display name (`NodeMetadata.name`), which messages put before variable names.
    name: Option<String>,
}

/// A workflow's nodes (the top-level ones, start and end) and their edges.
#[derive(Default)]
struct Graph {
    nodes: BTreeMap<String, GraphNode>,
    down: BTreeMap<String, BTreeSet<String>>,
    up: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn edge(&mut self, from: &str, to: &str, direction: Direction) {
        let from = if from.is_empty() { START } else { from };
        if direction == Direction::Both {
            self.down.entry(from.to_string()).or_default().insert(to.to_string());
        }
        self.up.entry(to.to_string()).or_default().insert(from.to_string());
    }
}

struct Compiler<'s> {
    tasks: BTreeMap<Key, TaskTemplate>,
    launch_plans: BTreeMap<Key, PlanInterface>,
    subs: BTreeMap<Key, &'s WorkflowTemplate>,
    /// Sub-workflows compiled already (each once, as flytepropeller does).
    compiled: BTreeSet<Key>,
    errors: Errors,
    /// Each workflow's edges, as it is compiled.
    connections: Connections,
}

impl Compiler<'_> {
    /// flytepropeller's ValidateWorkflow for one workflow template.
    fn validate_workflow(&mut self, wf: &WorkflowTemplate) {
        let id = wf.id.as_ref().map(|i| identifier_text(i, true)).unwrap_or_default();
        if wf.nodes.is_empty() {
            self.errors.add("NoNodesFound", &id, format!("Can't find any nodes in workflow [{id}]."));
            return;
        }
        let interface = wf.interface.clone().unwrap_or_default();
        let inputs = interface.inputs.map(|m| m.variables).unwrap_or_default();
        let outputs = interface.outputs.map(|m| m.variables).unwrap_or_default();
        let before = self.errors.count;
        self.check_variables(START, &inputs);
        self.check_variables(START, &outputs);
        if self.errors.count > before {
            return;
        }
        let mut graph = Graph::default();
        let typed = |inputs, outputs| Some(Interface { inputs: Some(inputs), outputs: Some(outputs) });
        graph.nodes.insert(START.into(), GraphNode { interface: typed(BTreeMap::new(), inputs.clone()), name: None });
        graph.nodes.insert(END.into(), GraphNode { interface: typed(outputs.clone(), BTreeMap::new()), name: None });

        // Nodes in order: a branch's inner nodes see the top-level nodes before them.
        let mut top: BTreeMap<String, &core::Node> = BTreeMap::new();
        for node in &wf.nodes {
            if graph.nodes.contains_key(&node.id) {
                // A repeated id: the node is validated, but the first under the id is the
                // one in the graph.
                self.validate_node(wf, &mut graph, node);
                continue;
            }
            top.insert(node.id.clone(), node);
            let mut interface = self.validate_node(wf, &mut graph, node);
            // Other nodes read an aliased output under its alias.
            if let Some(Interface { outputs: Some(outputs), .. }) = &mut interface {
                for alias in &node.output_aliases {
                    if let Some(output) = outputs.remove(&alias.var) {
                        outputs.insert(alias.alias.clone(), output);
                    }
                }
            }
            let name = node.metadata.as_ref().map(|m| m.name.clone());
            graph.nodes.insert(node.id.clone(), GraphNode { interface, name });
        }

        // Explicit and implicit edges, in node id order; the end node's inputs are the
        // workflow's outputs.
        let ids: Vec<String> = graph.nodes.keys().filter(|id| *id != START).cloned().collect();
        for id in &ids {
            let (bindings, upstream): (&[Binding], &[String]) = match top.get(id) {
                Some(node) => (&node.inputs, &node.upstream_node_ids),
                None => (&wf.outputs, &[]),
            };
            let interface = graph.nodes[id].interface.clone();
            self.add_edges(&mut graph, id, interface.as_ref(), bindings, upstream, Direction::Both);
        }
        if let Some(failure) = &wf.failure_node {
            let interface = self.validate_node(wf, &mut graph, failure);
            self.add_edges(&mut graph, &failure.id, interface.as_ref(), &failure.inputs, &[], Direction::Upstream);
        }
        // Nodes no edge reaches run first; nodes nothing consumes run before the end.
        for id in top.keys() {
            if !graph.up.contains_key(id) {
                graph.edge(START, id, Direction::Both);
            }
            if !graph.down.contains_key(id) {
                graph.edge(id, END, Direction::Both);
            }
        }
        self.check_reachable(&graph);
        let ids = |edges: &BTreeMap<String, BTreeSet<String>>| {
            edges.iter().map(|(from, to)| (from.clone(), core::IdList { ids: to.iter().cloned().collect() })).collect()
        };
        self.connections.insert(id, core::ConnectionSet { downstream: ids(&graph.down), upstream: ids(&graph.up) });
    }

    /// Every variable has a name and a type.
    fn check_variables(&mut self, node: &str, variables: &BTreeMap<String, Variable>) {
        for (name, variable) in variables {
            if name.is_empty() {
                self.errors.add("ValueRequired", node, "Value required [paramName].".into());
            }
            if variable.r#type.is_none() {
                self.errors.add("ValueRequired", node, "Value required [param.Type].".into());
            }
        }
    }

    /// flytepropeller's ValidateNode: the node's interface (`None` if it could not be
    /// worked out), its aliases, a branch's cases, a sub-workflow compiled.
    fn validate_node(&mut self, wf: &WorkflowTemplate, graph: &mut Graph, node: &core::Node) -> Option<Interface> {
        if node.id.is_empty() {
            self.errors.add("ValueRequired", "<node>", "Value required [Id].".into());
        }
        if node.id == START || node.id == END {
            return None;
        }
        let interface = self.node_interface(wf, node);
        if let Some(Interface { outputs: Some(outputs), .. }) = &interface {
            self.check_aliases(node, outputs);
        }
        match &node.target {
            Some(Target::BranchNode(branch)) => self.validate_branch(wf, graph, node, branch),
            Some(Target::WorkflowNode(core::WorkflowNode {
                reference: Some(workflow_node::Reference::SubWorkflowRef(id)),
            })) => {
                if let Some(sub) = self.subs.get(&key(id)).copied() {
                    if self.compiled.insert(key(id)) {
                        self.validate_workflow(sub);
                    }
                }
            }
            _ => {}
        }
        interface
    }

    /// flytepropeller's ValidateUnderlyingInterface: what a node takes and gives.
    fn node_interface(&mut self, wf: &WorkflowTemplate, node: &core::Node) -> Option<Interface> {
        let typed = Interface::typed;
        let before = self.errors.count;
        let interface = match &node.target {
            Some(Target::TaskNode(task)) => match &task.reference {
                Some(core::task_node::Reference::ReferenceId(id)) => match self.tasks.get(&key(id)) {
                    Some(task) => Some(typed(&task.interface.clone().unwrap_or_default())),
                    None => {
                        let text = identifier_text(id, true);
                        self.errors.add(
                            "TaskReferenceNotFound",
                            &node.id,
                            format!("Referenced Task [{text}] not found."),
                        );
                        None
                    }
                },
                None => {
                    self.errors.add("ValueRequired", &node.id, "Value required [TaskNode.ReferenceId].".into());
                    None
                }
            },
            Some(Target::WorkflowNode(workflow)) => match &workflow.reference {
                Some(workflow_node::Reference::LaunchplanRef(id)) => {
                    if wf.id.as_ref().is_some_and(|own| key(own) == key(id)) {
                        match &wf.interface {
                            Some(interface) => Some(typed(interface)),
                            None => {
                                self.errors.add(
                                    "ValueRequired",
                                    &node.id,
                                    "Value required [WorkflowNode.Interface].".into(),
                                );
                                None
                            }
                        }
                    } else {
                        Some(self.launch_plan_interface(node, id))
                    }
                }
                Some(workflow_node::Reference::SubWorkflowRef(id)) => match self.subs.get(&key(id)) {
                    Some(sub) => match &sub.interface {
                        Some(interface) => Some(typed(interface)),
                        None => {
                            self.errors.add(
                                "ValueRequired",
                                &node.id,
                                "Value required [WorkflowNode.Template.Interface].".into(),
                            );
                            None
                        }
                    },
                    None => {
                        let text = identifier_text(id, true);
                        self.errors.add(
                            "WorkflowReferenceNotFound",
                            &node.id,
                            format!("Referenced Workflow [{text}] not found."),
                        );
                        None
                    }
                },
                None => {
                    self.errors.add(
                        "WorkflowReferenceNotFound",
                        &node.id,
                        "Referenced Workflow [<nil>/<nil>] not found.".into(),
                    );
                    None
                }
            },
            Some(Target::BranchNode(branch)) => self.branch_interface(wf, node, branch),
            Some(Target::GateNode(gate)) => {
                use core::gate_node::Condition;
                match &gate.condition {
                    // An approval passes its inputs through: open.
                    Some(Condition::Approve(_)) => Some(Interface::open()),
                    Some(Condition::Signal(signal)) => {
                        if signal.r#type.is_none() {
                            self.errors.add("ValueRequired", &node.id, "Value required [GateNode.Signal.Type].".into());
                            None
                        } else if signal.output_variable_name.is_empty() {
                            self.errors.add(
                                "ValueRequired",
                                &node.id,
                                "Value required [GateNode.Signal.OutputVariableName].".into(),
                            );
                            None
                        } else {
                            let output = Variable { r#type: signal.r#type.clone(), description: String::new() };
                            Some(Interface {
                                inputs: Some(Vars::new()),
                                outputs: Some([(signal.output_variable_name.clone(), output)].into()),
                            })
                        }
                    }
                    Some(Condition::Sleep(_)) => {
                        Some(Interface { inputs: Some(Vars::new()), outputs: Some(Vars::new()) })
                    }
                    None => {
                        let id = &node.id;
                        self.errors.add(
                            "NoConditionFound",
                            id,
                            format!("Can't find any condition in gate node [{id}]."),
                        );
                        None
                    }
                }
            }
            // An array node takes and gives what its node does: flytekit writes a mapped
            // task's interface with lists already. A mapped launch plan or sub-workflow keeps
            // its own interface (`is_original_sub_node_interface`), which flytepropeller's
            // code would compare with the lists bound: open rather than refuse.
            Some(Target::ArrayNode(array)) => match &array.node {
                Some(inner @ core::Node { target: Some(Target::TaskNode(_)), .. })
                    if array.is_original_sub_node_interface != Some(true) =>
                {
                    self.node_interface(wf, inner)
                }
                _ => Some(Interface::open()),
            },
            None => {
                self.errors.add("ValueRequired", &node.id, "Value required [Target].".into());
                None
            }
        };
        if let Some(interface) = &interface {
            for vars in [&interface.inputs, &interface.outputs].into_iter().flatten() {
                self.check_variables(&node.id, vars);
            }
        }
        interface.filter(|_| self.errors.count == before)
    }

    /// A launch plan node takes the plan's required inputs and those it binds of the others,
    /// and gives the plan's workflow's outputs.
    fn launch_plan_interface(&self, node: &core::Node, id: &Identifier) -> Interface {
        let Some(Some((expected, outputs))) = self.launch_plans.get(&key(id)) else { return Interface::open() };
        let inputs = expected
            .iter()
            .filter(|(name, (_, required))| *required || node.inputs.iter().any(|b| &b.var == *name))
            .map(|(name, (kind, _))| (name.clone(), Variable { r#type: kind.clone(), description: String::new() }))
            .collect();
        Interface { inputs: Some(inputs), outputs: Some(outputs.clone()) }
    }

    /// flytepropeller's ValidateBooleanExpression: comparisons of operands there, of one
    /// type; variables are inputs the branch node binds.
    fn check_condition(&mut self, graph: &Graph, node: &core::Node, condition: &core::BooleanExpression) {
        use core::boolean_expression::Expr;
        match &condition.expr {
            Some(Expr::Comparison(comparison)) => {
                let right = self.operand_type(graph, node, "RightValue", comparison.right_value.as_ref());
                let left = self.operand_type(graph, node, "LeftValue", comparison.left_value.as_ref());
                if let (Some(Some(right)), Some(Some(left))) = (&right, &left) {
                    if right.r#type != left.r#type {
                        self.errors.add(
                            "MismatchingTypes",
                            &node.id,
                            format!(
                                "Variable [RightValue] (type [{}]) doesn't match expected type [{}].",
                                show_type(Some(right)),
                                show_type(Some(left))
                            ),
                        );
                    }
                }
            }
            Some(Expr::Conjunction(conjunction)) => {
                for side in [&conjunction.left_expression, &conjunction.right_expression] {
                    match side {
                        Some(expression) => self.check_condition(graph, node, expression),
                        None => self.errors.add(
                            "BranchNodeHasNoCondition",
                            &node.id,
                            "One of the branches on the node doesn't have a condition.".into(),
                        ),
                    }
                }
            }
            None => self.errors.add("ValueRequired", &node.id, "Value required [Expr].".into()),
        }
    }

    /// An operand's type: `None` when it is missing (an error), `Some(None)` when it is not
    /// known here.
    fn operand_type(
        &mut self,
        graph: &Graph,
        node: &core::Node,
        side: &str,
        operand: Option<&core::Operand>,
    ) -> Option<Option<LiteralType>> {
        use core::operand::Val;
        let missing = |errors: &mut Errors, what: String| {
            errors.add("ValueRequired", &node.id, format!("Value required [{what}]."));
            None
        };
        match operand.and_then(|o| o.val.as_ref()) {
            None if operand.is_none() => missing(&mut self.errors, side.to_string()),
            Some(Val::Primitive(primitive)) => {
                let scalar = core::Scalar { value: Some(scalar::Value::Primitive(primitive.clone())) };
                Some(literal_type_for_scalar(&scalar))
            }
            Some(Val::Var(var)) if !var.is_empty() => {
                let Some(binding) = node.inputs.iter().find(|b| &b.var == var) else {
                    let id = &node.id;
                    self.errors.add("VariableNameNotFound", id, format!("Variable [{var}] not found on node [{id}]."));
                    return None;
                };
                Some(binding.binding.as_ref().and_then(|data| bound_type(graph, data)))
            }
            // flytepropeller's code reads only primitives and variables; a scalar (flytekit's
            // `is_none()`) is accepted here rather than refused on that reading.
            Some(Val::Scalar(_)) => Some(None),
            _ => missing(&mut self.errors, format!("{side}.Val")),
        }
    }

    /// A branch node's inputs are whatever it binds (open); its outputs those every case
    /// gives (flytepropeller also checks that their types agree, which is not checked here).
    fn branch_interface(
        &mut self,
        wf: &WorkflowTemplate,
        node: &core::Node,
        branch: &core::BranchNode,
    ) -> Option<Interface> {
        let required = |errors: &mut Errors, what: &str| {
            errors.add("ValueRequired", &node.id, format!("Value required [{what}]."));
        };
        let Some(block) = &branch.if_else else {
            required(&mut self.errors, "Branch.IfElse");
            return None;
        };
        let Some(case) = &block.case else {
            required(&mut self.errors, "Branch.IfElse.Case");
            return None;
        };
        let Some(first) = &case.then_node else {
            required(&mut self.errors, "Branch.IfElse.Case.ThenNode");
            return None;
        };
        let mut cases = vec![first];
        for other in &block.other {
            match &other.then_node {
                Some(then) => cases.push(then),
                None => required(&mut self.errors, "IfElse.Case.ThenNode"),
            }
        }
        if let Some(core::if_else_block::Default::ElseNode(otherwise)) = &block.default {
            cases.push(otherwise);
        }
        let mut outputs: Option<Vars> = None;
        for case in cases {
            let count = self.errors.count;
            let case = in_branch(node, case);
            let Some(Interface { outputs: Some(given), .. }) = self.node_interface(wf, &case) else {
                if self.errors.count == count {
                    return Some(Interface::open());
                }
                continue;
            };
            outputs = Some(match outputs {
                None => given,
                Some(so_far) => so_far.into_iter().filter(|(name, _)| given.contains_key(name)).collect(),
            });
        }
        Some(Interface { inputs: None, outputs })
    }

    /// Each output is aliased at most once, and only outputs that exist.
    fn check_aliases(&mut self, node: &core::Node, outputs: &BTreeMap<String, Variable>) {
        let mut seen = BTreeSet::new();
        for alias in &node.output_aliases {
            if !seen.insert(alias.var.as_str()) {
                self.errors.add(
                    "DuplicateAlias",
                    &node.id,
                    format!(
                        "Duplicate alias [{}] found. An output alias can only be used once in the Workflow.",
                        alias.alias
                    ),
                );
            } else if !outputs.contains_key(&alias.var) {
                self.errors.add("ParameterNotBound", &node.id, format!("Parameter not bound [{}].", alias.alias));
            }
        }
    }

    /// flytepropeller's ValidateBranchNode: a case with a condition first, an expression in
    /// every condition, a node in every case, an else node or an error; the inner nodes'
    /// bindings resolved.
    fn validate_branch(
        &mut self,
        wf: &WorkflowTemplate,
        graph: &mut Graph,
        node: &core::Node,
        branch: &core::BranchNode,
    ) {
        let block = branch.if_else.clone().unwrap_or_default();
        let no_condition = "One of the branches on the node doesn't have a condition.";
        if block.case.is_none() {
            self.errors.add("BranchNodeHasNoCondition", &node.id, no_condition.into());
        }
        let mut inner = Vec::new();
        for case in block.case.iter().chain(&block.other) {
            match &case.condition {
                None => self.errors.add("BranchNodeHasNoCondition", &node.id, no_condition.into()),
                Some(condition) => self.check_condition(graph, node, condition),
            }
            match &case.then_node {
                Some(then) => inner.push(then.clone()),
                None => self.errors.add("BranchNodeIdNotFound", &node.id, "BranchNode not assigned".into()),
            }
        }
        match &block.default {
            Some(core::if_else_block::Default::ElseNode(otherwise)) => inner.push(otherwise.clone()),
            Some(core::if_else_block::Default::Error(_)) => {}
            None => self.errors.add(
                "BranchNodeHasNoDefault",
                &node.id,
                "Branch Node must have either the else case set or a default error.".into(),
            ),
        }
        for then in inner.iter().map(|inner| in_branch(node, inner)) {
            let then = &then;
            let before = self.errors.count;
            let interface = self.validate_node(wf, graph, then);
            if self.errors.count == before {
                self.add_edges(graph, &then.id, interface.as_ref(), &then.inputs, &[], Direction::Upstream);
            }
        }
    }

    /// flytepropeller's AddEdges: explicit upstream nodes, then the nodes the bindings read.
    fn add_edges(
        &mut self,
        graph: &mut Graph,
        id: &str,
        interface: Option<&Interface>,
        bindings: &[Binding],
        upstream: &[String],
        direction: Direction,
    ) {
        let Some(interface) = interface else { return };
        if direction == Direction::Both {
            for from in upstream {
                graph.edge(from, id, Direction::Both);
            }
        }
        let params = interface.inputs.as_ref();
        let mut bound = BTreeSet::new();
        for binding in bindings {
            let param = params.map(|p| p.get(&binding.var));
            if let Some(None) = param {
                self.errors.add(
                    "VariableNameNotFound",
                    id,
                    format!("Variable [{}] not found on node [{id}].", binding.var),
                );
                continue;
            }
            let Some(data) = &binding.binding else {
                self.errors.add("ValueRequired", id, "Value required [Binding].".into());
                continue;
            };
            if !bound.insert(binding.var.as_str()) {
                self.errors.add(
                    "ParameterBoundMoreThanOnce",
                    id,
                    format!("Input [{}] is bound more than once.", binding.var),
                );
                continue;
            }
            let expected = param.flatten().and_then(|v| v.r#type.as_ref());
            let typed = param.is_some();
            if let Some(nodes) = self.validate_binding(graph, id, &binding.var, data, expected, typed) {
                for from in nodes {
                    graph.edge(&from, id, direction);
                }
            }
        }
        if let Some(params) = params {
            for (name, variable) in params {
                if !bound.contains(name.as_str()) && !variable.r#type.as_ref().is_some_and(is_optional) {
                    self.errors.add("ParameterNotBound", id, format!("Parameter not bound [{name}]."));
                }
            }
        }
    }

    /// flytepropeller's validateBinding: the nodes a binding reads, or `None` with errors
    /// collected. `expected` is the input's type; `typed` whether the node's inputs are known
    /// at all (an open interface checks references only).
    fn validate_binding(
        &mut self,
        graph: &Graph,
        node: &str,
        param: &str,
        data: &BindingData,
        expected: Option<&LiteralType>,
        typed: bool,
    ) -> Option<Vec<String>> {
        let before = self.errors.count;
        let union = match expected.and_then(|t| t.r#type.as_ref()) {
            Some(Type::UnionType(union)) => Some(union),
            _ => None,
        };
        let direct = matches!(data.value, Some(binding_data::Value::Scalar(_)) | Some(binding_data::Value::Promise(_)));
        if let (Some(union), false) = (union, direct) {
            // A collection or map bound to a union: exactly one variant must take it.
            let mut matched: Option<(&LiteralType, Vec<String>)> = None;
            for variant in &union.variants {
                let (count, set) = (self.errors.count, self.errors.set.clone());
                let result = self.validate_binding(graph, node, param, data, Some(variant), typed);
                let ok = self.errors.count == count;
                (self.errors.count, self.errors.set) = (count, set);
                if let (true, Some(nodes)) = (ok, result) {
                    if let Some((first, _)) = &matched {
                        self.errors.add(
                            "AmbiguousBindingUnionValue",
                            node,
                            format!(
                                "Input [{param}] on node [{node}] expects bindings of union type [{}].  Received [{}] which is ambiguous as both variants [{}] and [{}] match.",
                                show_type(expected),
                                show_binding(data),
                                show_type(Some(first)),
                                show_type(Some(variant))
                            ),
                        );
                        return None;
                    }
                    matched = Some((variant, nodes));
                }
            }
            return match matched {
                Some((_, nodes)) => Some(nodes),
                None => {
                    self.errors.add(
                        "IncompatibleBindingUnionValue",
                        node,
                        format!(
                            "Input [{param}] on node [{node}] expects bindings of union type [{}].  Received [{}] which does not match any of the variants.",
                            show_type(expected),
                            show_binding(data)
                        ),
                    );
                    None
                }
            };
        }
        let mismatching = |errors: &mut Errors, received: String| {
            errors.add(
                "MismatchingBindings",
                node,
                format!(
                    "Input [{param}] on node [{node}] expects bindings of type [{}].  Received [{received}]",
                    show_type(expected)
                ),
            )
        };
        let mut nodes = Vec::new();
        match &data.value {
            Some(binding_data::Value::Collection(collection)) => {
                let element = match expected.and_then(|t| t.r#type.as_ref()) {
                    Some(Type::CollectionType(element)) => Some(element.as_ref()),
                    _ if !typed => None,
                    _ => {
                        mismatching(&mut self.errors, show_binding_value(data));
                        return None;
                    }
                };
                for item in &collection.bindings {
                    nodes.extend(self.validate_binding(graph, node, param, item, element, typed).unwrap_or_default());
                }
            }
            Some(binding_data::Value::Map(map)) => {
                let value = match expected.and_then(|t| t.r#type.as_ref()) {
                    Some(Type::MapValueType(value)) => Some(value.as_ref()),
                    _ if !typed => None,
                    _ => {
                        mismatching(&mut self.errors, show_binding_value(data));
                        return None;
                    }
                };
                for item in map.bindings.values() {
                    nodes.extend(self.validate_binding(graph, node, param, item, value, typed).unwrap_or_default());
                }
            }
            Some(binding_data::Value::Promise(promise)) => {
                let from = if promise.node_id.is_empty() { START } else { promise.node_id.as_str() };
                let Some(upstream) = graph.nodes.get(from) else {
                    self.errors.add("NodeReferenceNotFound", from, format!("Referenced node [{from}] not found."));
                    self.errors.add("ParameterNotBound", node, format!("Parameter not bound [{param}]."));
                    return None;
                };
                // An indexed variable (`[0].o0`) or an upstream node of unknown interface:
                // the reference resolves, the type is not checked.
                let outputs = match &upstream.interface {
                    Some(Interface { outputs: Some(outputs), .. }) if !promise.var.contains('[') => outputs,
                    _ => return Some(vec![from.to_string()]),
                };
                let Some(output) = outputs.get(&promise.var) else {
                    let var = &promise.var;
                    self.errors.add(
                        "VariableNameNotFound",
                        from,
                        format!("Variable [{var}] not found on node [{from}]."),
                    );
                    self.errors.add("ParameterNotBound", node, format!("Parameter not bound [{param}]."));
                    return None;
                };
                let Some(expected) = expected else { return Some(vec![from.to_string()]) };
                let mut source = output.r#type.clone();
                for attribute in &promise.attr_path {
                    let Some(current) = source.clone() else { break };
                    source = match &current.r#type {
                        Some(Type::CollectionType(element)) => Some(element.as_ref().clone()),
                        Some(Type::MapValueType(value)) => Some(value.as_ref().clone()),
                        _ => match current.structure.as_ref().filter(|s| !s.dataclass_type.is_empty()) {
                            Some(structure) => {
                                let field = match &attribute.value {
                                    Some(core::promise_attribute::Value::StringValue(s)) => s.clone(),
                                    _ => String::new(),
                                };
                                match structure.dataclass_type.get(&field) {
                                    Some(t) => Some(t.clone()),
                                    None => {
                                        self.errors.add(
                                            "FieldNotFound",
                                            node,
                                            format!(
                                                "Variable [{}] (type [{}]) doesn't have field [{field}].",
                                                promise.var,
                                                type_text(&current)
                                            ),
                                        );
                                        return None;
                                    }
                                }
                            }
                            None => Some(current),
                        },
                    };
                }
                let source = source.unwrap_or_default();
                if !castable(&source, expected) {
                    let named = |name: &Option<String>, var: &str| match name {
                        Some(name) => format!("{name}.{var}"),
                        None => var.to_string(),
                    };
                    let input = named(&graph.nodes.get(node).and_then(|n| n.name.clone()), param);
                    let output = named(&upstream.name, &promise.var);
                    self.errors.add(
                        "MismatchingTypes",
                        node,
                        format!(
                            "The output variable '{output}' has type [{}], but it's assigned to the input variable '{input}' which has type type [{}].",
                            show_type(Some(&source)),
                            show_type(Some(expected))
                        ),
                    );
                    return None;
                }
                nodes.push(from.to_string());
            }
            Some(binding_data::Value::Scalar(value)) => {
                let Some(actual) = literal_type_for_scalar(value) else {
                    let kind = match &value.value {
                        None => "<nil>",
                        Some(_) => "*core.Scalar",
                    };
                    self.errors.add("UnrecognizedValue", node, format!("Unrecognized value [{kind}]."));
                    return None;
                };
                let Some(expected) = expected else { return Some(nodes) };
                if !castable(&actual, expected) {
                    self.errors.add(
                        "MismatchingTypes",
                        node,
                        format!(
                            "Variable [{param}] (type [{}]) doesn't match expected type [{}].",
                            show_type(Some(&actual)),
                            show_type(Some(expected))
                        ),
                    );
                }
                if let Some(Type::EnumType(allowed)) = &expected.r#type {
                    let given = match &value.value {
                        Some(scalar::Value::Primitive(core::Primitive {
                            value: Some(core::primitive::Value::StringValue(s)),
                        })) => s.as_str(),
                        _ => "",
                    };
                    if !allowed.values.iter().any(|v| v == given) {
                        self.errors.add(
                            "IllegalEnumValue",
                            node,
                            format!(
                                "Input [{param}] on node [{node}] is an Enum and expects value to be one of [[{}]].  Received [{given}]",
                                allowed.values.join(" ")
                            ),
                        );
                    }
                }
            }
            // A value stored elsewhere: its type is not checked here.
            Some(binding_data::Value::OffloadedMetadata(_)) => {}
            None => {
                mismatching(&mut self.errors, String::new());
                return None;
            }
        }
        (self.errors.count == before).then_some(nodes)
    }

    /// flytepropeller's validateReachable: no cycle from the start node, and every node
    /// reached.
    fn check_reachable(&mut self, graph: &Graph) {
        fn visit(
            graph: &Graph,
            id: &str,
            visiting: &mut Vec<String>,
            visited: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if visiting.iter().any(|v| v == id) {
                return Some(vec![id.to_string()]);
            }
            visiting.push(id.to_string());
            visited.insert(id.to_string());
            for next in graph.down.get(id).into_iter().flatten() {
                if let Some(mut path) = visit(graph, next, visiting, visited) {
                    path.insert(0, id.to_string());
                    return Some(path);
                }
            }
            visiting.pop();
            None
        }
        let mut visiting = Vec::new();
        let mut visited = BTreeSet::new();
        if let Some(cycle) = visit(graph, START, &mut visiting, &mut visited) {
            self.errors.add(
                "CycleDetected",
                START,
                format!("A cycle has been detected while traversing the Workflow [{}].", cycle.join(">")),
            );
            return;
        }
        let unreachable: Vec<&str> =
            graph.nodes.keys().filter(|id| !visited.contains(*id) && *id != END).map(String::as_str).collect();
        if !unreachable.is_empty() {
            self.errors.add(
                "UnreachableNodes",
                START,
                format!("The Workflow contain unreachable nodes [{}].", unreachable.join(",")),
            );
        }
    }
}

/// A branch's inner node under the id flytepropeller gives it: `<branch>-<node>`.
fn in_branch(branch: &core::Node, inner: &core::Node) -> core::Node {
    core::Node { id: format!("{}-{}", branch.id, inner.id), ..inner.clone() }
}

/// The type of what a binding gives: a literal's, or the output's it reads; `None` when not
/// known here.
fn bound_type(graph: &Graph, data: &BindingData) -> Option<LiteralType> {
    match data.value.as_ref()? {
        binding_data::Value::Scalar(value) => literal_type_for_scalar(value),
        binding_data::Value::Promise(promise) => {
            let from = if promise.node_id.is_empty() { START } else { promise.node_id.as_str() };
            let outputs = graph.nodes.get(from)?.interface.as_ref()?.outputs.as_ref()?;
            if !promise.attr_path.is_empty() {
                return None;
            }
            outputs.get(&promise.var)?.r#type.clone()
        }
        _ => None,
    }
}

/// A binding as Go prints a `BindingData` (`collection:{bindings:{scalar:{…}}}`).
fn show_binding(data: &BindingData) -> String {
    match &data.value {
        Some(binding_data::Value::Collection(_)) => format!("collection:{{{}}}", show_binding_value(data)),
        Some(binding_data::Value::Map(_)) => format!("map:{{{}}}", show_binding_value(data)),
        _ => show_binding_value(data),
    }
}

/// The value inside a `BindingData`, as Go prints it.
fn show_binding_value(data: &BindingData) -> String {
    match &data.value {
        Some(binding_data::Value::Scalar(value)) => format!("scalar:{{{}}}", show_scalar(value)),
        Some(binding_data::Value::Promise(p)) => format!("promise:{{node_id:{:?} var:{:?}}}", p.node_id, p.var),
        Some(binding_data::Value::Collection(c)) => {
            let items: Vec<String> = c.bindings.iter().map(|b| format!("bindings:{{{}}}", show_binding(b))).collect();
            items.join(" ")
        }
        Some(binding_data::Value::Map(m)) => {
            let items: Vec<String> = m
                .bindings
                .iter()
                .map(|(k, b)| format!("bindings:{{key:{k:?} value:{{{}}}}}", show_binding(b)))
                .collect();
            items.join(" ")
        }
        Some(binding_data::Value::OffloadedMetadata(o)) => format!("offloaded_metadata:{{uri:{:?}}}", o.uri),
        None => String::new(),
    }
}

fn show_scalar(value: &core::Scalar) -> String {
    use core::primitive::Value as P;
    match &value.value {
        Some(scalar::Value::Primitive(core::Primitive { value: Some(p) })) => {
            let p = match p {
                P::Integer(i) => format!("integer:{i}"),
                P::FloatValue(f) => format!("float_value:{f}"),
                P::StringValue(s) => format!("string_value:{s:?}"),
                P::Boolean(b) => format!("boolean:{b}"),
                P::Datetime(t) => format!("datetime:{{seconds:{}}}", t.seconds),
                P::Duration(d) => format!("duration:{{seconds:{}}}", d.seconds),
            };
            format!("primitive:{{{p}}}")
        }
        Some(scalar::Value::NoneType(_)) => "none_type:{}".into(),
        Some(_) => "…".into(),
        None => String::new(),
    }
}
