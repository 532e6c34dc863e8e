//! A private `redis-server` on a loopback port of its own, for the end-to-end tests and the
//! benches (which include this file by path).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A `redis-server` of the caller's own, on a free port, in a temporary folder; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Whether it writes an append-only file, so a restart finds every write.
    aof: bool,
}

impl RedisServer {
    /// A server with an append-only file (fsync every second), for tests that restart it.
    pub fn start() -> Self {
        Self::launch(true)
    }

    /// A server that persists nothing, for measurements.
    pub fn without_persistence() -> Self {
        Self::launch(false)
    }

    fn launch(aof: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            aof,
        };
        // Another process may take the port between the check and redis-server's bind; then the
        // server exits at once and a fresh port is tried.
        for _ in 0..5 {
            match server.spawn() {
                Ok(()) => return server,
                Err(why) => {
                    eprintln!(
                        "redis-server on port {}: {why}; trying another",
                        server.port
                    );
                    server.port = free_port();
                }
            }
        }
        panic!("redis-server did not start on five free ports");
    }

    /// Starts `redis-server` on `self.port` and waits until it answers PING with PONG.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                if self.aof { "yes" } else { "no" },
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("poll redis-server") {
                return Err(format!("exited with {status} before answering"));
            }
            if answers_ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("no PONG within 10 s".to_owned())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server cleanly (SIGTERM: it flushes its AOF) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), "TERM");
        let _ = child.wait();
    }

    /// Starts the server again on the same port and folder, loading its AOF.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.spawn() {
            panic!("redis-server did not restart on port {}: {why}", self.port);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on right now, different on every call in this process.
///
/// Ports come from below Linux's ephemeral range (32768 and up), so no port the kernel hands
/// out to an outgoing connection or a `:0` bind can take it before the server binds it, and a
/// connect to it can never meet itself (a TCP self-connect to an ephemeral port succeeds).
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + offset.wrapping_add(n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a Redis on the port answers `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Sends a signal (`TERM`, `INT`, `KILL`, `STOP`, `CONT`) to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}
