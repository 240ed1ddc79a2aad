//! `cargo xtask history`: what was registered where, from which commit, oldest first, from
//! the record store of the configured endpoint (the sandbox's store, or git notes), and per
//! version its path through the domains.

use std::process::ExitCode;

use anyhow::Result;

use flyte_deploy::args::{History, ReportFormat};
use flyte_deploy::registration::admin::Address;
use flyte_deploy::registration::record::{self, Record, Store};
use flyte_deploy::report::columns;
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::source::WorkDir;
use flyte_deploy::workspace::Workspace;

pub(crate) fn run(args: History) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let ws = Workspace::load(&WorkDir::new(&repo.root))?;
    if let Some(d) = &args.domain {
        if ws.config.domain(d).is_none() {
            return Err(flyte_deploy::error::user(
                format!("no domain named '{d}'"),
                format!(
                    "name one of: {}",
                    ws.config.domains.iter().map(|d| d.name.value.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let store = Store::for_address(&Address::from_config(&ws.config, &repo.root)?);
    let records: Vec<Record> = store
        .load(&repo.git)?
        .into_iter()
        .filter(|r| args.workflow.as_ref().is_none_or(|w| &r.workflow == w))
        .filter(|r| args.domain.as_ref().is_none_or(|d| &r.domain == d))
        .collect();
    let notes_hint = record::missing_notes_hint(&store, &repo.git);
    if let Some(w) = args.workflow.as_ref().filter(|w| records.is_empty() && ws.workflow(w).is_none()) {
        // A removed workflow keeps its history; a name neither known nor recorded is a typo.
        let known = ws.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
        let mut help = format!("known workflows: {known} (see `cargo xtask list`)");
        if let Some(hint) = &notes_hint {
            help = format!("{help}; {hint}");
        }
        return Err(flyte_deploy::error::user(
            format!("no workflow named '{w}' in {}/, and no deploy of one recorded", ws.config.workflows),
            help,
        ));
    }
    if let Some(hint) = notes_hint {
        flyte_deploy::output::note(hint);
    }
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        ReportFormat::Text => print!("{}", text(&records, args.workflow.is_some())),
    }
    Ok(ExitCode::SUCCESS)
}

/// The table, and with one workflow each version's path through the domains.
pub(crate) fn text(records: &[Record], paths: bool) -> String {
    if records.is_empty() {
        return "no deploys recorded\n".into();
    }
    let mut rows = vec![[
        "TIME".to_string(),
        "WORKFLOW".into(),
        "DOMAIN".into(),
        "VERSION".into(),
        "OUTCOME".into(),
        "COMMIT".into(),
        "FROM".into(),
        "ACTOR".into(),
    ]];
    for r in records {
        rows.push([
            r.time.clone(),
            r.workflow.clone(),
            r.domain.clone(),
            r.version.clone(),
            r.outcome.clone(),
            r.commit.chars().take(12).collect(),
            r.promoted_from.clone().unwrap_or_else(|| "-".into()),
            r.actor.clone(),
        ]);
    }
    let mut out = columns(&rows);
    if paths {
        let mut versions: Vec<&str> = Vec::new();
        for r in records {
            if !r.version.is_empty() && !versions.contains(&r.version.as_str()) {
                versions.push(&r.version);
            }
        }
        for v in versions {
            let steps: Vec<String> = records
                .iter()
                .filter(|r| r.version == v && record::reached(r))
                .map(|r| format!("{} ({}, {:.12})", r.domain, r.time, r.commit))
                .collect();
            if !steps.is_empty() {
                out.push_str(&format!("version {v}: {}\n", steps.join(" → ")));
            }
        }
    }
    out
}
