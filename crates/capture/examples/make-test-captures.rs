//! Write five real loopback captures for the analyzer's tests (needs root):
//!
//! ```text
//! cargo run -p tcplab-capture --example make-test-captures -- crates/trace/tests/data/live
//! ```
//!
//! Each capture is one connection between the seed's server and client, run in a fresh
//! anonymous network namespace.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use tcplab_client::ClientOptions;
use tcplab_server::{CloseHow, ServerOptions};

use support::{listing, parse_pcap, run_pair, BoxError};

/// (file name, address, server knobs, client knobs)
fn scenarios() -> Vec<(&'static str, IpAddr, ServerOptions, ClientOptions)> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let client_20ms = ClientOptions {
        close_delay_ms: 20.0,
        ..ClientOptions::default()
    };
    vec![
        (
            // Server closes right after `200 ok`; the client closes 20 ms after reading, before
            // its delayed ACK of the server's FIN fires, so its FIN carries that ACK.
            "three-way-server-first.pcap",
            v4,
            ServerOptions::default(),
            client_20ms.clone(),
        ),
        (
            // Server closes 100 ms after `200 ok`: the client's FIN comes first and the server
            // ACKs it (delayed ACK) long before its own FIN.
            "four-way-server-delay-100ms.pcap",
            v4,
            ServerOptions {
                close_delay_ms: 100.0,
                ..ServerOptions::default()
            },
            ClientOptions::default(),
        ),
        (
            // Client aborts with SO_LINGER 0 after reading; the server is still waiting.
            "reset-client-linger0.pcap",
            v4,
            ServerOptions {
                close_delay_ms: 100.0,
                ..ServerOptions::default()
            },
            ClientOptions {
                close: CloseHow::Linger0,
                ..ClientOptions::default()
            },
        ),
        (
            // Server never reads `get` and closes: unread data makes close send RST
            // (RFC 2525 §2.17).
            "reset-server-unread-data.pcap",
            v4,
            ServerOptions {
                read_request: false,
                ..ServerOptions::default()
            },
            ClientOptions::default(),
        ),
        (
            "ipv6-three-way.pcap",
            v6,
            ServerOptions::default(),
            client_20ms,
        ),
    ]
}

fn run() -> Result<(), BoxError> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: make-test-captures DIR")?
        .into();
    std::fs::create_dir_all(&dir)?;
    for (name, addr, server, client) in scenarios() {
        let out = run_pair(addr, 60000, server, client)?;
        if !out.packets.stats.is_clean() {
            return Err(format!("{name}: capture dropped packets: {:?}", out.packets.stats).into());
        }
        let path = dir.join(name);
        out.packets.write_pcap(&path)?;
        println!("{} ({} packets)", path.display(), out.packets.records.len());
        println!("{}\n", listing(&parse_pcap(&out.pcap)?));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-test-captures: {e}");
            ExitCode::from(2)
        }
    }
}
