#[path = "../projects.rs"]
mod projects;
