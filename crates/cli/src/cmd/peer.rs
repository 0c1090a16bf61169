//! `tcplab server` / `tcplab client`: the seed's programs for two real hosts (run tcpdump
//! beside them, then `tcplab analyze` the capture).

use crate::args::{ClientArgs, ServerArgs};
use crate::exit::Exit;
use anyhow::Context;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tcplab_client::ClientOptions;
use tcplab_server::ServerOptions;

/// The address to use: `--addr`, else loopback of the family `-6` asks for. `-6` with an
/// IPv4 `--addr` contradicts itself: an error, not silently IPv4.
fn address(addr: Option<IpAddr>, ipv6: bool) -> anyhow::Result<IpAddr> {
    match addr {
        Some(a @ IpAddr::V4(_)) if ipv6 => {
            anyhow::bail!("-6 asks for IPv6, but --addr {a} is an IPv4 address (drop -6 or give an IPv6 --addr)")
        }
        Some(a) => Ok(a),
        None if ipv6 => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        None => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    }
}

pub fn server(args: ServerArgs) -> anyhow::Result<u8> {
    let mut opts = ServerOptions {
        address: address(args.addr, args.ipv6)?,
        port: args.port,
        count: args.count,
        accept_timeout_ms: 0.0,
        io_timeout_ms: args.timeout_ms,
        ..ServerOptions::default()
    };
    args.knobs.0.apply(&mut opts);
    let mut out = io::stdout().lock();
    tcplab_server::serve_standalone(&opts, &mut out)
        .with_context(|| format!("server on {}", SocketAddr::new(opts.address, opts.port)))?;
    Ok(Exit::OK)
}

pub fn client(args: ClientArgs) -> anyhow::Result<u8> {
    let mut opts = ClientOptions {
        count: args.count,
        connect_timeout_ms: args.timeout_ms,
        io_timeout_ms: args.timeout_ms,
        ..ClientOptions::default()
    };
    args.knobs.0.apply(&mut opts);
    let server = SocketAddr::new(address(args.addr, args.ipv6)?, args.port);
    let mut out = io::stdout().lock();
    tcplab_client::run_standalone(&opts, server, &mut out)
        .with_context(|| format!("client of {server}"))?;
    Ok(Exit::OK)
}
