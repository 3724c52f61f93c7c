//! The libraries Redis gives scripts besides Lua's own: `cjson`,
//! `cmsgpack`, `struct` and `bit`, written in Rust to behave as Redis's C
//! libraries do (results and error texts), so scripts written for Redis
//! (job queues, rate limiters...) run unchanged.
//!
//! Invariant: every run gets fresh library tables with default settings
//! (each script runs in a fresh VM), so a script that changes a setting
//! (`cjson.encode_max_depth`...) cannot affect another.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;
mod support;
#[cfg(test)]
mod test_support;

/// Installs all four libraries as globals of `lua`.
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    cjson::install(lua)?;
    cmsgpack::install(lua)?;
    structlib::install(lua)?;
    bit::install(lua)?;
    Ok(())
}
