//! Test support: the local AWS emulator, a fresh table per test, and helpers to call the
//! routers the way API Gateway would.

pub mod emulator;
pub mod fake_server;
pub mod fixtures;
pub mod stack;
pub mod webdriver;

pub use stack::{TestStack, keys};
