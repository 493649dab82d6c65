//! Download links for `temporary` outputs: the zip artifact Argo stored in S3, handed out as a
//! presigned GET (SigV4 query signing with the function's own credentials), valid for
//! `job_output_link_ttl`, so the client downloads it straight from S3 without Portico or any
//! token (as OGDC does). The emulator's demo engine has a stand-in.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;

use portico_core::Error;

/// Where an output artifact is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactLocation {
    pub bucket: String,
    pub key: String,
}

/// Makes time-limited download links.
#[async_trait::async_trait]
pub trait OutputLinks: Send + Sync {
    async fn link(&self, at: &ArtifactLocation, ttl: Duration) -> Result<String, Error>;
}

/// Presigned S3 GETs.
pub struct S3Presigner {
    credentials: SharedCredentialsProvider,
    region: String,
}

impl S3Presigner {
    pub fn new(credentials: SharedCredentialsProvider, region: String) -> Self {
        S3Presigner { credentials, region }
    }
}

/// Percent-encodes a key's segments as S3 expects (slashes kept).
fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[async_trait::async_trait]
impl OutputLinks for S3Presigner {
    async fn link(&self, at: &ArtifactLocation, ttl: Duration) -> Result<String, Error> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Error::Internal(format!("credentials for presigning: {e}")))?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(ttl);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Error::Internal(format!("presigning parameters: {e}")))?
            .into();
        let url = format!("https://{}.s3.{}.amazonaws.com/{}", at.bucket, self.region, encode_key(&at.key));
        let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::UnsignedPayload)
            .map_err(|e| Error::Internal(format!("presigning: {e}")))?;
        let (instructions, _) =
            sign(request, &params).map_err(|e| Error::Internal(format!("presigning: {e}")))?.into_parts();
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        Ok(format!("{url}?{}", query.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn a_presigned_link_names_the_object_and_expires() {
        let credentials = Credentials::from_keys("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
        let presigner = S3Presigner::new(SharedCredentialsProvider::new(credentials), "eu-west-1".into());
        let at = ArtifactLocation { bucket: "artifacts".into(), key: "portico-1/portico-1-publish/output.zip".into() };
        let link = presigner.link(&at, Duration::from_secs(7200)).await.unwrap();
        assert!(
            link.starts_with("https://artifacts.s3.eu-west-1.amazonaws.com/portico-1/portico-1-publish/output.zip?"),
            "{link}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=7200",
            "X-Amz-Signature=",
            "X-Amz-Credential=AKIDEXAMPLE",
        ] {
            assert!(link.contains(part), "{part} in {link}");
        }
        assert!(!link.contains("wJalrXUtnFEMI"), "the secret key is never in a link");
    }
}
