//! The client's settings and the API key, a secret that never prints.
//!
//! [`ClientConfig`] is what the rest of the host fills from its own configuration; the
//! [`Client`](super::Client) takes it whole. [`ApiKey`] wraps the key so that no `Debug`,
//! `Display` or log line can show it by accident.

use std::fmt;
use std::time::Duration;

/// The real CaptchaAI endpoint.
pub const DEFAULT_BASE_URL: &str = "https://ocr.captchaai.com";
/// Wait after a submit before the first poll: tokens take 15–30 s to solve.
pub const DEFAULT_FIRST_POLL_DELAY: Duration = Duration::from_secs(15);
/// Image methods (`post`, `base64`) are solved in seconds, so their first poll never waits
/// longer than this, whatever [`ClientConfig::first_poll_delay`] says.
pub const IMAGE_FIRST_POLL_DELAY: Duration = Duration::from_secs(5);
/// Interval between polls of one task, as the provider asks.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Polls per task at most: providers block accounts that poll far more than they submit.
pub const DEFAULT_MAX_POLLS: u32 = 20;
/// Timeout of one HTTP request.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A CaptchaAI API key. `Debug` and `Display` show `***`; only the client reads the text.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, without the whitespace a key file usually ends with.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        Self(key.trim().to_owned())
    }

    /// The key itself, for the one place that sends it: a request's form or query.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty, which no provider accepts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the client reaches CaptchaAI and paces one task.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port, without `/in.php`: `https://ocr.captchaai.com`, or a simulator.
    pub base_url: String,
    /// The account's key.
    pub api_key: ApiKey,
    /// Wait after a submit before the first poll (image methods: at most
    /// [`IMAGE_FIRST_POLL_DELAY`]).
    pub first_poll_delay: Duration,
    /// Wait between two polls of one task.
    pub poll_interval: Duration,
    /// Polls of one task at most; then the task fails.
    pub max_polls: u32,
    /// Timeout of one HTTP request.
    pub http_timeout: Duration,
}

impl ClientConfig {
    /// A config with the default timings.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            first_poll_delay: DEFAULT_FIRST_POLL_DELAY,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_polls: DEFAULT_MAX_POLLS,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }

    /// The first-poll delay for `method`: image methods are quick.
    pub fn first_poll_delay_for(&self, method: &str) -> Duration {
        if is_image_method(method) {
            self.first_poll_delay.min(IMAGE_FIRST_POLL_DELAY)
        } else {
            self.first_poll_delay
        }
    }
}

/// Methods that send an image rather than a site key.
fn is_image_method(method: &str) -> bool {
    matches!(method, "post" | "base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("abcdefabcdefabcdefabcdefabcdef12\n");
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        let config = ClientConfig::new("http://127.0.0.1:1", key.clone());
        assert!(!format!("{config:?}").contains("abcdef"));
        assert_eq!(key.expose(), "abcdefabcdefabcdefabcdefabcdef12");
    }

    #[test]
    fn image_methods_poll_sooner() {
        let config = ClientConfig::new("http://127.0.0.1:1", ApiKey::new("k"));
        assert_eq!(
            config.first_poll_delay_for("userrecaptcha"),
            DEFAULT_FIRST_POLL_DELAY
        );
        assert_eq!(
            config.first_poll_delay_for("base64"),
            IMAGE_FIRST_POLL_DELAY
        );
    }
}
