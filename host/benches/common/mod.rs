//! What both benches need: a private `redis-server` on a loopback port of their own, the same
//! the end-to-end tests start.

use std::time::{Duration, Instant};

#[allow(dead_code, reason = "the benches never stop or restart their server")]
#[path = "../../../tests/e2e/redis_server.rs"]
pub mod redis_server;

pub use redis_server::RedisServer as Redis;

/// Waits until something accepts connections on the loopback port.
#[allow(
    dead_code,
    reason = "only the pipeline bench starts a server of its own"
)]
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
