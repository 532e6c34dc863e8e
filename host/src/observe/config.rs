//! `[metrics]`: where the host serves `/metrics`, `/healthz` and `/status`.
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9898"   # or "off"
//! ```
//!
//! The endpoint is on by default and bound to loopback, so nothing is exposed beyond the
//! machine unless an operator names another address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Deserializer};

/// Where the endpoint listens when neither the file nor `--metrics-listen` says.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9898));
/// The value of `metrics.listen` and `--metrics-listen` that turns the endpoint off.
pub const OFF: &str = "off";

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The address to serve on; `None` (written `"off"`) serves nothing.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: Some(DEFAULT_METRICS_LISTEN),
        }
    }
}

impl MetricsConfig {
    /// No endpoint: for embedded runs (the demo, tests) that must not take a fixed port.
    pub fn off() -> Self {
        Self { listen: None }
    }
}

/// A parsed `--metrics-listen`: an address, or `None` for `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

/// Parses `127.0.0.1:9898`, `[::1]:9898` or `off`.
pub fn parse_listen(text: &str) -> Result<MetricsListen, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case(OFF) {
        return Ok(MetricsListen(None));
    }
    text.parse()
        .map(|addr| MetricsListen(Some(addr)))
        .map_err(|_| {
            format!("{text:?} is not an address: write it like 127.0.0.1:9898, or \"{OFF}\"")
        })
}

fn deserialize_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse_listen(&text)
        .map(|listen| listen.0)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        metrics: MetricsConfig,
    }

    fn parse(text: &str) -> Result<MetricsConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.metrics)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_endpoint_is_on_loopback_by_default() {
        let config = parse("[metrics]\n").expect("empty section parses");
        assert_eq!(config.listen, Some(DEFAULT_METRICS_LISTEN));
        assert!(DEFAULT_METRICS_LISTEN.ip().is_loopback());
    }

    #[test]
    fn off_turns_the_endpoint_off() {
        let config = parse("[metrics]\nlisten = \"off\"\n").expect("off parses");
        assert_eq!(config.listen, None);
        assert_eq!(parse_listen("OFF"), Ok(MetricsListen(None)));
    }

    #[test]
    fn an_address_is_taken_as_written() {
        let config = parse("[metrics]\nlisten = \"[::1]:9100\"\n").expect("v6 parses");
        assert_eq!(config.listen, Some("[::1]:9100".parse().expect("addr")));
    }

    #[test]
    fn a_bad_address_names_the_value_and_the_line() {
        let err = parse("[metrics]\nlisten = \"localhost\"\n").expect_err("rejected");
        assert!(err.contains("\"localhost\" is not an address"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }
}
