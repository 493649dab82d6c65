//! The names Portico checks, each rule held once: its pattern, the check made from it, the
//! message a refusal gives, and the JSON Schema the document shows (for a body's field with
//! `#[schema(schema_with = ...)]`, for a path parameter through `openapi::params`).

use std::sync::LazyLock;

use regex_lite::Regex;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::Error;

/// One name rule.
pub struct NameRule {
    /// The request field a refusal names.
    pub field: &'static str,
    /// The whole name must match it.
    pub pattern: &'static str,
    /// What a refusal says of the field.
    pub message: &'static str,
    regex: LazyLock<Regex>,
}

impl NameRule {
    /// `Ok` if `value` follows the rule, else 400 `invalid_field` naming the field.
    pub fn check(&self, value: &str) -> Result<(), Error> {
        if self.regex.is_match(value) { Ok(()) } else { Err(Error::invalid_field(self.field, self.message)) }
    }

    /// The rule as JSON Schema: a string matching the pattern.
    pub fn schema(&self) -> Object {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(self.pattern)).build()
    }
}

macro_rules! name_rule {
    ($(#[$doc:meta])* $name:ident, $field:literal, $pattern:literal, $message:expr) => {
        $(#[$doc])*
        pub static $name: NameRule = NameRule {
            field: $field,
            pattern: $pattern,
            message: $message,
            regex: LazyLock::new(|| Regex::new($pattern).expect("a name pattern")),
        };
    };
}

name_rule!(
    /// An app's slug: a URL path segment, and part of Kubernetes-style names.
    SLUG, "slug", "^[a-z0-9][a-z0-9-]{0,62}$", "must match ^[a-z0-9][a-z0-9-]{0,62}$"
);
name_rule!(
    /// A username (OIDC usernames are often e-mail addresses).
    USERNAME, "username", "^[A-Za-z0-9._@-]{1,64}$", "must be 1-64 of [A-Za-z0-9._@-]"
);
name_rule!(
    /// A role's name.
    ROLE, "role", "^[a-z0-9][a-z0-9_-]{0,63}$", "must match ^[a-z0-9][a-z0-9_-]{0,63}$"
);

name_rule!(
    /// A desktop environment's name: a URL path segment, and part of the Kubernetes names of
    /// its desktops.
    ENVIRONMENT, "name", "^[a-z0-9][a-z0-9-]{0,39}$", "must match ^[a-z0-9][a-z0-9-]{0,39}$"
);

/// [`SLUG`] as a body field's schema.
pub fn slug_schema() -> Object {
    SLUG.schema()
}

/// [`USERNAME`] as a body field's schema.
pub fn username_schema() -> Object {
    USERNAME.schema()
}

/// [`ROLE`] as a body field's schema.
pub fn role_schema() -> Object {
    ROLE.schema()
}

/// Longest Kubernetes label value.
const MAX_LABEL_VALUE: usize = 63;
/// Hex digits of the digest that tells apart two texts cut to the same label value.
const LABEL_DIGEST_CHARS: usize = 8;

/// `text` as a Kubernetes label value (at most 63 characters, empty or alphanumeric at both
/// ends, `[-_.A-Za-z0-9]` between): itself when it is one; else its allowed characters, cut
/// and trimmed, then `-` and a digest of the whole text, so two texts (recipe ids, usernames)
/// that differ only past the cut still get two values.
pub fn label_value(text: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if text.is_empty() || (text.len() <= MAX_LABEL_VALUE && ends_ok(text) && text.chars().all(allowed)) {
        return text.to_owned();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let room = MAX_LABEL_VALUE - LABEL_DIGEST_CHARS - 1;
    let kept: String = text.chars().filter(|c| allowed(*c)).take(room).collect();
    let kept = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let digest = &hex[..LABEL_DIGEST_CHARS];
    if kept.is_empty() { digest.to_owned() } else { format!("{kept}-{digest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_takes_what_its_pattern_says_and_nothing_else() {
        for ok in ["a", "usd-validate", "0", &"a".repeat(63)] {
            assert!(SLUG.check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a\n", &"a".repeat(64)] {
            assert_eq!(SLUG.check(bad).unwrap_err().field(), Some("slug"), "{bad:?}");
        }
        for ok in ["ana@lab.example", "a", "A.b_c-d", &"x".repeat(64)] {
            assert!(USERNAME.check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(USERNAME.check(bad).is_err(), "{bad:?}");
        }
        for ok in ["ops", "a_b-c", "0", &"r".repeat(64)] {
            assert!(ROLE.check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_a", "-a", "Ops", &"r".repeat(65)] {
            assert!(ROLE.check(bad).is_err(), "{bad:?}");
        }
        assert_eq!(SLUG.check("X").unwrap_err().to_string(), "field 'slug' must match ^[a-z0-9][a-z0-9-]{0,62}$");
    }
}
