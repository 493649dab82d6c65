//! Query strings as types: a route's parameters are the fields of one type, which parses them
//! (`Deserialize`) and documents them (`IntoParams`, named in the handler's `params(...)`).
//! Names outside the type, repeated names and escapes that do not decode to UTF-8 are refused
//! (400 `invalid_query`), as [`super::query_pairs`] refuses them.

use axum::extract::FromRequestParts;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

use super::query_pairs;
use crate::store::Cursor;
use crate::{Config, Error, codes};

/// The query parameters of a route, as `T` (fields `Option<String>`, or a type that reads
/// from one string, such as an enum of names).
pub struct Query<T>(pub T);

/// The query parameters of a listing: the paging parameters (`limit`, `next`, as
/// [`crate::openapi::Paging`] documents them) and the listing's own, as `T`.
pub struct PagedQuery<T> {
    limit: Option<String>,
    next: Option<String>,
    pub filters: T,
}

impl<T> PagedQuery<T> {
    /// The page size and the cursor to start after (see [`super::page_limit`]).
    pub fn paging(&self, config: &Config) -> Result<(u32, Option<Cursor>), Error> {
        Ok((super::page_limit(self.limit.as_deref(), config)?, self.next.as_deref().map(Cursor::from_client)))
    }
}

/// A listing with no parameters but the paging ones.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoFilters {}

/// The parameter names `T` documents.
fn names_of<T: IntoParams>() -> Vec<String> {
    T::into_params(|| Some(ParameterIn::Query)).into_iter().map(|p| p.name).collect()
}

/// The query's pairs, refusing names neither `T` documents nor `more` names.
fn pairs_of<T: IntoParams>(parts: &http::request::Parts, more: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let names = names_of::<T>();
    let known: Vec<&str> = more.iter().copied().chain(names.iter().map(String::as_str)).collect();
    query_pairs(parts.uri.query().unwrap_or(""), &known)
}

/// `pairs` as `T` (through JSON strings, whose reader fills `Option` fields as serde's plain
/// string maps cannot).
fn read<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, Error> {
    let object = pairs.into_iter().map(|(name, value)| (name, serde_json::Value::String(value))).collect();
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| Error::bad_request(codes::INVALID_QUERY, e.to_string()))
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + IntoParams + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Error> {
        read(pairs_of::<T>(parts, &[])?).map(Query)
    }
}

impl<T, S> FromRequestParts<S> for PagedQuery<T>
where
    T: DeserializeOwned + IntoParams + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Error> {
        let mut pairs = pairs_of::<T>(parts, &["limit", "next"])?;
        let mut take = |name: &str| pairs.iter().position(|(n, _)| n == name).map(|at| pairs.remove(at).1);
        let (limit, next) = (take("limit"), take("next"));
        Ok(PagedQuery { limit, next, filters: read(pairs)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    struct Filters {
        /// A filter.
        colour: Option<String>,
    }

    async fn paged(uri: &str) -> Result<PagedQuery<Filters>, Error> {
        let (mut parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
        PagedQuery::<Filters>::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn the_fields_are_the_parameters_and_nothing_else() {
        let q = paged("/things?colour=r%C3%A9d&limit=5&next=abc").await.unwrap();
        assert_eq!(q.filters.colour.as_deref(), Some("réd"));
        let (limit, after) = q.paging(&Config::default()).unwrap();
        assert_eq!((limit, after.map(|c| c.as_str().to_owned())), (5, Some("abc".to_owned())));
        let q = paged("/things").await.unwrap();
        assert!(q.filters.colour.is_none());
        assert_eq!(q.paging(&Config::default()).unwrap().0, Config::default().page_size_default);
        for (uri, says) in [
            ("/things?shape=round", "unknown query parameter 'shape' (known: limit, next, colour)"),
            ("/things?colour=a&colour=b", "query parameter 'colour' is repeated"),
            ("/things?colour=%FF", "the query string is not UTF-8 once percent-decoded"),
        ] {
            let Err(Error::BadRequest { code, message, .. }) = paged(uri).await else { panic!("{uri} is refused") };
            assert_eq!((code, message.as_str()), (codes::INVALID_QUERY, says), "{uri}");
        }
        let Err(Error::BadRequest { code, .. }) = paged("/things?limit=0").await.unwrap().paging(&Config::default())
        else {
            panic!("limit=0 is refused")
        };
        assert_eq!(code, codes::INVALID_QUERY);
    }
}
