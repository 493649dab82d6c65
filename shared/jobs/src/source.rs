//! Recipes fetched by Portico from an allow-listed source: `github://org:repo@ref/path`, as
//! OGDC writes it, read over HTTPS as `{base}/{org}/{repo}/{ref}/{path}/meta.yml` (then the
//! step file `meta.yml` names) from `recipe_github_base_url`. Only `org/repo` pairs in
//! `recipe_github_allow` (or `org/*`) are read; nothing else is ever fetched, redirects never
//! leave the base URL's origin (scheme, host, port), and each file is capped in size and time.

use std::time::Duration;

use super::recipe::{MAX_META_BYTES, MAX_STEPS_BYTES, Meta, Recipe, RecipeError};
use portico_core::{Config, Error};

/// The refusal code of a source that is malformed, not allowed, or missing.
pub const INVALID_SOURCE: &str = portico_core::codes::INVALID_RECIPE_SOURCE;

/// How long one file may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `github://org:repo@ref/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipeSource {
    pub org: String,
    pub repo: String,
    pub reference: String,
    pub path: String,
}

fn refused(message: impl Into<String>) -> Error {
    Error::bad_request(INVALID_SOURCE, message)
}

/// A name part: letters, digits, `-`, `_`, `.`, not starting with `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl RecipeSource {
    /// Parses `github://org:repo@ref/path`. Messages never quote the text.
    pub fn parse(text: &str) -> Result<RecipeSource, Error> {
        let shape = "must look like github://org:repo@ref/path";
        let rest = text.strip_prefix("github://").ok_or_else(|| refused(format!("'recipe_path' {shape}")))?;
        let (org, rest) = rest.split_once(':').ok_or_else(|| refused(format!("'recipe_path' {shape}")))?;
        let (repo, rest) = rest.split_once('@').ok_or_else(|| refused(format!("'recipe_path' {shape}")))?;
        let (reference, path) = rest.split_once('/').ok_or_else(|| refused(format!("'recipe_path' {shape}")))?;
        let path = path.trim_end_matches('/');
        let parts_ok = |s: &str| !s.is_empty() && s.split('/').all(is_name);
        if !is_name(org) || !is_name(repo) || !is_name(reference) || !parts_ok(path) {
            return Err(refused(format!(
                "'recipe_path' {shape}, each part letters, digits, '-', '_' or '.' (no '..', no empty part)"
            )));
        }
        Ok(RecipeSource { org: org.into(), repo: repo.into(), reference: reference.into(), path: path.into() })
    }

    /// Whether `allow` (`org/repo` or `org/*` entries) lets this source be read.
    pub fn is_allowed(&self, allow: &[String]) -> bool {
        allow.iter().any(|a| match a.split_once('/') {
            Some((org, "*")) => org.eq_ignore_ascii_case(&self.org),
            Some((org, repo)) => org.eq_ignore_ascii_case(&self.org) && repo.eq_ignore_ascii_case(&self.repo),
            None => false,
        })
    }
}

/// Reads recipes from the configured raw-content host.
pub struct RecipeFetcher {
    base: String,
    allow: Vec<String>,
    http: reqwest::Client,
}

impl RecipeFetcher {
    pub fn new(config: &Config) -> Result<RecipeFetcher, Error> {
        let base = config.recipe_github_base_url.trim_end_matches('/').to_owned();
        let origin = reqwest::Url::parse(&base).ok().map(|u| u.origin());
        // Redirects stay on the base URL's origin (scheme, host and port: another port of the
        // same host is another service, and https -> http a downgrade), at most 3.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let same_origin = origin.as_ref().is_some_and(|o| o.is_tuple() && attempt.url().origin() == *o);
            if attempt.previous().len() >= 3 || !same_origin {
                attempt.error("a redirect off the recipe host")
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .redirect(policy)
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| Error::Internal(format!("recipe HTTP client: {e}")))?;
        Ok(RecipeFetcher { base, allow: config.recipe_github_allow.clone(), http })
    }

    /// The recipe at `source`: 2 requests (meta.yml, then the step file it names).
    pub async fn fetch(&self, source: &RecipeSource) -> Result<Recipe, Error> {
        if !source.is_allowed(&self.allow) {
            return Err(refused(format!(
                "recipes from {}/{} are not allowed here (recipe_github_allow)",
                source.org, source.repo
            )));
        }
        let dir = format!("{}/{}/{}/{}/{}", self.base, source.org, source.repo, source.reference, source.path);
        let meta_text = self.file(&format!("{dir}/meta.yml"), "meta.yml", MAX_META_BYTES).await?;
        let meta = Meta::parse(&meta_text)?;
        // Refused before the second request: nothing Portico would not run is fetched further.
        meta.validate()?;
        let sh_file = meta.sh_file().ok_or(RecipeError::VisualizationUnsupported)?;
        let steps = self.file(&format!("{dir}/{sh_file}"), "the step file", MAX_STEPS_BYTES).await?;
        Ok(Recipe::from_parts(meta, &steps)?)
    }

    /// One file, at most `limit` bytes.
    async fn file(&self, url: &str, what: &str, limit: usize) -> Result<Vec<u8>, Error> {
        let upstream = |message: String| Error::Upstream { status: http::StatusCode::BAD_GATEWAY, message };
        let mut response = self.http.get(url).send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Upstream {
                    status: http::StatusCode::GATEWAY_TIMEOUT,
                    message: format!("the recipe host did not answer {what} in time"),
                }
            } else if e.is_redirect() {
                refused(format!("{what}: the recipe host redirected off itself"))
            } else {
                upstream(format!("the recipe host could not be reached for {what}"))
            }
        })?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(refused(format!("{what} does not exist at the recipe source"))),
            status => return Err(upstream(format!("the recipe host answered {status} for {what}"))),
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(refused(format!("{what} is larger than {limit} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|_| upstream(format!("the recipe host broke off {what}")))?
        {
            if body.len() + chunk.len() > limit {
                return Err(refused(format!("{what} is larger than {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_as_ogdc_writes_them_and_nothing_else() {
        let s = RecipeSource::parse("github://qgreenland-net:ogdc-recipes@main/recipes/seal-tags").unwrap();
        assert_eq!(
            (s.org.as_str(), s.repo.as_str(), s.reference.as_str(), s.path.as_str()),
            ("qgreenland-net", "ogdc-recipes", "main", "recipes/seal-tags")
        );
        for bad in [
            "https://example.org/x",
            "github://org/repo@main/x",
            "github://org:repo/main/x",
            "github://org:repo@main/../../etc",
            "github://org:repo@main/",
            "github://org:repo@main/a//b",
            "github://or g:repo@main/x",
            "github://org:repo@ma?in/x",
            "file:///etc/passwd",
        ] {
            let err = RecipeSource::parse(bad).unwrap_err();
            assert_eq!(err.code(), INVALID_SOURCE, "{bad}");
            assert!(!err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn only_allow_listed_repositories_are_read() {
        let s = RecipeSource::parse("github://Farm:recipes@v1/a").unwrap();
        assert!(s.is_allowed(&["farm/recipes".into()]));
        assert!(s.is_allowed(&["farm/*".into()]));
        assert!(!s.is_allowed(&["farm/other".into(), "*/*".into(), "farm".into()]));
        assert!(!s.is_allowed(&[]));
    }
}
