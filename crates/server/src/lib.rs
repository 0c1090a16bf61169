//! tcplab-server (under construction)
