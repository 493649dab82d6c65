//! Records spread over sixteen partitions by their id's first hex digit (ids are random hex,
//! so the digits are even), so their writes are not capped by one partition's throughput;
//! listed shard after shard, in id order, with strongly consistent queries.

use super::{Cursor, Item, Key, Query, StoreError, Table};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// A family of sharded partitions: `<prefix>#0` ... `<prefix>#f`.
pub struct Sharded {
    prefix: &'static str,
}

impl Sharded {
    pub const fn new(prefix: &'static str) -> Sharded {
        Sharded { prefix }
    }

    fn pk(&self, digit: u8) -> String {
        format!("{}#{}", self.prefix, digit as char)
    }

    /// Where record `id` lives. An id that is no such id (a client may send anything) maps to
    /// a partition that holds nothing, so it reads as absent.
    pub fn key(&self, id: &str) -> Key {
        let digit = id.bytes().next().filter(|b| DIGITS.contains(b)).unwrap_or(b'-');
        Key::new(self.pk(digit), id)
    }

    /// A page of the records in id order, the shards read one after another until the page
    /// is full: 1 query when the page ends inside a shard, at most 16. Like every filtered
    /// listing, a page may be short. The cursor is `<digit>.<the store's cursor in that shard>`.
    pub async fn list(
        &self,
        table: &dyn Table,
        filters: &[(String, String)],
        limit: u32,
        after: Option<&Cursor>,
    ) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        let (mut shard, mut inner) = match after {
            Some(cursor) => parse(cursor)?,
            None => (0, None),
        };
        let mut items = Vec::new();
        while shard < DIGITS.len() {
            let wanted = limit.saturating_sub(items.len() as u32).max(1);
            let mut q = Query::table(self.pk(DIGITS[shard]), wanted);
            q.filters = filters.to_vec();
            q.after = inner.take();
            let page = table.query(&q).await?;
            items.extend(page.items);
            if let Some(next) = page.next {
                return Ok((items, Some(cursor(DIGITS[shard], Some(&next)))));
            }
            shard += 1;
            if items.len() as u32 >= limit && shard < DIGITS.len() {
                return Ok((items, Some(cursor(DIGITS[shard], None))));
            }
        }
        Ok((items, None))
    }
}

fn cursor(digit: u8, inner: Option<&Cursor>) -> Cursor {
    Cursor::from_client(&format!("{}.{}", digit as char, inner.map_or("", Cursor::as_str)))
}

fn parse(cursor: &Cursor) -> Result<(usize, Option<Cursor>), StoreError> {
    let (digit, inner) = cursor.as_str().split_once('.').ok_or(StoreError::InvalidCursor)?;
    let &[digit] = digit.as_bytes() else { return Err(StoreError::InvalidCursor) };
    let shard = DIGITS.iter().position(|&d| d == digit).ok_or(StoreError::InvalidCursor)?;
    Ok((shard, (!inner.is_empty()).then(|| Cursor::from_client(inner))))
}
