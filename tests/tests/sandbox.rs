//! The FlyteAdmin sandbox, client and registration end to end over real gRPC on loopback:
//! real `pyflyte package` output hydrated and registered, bytes kept exactly (unknown fields
//! included), FlyteAdmin's create rules, launch-plan activation, uploads checked by MD5,
//! state surviving a killed `cargo xtask sandbox` and a re-run finishing the job.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use flyte_api::{admin, core, method, wire, Identifier, Kind, Message};
use flyte_deploy::artifacts::specs::{self, Package};
use flyte_deploy::config::DomainSettings;
use flyte_deploy::registration::admin::{is_different_structure, Admin, Created, Retry};
use flyte_deploy::registration::hydrate::{self, Hydrated, Target};
use flyte_deploy::registration::register::{self, Archive, Options, Outcome};
use flyte_sandbox as sandbox;
use md5::{Digest as _, Md5};
use tests::{flytekit_python, project_root};

const PROJECT: &str = "flytesnacks";
const DOMAIN: &str = "development";

fn id(kind: Kind, name: &str, version: &str) -> Identifier {
    Identifier::new(kind, PROJECT, DOMAIN, name, version)
}

/// A TaskSpec whose TaskMetadata carries field 14 (`is_eager` in flyteidl 1.16), which
/// the bindings do not declare.
fn task_spec(name: &str, version: &str, arg: &str) -> Vec<u8> {
    let template = core::TaskTemplate {
        id: Some(id(Kind::Task, name, version)),
        r#type: "python-task".into(),
        interface: Some(core::TypedInterface::default()),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: vec!["pyflyte-fast-execute".into(), arg.into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut metadata = core::TaskMetadata { discoverable: true, ..Default::default() }.encode_to_vec();
    metadata.extend(wire::varint_field(14, 1));
    let mut template = template.encode_to_vec();
    template.extend(wire::len_field(3, &metadata));
    let mut spec = Vec::new();
    spec.extend(wire::len_field(1, &template));
    spec
}

fn workflow_spec(name: &str, version: &str, tasks: &[Identifier]) -> Vec<u8> {
    let nodes = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| core::Node {
            id: format!("n{i}"),
            target: Some(core::node::Target::TaskNode(core::TaskNode {
                reference: Some(core::task_node::Reference::ReferenceId(task.clone())),
            })),
            ..Default::default()
        })
        .collect();
    let template = core::WorkflowTemplate { id: Some(id(Kind::Workflow, name, version)), nodes, ..Default::default() };
    admin::WorkflowSpec { template: Some(template), ..Default::default() }.encode_to_vec()
}

/// A LaunchPlanSpec carrying field 24, which the bindings do not declare.
fn launch_plan_spec(workflow: &Identifier, label: &str) -> Vec<u8> {
    let mut spec = admin::LaunchPlanSpec {
        workflow_id: Some(workflow.clone()),
        labels: Some(admin::Labels { values: [("env".to_string(), label.to_string())].into_iter().collect() }),
        ..Default::default()
    }
    .encode_to_vec();
    spec.extend(wire::len_field(24, b"\x08\x01unknown-to-the-crate"));
    spec
}

fn create_request(id: &Identifier, spec: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(wire::len_field(1, &id.encode_to_vec()));
    out.extend(wire::len_field(2, spec));
    out
}

/// Field path `path` of a message (length-delimited fields).
fn at<'a>(message: &'a [u8], path: &[u32]) -> &'a [u8] {
    path.iter().fold(message, |m, n| {
        wire::last_len(m, *n).ok().flatten().unwrap_or_else(|| panic!("no field {n} on path {path:?}"))
    })
}

/// An in-process sandbox in a temp dir and a client of it, with the project registered.
async fn sandbox_and_client() -> (tempfile::TempDir, sandbox::Running, Admin) {
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    // As a Flyte sandbox cluster, a fresh sandbox has `flytesnacks`; others are registered
    // on request.
    assert!(!admin.ensure_project(PROJECT).await.unwrap(), "a fresh sandbox has {PROJECT}");
    assert!(admin.ensure_project("other").await.unwrap(), "other projects are registered on request");
    assert!(!admin.ensure_project("other").await.unwrap(), "the second ensure finds it");
    (data, running, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_come_back_byte_for_byte_with_fields_the_crate_does_not_know() {
    let (_data, running, admin) = sandbox_and_client().await;
    assert!(admin.is_sandbox().await.unwrap(), "GetVersion names the sandbox");

    let task = id(Kind::Task, "wf.say_hello", "v1");
    let task_bytes = task_spec("wf.say_hello", "v1", "{{ .remote_package_path }}");
    let workflow = id(Kind::Workflow, "wf.hello", "v1");
    let workflow_bytes = workflow_spec("wf.hello", "v1", std::slice::from_ref(&task));
    let plan = id(Kind::LaunchPlan, "wf.hello", "v1");
    let plan_bytes = launch_plan_spec(&workflow, "development");

    assert_eq!(admin.create(Kind::Task, &create_request(&task, &task_bytes)).await.unwrap(), Created::New);
    assert_eq!(admin.create(Kind::Workflow, &create_request(&workflow, &workflow_bytes)).await.unwrap(), Created::New);
    assert_eq!(admin.create(Kind::LaunchPlan, &create_request(&plan, &plan_bytes)).await.unwrap(), Created::New);

    // Task{closure{compiled_task{template}}}: the template exactly as sent, field 14 included.
    let got = admin.get(Kind::Task, &task).await.unwrap().expect("the task exists");
    let template = at(&got, &[2, 1, 1]);
    assert_eq!(template, at(&task_bytes, &[1]));
    assert_eq!(wire::fields(at(template, &[3])).unwrap().last().unwrap().number, 14);
    // Workflow{closure{compiled_workflow{primary{template}}}} plus the referenced task.
    let got = admin.get(Kind::Workflow, &workflow).await.unwrap().expect("the workflow exists");
    assert_eq!(at(&got, &[2, 1, 1, 1]), at(&workflow_bytes, &[1]));
    let tasks = wire::all_len(at(&got, &[2, 1]), 3).unwrap_or_default();
    assert_eq!(tasks.len(), 1);
    assert_eq!(at(tasks[0], &[1]), at(&task_bytes, &[1]));
    // LaunchPlan{spec}: the spec exactly, field 24 included; new launch plans are inactive.
    let got = admin.get(Kind::LaunchPlan, &plan).await.unwrap().expect("the launch plan exists");
    assert_eq!(at(&got, &[2]), plan_bytes.as_slice());
    assert_eq!(admin.launch_plan_active(&plan).await.unwrap(), Some(false));

    let listed = admin.list(Kind::Task, PROJECT, DOMAIN, "wf.say_hello").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(at(&listed[0], &[2, 1, 1]), at(&task_bytes, &[1]));
    let listed = admin.list(Kind::LaunchPlan, PROJECT, DOMAIN, "").await.unwrap();
    assert_eq!(at(&listed[0], &[2]), plan_bytes.as_slice());
    assert_eq!(admin.list_names(Kind::Workflow, PROJECT, DOMAIN).await.unwrap(), vec!["wf.hello"]);
    assert!(admin.get(Kind::Task, &id(Kind::Task, "wf.say_hello", "v2")).await.unwrap().is_none());
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flyteadmin_rules_order_identity_and_immutability() {
    let (_data, running, admin) = sandbox_and_client().await;
    let task = id(Kind::Task, "wf.t", "v1");
    let task_bytes = task_spec("wf.t", "v1", "s3://bucket/one.tar.gz");
    let workflow = id(Kind::Workflow, "wf.w", "v1");
    let workflow_bytes = workflow_spec("wf.w", "v1", std::slice::from_ref(&task));
    let plan = id(Kind::LaunchPlan, "wf.w", "v1");

    // A launch plan needs its workflow; a workflow needs its tasks.
    let refused = admin.create(Kind::LaunchPlan, &create_request(&plan, &launch_plan_spec(&workflow, "x"))).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::NotFound);
    // FlyteAdmin's workflow manager: a task the compile needs is looked up first; its absence
    // fails the compile (INVALID_ARGUMENT, the store's NOT_FOUND message inside).
    let refused = admin.create(Kind::Workflow, &create_request(&workflow, &workflow_bytes)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "failed to compile workflow for [resource_type:WORKFLOW project:\"flytesnacks\" domain:\"development\" \
         name:\"wf.w\" version:\"v1\"] with err: missing entity of type TASK with identifier \
         project:\"flytesnacks\" domain:\"development\" name:\"wf.t\" version:\"v1\""
    );

    // Identical again: ALREADY_EXISTS, which the client reports as already there.
    assert_eq!(admin.create(Kind::Task, &create_request(&task, &task_bytes)).await.unwrap(), Created::New);
    assert_eq!(admin.create(Kind::Task, &create_request(&task, &task_bytes)).await.unwrap(), Created::AlreadyThere);

    // Different content under the same version: refused, saying what differs; stored unchanged.
    let changed = task_spec("wf.t", "v1", "s3://bucket/two.tar.gz");
    let refused = admin.create(Kind::Task, &create_request(&task, &changed)).await.unwrap_err();
    assert!(is_different_structure(&refused), "{refused:?}");
    assert!(refused.message().contains("wf.t task with different structure already exists"), "{}", refused.message());
    assert!(
        refused.message().contains("two.tar.gz") && refused.message().contains("one.tar.gz"),
        "{}",
        refused.message()
    );
    let stored = admin.get(Kind::Task, &task).await.unwrap().unwrap();
    assert_eq!(at(&stored, &[2, 1, 1]), at(&task_bytes, &[1]));

    // Unknown project or domain.
    let mut elsewhere = task.clone();
    elsewhere.project = "nobody".into();
    let refused = admin.create(Kind::Task, &create_request(&elsewhere, &task_bytes)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("nobody"), "{}", refused.message());
    let mut elsewhere = task.clone();
    elsewhere.domain = "qa".into();
    let refused = admin.create(Kind::Task, &create_request(&elsewhere, &task_bytes)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // The template id must be the request id.
    let mismatched = id(Kind::Task, "wf.t", "v2");
    let refused = admin.create(Kind::Task, &create_request(&mismatched, &task_bytes)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_a_launch_plan_deactivates_the_previous_version() {
    let (_data, running, admin) = sandbox_and_client().await;
    let task = id(Kind::Task, "wf.t", "v1");
    admin.create(Kind::Task, &create_request(&task, &task_spec("wf.t", "v1", "a"))).await.unwrap();
    let mut plans = Vec::new();
    for version in ["v1", "v2"] {
        let workflow = id(Kind::Workflow, "wf.w", version);
        admin
            .create(
                Kind::Workflow,
                &create_request(&workflow, &workflow_spec("wf.w", version, std::slice::from_ref(&task))),
            )
            .await
            .unwrap();
        let plan = id(Kind::LaunchPlan, "wf.w", version);
        admin.create(Kind::LaunchPlan, &create_request(&plan, &launch_plan_spec(&workflow, version))).await.unwrap();
        assert_eq!(admin.launch_plan_active(&plan).await.unwrap(), Some(false), "new launch plans are inactive");
        plans.push(plan);
    }
    admin.set_launch_plan_active(&plans[0], true).await.unwrap();
    assert_eq!(admin.launch_plan_active(&plans[0]).await.unwrap(), Some(true));
    admin.set_launch_plan_active(&plans[1], true).await.unwrap();
    assert_eq!(admin.launch_plan_active(&plans[0]).await.unwrap(), Some(false), "the previous version is deactivated");
    assert_eq!(admin.launch_plan_active(&plans[1]).await.unwrap(), Some(true));
    // Activating again is harmless.
    admin.set_launch_plan_active(&plans[1], true).await.unwrap();
    assert_eq!(admin.launch_plan_active(&plans[1]).await.unwrap(), Some(true));
    let missing = id(Kind::LaunchPlan, "wf.w", "v9");
    assert_eq!(admin.set_launch_plan_active(&missing, true).await.unwrap_err().code(), tonic::Code::NotFound);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_content_addressed_and_checked_by_md5() {
    let (_data, running, admin) = sandbox_and_client().await;
    let archive = b"pretend this is a tar.gz".to_vec();
    let native = admin.upload(PROJECT, DOMAIN, "fast-code.tar.gz", &archive).await.unwrap();
    let md5 = Md5::digest(&archive);
    assert_eq!(native, format!("sandbox://uploads/{PROJECT}/{DOMAIN}/{}/fast-code.tar.gz", hex(&md5)));
    let got = ureq::get(&format!("http://{}/uploads/{PROJECT}/{DOMAIN}/{}/fast-code.tar.gz", running.http, hex(&md5)))
        .call()
        .unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut body).unwrap();
    assert_eq!(body, archive);

    // A signed URL for some bytes does not take other bytes, nor a lying Content-MD5.
    let location = admin.create_upload_location(PROJECT, DOMAIN, "other.tar.gz", &archive).await.unwrap();
    let other = b"different bytes".to_vec();
    let put = |bytes: &[u8], md5_of: &[u8]| {
        let header = base64::engine::general_purpose::STANDARD.encode(Md5::digest(md5_of));
        match ureq::put(&location.signed_url).set("Content-MD5", &header).send_bytes(bytes) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(put(&other, &other), 400, "the URL was made for another MD5");
    assert_eq!(put(&other, &archive), 400, "the body does not match Content-MD5");
    let tampered = location.signed_url.replace("signature=", "signature=0");
    assert!(ureq::put(&tampered).send_bytes(&archive).is_err(), "a tampered signature is refused");
    assert_eq!(put(&archive, &archive), 201);

    // content_md5 is required.
    let request = flyte_api::service::CreateUploadLocationRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        filename: "x.tar.gz".into(),
        ..Default::default()
    };
    let refused = admin.call_raw(method::CREATE_UPLOAD_LOCATION, &request.encode_to_vec()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    running.stop().await.unwrap();
}

/// A fresh sandbox has project `flytesnacks` in FlyteAdmin's three default domains (as a
/// Flyte sandbox cluster starts), so a first `pyflyte register` finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_sandbox_has_flytesnacks_in_the_three_domains() {
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    let get = admin::ProjectGetRequest { id: PROJECT.into() }.encode_to_vec();
    let project = admin::Project::decode(admin.call_raw(method::GET_PROJECT, &get).await.unwrap().as_slice()).unwrap();
    let domains: Vec<&str> = project.domains.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(domains, ["development", "staging", "production"]);
    for domain in domains {
        admin.create_upload_location(PROJECT, domain, "code.tar.gz", b"code").await.unwrap();
    }
    running.stop().await.unwrap();
}

/// ListProjects as FlyteAdmin answers it: sorted by identifier unless asked otherwise, one
/// page of `limit` with the next page's token, filtered; a bad token is INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_projects_pages_sorts_and_filters() {
    use flyte_api::query::{project_list_request as field, sort};
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    for id in ["p-c", "p-a", "p-b"] {
        assert!(admin.ensure_project(id).await.unwrap());
    }
    let list = |limit: u64, token: &str, filters: &str, sort_by: Option<(&str, bool)>| {
        let mut request = wire::varint_field(field::LIMIT, limit);
        request.extend(wire::len_field(field::TOKEN, token.as_bytes()));
        request.extend(wire::len_field(field::FILTERS, filters.as_bytes()));
        if let Some((key, ascending)) = sort_by {
            let mut by = wire::len_field(sort::KEY, key.as_bytes());
            by.extend(wire::varint_field(sort::DIRECTION, if ascending { sort::ASCENDING } else { 0 }));
            request.extend(wire::len_field(field::SORT_BY, &by));
        }
        let admin = admin.clone();
        async move {
            let answer = admin.call_raw(method::LIST_PROJECTS, &request).await?;
            let projects = admin::Projects::decode(answer.as_slice()).unwrap();
            Ok::<_, tonic::Status>((projects.projects.into_iter().map(|p| p.id).collect::<Vec<_>>(), projects.token))
        }
    };
    let (first, token) = list(2, "", "", None).await.unwrap();
    assert_eq!((first, token.as_str()), (vec!["flytesnacks".to_string(), "p-a".into()], "2"));
    let (rest, token) = list(2, &token, "", None).await.unwrap();
    assert_eq!((rest, token.as_str()), (vec!["p-b".to_string(), "p-c".into()], "4"));
    let (last, token) = list(2, &token, "", None).await.unwrap();
    assert!(last.is_empty() && token.is_empty());
    let (all, _) = list(0, "", "", Some(("identifier", false))).await.unwrap();
    assert_eq!(all, ["p-c", "p-b", "p-a", "flytesnacks"]);
    let (some, _) = list(10, "", "value_in(identifier,p-a;p-c)+ne(identifier,p-c)", None).await.unwrap();
    assert_eq!(some, ["p-a"]);
    let (active, _) = list(10, "", "eq(state,0)+contains(name,p-)", None).await.unwrap();
    assert_eq!(active, ["p-a", "p-b", "p-c"]);
    let bad = list(2, "x", "", None).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("invalid pagination token x for ListProjects"), "{bad:?}");
    running.stop().await.unwrap();
}

/// As FlyteAdmin's data proxy: a location holding bytes is not handed out for other bytes
/// (ALREADY_EXISTS, "file already exists at location ..."), and a URL signed before the
/// first upload cannot overwrite it either; the same bytes again are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_immutable() {
    let (_data, running, admin) = sandbox_and_client().await;
    let location = |bytes: &[u8]| flyte_api::service::CreateUploadLocationRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        filename: "code.tar.gz".into(),
        filename_root: "fixed".into(),
        content_md5: Md5::digest(bytes).to_vec(),
        ..Default::default()
    };
    let signed = |bytes: &[u8]| {
        let request = location(bytes).encode_to_vec();
        let admin = admin.clone();
        async move { admin.call_raw(method::CREATE_UPLOAD_LOCATION, &request).await }
    };
    let put = |url: &str, bytes: &[u8]| {
        let header = base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes));
        match ureq::put(url).set("Content-MD5", &header).send_bytes(bytes) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    let url = |answer: Vec<u8>| {
        flyte_api::service::CreateUploadLocationResponse::decode(answer.as_slice()).unwrap().signed_url
    };
    let first = url(signed(b"first").await.unwrap());
    let second = url(signed(b"second").await.unwrap());
    assert_eq!(put(&first, b"first"), 201);
    assert_eq!(put(&second, b"second"), 409, "a URL signed earlier cannot overwrite the upload");
    assert_eq!(put(&first, b"first"), 201, "the same bytes again are fine");
    let refused = signed(b"second").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().starts_with("file already exists at location ["), "{}", refused.message());
    assert!(signed(b"first").await.is_ok(), "the same bytes may be uploaded again");
    let got =
        ureq::get(&format!("http://{}/uploads/{PROJECT}/{DOMAIN}/fixed/code.tar.gz", running.http)).call().unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut body).unwrap();
    assert_eq!(body, b"first");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_until_a_late_sandbox_answers() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut admin = Admin::remote(&format!("http://127.0.0.1:{port}"), None).unwrap();
    admin.retry = Retry { attempts: 8, ..Retry::default() };
    let path = data.path().to_path_buf();
    let late = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let mut options = sandbox::Options::loopback(path);
        options.addr = format!("127.0.0.1:{port}").parse().unwrap();
        sandbox::start(options).await.unwrap()
    });
    assert!(admin.ensure_project("other").await.unwrap(), "reached after retries on UNAVAILABLE");
    late.await.unwrap().stop().await.unwrap();

    // With nobody listening the retries run out and UNAVAILABLE is returned.
    let gone = Admin::remote(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let refused = gone.call_raw(method::GET_VERSION, &[]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "stopped means unavailable, after the retries");
}

/// `cargo xtask sandbox` as a child process, stopped (SIGTERM) when dropped.
struct SandboxProcess {
    child: Child,
    endpoint: String,
}

impl SandboxProcess {
    fn start(data: &Path) -> SandboxProcess {
        SandboxProcess::start_with(data, &[])
    }

    fn start_with(data: &Path, extra: &[&str]) -> SandboxProcess {
        let mut child = Command::new(tests::xtask_bin())
            .args(["sandbox", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the sandbox");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        let endpoint = first.trim().rsplit(' ').next().unwrap().to_string();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "the sandbox prints its address: {first:?}");
        SandboxProcess { child, endpoint }
    }

    /// SIGTERM, then the exit status and the rest of stdout.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut rest).unwrap();
        (status, rest)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_command_keeps_its_state_across_restarts_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let task = id(Kind::Task, "wf.t", "v1");
    let spec = task_spec("wf.t", "v1", "a");

    let first = SandboxProcess::start(data.path());
    let admin = Admin::remote(&first.endpoint, None).unwrap();
    assert!(admin.is_sandbox().await.unwrap());
    admin.ensure_project(PROJECT).await.unwrap();
    assert_eq!(admin.create(Kind::Task, &create_request(&task, &spec)).await.unwrap(), Created::New);
    first.kill(); // no chance to clean up: what it answered must be on disk

    let second = SandboxProcess::start(data.path());
    let admin = Admin::remote(&second.endpoint, None).unwrap();
    assert!(!admin.ensure_project(PROJECT).await.unwrap(), "the project survived");
    assert_eq!(admin.create(Kind::Task, &create_request(&task, &spec)).await.unwrap(), Created::AlreadyThere);
    let got = admin.get(Kind::Task, &task).await.unwrap().unwrap();
    assert_eq!(at(&got, &[2, 1, 1]), at(&spec, &[1]));
    let (status, rest) = second.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    assert!(rest.contains("sandbox stopped"), "{rest}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Registration of real pyflyte packages.

const EXAMPLES: &[&str] = &["etl", "features", "hello", "training"];

/// The real `pyflyte package` output of each example workflow, read; built once per run.
fn packages() -> Option<&'static BTreeMap<String, Package>> {
    flytekit_python()?;
    static PACKAGES: OnceLock<BTreeMap<String, Package>> = OnceLock::new();
    Some(PACKAGES.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| {
                let work = tempfile::tempdir().unwrap();
                tests::copy_tree(&project_root().join("workflows").join(name), work.path());
                (name.to_string(), specs::read_package(&tests::pyflyte_package(work.path(), name)).unwrap())
            })
            .collect()
    }))
}

fn base(version: &str, label: &str) -> Target {
    Target {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        version: version.into(),
        code_url: None,
        dest_dir: "/root".into(),
        settings: DomainSettings {
            raw_output_prefix: Some("s3://flyte-data/development".into()),
            service_account: Some("flyte-development".into()),
            labels: [("env".to_string(), label.to_string())].into(),
            ..Default::default()
        },
    }
}

fn archive(package: &Package) -> Archive<'_> {
    let (filename, bytes) = package.fast_archive.as_ref().expect("packaged with --copy all");
    Archive { filename, bytes }
}

/// What registration sends for `package`: hydrated with the native URL the sandbox gives
/// the package's archive.
async fn hydrated(admin: &Admin, package: &Package, base: &Target) -> Vec<Hydrated> {
    let archive = archive(package);
    let location = admin.create_upload_location(PROJECT, DOMAIN, archive.filename, archive.bytes).await.unwrap();
    let mut target = base.clone();
    target.code_url = Some(location.native_url);
    hydrate::hydrate_package(package, &target).unwrap()
}

/// Asserts FlyteAdmin returns exactly the hydrated bytes of every entity (Get and List).
async fn assert_stored_exactly(admin: &Admin, hydrated: &[Hydrated]) {
    for h in hydrated {
        let kind = h.kind;
        let id = h.id.clone();
        let got = admin.get(kind, &id).await.unwrap().unwrap_or_else(|| panic!("{} is registered", h.id));
        let (got, sent) = match kind {
            Kind::Task => (at(&got, &[2, 1, 1]).to_vec(), at(&h.spec, &[1]).to_vec()),
            Kind::Workflow => (at(&got, &[2, 1, 1, 1]).to_vec(), at(&h.spec, &[1]).to_vec()),
            _ => (at(&got, &[2]).to_vec(), h.spec.clone()),
        };
        assert!(got == sent, "{}: the stored bytes differ from the hydrated ones", h.id);
        let spec = admin.get_spec(kind, &id).await.unwrap().unwrap();
        if kind != Kind::LaunchPlan {
            assert_eq!(wire::last_len(&spec, 1).unwrap().unwrap(), sent.as_slice(), "{}: get_spec", h.id);
        }
        let listed = admin.list(kind, PROJECT, DOMAIN, &id.name).await.unwrap();
        let versions: Vec<&[u8]> = listed.iter().map(|e| at(e, &[1])).collect();
        let position = versions
            .iter()
            .position(|v| Identifier::decode(*v).unwrap().version == id.version)
            .unwrap_or_else(|| panic!("{} is listed", h.id));
        let listed_bytes = match kind {
            Kind::Task => at(&listed[position], &[2, 1, 1]),
            Kind::Workflow => at(&listed[position], &[2, 1, 1, 1]),
            _ => at(&listed[position], &[2]),
        };
        assert!(listed_bytes == sent.as_slice(), "{}: List returns other bytes", h.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_packages_register_exactly_and_a_rerun_finds_everything_there() {
    let Some(packages) = packages() else { return };
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    let target = base("v1", "development");
    for (name, package) in packages {
        let summary = register::register_package(&admin, package, &target, Some(archive(package)), &Options::default())
            .await
            .unwrap();
        assert!(summary.errors.is_empty(), "{name}: {:?}", summary.errors);
        assert_eq!(summary.created(), package.entities.len(), "{name}: every entity created");
        let hydrated = hydrated(&admin, package, &target).await;
        assert_stored_exactly(&admin, &hydrated).await;
        let plans: Vec<&Hydrated> = hydrated.iter().filter(|h| h.kind == Kind::LaunchPlan).collect();
        assert!(!plans.is_empty(), "{name}: pyflyte writes a default launch plan per workflow");
        assert_eq!(summary.activated, plans.len(), "{name}: every launch plan activated");
        for plan in plans {
            assert_eq!(admin.launch_plan_active(&plan.id).await.unwrap(), Some(true), "{}", plan.id);
        }

        let again = register::register_package(&admin, package, &target, Some(archive(package)), &Options::default())
            .await
            .unwrap();
        assert!(again.errors.is_empty(), "{name}: {:?}", again.errors);
        assert_eq!((again.created(), again.existing(), again.failed()), (0, package.entities.len(), 0), "{name}");
        assert!(again.is_success(), "{name}: {}", again.counts());
        assert_eq!(again.activated, 0, "{name}: already active");
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_content_under_a_registered_version_is_refused_and_nothing_changes() {
    let Some(packages) = packages() else { return };
    let package = &packages["hello"];
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    let first = base("v1", "development");
    let summary =
        register::register_package(&admin, package, &first, Some(archive(package)), &Options::default()).await.unwrap();
    assert_eq!(summary.failed(), 0, "{:?}", summary.errors);
    let registered = hydrated(&admin, package, &first).await;

    // Same version, other code: the tasks' archive URL differs, so their content does.
    let other_code = b"other code".to_vec();
    let changed = Archive { filename: archive(package).filename, bytes: &other_code };
    let summary =
        register::register_package(&admin, package, &first, Some(changed), &Options::default()).await.unwrap();
    assert!(summary.immutability_violated(), "{:?}", summary.errors);
    assert!(summary.failed() > 0);
    assert_eq!(summary.created(), 0, "nothing new is created: {:?}", summary.entities);
    let first_error = &summary.errors[0];
    assert!(
        first_error.contains("task flytesnacks/development/hello.greet.") && first_error.contains("@v1"),
        "names entity and version: {first_error}"
    );
    // The client names what differs itself, by FlyteAdmin's identity rule: the archive URL.
    let ours = first_error
        .split_once("differences by field path (registered -, sent +): ")
        .and_then(|(_, rest)| rest.split_once("(FlyteAdmin:"))
        .map_or("", |(ours, _)| ours);
    assert!(ours.matches("sandbox://uploads/").count() == 2, "names the difference: {first_error}");
    // What depends on a refused task is not sent.
    assert!(summary.entities.iter().any(|(kind, _, o)| *kind == Kind::Workflow
        && matches!(o, Outcome::Failed(m) if m.contains("not registered because"))));
    assert_eq!(summary.activated, 0, "a failed registration activates nothing");
    assert_stored_exactly(&admin, &registered).await;

    // Same version, other launch-plan settings: refused as well.
    let summary = register::register_package(
        &admin,
        package,
        &base("v1", "changed"),
        Some(archive(package)),
        &Options::default(),
    )
    .await
    .unwrap();
    assert!(summary.immutability_violated(), "{:?}", summary.errors);
    assert!(summary.errors[0].contains("launch plan flytesnacks/development/"), "{}", summary.errors[0]);
    assert_stored_exactly(&admin, &registered).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_activates_the_deployed_version_also_when_it_existed() {
    let Some(packages) = packages() else { return };
    let package = &packages["hello"];
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    let plan_of = |h: &[Hydrated]| h.iter().find(|h| h.kind == Kind::LaunchPlan).unwrap().id.clone();
    let (v1, v2) = (base("v1", "development"), base("v2", "development"));
    register::register_package(&admin, package, &v1, Some(archive(package)), &Options::default()).await.unwrap();
    let plan_v1 = plan_of(&hydrated(&admin, package, &v1).await);
    register::register_package(&admin, package, &v2, Some(archive(package)), &Options::default()).await.unwrap();
    let plan_v2 = plan_of(&hydrated(&admin, package, &v2).await);
    assert_eq!(admin.launch_plan_active(&plan_v2).await.unwrap(), Some(true), "the new version is active");
    assert_eq!(admin.launch_plan_active(&plan_v1).await.unwrap(), Some(false), "the previous one is not");

    // Deploying v1 again (a rollback): everything exists, and v1 becomes active again.
    let summary =
        register::register_package(&admin, package, &v1, Some(archive(package)), &Options::default()).await.unwrap();
    assert_eq!(summary.created(), 0);
    assert!(summary.activated > 0, "activation also when the launch plans existed");
    assert_eq!(admin.launch_plan_active(&plan_v1).await.unwrap(), Some(true));
    assert_eq!(admin.launch_plan_active(&plan_v2).await.unwrap(), Some(false));
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_killed_mid_registration_and_restarted_lets_a_rerun_finish() {
    let Some(packages) = packages() else { return };
    let package = &packages["training"];
    let total = package.entities.len();
    let data = tempfile::tempdir().unwrap();
    let target = base("v1", "development");

    // Slow calls (200 ms each, one at a time) so the kill lands mid-registration.
    let first = SandboxProcess::start_with(data.path(), &["--delay-ms", "200"]);
    let mut admin = Admin::remote(&first.endpoint, None).unwrap();
    admin.retry = Retry { attempts: 2, ..Retry::default() };
    let run = {
        let (admin, package, target) = (admin.clone(), package.clone(), target.clone());
        tokio::spawn(async move {
            let options = Options { concurrency: 1, activate: true };
            register::register_package(&admin, &package, &target, Some(archive(&package)), &options).await
        })
    };
    let watcher = Admin::remote(&first.endpoint, None).unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let names = watcher.list_names(Kind::Task, PROJECT, DOMAIN).await.unwrap_or_default();
        if !names.is_empty() {
            break;
        }
    }
    first.kill();
    let interrupted = run.await.unwrap();
    let interrupted = match interrupted {
        Ok(summary) => summary,
        Err(e) => panic!("the upload and hydration were done before the kill: {e:#}"),
    };
    assert!(interrupted.failed() > 0, "the kill interrupted the registration: {:?}", interrupted.entities);
    assert!(interrupted.created() < total);

    let second = SandboxProcess::start(data.path());
    let admin = Admin::remote(&second.endpoint, None).unwrap();
    let summary = register::register_package(&admin, package, &target, Some(archive(package)), &Options::default())
        .await
        .unwrap();
    assert!(summary.errors.is_empty(), "the re-run finishes: {:?}", summary.errors);
    assert_eq!(summary.failed(), 0);
    assert_eq!(summary.created() + summary.existing(), total);
    assert!(summary.existing() >= interrupted.created(), "what was created before the kill is found");
    // Nothing duplicated: one version per name, and exactly the package's entities.
    let mut stored = 0;
    for kind in [Kind::Task, Kind::Workflow, Kind::LaunchPlan] {
        for name in admin.list_names(kind, PROJECT, DOMAIN).await.unwrap() {
            assert_eq!(admin.list(kind, PROJECT, DOMAIN, &name).await.unwrap().len(), 1, "{name}");
            stored += 1;
        }
    }
    assert_eq!(stored, total);
    assert_stored_exactly(&admin, &hydrated(&admin, package, &target).await).await;
    let (status, _) = second.terminate();
    assert!(status.success());
}

/// A one-shot OAuth2 token endpoint on loopback: answers `status` with `body` and hands
/// back the request it received.
fn token_endpoint(status: &'static str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut request = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            request.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut form = vec![0; length];
        std::io::Read::read_exact(&mut reader, &mut form).unwrap();
        request.push_str(&String::from_utf8_lossy(&form));
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut stream, answer.as_bytes()).unwrap();
        request
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_exchanged_for_a_token_and_never_shown() {
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let address = flyte_deploy::registration::admin::Address::Remote { url: running.endpoint() };
    std::env::set_var("FLYTE_CLIENT_ID", "deployer");
    std::env::set_var("FLYTE_CLIENT_SECRET", "s3cr3t-value");
    std::env::set_var("FLYTE_SCOPES", "all");

    let (url, request) =
        token_endpoint("200 OK", r#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#);
    std::env::set_var("FLYTE_TOKEN_URL", &url);
    let admin = Admin::connect_to(&address, Vec::new()).await.unwrap();
    assert!(admin.ensure_project("other").await.unwrap(), "calls go through with the token");
    let request = request.join().unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("deployer:s3cr3t-value");
    assert!(request.starts_with("POST /oauth2/token"), "{request}");
    assert!(request.contains(&format!("Basic {basic}")), "client id and secret as HTTP basic auth: {request}");
    assert!(request.contains("grant_type=client_credentials") && request.contains("scope=all"), "{request}");

    // A refused token request: the error names the endpoint and status, not the secret.
    let (url, request) = token_endpoint("401 Unauthorized", r#"{"error":"invalid_client"}"#);
    std::env::set_var("FLYTE_TOKEN_URL", &url);
    let admin = Admin::connect_to(&address, Vec::new()).await.unwrap();
    let refused = admin.ensure_project("another").await.unwrap_err();
    request.join().unwrap();
    let shown = format!("{refused:#}");
    assert!(shown.contains("401") && shown.contains(&url), "{shown}");
    assert!(!shown.contains("s3cr3t-value") && !shown.contains(&basic), "the secret is never shown: {shown}");
    for var in ["FLYTE_CLIENT_ID", "FLYTE_CLIENT_SECRET", "FLYTE_SCOPES", "FLYTE_TOKEN_URL"] {
        std::env::remove_var(var);
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_sandbox_starts_one_in_process_under_the_repository() {
    let repo = tempfile::tempdir().unwrap();
    let file = repo.path().join("deploy.toml");
    let text = "[flyte]\nendpoint = \"sandbox\"\n\n[[domains]]\nname = \"qa\"\nbranches = [\"*\"]\n";
    let config = flyte_deploy::config::Config::parse(&file, text).unwrap();
    let admin = Admin::connect(&config, repo.path()).await.unwrap();
    assert!(admin.is_sandbox().await.unwrap());
    assert!(repo.path().join(".flyte/sandbox/sandbox.sqlite").is_file(), "state under the repository");
    // A configured domain beyond FlyteAdmin's three is accepted by the embedded sandbox.
    admin.ensure_project(PROJECT).await.unwrap();
    let mut task = id(Kind::Task, "wf.t", "v1");
    task.domain = "qa".into();
    let mut template = core::TaskTemplate::decode(at(&task_spec("wf.t", "v1", "a"), &[1])).unwrap();
    template.id = Some(task.clone());
    let spec = admin::TaskSpec { template: Some(template) }.encode_to_vec();
    assert_eq!(admin.create(Kind::Task, &create_request(&task, &spec)).await.unwrap(), Created::New);
    admin.close().await.unwrap();

    // FLYTE_ENDPOINT wins over deploy.toml.
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    std::env::set_var("FLYTE_ENDPOINT", running.endpoint());
    let admin = Admin::connect(&config, repo.path()).await;
    std::env::remove_var("FLYTE_ENDPOINT");
    let admin = admin.unwrap();
    assert_eq!(admin.endpoint, running.endpoint());
    assert!(admin.sandbox().is_none(), "reached at an address, not started");
    running.stop().await.unwrap();
}

/// Re-encodes spec files with flyteidl's Python classes in one fresh Python process, every
/// map filled again in an order of that process's choosing (as writers that build maps from
/// dicts do). Each line is `<kind> <path>`: 1 TaskSpec, 2 WorkflowSpec, 3 LaunchPlanSpec.
const REENCODE: &str = r#"
import random, sys
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
def refill(msg):
    for field, value in msg.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            is_msg = field.message_type.fields_by_name["value"].message_type is not None
            saved = []
            for k, v in list(value.items()):
                if is_msg:
                    c = type(v)()
                    c.CopyFrom(v)
                    refill(c)
                    v = c
                saved.append((k, v))
            random.shuffle(saved)
            value.clear()
            for k, v in saved:
                if is_msg:
                    value[k].CopyFrom(v)
                else:
                    value[k] = v
        elif field.message_type is not None:
            for v in ([value] if hasattr(value, "ListFields") else value):
                refill(v)
kinds = {"1": task_pb2.TaskSpec, "2": workflow_pb2.WorkflowSpec, "3": launch_plan_pb2.LaunchPlanSpec}
for line in sys.stdin.read().splitlines():
    kind, path = line.split(" ", 1)
    message = kinds[kind]()
    message.ParseFromString(open(path, "rb").read())
    refill(message)
    open(path, "wb").write(message.SerializeToString())
"#;

fn reencoded_by_python(python: &Path, specs: &[(Kind, Vec<u8>)]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for (n, (kind, spec)) in specs.iter().enumerate() {
        let path = dir.path().join(format!("{n}.pb"));
        std::fs::write(&path, spec).unwrap();
        let k = match kind {
            Kind::Task => 1,
            Kind::Workflow => 2,
            Kind::LaunchPlan => 3,
        };
        input.push_str(&format!("{k} {}\n", path.display()));
    }
    let mut child = Command::new(python)
        .args(["-c", REENCODE])
        .env("PYTHONHASHSEED", "random")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "re-encoding with flyteidl's Python classes");
    (0..specs.len()).map(|n| std::fs::read(dir.path().join(format!("{n}.pb"))).unwrap()).collect()
}

/// FlyteAdmin's identity (flyteadmin compares a pbhash digest of a canonical form): the
/// same content is ALREADY_EXISTS whatever the order its writer put map entries and fields
/// in. Every example package, registered, then sent again 20 times re-encoded by Python's
/// protobuf in a fresh process: always ALREADY_EXISTS, and the client's own check agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_reencoded_by_python_is_already_there_every_time() {
    let Some(packages) = packages() else { return };
    let python = flytekit_python().unwrap();
    let data = tempfile::tempdir().unwrap();
    let running = sandbox::start(sandbox::Options::loopback(data.path())).await.unwrap();
    let admin = Admin::remote(&running.endpoint(), None).unwrap();
    // Several labels and annotations: launch-plan maps of more than one entry.
    let mut target = base("v1", "development");
    for (k, v) in [("team", "ml"), ("tier", "gold"), ("owner", "ci"), ("cost", "a1")] {
        target.settings.labels.insert(k.to_string(), v.to_string());
        target.settings.annotations.insert(format!("note-{k}"), v.to_string());
    }
    let mut sent = Vec::new();
    for (name, package) in packages {
        let summary = register::register_package(&admin, package, &target, Some(archive(package)), &Options::default())
            .await
            .unwrap();
        assert!(summary.errors.is_empty(), "{name}: {:?}", summary.errors);
        sent.extend(hydrated(&admin, package, &target).await);
    }
    let specs: Vec<(Kind, Vec<u8>)> = sent.iter().map(|h| (h.kind, h.spec.clone())).collect();
    let mut reordered = 0;
    for round in 0..20 {
        let again = reencoded_by_python(&python, &specs);
        for (h, spec) in sent.iter().zip(&again) {
            if *spec != h.spec {
                reordered += 1;
            }
            assert!(
                flyte_api::canonical::identical(flyte_api::canonical::Spec::of(h.kind), &h.spec, spec),
                "round {round}: {} re-encoded is not identical to what was registered",
                h.id
            );
            let created = admin.create(h.kind, &create_request(&h.id, spec)).await;
            assert!(
                matches!(created, Ok(Created::AlreadyThere)),
                "round {round}: {} re-encoded by Python: {created:?}",
                h.id
            );
        }
    }
    // Else this test would prove nothing: Python's encodings must differ from the ones sent.
    assert!(reordered > 0, "Python re-encoded every spec to the very same bytes in 20 fresh processes");
    eprintln!("{reordered} of {} re-encoded specs differed in bytes from the registered ones", 20 * sent.len());
    running.stop().await.unwrap();
}

/// FlyteAdmin's list queries on ListTasks: filters (`eq`, `ne`, `gt`, `gte`, `lt`, `lte`,
/// `contains`, `value_in`), `sort_by` in both directions, `limit`/`token` pages, and
/// creation times to the nanosecond, so of two versions registered a millisecond apart the
/// later is "latest".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_sort_and_page_as_flyteadmin_does() {
    use flyte_api::query::{resource_list_request as list, sort};
    let (_data, running, admin) = sandbox_and_client().await;
    for version in ["v1", "v2", "v3"] {
        let task = id(Kind::Task, "t", version);
        admin.create(Kind::Task, &create_request(&task, &task_spec("t", version, "x"))).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let other = id(Kind::Task, "other", "v9");
    admin.create(Kind::Task, &create_request(&other, &task_spec("other", "v9", "x"))).await.unwrap();
    let query = |name: &str, filters: &str, sort_key: &str, ascending: bool, limit: u32, token: &str| {
        let mut request = admin::ResourceListRequest {
            id: Some(admin::NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: name.into(),
                org: String::new(),
            }),
            limit,
            token: token.into(),
        }
        .encode_to_vec();
        if !filters.is_empty() {
            request.extend(wire::len_field(list::FILTERS, filters.as_bytes()));
        }
        if !sort_key.is_empty() {
            let mut sort_by = wire::len_field(sort::KEY, sort_key.as_bytes());
            if ascending {
                sort_by.extend(wire::varint_field(sort::DIRECTION, sort::ASCENDING));
            }
            request.extend(wire::len_field(list::SORT_BY, &sort_by));
        }
        let admin = admin.clone();
        async move { admin.call_raw(method::LIST_TASKS, &request).await }
    };
    // (versions listed, next token, creation times in nanoseconds)
    let versions = |answer: Vec<u8>| {
        let entities = wire::all_len(&answer, 1).unwrap();
        let versions: Vec<String> = entities.iter().map(|e| Identifier::decode(at(e, &[1])).unwrap().version).collect();
        let times: Vec<i128> = entities
            .iter()
            .map(|e| {
                let t = flyte_api::prost_types::Timestamp::decode(at(e, &[2, 2])).unwrap();
                i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
            })
            .collect();
        (versions, wire::string(&answer, 2).unwrap().unwrap_or_default(), times)
    };
    let (newest_first, _, times) = versions(query("t", "", "", false, 100, "").await.unwrap());
    assert_eq!(newest_first, ["v3", "v2", "v1"], "default: newest first");
    assert!(times[0] > times[1] && times[1] > times[2], "distinct times a millisecond apart: {times:?}");
    assert!(times.iter().any(|t| t % 1_000_000_000 != 0), "nanoseconds are kept: {times:?}");
    let ascending = versions(query("t", "", "created_at", true, 100, "").await.unwrap()).0;
    assert_eq!(ascending, ["v1", "v2", "v3"], "sort_by created_at ASCENDING");
    assert_eq!(versions(query("t", "", "version", false, 100, "").await.unwrap()).0, ["v3", "v2", "v1"]);
    let only = |filters: &'static str| {
        let query = query("", filters, "version", true, 100, "");
        async move { versions(query.await.unwrap()).0 }
    };
    assert_eq!(only("eq(version,v2)").await, ["v2"]);
    assert_eq!(only("ne(version,v2)+eq(name,t)").await, ["v1", "v3"]);
    assert_eq!(only("gt(version,v2)").await, ["v3", "v9"]);
    assert_eq!(only("gte(version,v2)+lt(version,v9)").await, ["v2", "v3"]);
    assert_eq!(only("lte(version,v1)").await, ["v1"]);
    assert_eq!(only("contains(name,the)").await, ["v9"]);
    assert_eq!(only("value_in(version,v1;v3)").await, ["v1", "v3"]);
    assert_eq!(only("gte(created_at,2000-01-01T00:00:00Z)+lt(created_at,2999-01-01T00:00:00Z)").await.len(), 4);
    assert!(only("gt(created_at,2999-01-01T00:00:00Z)").await.is_empty());
    // Pages of one, in the requested order, then no token.
    let (page, token, _) = versions(query("t", "", "created_at", true, 1, "").await.unwrap());
    assert_eq!(page, ["v1"]);
    let (page, token, _) = versions(query("t", "", "created_at", true, 2, &token).await.unwrap());
    assert_eq!(page, ["v2", "v3"]);
    assert_eq!(token, "", "the last page has no token");
    // What FlyteAdmin refuses: unknown functions, fields and sort keys.
    for (filters, sort_key) in [("like(name,t)", ""), ("eq(colour,red)", ""), ("", "colour")] {
        let refused = query("t", filters, sort_key, false, 10, "").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{filters} {sort_key}: {refused:?}");
    }
    running.stop().await.unwrap();
}
