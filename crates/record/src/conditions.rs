//! Under which conditions a batch ran (`conditions` in `run --kernel`'s lines, meta.json and
//! summary.json).

use serde::{Deserialize, Serialize};

/// The place a batch ran and what it had: racy outcomes move with these, not only with the
/// kernel, so a comparison says when they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// `host` or `qemu`.
    pub place: String,
    /// `none` (host), `kvm` or `tcg`.
    pub accel: String,
    /// CPUs the batch had.
    pub cpus: Option<u64>,
    /// Memory, MiB.
    pub memory_mib: Option<u64>,
    /// Guests: `qemu --version`'s first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu: Option<String>,
    /// Guests: where the kernel image came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_image: Option<String>,
}

impl Conditions {
    /// `qemu tcg, 1 cpu, 512 MiB`.
    pub fn describe(&self) -> String {
        let mut s = match self.place.as_str() {
            "qemu" => format!("qemu {}", self.accel),
            p => p.to_owned(),
        };
        if let Some(c) = self.cpus {
            s.push_str(&format!(", {c} cpu{}", if c == 1 { "" } else { "s" }));
        }
        if let Some(m) = self.memory_mib {
            if m >= 4096 {
                s.push_str(&format!(", {} GiB", m / 1024));
            } else {
                s.push_str(&format!(", {m} MiB"));
            }
        }
        s
    }

    /// Why `self` and `other` are not the same conditions, if they are not (the QEMU version
    /// and the image's origin are recorded, not compared).
    pub fn differs_from(&self, other: &Conditions) -> Option<String> {
        let mut why = Vec::new();
        if self.place != other.place {
            why.push(format!("place {} vs {}", self.place, other.place));
        }
        if self.accel != other.accel {
            why.push(format!("accelerator {} vs {}", self.accel, other.accel));
        }
        // "cpus 2 vs 1", not Rust's "Some(2) vs Some(1)": compare and the matrix page show it.
        let n = |v: Option<u64>| v.map_or("unknown".to_owned(), |v| v.to_string());
        if self.cpus != other.cpus {
            why.push(format!("cpus {} vs {}", n(self.cpus), n(other.cpus)));
        }
        if self.memory_mib != other.memory_mib {
            why.push(format!(
                "memory {} vs {} MiB",
                n(self.memory_mib),
                n(other.memory_mib)
            ));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// Results written before conditions were recorded.
    pub fn unknown() -> Conditions {
        Conditions {
            place: "unknown".into(),
            accel: "unknown".into(),
            cpus: None,
            memory_mib: None,
            qemu: None,
            kernel_image: None,
        }
    }
}
