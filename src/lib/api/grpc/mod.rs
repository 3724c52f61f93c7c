//! Node-to-node and admin gRPC services.
