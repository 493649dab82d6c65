//! Bearer tokens for Amazon EKS, as `aws eks get-token` and aws-iam-authenticator make them:
//! `k8s-aws-v1.` followed by the unpadded base64url of an STS `GetCallerIdentity` URL presigned
//! (SigV4, query parameters, 60 s) with the function's own credentials and the signed header
//! `x-k8s-aws-id: <cluster>`. EKS accepts such a token for 15 minutes; Portico reuses it for
//! ten, then signs a new one. Nothing secret is in the token: a signature, not the key.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;

/// What every EKS token starts with.
pub const PREFIX: &str = "k8s-aws-v1.";
/// The header naming the cluster, signed into the URL.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long a token is reused (EKS accepts it for 15 minutes).
const REUSE: Duration = Duration::from_secs(600);

/// The token for `cluster` in `region`, signed with `credentials` at `time`.
pub fn token(cluster: &str, region: &str, credentials: &Credentials, time: SystemTime) -> Result<String, String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let url = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [(CLUSTER_HEADER, cluster)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _) = sign(request, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in instructions.params() {
        query.append_pair(name, value);
    }
    let presigned = format!("{url}&{}", query.finish());
    Ok(format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)))
}

/// Tokens for one cluster, reused while fresh.
pub struct EksTokens {
    cluster: String,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    current: Mutex<Option<(String, Instant)>>,
}

impl EksTokens {
    /// Tokens for `cluster`, signed with the credentials and region of `aws` (none: every call
    /// fails, naming why).
    pub fn new(cluster: String, aws: Option<&aws_config::SdkConfig>) -> EksTokens {
        EksTokens {
            cluster,
            region: aws.and_then(|a| a.region()).map(|r| r.to_string()),
            credentials: aws.and_then(|a| a.credentials_provider()),
            current: Mutex::new(None),
        }
    }

    /// A token at most ten minutes old.
    pub async fn get(&self) -> Result<String, String> {
        if let Some((token, at)) = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
            && at.elapsed() < REUSE
        {
            return Ok(token);
        }
        let (Some(region), Some(provider)) = (&self.region, &self.credentials) else {
            return Err("an EKS cluster needs AWS credentials and a region".into());
        };
        let credentials = provider.provide_credentials().await.map_err(|e| format!("AWS credentials: {e}"))?;
        let token = token(&self.cluster, region, &credentials, SystemTime::now())?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
