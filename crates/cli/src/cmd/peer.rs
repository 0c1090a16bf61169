//! `tcplab server` / `tcplab client`: the seed's programs for two real hosts (run tcpdump
//! beside them, then `tcplab analyze` the capture).

use crate::args::{ClientArgs, CloseArg, PeerKnobs, ServerArgs};
use crate::exit::Exit;
use anyhow::Context;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tcplab_client::ClientOptions;
use tcplab_server::{CloseHow, ServerOptions};

fn close_how(c: CloseArg) -> CloseHow {
    match c {
        CloseArg::Close => CloseHow::Close,
        CloseArg::Shutdown => CloseHow::Shutdown,
        CloseArg::Linger0 => CloseHow::Linger0,
    }
}

fn default_addr(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

pub fn server(args: ServerArgs) -> anyhow::Result<u8> {
    let k: &PeerKnobs = &args.knobs;
    let opts = ServerOptions {
        address: args.addr.unwrap_or_else(|| default_addr(args.ipv6)),
        port: args.port,
        count: args.count,
        close_delay_ms: k.close_delay_ms,
        close: close_how(k.close),
        read_request: !args.no_read,
        nodelay: k.nodelay,
        quickack: k.quickack,
        accept_timeout_ms: 0.0,
        ..ServerOptions::default()
    };
    let mut out = io::stdout().lock();
    tcplab_server::serve_standalone(&opts, &mut out)
        .with_context(|| format!("server on {}", SocketAddr::new(opts.address, opts.port)))?;
    Ok(Exit::OK)
}

pub fn client(args: ClientArgs) -> anyhow::Result<u8> {
    let k: &PeerKnobs = &args.knobs;
    let opts = ClientOptions {
        count: args.count,
        close_delay_ms: k.close_delay_ms,
        close: close_how(k.close),
        read_response: !args.no_read,
        nodelay: k.nodelay,
        quickack: k.quickack,
        ..ClientOptions::default()
    };
    let server = SocketAddr::new(
        args.addr.unwrap_or_else(|| default_addr(args.ipv6)),
        args.port,
    );
    let mut out = io::stdout().lock();
    tcplab_client::run_standalone(&opts, server, &mut out)
        .with_context(|| format!("client of {server}"))?;
    Ok(Exit::OK)
}
