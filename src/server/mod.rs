//! Sockets: accepting connections and running each one.

pub mod connection;
pub mod limits;
pub mod listener;
pub mod response;
