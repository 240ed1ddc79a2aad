//! The report of a deploy or promotion: per workflow what was done, in DESIGN.md's deploy
//! JSON shape, as a text table, and as markdown for a CI job summary. Formats values only.

use serde::Serialize;

use crate::report::columns;
use crate::report::links::{links, Link};

/// The whole report (`deploy --format json`, `promote --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub domain: String,
    pub base: Option<String>,
    pub head: String,
    pub workflows: Vec<WorkflowSummary>,
}

/// What happened to one workflow.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowSummary {
    pub name: String,
    /// The plan's action: rebuild, fast, unchanged, removed.
    pub action: String,
    pub version: Option<String>,
    pub image: Option<String>,
    pub outcome: Outcome,
    pub entities: Entities,
    /// Every container image the workflow's registered tasks use.
    pub images: Vec<String>,
    /// The console page of the registered version (its first workflow's, else its first
    /// launch plan's), when `[flyte] console` is set and the version is in the domain.
    pub url: Option<String>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// Seconds of this workflow's own work (text output only).
    #[serde(skip)]
    pub seconds: f64,
    /// Console links of every workflow and launch plan it has at the version (text and
    /// markdown; the JSON has the first as `url`).
    #[serde(skip)]
    pub links: Vec<Link>,
}

impl WorkflowSummary {
    /// A workflow's row before anything is done: no entities, images, warnings, links or
    /// time yet.
    pub fn new(name: &str, action: &str, version: Option<String>, image: Option<String>, outcome: Outcome) -> Self {
        WorkflowSummary {
            name: name.to_string(),
            action: action.to_string(),
            version,
            image,
            outcome,
            entities: Entities::default(),
            images: Vec::new(),
            url: None,
            warnings: Vec::new(),
            error: None,
            seconds: 0.0,
            links: Vec::new(),
        }
    }

    /// Sets the console links of what the workflow has at its version in `domain`, when a
    /// console is configured and the version is there (registered or already registered).
    pub fn link(
        &mut self,
        console: Option<&str>,
        project: &str,
        domain: &str,
        workflows: &[String],
        launch_plans: &[String],
    ) {
        let (Some(console), Some(version)) = (console, self.version.as_deref()) else { return };
        if !matches!(self.outcome, Outcome::Registered | Outcome::AlreadyRegistered) {
            return;
        }
        self.links = links(console, project, domain, version, workflows, launch_plans);
        self.url = self.links.first().map(|l| l.url.clone());
    }
}

/// What a line of [`Summary::problems`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Warning,
    Error,
}

/// The outcome of one workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Registered,
    AlreadyRegistered,
    Deactivated,
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Registered => "registered",
            Outcome::AlreadyRegistered => "already-registered",
            Outcome::Deactivated => "deactivated",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Entities of one workflow by what registration found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Entities {
    pub created: usize,
    pub existing: usize,
    pub failed: usize,
}

impl Summary {
    /// True when no workflow failed.
    pub fn succeeded(&self) -> bool {
        self.workflows.iter().all(|w| w.outcome != Outcome::Failed)
    }

    /// The text table and the totals (stdout); warnings and errors are [`Summary::problems`].
    pub fn text(&self) -> String {
        let mut rows = vec![[
            "WORKFLOW".to_string(),
            "ACTION".into(),
            "VERSION".into(),
            "OUTCOME".into(),
            "CREATED".into(),
            "THERE".into(),
            "FAILED".into(),
            "TIME".into(),
            "IMAGE".into(),
        ]];
        for w in &self.workflows {
            rows.push([
                w.name.clone(),
                w.action.clone(),
                w.version.clone().unwrap_or_else(|| "-".into()),
                w.outcome.as_str().into(),
                w.entities.created.to_string(),
                w.entities.existing.to_string(),
                w.entities.failed.to_string(),
                format!("{:.1}s", w.seconds),
                w.image.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        let mut out = format!(
            "domain {} · head {:.12}{}\n",
            self.domain,
            self.head,
            self.base.as_deref().map(|b| format!(" · base {b:.12}")).unwrap_or_default()
        );
        out.push_str(&columns(&rows));
        let mut links = vec![["LINKS".to_string(), String::new(), String::new(), String::new()]];
        for w in &self.workflows {
            links.extend(w.links.iter().map(|l| [w.name.clone(), l.kind.to_string(), l.name.clone(), l.url.clone()]));
        }
        if links.len() > 1 {
            out.push_str(&columns(&links));
        }
        let count = |o: Outcome| self.workflows.iter().filter(|w| w.outcome == o).count();
        out.push_str(&format!(
            "{} registered, {} already registered, {} deactivated, {} skipped, {} failed\n",
            count(Outcome::Registered),
            count(Outcome::AlreadyRegistered),
            count(Outcome::Deactivated),
            count(Outcome::Skipped),
            count(Outcome::Failed)
        ));
        out
    }

    /// Each workflow's warnings and error, one a line (`warning: NAME: …`, `error: NAME: …`),
    /// for stderr: failures never go to stdout, where the data is.
    pub fn problems(&self) -> Vec<(Problem, String)> {
        let mut out = Vec::new();
        for w in &self.workflows {
            for warning in &w.warnings {
                out.push((Problem::Warning, format!("{}: {warning}", w.name)));
            }
            if let Some(e) = &w.error {
                out.push((Problem::Error, format!("{}: {e}", w.name)));
            }
        }
        out
    }

    /// A markdown table for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let notes: Vec<Option<String>> = self
            .workflows
            .iter()
            .map(|w| w.error.clone().or_else(|| (!w.warnings.is_empty()).then(|| w.warnings.join("; "))))
            .collect();
        let rows: Vec<crate::report::github::SummaryRow> = self
            .workflows
            .iter()
            .zip(&notes)
            .map(|(w, note)| crate::report::github::SummaryRow {
                workflow: &w.name,
                action: &w.action,
                version: w.version.as_deref(),
                image: w.image.as_deref(),
                outcome: w.outcome.as_str(),
                created: w.entities.created,
                existing: w.entities.existing,
                failed: w.entities.failed,
                millis: (w.seconds * 1000.0) as u128,
                note: note.as_deref(),
            })
            .collect();
        let links: Vec<(&str, &[Link])> = self
            .workflows
            .iter()
            .filter(|w| !w.links.is_empty())
            .map(|w| (w.name.as_str(), w.links.as_slice()))
            .collect();
        format!(
            "### flyte-deploy → `{}`\n\n{}{}",
            self.domain,
            crate::report::github::step_summary_markdown(&rows),
            crate::report::github::links_markdown(&links)
        )
    }
}
