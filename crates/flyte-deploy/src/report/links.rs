//! Links into the Flyte console (`[flyte] console`) for what a deploy registered: a workflow
//! version's page and a launch plan version's page, as the console routes them
//! (`<console>/projects/P/domains/D/workflow/NAME/version/V`, `…/launch_plan/NAME/version/V`),
//! each path segment escaped. Formats values only.

/// One link of a workflow folder's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `workflow` or `launch plan`.
    pub kind: &'static str,
    /// The entity's name.
    pub name: String,
    pub url: String,
}

/// The entity's version page: `kind` is the console's route word (`workflow`, `launch_plan`).
fn page(console: &str, kind: &str, project: &str, domain: &str, name: &str, version: &str) -> Option<String> {
    let mut url = url::Url::parse(console).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["projects", project, "domains", domain, kind, name, "version", version]);
    Some(url.into())
}

/// The links of everything a workflow folder registered at `version` in `domain`: its Flyte
/// workflows, then its launch plans, each sorted by name.
pub fn links(
    console: &str,
    project: &str,
    domain: &str,
    version: &str,
    workflows: &[String],
    launch_plans: &[String],
) -> Vec<Link> {
    let sorted = |names: &[String]| {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        names
    };
    let mut out = Vec::new();
    for name in sorted(workflows) {
        if let Some(url) = page(console, "workflow", project, domain, &name, version) {
            out.push(Link { kind: "workflow", name, url });
        }
    }
    for name in sorted(launch_plans) {
        if let Some(url) = page(console, "launch_plan", project, domain, &name, version) {
            out.push(Link { kind: "launch plan", name, url });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_consoles_routes_and_escape_each_segment() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = links(
            "https://flyte.example.com/console",
            "flytesnacks",
            "staging",
            "v1+a/b",
            &names(&["etl.pipeline.wf"]),
            &names(&["etl.pipeline.wf", "etl.pipeline.nightly"]),
        );
        let urls: Vec<(&str, &str)> = got.iter().map(|l| (l.kind, l.url.as_str())).collect();
        assert_eq!(
            urls,
            [
                (
                    "workflow",
                    "https://flyte.example.com/console/projects/flytesnacks/domains/staging/workflow/etl.pipeline.wf/version/v1+a%2Fb"
                ),
                (
                    "launch plan",
                    "https://flyte.example.com/console/projects/flytesnacks/domains/staging/launch_plan/etl.pipeline.nightly/version/v1+a%2Fb"
                ),
                (
                    "launch plan",
                    "https://flyte.example.com/console/projects/flytesnacks/domains/staging/launch_plan/etl.pipeline.wf/version/v1+a%2Fb"
                ),
            ]
        );
        // A console at the host's root, or written with a trailing slash, gives the same paths.
        let root = links("http://localhost:30080/", "p", "d", "v", &names(&["w"]), &[]);
        assert_eq!(root[0].url, "http://localhost:30080/projects/p/domains/d/workflow/w/version/v");
    }
}
