//! One file per subcommand.

pub mod api_sim;
pub mod demo;
pub mod enqueue;
pub mod policy;
pub mod replay;
pub mod run;
pub mod status;
