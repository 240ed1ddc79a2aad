//! FlyteAdmin's validators for the create calls: an identifier of the kind created; a task's
//! type, metadata, interface, image and resource quantities; a launch plan's labels, fixed
//! and default inputs against its workflow's interface, and a schedule's inputs. Pure: the
//! caller reads the workflow from the store. Codes and messages are FlyteAdmin's.
//!
//! Platform limits, task-type allow-lists and what a cron expression's fields hold depend on
//! a cluster's configuration or are not modelled: they are not checked (accepted).

// gRPC answers are `tonic::Status`, the error type every tonic service and client uses.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use flyte_api::admin::{self, schedule::Expression};
use flyte_api::core::{self, literal_type::Type, parameter::Behavior, task_template::Target, Identifier};
use flyte_api::{Kind, Message};
use tonic::Status;

use crate::compile::identifier_text;
use crate::types::{castable, literal_type_for_literal, show_type, simple};

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// FlyteAdmin's `missing <field>`.
fn missing(field: &str) -> Status {
    invalid(format!("missing {field}"))
}

/// `ResourceType` names, as FlyteAdmin's messages write them (lower case).
fn resource_type_name(value: i32) -> String {
    match value {
        0 => "unspecified".into(),
        4 => "dataset".into(),
        other => match Kind::from_resource_type(other) {
            Some(kind) => kind.proto_name().to_lowercase(),
            None => other.to_string(),
        },
    }
}

/// FlyteAdmin's ValidateIdentifier: an identifier of the kind created, with project,
/// domain, name and version.
pub(crate) fn identifier(kind: Kind, id: &Identifier) -> Result<(), Status> {
    if id.resource_type != kind.resource_type() {
        return Err(invalid(format!(
            "unexpected resource type {} for identifier [{}], expected {} instead",
            resource_type_name(id.resource_type),
            identifier_text(id, true),
            resource_type_name(kind.resource_type())
        )));
    }
    for (field, value) in
        [("project", &id.project), ("domain", &id.domain), ("name", &id.name), ("version", &id.version)]
    {
        if value.is_empty() {
            return Err(missing(field));
        }
    }
    Ok(())
}

/// ValidateTask's checks of a TaskSpec's template.
pub(crate) fn task(id: &Identifier, spec: &[u8]) -> Result<(), Status> {
    let spec = admin::TaskSpec::decode(spec).map_err(|e| invalid(format!("bad task spec: {e}")))?;
    let template = spec.template.ok_or_else(|| missing("spec"))?;
    if template.r#type.is_empty() {
        return Err(missing("type"));
    }
    let metadata = template.metadata.as_ref().ok_or_else(|| missing("metadata"))?;
    if metadata.runtime.as_ref().is_some_and(|r| r.version.is_empty()) {
        return Err(missing("runtime version"));
    }
    if template.interface.is_none() {
        return Err(missing("typed interface"));
    }
    match &template.target {
        Some(Target::Container(container)) => {
            if container.image.is_empty() {
                return Err(missing("image"));
            }
            if let Some(resources) = &container.resources {
                check_resources(id, resources)?;
            }
        }
        Some(Target::K8sPod(pod)) if pod.pod_spec.is_none() => {
            return Err(invalid(
                "invalid TaskSpecification, pod tasks should specify their target as a K8sPod with a defined pod spec",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// `Resources.ResourceName` values FlyteAdmin checks, with their names.
const CPU: i32 = 1;
const GPU: i32 = 2;
const MEMORY: i32 = 3;
const EPHEMERAL_STORAGE: i32 = 5;

fn resource_name(value: i32) -> &'static str {
    match value {
        CPU => "CPU",
        GPU => "GPU",
        MEMORY => "MEMORY",
        EPHEMERAL_STORAGE => "EPHEMERAL_STORAGE",
        _ => "UNKNOWN",
    }
}

/// Requests and limits parse as Kubernetes quantities, each named once; a GPU count is
/// whole and its request equals its limit; no request exceeds its limit.
fn check_resources(id: &Identifier, resources: &core::Resources) -> Result<(), Status> {
    let requests = quantities(id, &resources.requests)?;
    let limits = quantities(id, &resources.limits)?;
    for (name, (request_text, request)) in &requests {
        let limit = limits.get(name);
        match *name {
            CPU | MEMORY | EPHEMERAL_STORAGE => {
                if let Some((limit_text, limit)) = limit {
                    if limit.ceil() < request.ceil() {
                        return Err(invalid(format!(
                            "Requested {} default [{request_text}] is greater than the limit [{limit_text}]. Please fix your configuration",
                            resource_name(*name)
                        )));
                    }
                }
            }
            GPU if limit.is_some_and(|(_, limit)| limit.ceil() != request.ceil()) => {
                return Err(invalid(format!(
                    "For extended resource 'gpu' the default value must equal the limit value for task [{}]",
                    identifier_text(id, true)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn quantities(id: &Identifier, entries: &[core::ResourceEntry]) -> Result<BTreeMap<i32, (String, f64)>, Status> {
    let mut out = BTreeMap::new();
    for entry in entries {
        if !matches!(entry.name, CPU | GPU | MEMORY | EPHEMERAL_STORAGE) {
            continue;
        }
        if out.contains_key(&entry.name) {
            return Err(invalid(format!(
                "can't specify {} limit for task [{}] multiple times",
                resource_name(entry.name),
                identifier_text(id, true)
            )));
        }
        let value = parse_quantity(&entry.value).map_err(|reason| {
            invalid(format!(
                "Parsing of {} request failed for value {} - reason  {reason}. Please follow K8s conventions for resources https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
                resource_name(entry.name),
                entry.value
            ))
        })?;
        if entry.name == GPU && value.fract() != 0.0 {
            return Err(invalid(format!(
                "gpu for [{}] must be a whole number, got: {} instead",
                identifier_text(id, true),
                entry.value
            )));
        }
        out.insert(entry.name, (entry.value.clone(), value));
    }
    Ok(out)
}

const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A Kubernetes resource quantity (`500m`, `1.5Gi`, `2e3`) as a number, or the reason
/// Kubernetes gives for refusing it.
pub(crate) fn parse_quantity(text: &str) -> Result<f64, &'static str> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        pos = 1;
    }
    let mut digits = 0;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
        digits += 1;
    }
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return Err(QUANTITY_FORMAT);
    }
    let number: f64 = text[..pos].parse().map_err(|_| "unable to parse quantity's numeric part")?;
    // The suffix: letters of the known set, then an optional signed exponent.
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && matches!(bytes[pos], b'+' | b'-') {
        pos += 1;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < bytes.len() {
        return Err(QUANTITY_FORMAT);
    }
    let suffix = &text[suffix_start..];
    let binary = |power: i32| 1024f64.powi(power);
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().map_err(|_| "unable to parse quantity's suffix")?;
            10f64.powi(power)
        }
        _ => return Err("unable to parse quantity's suffix"),
    };
    Ok(number * multiplier)
}

/// ValidateLaunchPlan's checks, against the interface of the workflow it launches (the
/// WorkflowSpec `workflow`).
pub(crate) fn launch_plan(spec: &admin::LaunchPlanSpec, workflow: &[u8]) -> Result<(), Status> {
    if let Some(labels) = &spec.labels {
        check_labels(&labels.values)?;
    }
    let fixed = spec.fixed_inputs.as_ref().map(|m| &m.literals);
    for (name, value) in fixed.into_iter().flatten() {
        if name.is_empty() {
            return Err(invalid("missing key in fixed_inputs"));
        }
        if value.value.is_none() {
            return Err(invalid(format!("missing valid literal in fixed_inputs {name}")));
        }
    }
    let defaults = spec.default_inputs.as_ref().map(|m| &m.parameters);
    for (name, parameter) in defaults.into_iter().flatten() {
        check_parameter(name, parameter)?;
    }
    let inputs = admin::WorkflowSpec::decode(workflow)
        .ok()
        .and_then(|s| s.template)
        .and_then(|t| t.interface)
        .and_then(|i| i.inputs)
        .map(|m| m.variables)
        .unwrap_or_default();
    let fixed = fixed.cloned().unwrap_or_default();
    let defaults = defaults.cloned().unwrap_or_default();
    let expected = expected_inputs(&inputs, &fixed, &defaults)?;
    check_schedule(spec, &expected)
}

/// A launch plan's expected inputs (FlyteAdmin's `checkAndFetchExpectedInputForLaunchPlan`):
/// the workflow's inputs less the fixed ones, each with its default or required. Fixed and
/// default inputs must be inputs of the workflow, of a type it takes.
pub(crate) fn expected_inputs(
    inputs: &BTreeMap<String, core::Variable>,
    fixed: &BTreeMap<String, core::Literal>,
    defaults: &BTreeMap<String, core::Parameter>,
) -> Result<BTreeMap<String, (Option<core::LiteralType>, bool)>, Status> {
    if inputs.is_empty() {
        if !defaults.is_empty() {
            return Err(invalid(format!(
                "invalid launch plan default inputs, expected none but found {}",
                defaults.len()
            )));
        }
        if !fixed.is_empty() {
            return Err(invalid(format!("invalid launch plan fixed inputs, expected none but found {}", fixed.len())));
        }
        return Ok(BTreeMap::new());
    }
    for (name, parameter) in defaults {
        let Some(input) = inputs.get(name) else {
            return Err(invalid(format!("unexpected default_input {name}")));
        };
        let given = parameter.var.as_ref().and_then(|v| v.r#type.as_ref());
        if let (Some(given), Some(wanted)) = (given, input.r#type.as_ref()) {
            if !castable(given, wanted) {
                return Err(invalid(format!(
                    "invalid default_input wrong type {name}, expected {}, got {} instead",
                    show_type(Some(given)),
                    show_type(Some(wanted))
                )));
            }
        }
    }
    for (name, value) in fixed {
        let Some(input) = inputs.get(name) else {
            return Err(invalid(format!("unexpected fixed_input {name}")));
        };
        if let (Some(given), Some(wanted)) = (literal_type_for_literal(value), input.r#type.as_ref()) {
            if !castable(&given, wanted) {
                return Err(invalid(format!(
                    "invalid fixed_input wrong type {name}, expected {}, got {} instead",
                    show_type(Some(wanted)),
                    show_type(Some(&given))
                )));
            }
        }
    }
    let mut expected = BTreeMap::new();
    for (name, input) in inputs {
        if let Some(parameter) = defaults.get(name) {
            let required = matches!(parameter.behavior, Some(Behavior::Required(true)));
            expected.insert(name.clone(), (parameter.var.as_ref().and_then(|v| v.r#type.clone()), required));
        } else if !fixed.contains_key(name) {
            expected.insert(name.clone(), (input.r#type.clone(), true));
        }
    }
    Ok(expected)
}

/// A default input has a typed variable, a default or required, and a default of its type.
fn check_parameter(name: &str, parameter: &core::Parameter) -> Result<(), Status> {
    if name.is_empty() {
        return Err(invalid("missing key in default_inputs"));
    }
    let Some(wanted) = parameter.var.as_ref().and_then(|v| v.r#type.as_ref()) else {
        return Err(invalid(format!(
            "The Variable component of the Parameter {name} in default_inputs either is missing, or has a missing Type"
        )));
    };
    match &parameter.behavior {
        None | Some(Behavior::Required(false)) => Err(invalid(format!(
            "Invalid variable {name} in default_inputs - variable has neither default, nor is required. One must be specified"
        ))),
        Some(Behavior::Default(value)) => match literal_type_for_literal(value) {
            Some(given) if !castable(&given, wanted) => Err(invalid(format!(
                "Type mismatch for Parameter {name} in default_inputs has type {}, expected {}",
                show_type(Some(wanted)),
                show_type(Some(&given))
            ))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A scheduled launch plan binds every required input but the kickoff time, which is a
/// free datetime input.
fn check_schedule(
    spec: &admin::LaunchPlanSpec,
    expected: &BTreeMap<String, (Option<core::LiteralType>, bool)>,
) -> Result<(), Status> {
    let Some(schedule) = spec.entity_metadata.as_ref().and_then(|m| m.schedule.as_ref()) else { return Ok(()) };
    let scheduled = match &schedule.expression {
        Some(Expression::CronExpression(cron)) => !cron.is_empty(),
        Some(Expression::Rate(_)) | Some(Expression::CronSchedule(_)) => true,
        None => false,
    };
    if !scheduled {
        return Ok(());
    }
    let cron = match &schedule.expression {
        Some(Expression::CronExpression(cron)) => Some(cron.as_str()),
        Some(Expression::CronSchedule(cron)) => Some(cron.schedule.as_str()),
        _ => None,
    };
    let kickoff = &schedule.kickoff_time_input_arg;
    for (name, (_, required)) in expected {
        if *required && name != kickoff {
            return Err(invalid(format!(
                "Cannot create a launch plan with a schedule if there is an unbound required input. [{name}] is required"
            )));
        }
    }
    if !kickoff.is_empty() {
        match expected.get(kickoff) {
            None => {
                return Err(invalid(format!(
                    "Cannot create a schedule with a KickoffTimeInputArg that does not point to a free input. [{kickoff}] is not free or does not exist."
                )))
            }
            Some((kind, _)) => {
                if !matches!(kind.as_ref().and_then(|t| t.r#type.as_ref()), Some(Type::Simple(simple::DATETIME))) {
                    return Err(invalid(format!(
                        "KickoffTimeInputArg must reference a datetime input. [{kickoff}] is a [{}]",
                        show_type(kind.as_ref())
                    )));
                }
            }
        }
    }
    match cron.filter(|c| !c.is_empty()).map(cron_fields) {
        Some(Err(reason)) => Err(invalid(format!("Invalid cron expression: {reason}"))),
        _ => Ok(()),
    }
}

/// The one check of a standard cron expression made here (robfig/cron's ParseStandard,
/// which FlyteAdmin uses): five fields, unless a descriptor (`@daily`, `@every 1h`, …).
/// What the fields hold is not checked (accepted).
fn cron_fields(expression: &str) -> Result<(), String> {
    let mut spec = expression.trim();
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            spec = rest.split_once(' ').map_or("", |(_, rest)| rest).trim();
        }
    }
    if spec.starts_with('@') {
        return Ok(());
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    Ok(())
}

/// At most 16 labels, each key a Kubernetes qualified name and each value a valid label
/// value (FlyteAdmin's `validateLabels`).
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), Status> {
    if labels.len() > 16 {
        return Err(invalid("labels map cannot exceed 16 entries"));
    }
    for (key, value) in labels {
        let errors = qualified_name_errors(key);
        if !errors.is_empty() {
            return Err(invalid(format!("invalid label key [{key}]: [{}]", errors.join(" "))));
        }
        let errors = label_value_errors(value);
        if !errors.is_empty() {
            return Err(invalid(format!("invalid label value [{value}]: [{}]", errors.join(" "))));
        }
    }
    Ok(())
}

const NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Whether `text` matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]` whole.
fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Kubernetes' `IsQualifiedName`: `[prefix/]name`.
fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(subdomain_errors(prefix).into_iter().map(|e| format!("prefix part {e}")));
            }
            *name
        }
        _ => {
            return vec![format!(
            "a qualified name {NAME_MESSAGE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        )]
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".into());
    }
    if !is_name(name) {
        errors.push(format!("name part {NAME_MESSAGE}"));
    }
    errors
}

/// Kubernetes' `IsDNS1123Subdomain`.
fn subdomain_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > 253 {
        errors.push("must be no more than 253 characters".into());
    }
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                let lower = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
                lower(first) && lower(last) && bytes.iter().all(|b| lower(b) || *b == b'-')
            }
            _ => false,
        }
    };
    if !text.split('.').all(label_ok) {
        errors.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
    }
    errors
}

/// Kubernetes' `IsValidLabelValue`: empty, or a name of at most 63 characters.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".into());
    }
    if !value.is_empty() && !is_name(value) {
        errors.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_parses_them() {
        for (text, value) in [
            ("1", 1.0),
            ("500m", 0.5),
            ("1Gi", 1024.0 * 1024.0 * 1024.0),
            ("1.5Ki", 1536.0),
            ("2k", 2000.0),
            ("1e3", 1000.0),
            ("1e-3", 0.001),
            ("1E", 1e18),
            (".5", 0.5),
            ("5.", 5.0),
            ("+2", 2.0),
            ("-2", -2.0),
        ] {
            assert_eq!(parse_quantity(text), Ok(value), "{text}");
        }
        for text in ["", ".", "two", "1 ", "1.2.3", "1Gb", "1e3Mi", "Ki"] {
            assert_eq!(parse_quantity(text), Err(QUANTITY_FORMAT), "{text:?}");
        }
        for text in ["1ki", "1iK", "1e", "1mm"] {
            assert_eq!(parse_quantity(text), Err("unable to parse quantity's suffix"), "{text:?}");
        }
    }

    #[test]
    fn label_keys_and_values_as_kubernetes_takes_them() {
        for key in ["team", "a.b-c_d", "example.com/team", "x"] {
            assert!(qualified_name_errors(key).is_empty(), "{key}");
        }
        assert_eq!(
            qualified_name_errors("Example.com/team"),
            vec![format!("prefix part {}", subdomain_errors("Example.com")[0])]
        );
        assert_eq!(qualified_name_errors("/team"), vec!["prefix part must be non-empty".to_string()]);
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert_eq!(
            qualified_name_errors(""),
            vec!["name part must be non-empty".to_string(), format!("name part {NAME_MESSAGE}")]
        );
        assert_eq!(
            qualified_name_errors(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_string()]
        );
        for value in ["", "ml", "a.b_c-d", &"v".repeat(63)] {
            assert!(label_value_errors(value).is_empty(), "{value}");
        }
        assert_eq!(label_value_errors("-ml").len(), 1);
        assert_eq!(label_value_errors(&"v".repeat(64)), vec!["must be no more than 63 characters".to_string()]);
    }

    #[test]
    fn cron_expressions_have_five_fields_or_a_descriptor() {
        for ok in ["0 2 * * *", "*/5 * * * 1-5", "@daily", "@every 1h", "CRON_TZ=Europe/Paris 0 2 * * *"] {
            assert_eq!(cron_fields(ok), Ok(()), "{ok}");
        }
        assert_eq!(cron_fields("0 0 2 * * *"), Err("expected exactly 5 fields, found 6: [0 0 2 * * *]".to_string()));
        assert_eq!(cron_fields("daily"), Err("expected exactly 5 fields, found 1: [daily]".to_string()));
    }
}
