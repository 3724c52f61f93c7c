//! The cluster token check shared by every internal gRPC service: when a
//! token is configured, each call must carry it in the `x-elastickv-token`
//! metadata entry; anything else is refused with `Unauthenticated` and
//! logged. Comparison is constant-time in the token's length.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

pub const TOKEN_METADATA: &str = "x-elastickv-token";

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks one call's metadata against the expected token (None: open).
pub fn check_token(expected: Option<&str>, metadata: &MetadataMap) -> Result<(), Status> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = metadata.get(TOKEN_METADATA).map(|v| v.as_bytes());
    match presented {
        Some(p) if constant_time_eq(p, expected.as_bytes()) => Ok(()),
        Some(_) => {
            tracing::warn!("refused internal gRPC call: wrong cluster token");
            Err(Status::unauthenticated("wrong cluster token"))
        }
        None => {
            tracing::warn!("refused internal gRPC call: no cluster token");
            Err(Status::unauthenticated("missing cluster token"))
        }
    }
}

/// A tonic interceptor applying [`check_token`]; usable by any service.
#[derive(Clone, Default)]
pub struct TokenInterceptor {
    expected: Option<Arc<str>>,
}

impl TokenInterceptor {
    pub fn new(expected: Option<String>) -> Self {
        TokenInterceptor {
            expected: expected.map(Arc::from),
        }
    }
}

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        check_token(self.expected.as_deref(), request.metadata())?;
        Ok(request)
    }
}

/// Adds the token (if any) to an outgoing request.
pub fn attach_token<T>(request: &mut Request<T>, token: Option<&str>) -> Result<(), Status> {
    if let Some(token) = token {
        let value = token
            .parse()
            .map_err(|_| Status::invalid_argument("cluster token is not valid metadata"))?;
        request.metadata_mut().insert(TOKEN_METADATA, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_when_unconfigured_and_strict_when_configured() {
        let mut md = MetadataMap::new();
        assert!(check_token(None, &md).is_ok());
        assert_eq!(
            check_token(Some("s3cret"), &md).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        md.insert(TOKEN_METADATA, "wrong".parse().unwrap());
        assert!(check_token(Some("s3cret"), &md).is_err());
        md.insert(TOKEN_METADATA, "s3cret".parse().unwrap());
        assert!(check_token(Some("s3cret"), &md).is_ok());
    }
}
