//! Property tests of the `deploy.toml` / `workflow.toml` parser (`mod.rs`): arbitrary text and
//! generated near-valid TOML never panic, and every error is a user error that starts with
//! `FILE:LINE:COL:` at a place inside the text. `PROPTEST_CASES` sets the number of cases
//! (README: Testing).

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;

use super::{Config, Manifest};
use crate::error::is_user_error;

/// Checks that `result` is Ok, or a user error located in `text` as `file:line:col:`.
fn located<T>(file: &str, text: &str, result: anyhow::Result<T>) -> Result<Option<T>, TestCaseError> {
    let e = match result {
        Ok(value) => return Ok(Some(value)),
        Err(e) => e,
    };
    prop_assert!(is_user_error(&e), "not a user error: {:#}", e);
    let message = e.to_string();
    let rest = message.strip_prefix(&format!("{file}:"));
    let place = rest.and_then(|r| {
        let mut parts = r.splitn(3, ':');
        let line: usize = parts.next()?.parse().ok()?;
        let col: usize = parts.next()?.parse().ok()?;
        parts.next()?.starts_with(' ').then_some((line, col))
    });
    let Some((line, col)) = place else {
        return Err(TestCaseError::fail(format!("the message does not start with {file}:LINE:COL: {message}")));
    };
    let at = text.split('\n').nth(line.wrapping_sub(1));
    prop_assert!(at.is_some(), "line {} is not in the text: {}", line, message);
    let width = at.map_or(0, |l| l.chars().count());
    prop_assert!(col >= 1 && col <= width + 1, "column {} is not on line {} ({} wide): {}", col, line, width, message);
    Ok(None)
}

fn check_deploy(text: &str, branch: &str) -> Result<(), TestCaseError> {
    if let Some(config) = located("deploy.toml", text, Config::parse(Path::new("deploy.toml"), text))? {
        if let Err(e) = config.domain_for_branch(branch) {
            prop_assert!(is_user_error(&e), "not a user error: {:#}", e);
        }
    }
    Ok(())
}

fn check_manifest(text: &str) -> Result<(), TestCaseError> {
    let file = "workflows/a/workflow.toml";
    located(file, text, Manifest::parse(Path::new(file), text))?;
    Ok(())
}

/// Values a key may be given: right and wrong types, odd strings.
fn value() -> impl Strategy<Value = String> {
    let words = r#"|a|main|dev|staging|release/*|*|?|[|{a,b}|**|a/../b|..|/abs|a\\b|x y|1.16.31|>=1.10|default|gpu|content|git-sha|docker|auto|sandbox|é|a=b|workflows|etl.jobs|1x|-p|\u0000"#;
    let word = prop::sample::select(words.split('|').collect::<Vec<_>>());
    let string = word.prop_map(|w| format!("\"{w}\""));
    prop_oneof![
        4 => string.clone(),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        2 => vec(string.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => (prop::sample::select(vec!["gpu", "default", "x y", "a"]), string).prop_map(|(k, v)| format!("{{ \"{k}\" = {v} }}")),
        1 => "[ -~]{0,6}",
    ]
}

/// A line of a near-valid file: a key of some table, a table header, or noise.
fn line() -> impl Strategy<Value = String> {
    let keys = "project workflows version_scheme global dependencies endpoint insecure registry builder default named \
                flytekit name branches promote_from activate raw_output_prefix service_account labels env packages \
                dockerfile shared images domains gpu";
    let key = prop::sample::select(keys.split_whitespace().collect::<Vec<_>>());
    let headers =
        "[flyte] [images] [images.named] [python] [[domains]] [domains.settings] [domains] [[images]] [settings]";
    let header = prop::sample::select(headers.split_whitespace().collect::<Vec<_>>());
    prop_oneof![
        6 => (key, value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => header.prop_map(str::to_string),
        1 => "[ -~]{0,12}",
    ]
}

/// A near-valid file, perhaps with one character inserted or deleted somewhere.
fn near_valid() -> impl Strategy<Value = String> {
    let damage =
        proptest::option::of((any::<prop::sample::Index>(), prop_oneof![Just(None), any::<char>().prop_map(Some)]));
    (vec(line(), 0..10), damage).prop_map(|(lines, damage)| {
        let mut text: Vec<char> = lines.join("\n").chars().collect();
        if let Some((at, change)) = damage {
            let i = at.index(text.len() + 1);
            match change {
                Some(c) => text.insert(i, c),
                None if i < text.len() => {
                    text.remove(i);
                }
                None => {}
            }
        }
        text.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn props_arbitrary_text_never_panics(text in any::<String>(), branch in "[ -~]{0,10}") {
        check_deploy(&text, &branch)?;
        check_manifest(&text)?;
    }

    #[test]
    fn props_near_valid_toml_fails_at_a_place_in_the_text(text in near_valid(), branch in "[a-z/*]{0,10}") {
        check_deploy(&text, &branch)?;
        check_manifest(&text)?;
    }
}

#[test]
fn deeply_nested_values_are_an_error_not_a_stack_overflow() {
    for depth in [100, 10_000] {
        let text = format!("project = {}", "[".repeat(depth));
        let result = Config::parse(Path::new("deploy.toml"), &text);
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("deploy.toml:1:"), "{message}");
        let text = format!("images = {}", "{a = ".repeat(depth));
        let message =
            Manifest::parse(Path::new("workflow.toml"), &text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("workflow.toml:1:"), "{message}");
    }
}
