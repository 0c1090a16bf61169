//! tcplab-runner (under construction)
