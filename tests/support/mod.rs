//! Shared support for the process-level cluster tests: a harness that runs
//! real `elastickv serve` processes, and a linearizability checker for the
//! histories those tests record.
#![allow(dead_code)]

pub mod cluster;
pub mod linearizability;
pub mod paths;
