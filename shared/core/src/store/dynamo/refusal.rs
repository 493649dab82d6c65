//! A conditional write's answer: the live item it replaced, or its condition's refusal and the
//! live item in the way.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::AttrMap;
use super::items::live_old;
use super::retry::{Step, failed};
use crate::store::{Item, StoreError};

/// The failures of a conditional write that are its condition's refusal.
pub(super) trait Refusal {
    /// The item in the way (`ALL_OLD`), if this is the refusal.
    fn in_the_way(&self) -> Option<Option<&AttrMap>>;
}

impl Refusal for PutItemError {
    fn in_the_way(&self) -> Option<Option<&AttrMap>> {
        if let Self::ConditionalCheckFailedException(e) = self { Some(e.item()) } else { None }
    }
}

impl Refusal for DeleteItemError {
    fn in_the_way(&self) -> Option<Option<&AttrMap>> {
        if let Self::ConditionalCheckFailedException(e) = self { Some(e.item()) } else { None }
    }
}

/// One attempt of a conditional `PutItem` or `DeleteItem` (`sent`): the live item it replaced
/// or removed (`old` reads it from the answer); when its condition refused it, what `refused`
/// makes of the live item in the way; any other failure as [`failed`] says.
pub(super) fn written<O, E: Refusal + ProvideErrorMetadata + std::error::Error + 'static>(
    sent: Result<O, SdkError<E, HttpResponse>>,
    now: i64,
    old: impl FnOnce(&O) -> Option<&AttrMap>,
    refused: impl FnOnce(Option<Item>) -> Result<Option<Item>, StoreError>,
) -> Step<Option<Item>> {
    let err = match sent {
        Ok(out) => return Step::Done(live_old(old(&out), now)),
        Err(err) => err,
    };
    let current = match err.as_service_error().and_then(Refusal::in_the_way) {
        Some(item) => live_old(item, now),
        None => return failed(err),
    };
    Step::Done(current.and_then(refused))
}
