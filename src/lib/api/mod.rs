//! Protocol front ends: each parses its wire protocol, authenticates, calls
//! its service model and encodes replies. Nothing here touches storage
//! directly.

pub mod grpc;
pub mod redis;
