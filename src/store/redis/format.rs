//! How session data is written to Redis: a codec's text, or Django's pickle.

use crate::Error;
use crate::store::Codec;
use crate::store::pickle;
use crate::store::preserved::Preserved;

/// How values are written.
pub(super) enum Format {
    /// Text from a [`Codec`].
    Text(Codec),
    /// Django's Redis cache backends' format: the session dict pickled.
    Pickle,
}

impl Format {
    pub(super) fn encode(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        preserved: &Preserved,
    ) -> Result<Vec<u8>, Error> {
        match self {
            Self::Text(codec) => Ok(codec.encode_preserving(data, preserved)?.into_bytes()),
            Self::Pickle => Ok(pickle::dumps(&preserved.to_python(data))),
        }
    }

    /// The data in `bytes`, or `None` (logged) when it does not decode.
    pub(super) fn decode(
        &self,
        bytes: &[u8],
    ) -> Option<(serde_json::Map<String, serde_json::Value>, Preserved)> {
        match self {
            Self::Text(codec) => {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    tracing::warn!(target: "sessionbase::security", "Session data corrupted: not UTF-8");
                    return None;
                };
                codec.decode_preserving(text)
            }
            Self::Pickle => match pickle::loads_dict(bytes) {
                Ok(items) => Some(Preserved::split(items)),
                Err(error) => {
                    tracing::warn!(target: "sessionbase::security", %error, "Session data corrupted");
                    None
                }
            },
        }
    }
}
