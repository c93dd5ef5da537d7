//! Integration tests of the strategy runtime through its public API.

mod support;

mod build;
mod build_sandbox;
mod examples;
mod http;
mod isolation;
mod limits;
mod packages;
mod sandbox;
mod stdlib;
mod platform;
mod syntax;
