//! Redis's `cjson` Lua library (lua-cjson 2.1.0 as Redis 7.0 vendors it),
//! written in Rust: `cjson.encode`, `cjson.decode`, the configuration
//! functions, `cjson.new`, `cjson.null`, `_NAME` and `_VERSION`.
//!
//! Invariants:
//! - results and error texts are byte for byte those of Redis 7.0's C
//!   library: numbers are printed with C's `%.14g` (or the configured
//!   precision), strings are escaped with lua-cjson's table (`/` becomes
//!   `\/`, bytes >= 0x80 pass through raw), numbers are read with glibc
//!   `strtod`'s grammar (hex, `inf`, `nan`...), and errors carry Lua's
//!   `luaL_error` position prefix and `luaL_argerror` wording;
//! - nesting is bounded as in C: by the configured depth limits and by
//!   the Lua stack (`lua_checkstack` fails past `LUAI_MAXCSTACK` slots),
//!   whose use is counted here as the C code would use it;
//! - nothing recurses on the Rust stack, and the Lua references held at
//!   once are bounded whatever the size or nesting (the encoder parks
//!   outer tables in a Lua table; the decoder sends events in batches to
//!   a small Lua loop that builds the tables), so big or deep documents
//!   cannot overflow the thread stack or mlua's small reference stack;
//! - each library table has its own settings (C keeps them in a closure
//!   upvalue), shared by its functions and starting at the defaults;
//! - script input never panics: every failure is a Lua error.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use super::support::{
    LUA_MAX_C_STACK, argument_error, check_number, check_string, lua_error, lua_type_name,
    truncate_to_i32, truncate_to_i64,
};

/// `cjson._NAME` and `cjson._VERSION`.
const MODULE_NAME: &str = "cjson";
const MODULE_VERSION: &str = "2.1.0";

/// [`LUA_MAX_C_STACK`] as the encoder and decoder count: the real depth
/// bound once a script raises `encode_max_depth` or `decode_max_depth`.
const LUA_MAX_C_STACK_SLOTS: i64 = LUA_MAX_C_STACK as i64;

/// The longest text `encode` builds. The script's VM could not hold a
/// longer string anyway, and the cap keeps a sparse-array setting such as
/// `encode_sparse_array(false, 0)` from filling memory with `null`s.
const MAX_ENCODED_BYTES: usize = 256 * 1024 * 1024;

/// The values of `encode_invalid_numbers` (C's `options[]`).
const INVALID_NUMBER_OPTIONS: &[&str] = &["off", "on", "null"];
/// The values of the on/off settings.
const SWITCH_OPTIONS: &[&str] = &["off", "on"];

/// lua-cjson's settings, as the C library keeps them (enumerations are
/// indexes into their option lists, limits are C `int`s).
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_sparse_convert: usize,
    encode_sparse_ratio: i32,
    encode_sparse_safe: i32,
    encode_max_depth: i32,
    /// 0: refuse NaN and Inf; 1: print them as `nan`/`inf`; 2: as `null`.
    encode_invalid_numbers: usize,
    encode_number_precision: i32,
    /// Only reported back: the C buffer reuse has no visible effect.
    encode_keep_buffer: usize,
    decode_invalid_numbers: usize,
    decode_max_depth: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            decode_invalid_numbers: 1,
            decode_max_depth: 1000,
        }
    }
}

/// What the functions of one library table share.
struct Module {
    config: Mutex<Config>,
    /// Lua's `next`, to walk an object one member at a time while deeper
    /// tables are being encoded.
    next: Function,
    /// `string.sub` as it was at install time (the builder's only
    /// dependency; a script cannot swap it afterwards).
    string_sub: Function,
    /// [`BUILDER_SOURCE`] compiled, on the first `decode` (most scripts
    /// never decode, and every script run installs the library afresh).
    builder: Mutex<Option<Function>>,
}

impl Module {
    fn config(&self) -> MutexGuard<'_, Config> {
        // Nothing panics while holding the lock; a poisoned lock still
        // holds valid settings.
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn builder(&self, lua: &Lua) -> mlua::Result<Function> {
        let mut builder = self.builder.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(builder) = builder.as_ref() {
            return Ok(builder.clone());
        }
        let compiled: Function = lua
            .load(BUILDER_SOURCE)
            .set_name("=cjson")
            .call(&self.string_sub)?;
        Ok(builder.insert(compiled).clone())
    }
}

/// Installs the library as the global `cjson` (before the sandbox makes
/// globals read-only).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let next: Function = globals.raw_get("next")?;
    let string_sub: Function = globals.raw_get::<Table>("string")?.raw_get("sub")?;
    let cjson = new_module(lua, next, string_sub)?;
    globals.raw_set(MODULE_NAME, cjson)
}

type ModuleFunction = fn(&Lua, &Module, MultiValue) -> mlua::Result<MultiValue>;

/// A library table with default settings (`cjson.new()` makes more).
fn new_module(lua: &Lua, next: Function, string_sub: Function) -> mlua::Result<Table> {
    let module = Arc::new(Module {
        config: Mutex::new(Config::default()),
        next: next.clone(),
        string_sub: string_sub.clone(),
        builder: Mutex::new(None),
    });
    let functions: [(&str, ModuleFunction); 9] = [
        ("encode", lua_encode),
        ("decode", lua_decode),
        ("encode_sparse_array", lua_encode_sparse_array),
        ("encode_max_depth", lua_encode_max_depth),
        ("decode_max_depth", lua_decode_max_depth),
        ("encode_number_precision", lua_encode_number_precision),
        ("encode_keep_buffer", lua_encode_keep_buffer),
        ("encode_invalid_numbers", lua_encode_invalid_numbers),
        ("decode_invalid_numbers", lua_decode_invalid_numbers),
    ];
    let table = lua.create_table()?;
    for (name, function) in functions {
        let module = Arc::clone(&module);
        table.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| function(lua, &module, args))?,
        )?;
    }
    table.raw_set(
        "new",
        lua.create_function(move |lua, _: MultiValue| {
            new_module(lua, next.clone(), string_sub.clone())
        })?,
    )?;
    table.raw_set("null", json_null())?;
    table.raw_set("_NAME", MODULE_NAME)?;
    table.raw_set("_VERSION", MODULE_VERSION)?;
    Ok(table)
}

/// `cjson.null`: C's NULL light userdata, so it compares equal to every
/// `null` that `decode` returns.
fn json_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

// ===== Argument checks =====

/// C's `(int)(lua_Integer)d` on x86-64, as `luaL_checkinteger` feeds an
/// `int`: out-of-range doubles become `INT64_MIN`, then the low 32 bits
/// are kept.
fn c_int_from_lua_integer(number: f64) -> i32 {
    // Keeping the low 32 bits is the point.
    truncate_to_i64(number) as i32
}

/// `luaL_checkoption` without a default: the index of the named option.
fn check_option(
    lua: &Lua,
    args: &MultiValue,
    argument: usize,
    options: &[&str],
) -> mlua::Result<usize> {
    let name = check_string(lua, args, argument)?;
    let name = name.as_bytes();
    match options
        .iter()
        .position(|option| option.as_bytes() == &name[..])
    {
        Some(index) => Ok(index),
        None => Err(argument_error(
            lua,
            argument as i64,
            &format!("invalid option '{}'", String::from_utf8_lossy(&name)),
        )),
    }
}

// ===== Configuration functions =====

/// `json_arg_init`: refuses more than `most` arguments; missing ones read
/// as nil.
fn config_arguments(lua: &Lua, mut args: MultiValue, most: usize) -> mlua::Result<MultiValue> {
    if args.len() > most {
        return Err(argument_error(
            lua,
            most as i64 + 1,
            "found too many arguments",
        ));
    }
    args.resize(most, Value::Nil);
    Ok(args)
}

/// `json_integer_option`: sets `setting` from argument `index` (when not
/// nil) within `min..=max`, and returns the setting.
fn integer_option(
    lua: &Lua,
    args: &MultiValue,
    index: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> mlua::Result<Value> {
    let value = args.get(index - 1).unwrap_or(&Value::Nil);
    if !value.is_nil() {
        let number = c_int_from_lua_integer(check_number(lua, args, index)?);
        if !(min..=max).contains(&number) {
            // lua-cjson names argument #1 here whatever the position.
            return Err(argument_error(
                lua,
                1,
                &format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = number;
    }
    Ok(Value::Number(f64::from(*setting)))
}

/// `json_enum_option` (with `bool_true` 1): booleans pick the first two
/// options; the setting is returned as a boolean for those, else by name.
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    index: usize,
    setting: &mut usize,
    options: &[&str],
) -> mlua::Result<Value> {
    match args.get(index - 1).unwrap_or(&Value::Nil) {
        Value::Nil => {}
        Value::Boolean(on) => *setting = usize::from(*on),
        _ => *setting = check_option(lua, args, index, options)?,
    }
    Ok(match *setting {
        0 => Value::Boolean(false),
        1 => Value::Boolean(true),
        other => Value::String(lua.create_string(options.get(other).copied().unwrap_or(""))?),
    })
}

fn lua_encode_sparse_array(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    let args = config_arguments(lua, args, 3)?;
    // Each setting is stored before the next argument is checked, as in C.
    let mut config = module.config();
    let convert = enum_option(
        lua,
        &args,
        1,
        &mut config.encode_sparse_convert,
        SWITCH_OPTIONS,
    )?;
    let ratio = integer_option(lua, &args, 2, &mut config.encode_sparse_ratio, 0, i32::MAX)?;
    let safe = integer_option(lua, &args, 3, &mut config.encode_sparse_safe, 0, i32::MAX)?;
    Ok(MultiValue::from_iter([convert, ratio, safe]))
}

/// A setting function of one integer option.
fn integer_setting(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
    field: fn(&mut Config) -> &mut i32,
    (min, max): (i32, i32),
) -> mlua::Result<MultiValue> {
    let args = config_arguments(lua, args, 1)?;
    let mut config = module.config();
    let value = integer_option(lua, &args, 1, field(&mut config), min, max)?;
    Ok(MultiValue::from_iter([value]))
}

/// A setting function of one enumerated option.
fn enum_setting(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
    field: fn(&mut Config) -> &mut usize,
    options: &[&str],
) -> mlua::Result<MultiValue> {
    let args = config_arguments(lua, args, 1)?;
    let mut config = module.config();
    let value = enum_option(lua, &args, 1, field(&mut config), options)?;
    Ok(MultiValue::from_iter([value]))
}

fn lua_encode_max_depth(lua: &Lua, module: &Module, args: MultiValue) -> mlua::Result<MultiValue> {
    integer_setting(
        lua,
        module,
        args,
        |c| &mut c.encode_max_depth,
        (1, i32::MAX),
    )
}

fn lua_decode_max_depth(lua: &Lua, module: &Module, args: MultiValue) -> mlua::Result<MultiValue> {
    integer_setting(
        lua,
        module,
        args,
        |c| &mut c.decode_max_depth,
        (1, i32::MAX),
    )
}

fn lua_encode_number_precision(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    integer_setting(
        lua,
        module,
        args,
        |c| &mut c.encode_number_precision,
        (1, 14),
    )
}

fn lua_encode_keep_buffer(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    enum_setting(
        lua,
        module,
        args,
        |c| &mut c.encode_keep_buffer,
        SWITCH_OPTIONS,
    )
}

fn lua_encode_invalid_numbers(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    enum_setting(
        lua,
        module,
        args,
        |c| &mut c.encode_invalid_numbers,
        INVALID_NUMBER_OPTIONS,
    )
}

fn lua_decode_invalid_numbers(
    lua: &Lua,
    module: &Module,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    enum_setting(
        lua,
        module,
        args,
        |c| &mut c.decode_invalid_numbers,
        SWITCH_OPTIONS,
    )
}

// ===== Encoding =====

fn lua_encode(lua: &Lua, module: &Module, args: MultiValue) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return Err(argument_error(lua, 1, "expected 1 argument"));
    }
    let value = args.into_iter().next().unwrap_or(Value::Nil);
    let config = *module.config();
    let mut encoder = Encoder {
        lua,
        config,
        next: &module.next,
        out: Vec::new(),
        parking: None,
    };
    encoder.encode(value)?;
    let text = lua.create_string(&encoder.out)?;
    Ok(MultiValue::from_iter([Value::String(text)]))
}

/// lua-cjson's escape of each byte in a string (`None`: copied as is).
fn escape_of(byte: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match byte {
        0..=31 => Some(CONTROL[usize::from(byte)]),
        b'"' => Some("\\\""),
        b'/' => Some("\\/"),
        b'\\' => Some("\\\\"),
        127 => Some("\\u007f"),
        _ => None,
    }
}

/// C's `printf("%.{precision}g", value)` (glibc: exact decimal expansion,
/// ties to even, `inf`/`nan` spelled in lower case), appended to `out`.
fn format_number(out: &mut Vec<u8>, value: f64, precision: usize) {
    if value.is_nan() {
        let text: &[u8] = if value.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        };
        out.extend_from_slice(text);
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-0"
        } else {
            b"0"
        });
        return;
    }
    let precision = precision.clamp(1, 17);
    // Integers with at most `precision` digits print as themselves.
    if value.fract() == 0.0 && value.abs() < 10f64.powi(precision as i32) {
        let _ = write!(ByteWriter(out), "{}", value as i64);
        return;
    }
    // Rust's `{:e}` with a precision rounds the exact value like glibc;
    // `%g` then picks the notation from the decimal exponent.
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // `%g` drops trailing zeros of the fraction.
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if negative {
        out.push(b'-');
    }
    if exponent < -4 || exponent >= precision as i64 {
        if let Some((first, rest)) = digits.split_first() {
            out.push(*first);
            if !rest.is_empty() {
                out.push(b'.');
                out.extend_from_slice(rest);
            }
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(ByteWriter(out), "e{sign}{:02}", exponent.unsigned_abs());
    } else if exponent < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
        out.extend_from_slice(&digits);
    } else {
        let integer_len = exponent as usize + 1;
        if digits.len() <= integer_len {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', integer_len - digits.len()));
        } else {
            out.extend_from_slice(&digits[..integer_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[integer_len..]);
        }
    }
}

/// Lets `write!` append to a byte buffer.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// How one table is being written.
enum Walk {
    /// `[...]`: elements `1..=len` by raw index.
    Array { len: i64, next_index: i64 },
    /// `{...}`: members in `next` order, resuming after `last_key`.
    Object { last_key: Value, wrote_member: bool },
}

/// How many of the innermost tables being written keep their Lua values
/// in Rust; outer ones are parked (see [`Encoder::park`]).
const LIVE_FRAMES: usize = 32;

/// A table being written; its Lua values are parked while it is outside
/// the innermost [`LIVE_FRAMES`].
struct EncodeFrame {
    table: Option<Table>,
    walk: Walk,
    depth: i32,
    /// Lua stack slots the C encoder would be using when it entered this
    /// table (its `lua_checkstack` counts them).
    stack_slots: i64,
}

impl EncodeFrame {
    /// C keeps an array element (1 slot) or an object key and value (2)
    /// on the stack while it encodes a member.
    fn child_stack_slots(&self) -> i64 {
        match self.walk {
            Walk::Array { .. } => self.stack_slots + 1,
            Walk::Object { .. } => self.stack_slots + 2,
        }
    }
}

struct Encoder<'a> {
    lua: &'a Lua,
    config: Config,
    next: &'a Function,
    out: Vec<u8>,
    /// Holds the tables (and object keys) of the frames outside the live
    /// window, so deep nesting does not hold Rust-side Lua references per
    /// level (mlua's reference stack has room for a few thousand only).
    parking: Option<Table>,
}

impl Encoder<'_> {
    fn encode(&mut self, root: Value) -> mlua::Result<()> {
        let mut frames: Vec<EncodeFrame> = Vec::new();
        let mut pending = Some(root);
        loop {
            if let Some(value) = pending.take() {
                match value {
                    Value::Table(table) => self.open_table(&mut frames, table)?,
                    scalar => self.append_scalar(&scalar)?,
                }
                if self.out.len() > MAX_ENCODED_BYTES {
                    return Err(mlua::Error::MemoryError("not enough memory".to_string()));
                }
            }
            let Some(frame) = frames.last_mut() else {
                return Ok(());
            };
            pending = self.next_member(frame)?;
            if pending.is_none() {
                frames.pop();
                // The frame entering the window of live frames comes back.
                if let Some(level) = frames.len().checked_sub(LIVE_FRAMES)
                    && let Some(frame) = frames.get_mut(level)
                {
                    self.unpark(level + 1, frame)?;
                }
            }
        }
    }

    /// Starts writing a table: the depth and stack checks, then the
    /// array-or-object decision (`lua_array_length`).
    fn open_table(&mut self, frames: &mut Vec<EncodeFrame>, table: Table) -> mlua::Result<()> {
        let (depth, stack_slots) = match frames.last() {
            None => (1, 1),
            Some(parent) => (parent.depth + 1, parent.child_stack_slots()),
        };
        if depth > self.config.encode_max_depth || stack_slots + 3 > LUA_MAX_C_STACK_SLOTS {
            return Err(lua_error(
                self.lua,
                &format!("Cannot serialise, excessive nesting ({depth})"),
            ));
        }
        let walk = match self.array_length(&table)? {
            Some(len) if len > 0 => {
                self.out.push(b'[');
                Walk::Array {
                    len: i64::from(len),
                    next_index: 1,
                }
            }
            _ => {
                self.out.push(b'{');
                Walk::Object {
                    last_key: Value::Nil,
                    wrote_member: false,
                }
            }
        };
        // The frame leaving the window of live frames gets parked.
        if let Some(level) = frames.len().checked_sub(LIVE_FRAMES)
            && let Some(frame) = frames.get_mut(level)
        {
            self.park(level + 1, frame)?;
        }
        frames.push(EncodeFrame {
            table: Some(table),
            walk,
            depth,
            stack_slots,
        });
        Ok(())
    }

    /// `lua_array_length`: `Some(max index)` when every key is a positive
    /// integer (C `int` arithmetic included), `None` for an object. Too
    /// sparse arrays are an error, or objects with `encode_sparse_array`'s
    /// convert flag.
    fn array_length(&self, table: &Table) -> mlua::Result<Option<i32>> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        let mut is_object = false;
        let walked = table.for_each::<Value, Value>(|key, _| {
            let index = match key {
                Value::Number(n) => n,
                Value::Integer(i) => i as f64,
                _ => f64::NAN,
            };
            if index != 0.0 && index.floor() == index && index >= 1.0 {
                if index > f64::from(max) {
                    max = truncate_to_i32(index);
                }
                items = items.wrapping_add(1);
                Ok(())
            } else {
                is_object = true;
                // Stops the walk; told apart from real errors by the flag.
                Err(mlua::Error::runtime("not an array"))
            }
        });
        if is_object {
            return Ok(None);
        }
        walked?;
        let ratio = self.config.encode_sparse_ratio;
        if ratio > 0 && max > items.wrapping_mul(ratio) && max > self.config.encode_sparse_safe {
            if self.config.encode_sparse_convert == 0 {
                return Err(lua_error(
                    self.lua,
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            return Ok(None);
        }
        Ok(Some(max))
    }

    /// Writes the separator and key of the innermost table's next member
    /// and returns its value, or closes the table and returns `None`.
    fn next_member(&mut self, frame: &mut EncodeFrame) -> mlua::Result<Option<Value>> {
        let Some(table) = frame.table.as_ref() else {
            return Err(mlua::Error::runtime("cjson: encoder lost its table"));
        };
        match &mut frame.walk {
            Walk::Array { len, next_index } => {
                if *next_index > *len {
                    self.out.push(b']');
                    return Ok(None);
                }
                if *next_index > 1 {
                    self.out.push(b',');
                }
                let value = table.raw_get::<Value>(*next_index)?;
                *next_index += 1;
                Ok(Some(value))
            }
            Walk::Object {
                last_key,
                wrote_member,
            } => {
                let (key, value) = self
                    .next
                    .call::<(Value, Value)>((table, std::mem::take(last_key)))?;
                if key.is_nil() {
                    self.out.push(b'}');
                    return Ok(None);
                }
                if *wrote_member {
                    self.out.push(b',');
                }
                *wrote_member = true;
                match &key {
                    Value::Number(_) | Value::Integer(_) => {
                        self.out.push(b'"');
                        self.append_number(&key)?;
                        self.out.extend_from_slice(b"\":");
                    }
                    Value::String(text) => {
                        self.append_string(&text.as_bytes());
                        self.out.push(b':');
                    }
                    other => {
                        return Err(lua_error(
                            self.lua,
                            &format!(
                                "Cannot serialise {}: table key must be a number or string",
                                lua_type_name(Some(other))
                            ),
                        ));
                    }
                }
                *last_key = key;
                Ok(Some(value))
            }
        }
    }

    /// Moves a frame's Lua values into the parking table (slot pair
    /// `level`) while a nested table is written.
    fn park(&mut self, level: usize, frame: &mut EncodeFrame) -> mlua::Result<()> {
        let parking = match &self.parking {
            Some(parking) => parking,
            None => self.parking.insert(self.lua.create_table()?),
        };
        let table = frame.table.take().map_or(Value::Nil, Value::Table);
        parking.raw_set(2 * level - 1, table)?;
        if let Walk::Object { last_key, .. } = &mut frame.walk {
            parking.raw_set(2 * level, std::mem::take(last_key))?;
        }
        Ok(())
    }

    /// Gives a parked frame its Lua values back.
    fn unpark(&mut self, level: usize, frame: &mut EncodeFrame) -> mlua::Result<()> {
        let Some(parking) = &self.parking else {
            return Err(mlua::Error::runtime("cjson: encoder lost its tables"));
        };
        frame.table = Some(parking.raw_get(2 * level - 1)?);
        parking.raw_set(2 * level - 1, Value::Nil)?;
        if let Walk::Object { last_key, .. } = &mut frame.walk {
            *last_key = parking.raw_get(2 * level)?;
            parking.raw_set(2 * level, Value::Nil)?;
        }
        Ok(())
    }

    fn append_scalar(&mut self, value: &Value) -> mlua::Result<()> {
        match value {
            Value::String(text) => self.append_string(&text.as_bytes()),
            Value::Number(_) | Value::Integer(_) => self.append_number(value)?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(pointer) if pointer.0.is_null() => {
                self.out.extend_from_slice(b"null")
            }
            other => {
                return Err(lua_error(
                    self.lua,
                    &format!(
                        "Cannot serialise {}: type not supported",
                        lua_type_name(Some(other))
                    ),
                ));
            }
        }
        Ok(())
    }

    fn append_string(&mut self, text: &[u8]) {
        self.out.reserve(text.len() + 2);
        self.out.push(b'"');
        for &byte in text {
            match escape_of(byte) {
                Some(escape) => self.out.extend_from_slice(escape.as_bytes()),
                None => self.out.push(byte),
            }
        }
        self.out.push(b'"');
    }

    /// `json_append_number`, for values and object keys alike.
    fn append_number(&mut self, value: &Value) -> mlua::Result<()> {
        let number = match value {
            Value::Number(n) => *n,
            Value::Integer(i) => *i as f64,
            _ => 0.0,
        };
        if !number.is_finite() {
            match self.config.encode_invalid_numbers {
                0 => {
                    return Err(lua_error(
                        self.lua,
                        "Cannot serialise number: must not be NaN or Inf",
                    ));
                }
                // Spelled out because some C libraries print "-nan".
                1 if number.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                1 => {}
                _ => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        let precision = usize::try_from(self.config.encode_number_precision).unwrap_or(14);
        format_number(&mut self.out, number, precision);
        Ok(())
    }
}

// ===== Decoding =====

fn lua_decode(lua: &Lua, module: &Module, args: MultiValue) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return Err(argument_error(lua, 1, "expected 1 argument"));
    }
    let config = *module.config();
    let text = check_string(lua, &args, 1)?;
    let json = text.as_bytes();
    // lua-cjson's guess at UTF-16/32 input: a NUL among the first 2 bytes.
    if json.len() >= 2 && (json[0] == 0 || json[1] == 0) {
        return Err(lua_error(
            lua,
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let build = module.builder(lua)?.call::<Function>(&text)?;
    let mut decoder = Decoder {
        lua,
        config,
        json: &json,
        pos: 0,
        text_range: None,
        text: Vec::new(),
        events: Vec::new(),
        build,
    };
    let value = decoder.decode()?;
    Ok(MultiValue::from_iter([value]))
}

/// lua-cjson's token types (their names appear in error messages).
#[derive(Debug, Clone, Copy, PartialEq)]
enum TokenKind {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    /// Its text is in `Decoder::text_range` or `Decoder::text`.
    String,
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A lexical error, with lua-cjson's description.
    Error(&'static str),
}

impl TokenKind {
    fn describe(self) -> &'static str {
        match self {
            TokenKind::ObjectBegin => "T_OBJ_BEGIN",
            TokenKind::ObjectEnd => "T_OBJ_END",
            TokenKind::ArrayBegin => "T_ARR_BEGIN",
            TokenKind::ArrayEnd => "T_ARR_END",
            TokenKind::String => "T_STRING",
            TokenKind::Number(_) => "T_NUMBER",
            TokenKind::Boolean(_) => "T_BOOLEAN",
            TokenKind::Null => "T_NULL",
            TokenKind::Colon => "T_COLON",
            TokenKind::Comma => "T_COMMA",
            TokenKind::End => "T_END",
            TokenKind::Error(description) => description,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    /// 0-based offset where the token (or the error) starts.
    index: usize,
}

/// An open container, as the syntax and the C stack count need it.
struct DecodeFrame {
    is_object: bool,
    /// Lua stack slots the C decoder would be using inside this container.
    stack_slots: i64,
}

impl DecodeFrame {
    /// C keeps the table, plus the pending key in an object, on the stack.
    fn child_stack_slots(&self) -> i64 {
        if self.is_object {
            self.stack_slots + 2
        } else {
            self.stack_slots + 1
        }
    }

    fn closing(&self) -> (TokenKind, &'static str) {
        if self.is_object {
            (TokenKind::ObjectEnd, "comma or object end")
        } else {
            (TokenKind::ArrayEnd, "comma or array end")
        }
    }
}

/// Builds the decoded values in Lua from the events the Rust parser
/// sends: creating tables and setting fields one mlua call at a time
/// costs a protected call each once a memory limit is set, many times
/// what this loop costs. Unescaped strings are cut from the JSON text
/// itself (with `string.sub`, passed in when the chunk is compiled); no
/// event value is nil, so `#events` counts them. Event codes (the
/// `EVENT_` constants): 1 value, 2 text range, 3 key text range, 4 key,
/// 5 container begin, 6 container end.
const BUILDER_SOURCE: &str = r#"
local sub = ...
return function(json)
  local parents, parent_keys, parent_counts = {}, {}, {}
  local depth, container, key, count, root = 0, nil, nil, 0, nil
  return function(...)
    local events, i = {...}, 1
    local n = #events
    while i <= n do
      local kind, value, complete = events[i], nil, true
      if kind == 1 then
        value, i = events[i + 1], i + 2
      elseif kind == 2 then
        value, i = sub(json, events[i + 1], events[i + 2]), i + 3
      elseif kind == 3 then
        key, complete, i = sub(json, events[i + 1], events[i + 2]), false, i + 3
      elseif kind == 4 then
        key, complete, i = events[i + 1], false, i + 2
      elseif kind == 5 then
        depth = depth + 1
        parents[depth], parent_keys[depth], parent_counts[depth] = container, key, count
        container, key, count, complete, i = {}, nil, 0, false, i + 1
      else
        value = container
        container, key, count = parents[depth], parent_keys[depth], parent_counts[depth]
        parents[depth], parent_keys[depth] = nil, nil
        depth, i = depth - 1, i + 1
      end
      if complete then
        if depth == 0 then
          root = value
        elseif key ~= nil then
          container[key], key = value, nil
        else
          count = count + 1
          container[count] = value
        end
      end
    end
    return root
  end
end
"#;

const EVENT_VALUE: f64 = 1.0;
const EVENT_TEXT: f64 = 2.0;
const EVENT_KEY_TEXT: f64 = 3.0;
const EVENT_KEY: f64 = 4.0;
const EVENT_BEGIN: f64 = 5.0;
const EVENT_END: f64 = 6.0;
/// Event values sent to the builder per call: well under the Lua stack
/// limit, and few enough Lua references held at once.
const EVENT_BATCH: usize = 1024;

struct Decoder<'a> {
    lua: &'a Lua,
    config: Config,
    json: &'a [u8],
    pos: usize,
    /// The last string token: its bytes in `json` when it had no escape,
    /// else its decoded bytes in `text`.
    text_range: Option<(usize, usize)>,
    text: Vec<u8>,
    events: Vec<Value>,
    /// The builder's step function for this document.
    build: Function,
}

/// The byte at `index`, 0 past the end: the C parser reads a
/// NUL-terminated buffer, so an embedded NUL also ends the input.
fn byte_at(json: &[u8], index: usize) -> u8 {
    json.get(index).copied().unwrap_or(0)
}

/// `strncasecmp(json + index, word, len) == 0`.
fn starts_with_ignore_case(json: &[u8], index: usize, word: &[u8]) -> bool {
    word.iter()
        .enumerate()
        .all(|(offset, &letter)| byte_at(json, index + offset).to_ascii_lowercase() == letter)
}

/// `strncmp(json + index, word, len) == 0`.
fn starts_with_at(json: &[u8], index: usize, word: &[u8]) -> bool {
    word.iter()
        .enumerate()
        .all(|(offset, &letter)| byte_at(json, index + offset) == letter)
}

fn hex_digit(byte: u8) -> Option<u32> {
    char::from(byte).to_digit(16)
}

/// `decode_hex4`: the 4 hex digits at `index`.
fn hex4(json: &[u8], index: usize) -> Option<u32> {
    (0..4).try_fold(0, |code, offset| {
        hex_digit(byte_at(json, index + offset)).map(|digit| code << 4 | digit)
    })
}

/// `codepoint_to_utf8` (every escape yields at most U+10FFFF).
fn push_utf8(out: &mut Vec<u8>, code: u32) {
    // The `as u8` casts keep the low bits of values already masked or
    // shifted into range.
    if code <= 0x7F {
        out.push(code as u8);
    } else if code <= 0x7FF {
        out.extend_from_slice(&[(code >> 6) as u8 | 0xC0, (code & 0x3F) as u8 | 0x80]);
    } else if code <= 0xFFFF {
        out.extend_from_slice(&[
            (code >> 12) as u8 | 0xE0,
            ((code >> 6) & 0x3F) as u8 | 0x80,
            (code & 0x3F) as u8 | 0x80,
        ]);
    } else {
        out.extend_from_slice(&[
            ((code >> 18) & 0x07) as u8 | 0xF0,
            ((code >> 12) & 0x3F) as u8 | 0x80,
            ((code >> 6) & 0x3F) as u8 | 0x80,
            (code & 0x3F) as u8 | 0x80,
        ]);
    }
}

impl Decoder<'_> {
    /// `lua_json_decode`: parses the whole text (raising lua-cjson's
    /// errors in its order) while the builder makes the Lua values.
    fn decode(&mut self) -> mlua::Result<Value> {
        let mut frames: Vec<DecodeFrame> = Vec::new();
        let mut token = self.next_token();
        'value: loop {
            // `token` starts a value.
            match token.kind {
                TokenKind::ObjectBegin | TokenKind::ArrayBegin => {
                    let is_object = token.kind == TokenKind::ObjectBegin;
                    let stack_slots = self.descend(&frames, is_object)?;
                    self.emit(&[Value::Number(EVENT_BEGIN)])?;
                    let frame = DecodeFrame {
                        is_object,
                        stack_slots,
                    };
                    token = self.next_token();
                    if token.kind == frame.closing().0 {
                        self.emit(&[Value::Number(EVENT_END)])?;
                    } else {
                        if is_object {
                            self.member_key(token)?;
                            token = self.next_token();
                        }
                        frames.push(frame);
                        continue 'value;
                    }
                }
                TokenKind::String => self.emit_text(false)?,
                TokenKind::Number(number) => self.emit_value(Value::Number(number))?,
                TokenKind::Boolean(boolean) => self.emit_value(Value::Boolean(boolean))?,
                TokenKind::Null => self.emit_value(json_null())?,
                _ => return Err(self.parse_error("value", token)),
            }
            // A value is complete: close the containers it completes and
            // move to the next member.
            loop {
                let Some(frame) = frames.last() else {
                    let token = self.next_token();
                    if token.kind != TokenKind::End {
                        return Err(self.parse_error("the end", token));
                    }
                    return self.flush();
                };
                let (closing, expected) = frame.closing();
                let is_object = frame.is_object;
                token = self.next_token();
                if token.kind == closing {
                    frames.pop();
                    self.emit(&[Value::Number(EVENT_END)])?;
                    continue;
                }
                if token.kind != TokenKind::Comma {
                    return Err(self.parse_error(expected, token));
                }
                token = self.next_token();
                if is_object {
                    self.member_key(token)?;
                    token = self.next_token();
                }
                continue 'value;
            }
        }
    }

    /// Queues events for the builder, sending a full batch on.
    fn emit(&mut self, events: &[Value]) -> mlua::Result<()> {
        self.events.extend_from_slice(events);
        if self.events.len() >= EVENT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn emit_value(&mut self, value: Value) -> mlua::Result<()> {
        self.emit(&[Value::Number(EVENT_VALUE), value])
    }

    /// Sends the last string token as a value or as an object key.
    fn emit_text(&mut self, is_key: bool) -> mlua::Result<()> {
        match self.text_range {
            Some((start, end)) => {
                let kind = if is_key { EVENT_KEY_TEXT } else { EVENT_TEXT };
                // `string.sub` takes 1-based inclusive positions.
                self.emit(&[
                    Value::Number(kind),
                    Value::Number((start + 1) as f64),
                    Value::Number(end as f64),
                ])
            }
            None => {
                let kind = if is_key { EVENT_KEY } else { EVENT_VALUE };
                let text = self.lua.create_string(&self.text)?;
                self.emit(&[Value::Number(kind), Value::String(text)])
            }
        }
    }

    /// Sends the queued events; returns the document once it is complete.
    fn flush(&mut self) -> mlua::Result<Value> {
        let events = MultiValue::from_vec(std::mem::take(&mut self.events));
        self.build.call(events)
    }

    /// Reads `"key" :` from `token` on (sending the key to the builder),
    /// leaving the token after the colon to the caller.
    fn member_key(&mut self, token: Token) -> mlua::Result<()> {
        if token.kind != TokenKind::String {
            return Err(self.parse_error("object key string", token));
        }
        self.emit_text(true)?;
        let colon = self.next_token();
        if colon.kind != TokenKind::Colon {
            return Err(self.parse_error("colon", colon));
        }
        Ok(())
    }

    /// `json_decode_descend`: the depth and stack checks for a new
    /// container; returns its stack slot count.
    fn descend(&self, frames: &[DecodeFrame], is_object: bool) -> mlua::Result<i64> {
        let depth = frames.len() as i64 + 1;
        let stack_slots = frames.last().map_or(1, DecodeFrame::child_stack_slots);
        let needed = if is_object { 3 } else { 2 };
        if depth <= i64::from(self.config.decode_max_depth)
            && stack_slots + needed <= LUA_MAX_C_STACK_SLOTS
        {
            return Ok(stack_slots);
        }
        Err(lua_error(
            self.lua,
            &format!(
                "Found too many nested data structures ({depth}) at character {}",
                self.pos
            ),
        ))
    }

    /// `json_throw_parse_error`.
    fn parse_error(&self, expected: &str, token: Token) -> mlua::Error {
        lua_error(
            self.lua,
            &format!(
                "Expected {expected} but found {} at character {}",
                token.kind.describe(),
                token.index + 1
            ),
        )
    }

    fn byte(&self, offset: usize) -> u8 {
        byte_at(self.json, self.pos + offset)
    }

    /// `json_next_token`.
    fn next_token(&mut self) -> Token {
        while matches!(self.byte(0), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let single = match self.byte(0) {
            b'{' => Some(TokenKind::ObjectBegin),
            b'}' => Some(TokenKind::ObjectEnd),
            b'[' => Some(TokenKind::ArrayBegin),
            b']' => Some(TokenKind::ArrayEnd),
            b',' => Some(TokenKind::Comma),
            b':' => Some(TokenKind::Colon),
            0 => {
                return Token {
                    kind: TokenKind::End,
                    index,
                };
            }
            _ => None,
        };
        if let Some(kind) = single {
            self.pos += 1;
            return Token { kind, index };
        }
        let kind = match self.byte(0) {
            b'"' => self.string_token(),
            b'-' | b'0'..=b'9' => {
                if self.config.decode_invalid_numbers == 0 && self.is_invalid_number() {
                    TokenKind::Error("invalid number")
                } else {
                    self.number_token()
                }
            }
            b't' if starts_with_at(self.json, self.pos, b"true") => {
                self.pos += 4;
                TokenKind::Boolean(true)
            }
            b'f' if starts_with_at(self.json, self.pos, b"false") => {
                self.pos += 5;
                TokenKind::Boolean(false)
            }
            b'n' if starts_with_at(self.json, self.pos, b"null") => {
                self.pos += 4;
                TokenKind::Null
            }
            // Only "numbers" lua-cjson knows are not JSON (`+1`, `inf`,
            // `nan`) get this far, so other bad tokens keep their name.
            b'+' | b'i' | b'I' | b'n' | b'N'
                if self.config.decode_invalid_numbers != 0 && self.is_invalid_number() =>
            {
                self.number_token()
            }
            _ => TokenKind::Error("invalid token"),
        };
        // Errors point where the scan stopped, other tokens where they
        // started.
        let index = if matches!(kind, TokenKind::Error(_)) {
            self.pos
        } else {
            index
        };
        Token { kind, index }
    }

    /// `json_next_string_token`; on error `pos` stays at the culprit.
    fn string_token(&mut self) -> TokenKind {
        self.pos += 1;
        let start = self.pos;
        // Most strings have no escape: they are then cut from the text.
        let plain_len = self.json[start.min(self.json.len())..]
            .iter()
            .position(|&byte| matches!(byte, b'"' | b'\\' | 0));
        if let Some(len) = plain_len
            && self.byte(len) == b'"'
        {
            self.pos += len + 1;
            self.text_range = Some((start, start + len));
            return TokenKind::String;
        }
        self.text_range = None;
        self.text.clear();
        loop {
            let mut byte = self.byte(0);
            match byte {
                b'"' => break,
                0 => return TokenKind::Error("unexpected end of string"),
                b'\\' => {
                    byte = match self.byte(1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0C,
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape() {
                                continue;
                            }
                            return TokenKind::Error("invalid unicode escape code");
                        }
                        _ => return TokenKind::Error("invalid escape code"),
                    };
                    self.pos += 1;
                }
                _ => {}
            }
            self.text.push(byte);
            self.pos += 1;
        }
        self.pos += 1;
        TokenKind::String
    }

    /// `json_append_unicode_escape` at a `\u`: one escape, or a UTF-16
    /// surrogate pair of them; lone surrogates are refused.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut code) = hex4(self.json, self.pos + 2) else {
            return false;
        };
        let mut escape_len = 6;
        if code & 0xF800 == 0xD800 {
            if code & 0x400 != 0 || self.byte(6) != b'\\' || self.byte(7) != b'u' {
                return false;
            }
            let Some(low) = hex4(self.json, self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            escape_len = 12;
        }
        push_utf8(&mut self.text, code);
        self.pos += escape_len;
        true
    }

    /// `json_is_invalid_number`: what strict JSON refuses but `strtod`
    /// reads (leading `+` or zeros, hex, inf, nan).
    fn is_invalid_number(&self) -> bool {
        let mut index = self.pos;
        match byte_at(self.json, index) {
            b'+' => return true,
            b'-' => index += 1,
            _ => {}
        }
        let first = byte_at(self.json, index);
        if first == b'0' {
            let second = byte_at(self.json, index + 1);
            return second | 0x20 == b'x' || second.is_ascii_digit();
        }
        // C compares a signed char: bytes >= 0x80 count as "ordinary".
        if (first as i8) <= b'9' as i8 {
            return false;
        }
        starts_with_ignore_case(self.json, index, b"inf")
            || starts_with_ignore_case(self.json, index, b"nan")
    }

    /// `json_next_number_token`.
    fn number_token(&mut self) -> TokenKind {
        match parse_c_double(self.json, self.pos) {
            Some((number, end)) => {
                self.pos = end;
                TokenKind::Number(number)
            }
            None => TokenKind::Error("invalid number"),
        }
    }
}

// ===== glibc strtod =====

/// glibc `strtod` in the C locale at `start`: the value and the index
/// after what it read, or `None` when it reads nothing. Accepts decimal
/// (correctly rounded), hexadecimal (`0x1.8p3`), `inf`/`infinity` and
/// `nan`/`nan(chars)`, in any case, with an optional sign.
fn parse_c_double(json: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut index = start;
    while matches!(
        byte_at(json, index),
        b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r'
    ) {
        index += 1;
    }
    let negative = byte_at(json, index) == b'-';
    if matches!(byte_at(json, index), b'+' | b'-') {
        index += 1;
    }
    let signed = |value: f64| if negative { -value } else { value };
    if starts_with_ignore_case(json, index, b"inf") {
        index += 3;
        if starts_with_ignore_case(json, index, b"inity") {
            index += 5;
        }
        return Some((signed(f64::INFINITY), index));
    }
    if starts_with_ignore_case(json, index, b"nan") {
        index += 3;
        if byte_at(json, index) == b'(' {
            let mut close = index + 1;
            while byte_at(json, close).is_ascii_alphanumeric() || byte_at(json, close) == b'_' {
                close += 1;
            }
            if byte_at(json, close) == b')' {
                index = close + 1;
            }
        }
        return Some((signed(f64::NAN), index));
    }
    if byte_at(json, index) == b'0'
        && byte_at(json, index + 1) | 0x20 == b'x'
        && let Some((value, end)) = parse_hex_double(json, index + 2)
    {
        return Some((signed(value), end));
    }
    let (value, end) = parse_decimal_double(json, index)?;
    Some((signed(value), end))
}

/// The unsigned decimal part of `strtod`: digits, optional fraction,
/// optional exponent (only taken when it has digits).
fn parse_decimal_double(json: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut index = start;
    let mut digits = 0;
    while byte_at(json, index).is_ascii_digit() {
        index += 1;
        digits += 1;
    }
    if byte_at(json, index) == b'.' {
        index += 1;
        while byte_at(json, index).is_ascii_digit() {
            index += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if byte_at(json, index) | 0x20 == b'e' {
        let mut exponent_end = index + 1;
        if matches!(byte_at(json, exponent_end), b'+' | b'-') {
            exponent_end += 1;
        }
        if byte_at(json, exponent_end).is_ascii_digit() {
            while byte_at(json, exponent_end).is_ascii_digit() {
                exponent_end += 1;
            }
            index = exponent_end;
        }
    }
    // Only ASCII digits, '.', 'e' and a sign were taken: Rust's correctly
    // rounded parser reads the same grammar.
    let text = std::str::from_utf8(json.get(start..index)?).ok()?;
    let normalized;
    let text = if text.starts_with('.') {
        normalized = format!("0{text}");
        &normalized
    } else {
        text
    };
    text.parse::<f64>().ok().map(|value| (value, index))
}

/// The part of `strtod` after `0x`: hex digits with an optional fraction
/// and binary exponent, rounded to nearest even. `None` when no hex digit
/// follows (then `strtod` reads just the `0`).
fn parse_hex_double(json: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut index = start;
    // The first 16 significant digits, exactly; the rest only matter as
    // "something nonzero was dropped" for rounding.
    let mut mantissa: u64 = 0;
    let mut kept_digits = 0;
    let mut dropped_nonzero = false;
    let mut exponent: i64 = 0;
    let mut any_digit = false;
    let mut in_fraction = false;
    loop {
        let byte = byte_at(json, index);
        if byte == b'.' && !in_fraction {
            in_fraction = true;
            index += 1;
            continue;
        }
        let Some(digit) = hex_digit(byte) else { break };
        any_digit = true;
        index += 1;
        if mantissa == 0 && digit == 0 {
            if in_fraction {
                exponent -= 4;
            }
            continue;
        }
        if kept_digits < 16 {
            mantissa = mantissa << 4 | u64::from(digit);
            kept_digits += 1;
            if in_fraction {
                exponent -= 4;
            }
        } else {
            dropped_nonzero |= digit != 0;
            if !in_fraction {
                exponent += 4;
            }
        }
    }
    if !any_digit {
        return None;
    }
    if byte_at(json, index) | 0x20 == b'p' {
        let mut exponent_end = index + 1;
        let negative = byte_at(json, exponent_end) == b'-';
        if matches!(byte_at(json, exponent_end), b'+' | b'-') {
            exponent_end += 1;
        }
        if byte_at(json, exponent_end).is_ascii_digit() {
            let mut written: i64 = 0;
            while let Some(digit) = char::from(byte_at(json, exponent_end)).to_digit(10) {
                // Far beyond any double's range; saturating keeps the
                // result (0 or inf) right.
                written = (written * 10 + i64::from(digit)).min(1 << 40);
                exponent_end += 1;
            }
            exponent += if negative { -written } else { written };
            index = exponent_end;
        }
    }
    Some((binary_to_double(mantissa, dropped_nonzero, exponent), index))
}

/// `mantissa * 2^exponent` (plus a nonzero tail if `sticky`), rounded to
/// the nearest double, ties to even, with subnormals and overflow to inf.
fn binary_to_double(mantissa: u64, sticky: bool, exponent: i64) -> f64 {
    if mantissa == 0 {
        return 0.0;
    }
    let shift = mantissa.leading_zeros();
    let mantissa = u128::from(mantissa << shift);
    // Exponent of the leading bit.
    let top = exponent - i64::from(shift) + 63;
    if top > 1023 {
        return f64::INFINITY;
    }
    // Bits that fit: 53 for normal numbers, fewer below 2^-1022.
    let kept = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let dropped = (64 - kept).clamp(0, 127) as u32;
    let mut rounded = mantissa >> dropped;
    let remainder = mantissa & ((1u128 << dropped) - 1);
    let half = 1u128 << (dropped - 1);
    if remainder > half || (remainder == half && (sticky || rounded & 1 == 1)) {
        rounded += 1;
    }
    if top >= -1022 {
        let (rounded, top) = if rounded >> 53 != 0 {
            (rounded >> 1, top + 1)
        } else {
            (rounded, top)
        };
        if top > 1023 {
            return f64::INFINITY;
        }
        let biased = (top + 1023) as u64;
        f64::from_bits(biased << 52 | (rounded as u64 & ((1 << 52) - 1)))
    } else {
        // Subnormal: the bits are the mantissa itself (a carry into bit
        // 52 is exactly the smallest normal number).
        f64::from_bits(rounded as u64)
    }
}

#[cfg(test)]
mod tests {
    //! Expected values come from runs of redis-server 7.0.15 (its vendored
    //! lua-cjson), through `EVAL` with the same Lua code on line 1, so
    //! error positions read `user_script:1:` there as here.

    use super::super::test_support::bare_message;
    use super::*;

    fn new_lua() -> Lua {
        let lua = Lua::new();
        // As in the script sandbox: protected calls everywhere.
        lua.set_memory_limit(256 * 1024 * 1024).unwrap();
        install(&lua).unwrap();
        lua
    }

    /// Runs `code` as a script's line 1; the result as bytes, or the
    /// error message.
    fn run_on(lua: &Lua, code: &str) -> Result<Vec<u8>, String> {
        let value: Value = lua
            .load(code)
            .set_name("@user_script")
            .eval()
            .map_err(|err| bare_message(&err))?;
        match lua.coerce_string(value.clone()).unwrap() {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Ok(format!("<{}>", lua_type_name(Some(&value))).into_bytes()),
        }
    }

    fn run(code: &str) -> Result<String, String> {
        run_on(&new_lua(), code).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    fn ok(code: &str) -> String {
        run(code).unwrap_or_else(|err| panic!("{code}: {err}"))
    }

    fn err(code: &str) -> String {
        match run(code) {
            Err(text) => text,
            Ok(value) => panic!("{code}: expected an error, got {value}"),
        }
    }

    /// Each `(input, message)`: the script `script(input)` fails with
    /// `message` at its line 1.
    fn assert_line_one_errors(cases: &[(&str, &str)], script: impl Fn(&str) -> String) {
        for (input, expected) in cases {
            assert_eq!(
                err(&script(input)),
                format!("user_script:1: {expected}"),
                "{input}"
            );
        }
    }

    #[test]
    fn encodes_scalars_arrays_and_objects() {
        assert_eq!(ok("return cjson.encode({1,2,3})"), "[1,2,3]");
        assert_eq!(ok("return cjson.encode({})"), "{}");
        assert_eq!(ok("return cjson.encode({a=1})"), r#"{"a":1}"#);
        assert_eq!(
            ok("return cjson.encode({a={b={c={1,2,{d=true}}}}})"),
            r#"{"a":{"b":{"c":[1,2,{"d":true}]}}}"#
        );
        assert_eq!(ok("return cjson.encode(nil)"), "null");
        assert_eq!(ok("return cjson.encode(cjson.null)"), "null");
        assert_eq!(
            ok("return cjson.encode(true) .. cjson.encode(false)"),
            "truefalse"
        );
        assert_eq!(ok("return cjson.encode({1,nil,3})"), "[1,null,3]");
        assert_eq!(ok("return cjson.encode('')"), r#""""#);
        assert_eq!(
            ok("return cjson.encode({{}, {{}}, {a={}}})"),
            r#"[{},[{}],{"a":{}}]"#
        );
        assert_eq!(
            ok("return cjson.encode({1, 'two', {three=3}, false, cjson.null})"),
            r#"[1,"two",{"three":3},false,null]"#
        );
        // Number keys become strings; a mixed table is an object.
        assert_eq!(ok("return cjson.encode({[0]=1})"), r#"{"0":1}"#);
        assert_eq!(ok("return cjson.encode({[-1]=1})"), r#"{"-1":1}"#);
        assert_eq!(
            ok("return cjson.encode({[1]=1, [1.5]=1})"),
            r#"{"1":1,"1.5":1}"#
        );
        assert_eq!(ok("return cjson.encode({[1]=1, x=1})"), r#"{"1":1,"x":1}"#);
    }

    #[test]
    fn objects_follow_lua_next_order() {
        assert_eq!(
            ok("local t = {} for i = 1, 12 do t['k' .. i] = i end return cjson.encode(t)"),
            r#"{"k12":12,"k9":9,"k8":8,"k1":1,"k3":3,"k2":2,"k10":10,"k11":11,"k6":6,"k7":7,"k4":4,"k5":5}"#
        );
        assert_eq!(
            ok("return cjson.encode({a = 1, b = 2, c = 3, [1] = 4, [2.5] = 5, ['10'] = 6})"),
            r#"{"a":1,"c":3,"b":2,"1":4,"2.5":5,"10":6}"#
        );
        assert_eq!(
            ok(
                r#"return cjson.encode(cjson.decode('{"z":1,"y":2,"x":3,"w":{"q":1,"p":2},"v":[3,2,1]}'))"#
            ),
            r#"{"y":2,"x":3,"z":1,"w":{"q":1,"p":2},"v":[3,2,1]}"#
        );
    }

    #[test]
    fn strings_use_lua_cjson_escapes() {
        let encoded = run_on(
            &new_lua(),
            r#"return cjson.encode('a/b\\c"' .. string.char(0,1,7,8,9,10,11,12,13,14,31,32,127,128,200,255))"#,
        )
        .unwrap();
        let mut expected =
            br#""a\/b\\c\"\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001f \u007f"#.to_vec();
        expected.extend_from_slice(&[128, 200, 255, b'"']);
        assert_eq!(encoded, expected);
        assert_eq!(
            ok(r"return cjson.encode({['a\0b']=1})"),
            r#"{"a\u0000b":1}"#
        );
        assert_eq!(ok("return cjson.encode({['/']='/'})"), r#"{"\/":"\/"}"#);
    }

    #[test]
    fn numbers_print_like_c_percent_g() {
        assert_eq!(
            ok(
                "return cjson.encode({-0, 0.1, 1/3, 1e15, 1e14, 123456789012345, 1e-5, 1e-4, 2^53, 1e300, 5e-324, -1.5e-7, 2^63, -2^31, 1e21, 0.1+0.2, 100, 1e100, 1.7976931348623157e308, 2.2250738585072014e-308})"
            ),
            "[-0,0.1,0.33333333333333,1e+15,1e+14,1.2345678901234e+14,1e-05,0.0001,9.007199254741e+15,1e+300,4.9406564584125e-324,-1.5e-07,9.2233720368548e+18,-2147483648,1e+21,0.3,100,1e+100,1.7976931348623e+308,2.2250738585072e-308]"
        );
        assert_eq!(
            ok(
                "cjson.encode_number_precision(3) return cjson.encode({-0, 0.1, 1/3, 1e15, 1e14, 123456789012345, 1e-5, 1e-4, 2^53, 1e300, 5e-324, -1.5e-7, 0.25, 2.5, 1235, 1245, 999.5, 99.95, 0.0001234, 0.00001234})"
            ),
            "[-0,0.1,0.333,1e+15,1e+14,1.23e+14,1e-05,0.0001,9.01e+15,1e+300,4.94e-324,-1.5e-07,0.25,2.5,1.24e+03,1.24e+03,1e+03,100,0.000123,1.23e-05]"
        );
        // Exact ties round to even, as glibc does.
        assert_eq!(
            ok(
                "cjson.encode_number_precision(1) return cjson.encode({0.25, 2.5, 0.35, 15, 25, 0.5, 1.5, 9.5, 95, 0.95, 0.05, 0.15, 1e-5})"
            ),
            "[0.2,2,0.3,2e+01,2e+01,0.5,2,1e+01,1e+02,0.9,0.05,0.1,1e-05]"
        );
        assert_eq!(
            ok("cjson.encode_number_precision(2) return cjson.encode({[1.234]=1})"),
            r#"{"1.2":1}"#
        );
    }

    #[test]
    fn number_format_matches_c_sprintf_for_every_precision() {
        // The VM's `string.format` is C's sprintf.
        let lua = new_lua();
        let sprintf: Function = lua.load("return string.format").eval().unwrap();
        let mut values = vec![0.5, 1.5, 2.5, 0.125, 1e-5, 123456.0, 1e15, 1e16, 5e-324];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = f64::from_bits(seed);
            if value.is_finite() {
                values.push(value);
            }
            values.push((seed % 1_000_000) as f64 / 1000.0);
        }
        for precision in 1..=14 {
            for &value in &values {
                let expected: String = sprintf.call((format!("%.{precision}g"), value)).unwrap();
                let mut ours = Vec::new();
                format_number(&mut ours, value, precision);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    expected,
                    "{value:e} at {precision}"
                );
            }
        }
    }

    #[test]
    fn invalid_numbers_follow_the_setting() {
        assert_eq!(
            err("return cjson.encode(0/0)"),
            "user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            err("return cjson.encode({[math.huge]=1})"),
            "user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            ok("cjson.encode_invalid_numbers(true) return cjson.encode({0/0, 1/0, -1/0, -(0/0)})"),
            "[nan,inf,-inf,nan]"
        );
        assert_eq!(
            ok("cjson.encode_invalid_numbers('null') return cjson.encode({0/0, 1/0, -1/0})"),
            "[null,null,null]"
        );
        assert_eq!(
            ok("cjson.encode_invalid_numbers(true) return cjson.encode({[math.huge]=1})"),
            r#"{"inf":1}"#
        );
        assert_eq!(
            ok("cjson.encode_invalid_numbers('null') return cjson.encode({[math.huge]=1})"),
            r#"{"null":1}"#
        );
    }

    #[test]
    fn sparse_arrays_follow_ratio_and_safe_limit() {
        let sparse = "user_script:1: Cannot serialise table: excessively sparse array";
        assert_eq!(err("return cjson.encode({[1]=1,[2]=2,[11]=1})"), sparse);
        assert_eq!(
            ok("return cjson.encode({[1]=1,[2]=2,[10]=1})"),
            "[1,2,null,null,null,null,null,null,null,1]"
        );
        assert_eq!(
            ok("return cjson.encode({[1]=1,[2]=2,[3]=3,[4]=4,[5]=5,[6]=6,[12]=1})"),
            "[1,2,3,4,5,6,null,null,null,null,null,1]"
        );
        assert_eq!(
            err("return cjson.encode({[1]=1,[2]=2,[3]=3,[4]=4,[5]=5,[13]=1})"),
            sparse
        );
        assert_eq!(
            ok(
                "cjson.encode_sparse_array(true) return cjson.encode({[1]=1,[2]=2,[3]=3,[4]=4,[5]=5,[13]=1})"
            ),
            r#"{"2":2,"3":3,"1":1,"4":4,"5":5,"13":1}"#
        );
        assert_eq!(
            ok("cjson.encode_sparse_array(false, 0) return cjson.encode({[20]=1})"),
            format!("[{}1]", "null,".repeat(19))
        );
        assert_eq!(
            ok("cjson.encode_sparse_array(false, 3, 0) return cjson.encode({[1]=1, [3]=1})"),
            "[1,null,1]"
        );
        assert_eq!(
            ok("cjson.encode_sparse_array(false, 3, 0) return cjson.encode({[1]=1, [6]=1})"),
            "[1,null,null,null,null,1]"
        );
        assert_eq!(
            err("cjson.encode_sparse_array(false, 3, 0) return cjson.encode({[1]=1, [7]=1})"),
            sparse
        );
        // C keeps the largest index in an `int`: from 2^31 on it reads as
        // INT_MIN and the table becomes an object.
        assert_eq!(
            ok("return cjson.encode({[2147483648]=1})"),
            r#"{"2147483648":1}"#
        );
        assert_eq!(
            ok("return cjson.encode({[4294967301]=1})"),
            r#"{"4294967301":1}"#
        );
        assert_eq!(err("return cjson.encode({[2147483647]=1})"), sparse);
    }

    #[test]
    fn unsupported_values_and_keys_are_refused() {
        assert_eq!(
            err("return cjson.encode(type)"),
            "user_script:1: Cannot serialise function: type not supported"
        );
        assert_eq!(
            err("return cjson.encode({a=function() end})"),
            "user_script:1: Cannot serialise function: type not supported"
        );
        assert_eq!(
            err("return cjson.encode(coroutine.create(function() end))"),
            "user_script:1: Cannot serialise thread: type not supported"
        );
        assert_eq!(
            err("return cjson.encode({[true]=1})"),
            "user_script:1: Cannot serialise boolean: table key must be a number or string"
        );
        assert_eq!(
            err("return cjson.encode({[{}]=1})"),
            "user_script:1: Cannot serialise table: table key must be a number or string"
        );
        assert_eq!(
            err("return cjson.encode({[cjson.null]=1})"),
            "user_script:1: Cannot serialise userdata: table key must be a number or string"
        );
    }

    #[test]
    fn encode_depth_is_bounded_like_c() {
        assert_eq!(
            err(
                "local t = {} local c = t for i=1,1000 do c[1] = {} c = c[1] end return cjson.encode(t)"
            ),
            "user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        assert_eq!(
            ok(
                "local t = {} local c = t for i=1,999 do c[1] = {} c = c[1] end return #cjson.encode(t)"
            ),
            "2000"
        );
        assert_eq!(
            err("local t = {} t[1] = t return cjson.encode(t)"),
            "user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        assert_eq!(
            err("cjson.encode_max_depth(2) return cjson.encode({{{}}})"),
            "user_script:1: Cannot serialise, excessive nesting (3)"
        );
        // Past the configured depth, Lua's C stack limit (8000 slots)
        // stops the C encoder: arrays use 1 slot a level, objects 2.
        assert_eq!(
            err(
                "cjson.encode_max_depth(100000) local t = {} local c = t for i=1,9000 do c[1] = {} c = c[1] end return cjson.encode(t)"
            ),
            "user_script:1: Cannot serialise, excessive nesting (7998)"
        );
        assert_eq!(
            err(
                "cjson.encode_max_depth(100000) local t = {} local c = t for i=1,9000 do c.a = {} c = c.a end return cjson.encode(t)"
            ),
            "user_script:1: Cannot serialise, excessive nesting (4000)"
        );
        assert_eq!(
            err(
                "cjson.encode_max_depth(100000) local t = {} local c = t for i=1,9000 do c.a = {{}} c = c.a[1] end return cjson.encode(t)"
            ),
            "user_script:1: Cannot serialise, excessive nesting (5332)"
        );
        assert_eq!(
            ok(
                "cjson.encode_max_depth(100000) local t = {} local c = t for i=1,7996 do c[1] = {} c = c[1] end return #cjson.encode(t)"
            ),
            "15994"
        );
    }

    #[test]
    fn decodes_json_documents() {
        assert_eq!(
            ok(r#"return cjson.encode(cjson.decode('{"a":[1,{"b":null}],"c":"d"}'))"#),
            r#"{"a":[1,{"b":null}],"c":"d"}"#
        );
        assert_eq!(
            ok("return cjson.encode(cjson.decode(' [ true , false , null ] '))"),
            "[true,false,null]"
        );
        assert_eq!(ok("return cjson.decode('[[1],[2,[3]]]')[2][2][1]"), "3");
        assert_eq!(ok(r#"return cjson.decode('{"a":1,"a":2}').a"#), "2");
        assert_eq!(ok(r#"return cjson.decode('{"1":"a"}')["1"]"#), "a");
        assert_eq!(
            ok(r#"return tostring(cjson.decode('{"1":"a"}')[1])"#),
            "nil"
        );
        assert_eq!(ok("return #cjson.decode('[]')"), "0");
        assert_eq!(ok("return tostring(next(cjson.decode('{}')))"), "nil");
        assert_eq!(ok(r"return cjson.decode(' \t\r\n 5 \t\r\n ')"), "5");
        assert_eq!(ok("return cjson.decode(12)"), "12");
        assert_eq!(ok("return cjson.decode(1e100)"), "1e+100");
        // Text after a NUL is not looked at.
        assert_eq!(ok(r"return cjson.decode('12\0abc')"), "12");
        assert_eq!(
            ok(r#"return cjson.decode('"\\u00e9\\uD83D\\uDE00\\/\\b\\f\\n\\r\\t\\"\\\\"')"#),
            "é😀/\u{8}\u{c}\n\r\t\"\\"
        );
        assert_eq!(
            run_on(&new_lua(), r#"return cjson.decode('"\\u0000a"')"#).unwrap(),
            b"\0a"
        );
        assert_eq!(
            run_on(
                &new_lua(),
                r#"return cjson.decode('"' .. string.char(200, 255, 9) .. '"')"#
            )
            .unwrap(),
            [200, 255, 9]
        );
        assert_eq!(
            ok(r#"return cjson.decode('"\\u0800\\u07ff\\u0080\\u007f\\uDBFF\\uDFFF"')"#),
            "\u{800}\u{7ff}\u{80}\u{7f}\u{10FFFF}"
        );
    }

    #[test]
    fn null_is_one_light_userdata() {
        assert_eq!(
            ok("return tostring(cjson.decode('null') == cjson.null)"),
            "true"
        );
        assert_eq!(
            ok("return tostring(cjson.decode('[null]')[1] == cjson.null)"),
            "true"
        );
        assert_eq!(ok("return type(cjson.null)"), "userdata");
        assert_eq!(
            ok("return tostring(cjson.new().null == cjson.null)"),
            "true"
        );
        let lua = new_lua();
        let null: Value = lua.load("return cjson.null").eval().unwrap();
        assert!(matches!(null, Value::LightUserData(pointer) if pointer.0.is_null()));
    }

    #[test]
    fn decode_errors_name_the_token_and_position() {
        let cases = [
            ("''", "Expected value but found T_END at character 1"),
            ("' '", "Expected value but found T_END at character 2"),
            (
                "'[1,]'",
                "Expected value but found T_ARR_END at character 4",
            ),
            (
                "'{1:2}'",
                "Expected object key string but found T_NUMBER at character 2",
            ),
            (
                r#"'{"a" 1}'"#,
                "Expected colon but found T_NUMBER at character 6",
            ),
            (
                r#"'{"a":1 "b"}'"#,
                "Expected comma or object end but found T_STRING at character 8",
            ),
            (
                "'[1 2]'",
                "Expected comma or array end but found T_NUMBER at character 4",
            ),
            (
                "'1 2'",
                "Expected the end but found T_NUMBER at character 3",
            ),
            (
                "'nul'",
                "Expected value but found invalid token at character 1",
            ),
            (
                "'tru'",
                "Expected value but found invalid token at character 1",
            ),
            (
                "'truex'",
                "Expected the end but found invalid token at character 5",
            ),
            (
                r#"'"abc'"#,
                "Expected value but found unexpected end of string at character 5",
            ),
            (
                r#"'"a\\x"'"#,
                "Expected value but found invalid escape code at character 3",
            ),
            (
                r#"'"\\u12"'"#,
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                r#"'"\\ud800"'"#,
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                r#"'"\\udc00"'"#,
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                r#"'"\\ud800\\u0041"'"#,
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                r#"'"\\'"#,
                "Expected value but found invalid escape code at character 2",
            ),
            (
                "'+'",
                "Expected value but found invalid number at character 1",
            ),
            (
                "'-'",
                "Expected value but found invalid number at character 1",
            ),
            (
                "'-a'",
                "Expected value but found invalid number at character 1",
            ),
            (
                "'.5'",
                "Expected value but found invalid token at character 1",
            ),
            ("'['", "Expected value but found T_END at character 2"),
            (
                "'{'",
                "Expected object key string but found T_END at character 2",
            ),
            (
                r#"'{"a":'"#,
                "Expected value but found T_END at character 6",
            ),
            (
                r#"'{"a":1,}'"#,
                "Expected object key string but found T_OBJ_END at character 8",
            ),
            (
                "'x'",
                "Expected value but found invalid token at character 1",
            ),
            ("']'", "Expected value but found T_ARR_END at character 1"),
            ("':'", "Expected value but found T_COLON at character 1"),
            ("','", "Expected value but found T_COMMA at character 1"),
            (
                "'[1:2]'",
                "Expected comma or array end but found T_COLON at character 3",
            ),
            (
                r#"'{"a",1}'"#,
                "Expected colon but found T_COMMA at character 5",
            ),
            (
                r#"'{"a":1]'"#,
                "Expected comma or object end but found T_ARR_END at character 7",
            ),
            (
                "'1e'",
                "Expected the end but found invalid token at character 2",
            ),
            (
                "'0x'",
                "Expected the end but found invalid token at character 2",
            ),
            (
                "'infinit'",
                "Expected the end but found invalid token at character 4",
            ),
            (
                "'nan('",
                "Expected the end but found invalid token at character 4",
            ),
            (
                "'in'",
                "Expected value but found invalid token at character 1",
            ),
            (
                r"'\f5'",
                "Expected value but found invalid token at character 1",
            ),
            (
                "'TRUE'",
                "Expected value but found invalid token at character 1",
            ),
            (
                r#"'["a\0bc"]'"#,
                "Expected value but found unexpected end of string at character 4",
            ),
            (r"'\0A'", "JSON parser does not support UTF-16 or UTF-32"),
            (r"'A\0'", "JSON parser does not support UTF-16 or UTF-32"),
        ];
        assert_line_one_errors(&cases, |json| format!("return cjson.decode({json})"));
    }

    #[test]
    fn decode_reads_numbers_like_strtod() {
        let cases = [
            ("01", "1"),
            ("1.", "1"),
            ("-.5", "-0.5"),
            ("0x10", "16"),
            ("0X1p4", "16"),
            ("0x.8", "0.5"),
            ("-0x10", "-16"),
            ("+1", "1"),
            ("+inf", "inf"),
            ("Infinity", "inf"),
            ("-infinity", "-inf"),
            ("NaN", "nan"),
            ("-nan", "-nan"),
            ("nan(abc)", "nan"),
            ("1e400", "inf"),
            ("1e-400", "0"),
            ("1E5", "100000"),
        ];
        for (json, expected) in cases {
            assert_eq!(
                ok(&format!("return cjson.decode('{json}')")),
                expected,
                "{json}"
            );
        }
        let exact = [
            ("2.2250738585072011e-308", "2.2250738585072009e-308"),
            ("0x1p-1074", "4.9406564584124654e-324"),
            ("0x1p-1075", "0"),
            ("0x1.8p-1074", "9.8813129168249309e-324"),
            ("0x1.fffffffffffff8p0", "2"),
            ("0x1.00000000000008p0", "1"),
            ("0x1.00000000000008000001p0", "1.0000000000000002"),
            ("0xffffffffffffffffffff", "1.2089258196146292e+24"),
            ("0x1.fffffffffffff8p1023", "inf"),
            ("0x1.00000000000018p-1022", "2.2250738585072024e-308"),
            ("0x1p+99999999999999999999", "inf"),
            ("9007199254740993", "9007199254740992"),
            ("2.4703282292062327e-324", "0"),
            ("2.4703282292062328e-324", "4.9406564584124654e-324"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ];
        for (json, expected) in exact {
            assert_eq!(
                ok(&format!(
                    "return string.format('%.17g', cjson.decode('{json}'))"
                )),
                expected,
                "{json}"
            );
        }
    }

    #[test]
    fn decimal_and_hex_parsing_matches_the_c_library() {
        // Lua's `tonumber` is C `strtod` (whole string): compare our
        // parser with it on many spellings.
        let lua = new_lua();
        let tonumber: Function = lua.load("return tonumber").eval().unwrap();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..4000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = f64::from_bits(seed);
            let text = match round % 4 {
                0 => format!("{value:e}"),
                1 => format!("{:.25e}", (seed % 100_000) as f64 * 1.37e-3),
                2 => format!(
                    "0x{:x}.{:x}p{}",
                    seed >> 20,
                    seed & 0xFFFF,
                    (seed % 2300) as i64 - 1150
                ),
                _ => format!("0x{:x}{:x}p-{}", seed, seed >> 7, seed % 1200),
            };
            if text.contains("inf") || text.contains("NaN") {
                continue;
            }
            let expected: Option<f64> = tonumber.call(text.as_str()).unwrap();
            let ours = parse_c_double(text.as_bytes(), 0);
            assert_eq!(
                ours.map(|(n, _)| n.to_bits()),
                expected.map(f64::to_bits),
                "{text}"
            );
            assert_eq!(ours.map(|(_, end)| end), Some(text.len()), "{text}");
        }
    }

    #[test]
    fn strict_numbers_when_invalid_numbers_are_off() {
        let cases = [
            ("01", "invalid number"),
            ("0x10", "invalid number"),
            ("-0x10", "invalid number"),
            ("+1", "invalid token"),
            ("nan", "invalid token"),
            ("-inf", "invalid number"),
            ("inf", "invalid token"),
        ];
        for (json, found) in cases {
            assert_eq!(
                err(&format!(
                    "cjson.decode_invalid_numbers(false) return cjson.decode('{json}')"
                )),
                format!("user_script:1: Expected value but found {found} at character 1"),
                "{json}"
            );
        }
        assert_eq!(
            ok("cjson.decode_invalid_numbers(false) return cjson.decode('[1, -0.5e3, 0]')[2]"),
            "-500"
        );
    }

    #[test]
    fn decode_depth_is_bounded_like_c() {
        assert_eq!(
            err("return cjson.decode(string.rep('[', 1001))"),
            "user_script:1: Found too many nested data structures (1001) at character 1001"
        );
        assert_eq!(
            err("return cjson.decode(string.rep('[', 1000) .. '[]')"),
            "user_script:1: Found too many nested data structures (1001) at character 1001"
        );
        assert_eq!(
            err(r#"return cjson.decode('  ' .. string.rep('{"a":', 1001))"#),
            "user_script:1: Found too many nested data structures (1001) at character 5003"
        );
        assert_eq!(
            ok(
                "return #cjson.encode(cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000)))"
            ),
            "2000"
        );
        assert_eq!(
            err("cjson.decode_max_depth(3) return cjson.decode('[[{\"a\":{}}]]')"),
            "user_script:1: Found too many nested data structures (4) at character 8"
        );
        // Lua's C stack limit: 1 slot per array level, 2 per object level.
        assert_eq!(
            err("cjson.decode_max_depth(100000) return cjson.decode(string.rep('[', 9000))"),
            "user_script:1: Found too many nested data structures (7999) at character 7999"
        );
        assert_eq!(
            err(r#"cjson.decode_max_depth(100000) return cjson.decode(string.rep('{"a":', 5000))"#),
            "user_script:1: Found too many nested data structures (4000) at character 19996"
        );
        assert_eq!(
            err(
                r#"cjson.decode_max_depth(100000) return cjson.decode(string.rep('[{"a":', 5000))"#
            ),
            "user_script:1: Found too many nested data structures (5333) at character 15997"
        );
    }

    #[test]
    fn big_documents_round_trip() {
        // Wider than the builder's batches and than mlua's reference
        // stack, with escaped strings (built on the Rust side) mixed in.
        assert_eq!(
            ok(
                r#"local t = {} for i = 1, 30000 do t[i] = {i, 'a"b' .. i, {k = i / 4}} end
                local s = cjson.encode(t) local back = cjson.decode(s)
                return tostring(cjson.encode(back) == s) .. #s .. back[30000][2]"#
            ),
            "true963352a\"b30000"
        );
        assert_eq!(
            ok(r"local t = {} for i = 1, 30000 do t['k\n' .. i] = {i} end
                local back = cjson.decode(cjson.encode(t))
                local n = 0 for k, v in pairs(back) do n = n + 1 assert(t[k][1] == v[1]) end
                return n"),
            "30000"
        );
    }

    #[test]
    fn configuration_functions_check_and_report() {
        assert_eq!(ok("return cjson.encode_max_depth()"), "1000");
        assert_eq!(ok("return cjson.decode_max_depth()"), "1000");
        assert_eq!(ok("return cjson.encode_number_precision()"), "14");
        assert_eq!(
            ok(
                "return table.concat({tostring(select(1, cjson.encode_sparse_array())), select(2, cjson.encode_sparse_array())}, ',')"
            ),
            "false,2,10"
        );
        assert_eq!(ok("return tostring(cjson.encode_keep_buffer())"), "true");
        assert_eq!(
            ok("return tostring(cjson.encode_invalid_numbers())"),
            "false"
        );
        assert_eq!(
            ok("return tostring(cjson.decode_invalid_numbers())"),
            "true"
        );
        // `luaL_checkinteger` into an int: truncation, low 32 bits.
        assert_eq!(ok("return cjson.encode_max_depth(4294967301)"), "5");
        assert_eq!(ok("return cjson.encode_max_depth(2.9)"), "2");
        assert_eq!(ok("return cjson.encode_max_depth(' 0x10 ')"), "16");
        assert_eq!(ok("return cjson.encode_number_precision(3.7)"), "3");
        assert_eq!(ok("return cjson.encode_invalid_numbers('null')"), "null");
        assert_eq!(
            ok("return tostring(cjson.encode_keep_buffer('off'))"),
            "false"
        );
        assert_eq!(
            ok(
                "return table.concat({tostring(select(1, cjson.encode_sparse_array('on', 3, 4))), select(2, cjson.encode_sparse_array())}, ',')"
            ),
            "true,3,4"
        );
        // A failed call keeps the settings stored before the bad argument.
        assert_eq!(
            ok(
                "pcall(cjson.encode_sparse_array, true, -1) return table.concat({tostring(select(1, cjson.encode_sparse_array())), select(2, cjson.encode_sparse_array())}, ',')"
            ),
            "true,2,10"
        );
        let errors = [
            (
                "cjson.encode_max_depth(1e100)",
                "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            (
                "cjson.encode_max_depth(0)",
                "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            (
                "cjson.encode_max_depth('x')",
                "bad argument #1 to 'encode_max_depth' (number expected, got string)",
            ),
            (
                "cjson.encode_max_depth(true)",
                "bad argument #1 to 'encode_max_depth' (number expected, got boolean)",
            ),
            (
                "cjson.encode_max_depth(1, 2)",
                "bad argument #2 to 'encode_max_depth' (found too many arguments)",
            ),
            (
                "cjson.decode_max_depth(1, nil)",
                "bad argument #2 to 'decode_max_depth' (found too many arguments)",
            ),
            (
                "cjson.encode_number_precision(15)",
                "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
            ),
            (
                "cjson.encode_sparse_array(true, 1, -1)",
                "bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
            ),
            (
                "cjson.encode_sparse_array(true, 1, 'x')",
                "bad argument #3 to 'encode_sparse_array' (number expected, got string)",
            ),
            (
                "cjson.encode_sparse_array(true, 1, 2, 3)",
                "bad argument #4 to 'encode_sparse_array' (found too many arguments)",
            ),
            (
                "cjson.encode_sparse_array('yes')",
                "bad argument #1 to 'encode_sparse_array' (invalid option 'yes')",
            ),
            (
                "cjson.encode_sparse_array(1.5)",
                "bad argument #1 to 'encode_sparse_array' (invalid option '1.5')",
            ),
            (
                "cjson.encode_sparse_array({})",
                "bad argument #1 to 'encode_sparse_array' (string expected, got table)",
            ),
            (
                "cjson.encode_invalid_numbers(2)",
                "bad argument #1 to 'encode_invalid_numbers' (invalid option '2')",
            ),
            (
                "cjson.decode_invalid_numbers('null')",
                "bad argument #1 to 'decode_invalid_numbers' (invalid option 'null')",
            ),
            (
                "cjson.encode_keep_buffer(5)",
                "bad argument #1 to 'encode_keep_buffer' (invalid option '5')",
            ),
            (
                "cjson:encode_max_depth(5)",
                "bad argument #1 to 'encode_max_depth' (found too many arguments)",
            ),
            (
                "cjson:encode_max_depth()",
                "calling 'encode_max_depth' on bad self (number expected, got table)",
            ),
        ];
        assert_line_one_errors(&errors, |call| format!("return {call}"));
    }

    #[test]
    fn argument_errors_name_the_function_as_called() {
        assert_eq!(
            err("return cjson.decode()"),
            "user_script:1: bad argument #1 to 'decode' (expected 1 argument)"
        );
        assert_eq!(
            err("return cjson.encode(1, 2)"),
            "user_script:1: bad argument #1 to 'encode' (expected 1 argument)"
        );
        assert_eq!(
            err("return cjson.decode({})"),
            "user_script:1: bad argument #1 to 'decode' (string expected, got table)"
        );
        assert_eq!(
            err("return cjson.decode(nil)"),
            "user_script:1: bad argument #1 to 'decode' (string expected, got nil)"
        );
        assert_eq!(
            err("local d = cjson.decode return d()"),
            "user_script:1: bad argument #1 to 'd' (expected 1 argument)"
        );
        assert_eq!(
            err("return cjson:decode()"),
            "user_script:1: calling 'decode' on bad self (string expected, got table)"
        );
        assert_eq!(
            err("\n\nreturn (cjson.encode())"),
            "user_script:3: bad argument #1 to 'encode' (expected 1 argument)"
        );
        // Called straight from a C function (pcall): no name, no position.
        assert_eq!(
            ok("local ok, e = pcall(cjson.decode) return tostring(ok)"),
            "false"
        );
        let lua = new_lua();
        let decode: Function = lua.load("return cjson.decode").eval().unwrap();
        let error = decode.call::<Value>(()).unwrap_err();
        assert_eq!(
            bare_message(&error),
            "bad argument #1 to '?' (expected 1 argument)"
        );
    }

    #[test]
    fn each_library_table_has_its_own_settings() {
        assert_eq!(
            ok(
                "local j = cjson.new() j.encode_number_precision(2) return cjson.encode(1/3) .. ' ' .. j.encode(1/3)"
            ),
            "0.33333333333333 0.33"
        );
        assert_eq!(
            ok("local j = cjson.new().new() return j._NAME .. j._VERSION .. j.encode({a=1})"),
            r#"cjson2.1.0{"a":1}"#
        );
        assert_eq!(
            ok("return cjson._NAME .. ' ' .. cjson._VERSION"),
            "cjson 2.1.0"
        );
        assert_eq!(
            ok(
                "local t = {} for k, v in pairs(cjson) do t[#t+1] = k .. '=' .. type(v) end table.sort(t) return table.concat(t, ' ')"
            ),
            "_NAME=string _VERSION=string decode=function decode_invalid_numbers=function decode_max_depth=function encode=function encode_invalid_numbers=function encode_keep_buffer=function encode_max_depth=function encode_number_precision=function encode_sparse_array=function new=function null=userdata"
        );
    }

    #[test]
    fn c_integer_conversions() {
        assert_eq!(c_int_from_lua_integer(4294967301.0), 5);
        assert_eq!(c_int_from_lua_integer(-3.7), -3);
        assert_eq!(c_int_from_lua_integer(1e100), 0);
        assert_eq!(c_int_from_lua_integer(f64::NAN), 0);
        assert_eq!(truncate_to_i32(2147483647.0), i32::MAX);
        assert_eq!(truncate_to_i32(2147483648.0), i32::MIN);
        assert_eq!(truncate_to_i32(f64::INFINITY), i32::MIN);
    }
}
