//! tcplab-sweep (under construction)
