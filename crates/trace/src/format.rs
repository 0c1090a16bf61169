//! The capture formats: plain data, a leaf (imports nothing of the crate).

/// Capture file formats tcplab reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// Classic libpcap file.
    Pcap,
    /// pcapng.
    PcapNg,
    /// Text printed by `tcpdump -nn`.
    Tcpdump,
}

impl Format {
    /// The contract's spelling (`"pcap"`, `"pcapng"`, `"tcpdump"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
            Format::Tcpdump => "tcpdump",
        }
    }
}
