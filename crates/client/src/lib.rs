//! tcplab-client (under construction)
