//! What a policy instance may touch: its store's data, its log, its standard streams.
//!
//! The guest gets WASI with nothing behind it: no preopened directory, no environment, no
//! arguments, no network (TCP, UDP and name lookup all refused). Its stdout, stderr and `log`
//! import share one byte budget per call; what goes past it is dropped and counted, never
//! allowed to stall or kill the guest.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::autoscaler::policy::{log, types::LogLevel};
use super::limits::Limits;

/// Lines a policy wrote during one call, within the call's byte budget.
#[derive(Debug, Default)]
pub struct LogBuffer {
    pub lines: Vec<(LogLevel, String)>,
    pub used: usize,
    pub dropped: usize,
    budget: usize,
    /// An unfinished stdout or stderr line, waiting for the rest of it.
    partial: Option<(LogLevel, String)>,
}

impl LogBuffer {
    /// Starts a new call with a fresh budget.
    pub fn reset(&mut self, budget: usize) {
        self.lines.clear();
        self.used = 0;
        self.dropped = 0;
        self.budget = budget;
        self.partial = None;
    }

    /// Takes stream output, which arrives in pieces: whole lines are kept, an unfinished one
    /// waits for the rest (or for [`finish`](Self::finish)), and blank lines are skipped.
    pub fn write_stream(&mut self, level: LogLevel, text: &str) {
        let mut pending = match self.partial.take() {
            Some((held, pending)) if held == level => pending,
            Some((held, pending)) => {
                self.push(held, &pending);
                String::new()
            }
            None => String::new(),
        };
        pending.push_str(text);
        let whole = pending.rfind('\n').map_or(0, |end| end + 1);
        for line in pending[..whole].lines().filter(|l| !l.trim().is_empty()) {
            self.push(level, line);
        }
        let rest = &pending[whole..];
        if rest.len() > self.budget {
            self.push(level, rest);
        } else if !rest.is_empty() {
            self.partial = Some((level, rest.to_owned()));
        }
    }

    /// Ends the call: an unfinished line is kept as it stands.
    pub fn finish(&mut self) {
        if let Some((level, pending)) = self.partial.take()
            && !pending.trim().is_empty()
        {
            self.push(level, &pending);
        }
    }

    /// Whether the call's budget is spent: anything more is dropped.
    pub fn is_full(&self) -> bool {
        self.used >= self.budget
    }

    /// Keeps as much of `text` as the budget allows, cut at a character boundary.
    pub fn push(&mut self, level: LogLevel, text: &str) {
        let room = self.budget.saturating_sub(self.used);
        let kept = truncate(text, room);
        self.dropped += text.len() - kept.len();
        if !kept.is_empty() {
            self.used += kept.len();
            self.lines.push((level, kept.to_owned()));
        }
    }
}

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Bounds an instance's memories and tables, and remembers when it refused memory so a trap
/// that follows can be reported as running out of memory.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    pub refused_memory: bool,
}

impl GuestLimiter {
    fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes(),
            table_elements: limits.table_elements,
            instances: limits.instances,
            refused_memory: false,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.refused_memory |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}

/// The data of one policy instance's store.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: GuestLimiter,
    pub log: Arc<Mutex<LogBuffer>>,
}

impl std::fmt::Debug for GuestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestState").finish_non_exhaustive()
    }
}

impl GuestState {
    pub fn new(limits: &Limits) -> Self {
        let log = Arc::new(Mutex::new(LogBuffer::default()));
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::new(log.clone(), LogLevel::Info))
            .stderr(GuestOutput::new(log.clone(), LogLevel::Warn))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: GuestLimiter::new(limits),
            log,
        }
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, LogBuffer> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.lock_log().push(level, &message);
    }
}

impl super::bindings::autoscaler::policy::types::Host for GuestState {}

/// A guest's stdout or stderr, feeding the call's log buffer.
#[derive(Clone)]
struct GuestOutput {
    log: Arc<Mutex<LogBuffer>>,
    level: LogLevel,
}

impl GuestOutput {
    fn new(log: Arc<Mutex<LogBuffer>>, level: LogLevel) -> Self {
        Self { log, level }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut log = self.log.lock().map_err(|_| StreamError::Closed)?;
        if log.is_full() {
            // A flood past the budget costs a counter, not decoding and splitting.
            log.dropped += bytes.len();
            return Ok(());
        }
        log.write_stream(self.level, &String::from_utf8_lossy(&bytes));
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_budget_truncates_and_counts_what_it_drops() {
        let mut log = LogBuffer::default();
        log.reset(10);
        log.push(LogLevel::Info, "12345");
        log.push(LogLevel::Info, "abcdefgh");
        log.push(LogLevel::Info, "more");
        assert_eq!(log.lines.len(), 2);
        assert_eq!(log.lines[1].1, "abcde");
        assert_eq!(log.dropped, 3 + 4);
    }

    #[test]
    fn stream_pieces_are_joined_into_lines() {
        let mut log = LogBuffer::default();
        log.reset(1000);
        log.write_stream(LogLevel::Warn, "memory allocation of ");
        log.write_stream(LogLevel::Warn, "1048576");
        log.write_stream(LogLevel::Warn, " bytes failed\n\nnext ");
        log.write_stream(LogLevel::Info, "other stream\n");
        log.finish();
        let lines: Vec<&str> = log.lines.iter().map(|(_, line)| line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "memory allocation of 1048576 bytes failed",
                "next ",
                "other stream"
            ]
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("ok", 10), "ok");
    }
}
