//! Access control: one bearer token or one basic-auth credential guarding
//! every route, compared in constant time.

use super::response::Response;
use crate::error::Error;
use crate::export::base64::base64;

/// The credential an [`HttpServer`](super::HttpServer) asks of every
/// request (set it in [`HttpConfig::auth`](super::HttpConfig::auth)).
/// A request without it, or with another one, gets `401` with a
/// `WWW-Authenticate` header naming the scheme, whatever its path.
///
/// The request's `Authorization` header is compared with the expected one
/// in constant time: how long the comparison takes depends on the expected
/// credential's length only, never on how many leading bytes a guess got
/// right. `Debug` prints the scheme, never the secret.
///
/// ```
/// use vitals::export::HttpAuth;
/// let auth = HttpAuth::bearer("s3cret-token");
/// assert!(auth.accepts(Some("Bearer s3cret-token")));
/// assert!(!auth.accepts(Some("Bearer s3cret-tokeN")));
/// assert!(!auth.accepts(None));
/// assert_eq!(format!("{auth:?}"), "HttpAuth::Bearer(<redacted>)");
///
/// let basic = HttpAuth::basic("prometheus", "open sesame");
/// // "prometheus:open sesame" in base64, as curl -u and Prometheus send it.
/// assert!(basic.accepts(Some("Basic cHJvbWV0aGV1czpvcGVuIHNlc2FtZQ==")));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>` (Prometheus: `authorization:
    /// credentials`). The token must be 1 to 4096 characters of RFC 6750's
    /// `b64token` (letters, digits and `-._~+/`, then any `=`).
    Bearer(String),
    /// `Authorization: Basic <base64(user:password)>` (Prometheus:
    /// `basic_auth`). The user must be 1 to 256 characters without `:` or
    /// control characters; the password at most 4096 without control
    /// characters.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::Bearer(_) => f.write_str("HttpAuth::Bearer(<redacted>)"),
            HttpAuth::Basic { user, .. } => {
                write!(
                    f,
                    "HttpAuth::Basic {{ user: {user:?}, password: <redacted> }}"
                )
            }
        }
    }
}

impl HttpAuth {
    /// A bearer token.
    ///
    /// ```
    /// let auth = vitals::export::HttpAuth::bearer("abc");
    /// assert_eq!(auth, vitals::export::HttpAuth::Bearer("abc".into()));
    /// ```
    pub fn bearer(token: impl Into<String>) -> Self {
        HttpAuth::Bearer(token.into())
    }

    /// A basic-auth user and password.
    ///
    /// ```
    /// let auth = vitals::export::HttpAuth::basic("u", "p");
    /// assert!(auth.accepts(Some("basic dTpw"))); // the scheme is case-insensitive
    /// ```
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        HttpAuth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Whether a request with this `Authorization` header value (`None`:
    /// no header) may pass. The scheme name is matched without regard to
    /// case (RFC 9110 §11.1), the credential exactly, in constant time.
    ///
    /// ```
    /// let auth = vitals::export::HttpAuth::bearer("t0ken");
    /// assert!(auth.accepts(Some("bearer   t0ken")));
    /// assert!(!auth.accepts(Some("Basic t0ken")));
    /// ```
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.trim();
        let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case(self.scheme()) {
            return false;
        }
        let expected = match self {
            HttpAuth::Bearer(token) => token.clone(),
            HttpAuth::Basic { user, password } => {
                base64(format!("{user}:{password}").as_bytes(), false)
            }
        };
        constant_time_eq(credential.trim_start().as_bytes(), expected.as_bytes())
    }

    fn scheme(&self) -> &'static str {
        match self {
            HttpAuth::Bearer(_) => "Bearer",
            HttpAuth::Basic { .. } => "Basic",
        }
    }

    /// The `WWW-Authenticate` value of a `401`.
    fn challenge(&self) -> &'static str {
        match self {
            HttpAuth::Bearer(_) => "Bearer realm=\"vitals\"",
            HttpAuth::Basic { .. } => "Basic realm=\"vitals\", charset=\"UTF-8\"",
        }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::InvalidConfig(format!("http auth: {what}")));
        match self {
            HttpAuth::Bearer(token) => {
                let body = token.trim_end_matches('=');
                let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
                if token.is_empty() || token.len() > 4096 || body.is_empty() {
                    return bad("the bearer token must be 1 to 4096 characters");
                }
                if !body.chars().all(token68) {
                    return bad(
                        "the bearer token may hold only letters, digits and -._~+/ (then =)",
                    );
                }
            }
            HttpAuth::Basic { user, password } => {
                if user.is_empty() || user.len() > 256 || user.contains(':') {
                    return bad("the basic-auth user must be 1 to 256 characters without ':'");
                }
                if password.len() > 4096 {
                    return bad("the basic-auth password must be at most 4096 bytes");
                }
                if user.chars().chain(password.chars()).any(char::is_control) {
                    return bad("the basic-auth user and password may not hold control characters");
                }
            }
        }
        Ok(())
    }

    /// The `401` for a request that did not pass.
    pub(super) fn refusal(&self) -> Response {
        Response::text(401, "authorization required\n").header("WWW-Authenticate", self.challenge())
    }
}

/// Whether `given` equals `expected`, in a time that depends only on
/// `expected.len()`: every byte of `expected` is compared, whatever
/// `given` holds and however long it is.
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        // A missing byte compares as a zero against the expected one and
        // the length difference above has already marked the mismatch.
        let g = given.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(g ^ e);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"x", b""));
    }

    #[test]
    fn credentials_are_validated() {
        assert!(HttpAuth::bearer("").validate().is_err());
        assert!(HttpAuth::bearer("===").validate().is_err());
        assert!(HttpAuth::bearer("a b").validate().is_err());
        assert!(HttpAuth::bearer("abc.DEF-_~+/==").validate().is_ok());
        assert!(HttpAuth::basic("", "p").validate().is_err());
        assert!(HttpAuth::basic("a:b", "p").validate().is_err());
        assert!(HttpAuth::basic("a", "p\n").validate().is_err());
        assert!(HttpAuth::basic("a", "").validate().is_ok());
    }
}
