//! The HTTP API, started on port 0 with a fresh database, against SQLite
//! and PostgreSQL alike: every test runs once per backend.

mod support;

mod analytics;
mod auth;
mod builds;
mod campaigns;
mod connections;
mod contacts;
mod conversations;
mod deep_analysis;
mod email;
mod invocations;
mod names;
mod quotas;
mod readiness;
mod engine;
mod fairness;
mod health;
mod sends;
mod nodes;
mod rollups;
mod simulations;
mod stages;
mod strategies;
mod tenancy;
mod usage;
mod webhooks;
