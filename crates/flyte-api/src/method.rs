//! The gRPC services and method paths the tool calls and the sandbox serves, named once.
//! A path is `/<package>.<Service>/<Method>`, as it travels in the HTTP/2 `:path` header.

use crate::core::Kind;

/// `flyteidl.service.AdminService`: entities, projects, attributes, version.
pub const ADMIN_SERVICE: &str = "flyteidl.service.AdminService";
/// `flyteidl.service.DataProxyService`: signed upload locations.
pub const DATA_PROXY_SERVICE: &str = "flyteidl.service.DataProxyService";
/// `flyteidl.service.AuthMetadataService`: where and how to sign in.
pub const AUTH_METADATA_SERVICE: &str = "flyteidl.service.AuthMetadataService";

pub const CREATE_TASK: &str = "/flyteidl.service.AdminService/CreateTask";
pub const GET_TASK: &str = "/flyteidl.service.AdminService/GetTask";
pub const LIST_TASKS: &str = "/flyteidl.service.AdminService/ListTasks";
pub const LIST_TASK_IDS: &str = "/flyteidl.service.AdminService/ListTaskIds";
pub const CREATE_WORKFLOW: &str = "/flyteidl.service.AdminService/CreateWorkflow";
pub const GET_WORKFLOW: &str = "/flyteidl.service.AdminService/GetWorkflow";
pub const LIST_WORKFLOWS: &str = "/flyteidl.service.AdminService/ListWorkflows";
pub const LIST_WORKFLOW_IDS: &str = "/flyteidl.service.AdminService/ListWorkflowIds";
pub const CREATE_LAUNCH_PLAN: &str = "/flyteidl.service.AdminService/CreateLaunchPlan";
pub const GET_LAUNCH_PLAN: &str = "/flyteidl.service.AdminService/GetLaunchPlan";
pub const LIST_LAUNCH_PLANS: &str = "/flyteidl.service.AdminService/ListLaunchPlans";
pub const LIST_LAUNCH_PLAN_IDS: &str = "/flyteidl.service.AdminService/ListLaunchPlanIds";
pub const UPDATE_LAUNCH_PLAN: &str = "/flyteidl.service.AdminService/UpdateLaunchPlan";
pub const GET_ACTIVE_LAUNCH_PLAN: &str = "/flyteidl.service.AdminService/GetActiveLaunchPlan";
pub const LIST_ACTIVE_LAUNCH_PLANS: &str = "/flyteidl.service.AdminService/ListActiveLaunchPlans";
pub const REGISTER_PROJECT: &str = "/flyteidl.service.AdminService/RegisterProject";
pub const GET_PROJECT: &str = "/flyteidl.service.AdminService/GetProject";
pub const LIST_PROJECTS: &str = "/flyteidl.service.AdminService/ListProjects";
pub const UPDATE_PROJECT_DOMAIN_ATTRIBUTES: &str = "/flyteidl.service.AdminService/UpdateProjectDomainAttributes";
pub const GET_PROJECT_DOMAIN_ATTRIBUTES: &str = "/flyteidl.service.AdminService/GetProjectDomainAttributes";
pub const GET_VERSION: &str = "/flyteidl.service.AdminService/GetVersion";
pub const CREATE_UPLOAD_LOCATION: &str = "/flyteidl.service.DataProxyService/CreateUploadLocation";
pub const GET_OAUTH2_METADATA: &str = "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata";
pub const GET_PUBLIC_CLIENT_CONFIG: &str = "/flyteidl.service.AuthMetadataService/GetPublicClientConfig";

/// `Create<Kind>`: a `…CreateRequest` in, an empty answer out.
pub fn create(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => CREATE_TASK,
        Kind::Workflow => CREATE_WORKFLOW,
        Kind::LaunchPlan => CREATE_LAUNCH_PLAN,
    }
}

/// `Get<Kind>`: an `ObjectGetRequest` in, an `admin.Task` / `Workflow` / `LaunchPlan` out.
pub fn get(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => GET_TASK,
        Kind::Workflow => GET_WORKFLOW,
        Kind::LaunchPlan => GET_LAUNCH_PLAN,
    }
}

/// `List<Kind>s`: a `ResourceListRequest` in, a page of entities out.
pub fn list(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => LIST_TASKS,
        Kind::Workflow => LIST_WORKFLOWS,
        Kind::LaunchPlan => LIST_LAUNCH_PLANS,
    }
}

/// `List<Kind>Ids`: a `NamedEntityIdentifierListRequest` in, a page of names out.
pub fn list_ids(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => LIST_TASK_IDS,
        Kind::Workflow => LIST_WORKFLOW_IDS,
        Kind::LaunchPlan => LIST_LAUNCH_PLAN_IDS,
    }
}

/// The method's name alone (`CreateTask` of `/flyteidl.service.AdminService/CreateTask`).
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path, with the service it belongs to.
    const ALL: &[(&str, &str)] = &[
        (ADMIN_SERVICE, CREATE_TASK),
        (ADMIN_SERVICE, GET_TASK),
        (ADMIN_SERVICE, LIST_TASKS),
        (ADMIN_SERVICE, LIST_TASK_IDS),
        (ADMIN_SERVICE, CREATE_WORKFLOW),
        (ADMIN_SERVICE, GET_WORKFLOW),
        (ADMIN_SERVICE, LIST_WORKFLOWS),
        (ADMIN_SERVICE, LIST_WORKFLOW_IDS),
        (ADMIN_SERVICE, CREATE_LAUNCH_PLAN),
        (ADMIN_SERVICE, GET_LAUNCH_PLAN),
        (ADMIN_SERVICE, LIST_LAUNCH_PLANS),
        (ADMIN_SERVICE, LIST_LAUNCH_PLAN_IDS),
        (ADMIN_SERVICE, UPDATE_LAUNCH_PLAN),
        (ADMIN_SERVICE, GET_ACTIVE_LAUNCH_PLAN),
        (ADMIN_SERVICE, LIST_ACTIVE_LAUNCH_PLANS),
        (ADMIN_SERVICE, REGISTER_PROJECT),
        (ADMIN_SERVICE, GET_PROJECT),
        (ADMIN_SERVICE, LIST_PROJECTS),
        (ADMIN_SERVICE, UPDATE_PROJECT_DOMAIN_ATTRIBUTES),
        (ADMIN_SERVICE, GET_PROJECT_DOMAIN_ATTRIBUTES),
        (ADMIN_SERVICE, GET_VERSION),
        (DATA_PROXY_SERVICE, CREATE_UPLOAD_LOCATION),
        (AUTH_METADATA_SERVICE, GET_OAUTH2_METADATA),
        (AUTH_METADATA_SERVICE, GET_PUBLIC_CLIENT_CONFIG),
    ];

    #[test]
    fn every_path_is_its_service_and_method() {
        for (service, path) in ALL {
            let method = name(path);
            assert_eq!(*path, format!("/{service}/{method}"));
            assert!(method.starts_with(|c: char| c.is_ascii_uppercase()), "{path}");
        }
        let mut unique: Vec<&str> = ALL.iter().map(|(_, p)| *p).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ALL.len());
    }

    #[test]
    fn entity_methods_follow_the_kind() {
        for kind in Kind::ALL {
            let noun = match kind {
                Kind::Task => "Task",
                Kind::Workflow => "Workflow",
                Kind::LaunchPlan => "LaunchPlan",
            };
            assert_eq!(name(create(kind)), format!("Create{noun}"));
            assert_eq!(name(get(kind)), format!("Get{noun}"));
            assert_eq!(name(list(kind)), format!("List{noun}s"));
            assert_eq!(name(list_ids(kind)), format!("List{noun}Ids"));
        }
    }
}
