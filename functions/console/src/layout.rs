//! The page around every view (header, navigation, main landmark) and the form pieces the
//! views share: labelled fields with the API's error beside the field it concerns.

use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use portico_core::web::ApiResponse;

use crate::assets::{CSS, JS};
use crate::backend::ApiError;
use crate::guard::BASE;

/// Who is looking at a page: enough for the navigation and the forms' CSRF field.
pub struct Viewer {
    pub username: String,
    pub admin: bool,
    pub csrf: String,
}

/// A complete HTML page.
pub fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Portico" }
                @if let Some(v) = viewer {
                    // For the script's own posts (X-CSRF-Token); forms carry a hidden field.
                    meta name="csrf-token" content=(v.csrf);
                }
                link rel="stylesheet" href=(CSS.path);
                script type="module" src=(JS.path) {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href={ (BASE) "/apps" } { "Portico" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            ul {
                                li { a href={ (BASE) "/apps" } { "Catalog" } }
                                li { a href={ (BASE) "/sessions" } { "My sessions" } }
                                li { a href={ (BASE) "/jobs" } { "My jobs" } }
                                li { a href={ (BASE) "/desktops" } { "My desktops" } }
                                li { a href={ (BASE) "/experiments" } { "My experiments" } }
                                li { a href={ (BASE) "/profile" } { "Profile" } }
                                @if v.admin {
                                    li { a href={ (BASE) "/admin" } { "Admin" } }
                                }
                            }
                        }
                        form.signout method="post" action={ (BASE) "/signout" } {
                            (csrf_field(v))
                            span.who { (v.username) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(viewer.csrf); }
}

/// An HTML answer.
pub fn html_response(status: StatusCode, markup: Markup) -> ApiResponse {
    let mut r = http::Response::new(markup.into_string());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// The API's refusal as a page-level alert (when it concerns no single field).
pub fn alert(error: Option<&ApiError>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.alert role="alert" { strong { (e.status.as_u16()) " " } (e.message) }
        }
    }
}

/// A short note that something worked.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text {
            p.notice role="status" { (t) }
        }
    }
}

/// A labelled text input; the API's error about `name` shown under it and tied to it.
pub fn text_field(label: &str, name: &str, value: &str, error: Option<&ApiError>, attrs: FieldAttrs) -> Markup {
    field(label, name, error, |id, invalid, described_by| {
        html! {
            input id=(id) name=(name) type=(attrs.kind) value=(value) required[attrs.required]
                autocomplete=[attrs.autocomplete]
                aria-invalid=[invalid] aria-describedby=[described_by];
        }
    })
}

/// A labelled multi-line input, with the API's error about `name` under it.
pub fn text_area(label: &str, name: &str, value: &str, rows: u8, error: Option<&ApiError>) -> Markup {
    field(label, name, error, |id, invalid, described_by| {
        html! {
            textarea id=(id) name=(name) rows=(rows) aria-invalid=[invalid] aria-describedby=[described_by] { (value) }
        }
    })
}

/// A labelled `control` for `name`, the API's error about `name` shown under it: `control`
/// gets the control's id and, when there is such an error, its `aria-invalid` value and the
/// error's id for `aria-describedby`.
fn field(
    label: &str,
    name: &str,
    error: Option<&ApiError>,
    control: impl FnOnce(&str, Option<&str>, Option<&str>) -> Markup,
) -> Markup {
    let id = format!("f-{name}");
    let problem = error.filter(|e| e.field() == Some(name));
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            (control(&id, problem.map(|_| "true"), problem.map(|_| error_id.as_str())))
            @if let Some(e) = problem {
                p.field-error id=(error_id) { (e.message) }
            }
        }
    }
}

/// The error shown at the top of a form: only when no field shows it.
pub fn form_alert(error: Option<&ApiError>, fields: &[&str]) -> Markup {
    alert(error.filter(|e| e.field().is_none_or(|f| !fields.contains(&f))))
}

/// Options of a text input.
#[derive(Clone, Copy)]
pub struct FieldAttrs {
    pub kind: &'static str,
    pub required: bool,
    pub autocomplete: Option<&'static str>,
}

impl Default for FieldAttrs {
    fn default() -> Self {
        FieldAttrs { kind: "text", required: false, autocomplete: None }
    }
}

impl FieldAttrs {
    pub fn required() -> Self {
        FieldAttrs { required: true, ..Default::default() }
    }
}

/// A table (scrolling sideways inside its box on a narrow screen) with one header row.
pub fn table(headers: &[&str], rows: Markup) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead { tr { @for h in headers { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

/// An RFC 3339 instant, readable: `2024-05-01 12:00:00 UTC`.
pub fn readable_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(t) => format!("{} UTC", t.replacen('T', " ", 1)),
        None => rfc3339.replacen('T', " ", 1),
    }
}

/// An RFC 3339 instant as a `<time>` element, readable.
pub fn when(rfc3339: &str) -> Markup {
    html! { time datetime=(rfc3339) { (readable_time(rfc3339)) } }
}

#[cfg(test)]
mod tests {
    use super::readable_time;

    #[test]
    fn instants_read_as_utc() {
        assert_eq!(readable_time("2024-05-01T12:00:00Z"), "2024-05-01 12:00:00 UTC");
        assert_eq!(readable_time("2024-05-01T12:00:00+02:00"), "2024-05-01 12:00:00+02:00");
    }
}
