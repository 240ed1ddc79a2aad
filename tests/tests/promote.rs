//! `cargo xtask promote` end to end: a real git repository, real pyflyte, the embedded
//! sandbox on disk. Staging is deployed first (`cargo xtask deploy --domain staging`), then
//! the binary promotes to production: the production specs equal staging's
//! byte for byte except the domain and its settings, the code archive is the same file, a
//! re-run changes nothing, a version staging lacks is refused, and every branch-policy
//! refusal exits 2 before anything is uploaded or registered.

use std::collections::BTreeMap;
use std::path::Path;

use flyte_api::{wire, Identifier, Kind};
use flyte_deploy::artifacts::codeset::CodeSet;
use flyte_deploy::artifacts::{serialize, specs};
use flyte_deploy::config::Config;
use flyte_deploy::plan::fingerprint;
use flyte_deploy::registration::admin::{spec_of, Admin};
use flyte_deploy::registration::record;
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::source::GitTree;
use flyte_deploy::workspace::Workspace;
use tests::{flytekit_python, TempRepo};

const PROJECT: &str = "flytesnacks";
/// Environment of a release pipeline.
const RELEASE_CI: &[(&str, &str)] = &[("CI", "true")];

/// The examples on `release/1`, with the sandbox's data and the caches ignored by git.
fn release_repo() -> TempRepo {
    let repo = TempRepo::with_examples();
    repo.write(".gitignore", ".flyte/\n");
    repo.commit("ignore .flyte");
    repo.git(&["checkout", "--quiet", "-b", "release/1"]);
    repo
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// `cargo xtask deploy --domain staging` of HEAD for the named workflows, as main's CI
/// pipeline runs it. Returns the deployed versions.
fn deploy_staging(repo: &TempRepo, names: &[&str]) -> BTreeMap<String, String> {
    let mut args = vec!["deploy", "--domain", "staging", "--all", "--format", "json"];
    for name in names {
        args.extend(["--workflow", name]);
    }
    let report = repo.xtask_env(&args, &[("CI", "true"), ("GITHUB_REF_NAME", "main")]).json();
    let mut versions = BTreeMap::new();
    for row in report["workflows"].as_array().unwrap() {
        assert_eq!(row["outcome"], "registered", "staging deploy: {row:#}");
        versions.insert(row["name"].as_str().unwrap().to_string(), row["version"].as_str().unwrap().to_string());
    }
    assert_eq!(versions.len(), names.len(), "{report:#}");
    versions
}

/// pyflyte's package of one workflow, written to the serialization cache as a deploy does.
fn serialize_into_cache(
    r: &Repo,
    set: &CodeSet,
    fp: &fingerprint::Fingerprint,
    packages: &[String],
    python: &Path,
) -> specs::Package {
    let code = tempfile::tempdir().unwrap();
    set.materialise(&r.git, code.path()).unwrap();
    let images = Default::default();
    let key = serialize::cache_key(&fp.code, &fp.image, packages, &fp.environment, &images);
    let cache = r.root.join(serialize::CACHE_DIR);
    let request =
        serialize::Request { python, code_dir: code.path(), set, packages, image: &fp.image, images: &images };
    let out = serialize::serialize(&request, &cache, &key).unwrap();
    specs::read_package_file(&out.path).unwrap()
}

fn config(repo: &TempRepo) -> Config {
    let path = repo.path().join("deploy.toml");
    Config::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every entity of `domain` at `version` (a content version is one workflow's, so every
/// entity at it belongs to that workflow), by (kind, name): the registered spec in the form
/// pyflyte writes it.
async fn entities(admin: &Admin, domain: &str, version: &str) -> BTreeMap<(Kind, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        for name in admin.list_names(kind, PROJECT, domain).await.unwrap() {
            let id = ident(kind, domain, &name, version);
            if let Some(entity) = admin.get(kind, &id).await.unwrap() {
                out.insert((kind, name), spec_of(kind, &entity));
            }
        }
    }
    out
}

fn ident(kind: Kind, domain: &str, name: &str, version: &str) -> Identifier {
    Identifier::new(kind, PROJECT, domain, name, version)
}

/// Rewrites every length-delimited field that is exactly one of `swaps`' keys into its
/// value, descending into every field that parses as a message; all other bytes are kept.
fn swap_strings(msg: &[u8], swaps: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let Ok(fields) = wire::fields(msg) else { return msg.to_vec() };
    let mut out = Vec::new();
    for f in fields {
        if f.wire_type != wire::WireType::Len {
            out.extend_from_slice(&msg[f.span.clone()]);
            continue;
        }
        let value = &msg[f.value.clone()];
        if let Some(new) = swaps.get(value) {
            out.extend(wire::len_field(f.number, new));
        } else if wire::fields(value).is_ok() && !value.is_empty() {
            out.extend(wire::len_field(f.number, &swap_strings(value, swaps)));
        } else {
            out.extend_from_slice(&msg[f.span.clone()]);
        }
    }
    out
}

/// The code archive URL in a task spec (the arg after `--additional-distribution`).
fn code_url(task_spec: &[u8]) -> Option<String> {
    let template = wire::last_len(task_spec, 1).unwrap()?;
    let container = wire::last_len(template, 6).unwrap()?;
    let args: Vec<&[u8]> = wire::all_len(container, 3).unwrap();
    let i = args.iter().position(|a| *a == b"--additional-distribution")?;
    Some(String::from_utf8(args[i + 1].to_vec()).unwrap())
}

fn production_entities(repo: &TempRepo) -> usize {
    let config = config(repo);
    runtime().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        let mut n = 0;
        for kind in Kind::ALL {
            n += admin.list(kind, PROJECT, "production", "").await.unwrap().len();
        }
        admin.close().await.unwrap();
        n
    })
}

fn production_uploads(repo: &TempRepo) -> bool {
    repo.path().join(".flyte/sandbox/uploads").join(PROJECT).join("production").exists()
}

fn promote_json(repo: &TempRepo, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["promote", "--from", "staging", "--to", "production", "--format", "json"];
    args.extend_from_slice(extra);
    repo.xtask_env(&args, RELEASE_CI).json()
}

/// Production holds staging's specs for `versions`, byte for byte but for the domain and
/// its settings; launch plans active in staging are active in production; the code
/// archive is the same file in production's location.
fn assert_production_mirrors_staging(repo: &TempRepo, versions: &BTreeMap<String, String>) {
    // Production holds staging's specs, byte for byte, but for the domain and its settings.
    let config = config(repo);
    let (staging_urls, production_urls) = runtime().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        let (mut staging_urls, mut production_urls) = (Vec::new(), Vec::new());
        for (name, version) in versions {
            let staging = entities(&admin, "staging", version).await;
            let production = entities(&admin, "production", version).await;
            assert!(staging.len() >= 3, "{name}: staging has {} entities", staging.len());
            assert_eq!(
                staging.keys().collect::<Vec<_>>(),
                production.keys().collect::<Vec<_>>(),
                "{name}: the same entities in both domains"
            );
            let staging_url = staging
                .iter()
                .filter(|((k, _), _)| *k == Kind::Task)
                .find_map(|(_, spec)| code_url(spec))
                .expect("a fast-registered task");
            let production_url = production
                .iter()
                .filter(|((k, _), _)| *k == Kind::Task)
                .find_map(|(_, spec)| code_url(spec))
                .expect("a fast-registered task");
            let swaps: BTreeMap<Vec<u8>, Vec<u8>> = [
                ("staging", "production"),
                ("s3://flyte-data/staging", "s3://flyte-data/production"),
                ("flyte-staging", "flyte-production"),
                (staging_url.as_str(), production_url.as_str()),
            ]
            .into_iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
            for (key, spec) in &staging {
                assert!(
                    swap_strings(spec, &swaps) == production[key],
                    "{name}: {key:?} in production differs from staging beyond the domain and its settings"
                );
                assert_ne!(spec, &production[key], "{key:?}: production has its own domain");
            }
            // What is active in staging is active in production.
            for ((kind, lp), _) in staging.iter().filter(|((k, _), _)| *k == Kind::LaunchPlan) {
                let _ = kind;
                let s = admin.launch_plan_active(&ident(Kind::LaunchPlan, "staging", lp, version)).await;
                let p = admin.launch_plan_active(&ident(Kind::LaunchPlan, "production", lp, version)).await;
                assert_eq!(s.unwrap(), Some(true), "{lp} is active in staging");
                assert_eq!(p.unwrap(), Some(true), "{lp} is activated in production");
            }
            staging_urls.push(staging_url);
            production_urls.push(production_url);
        }
        admin.close().await.unwrap();
        (staging_urls, production_urls)
    });

    // The code archive is the same file (same MD5, same name) in production's location.
    for (s, p) in staging_urls.iter().zip(&production_urls) {
        assert_eq!(&s.replace("/staging/", "/production/"), p);
        let file = |url: &str| {
            let rel = url.strip_prefix("sandbox://uploads/").unwrap();
            std::fs::read(repo.path().join(".flyte/sandbox/uploads").join(rel)).unwrap()
        };
        assert!(file(s) == file(p), "the uploaded archives differ: {s} vs {p}");
    }
}

#[test]
fn promotion_puts_stagings_specs_into_production_and_a_rerun_changes_nothing() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = release_repo();
    let all = ["etl", "features", "hello", "training"];
    let versions = deploy_staging(&repo, &all);
    let head = repo.git(&["rev-parse", "HEAD"]);

    let report = promote_json(&repo, &[]);
    assert_eq!(report["domain"], "production");
    assert_eq!(report["head"], head.as_str());
    let rows = report["workflows"].as_array().unwrap();
    assert_eq!(rows.len(), all.len(), "{report:#}");
    for row in rows {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["outcome"], "registered", "{row:#}");
        assert_eq!(row["version"], versions[name].as_str(), "the version staging has: {row:#}");
        assert!(row["entities"]["created"].as_u64().unwrap() >= 3, "{row:#}");
        assert_eq!(row["entities"]["failed"], 0, "{row:#}");
        assert!(row["error"].is_null(), "{row:#}");
    }

    assert_production_mirrors_staging(&repo, &versions);

    // The promotion is recorded, once.
    let promoted = |path: &Path| {
        let store = record::Store::Sandbox(path.join(".flyte/sandbox"));
        store
            .load(&Repo::discover_from(path).unwrap().git)
            .unwrap()
            .into_iter()
            .filter(|r| r.domain == "production" && r.promoted_from.as_deref() == Some("staging"))
            .collect::<Vec<_>>()
    };
    let records = promoted(repo.path());
    assert_eq!(records.len(), all.len(), "{records:#?}");
    for r in &records {
        assert_eq!(r.commit, head);
        assert_eq!(r.version, versions[&r.workflow]);
        assert!(!r.launch_plans.is_empty(), "{r:?}");
    }

    // A re-run changes nothing.
    let before = production_entities(&repo);
    let again = promote_json(&repo, &[]);
    for row in again["workflows"].as_array().unwrap() {
        assert_eq!(row["outcome"], "already-registered", "{row:#}");
        assert_eq!(row["entities"]["created"], 0, "{row:#}");
        assert_eq!(row["entities"]["failed"], 0, "{row:#}");
    }
    assert_eq!(production_entities(&repo), before);
    assert_eq!(promoted(repo.path()).len(), all.len(), "a re-run records nothing new");
}

#[test]
fn a_version_staging_lacks_is_refused_and_nothing_of_it_is_registered() {
    let Some(python) = flytekit_python() else { return };
    let repo = release_repo();
    let versions = deploy_staging(&repo, &["features", "hello"]);
    repo.write("workflows/hello/hello/added.py", "VALUE = 1\n");
    let head = repo.commit("change hello after the staging deploy");

    // hello's new version was never deployed (not even serialized): refused, features goes on.
    let check = |run: tests::Run, features_outcome: &str| {
        assert_eq!(run.status, Some(1), "a refused workflow fails the run\n{}\n{}", run.stdout, run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let row = |n: &str| report["workflows"].as_array().unwrap().iter().find(|w| w["name"] == n).unwrap().clone();
        let hello = row("hello");
        assert_eq!(hello["outcome"], "failed", "{hello:#}");
        assert_ne!(hello["version"], versions["hello"].as_str());
        let error = hello["error"].as_str().unwrap();
        assert!(error.contains("is not registered in 'staging'"), "{error}");
        assert!(error.contains(&format!("deploy commit {} to staging first", &head[..12])), "{error}");
        assert_eq!(hello["entities"]["created"], 0);
        let features = row("features");
        assert_eq!(features["outcome"], features_outcome, "{features:#}");
        assert_eq!(features["version"], versions["features"].as_str());
    };
    let args = ["promote", "--from", "staging", "--to", "production", "--format", "json", "hello", "features"];
    check(repo.xtask_env(&args, RELEASE_CI), "registered");

    // Also when pyflyte's package of the new version is in the cache (serialized, never registered).
    let r = Repo::discover_from(repo.path()).unwrap();
    let commit = r.commit("HEAD").unwrap();
    let tree = GitTree::at_commit(&r.git, &commit).unwrap();
    let ws = Workspace::load(&tree).unwrap();
    let wf = ws.workflow("hello").unwrap();
    let set = CodeSet::at(&r.git, tree.tree(), wf).unwrap();
    let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf).unwrap();
    serialize_into_cache(&r, &set, &fp, &wf.packages, &python);
    let run = repo.xtask_env(&args, RELEASE_CI);
    assert!(run.stdout.contains("missing: task flytesnacks/staging/hello."), "{}", run.stdout);
    check(run, "already-registered");

    let config = config(&repo);
    runtime().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        for kind in Kind::ALL {
            for name in admin.list_names(kind, PROJECT, "production").await.unwrap() {
                assert!(!name.starts_with("hello."), "{name} was registered in production");
            }
        }
        admin.close().await.unwrap();
    });
}

#[test]
fn each_policy_refusal_exits_2_before_anything_is_uploaded_or_registered() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = release_repo();
    deploy_staging(&repo, &["hello"]);
    let promote = ["promote", "--from", "staging", "--to", "production", "hello"];

    // Outside CI (a developer's machine), even on a release branch.
    let e = repo.xtask_env(&promote, &[("CI", "")]).user_error().to_string();
    assert!(e.contains("runs only in CI"), "{e}");
    // From a branch that is not a release branch, in CI.
    repo.git(&["checkout", "--quiet", "-b", "feature/x"]);
    let e = repo.xtask_env(&promote, RELEASE_CI).user_error().to_string();
    assert!(e.contains("branch 'feature/x' may not promote to 'production'"), "{e}");
    repo.git(&["checkout", "--quiet", "main"]);
    let e = repo.xtask_env(&promote, RELEASE_CI).user_error().to_string();
    assert!(e.contains("branch 'main' may not promote to 'production'"), "{e}");
    // The CI branch counts, not the checkout.
    let e = repo.xtask_env(&promote, &[("CI", "true"), ("GITHUB_REF_NAME", "feature/y")]).user_error().to_string();
    assert!(e.contains("branch 'feature/y' may not promote"), "{e}");
    repo.git(&["checkout", "--quiet", "release/1"]);
    // From a domain production is not promoted from.
    let e = repo
        .xtask_env(&["promote", "--from", "development", "--to", "production", "hello"], RELEASE_CI)
        .user_error()
        .to_string();
    assert!(e.contains("is promoted from 'staging', not from 'development'"), "{e}");
    // Into a domain that takes direct deploys, and into one that does not exist.
    let e =
        repo.xtask_env(&["promote", "--from", "development", "--to", "staging"], RELEASE_CI).user_error().to_string();
    assert!(e.contains("takes direct deploys"), "{e}");
    let e = repo.xtask_env(&["promote", "--from", "staging", "--to", "prod"], RELEASE_CI).user_error().to_string();
    assert!(e.contains("--to 'prod' is not a domain"), "{e}");

    // A direct deploy to production, even from a release branch in CI.
    let e = repo.xtask_env(&["deploy", "--domain", "production", "--all"], RELEASE_CI).user_error().to_string();
    assert!(e.contains("domain 'production' takes only promotions from 'staging'"), "{e}");
    assert!(e.contains("cargo xtask promote --from staging --to production"), "{e}");

    assert_eq!(production_entities(&repo), 0, "a refused promotion registered something");
    assert!(!production_uploads(&repo), "a refused promotion uploaded something");

    // The same promotion where policy allows it does register (the refusals were the policy).
    let report = promote_json(&repo, &["hello"]);
    assert_eq!(report["workflows"][0]["outcome"], "registered", "{report:#}");
    assert!(production_entities(&repo) > 0);
    assert!(production_uploads(&repo));
}

#[test]
fn without_pyflytes_package_the_specs_are_taken_from_staging() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = release_repo();
    let versions = deploy_staging(&repo, &["hello", "training"]);
    std::fs::remove_dir_all(repo.path().join(".flyte/cache")).unwrap();

    let report = promote_json(&repo, &["hello", "training"]);
    for row in report["workflows"].as_array().unwrap() {
        assert_eq!(row["outcome"], "registered", "{row:#}");
        assert!(row["entities"]["created"].as_u64().unwrap() >= 3, "{row:#}");
    }
    assert_production_mirrors_staging(&repo, &versions);
    let before = production_entities(&repo);
    for row in promote_json(&repo, &["hello", "training"])["workflows"].as_array().unwrap() {
        assert_eq!(row["outcome"], "already-registered", "{row:#}");
    }
    assert_eq!(production_entities(&repo), before);
}

#[test]
fn with_a_console_a_promotion_links_the_versions_it_put_in_the_target() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = release_repo();
    let toml = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    assert!(toml.contains("[flyte]\n"), "the examples' deploy.toml has a [flyte] table");
    repo.write("deploy.toml", &toml.replace("[flyte]\n", "[flyte]\nconsole = \"https://flyte.example.com/console\"\n"));
    repo.commit("a console");
    let versions = deploy_staging(&repo, &["hello"]);
    let args = ["promote", "--from", "staging", "--to", "production", "--format", "json", "hello"];
    let report = repo.xtask_env(&args, RELEASE_CI).json();
    let hello = &report["workflows"][0];
    assert_eq!(hello["outcome"], "registered", "{report:#}");
    let url = hello["url"].as_str().unwrap_or_else(|| panic!("no url: {report:#}"));
    let page = "https://flyte.example.com/console/projects/flytesnacks/domains/production/workflow/hello.";
    assert!(url.starts_with(page), "{url}");
    assert!(url.ends_with(&format!("/version/{}", versions["hello"])), "{url}");
    // The text report lists the launch plans too.
    let text = repo.xtask_env(&["promote", "--from", "staging", "--to", "production", "hello", "-v"], RELEASE_CI);
    assert!(text.ok().contains("domains/production/launch_plan/hello."), "{}", text.stdout);
    // -v: each stage's time.
    for stage in ["versions and archives", "promote"] {
        assert!(text.stderr.contains(&format!("stage {stage}: ")), "no time of {stage}:\n{}", text.stderr);
    }
}
