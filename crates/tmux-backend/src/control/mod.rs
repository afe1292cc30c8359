//! tmux control mode (`tmux -C`): the sans-IO protocol parser and the layout-string parser.
pub mod gate;
pub mod layout;
pub mod output;
pub mod parser;
pub mod transport;
