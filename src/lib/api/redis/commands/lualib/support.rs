//! What the four libraries share: Lua 5.1's C-API conventions for errors
//! and argument checks (`luaL_error`, `luaL_argerror`, `luaL_typerror`,
//! `luaL_typename`, `luaL_checknumber`, `luaL_checkinteger`,
//! `luaL_optinteger`, `luaL_checklstring`), which Redis's C libraries use
//! for their error texts, and the x86-64 float-to-integer casts those C
//! libraries rely on.
//!
//! Invariants:
//! - error texts are Lua 5.1's: `luaL_error` puts the calling Lua line's
//!   `source:line: ` in front (nothing when a C function such as `pcall`
//!   made the call), and `luaL_argerror` names the library function as
//!   its caller spelled it (`?` when it has no name there) and does not
//!   count `self` in method calls (`calling 'f' on bad self`);
//! - argument checks accept what Lua 5.1's do: numeric strings as numbers
//!   and numbers (in their `%.14g` form) as strings;
//! - the casts give what `cvttsd2si` gives on x86-64 for every double,
//!   NaN and out-of-range values included (Rust's `as` saturates instead).

use mlua::{Lua, MultiValue, Value};

/// 2^63: the doubles that fit in an `i64` are those in [-2^63, 2^63).
pub(super) const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// 2^31: the doubles in [-2^31, 2^31) truncate into an `i32` (those just
/// below -2^31 truncate to `i32::MIN`, which out-of-range values give too).
const TWO_POW_31: f64 = 2_147_483_648.0;

/// Lua 5.1's `LUAI_MAXCSTACK`: the most stack slots one C function may use.
/// The C libraries' `lua_checkstack` calls against it decide where deep or
/// wide input fails, so their checks are replayed with this number.
pub(super) const LUA_MAX_C_STACK: usize = 8000;

/// Lua 5.1's `luaL_typename` for an argument: `no value` when it is
/// missing, and plain `userdata` for light userdata too.
pub(super) fn lua_type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        // Light and full userdata (mlua's error values included): Lua 5.1
        // has no other types.
        Some(_) => "userdata",
    }
}

/// `luaL_where(L, 1)`: the position of the Lua code that called the
/// library function, or nothing when a C function (`pcall`) called it.
fn caller_position(lua: &Lua) -> String {
    lua.inspect_stack(1, |debug| {
        let line = debug.current_line().filter(|&line| line > 0)?;
        let source = debug.source().short_src?;
        Some(format!("{source}:{line}: "))
    })
    .flatten()
    .unwrap_or_default()
}

/// `luaL_error`: the message prefixed with the caller's position.
pub(super) fn lua_error(lua: &Lua, message: &str) -> mlua::Error {
    mlua::Error::runtime(format!("{}{message}", caller_position(lua)))
}

/// `luaL_argerror` for argument `argument` (1-based, as C's `int narg`,
/// so 0 and, in method calls, -1 can be named too): names the function
/// as its call site does (`'?'` when it has no name there) and does not
/// count `self` in method calls.
pub(super) fn argument_error(lua: &Lua, argument: i64, detail: &str) -> mlua::Error {
    // Level 0 is the library function itself.
    let call_site = lua.inspect_stack(0, |debug| {
        let names = debug.names();
        (names.name.map(|name| name.into_owned()), names.name_what)
    });
    let Some((name, name_what)) = call_site else {
        return lua_error(lua, &format!("bad argument #{argument} ({detail})"));
    };
    let name = name.unwrap_or_else(|| "?".to_owned());
    let mut argument = argument;
    if name_what == Some("method") {
        argument -= 1;
        if argument == 0 {
            return lua_error(lua, &format!("calling '{name}' on bad self ({detail})"));
        }
    }
    lua_error(
        lua,
        &format!("bad argument #{argument} to '{name}' ({detail})"),
    )
}

/// `luaL_typerror` for argument `argument` (1-based) of `args`: "X
/// expected, got Y", with `no value` for a missing argument.
fn type_error(lua: &Lua, args: &MultiValue, argument: usize, expected: &str) -> mlua::Error {
    let got = lua_type_name(args.get(argument - 1));
    argument_error(
        lua,
        argument as i64,
        &format!("{expected} expected, got {got}"),
    )
}

/// `luaL_checknumber`: argument `argument` (1-based) of `args` as a
/// number; numeric strings count.
pub(super) fn check_number(lua: &Lua, args: &MultiValue, argument: usize) -> mlua::Result<f64> {
    let number = match args.get(argument - 1) {
        Some(Value::Integer(integer)) => Some(*integer as f64),
        Some(value) => lua.coerce_number(value.clone())?,
        None => None,
    };
    number.ok_or_else(|| type_error(lua, args, argument, "number"))
}

/// `luaL_checkinteger`: the number truncated as Lua 5.1 does on x86-64
/// (`lua_Integer` is a C `long` there).
pub(super) fn check_integer(lua: &Lua, args: &MultiValue, argument: usize) -> mlua::Result<i64> {
    check_number(lua, args, argument).map(truncate_to_i64)
}

/// `luaL_optinteger`: `default` when the argument is absent or nil.
pub(super) fn optional_integer(
    lua: &Lua,
    args: &MultiValue,
    argument: usize,
    default: i64,
) -> mlua::Result<i64> {
    match args.get(argument - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, argument),
    }
}

/// `luaL_checklstring`: a string, or a number converted as Lua does (its
/// `%.14g` form).
pub(super) fn check_string(
    lua: &Lua,
    args: &MultiValue,
    argument: usize,
) -> mlua::Result<mlua::String> {
    let text = match args.get(argument - 1) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(number @ (Value::Integer(_) | Value::Number(_))) => {
            lua.coerce_string(number.clone())?
        }
        _ => None,
    };
    text.ok_or_else(|| type_error(lua, args, argument, "string"))
}

/// C's `(long)d` or `(int64_t)d` as x86-64 computes it (`cvttsd2si`):
/// truncation, and `i64::MIN` for NaN and values out of range.
pub(super) fn truncate_to_i64(number: f64) -> i64 {
    if (-TWO_POW_63..TWO_POW_63).contains(&number) {
        number as i64
    } else {
        i64::MIN
    }
}

/// C's `(int)d` as x86-64 computes it: truncation, and `i32::MIN` for NaN
/// and values out of range.
pub(super) fn truncate_to_i32(number: f64) -> i32 {
    if (-TWO_POW_31..TWO_POW_31).contains(&number) {
        number as i32
    } else {
        i32::MIN
    }
}
