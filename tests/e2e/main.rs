//! End-to-end tests: a private `redis-server`, the CaptchaAI simulator over real HTTP, real
//! compiled policies, and the real pool or the real binary.

#[allow(
    dead_code,
    reason = "shared with the benches, which start theirs without persistence"
)]
mod redis_server;
mod support;

mod badtasks;
mod containment;
mod crash;
mod demo;
mod errors;
mod faults;
mod multihost;
mod observe;
mod observe_cli;
mod outage;
mod pipeline;
mod policy_check;
mod reload;
mod replay;
mod scaling;
mod shutdown;
mod soak;
