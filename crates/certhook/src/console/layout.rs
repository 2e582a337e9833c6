//! The page every console view is drawn in: head, navigation, the signed-in controls, and
//! the small helpers pages share (times in UTC with their age, state badges, paging).

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Ctx;

/// The stylesheet, embedded: the console works offline and needs no files beside the binary.
pub const CSS: &str = include_str!("assets/console.css");

/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/console/assets/console.css";

/// The sections of the navigation, by path prefix.
const SECTIONS: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/applications", "Applications"),
    ("/deliveries", "Deliveries"),
    ("/dead-letters", "Dead letters"),
];

/// A whole page: `title` in the tab and as the heading, `current` the path shown as the
/// current section.
pub fn page(ctx: &Ctx, current: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // `same-origin`: no address leaves for other sites, and form posts still carry this
                // site's Origin (`no-referrer` makes browsers send `Origin: null`, refused).
                meta name="referrer" content="same-origin";
                title { (title) " · certhook" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header {
                    nav aria-label="Sections" {
                        a.brand href="/" { "certhook" }
                        @for (path, name) in SECTIONS {
                            @let here = section_of(current) == *path;
                            a href=(path) aria-current=[here.then_some("page")] { (name) }
                        }
                        @if ctx.signed_in {
                            form.inline method="post" action="/logout" {
                                (csrf_field(ctx))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer { "Times are UTC. " (env!("CARGO_PKG_NAME")) " " (env!("CARGO_PKG_VERSION")) }
            }
        }
    }
}

/// The navigation section a path belongs to.
fn section_of(path: &str) -> &'static str {
    SECTIONS
        .iter()
        .rev()
        .find(|(p, _)| *p != "/" && (path == *p || path.starts_with(&format!("{p}/"))))
        .map_or("/", |(p, _)| p)
}

/// The hidden field every form that changes something carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// A time in UTC with how long ago (or ahead) it is.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) {
            (t.format("%Y-%m-%d %H:%M:%S")) " "
            span.muted { "(" (age(t, now)) ")" }
        }
    }
}

/// An optional time, or a dash.
pub fn maybe_when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        Some(t) => when(t, now),
        None => html! { span.muted { "—" } },
    }
}

/// "5 min ago", "in 3 days", "just now".
pub fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let text = match n {
        0..=9 => return "just now".into(),
        10..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} days", n / 86_400),
    };
    if future { format!("in {text}") } else { format!("{text} ago") }
}

/// A state as a badge, coloured by what it means for an operator.
pub fn badge(state: &str) -> Markup {
    let tone = match state {
        "active" | "delivered" | "fanned_out" => "ok",
        "dead" | "disabled" | "refused" | "revoked" | "expired" => "bad",
        "retrying" | "held" | "paused" | "pending_verification" | "expiring" => "warn",
        _ => "",
    };
    html! { span class={ "badge " (tone) } { (state.replace('_', " ")) } }
}

/// A notice above the page's content.
pub fn notice(tone: &str, text: &str) -> Markup {
    html! { div class={ "notice " (tone) } role="status" { (text) } }
}

/// A "next page" link when a page is full: `base` with `after` set to the last id.
pub fn pager(base: &str, query: &[(&str, String)], full: bool, last: Option<String>) -> Markup {
    let Some(last) = last.filter(|_| full) else { return html! {} };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.iter().filter(|(k, v)| *k != "after" && !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.append_pair("after", &last);
    html! { p.pager { a href={ (base) "?" (q.finish()) } rel="next" { "Next page →" } } }
}

/// A bar chart of the last hour, minute by minute: delivered (green) under failed (red).
pub fn chart(minutes: &[certhook_worker::history::Minute]) -> Markup {
    const W: usize = 600;
    const H: u64 = 120;
    let bar = W / minutes.len().max(1);
    let top = minutes.iter().map(|m| m.ok + m.failed).max().unwrap_or(0).max(1);
    let scale = |n: u64| n * (H - 10) / top;
    let mut bars = String::new();
    for (i, m) in minutes.iter().enumerate() {
        let x = i * bar;
        let (ok, failed) = (scale(m.ok), scale(m.failed));
        let minute = DateTime::from_timestamp(m.minute * 60, 0).unwrap_or_default().format("%H:%M");
        let label = format!("{minute} UTC: {} delivered, {} failed", m.ok, m.failed);
        bars.push_str(&format!(
            "<g><title>{label}</title><rect class=\"ok\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{ok}\"/>\
             <rect class=\"bad\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{failed}\"/></g>",
            H - ok,
            bar.saturating_sub(1),
            H - ok - failed,
            bar.saturating_sub(1),
        ));
    }
    let (ok, failed): (u64, u64) = minutes.iter().fold((0, 0), |(a, b), m| (a + m.ok, b + m.failed));
    html! {
        figure {
            svg.chart viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-label={ "Attempts in the last hour: " (ok) " delivered, " (failed) " failed" } {
                (PreEscaped(bars))
            }
            figcaption.muted {
                "Attempts this process made in the last hour, a bar a minute: "
                strong { (ok) } " delivered, " strong { (failed) } " failed."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ages_read_as_people_say_them() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        assert_eq!(age(now, now), "just now");
        assert_eq!(age(now - chrono::Duration::seconds(42), now), "42 s ago");
        assert_eq!(age(now - chrono::Duration::minutes(5), now), "5 min ago");
        assert_eq!(age(now - chrono::Duration::hours(3), now), "3 h ago");
        assert_eq!(age(now + chrono::Duration::days(12), now), "in 12 days");
    }

    #[test]
    fn the_current_section_is_found_by_prefix() {
        assert_eq!(section_of("/"), "/");
        assert_eq!(section_of("/applications/x/certificates"), "/applications");
        assert_eq!(section_of("/dead-letters"), "/dead-letters");
        assert_eq!(section_of("/deliveries/1"), "/deliveries");
        assert_eq!(section_of("/login"), "/");
    }

    #[test]
    fn the_chart_has_a_bar_a_minute_and_says_its_totals() {
        let minutes: Vec<_> =
            (0..60).map(|i| certhook_worker::history::Minute { minute: 1000 + i, ok: i as u64, failed: 1 }).collect();
        let svg = chart(&minutes).into_string();
        assert_eq!(svg.matches("<g>").count(), 60);
        assert!(svg.contains("1770 delivered, 60 failed"), "{svg}");
    }
}
