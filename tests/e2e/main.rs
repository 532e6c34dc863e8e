//! End-to-end tests: a private `redis-server`, the CaptchaAI simulator over real HTTP, real
//! compiled policies, and the real pool or the real binary.

mod support;

mod containment;
mod demo;
mod errors;
mod observe;
mod observe_cli;
mod pipeline;
mod policy_check;
mod reload;
mod scaling;
