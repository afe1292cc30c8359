#[path = "../control.rs"]
mod control;
#[path = "../run.rs"]
mod run;
