//! gitlab-summary's group views (`/api/groups/{path}`, `/subgroups`) derived from the project
//! paths buildlore has seen, in GitLab's group shape. Without GitLab's groups API the numeric
//! ids are unknown (`null`).

use crate::repo::RepoPath;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A group as GitLab's API shows one, from its full path.
fn group_view(full_path: &str, gitlab_url: &str) -> Value {
    let name = full_path.rsplit('/').next().unwrap_or(full_path);
    json!({
        "id": null,
        "name": name,
        "path": name,
        "full_name": full_path.replace('/', " / "),
        "full_path": full_path,
        "parent_id": null,
        "description": "",
        "visibility": null,
        "avatar_url": null,
        "web_url": format!("{}/groups/{full_path}", gitlab_url.trim_end_matches('/')),
    })
}

/// The group at `full_path` with the projects seen under it; `None` when none was.
pub fn group(full_path: &str, projects: &[RepoPath], gitlab_url: &str) -> Option<Value> {
    let prefix = format!("{full_path}/");
    let inside: Vec<&str> = projects
        .iter()
        .map(RepoPath::as_str)
        .filter(|path| path.starts_with(&prefix))
        .collect();
    if inside.is_empty() {
        return None;
    }
    let mut view = group_view(full_path, gitlab_url);
    if let Some(object) = view.as_object_mut() {
        object.insert(
            "projects".into(),
            json!(
                inside
                    .iter()
                    .map(
                        |path| json!({"path_with_namespace": path, "name": path.rsplit('/').next()})
                    )
                    .collect::<Vec<_>>()
            ),
        );
    }
    Some(view)
}

/// The direct subgroups of `full_path` that hold projects seen.
pub fn subgroups(full_path: &str, projects: &[RepoPath], gitlab_url: &str) -> Vec<Value> {
    let prefix = format!("{full_path}/");
    let children: BTreeSet<String> = projects
        .iter()
        .filter_map(|path| path.as_str().strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('/').map(|(child, _)| child.to_string()))
        .collect();
    children
        .iter()
        .map(|child| group_view(&format!("{full_path}/{child}"), gitlab_url))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<RepoPath> {
        list.iter().map(|p| RepoPath::parse(p).unwrap()).collect()
    }

    #[test]
    fn groups_and_subgroups_come_from_project_paths() {
        let projects = paths(&[
            "team/app",
            "team/infra/terraform",
            "team/infra/ansible",
            "other/x",
        ]);
        let team = group("team", &projects, "https://gitlab.com/").unwrap();
        assert_eq!(team["full_path"], "team");
        assert_eq!(team["web_url"], "https://gitlab.com/groups/team");
        assert_eq!(team["id"], Value::Null);
        assert_eq!(team["projects"].as_array().map(Vec::len), Some(3));
        let subs = subgroups("team", &projects, "https://gitlab.com");
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0]["full_path"], "team/infra");
        assert_eq!(subs[0]["full_name"], "team / infra");
        assert!(group("nobody", &projects, "https://gitlab.com").is_none());
        assert!(group("tea", &projects, "https://gitlab.com").is_none());
    }
}
