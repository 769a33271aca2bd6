//! HTML building blocks: escaping (every text that comes from outside the binary — agent
//! ids, metric names, reasons, user names, form values — goes through [`Esc`]), and the
//! frame of every page (head, navigation, who is logged in, logout, flash message).

use std::fmt::{self, Write as _};

use crate::console::session::{Role, Session};

/// Text escaped for HTML content and double- or single-quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A value escaped for a URL's query (`application/x-www-form-urlencoded`).
pub struct UrlEnc<'a>(pub &'a str);

impl fmt::Display for UrlEnc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// A value for a URL's query, lighter than [`UrlEnc`]: `:` and `/` are left as they are
/// (RFC 3986 allows them in a query), which keeps a real server's link short.
pub struct QueryEnc<'a>(pub &'a str);

impl fmt::Display for QueryEnc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'/') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// A flash message shown at the top of a page: what a change did, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// Done (`class="ok"`) or refused (`class="error"`).
    pub ok: bool,
    /// The message.
    pub text: String,
}

/// The navigation: (id, path, label); `data-page` names the current one.
const NAV: [(&str, &str, &str); 5] = [
    ("nav-monitor", "/", "Monitor"),
    ("nav-agents", "/agents", "Agents"),
    ("nav-services", "/services", "Services"),
    ("nav-changes", "/changes", "Changes"),
    ("nav-audit", "/audit", "Audit"),
];

/// The role as shown.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Viewer => "viewer",
    }
}

/// Opens a page: head (CSS and the one script, both from /static), navigation, who is
/// logged in, the logout form, the flash message, and `<main data-page=...>`.
pub fn open(out: &mut String, title: &str, page: &str, session: &Session, flash: Option<&Flash>) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · feedbackd-master</title>\
         <link rel=\"icon\" href=\"/static/favicon.svg\"><link rel=\"stylesheet\" href=\"/static/console.css\">\
         <script src=\"/static/console.js\" defer></script></head>\n<body>\n<header><nav>",
        Esc(title)
    );
    for (id, path, label) in NAV {
        let current = if path == page_path(page) { " aria-current=\"page\"" } else { "" };
        let _ = write!(out, "<a id=\"{id}\" href=\"{path}\"{current}>{label}</a>");
    }
    let _ = write!(
        out,
        "</nav><span id=\"whoami\">{} ({})</span>\
         <form id=\"logout\" method=\"post\" action=\"/logout\">{}<button type=\"submit\">Log out</button></form>\
         </header>\n<main data-page=\"{}\">\n",
        Esc(&session.user),
        role_name(session.role),
        csrf_field(session),
        Esc(page)
    );
    if let Some(f) = flash {
        let class = if f.ok { "ok" } else { "error" };
        let _ = writeln!(out, "<p id=\"flash\" class=\"{class}\" role=\"status\">{}</p>", Esc(&f.text));
    }
    let _ = writeln!(out, "<h1>{}</h1>", Esc(title));
}

/// Closes what [`open`] opened.
pub fn close(out: &mut String) {
    out.push_str("</main>\n</body></html>\n");
}

fn page_path(page: &str) -> &'static str {
    match page {
        "monitor" | "server" => "/",
        "agents" => "/agents",
        "services" => "/services",
        "changes" => "/changes",
        "audit" => "/audit",
        _ => "",
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &Session) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", Esc(&session.csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            Esc("<script>alert(\"x\" & 'y')</script>").to_string(),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(Esc("plain é").to_string(), "plain é");
        assert_eq!(UrlEnc("tcp:[::1]:80/a b").to_string(), "tcp%3A%5B%3A%3A1%5D%3A80%2Fa%20b");
        assert_eq!(QueryEnc("tcp:[::1]:80/a b&c").to_string(), "tcp:%5B::1%5D:80/a%20b%26c");
    }
}
