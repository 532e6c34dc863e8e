//! [`Params`]: typed, defaulted access to the host's `[policy.params]` table.
//!
//! Every accessor records the key it was asked for, so that [`Params::finish`] can reject keys
//! no accessor read and list the ones the policy accepts.

use crate::{Param, ParamValue};

/// The host's `[policy.params]` table, read key by key with a default for each.
///
/// Each accessor returns the value given for the key, or the default when the key is absent, or
/// an error naming the key and the expected type when the value has the wrong type. The errors
/// are `String`s so that `?` works inside [`Policy::configure`](crate::Policy::configure).
///
/// ```
/// use autoscaler_policy_sdk::Params;
///
/// let mut params = Params::default().with("queue_up", 30).with("scale_on_errors", false);
/// assert_eq!(params.u32("queue_up", 20), Ok(30));
/// assert_eq!(params.f64("utilization_up", 0.8), Ok(0.8));
/// assert_eq!(params.bool("scale_on_errors", true), Ok(false));
/// assert!(params.finish().is_ok());
///
/// let mut params = Params::default().with("queue_up", "lots");
/// assert_eq!(
///     params.u32("queue_up", 20),
///     Err("parameter \"queue_up\" must be an integer from 0 to 4294967295, got text \"lots\""
///         .to_string())
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    given: Vec<Param>,
    asked: Vec<String>,
}

impl Params {
    /// Wraps the parameters the host passed to `configure`.
    pub fn new(given: Vec<Param>) -> Self {
        Self {
            given,
            asked: Vec::new(),
        }
    }

    /// Adds one parameter: a shorthand for tests and examples.
    ///
    /// ```
    /// use autoscaler_policy_sdk::Params;
    ///
    /// let mut params = Params::default().with("down_step", 0.5);
    /// assert_eq!(params.f64("down_step", 0.25), Ok(0.5));
    /// ```
    pub fn with(mut self, name: &str, value: impl Into<ParamValue>) -> Self {
        self.given.push(Param {
            name: name.to_string(),
            value: value.into(),
        });
        self
    }

    /// A number. Integers are accepted and converted; NaN and infinities are rejected.
    pub fn f64(&mut self, name: &str, default: f64) -> Result<f64, String> {
        let expected = "a finite number";
        match self.take(name)? {
            None => Ok(default),
            Some(ParamValue::Float(x)) if x.is_finite() => Ok(x),
            Some(ParamValue::Integer(n)) => Ok(n as f64),
            Some(other) => Err(mismatch(name, expected, &other)),
        }
    }

    /// A whole number from 0 to `u32::MAX`. Floats are rejected, even whole ones.
    pub fn u32(&mut self, name: &str, default: u32) -> Result<u32, String> {
        let expected = format!("an integer from 0 to {}", u32::MAX);
        match self.take(name)? {
            None => Ok(default),
            Some(ParamValue::Integer(n)) => {
                u32::try_from(n).map_err(|_| mismatch(name, &expected, &ParamValue::Integer(n)))
            }
            Some(other) => Err(mismatch(name, &expected, &other)),
        }
    }

    /// A whole number from 0 to `i64::MAX` (the largest integer the host's table can hold).
    pub fn u64(&mut self, name: &str, default: u64) -> Result<u64, String> {
        let expected = "a non-negative integer";
        match self.take(name)? {
            None => Ok(default),
            Some(ParamValue::Integer(n)) => {
                u64::try_from(n).map_err(|_| mismatch(name, expected, &ParamValue::Integer(n)))
            }
            Some(other) => Err(mismatch(name, expected, &other)),
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self, name: &str, default: bool) -> Result<bool, String> {
        match self.take(name)? {
            None => Ok(default),
            Some(ParamValue::Boolean(b)) => Ok(b),
            Some(other) => Err(mismatch(name, "true or false", &other)),
        }
    }

    /// A string.
    pub fn string(&mut self, name: &str, default: &str) -> Result<String, String> {
        match self.take(name)? {
            None => Ok(default.to_string()),
            Some(ParamValue::Text(text)) => Ok(text),
            Some(other) => Err(mismatch(name, "a string", &other)),
        }
    }

    /// Rejects any key that no accessor asked for, listing the keys the policy accepts.
    ///
    /// The SDK calls this after [`Policy::configure`](crate::Policy::configure) returns, so a
    /// policy need not; it is public for code that reads a `Params` by hand.
    ///
    /// ```
    /// use autoscaler_policy_sdk::Params;
    ///
    /// let mut params = Params::default().with("queue_upp", 30);
    /// assert_eq!(params.u32("queue_up", 20), Ok(20));
    /// assert_eq!(params.u32("queue_down", 5), Ok(5));
    /// assert_eq!(
    ///     params.finish(),
    ///     Err("unknown parameter \"queue_upp\": this policy accepts queue_up, queue_down"
    ///         .to_string())
    /// );
    /// ```
    pub fn finish(&self) -> Result<(), String> {
        let unknown: Vec<&str> = self
            .given
            .iter()
            .map(|param| param.name.as_str())
            .filter(|name| !self.asked.iter().any(|asked| asked == name))
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            [name] => Err(format!("unknown parameter \"{name}\": {}", self.accepted())),
            names => Err(format!(
                "unknown parameters {}: {}",
                quoted_list(names),
                self.accepted()
            )),
        }
    }

    /// Records that `name` was asked for and returns its value, if given exactly once.
    fn take(&mut self, name: &str) -> Result<Option<ParamValue>, String> {
        if !self.asked.iter().any(|asked| asked == name) {
            self.asked.push(name.to_string());
        }
        let mut matches = self.given.iter().filter(|param| param.name == name);
        let first = matches.next().map(|param| param.value.clone());
        if matches.next().is_some() {
            return Err(format!("parameter \"{name}\" is given more than once"));
        }
        Ok(first)
    }

    /// The end of the unknown-key message: what the policy does accept.
    fn accepted(&self) -> String {
        if self.asked.is_empty() {
            "this policy accepts no parameters".to_string()
        } else {
            format!("this policy accepts {}", self.asked.join(", "))
        }
    }
}

/// The error for a value of the wrong type.
fn mismatch(name: &str, expected: &str, found: &ParamValue) -> String {
    format!(
        "parameter \"{name}\" must be {expected}, got {}",
        describe(found)
    )
}

/// A value as the error messages show it: its type, then the value.
fn describe(value: &ParamValue) -> String {
    match value {
        ParamValue::Boolean(b) => format!("boolean {b}"),
        ParamValue::Integer(n) => format!("integer {n}"),
        ParamValue::Float(x) => format!("float {x:?}"),
        ParamValue::Text(text) => format!("text {text:?}"),
    }
}

/// `"a", "b"`.
fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    quoted.join(", ")
}

impl From<bool> for ParamValue {
    fn from(value: bool) -> Self {
        Self::Boolean(value)
    }
}

impl From<i64> for ParamValue {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

impl From<i32> for ParamValue {
    fn from(value: i32) -> Self {
        Self::Integer(value.into())
    }
}

impl From<u32> for ParamValue {
    fn from(value: u32) -> Self {
        Self::Integer(value.into())
    }
}

impl From<f64> for ParamValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<&str> for ParamValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_string())
    }
}

impl From<String> for ParamValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keys_take_their_defaults() {
        let mut params = Params::default();
        assert_eq!(params.f64("a", 1.5), Ok(1.5));
        assert_eq!(params.u32("b", 7), Ok(7));
        assert_eq!(params.u64("c", 8), Ok(8));
        assert_eq!(params.bool("d", true), Ok(true));
        assert_eq!(params.string("e", "x"), Ok("x".to_string()));
        assert_eq!(params.finish(), Ok(()));
    }

    #[test]
    fn a_float_parameter_accepts_an_integer() {
        let mut params = Params::default().with("p95_up_s", 90);
        assert_eq!(params.f64("p95_up_s", 60.0), Ok(90.0));
    }

    #[test]
    fn an_integer_parameter_rejects_a_float() {
        let mut params = Params::default().with("queue_up", 20.0);
        assert_eq!(
            params.u32("queue_up", 20),
            Err(
                "parameter \"queue_up\" must be an integer from 0 to 4294967295, got float 20.0"
                    .to_string()
            )
        );
    }

    #[test]
    fn negative_integers_are_rejected_for_unsigned_parameters() {
        let mut params = Params::default().with("window", -1);
        assert_eq!(
            params.u64("window", 60),
            Err("parameter \"window\" must be a non-negative integer, got integer -1".to_string())
        );
    }

    #[test]
    fn non_finite_floats_are_rejected() {
        let mut params = Params::default().with("step", f64::NAN);
        assert_eq!(
            params.f64("step", 0.25),
            Err("parameter \"step\" must be a finite number, got float NaN".to_string())
        );
    }

    #[test]
    fn a_key_given_twice_is_rejected() {
        let mut params = Params::default().with("a", true).with("a", false);
        assert_eq!(
            params.bool("a", true),
            Err("parameter \"a\" is given more than once".to_string())
        );
    }

    #[test]
    fn finish_names_every_unknown_key() {
        let mut params = Params::default().with("x", 1).with("y", 2).with("a", 3);
        assert_eq!(params.u32("a", 0), Ok(3));
        assert_eq!(params.u32("b", 0), Ok(0));
        assert_eq!(
            params.finish(),
            Err("unknown parameters \"x\", \"y\": this policy accepts a, b".to_string())
        );
    }

    #[test]
    fn finish_says_when_no_parameter_is_accepted() {
        let params = Params::default().with("x", 1);
        assert_eq!(
            params.finish(),
            Err("unknown parameter \"x\": this policy accepts no parameters".to_string())
        );
    }
}
