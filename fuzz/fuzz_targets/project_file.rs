//! The project file parser: the bytes are a project file (`Project::from_yaml`) or, by the first
//! byte, a tmuxp/tmuxinator file (`import_str`, as YAML or JSON). No input may panic. A project that
//! loads (or is imported) must validate, resolve, and write YAML that loads back to an equal project.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use termloom_core::project::{Project, import_str};

fn check(project: &Project) {
    let _ = project.validate();
    let _ = project.resolve();
    if let Ok(yaml) = project.to_yaml() {
        // No extension: the name need not match the file name.
        match Project::from_yaml(&yaml, Path::new("/fuzz/written")) {
            Ok(again) => assert_eq!(&again, project, "written as {yaml:?}"),
            Err(e) => panic!("a loaded project writes YAML that does not load: {e}\n{yaml}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 4 {
        0 | 1 => {
            if let Ok(project) = Project::from_yaml(text, Path::new("/fuzz/demo.yaml")) {
                check(&project);
            }
        }
        2 => {
            if let Ok(imported) = import_str(text, Path::new("/fuzz/demo.yml"), None) {
                check(&imported.project);
            }
        }
        _ => {
            if let Ok(imported) = import_str(text, Path::new("/fuzz/demo.json"), Some("demo")) {
                check(&imported.project);
            }
        }
    }
});
