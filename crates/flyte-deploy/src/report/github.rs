//! GitHub Actions output formats: the markdown table a deploy appends to `$GITHUB_STEP_SUMMARY`
//! and `::error` workflow commands for config and policy errors. Pure text; it reads no
//! environment and writes nothing (the command that reports decides when and where).

use std::fmt::Write as _;

/// One workflow's line of the deploy summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow<'a> {
    pub workflow: &'a str,
    /// `rebuild`, `fast`, `unchanged` or `removed`.
    pub action: &'a str,
    pub version: Option<&'a str>,
    pub image: Option<&'a str>,
    /// `registered`, `already-registered`, `deactivated`, `skipped` or `failed`.
    pub outcome: &'a str,
    /// Entities created, already there, failed.
    pub created: usize,
    pub existing: usize,
    pub failed: usize,
    /// Wall time of this workflow's deploy, in milliseconds.
    pub millis: u128,
    /// The error, or warnings joined, shown in the last column.
    pub note: Option<&'a str>,
}

/// A GitHub-flavoured markdown table of a deploy, one row per workflow, ending with a newline.
/// Cell text is escaped so that `|`, `<`, `>`, `&` and line breaks cannot break the table.
pub fn step_summary_markdown(rows: &[SummaryRow<'_>]) -> String {
    let mut out = String::from(
        "| workflow | action | version | image | outcome | created | already there | failed | time | note |\n\
         | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(row.workflow),
            cell(row.action),
            code(row.version),
            code(row.image),
            outcome(row.outcome),
            row.created,
            row.existing,
            row.failed,
            seconds(row.millis),
            row.note.map(cell).unwrap_or_default(),
        );
    }
    out
}

/// The console links of a deploy as a markdown list, one item per workflow folder, after a
/// blank line; nothing when there are none.
pub fn links_markdown(workflows: &[(&str, &[crate::report::links::Link])]) -> String {
    if workflows.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nIn the Flyte console:\n\n");
    for (workflow, links) in workflows {
        let items: Vec<String> =
            links.iter().map(|l| format!("{} [`{}`]({})", l.kind, cell(&l.name).replace('`', "'"), l.url)).collect();
        let _ = writeln!(out, "- **{}**: {}", cell(workflow), items.join(" · "));
    }
    out
}

/// A `::error` workflow command: GitHub shows `message` as an annotation on `file` at `line`.
/// Escapes as the Actions toolkit does: `%`, `\r`, `\n` in the message; those and `:` and `,`
/// in property values.
pub fn error_annotation(file: Option<&str>, line: Option<usize>, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(file) = file {
        properties.push(format!("file={}", escape_property(file)));
        if let Some(line) = line {
            properties.push(format!("line={line}"));
        }
    }
    let separator = if properties.is_empty() { "" } else { " " };
    format!("::error{separator}{}::{}", properties.join(","), escape_data(message))
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Table-cell text: no pipes, no HTML, no line breaks.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// Inline code, or an em dash for none. Backticks inside cannot close the span early.
fn code(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.is_empty() => format!("`{}`", cell(text).replace('`', "'")),
        _ => "—".to_string(),
    }
}

fn outcome(outcome: &str) -> String {
    let mark = match outcome {
        "registered" => "✅ ",
        "already-registered" => "☑️ ",
        "deactivated" => "⏸️ ",
        "failed" => "❌ ",
        _ => "",
    };
    format!("{mark}{}", cell(outcome))
}

fn seconds(millis: u128) -> String {
    format!("{}.{:01}s", millis / 1000, (millis % 1000) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(workflow: &'a str, outcome: &'a str) -> SummaryRow<'a> {
        SummaryRow {
            workflow,
            action: "fast",
            version: Some("abc123"),
            image: Some("localhost:5000/flyte/etl:9f2e"),
            outcome,
            created: 3,
            existing: 1,
            failed: 0,
            millis: 1234,
            note: None,
        }
    }

    #[test]
    fn summary_is_a_table_with_one_row_per_workflow() {
        let md = step_summary_markdown(&[row("etl", "registered"), row("hello", "already-registered")]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4, "{md}");
        assert!(lines[0].starts_with("| workflow | action | version |"), "{md}");
        assert!(lines[1].starts_with("| --- |"), "{md}");
        assert_eq!(
            lines[2],
            "| etl | fast | `abc123` | `localhost:5000/flyte/etl:9f2e` | ✅ registered | 3 | 1 | 0 | 1.2s |  |"
        );
        assert!(lines[3].starts_with("| hello |"), "{md}");
        let columns = |line: &str| line.matches(" | ").count();
        assert!(lines.iter().all(|l| columns(l) == columns(lines[0])), "{md}");
        assert!(md.ends_with('\n'));
    }

    #[test]
    fn summary_cells_cannot_break_the_table() {
        let mut failed = row("etl", "failed");
        failed.version = None;
        failed.image = Some("");
        failed.note = Some("pyflyte failed:\nImportError | <module> & more\r\n");
        let md = step_summary_markdown(&[failed]);
        let line = md.lines().nth(2).unwrap();
        assert_eq!(md.lines().count(), 3, "a line break escaped the cell:\n{md}");
        assert!(line.contains("| — | — | ❌ failed |"), "{line}");
        assert!(line.ends_with("| pyflyte failed:<br>ImportError \\| &lt;module&gt; &amp; more<br> |"), "{line}");
    }

    #[test]
    fn links_are_a_list_of_each_workflows_pages() {
        use crate::report::links::Link;
        assert_eq!(links_markdown(&[]), "");
        let etl = [
            Link {
                kind: "workflow",
                name: "etl.wf".into(),
                url: "https://c/projects/p/domains/d/workflow/etl.wf/version/v".into(),
            },
            Link {
                kind: "launch plan",
                name: "etl.wf".into(),
                url: "https://c/projects/p/domains/d/launch_plan/etl.wf/version/v".into(),
            },
        ];
        let md = links_markdown(&[("etl", &etl)]);
        assert_eq!(
            md,
            "\nIn the Flyte console:\n\n- **etl**: workflow [`etl.wf`](https://c/projects/p/domains/d/workflow/etl.wf/version/v) · \
             launch plan [`etl.wf`](https://c/projects/p/domains/d/launch_plan/etl.wf/version/v)\n"
        );
    }

    #[test]
    fn summary_of_nothing_is_the_header() {
        assert_eq!(step_summary_markdown(&[]).lines().count(), 2);
    }

    #[test]
    fn annotation_names_file_and_line() {
        assert_eq!(
            error_annotation(Some("deploy.toml"), Some(3), "unknown field `projekt`"),
            "::error file=deploy.toml,line=3::unknown field `projekt`"
        );
        assert_eq!(error_annotation(Some("deploy.toml"), None, "bad"), "::error file=deploy.toml::bad");
        assert_eq!(error_annotation(None, Some(3), "no file"), "::error::no file");
    }

    #[test]
    fn annotation_escapes_as_the_actions_toolkit_does() {
        let line = error_annotation(
            Some("workflows/a,b:c%/workflow.toml"),
            Some(7),
            "100% wrong\r\nhelp: fix it: now, please",
        );
        assert_eq!(
            line,
            "::error file=workflows/a%2Cb%3Ac%25/workflow.toml,line=7::100%25 wrong%0D%0Ahelp: fix it: now, please"
        );
        assert_eq!(line.lines().count(), 1);
    }
}
