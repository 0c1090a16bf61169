//! A run's page (or `analyze --html`'s): per connection, the verdict(s), the space-time
//! diagram with its narration, warnings, and links to the captures.

use crate::diagram::{self, Diagram, KernelTimes, Views};
use crate::html::{esc, page};
use crate::svg;
use std::fmt::Write as _;
use tcplab_trace::render::human::{explain, verdict};
use tcplab_trace::render::Lang;
use tcplab_trace::{Analysis, Connection};

/// One capture given to a page: its analysis and the name to link it by.
#[derive(Debug, Clone, Copy)]
pub struct Capture<'a> {
    /// The analysis.
    pub analysis: &'a Analysis,
    /// Link target (relative to the page), e.g. `capture.pcap`.
    pub href: &'a str,
}

/// What a run page shows besides the captures.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// Page heading.
    pub title: String,
    /// Lines under the heading (scenario, check result, timing …), plain text.
    pub facts: Vec<String>,
    /// The check passed (Some(true)), failed (Some(false)), or there is none.
    pub passed: Option<bool>,
    /// The kernel's own states, with times.
    pub kernel: Option<KernelTimes>,
    /// Both captures come from one host's clock (a tcplab link run).
    pub same_clock: bool,
    /// Segments the link forged or replayed (`[[link.inject]]`): drawn as injected.
    pub injected: Vec<diagram::InjectedMark>,
}

/// One connection's diagram and the text beside it.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    /// The diagram.
    pub diagram: Diagram,
    /// `(which capture, verdict)` for each capture that has the connection.
    pub verdicts: Vec<(String, String)>,
    /// Warnings, explained.
    pub warnings: Vec<String>,
}

/// Pair the connections of two captures (same endpoints) and build each one's diagram.
/// `a` is the client end's capture unless the timing says otherwise; the kernel's states
/// belong to the first connection only (a run has one).
pub fn connection_views(
    a: &Capture<'_>,
    b: Option<&Capture<'_>>,
    facts: &RunFacts,
    lang: Lang,
) -> Vec<ConnectionView> {
    let mut out = Vec::new();
    for (i, ca) in a.analysis.connections.iter().enumerate() {
        let cb = b.and_then(|b| {
            b.analysis.connections.iter().find(|c| {
                (c.client == ca.client && c.server == ca.server)
                    || (c.client == ca.server && c.server == ca.client)
            })
        });
        let (client_end, server_end, names) = match cb {
            Some(cb) if !diagram::a_is_client_end(ca, cb) => {
                (cb, Some(ca), (b.map_or("", |b| b.href), a.href))
            }
            Some(cb) => (ca, Some(cb), (a.href, b.map_or("", |b| b.href))),
            None => (ca, None, (a.href, "")),
        };
        let d = diagram::build(
            Views {
                client: client_end,
                server: server_end,
                same_clock: facts.same_clock,
                kernel: if i == 0 { facts.kernel.as_ref() } else { None },
                injected: if i == 0 { &facts.injected } else { &[] },
            },
            lang,
        );
        let mut verdicts = vec![(names.0.to_owned(), verdict(client_end, lang))];
        if let Some(s) = server_end {
            verdicts.push((names.1.to_owned(), verdict(s, lang)));
        }
        let mut warnings: Vec<String> = Vec::new();
        for c in std::iter::once(client_end).chain(server_end) {
            for w in &c.warnings {
                let line = format!("{w}: {}", explain(w, lang));
                if !warnings.contains(&line) {
                    warnings.push(line);
                }
            }
        }
        out.push(ConnectionView {
            diagram: d,
            verdicts,
            warnings,
        });
    }
    out
}

fn kind_of(c: &Connection) -> String {
    let t = &c.teardown;
    match t.active_closer {
        Some(cl) => format!("{}/{}", t.kind.as_str(), cl.as_str()),
        None => t.kind.as_str().to_owned(),
    }
}

/// The legend under each diagram.
fn legend(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "<p class=\"legend muted\"><span>blue: sent by the client</span> <span>orange: sent by the server</span> <span>thick: FIN</span> <span>dashed, ending in ✕: lost on the way</span> <span>◆ dash-dot: arrived without being seen sent (injected/forged, or duplicated)</span> <span>purple label: retransmission</span> <span>STATE: inferred from the capture</span> <span style=\"color:#0a7d6f\">STATE ᵏ: the kernel's own record</span></p>",
        Lang::Zh => "<p class=\"legend muted\"><span>蓝色:客户端发出</span> <span>橙色:服务端发出</span> <span>粗线:FIN</span> <span>虚线并以✕结束:途中丢失</span> <span>◆点划线:未见发出却到达(注入/伪造,或被复制)</span> <span>紫色标签:重传</span> <span>状态:由抓包推断</span> <span style=\"color:#0a7d6f\">状态 ᵏ:内核自己的记录</span></p>",
    }
}

/// The HTML of one run (or of `analyze --html`'s captures).
pub fn run_page(captures: &[Capture<'_>], facts: &RunFacts, lang: Lang) -> String {
    let mut b = String::new();
    let _ = write!(b, "<h1>{}</h1>", esc(&facts.title));
    if let Some(p) = facts.passed {
        let _ = write!(
            b,
            "<p class=\"verdict {}\">{}</p>",
            if p { "pass" } else { "fail" },
            if p { "check: passed" } else { "check: FAILED" }
        );
    }
    if !facts.facts.is_empty() {
        b.push_str("<ul>");
        for f in &facts.facts {
            let _ = write!(b, "<li>{}</li>", esc(f));
        }
        b.push_str("</ul>");
    }
    b.push_str("<p>captures: ");
    for (i, c) in captures.iter().enumerate() {
        if i > 0 {
            b.push_str(", ");
        }
        let _ = write!(
            b,
            "<a href=\"{h}\">{h}</a> ({} packets)",
            c.analysis.file.packets,
            h = esc(c.href)
        );
    }
    b.push_str("</p>");
    let views = match captures {
        [a] => connection_views(a, None, facts, lang),
        [a, bb, ..] => connection_views(a, Some(bb), facts, lang),
        [] => Vec::new(),
    };
    if views.is_empty() {
        b.push_str("<p class=\"warn\">no TCP connections in the capture</p>");
    }
    for (i, v) in views.iter().enumerate() {
        let _ = write!(
            b,
            "<section class=\"connection\" id=\"c{n}\"><h2>connection {n}: client {} → server {}</h2>",
            esc(&v.diagram.client),
            esc(&v.diagram.server),
            n = i + 1
        );
        for (name, text) in &v.verdicts {
            let _ = write!(
                b,
                "<p class=\"verdict\">{}<span class=\"muted\"> — as seen in {}</span></p>",
                esc(text),
                esc(name)
            );
        }
        if let Some(c) = captures.first().and_then(|c| c.analysis.connections.get(i)) {
            let _ = write!(
                b,
                "<p class=\"muted\">outcome: <code>{}</code></p>",
                esc(&kind_of(c))
            );
        }
        for n in &v.diagram.notes {
            let _ = write!(b, "<p class=\"note\">{}</p>", esc(n));
        }
        for w in &v.warnings {
            let _ = write!(b, "<p class=\"warn\">warning: {}</p>", esc(w));
        }
        b.push_str(legend(lang));
        b.push_str(&svg::render(&v.diagram, lang));
        b.push_str("</section>");
    }
    page(&facts.title, &b)
}
