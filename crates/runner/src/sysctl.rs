//! Checking a scenario's `[sysctl]` table before any run: every key must exist *inside a
//! fresh network namespace* (keys that are not per-namespace are absent there) and take the
//! value. A bad key would otherwise fail every run of the batch, one by one, as `open/none`.

use tcplab_capture::{Netns, NetnsError};

use crate::outcome::RunError;
use crate::scenario::{Scenario, ScenarioError};

/// Try every scenario's sysctls in one throwaway namespace. `Ok(Err(_))` names the file, line
/// and key of the first that does not work; `Err(_)` means the namespace itself could not be
/// made (privileges).
pub fn check(scenarios: &[Scenario]) -> Result<Result<(), ScenarioError>, RunError> {
    if scenarios.iter().all(|s| s.sysctl.is_empty()) {
        return Ok(Ok(()));
    }
    let ns = Netns::new().map_err(|e| {
        if e.is_permission_denied() {
            RunError::PermissionDenied(format!("cannot create a private network namespace: {e}"))
        } else {
            RunError::Setup(e.to_string())
        }
    })?;
    for s in scenarios {
        // A key this kernel lacks (older than since_kernel) cannot be tried: the scenario is
        // skipped where it is run ([`Scenario::skip_reason`]); a caller that runs it anyway
        // is refused with the same words.
        if let (Some(why), Some(key)) = (s.skip_reason(), s.sysctl_missing.first()) {
            let (line, column) = s.sysctl_at.get(key).copied().unwrap_or((0, 0));
            return Ok(Err(ScenarioError::At {
                path: s.path.clone(),
                line,
                column,
                message: why,
            }));
        }
        for (key, value) in &s.sysctl {
            let reason = match ns.set_sysctl(key, value) {
                Ok(()) => continue,
                Err(NetnsError::Sysctl { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    "not a per-namespace key (absent in a fresh network namespace)".to_owned()
                }
                // Refused as a write, not as a value (which is EINVAL): the key exists in the
                // namespace but only as the host's, read-only there (net.core.rmem_max).
                Err(NetnsError::Sysctl { source, .. })
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied
                    ) =>
                {
                    "not settable per namespace (read-only inside a network namespace: the host's key)"
                        .to_owned()
                }
                Err(NetnsError::Sysctl { source, .. }) => {
                    format!(
                        "the kernel refuses the value `{}` ({source})",
                        crate::shown::text(value)
                    )
                }
                Err(NetnsError::SysctlMismatch { read, .. }) => {
                    format!(
                        "the kernel does not keep the value `{}` (reads back `{}`)",
                        crate::shown::text(value),
                        crate::shown::text(&read)
                    )
                }
                Err(e) => e.to_string(),
            };
            let (line, column) = s.sysctl_at.get(key).copied().unwrap_or((0, 0));
            return Ok(Err(ScenarioError::At {
                path: s.path.clone(),
                line,
                column,
                message: format!("sysctl `{key}`: {reason}"),
            }));
        }
    }
    Ok(Ok(()))
}
