//! A small fixed encoding for the state a policy carries from tick to tick.
//!
//! The layout is a 4-byte tag that names the policy and the layout's version, then each field in
//! order: `u64` and `f64` as 8 little-endian bytes, `bool` as one byte. Decoding is strict about
//! the layout (tag, field values, exact length) and lenient about the outcome: anything that is
//! not this layout decodes to the default state, because after a reload a policy receives the
//! state of the policy it replaced.

/// State a policy carries between ticks in [`Decision::state`](crate::Decision::state).
///
/// Implement [`write`](PolicyState::write) and [`read`](PolicyState::read) field by field, in the
/// same order; [`encode`](PolicyState::encode) and [`decode`](PolicyState::decode) add the tag
/// and the lenient fallback. Change [`TAG`](PolicyState::TAG) whenever the layout changes, so
/// that an old blob decodes to the default rather than to nonsense.
///
/// ```
/// use autoscaler_policy_sdk::{PolicyState, StateReader, StateWriter};
///
/// #[derive(Debug, Default, PartialEq)]
/// struct Cooldown {
///     last_change_ms: u64,
///     smoothed_queue: f64,
/// }
///
/// impl PolicyState for Cooldown {
///     const TAG: [u8; 4] = *b"cd01";
///
///     fn write(&self, out: &mut StateWriter) {
///         out.u64(self.last_change_ms).f64(self.smoothed_queue);
///     }
///
///     fn read(input: &mut StateReader<'_>) -> Option<Self> {
///         Some(Self { last_change_ms: input.u64()?, smoothed_queue: input.f64()? })
///     }
/// }
///
/// let state = Cooldown { last_change_ms: 42, smoothed_queue: 3.5 };
/// assert_eq!(Cooldown::decode(&state.encode()), state);
/// assert_eq!(Cooldown::decode(&[]), Cooldown::default());
/// assert_eq!(Cooldown::decode(b"another policy's state"), Cooldown::default());
/// ```
pub trait PolicyState: Default {
    /// Four bytes naming the policy and the version of this layout.
    const TAG: [u8; 4];

    /// Writes the fields, in the order [`read`](PolicyState::read) reads them.
    fn write(&self, out: &mut StateWriter);

    /// Reads the fields written by [`write`](PolicyState::write); `None` when one is missing or
    /// malformed (the `?` operator on each [`StateReader`] call does this).
    fn read(input: &mut StateReader<'_>) -> Option<Self>;

    /// The state as bytes for [`Decision::with_state`](crate::Decision::with_state).
    fn encode(&self) -> Vec<u8> {
        let mut out = StateWriter::new(Self::TAG);
        self.write(&mut out);
        out.into_bytes()
    }

    /// The state in `blob`, or the default when `blob` is empty, foreign or malformed.
    fn decode(blob: &[u8]) -> Self {
        Self::try_decode(blob).unwrap_or_default()
    }

    /// The state in `blob`, or `None` when it is not exactly this layout.
    fn try_decode(blob: &[u8]) -> Option<Self> {
        let mut input = StateReader::new(Self::TAG, blob)?;
        let state = Self::read(&mut input)?;
        input.is_empty().then_some(state)
    }
}

/// Writes fields in the fixed layout; see [`PolicyState`].
#[derive(Debug, Clone)]
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    /// Starts a blob with `tag`.
    pub fn new(tag: [u8; 4]) -> Self {
        Self {
            bytes: tag.to_vec(),
        }
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends an `f64`.
    pub fn f64(&mut self, value: f64) -> &mut Self {
        self.u64(value.to_bits())
    }

    /// Appends a `bool`.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.bytes.push(u8::from(value));
        self
    }

    /// The finished blob.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fields in the fixed layout; see [`PolicyState`].
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    rest: &'a [u8],
}

impl<'a> StateReader<'a> {
    /// Opens `blob` if it starts with `tag`.
    pub fn new(tag: [u8; 4], blob: &'a [u8]) -> Option<Self> {
        let rest = blob.strip_prefix(tag.as_slice())?;
        Some(Self { rest })
    }

    /// The next `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_le_bytes(*head))
    }

    /// The next `f64`; `None` for NaN, which [`StateWriter::f64`] may write but a state field
    /// read back as NaN is more likely a foreign blob.
    pub fn f64(&mut self) -> Option<f64> {
        let value = f64::from_bits(self.u64()?);
        (!value.is_nan()).then_some(value)
    }

    /// The next `bool`; `None` for a byte other than 0 or 1.
    pub fn bool(&mut self) -> Option<bool> {
        let (&byte, rest) = self.rest.split_first()?;
        self.rest = rest;
        match byte {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Window {
        open: bool,
        since_ms: u64,
    }

    impl PolicyState for Window {
        const TAG: [u8; 4] = *b"win1";

        fn write(&self, out: &mut StateWriter) {
            out.bool(self.open).u64(self.since_ms);
        }

        fn read(input: &mut StateReader<'_>) -> Option<Self> {
            Some(Self {
                open: input.bool()?,
                since_ms: input.u64()?,
            })
        }
    }

    #[test]
    fn state_round_trips() {
        let state = Window {
            open: true,
            since_ms: 1_700_000_000_000,
        };
        assert_eq!(Window::decode(&state.encode()), state);
    }

    #[test]
    fn the_layout_is_tag_then_little_endian_fields() {
        let state = Window {
            open: true,
            since_ms: 258,
        };
        assert_eq!(state.encode(), b"win1\x01\x02\x01\0\0\0\0\0\0");
    }

    #[test]
    fn truncated_or_padded_blobs_decode_to_the_default() {
        let mut blob = Window {
            open: true,
            since_ms: 5,
        }
        .encode();
        blob.push(0);
        assert_eq!(Window::decode(&blob), Window::default());
        assert_eq!(Window::decode(&blob[..blob.len() - 2]), Window::default());
    }

    #[test]
    fn a_foreign_tag_decodes_to_the_default() {
        let mut blob = Window {
            open: true,
            since_ms: 5,
        }
        .encode();
        blob[3] = b'2';
        assert_eq!(Window::try_decode(&blob), None);
        assert_eq!(Window::decode(&blob), Window::default());
    }

    #[test]
    fn a_bool_other_than_zero_or_one_is_malformed() {
        assert_eq!(Window::try_decode(b"win1\x07\0\0\0\0\0\0\0\0"), None);
    }
}
