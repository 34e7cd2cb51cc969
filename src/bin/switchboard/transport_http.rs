//! `call`, `notify` and `describe` over `http://` and `https://`: one POST
//! each, with the same output and exit codes as over a WebSocket.

use serde_json::Value;
use switchboard::shared::discover::Document;

use crate::{Failure, Outcome, Target};

#[cfg(feature = "http")]
mod imp {
    use serde_json::Value;
    use switchboard::client::{HttpClient, HttpError};
    use switchboard::shared::discover::Document;

    use crate::commands::{cacert, timed_out};
    use crate::output::print_json;
    use crate::{Failure, Outcome, Target};

    fn client(target: &Target) -> Result<HttpClient, Failure> {
        let mut builder = HttpClient::builder(target.url.as_str()).timeout(Some(target.timeout()?));
        if let Some(token) = &target.token {
            builder = builder.token(token);
        }
        for header in &target.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| Failure::new(Outcome::Usage, format!("--header takes K:V, got {header:?}")))?;
            builder = builder.header(name.trim(), value.trim());
        }
        if let Some(pem) = cacert(target)? {
            builder = builder.root_certificate(pem);
        }
        builder.build().map_err(|e| Failure::new(Outcome::Usage, e.to_string()))
    }

    /// Maps an HTTP call's error to its exit code, printing a server error object.
    fn failure(error: HttpError, target: &Target) -> Failure {
        match error {
            HttpError::Rpc(object) => {
                let _ = print_json(&object);
                Failure::new(Outcome::ServerError, format!("the server answered with an error: {object}"))
            }
            HttpError::InvalidResponse(_) | HttpError::Decode(_) => {
                Failure::new(Outcome::ServerError, error.to_string())
            }
            HttpError::Encode(_) => Failure::new(Outcome::Usage, error.to_string()),
            HttpError::Timeout(after) => Failure::new(Outcome::Unreachable, timed_out(after, target)),
            // Refused (HTTP 401, 413...), TLS, transport.
            other => Failure::new(Outcome::Unreachable, format!("{}: {other}", target.url)),
        }
    }

    pub(crate) async fn call(target: &Target, method: &str, params: Value) -> Result<Outcome, Failure> {
        let result = client(target)?.call_raw(method, params).await.map_err(|e| failure(e, target))?;
        // stdout closing early (a pipe to `head`) is not the call's failure.
        let _ = print_json(&result);
        Ok(Outcome::Success)
    }

    pub(crate) async fn notify(target: &Target, method: &str, params: Value) -> Result<Outcome, Failure> {
        client(target)?.notify(method, params).await.map_err(|e| failure(e, target))?;
        Ok(Outcome::Success)
    }

    pub(crate) async fn discover(target: &Target) -> Result<Document, Failure> {
        client(target)?.call("rpc.discover", ()).await.map_err(|e| failure(e, target))
    }
}

#[cfg(not(feature = "http"))]
mod imp {
    use serde_json::Value;
    use switchboard::shared::discover::Document;

    use crate::{Failure, Outcome, Target};

    fn unsupported() -> Failure {
        Failure::new(Outcome::Usage, "this switchboard was built without the `http` feature: use ws:// or wss://")
    }

    pub(crate) async fn call(_: &Target, _: &str, _: Value) -> Result<Outcome, Failure> {
        Err(unsupported())
    }

    pub(crate) async fn notify(_: &Target, _: &str, _: Value) -> Result<Outcome, Failure> {
        Err(unsupported())
    }

    pub(crate) async fn discover(_: &Target) -> Result<Document, Failure> {
        Err(unsupported())
    }
}

/// Calls METHOD with one POST and prints the result.
pub(crate) async fn call(target: &Target, method: &str, params: Value) -> Result<Outcome, Failure> {
    imp::call(target, method, params).await
}

/// Sends METHOD as a notification with one POST (the hub answers 204).
pub(crate) async fn notify(target: &Target, method: &str, params: Value) -> Result<Outcome, Failure> {
    imp::notify(target, method, params).await
}

/// The service's discovery document, with one POST.
pub(crate) async fn discover(target: &Target) -> Result<Document, Failure> {
    imp::discover(target).await
}
