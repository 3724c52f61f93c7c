//! The harness the libraries' unit tests share: scripts run in a fresh VM
//! with one library installed, and results or errors come back as the
//! text a script would see in Redis.
//!
//! [`describe`] and [`check`] run an expression as
//! `return d(<expression>)` with the `d` helper of [`DESCRIBE`] prepended
//! on the same line, so positions read `user_script:1:`, as they did when
//! the expected values were recorded through EVAL on redis-server 7.0.15.
//! A result is `ok` and the values (numbers as `%.17g`, strings quoted with
//! bytes outside printable ASCII as `\xHH`); an error is `err` and the
//! reply text without Redis's `ERR ` and ` script: <sha>, on ...`.

use mlua::{Lua, Value};

/// A library's `install`.
pub(super) type Install = fn(&Lua) -> mlua::Result<()>;

/// The `d` helper prepended to every expression [`describe`] runs.
pub(super) const DESCRIBE: &str = r#"local function esc(s) return (string.gsub(s, '[%z\1-\31"\\\127-\255]', function(c) return string.format('\\x%02x', string.byte(c)) end)) end local function d(...) local o = {} for i = 1, select('#', ...) do local v = select(i, ...) local t = type(v) if t == 'userdata' then v, t = bare_error(v), 'string' end if t == 'number' then o[#o + 1] = string.format('%.17g', v) elseif t == 'string' then o[#o + 1] = '"' .. esc(v) .. '"' else o[#o + 1] = t .. ':' .. tostring(v) end end return 'ok ' .. table.concat(o, ' ') end "#;

/// The message a script sees, without mlua's wrapping (what the
/// sandbox's `pcall` and error replies show).
pub(super) fn bare_message(err: &mlua::Error) -> String {
    match err {
        mlua::Error::RuntimeError(text) => text.clone(),
        mlua::Error::CallbackError { cause, .. } => bare_message(cause),
        mlua::Error::WithContext { cause, .. } => bare_message(cause),
        other => other.to_string(),
    }
}

/// Runs `source` as a script chunk in a fresh VM with the library that
/// `install` installs, and a global `bare_error` that turns an error
/// value into its [`bare_message`]; the chunk's string result, or `err`
/// and the error's message.
pub(super) fn run_script(install: Install, source: &str) -> String {
    let lua = Lua::new();
    install(&lua).expect("install");
    let bare_error = lua
        .create_function(|_, error: Value| {
            Ok(match error {
                Value::Error(err) => bare_message(&err),
                other => format!("{other:?}"),
            })
        })
        .expect("bare_error");
    lua.globals()
        .set("bare_error", bare_error)
        .expect("set bare_error");
    match lua.load(source).set_name("@user_script").eval::<String>() {
        Ok(text) => text,
        Err(err) => format!("err {}", bare_message(&err)),
    }
}

/// What `return d(<expression>)` gives, as Redis's EVAL reply was recorded.
pub(super) fn describe(install: Install, expression: &str) -> String {
    run_script(install, &format!("{DESCRIBE}return d({expression})"))
}

/// Asserts that every `(expression, expected)` case [`describe`]s as
/// expected, listing all mismatches at once.
pub(super) fn check(install: Install, cases: &[(&str, &str)]) {
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(expression, expected)| {
            let got = describe(install, expression);
            (got != *expected).then(|| format!("{expression}\n  redis: {expected}\n  ours:  {got}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
