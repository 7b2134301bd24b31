//! Test support: the local AWS emulator, a fresh table per test, and helpers to call the
//! routers the way API Gateway would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a setup that fails is a failed test, said with its cause"
)]

pub mod emulator;
pub mod fake_server;
pub mod fixtures;
pub mod stack;
pub mod webdriver;

pub use stack::{TestStack, keys};
