//! Which policies a replay compares: `--policy NAME_OR_FILE[:key=value,…]`.
//!
//! A bundled name (`threshold`, `static`, `fixed-step`, `target-tracking`) picks a policy
//! compiled from `policies/` with the host and embedded in it, so replays work from an installed
//! binary; anything else is a `.wasm` file. Parameters after a colon are the policy's
//! `[policy.params]`: `static:workers=50`, `threshold:down_window_s=30,queue_up=40`. Values
//! that read as integers, numbers or booleans are passed as such, the rest as strings.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use super::error::ReplayError;
use crate::policy::embedded::{BUNDLED, DEFAULT_POLICY, bundled};
use crate::policy::reload::{PolicyLoader, PolicySlot, display_name};
use crate::policy::{Limits, PolicyEngine, PolicyError, params_from_toml};

/// Where a policy's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Bundled(&'static str),
    File(PathBuf),
}

/// One `--policy` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// The argument as given: the policy's name in the table and its files.
    pub label: String,
    pub source: Source,
    pub params: BTreeMap<String, toml::Value>,
}

impl FromStr for PolicySpec {
    type Err = ReplayError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (name, params) = match spec.split_once(':') {
            Some((name, params)) if params.contains('=') => (name, params),
            _ => (spec, ""),
        };
        let source = source(name)?;
        // A file is known by its name: the folder only makes the table wide.
        let label = match &source {
            Source::File(path) => spec.replacen(name, &display_name(path), 1),
            Source::Bundled(_) => spec.to_owned(),
        };
        Ok(Self {
            label,
            source,
            params: parse_params(spec, params)?,
        })
    }
}

impl PolicySpec {
    /// The component's bytes.
    pub fn bytes(&self) -> Result<Cow<'static, [u8]>, ReplayError> {
        match &self.source {
            Source::Bundled(name) => Ok(Cow::Borrowed(bundled_bytes(name))),
            Source::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| ReplayError::ReadPolicy {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Compiles, checks and configures the policy as the host would, ready for a scaler.
    ///
    /// Runs on a thread of its own, outside any tokio runtime: a guest that writes to stdout
    /// in `configure` enters tokio inside WASI, which panics on a runtime's thread.
    pub fn load(&self, engine: &PolicyEngine, limits: &Limits) -> Result<PolicySlot, ReplayError> {
        std::thread::scope(|s| s.spawn(|| self.load_here(engine, limits)).join()).unwrap_or_else(
            |_| {
                Err(ReplayError::LoadPolicy {
                    name: self.label.clone(),
                    source: PolicyError::Trap {
                        detail: "loading it panicked".into(),
                    },
                })
            },
        )
    }

    fn load_here(&self, engine: &PolicyEngine, limits: &Limits) -> Result<PolicySlot, ReplayError> {
        let failed = |source| ReplayError::LoadPolicy {
            name: self.label.clone(),
            source,
        };
        let loader = PolicyLoader {
            engine: engine.clone(),
            params: params_from_toml(&self.params).map_err(failed)?,
            limits: limits.clone(),
        };
        let runtime = loader
            .runtime(&self.label, &self.bytes()?)
            .map_err(failed)?;
        Ok(PolicySlot::new(runtime))
    }
}

/// A bundled policy by that name, else a file that exists or looks like a component.
fn source(name: &str) -> Result<Source, ReplayError> {
    let path = PathBuf::from(name);
    if path.is_file() || name.ends_with(".wasm") {
        return Ok(Source::File(path));
    }
    BUNDLED
        .iter()
        .find(|&&bundled| bundled == name)
        .map(|&bundled| Source::Bundled(bundled))
        .ok_or_else(|| ReplayError::UnknownPolicy {
            name: name.to_owned(),
        })
}

fn bundled_bytes(name: &str) -> &'static [u8] {
    bundled(name).unwrap_or(DEFAULT_POLICY)
}

/// `key=value,key=value` as a `[policy.params]` table.
fn parse_params(spec: &str, text: &str) -> Result<BTreeMap<String, toml::Value>, ReplayError> {
    let mut params = BTreeMap::new();
    for param in text.split(',').filter(|p| !p.is_empty()) {
        let Some((key, value)) = param.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(ReplayError::BadParam {
                spec: spec.to_owned(),
                param: param.to_owned(),
            });
        };
        params.insert(key.trim().to_owned(), value_of(value.trim()));
    }
    Ok(params)
}

fn value_of(text: &str) -> toml::Value {
    if let Ok(n) = text.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(x) = text.parse::<f64>() {
        toml::Value::Float(x)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundled_name_takes_typed_parameters() {
        let spec: PolicySpec = "static:workers=50,ratio=0.5,on=true,mode=x"
            .parse()
            .expect("valid spec");
        assert_eq!(spec.source, Source::Bundled("static"));
        assert_eq!(spec.label, "static:workers=50,ratio=0.5,on=true,mode=x");
        assert_eq!(spec.params["workers"], toml::Value::Integer(50));
        assert_eq!(spec.params["ratio"], toml::Value::Float(0.5));
        assert_eq!(spec.params["on"], toml::Value::Boolean(true));
        assert_eq!(spec.params["mode"], toml::Value::String("x".into()));
    }

    #[test]
    fn a_wasm_path_is_a_file() {
        let spec: PolicySpec = "my/policy.wasm:limit=3".parse().expect("a path");
        assert_eq!(spec.source, Source::File("my/policy.wasm".into()));
        assert_eq!(spec.label, "policy.wasm:limit=3");
        assert_eq!(spec.params["limit"], toml::Value::Integer(3));
    }

    #[test]
    fn an_unknown_name_lists_the_bundled_policies() {
        let err = "thresold".parse::<PolicySpec>().expect_err("typo");
        assert_eq!(
            err.to_string(),
            "unknown policy \"thresold\": give a .wasm file or a bundled policy \
             (threshold, static, fixed-step, target-tracking)"
        );
    }

    #[test]
    fn a_parameter_without_a_value_is_refused() {
        let err = "static:workers=5,oops"
            .parse::<PolicySpec>()
            .expect_err("bad");
        assert!(
            err.to_string().starts_with("policy parameter \"oops\""),
            "{err}"
        );
    }

    #[test]
    fn every_bundled_policy_is_embedded() {
        for name in BUNDLED {
            let bytes = bundled_bytes(name);
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
        }
        assert_ne!(bundled_bytes("static"), bundled_bytes("threshold"));
    }
}
