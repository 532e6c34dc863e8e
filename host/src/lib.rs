//! The autoscaler host: a pool of CAPTCHA-solving workers whose size a WebAssembly policy sets.
//!
//! Data flow: producers push tasks onto a Redis list; the [`dispatch`]er hands them to idle
//! [`worker`]s of the [`pool`]; workers solve them through the [`solver`] and write results
//! through the [`queue`]. Every tick the [`scaler`] builds a snapshot from the queue and the
//! [`metrics`], asks the [`policy`] for a target, clamps it and resizes the pool.
//! [`observe`] exports what each tick saw and did to Prometheus. [`service`] wires it all
//! together; [`cli`] is the command line.

pub mod balance;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod gate;
pub mod heartbeat;
pub mod held;
pub mod metrics;
pub mod observe;
pub mod policy;
pub mod pool;
pub mod queue;
pub mod replay;
pub mod retention;
pub mod scaler;
pub mod service;
pub mod sim;
pub mod solver;
pub mod status;
pub mod task;
pub mod worker;
