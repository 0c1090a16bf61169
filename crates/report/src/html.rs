//! The page around the diagrams: one self-contained HTML file (inline CSS and SVG, nothing
//! fetched, readable with JavaScript off), deterministic.

use std::fmt::Write as _;

/// Escape text for HTML and SVG (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The stylesheet every page inlines.
pub const CSS: &str = r#"
:root{--fg:#1d232b;--muted:#5b6673;--line:#c9d1da;--client:#1f6feb;--server:#b35900;--lost:#c62828;--ok:#2e7d32;--bg:#fff;--panel:#f5f7fa}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px 32px;max-width:1480px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:16px;margin:18px 0 6px}
.muted,.note{color:var(--muted)}.note{background:var(--panel);border-left:3px solid var(--line);padding:6px 10px;margin:8px 0;max-width:1100px}
.verdict{font-size:17px;font-weight:600}.pass{color:var(--ok)}.fail{color:var(--lost)}.warn{color:#8a6100}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}th{background:var(--panel)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0b57d0}
.bar{display:inline-block;height:12px;background:var(--client);vertical-align:middle}
.legend span{margin-right:18px;white-space:nowrap}
svg.spacetime{display:block;max-width:100%;height:auto;font:12px system-ui,sans-serif}
svg .end{font-weight:700;font-size:15px}svg .addr{fill:var(--muted);font-size:12px}svg .axis,svg .gap{fill:var(--muted);font-size:11px}
svg .timeline{stroke:#8894a0;stroke-width:3}
svg .arrow .seg{stroke-width:1.6}
svg .arrow[data-from=client] .seg{stroke:var(--client)}svg .arrow[data-from=server] .seg{stroke:var(--server)}
svg .arrow.fin .seg{stroke-width:2.6}svg .arrow.rst .seg{stroke:var(--lost);stroke-width:2.6}
svg .arrow.lost .seg{stroke-dasharray:6 3}svg .arrow.unseen .seg{stroke-dasharray:2 3}
svg .arrow.injected .seg,svg .arrow.duplicate .seg{stroke-dasharray:10 3 2 3}
svg .arrow.retransmit .label{fill:#8a3fb0}
svg .cross{stroke:var(--lost);stroke-width:3}svg .forged{fill:#8a3fb0}svg .mark{fill:var(--lost);font-weight:700}
svg .label{font:11px ui-monospace,"DejaVu Sans Mono",monospace;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .narration{font-size:12px;fill:var(--fg)}svg .leader{stroke:#e3e7ec;stroke-dasharray:2 3}
svg .state text{font:11px ui-monospace,"DejaVu Sans Mono",monospace;font-weight:600}
svg .state.capture text{fill:#33414f}svg .state.kernel text{fill:#0a7d6f}
svg .state .tick{stroke:#aab4be}
svg .wait{stroke:#8a6100;fill:none;stroke-width:1.5}svg text.wait{fill:#8a6100;stroke:none;font-size:11px}
svg .break{stroke:#fff;stroke-width:5;fill:none}
.page{display:none}.page:target,.page.first{display:block}.page:target~.page.first{display:none}
nav.pages a{margin-right:6px}
.small{font-size:12.5px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:6px;vertical-align:-1px;border:1px solid #0003}
.stack{display:flex;width:180px;height:10px;margin:4px 0 2px;background:var(--panel);border:1px solid var(--line)}.stack span{display:block;height:100%}
figure{margin:12px 0 22px}figcaption{color:var(--muted);font-size:13px;margin-top:4px;max-width:1000px}
svg.chart{display:block;width:100%;max-width:1000px;height:auto;border:1px solid var(--line)}
svg.chart a.point rect{fill:#000;fill-opacity:0}svg.chart a.point:hover rect,svg.chart a.point:focus rect{fill-opacity:.10;stroke:#0b57d0;stroke-width:2}
.boundary{font-size:16px;max-width:1100px}details summary{cursor:pointer;color:#0b57d0;margin:6px 0}
table.matrix th.column{min-width:190px}table.matrix td.cell{min-width:190px}
table.matrix td.cell a.batch{color:var(--fg);text-decoration:none;font:13px ui-monospace,"DejaVu Sans Mono",monospace}table.matrix td.cell a.batch:hover{text-decoration:underline}
table.matrix .kernel{font-weight:700}table.matrix .conditions{font-weight:400}
td.m-fail{background:#fdecea}td.m-differs{background:#fff4d6}td.m-other{background:#f3f0ff}
.mark{font-weight:700;margin-right:6px}.mark.m-fail{color:var(--lost)}.mark.m-differs{color:#a05a00}.mark.m-other{color:#6a4fb3}
.moved{font-size:12px;color:var(--muted)}
.legend>span{display:block;margin:2px 0}
ul.index li{margin:3px 0}
table.tests td:nth-child(-n+6),table.tests th{white-space:nowrap}
@media print{.page{display:block}}
"#;

/// A whole page: `title`, then `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + CSS.len() + 512);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"generator\" content=\"tcplab\"><title>{}</title><style>{}</style></head><body>\n{}\n</body></html>\n",
        esc(title),
        CSS,
        body
    );
    s
}
