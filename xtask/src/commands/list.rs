//! `cargo xtask list`: the workflows of the working tree and what the tool knows of each.

use std::process::ExitCode;

use anyhow::Result;

use flyte_deploy::args::{List, ListFormat};
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::source::WorkDir;
use flyte_deploy::workspace::Workspace;

pub(crate) fn run(args: List) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let ws = Workspace::load(&WorkDir::new(&repo.root))?;
    ws.check_packages()?;
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&ws.workflows)?),
        ListFormat::Text => print!("{}", table(&ws)),
    }
    Ok(ExitCode::SUCCESS)
}

fn table(ws: &Workspace) -> String {
    let mut rows = vec![[
        "WORKFLOW".to_string(),
        "PATH".into(),
        "PROJECT".into(),
        "PACKAGES".into(),
        "IMAGE".into(),
        "SHARED".into(),
    ]];
    for w in &ws.workflows {
        rows.push([
            w.name.clone(),
            w.path.clone(),
            w.project.clone(),
            w.packages.join(","),
            w.dockerfile.clone().unwrap_or_else(|| format!("default ({})", ws.config.images.default)),
            if w.shared.is_empty() { "-".into() } else { w.shared.join(",") },
        ]);
    }
    let mut out = flyte_deploy::report::columns(&rows);
    out.push_str(&format!("{} workflows\n", ws.workflows.len()));
    out
}
