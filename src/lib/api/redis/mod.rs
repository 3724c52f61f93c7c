//! The Redis front end: RESP2/RESP3 over TCP.
