//! The command-line habits users bring from other tools, through the binary: `--version`
//! naming the commit it was built from, shell completions, `-q`/`-v`, colour only on
//! terminals, every failure on stderr.

use std::process::Command;

use tests::{project_root, xtask_bin, TempRepo};

#[test]
fn version_names_the_release_and_the_commit_built_from() {
    let out = Command::new(xtask_bin()).arg("--version").output().expect("running xtask");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("UTF-8");
    let rest = line.strip_prefix("flyte-deploy ").unwrap_or_else(|| panic!("not `flyte-deploy …`: {line:?}"));
    let (release, commit) = rest.trim_end().split_once(' ').unwrap_or_else(|| panic!("no commit: {line:?}"));
    let parts: Vec<&str> = release.split('.').collect();
    assert!(parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()), "not X.Y.Z: {line:?}");
    let commit = commit.strip_prefix('(').and_then(|c| c.strip_suffix(')')).expect("the commit in parentheses");
    // This project is a git checkout, so the binary knows its commit: one of this repository.
    assert!(commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()), "not a commit: {line:?}");
    let known = Command::new("git")
        .current_dir(project_root())
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .expect("running git");
    assert!(known.success(), "{commit} is no commit of {}", project_root().display());
    // The same from any folder: the build, not the current repository, decides it.
    let elsewhere = TempRepo::new().xtask(&["--version"]);
    assert_eq!(elsewhere.ok(), line);
}

#[test]
fn completions_name_every_subcommand_and_complete_in_bash() {
    let script = TempRepo::new().xtask(&["completions", "bash"]).ok().to_string();
    for command in ["list", "plan", "package", "build", "deploy", "promote", "rollback", "history", "completions"] {
        assert!(script.contains(&format!("xtask,{command})")), "bash completions lack `{command}`");
    }
    // Run by bash itself: `xtask de<TAB>` completes to deploy, `xtask deploy --for<TAB>` to --format.
    let complete = |words: &str| {
        let program = format!(
            "source /dev/stdin; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _xtask xtask \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\""
        );
        let mut child = Command::new("bash")
            .args(["-c", &program])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("running bash");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("writing the script");
        let out = child.wait_with_output().expect("bash");
        assert!(out.status.success(), "bash failed on the script");
        String::from_utf8(out.stdout).expect("UTF-8").trim().to_string()
    };
    assert_eq!(complete("xtask de"), "deploy");
    assert_eq!(complete("xtask deploy --for"), "--format");
    for shell in ["zsh", "fish"] {
        let script = TempRepo::new().xtask(&["completions", shell]).ok().to_string();
        assert!(script.contains("deploy") && script.contains("promote"), "{shell} completions lack commands");
    }
}

#[test]
fn completions_of_another_shell_are_refused() {
    let run = TempRepo::new().xtask(&["completions", "powershell"]);
    assert_eq!(run.status, Some(2));
    assert!(run.stderr.contains("powershell") && run.stderr.contains("bash"), "{}", run.stderr);
}

/// A repository with no workflow yet: commands run in it without Python.
fn empty_monorepo() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("deploy.toml", "[flyte]\nendpoint = \"sandbox\"\n");
    repo.write("workflows/.keep", "");
    repo.commit("empty");
    repo
}

#[test]
fn quiet_prints_only_errors_and_data_verbose_says_where_settings_came_from() {
    let repo = empty_monorepo();
    // A remote endpoint: history notes that this clone has no deploy notes.
    let remote = [("FLYTE_ENDPOINT", "dns:///flyte.example.com:443")];
    let normal = repo.xtask_env(&["history"], &remote);
    assert!(normal.stderr.contains("note: "), "{}", normal.stderr);
    let quiet = repo.xtask_env(&["history", "-q"], &remote);
    assert_eq!(quiet.ok(), normal.ok(), "quiet changes the data");
    assert_eq!(quiet.stderr, "", "quiet still says something");
    let verbose = repo.xtask_env(&["-v", "history"], &remote);
    assert!(
        verbose.stderr.contains("endpoint \"dns:///flyte.example.com:443\" from FLYTE_ENDPOINT (over deploy.toml's"),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stderr.contains("no Flyte config found"), "{}", verbose.stderr);
    // A deploy with -v says each stage's time, and the endpoint once.
    let deploy = repo.xtask(&["deploy", "--verbose"]);
    deploy.ok();
    for stage in ["plan", "connect", "serialize", "register"] {
        assert!(deploy.stderr.contains(&format!("stage {stage}: ")), "no time of {stage}:\n{}", deploy.stderr);
    }
    assert_eq!(deploy.stderr.matches("endpoint \"sandbox\" from deploy.toml").count(), 1, "{}", deploy.stderr);
    assert!(!repo.xtask(&["deploy"]).stderr.contains("stage "), "stage times without -v");
    // Errors still come with -q.
    let bad = repo.xtask(&["-q", "plan", "--base", "nope"]);
    assert!(bad.user_error().starts_with("error: "), "{}", bad.stderr);
}

#[test]
fn colour_only_on_terminals_unless_forced_and_never_with_no_color() {
    let repo = empty_monorepo();
    let bad = ["plan", "--base", "nope"];
    // Not a terminal: plain.
    assert!(repo.xtask(&bad).user_error().starts_with("error: "));
    let forced = repo.xtask_env(&bad, &[("CLICOLOR_FORCE", "1")]);
    assert!(forced.user_error().starts_with("\u{1b}["), "CLICOLOR_FORCE gives no colour: {:?}", forced.stderr);
    assert!(forced.stderr.contains("error:"), "{:?}", forced.stderr);
    let no_color = repo.xtask_env(&bad, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(no_color.user_error().starts_with("error: "), "NO_COLOR gives colour: {:?}", no_color.stderr);
    // clap's own messages too.
    let typo = repo.xtask_env(&["plann"], &[("CLICOLOR_FORCE", "1")]);
    assert!(typo.stderr.contains('\u{1b}'), "clap's error is plain under CLICOLOR_FORCE: {:?}", typo.stderr);
    let typo = repo.xtask_env(&["plann"], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!typo.stderr.contains('\u{1b}'), "clap's error is coloured under NO_COLOR: {:?}", typo.stderr);
}

#[test]
fn build_prints_json_when_asked() {
    let repo = empty_monorepo();
    repo.write("workflows/a/a/__init__.py", "");
    repo.commit("a");
    let json = repo.xtask(&["build", "a", "--format", "json"]).json();
    assert_eq!(
        json,
        serde_json::json!([{
            "name": "a",
            "image": flyte_deploy::config::DEFAULT_IMAGE,
            "outcome": "default",
            "digest": null,
        }])
    );
    let text = repo.xtask(&["build", "a"]);
    assert!(text.ok().contains("default image, nothing to build"), "{}", text.stdout);
}

#[test]
fn a_failed_workflow_is_reported_on_stderr_the_table_on_stdout() {
    let Some(python) = tests::flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = empty_monorepo();
    repo.write("workflows/broken/broken/__init__.py", "");
    repo.write("workflows/broken/broken/main.py", "this is not python\n");
    repo.commit("broken");
    let env = [("FLYTE_DEPLOY_PYTHON", python.as_str()), ("CI", "false")];
    let run = repo.xtask_env(&["deploy"], &env);
    assert_eq!(run.status, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("broken") && run.stdout.contains("failed"), "the table lacks it:\n{}", run.stdout);
    assert!(!run.stdout.contains("could not serialize"), "a failure on stdout:\n{}", run.stdout);
    assert!(!run.stdout.contains("error"), "a failure on stdout:\n{}", run.stdout);
    assert!(run.stderr.contains("error: broken: pyflyte could not serialize broken"), "{}", run.stderr);
    // JSON keeps it in the object, on stdout, as the contract says.
    let json = repo.xtask_env(&["deploy", "--format", "json"], &env);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON on stdout");
    assert!(report["workflows"][0]["error"].as_str().is_some_and(|e| e.contains("could not serialize")), "{report}");
}

/// The TIME column of `workflow`'s row of a deploy's text report, in seconds.
fn time_of(report: &str, workflow: &str) -> f64 {
    let row = report.lines().find(|l| l.split_whitespace().next() == Some(workflow)).expect("the workflow's row");
    let time = row.split_whitespace().nth(7).expect("a TIME column");
    time.strip_suffix('s').and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("TIME {time:?} in {row:?}"))
}

#[test]
fn progress_counts_each_stage_on_terminals_only_and_time_is_each_workflows_own() {
    let Some(python) = tests::flytekit_python() else { return };
    let Some(script) = tests::require_tool("script") else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = empty_monorepo();
    let task = "from flytekit import task, workflow\n\n\n@task\ndef t() -> int:\n    return 1\n\n\n\
                @workflow\ndef wf() -> int:\n    return t()\n";
    for name in ["a_slow", "b_fast"] {
        repo.write(&format!("workflows/{name}/{name}/__init__.py"), "");
        repo.write(&format!("workflows/{name}/{name}/main.py"), task);
    }
    // One environment, one worker: b_fast waits while a_slow takes 4 s to import.
    repo.write("workflows/a_slow/a_slow/slow.py", "import time\n\ntime.sleep(4)\n");
    repo.commit("two workflows");
    let env = [("FLYTE_DEPLOY_PYTHON", python.as_str()), ("CI", "false")];
    let run = repo.xtask_env(&["deploy", "--jobs", "1"], &env);
    let report = run.ok();
    assert!(time_of(report, "a_slow") >= 4.0, "{report}");
    assert!(time_of(report, "b_fast") < 3.0, "b_fast's time includes waiting for a_slow:\n{report}");
    assert!(!run.stderr.contains("serialized"), "progress when stderr is no terminal:\n{}", run.stderr);

    // -v, not on a terminal: a line per workflow and stage, with its own time.
    let change = |n: &str| {
        for name in ["a_slow", "b_fast"] {
            repo.write(&format!("workflows/{name}/{name}/change.py"), &format!("# {n}\n"));
        }
        repo.commit(n);
    };
    change("one");
    let run = repo.xtask_env(&["deploy", "--jobs", "1", "-v"], &env);
    run.ok();
    for line in ["[1/2] serialized a_slow (", "[2/2] serialized b_fast (", "registered b_fast (", "[2/2] checked "] {
        assert!(run.stderr.contains(line), "no {line:?} in:\n{}", run.stderr);
    }

    // On a terminal: the live counter of each stage.
    change("two");
    let mut command = Command::new(script);
    command
        .current_dir(repo.path())
        .args(["-qec", &format!("{} deploy --jobs 1", xtask_bin().display()), "/dev/null"])
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .envs(env);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GITHUB_") || k.starts_with("CI_")) {
        command.env_remove(key);
    }
    let out = command.output().expect("running script");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}");
    for line in ["[2/2] checked", "[2/2] serialized", "[2/2] registered", "serialized · a_slow: serializing"] {
        assert!(terminal.contains(line), "no {line:?} on the terminal:\n{terminal}");
    }
}

#[test]
fn with_a_console_the_reports_link_every_registered_version_and_launch_plan() {
    let Some(python) = tests::flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "[flyte]\nendpoint = \"sandbox\"\nconsole = \"https://flyte.example.com/console/\"\n");
    repo.write("workflows/hello/hello/__init__.py", "");
    repo.write(
        "workflows/hello/hello/main.py",
        "from flytekit import LaunchPlan, task, workflow\n\n\n@task\ndef t() -> int:\n    return 1\n\n\n\
         @workflow\ndef wf() -> int:\n    return t()\n\n\nnightly = LaunchPlan.get_or_create(wf, name=\"hello.nightly\")\n",
    );
    repo.commit("hello");
    let summary_file = repo.path().join("step-summary.md");
    let summary_path = summary_file.to_string_lossy().into_owned();
    let env = [("FLYTE_DEPLOY_PYTHON", python.as_str()), ("CI", "false"), ("GITHUB_STEP_SUMMARY", &summary_path)];
    let report = repo.xtask_env(&["deploy", "--format", "json"], &env).json();
    let hello = &report["workflows"][0];
    assert_eq!(hello["outcome"], "registered", "{report}");
    let version = hello["version"].as_str().expect("a version");
    let page = |kind: &str, name: &str| {
        format!(
            "https://flyte.example.com/console/projects/flytesnacks/domains/staging/{kind}/{name}/version/{version}"
        )
    };
    assert_eq!(hello["url"], page("workflow", "hello.main.wf"), "{report}");
    let markdown = std::fs::read_to_string(&summary_file).expect("the step summary");
    for (kind, word, name) in [
        ("workflow", "workflow", "hello.main.wf"),
        ("launch_plan", "launch plan", "hello.main.wf"),
        ("launch_plan", "launch plan", "hello.nightly"),
    ] {
        let link = format!("{word} [`{name}`]({})", page(kind, name));
        assert!(markdown.contains(&link), "no {link} in the step summary:\n{markdown}");
    }
    // Already registered: still linked, in the text report too.
    let text = repo.xtask_env(&["deploy"], &env);
    assert!(text.ok().contains("already-registered"), "{}", text.stdout);
    for (kind, name) in [("workflow", "hello.main.wf"), ("launch_plan", "hello.nightly")] {
        assert!(text.stdout.contains(&page(kind, name)), "no link to {name} in:\n{}", text.stdout);
    }
    // Without a console: the key is there, null.
    repo.write("deploy.toml", "[flyte]\nendpoint = \"sandbox\"\n");
    repo.commit("no console");
    let report = repo.xtask_env(&["deploy", "--format", "json"], &env).json();
    let hello = report["workflows"][0].as_object().expect("an object").clone();
    assert_eq!(hello.get("url"), Some(&serde_json::Value::Null), "{report}");
}

#[test]
fn d_is_short_for_domain() {
    let repo = empty_monorepo();
    let plan = repo.xtask(&["plan", "-d", "production", "--format", "json"]).json();
    assert_eq!(plan["domain"], "production");
    let err = repo.xtask(&["history", "-d", "nope"]).user_error().to_string();
    assert!(err.contains("no domain named 'nope'"), "{err}");
}

#[test]
fn verbose_names_the_sign_in_chosen_in_order_of_precedence() {
    let data = tempfile::tempdir().expect("a temp dir");
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", data.path());
    let repo = empty_monorepo();
    let endpoint = sandbox.endpoint.clone();
    // No Flyte config for this test: HOME is an empty folder.
    let home = tempfile::tempdir().expect("a temp dir");
    let home = home.path().to_string_lossy().into_owned();
    let base = [("FLYTE_ENDPOINT", endpoint.as_str()), ("HOME", home.as_str())];
    let run = |extra: &[(&str, &str)]| {
        let env: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
        let run = repo.xtask_env(&["deploy", "-v"], &env);
        run.ok();
        run.stderr
    };
    let said = run(&[("FLYTE_TOKEN", "t0ken"), ("FLYTE_CLIENT_ID", "id"), ("FLYTE_CLIENT_SECRET", "s")]);
    assert!(said.contains("sign-in: the bearer token in FLYTE_TOKEN"), "{said}");
    assert!(!said.contains("t0ken"), "the token was printed:\n{said}");
    assert!(said.contains(&format!("endpoint \"{endpoint}\" from FLYTE_ENDPOINT")), "{said}");
    let said = run(&[]);
    assert!(said.contains("sign-in: none"), "{said}");
}
