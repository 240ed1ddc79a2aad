//! Branch policy: who may register where. A pure decision over the configuration, the
//! branch being deployed, whether this is CI, and the kind of operation; checked before
//! anything is uploaded or registered.

use anyhow::Result;

use crate::config::{Config, Domain};
use crate::error;

/// What is being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation<'a> {
    /// `deploy` of the commit's workflows; `dirty` when uncommitted work is included.
    Deploy { dirty: bool },
    /// `promote --from <from>`.
    Promote { from: &'a str },
}

/// Where the operation runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context<'a> {
    /// The branch being deployed (`None`: detached HEAD without CI context).
    pub branch: Option<&'a str>,
    /// True in CI (`CI=true`).
    pub ci: bool,
}

/// The domain every developer may deploy to, and the only one taking uncommitted work.
pub(crate) const DEVELOPMENT: &str = "development";

/// Ok when `op` into `domain` is allowed from `ctx`; otherwise a user error saying why and
/// what is allowed.
pub(crate) fn check(config: &Config, domain: &Domain, op: Operation, ctx: Context) -> Result<()> {
    let name = &domain.name.value;
    let branch_text = ctx.branch.map_or_else(|| "a detached HEAD".to_string(), |b| format!("branch '{b}'"));
    match op {
        Operation::Deploy { dirty } => {
            if let Some(from) = &domain.promote_from {
                return Err(error::user(
                    format!("domain '{name}' takes only promotions from '{}' ({})", from.value, from.place()),
                    format!(
                        "deploy to '{}' first, then run `cargo xtask promote --from {} --to {name}` from a release branch in CI",
                        from.value, from.value
                    ),
                ));
            }
            if dirty && name != DEVELOPMENT {
                return Err(error::user(
                    format!("uncommitted work may be deployed only to '{DEVELOPMENT}', not to '{name}'"),
                    format!("commit your changes, or deploy with --domain {DEVELOPMENT}"),
                ));
            }
            if !branch_allowed(domain, ctx.branch) && !hotfix(config, domain, ctx) {
                return Err(error::user(
                    format!("{branch_text} may not deploy to domain '{name}' (its branches: {})", patterns(domain)),
                    allowed_help(config, ctx.branch),
                ));
            }
            Ok(())
        }
        Operation::Promote { from } => {
            match &domain.promote_from {
                Some(source) if source.value == from => {}
                Some(source) => {
                    return Err(error::user(
                        format!(
                            "domain '{name}' is promoted from '{}', not from '{from}' ({})",
                            source.value,
                            source.place()
                        ),
                        format!("run `cargo xtask promote --from {} --to {name}`", source.value),
                    ))
                }
                None => {
                    return Err(error::user(
                        format!(
                            "domain '{name}' takes direct deploys, not promotions (no promote_from in deploy.toml)"
                        ),
                        format!("deploy to it with `cargo xtask deploy --domain {name}`, or set promote_from on it"),
                    ))
                }
            }
            if config.domain(from).is_none() {
                return Err(error::user(format!("no domain named '{from}'"), "name a domain of deploy.toml"));
            }
            if !ctx.ci {
                return Err(error::user(
                    format!("promotion to '{name}' runs only in CI (CI=true), not from a developer's machine"),
                    format!("merge into a release branch ({}) and let its pipeline promote", patterns(domain)),
                ));
            }
            if !branch_allowed(domain, ctx.branch) {
                return Err(error::user(
                    format!("{branch_text} may not promote to '{name}' (its branches: {})", patterns(domain)),
                    "promote from a release branch's pipeline",
                ));
            }
            Ok(())
        }
    }
}

/// The hotfix path: in CI, a branch that promotes to a domain (a release branch) may deploy
/// to the domain that one is promoted from, so that a fix committed on the release branch
/// runs in staging before it is promoted: production still receives only what staging ran.
fn hotfix(config: &Config, domain: &Domain, ctx: Context) -> bool {
    ctx.ci
        && config.domains.iter().any(|d| {
            d.promote_from.as_ref().is_some_and(|f| f.value == domain.name.value) && branch_allowed(d, ctx.branch)
        })
}

/// True when one of the domain's branch patterns matches the branch. Without a branch
/// (detached HEAD, no CI context) only a domain taking every branch (`*`) is allowed.
fn branch_allowed(domain: &Domain, branch: Option<&str>) -> bool {
    domain.branches.iter().any(|p| match branch {
        Some(b) => globset::Glob::new(&p.value).is_ok_and(|g| g.compile_matcher().is_match(b)),
        None => p.value == "*",
    })
}

fn patterns(domain: &Domain) -> String {
    if domain.branches.is_empty() {
        "none".into()
    } else {
        domain.branches.iter().map(|b| b.value.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn allowed_help(config: &Config, branch: Option<&str>) -> String {
    let allowed: Vec<&str> = config
        .domains
        .iter()
        .filter(|d| d.promote_from.is_none() && branch_allowed(d, branch))
        .map(|d| d.name.value.as_str())
        .collect();
    if allowed.is_empty() {
        "deploy from a branch that deploy.toml maps to this domain".into()
    } else {
        format!("from here you may deploy to: {} (--domain)", allowed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        Config::parse(Path::new("deploy.toml"), "").unwrap()
    }

    fn check_msg(domain: &str, op: Operation, branch: Option<&str>, ci: bool) -> Result<(), String> {
        let c = config();
        check(&c, c.domain(domain).unwrap(), op, Context { branch, ci }).map_err(|e| e.to_string())
    }

    const DEPLOY: Operation = Operation::Deploy { dirty: false };

    #[test]
    fn branches_deploy_to_their_domains() {
        assert!(check_msg("development", DEPLOY, Some("feature/x"), false).is_ok());
        assert!(check_msg("staging", DEPLOY, Some("main"), true).is_ok());
        assert!(check_msg("development", DEPLOY, None, false).is_ok());
        let e = check_msg("staging", DEPLOY, Some("feature/x"), true).unwrap_err();
        assert!(e.contains("branch 'feature/x' may not deploy to domain 'staging'"), "{e}");
        assert!(e.contains("you may deploy to: development"), "{e}");
    }

    #[test]
    fn a_release_branch_deploys_its_hotfix_to_staging_in_ci_only() {
        assert!(check_msg("staging", DEPLOY, Some("release/1"), true).is_ok());
        let e = check_msg("staging", DEPLOY, Some("release/1"), false).unwrap_err();
        assert!(e.contains("branch 'release/1' may not deploy to domain 'staging'"), "{e}");
        let e = check_msg("staging", DEPLOY, Some("feature/x"), true).unwrap_err();
        assert!(e.contains("may not deploy to domain 'staging'"), "{e}");
    }

    #[test]
    fn production_takes_only_promotions() {
        let e = check_msg("production", DEPLOY, Some("release/1"), true).unwrap_err();
        assert!(e.contains("takes only promotions from 'staging'"), "{e}");
        assert!(check_msg("production", Operation::Promote { from: "staging" }, Some("release/1"), true).is_ok());
    }

    #[test]
    fn promotion_refusals() {
        let promote = Operation::Promote { from: "staging" };
        let e = check_msg("production", promote, Some("release/1"), false).unwrap_err();
        assert!(e.contains("runs only in CI"), "{e}");
        let e = check_msg("production", promote, Some("feature/x"), true).unwrap_err();
        assert!(e.contains("may not promote to 'production'"), "{e}");
        let e =
            check_msg("production", Operation::Promote { from: "development" }, Some("release/1"), true).unwrap_err();
        assert!(e.contains("is promoted from 'staging', not from 'development'"), "{e}");
        let e = check_msg("staging", promote, Some("main"), true).unwrap_err();
        assert!(e.contains("takes direct deploys"), "{e}");
    }

    #[test]
    fn dirty_work_only_to_development() {
        let dirty = Operation::Deploy { dirty: true };
        assert!(check_msg("development", dirty, Some("main"), false).is_ok());
        let e = check_msg("staging", dirty, Some("main"), false).unwrap_err();
        assert!(e.contains("uncommitted work may be deployed only to 'development'"), "{e}");
    }
}
