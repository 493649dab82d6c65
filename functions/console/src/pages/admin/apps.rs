//! Apps: the catalog as a table, and a form with every field of `PUT /apps/{slug}`. Edits
//! carry the ETag the form was made from (`If-Match`), so a change made meanwhile is refused
//! by the API instead of overwritten; new apps are sent with `If-None-Match: *`, so they never
//! replace one.

use http::{Method, StatusCode, header};
use maud::{Markup, html};
use portico_core::web::ApiResponse;
use serde_json::{Value, json};

use super::{Listing, done, done_notice, listing, pager, shown};
use crate::backend::ApiError;
use crate::guard::{BASE, segment};
use crate::layout::{FieldAttrs, alert, csrf_field, form_alert, html_response, page, table, text_area, text_field};
use crate::{Ctx, Form};
use portico_apps::AppView;

/// `AppInput`'s one-line fields, in the form's order: name, label, required.
const LINE_FIELDS: [(&str, &str, bool); 9] = [
    ("title", "Title", true),
    ("function_id", "Function ID", true),
    ("function_version_id", "Function version ID", true),
    ("version", "Version", false),
    ("category", "Category", false),
    ("product_area", "Product area", false),
    ("group", "Authorization group", false),
    ("image", "Image URL", false),
    ("icon", "Icon URL", false),
];

/// Every field a form can name in an error (for the alert above it).
const ALL_FIELDS: [&str; 11] = [
    "slug",
    "title",
    "function_id",
    "function_version_id",
    "description",
    "version",
    "category",
    "product_area",
    "group",
    "image",
    "icon",
];

/// The values the form shows, by `AppInput` field name.
struct Fields(Vec<(&'static str, String)>);

impl Fields {
    fn from_app(app: &Value) -> Fields {
        Fields(ALL_FIELDS.iter().map(|&n| (n, app.get(n).and_then(Value::as_str).unwrap_or("").to_owned())).collect())
    }

    fn from_form(form: &Form) -> Fields {
        Fields(ALL_FIELDS.iter().map(|&n| (n, form.get(n).to_owned())).collect())
    }

    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The body of `PUT /apps/{slug}`; an empty URL is no URL.
    fn body(&self) -> Value {
        let url = |n: &str| Some(self.get(n).trim()).filter(|u| !u.is_empty());
        json!({
            "function_id": self.get("function_id"),
            "function_version_id": self.get("function_version_id"),
            "title": self.get("title"),
            "description": self.get("description"),
            "version": self.get("version"),
            "image": url("image"),
            "icon": url("icon"),
            "category": self.get("category"),
            "product_area": self.get("product_area"),
            "group": self.get("group"),
        })
    }
}

pub async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let next = ctx.query("next");
    let Listing { items: apps, next, error } = listing::<AppView>(ctx, "/apps", &[("next", next.as_str())]).await?;
    let body = html! {
        (done_notice(ctx))
        (alert(error.as_ref()))
        p { a.button href={ (BASE) "/admin/apps/new" } { "Publish a new app" } }
        @if apps.is_empty() && error.is_none() {
            p { "No apps are published." }
        } @else {
            (table(&["Title", "Slug", "Version", "Category", "Group", "Status"], html! {
                @for app in &apps {
                    tr {
                        td { a href={ (BASE) "/admin/apps/" (segment(&app.slug)) } { (app.title) } }
                        td { code { (app.slug) } }
                        td { (app.version) }
                        td { (app.category) }
                        td { (app.group) }
                        td { span.status data-status=(app.status.as_str()) { (app.status.as_str()) } }
                    }
                }
            }))
        }
        (pager("/admin/apps", &[], next.as_deref(), "More apps"))
    };
    Ok(html_response(StatusCode::OK, page("Apps", Some(&ctx.viewer), body)))
}

pub fn new_form(ctx: &Ctx<'_>) -> ApiResponse {
    let empty = Fields(ALL_FIELDS.iter().map(|&n| (n, String::new())).collect());
    form_page(ctx, None, &empty, "", None, StatusCode::OK)
}

/// `POST /console/admin/apps`: the new-app form, published only if the slug is free.
pub async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    let fields = Fields::from_form(&form);
    let slug = fields.get("slug").to_owned();
    // The API's own check: an empty or odd slug would otherwise change the path it is sent to.
    if let Err(e) = portico_core::apps::validate_slug(&slug) {
        let e = super::super::api_error(&e);
        return Ok(form_page(ctx, None, &fields, "", Some(&e), e.status));
    }
    put(ctx, &slug, &fields, "").await
}

/// `POST /console/admin/apps/{slug}`: the edit form, with the ETag it was made from.
pub async fn save(ctx: &Ctx<'_>, slug: &str) -> Result<ApiResponse, ApiError> {
    let form = ctx.form();
    put(ctx, slug, &Fields::from_form(&form), form.get("_etag")).await
}

/// `PUT /apps/{slug}`: `If-Match` the form's ETag, or `If-None-Match: *` without one.
async fn put(ctx: &Ctx<'_>, slug: &str, fields: &Fields, etag: &str) -> Result<ApiResponse, ApiError> {
    let call = ctx.api(Method::PUT, format!("/apps/{}", segment(slug))).json(&fields.body());
    let call = match etag {
        "" => call.header(header::IF_NONE_MATCH, "*"),
        tag => call.header(header::IF_MATCH, format!("\"{tag}\"")),
    };
    match call.send().await {
        Ok(answer) => {
            let code = if answer.status == StatusCode::CREATED { "published" } else { "saved" };
            Ok(done(&format!("{BASE}/admin/apps/{}", segment(slug)), code))
        }
        Err(e) => {
            let e = shown(e)?;
            let editing = (!etag.is_empty()).then_some(slug);
            Ok(form_page(ctx, editing, fields, etag, Some(&e), e.status))
        }
    }
}

/// `GET /console/admin/apps/{slug}`: the app as stored now, with its ETag.
pub async fn edit(ctx: &Ctx<'_>, slug: &str, error: Option<&ApiError>) -> Result<ApiResponse, ApiError> {
    let answer = ctx.api(Method::GET, format!("/apps/{}", segment(slug))).send().await?;
    let etag = answer.etag().unwrap_or_default();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    Ok(form_page(ctx, Some(slug), &Fields::from_app(&answer.body), &etag, error, status))
}

/// `POST /console/admin/apps/{slug}/delete`: only the version the page showed is deleted.
pub async fn delete(ctx: &Ctx<'_>, slug: &str) -> Result<ApiResponse, ApiError> {
    let etag = ctx.form().get("_etag").to_owned();
    let call =
        ctx.api(Method::DELETE, format!("/apps/{}", segment(slug))).header(header::IF_MATCH, format!("\"{etag}\""));
    match call.send().await {
        Ok(_) => Ok(done(&format!("{BASE}/admin/apps"), "deleted")),
        Err(e) => edit(ctx, slug, Some(&shown(e)?)).await,
    }
}

/// The new-app form (`slug` `None`) or the edit form of `slug`, showing `fields`.
fn form_page(
    ctx: &Ctx<'_>,
    slug: Option<&str>,
    fields: &Fields,
    etag: &str,
    error: Option<&ApiError>,
    status: StatusCode,
) -> ApiResponse {
    let action = match slug {
        Some(s) => format!("{BASE}/admin/apps/{}", segment(s)),
        None => format!("{BASE}/admin/apps"),
    };
    let changed_meanwhile = error.is_some_and(|e| e.status == StatusCode::PRECONDITION_FAILED);
    // The edit form has no slug field: an error about the slug goes above it.
    let beside: &[&str] = if slug.is_some() { &ALL_FIELDS[1..] } else { &ALL_FIELDS };
    let body = html! {
        (done_notice(ctx))
        (form_alert(error, beside))
        @if changed_meanwhile {
            @if let Some(s) = slug {
                p.hint {
                    "Someone changed this app after this form was opened; nothing was saved. "
                    a href={ (BASE) "/admin/apps/" (segment(s)) } { "Reload the current version" }
                    " and make your changes again."
                }
            } @else {
                p.hint { "An app with this slug already exists; nothing was replaced." }
            }
        }
        form.card method="post" action=(action) {
            (csrf_field(&ctx.viewer))
            input type="hidden" name="_etag" value=(etag);
            @if slug.is_none() {
                (text_field("Slug (in the app's address; lowercase letters, digits, dashes)", "slug",
                    fields.get("slug"), error, FieldAttrs { autocomplete: Some("off"), ..FieldAttrs::required() }))
            }
            @for (name, label, required) in LINE_FIELDS {
                @let kind = if matches!(name, "image" | "icon") { "url" } else { "text" };
                (text_field(label, name, fields.get(name), error,
                    FieldAttrs { kind, required, autocomplete: Some("off") }))
            }
            (text_area("Description", "description", fields.get("description"), 5, error))
            button type="submit" { @if slug.is_some() { "Save changes" } @else { "Publish" } }
        }
        @if let Some(s) = slug {
            p { a href={ (BASE) "/apps/" (segment(s)) } { "See it in the catalog" } }
            (delete_form(ctx, s, etag))
        }
        p { a href={ (BASE) "/admin/apps" } { "All apps" } }
    };
    let title = match slug {
        Some(s) => format!("App {s}"),
        None => "Publish an app".to_owned(),
    };
    html_response(status, page(&title, Some(&ctx.viewer), body))
}

fn delete_form(ctx: &Ctx<'_>, slug: &str, etag: &str) -> Markup {
    html! {
        form.inline method="post" action={ (BASE) "/admin/apps/" (segment(slug)) "/delete" } {
            (csrf_field(&ctx.viewer))
            input type="hidden" name="_etag" value=(etag);
            button.danger type="submit" data-confirm={ "Delete the app " (slug) " from the catalog?" } { "Delete app" }
        }
    }
}
