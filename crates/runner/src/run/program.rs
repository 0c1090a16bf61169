//! The two programs of a run: their options from the scenario, the sysctls set before any
//! socket exists, and the exchange (server on a helper thread, client on the caller's).

use std::net::{IpAddr, SocketAddr};

use tcplab_client::{run_client, ClientOptions, ClientReport};
use tcplab_server::{ConnectionReport, Server, ServerError, ServerOptions};

use crate::outcome::PINNED_SYSCTLS;
use crate::scenario::{IpVersion, Scenario};

/// Socket timeouts given to both programs: a broken run ends instead of hanging a batch.
const PROGRAM_TIMEOUT_MS: f64 = 5_000.0;

/// What the two programs reported.
#[derive(Debug, Default)]
pub(crate) struct Programs {
    pub server: Option<ConnectionReport>,
    pub client: Option<ClientReport>,
    pub error: Option<String>,
}

/// The sockets' cookies the programs reported (client, server).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cookies(pub Option<u64>, pub Option<u64>);

impl Cookies {
    /// The known ones.
    pub fn list(&self) -> Vec<u64> {
        [self.0, self.1].into_iter().flatten().collect()
    }

    /// (client, server).
    pub fn pair(&self) -> (Option<u64>, Option<u64>) {
        (self.0, self.1)
    }
}

impl Programs {
    /// Both sockets' cookies, as far as the programs reported them.
    pub fn cookies(&self) -> Cookies {
        Cookies(
            self.client.as_ref().and_then(|c| c.socket_cookie),
            self.server.as_ref().and_then(|s| s.socket_cookie),
        )
    }

    /// Both sockets as (local, remote, cookie), as far as the programs reported them: what
    /// an exact sock_diag lookup needs ([`tcplab_capture::ktrace::time_wait_of`]).
    pub fn sockets(&self) -> Vec<(SocketAddr, SocketAddr, u64)> {
        let client = self
            .client
            .as_ref()
            .and_then(|c| Some((c.local, c.server, c.socket_cookie?)));
        let server = self
            .server
            .as_ref()
            .and_then(|s| Some((s.local, s.peer, s.socket_cookie?)));
        [client, server].into_iter().flatten().collect()
    }

    /// No program ran: `error` says why.
    pub fn failed(error: String) -> Programs {
        Programs {
            error: Some(error),
            ..Default::default()
        }
    }
}

/// The server's options for a run of `s` listening on `address:port`: the runner's own
/// (address, port, one connection, timeouts), then every `[server]` knob where it goes.
pub(crate) fn server_options(s: &Scenario, address: IpAddr, port: u16) -> ServerOptions {
    let mut o = ServerOptions {
        address,
        port,
        count: 1,
        accept_timeout_ms: PROGRAM_TIMEOUT_MS,
        io_timeout_ms: PROGRAM_TIMEOUT_MS,
        ..ServerOptions::default()
    };
    s.server.apply(&mut o);
    o
}

/// The client's options for a run of `s`: the runner's own, then every `[client]` knob.
pub(crate) fn client_options(s: &Scenario) -> ClientOptions {
    let mut o = ClientOptions {
        count: 1,
        connect_timeout_ms: PROGRAM_TIMEOUT_MS,
        io_timeout_ms: PROGRAM_TIMEOUT_MS,
        ..ClientOptions::default()
    };
    s.client.apply(&mut o);
    o
}

/// Bind, serve one connection on a helper thread, run the client here. The calling thread must
/// be inside the namespace (threads it spawns inherit it).
pub(crate) fn exchange_here(s: &Scenario, ip: IpVersion, port: u16) -> Programs {
    let server = Server::bind(&server_options(s, ip.loopback(), port));
    let copts = client_options(s);
    let client = |addr| run_client(&copts, addr).map_err(|e| e.to_string());
    if copts.reconnect_after_ms.is_some() {
        serve_twice_and_connect(server, client)
    } else {
        serve_and_connect(server, client)
    }
}

/// Serve one connection of the bound `server` on a helper thread while `client` connects to
/// it on this one. The listening socket carries its namespace: the helper thread's own
/// namespace does not matter.
fn serve_and_connect(
    server: Result<Server, ServerError>,
    client: impl FnOnce(SocketAddr) -> Result<ClientReport, String>,
) -> Programs {
    let server = match server {
        Ok(sv) => sv,
        Err(e) => return Programs::failed(format!("server: {e}")),
    };
    let addr: SocketAddr = server.local_addr();
    std::thread::scope(|sc| {
        let h = std::thread::Builder::new()
            .name("tcplab-server".into())
            .spawn_scoped(sc, || server.serve_one());
        let h = match h {
            Ok(h) => h,
            Err(e) => return Programs::failed(format!("spawning the server thread: {e}")),
        };
        let client = client(addr);
        let server = match h.join() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("thread panicked".into()),
        };
        programs(client, server)
    })
}

/// [`serve_and_connect`] for a client that connects twice (`reconnect_after_ms`): the
/// server serves the first connection, then waits for the second, which it serves like the
/// first. A second connection the client could not make (bind or connect refused: the
/// observation) stops the listener instead, so that nothing waits for it.
fn serve_twice_and_connect(
    server: Result<Server, ServerError>,
    client: impl FnOnce(SocketAddr) -> Result<ClientReport, String>,
) -> Programs {
    let server = match server {
        Ok(sv) => sv,
        Err(e) => return Programs::failed(format!("server: {e}")),
    };
    let addr: SocketAddr = server.local_addr();
    std::thread::scope(|sc| {
        let server = &server;
        let h = std::thread::Builder::new()
            .name("tcplab-server".into())
            .spawn_scoped(sc, move || (server.serve_one(), server.serve_one()));
        let h = match h {
            Ok(h) => h,
            Err(e) => return Programs::failed(format!("spawning the server thread: {e}")),
        };
        let client = client(addr);
        let connected_again = client
            .as_ref()
            .is_ok_and(|c| c.calls.reconnect_connect == Some(tcplab_client::CallResult::Ok));
        if !connected_again {
            // Wakes the second accept (EINVAL); its error is expected, not reported.
            let _ = server.stop_accepting();
        }
        let first = match h.join() {
            Ok((first, second)) => {
                let second = second.map(|_| ()).map_err(|e| e.to_string());
                match (first.map_err(|e| e.to_string()), second) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) if connected_again => {
                        Err(format!("the second connection: {e}"))
                    }
                    (Ok(r), _) => Ok(r),
                }
            }
            Err(_) => Err("thread panicked".into()),
        };
        programs(client, first)
    })
}

/// What both programs reported, errors joined.
pub(crate) fn programs(
    client: Result<ClientReport, String>,
    server: Result<ConnectionReport, String>,
) -> Programs {
    let mut p = Programs::default();
    let mut errs = Vec::new();
    match client {
        Ok(c) => p.client = Some(c),
        Err(e) => errs.push(format!("client: {e}")),
    }
    match server {
        Ok(r) => p.server = Some(r),
        Err(e) => errs.push(format!("server: {e}")),
    }
    if !errs.is_empty() {
        p.error = Some(errs.join("; "));
    }
    p
}

/// Write a `net.*` sysctl from the calling thread, which must be inside the run's namespace
/// (`/proc/sys/net` resolves against the calling thread's namespace). Avoids the extra thread
/// per key of `Netns::set_sysctl` on the fresh-mode hot path.
fn set_sysctl_here(name: &str, value: &str) -> Result<(), String> {
    std::fs::write(crate::scenario::sysctl_path(name), value)
        .map_err(|e| format!("sysctl {name}={value}: {e}"))
}

/// Prepare the calling thread's namespace for a loopback run: the sysctls, and the
/// `[netns]` settings (the loopback route's metrics).
pub(crate) fn prepare_here(s: &Scenario) -> Result<(), String> {
    set_sysctls_here(s)?;
    let route = s.netns.loopback_route();
    if !route.is_empty() {
        tcplab_capture::netns::set_loopback_route_metrics_here(route).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Write the pinned and the scenario's sysctls from the calling thread (inside a namespace);
/// the failures, joined, if any.
pub(crate) fn set_sysctls_here(s: &Scenario) -> Result<(), String> {
    let mut failed = Vec::new();
    for (k, v) in PINNED_SYSCTLS
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(s.sysctl.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        if let Err(e) = set_sysctl_here(k, v) {
            failed.push(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
