//! What the delay link's errors name, beneath both builders of the link: the TUN one
//! (`link.rs`) and the veth one (`veth.rs`), which `link.rs` drives, so that `veth.rs` needs
//! nothing from `link.rs`. Public under `tcplab_capture::link`.

use std::io;
use std::time::Duration;

use crate::netns::NetnsError;

/// TUN device on the client side (the capture device).
pub const CLIENT_DEVICE: &str = "tun-c";
/// TUN device on the server side.
pub const SERVER_DEVICE: &str = "tun-s";

/// The longest delay accepted: longer is a typo, and would outlast every socket timeout.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// Why a link could not be built or stopped cleanly.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Creating or entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The delay is out of range.
    #[error("link delay {0:?} is longer than the maximum {MAX_DELAY:?}")]
    BadDelay(Duration),
    /// Creating or configuring a TUN device failed.
    #[error("{device}: {op}: {source}")]
    Tun {
        /// `tun-c` or `tun-s`.
        device: &'static str,
        /// The failing operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The relay thread could not be started, failed, or panicked.
    #[error("link relay: {0}")]
    Relay(String),
}

impl LinkError {
    /// True when the failure is a missing privilege (CAP_SYS_ADMIN / CAP_NET_ADMIN).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            LinkError::Netns(e) => e.is_permission_denied(),
            LinkError::Tun { source, .. } => source.kind() == io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}
