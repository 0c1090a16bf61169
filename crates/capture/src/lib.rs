//! tcplab-capture (under construction)
