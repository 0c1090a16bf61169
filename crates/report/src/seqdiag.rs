//! A connection as a sequence diagram in the text formats people paste into docs and wikis:
//! Mermaid (`sequenceDiagram`) and PlantUML (`@startuml`), each segment a message labelled
//! like tcpdump, each state an end entered a note over it.

use tcplab_trace::render::human::{packet_fields, told_states, verdict};
use tcplab_trace::render::Lang;
use tcplab_trace::{Analysis, Side};

/// Which text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqFormat {
    /// Mermaid.
    Mermaid,
    /// PlantUML.
    PlantUml,
}

fn clean(s: &str, f: SeqFormat) -> String {
    // Mermaid ends a message at `;` and reads `#` as an entity; PlantUML is easier.
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match f {
        SeqFormat::Mermaid => s.replace(';', ",").replace('#', "no. "),
        SeqFormat::PlantUml => s,
    }
}

/// One diagram per connection of `a`.
pub fn render(a: &Analysis, f: SeqFormat, lang: Lang) -> String {
    let mut o = String::new();
    for (ci, c) in a.connections.iter().enumerate() {
        let name = |s: Side| match s {
            Side::Client => "client",
            Side::Server => "server",
        };
        match f {
            SeqFormat::Mermaid => {
                o.push_str("sequenceDiagram\n");
                o.push_str(&format!(
                    "    %% {} connection {}\n",
                    clean(&a.file.source, f),
                    ci + 1
                ));
                o.push_str(&format!("    participant client as client {}\n", c.client));
                o.push_str(&format!("    participant server as server {}\n", c.server));
            }
            SeqFormat::PlantUml => {
                o.push_str("@startuml\n");
                o.push_str(&format!("title {} connection {}\n", a.file.source, ci + 1));
                o.push_str(&format!("participant \"client {}\" as client\n", c.client));
                o.push_str(&format!("participant \"server {}\" as server\n", c.server));
            }
        }
        for (i, p) in c.packets.iter().enumerate() {
            let label = clean(&format!("{}. {}", p.number, packet_fields(p)), f);
            let (x, y) = (name(p.from), name(p.from.peer()));
            match f {
                SeqFormat::Mermaid => o.push_str(&format!("    {x}->>{y}: {label}\n")),
                SeqFormat::PlantUml => o.push_str(&format!("{x} -> {y} : {label}\n")),
            }
            let _ = i;
            for side in [p.from, p.from.peer()] {
                for st in told_states(c, side, p.number) {
                    match f {
                        SeqFormat::Mermaid => {
                            o.push_str(&format!("    Note over {}: {st}\n", name(side)))
                        }
                        SeqFormat::PlantUml => {
                            o.push_str(&format!("hnote over {} : {st}\n", name(side)))
                        }
                    }
                }
            }
        }
        let v = clean(&verdict(c, lang), f);
        match f {
            SeqFormat::Mermaid => o.push_str(&format!("    Note over client,server: {v}\n")),
            SeqFormat::PlantUml => {
                o.push_str(&format!("note over client, server : {v}\n@enduml\n"))
            }
        }
    }
    o
}
