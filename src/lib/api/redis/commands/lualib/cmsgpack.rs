//! Redis's `cmsgpack` Lua library (lua-cmsgpack 0.4.0, `lua_cmsgpack.c`
//! in Redis 7.0) written in Rust: `pack`, `unpack`, `unpack_one` and
//! `unpack_limit`, and the `_NAME`, `_VERSION`, `_COPYRIGHT` and
//! `_DESCRIPTION` fields, so scripts that store MessagePack blobs behave
//! as they do on Redis.
//!
//! Invariants:
//! - packed bytes, decoded values, returned offsets and error texts are
//!   those of Redis 7.0.15 on x86-64, quirks included: numbers that are
//!   integral and fit in 64 bits take the smallest integer encoding, other
//!   numbers float32 when that is exact and float64 otherwise; strings of
//!   32..255 bytes use str8 (0xd9); a table is an array only when its keys
//!   are exactly 1..n; tables nested [`MAX_NESTING`] deep and values
//!   MessagePack cannot carry pack as nil; bin and ext types do not decode
//!   ("Bad data format in input."); uint64 above 2^63 decodes wrapped to
//!   negative; `unpack_limit(s, 0)` returns no offset; the "Invalid
//!   request" error prints the input length as the limit;
//! - errors read as the C library's do: `luaL_error` messages carry the
//!   calling script line (`user_script:LINE: `), argument errors name the
//!   function as the call site does, and map keys that Lua refuses raise
//!   Lua's own "table index is nil/NaN";
//! - nothing script input can do makes this code panic, recurse without
//!   bound, or grow without bound: packing recursion stops at
//!   [`MAX_NESTING`], unpacking keeps its own container stack and stops
//!   where the C library's Lua stack checks would, and a packed string may
//!   not outgrow [`MAX_PACKED_LEN`];
//! - the number of Lua values held from Rust at once stays below what
//!   mlua's reference stack can hold (see [`HELD_VALUE_BUDGET`]).
//!
//! Deliberate differences from Redis, where mlua cannot follow it: one
//! unpacking call returns at most 7,977 values less its argument count,
//! and holds fewer than [`HELD_VALUE_BUDGET`] strings, tables and pending
//! map keys (so maps nest about 3,750 deep where Redis allows 3,999), where
//! Redis returns up to 7,999 values; past that it fails with the error
//! Redis gives past its own limit. `pack` fails with a memory error rather than
//! build a string over [`MAX_PACKED_LEN`].

use mlua::{Lua, MultiValue, Table, Value};

use super::support::{
    LUA_MAX_C_STACK, argument_error, check_integer, check_string, lua_error, optional_integer,
    truncate_to_i32, truncate_to_i64,
};

const LIBRARY_NAME: &str = "cmsgpack";
const LIBRARY_VERSION: &str = "lua-cmsgpack 0.4.0";
const LIBRARY_COPYRIGHT: &str = "Copyright (C) 2012, Salvatore Sanfilippo";
const LIBRARY_DESCRIPTION: &str = "MessagePack C implementation for Lua";

/// Tables nested this deep pack as nil (`LUACMSGPACK_MAX_NESTING`), which
/// is also what stops a table that contains itself.
const MAX_NESTING: usize = 16;
/// Message of the stack check made before every decoded value.
const TOO_MANY_RESULTS: &str =
    "too many return values at once; use unpack_one or unpack_limit instead.";
/// Message of the stack check made when an array starts.
const ARRAY_STACK_CHECK: &str = "in function mp_decode_to_lua_array";
/// Message of the stack check made before the offset is returned.
const OFFSET_STACK_CHECK: &str = "in function mp_unpack_full";
/// Stack slots mlua's callback machinery may need beyond the arguments
/// and results: one preallocated error slot, and a check for 2 slots plus
/// `LUA_MINSTACK` (20) while it moves that slot away.
const MLUA_RETURN_OVERHEAD: usize = 23;
/// mlua holds every string or table it hands to Rust in a slot of an
/// auxiliary Lua stack that has [`LUA_MAX_C_STACK`] slots and panics when
/// it is full. Decoding holds its results, its open containers and their
/// pending map keys, so it stops with Redis's "too many return values"
/// error before holding this many (the rest is left for the sandbox and
/// mlua's own use).
const HELD_VALUE_BUDGET: usize = 7500;
/// Longest string `pack` builds. A longer one could not become a Lua
/// string under the sandbox's memory limit anyway; stopping here keeps a
/// table that contains itself many times from exhausting the server's
/// memory first (Redis would grow until it runs out).
const MAX_PACKED_LEN: usize = 256 * 1024 * 1024;

/// Installs the library as the global `cmsgpack` (before the sandbox makes
/// globals read-only).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let library = lua.create_table()?;
    // Same insertion order as the C library, so `pairs(cmsgpack)` lists
    // the fields in Redis's order.
    library.raw_set("pack", lua.create_function(pack)?)?;
    library.raw_set("unpack", lua.create_function(unpack)?)?;
    library.raw_set("unpack_one", lua.create_function(unpack_one)?)?;
    library.raw_set("unpack_limit", lua.create_function(unpack_limit)?)?;
    library.raw_set("_NAME", LIBRARY_NAME)?;
    library.raw_set("_VERSION", LIBRARY_VERSION)?;
    library.raw_set("_COPYRIGHT", LIBRARY_COPYRIGHT)?;
    library.raw_set("_DESCRIPTION", LIBRARY_DESCRIPTION)?;
    lua.globals().raw_set(LIBRARY_NAME, library)
}

/// The stack overflow error of `luaL_checkstack`.
fn stack_overflow(lua: &Lua, context: &str) -> mlua::Error {
    lua_error(lua, &format!("stack overflow ({context})"))
}

/// A Lua number as f64 (mlua hands integral numbers over as integers).
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => Some(*number),
        Value::Integer(integer) => Some(*integer as f64),
        _ => None,
    }
}

// ------------------------------------------------------------------------
// Packing.

/// `cmsgpack.pack(...)`: every argument packed, concatenated.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    if args.is_empty() {
        return Err(argument_error(lua, 0, "MessagePack pack needs input."));
    }
    // The C function asks Lua for one more stack slot per argument, which
    // Lua refuses past LUAI_MAXCSTACK slots in all.
    if args.len() * 2 > LUA_MAX_C_STACK {
        return Err(argument_error(
            lua,
            0,
            "Too many arguments for MessagePack pack.",
        ));
    }
    let mut packer = Packer {
        out: Vec::new(),
        limit: MAX_PACKED_LEN,
    };
    for value in &args {
        packer.value(value, 0)?;
    }
    lua.create_string(&packer.out)
}

struct Packer {
    out: Vec<u8>,
    /// The longest `out` may grow ([`MAX_PACKED_LEN`] outside tests).
    limit: usize,
}

impl Packer {
    fn put(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        if self.out.len() + bytes.len() > self.limit {
            return Err(mlua::Error::MemoryError("not enough memory".to_string()));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// `mp_encode_lua_type`: `level` is how many tables enclose `value`.
    fn value(&mut self, value: &Value, level: usize) -> mlua::Result<()> {
        match value {
            Value::String(text) => self.bytes(&text.as_bytes()),
            Value::Boolean(true) => self.put(&[0xc3]),
            Value::Boolean(false) => self.put(&[0xc2]),
            Value::Integer(integer) => self.number(*integer as f64),
            Value::Number(number) => self.number(*number),
            Value::Table(table) if level < MAX_NESTING => self.table(table, level),
            // Nil, functions, threads, userdata, and tables too deep.
            _ => self.put(&[0xc0]),
        }
    }

    fn bytes(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        let len = bytes.len();
        if len < 32 {
            self.put(&[0xa0 | len as u8])?;
        } else if len <= 0xff {
            self.put(&[0xd9, len as u8])?;
        } else if len <= 0xffff {
            self.put(&[0xda])?;
            self.put(&(len as u16).to_be_bytes())?;
        } else {
            // The C code keeps the low 32 bits of longer lengths.
            self.put(&[0xdb])?;
            self.put(&(len as u32).to_be_bytes())?;
        }
        self.put(bytes)
    }

    /// `mp_encode_lua_number`: integers when `(int64_t)n == n` holds as
    /// x86-64 computes it, floats otherwise.
    fn number(&mut self, number: f64) -> mlua::Result<()> {
        let integer = truncate_to_i64(number);
        if !number.is_infinite() && integer as f64 == number {
            self.integer(integer)
        } else {
            self.float(number)
        }
    }

    /// `mp_encode_double`: float32 when it holds the value exactly (never
    /// for NaN, which is unequal to itself).
    fn float(&mut self, number: f64) -> mlua::Result<()> {
        let single = number as f32;
        if single as f64 == number {
            self.put(&[0xca])?;
            self.put(&single.to_be_bytes())
        } else {
            self.put(&[0xcb])?;
            self.put(&number.to_be_bytes())
        }
    }

    /// `mp_encode_int`: the smallest encoding, unsigned ones for n >= 0.
    fn integer(&mut self, n: i64) -> mlua::Result<()> {
        if n >= 0 {
            if n <= 127 {
                self.put(&[n as u8])
            } else if n <= 0xff {
                self.put(&[0xcc, n as u8])
            } else if n <= 0xffff {
                self.put(&[0xcd])?;
                self.put(&(n as u16).to_be_bytes())
            } else if n <= 0xffff_ffff {
                self.put(&[0xce])?;
                self.put(&(n as u32).to_be_bytes())
            } else {
                self.put(&[0xcf])?;
                self.put(&(n as u64).to_be_bytes())
            }
        } else if n >= -32 {
            self.put(&[n as u8])
        } else if n >= -128 {
            self.put(&[0xd0, n as u8])
        } else if n >= -32768 {
            self.put(&[0xd1])?;
            self.put(&(n as i16).to_be_bytes())
        } else if n >= -2_147_483_648 {
            self.put(&[0xd2])?;
            self.put(&(n as i32).to_be_bytes())
        } else {
            self.put(&[0xd3])?;
            self.put(&n.to_be_bytes())
        }
    }

    /// `mp_encode_lua_table`: an array when the keys are exactly 1..n,
    /// else a map in `next` order. Entries are visited one at a time, never
    /// collected, so a big table does not hold a Lua reference per entry.
    fn table(&mut self, table: &Table, level: usize) -> mlua::Result<()> {
        match array_length(table)? {
            Some(len) => {
                self.header(len, 0x90, 0xdc, 0xdd)?;
                for index in 1..=len {
                    let item: Value = table.raw_get(index)?;
                    self.value(&item, level + 1)?;
                }
                Ok(())
            }
            None => {
                let mut entries = 0;
                for entry in table.pairs::<Value, Value>() {
                    entry?;
                    entries += 1;
                }
                self.header(entries, 0x80, 0xde, 0xdf)?;
                for entry in table.pairs::<Value, Value>() {
                    let (key, item) = entry?;
                    self.value(&key, level + 1)?;
                    self.value(&item, level + 1)?;
                }
                Ok(())
            }
        }
    }

    /// An array or map header: fix form, 16-bit or 32-bit count.
    fn header(&mut self, count: usize, fixed: u8, wide16: u8, wide32: u8) -> mlua::Result<()> {
        if count <= 15 {
            self.put(&[fixed | count as u8])
        } else if count <= 0xffff {
            self.put(&[wide16])?;
            self.put(&(count as u16).to_be_bytes())
        } else {
            self.put(&[wide32])?;
            self.put(&(count as u32).to_be_bytes())
        }
    }
}

/// `table_is_an_array`: `Some(n)` when every key is a number that
/// `(int)` keeps unchanged, above 0, and the largest equals the count
/// (so the keys are exactly 1..n; an empty table is an empty array).
fn array_length(table: &Table) -> mlua::Result<Option<usize>> {
    let mut count: usize = 0;
    let mut max: i32 = 0;
    for entry in table.pairs::<Value, Value>() {
        let (key, _) = entry?;
        let Some(number) = number_of(&key) else {
            return Ok(None);
        };
        let index = truncate_to_i32(number);
        if number <= 0.0 || number.is_infinite() || index as f64 != number {
            return Ok(None);
        }
        max = max.max(index);
        count += 1;
    }
    Ok((usize::try_from(max).ok() == Some(count)).then_some(count))
}

// ------------------------------------------------------------------------
// Unpacking.

/// `cmsgpack.unpack(s)`: every value in `s`.
fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    // The C function leaves all its arguments on the Lua stack.
    let stack_used = args.len();
    unpack_values(lua, &args, 0, 0, stack_used)
}

/// `cmsgpack.unpack_one(s[, offset])`: the next offset (-1 at the end) and
/// one value.
fn unpack_one(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let offset = optional_integer(lua, &args, 2, 0)?;
    // The C function drops all arguments but the first.
    unpack_values(lua, &args, 1, offset, 1)
}

/// `cmsgpack.unpack_limit(s, limit[, offset])`: the next offset (-1 at
/// the end) and up to `limit` values; a limit of 0 at offset 0 means all
/// values and no offset, as in the C code.
fn unpack_limit(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let limit = check_integer(lua, &args, 2)?;
    let offset = optional_integer(lua, &args, 3, 0)?;
    unpack_values(lua, &args, limit, offset, 1)
}

/// `mp_unpack_full`. `stack_used` is how many Lua stack slots the C
/// function's arguments take when decoding starts.
fn unpack_values(
    lua: &Lua,
    args: &MultiValue,
    limit: i64,
    offset: i64,
    stack_used: usize,
) -> mlua::Result<MultiValue> {
    let input = check_string(lua, args, 1)?;
    let input = input.as_bytes();
    let len = input.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // Sic: the C code prints the input length as the limit.
        return Err(lua_error(
            lua,
            &format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ),
        ));
    }
    let start = match usize::try_from(offset) {
        Ok(start) if start <= len => start,
        _ => {
            return Err(lua_error(
                lua,
                &format!(
                    "Start offset {} greater than input length {}.",
                    offset as i32, len as i32
                ),
            ));
        }
    };
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };

    let mut decoder = Decoder {
        lua,
        input: &input,
        position: start,
        held_values: 0,
    };
    let mut values = Vec::new();
    let mut count: i64 = 0;
    while decoder.position < len && count < limit {
        let value = decoder
            .value(stack_used + values.len())
            .map_err(|failure| failure.into_lua_error(lua))?;
        decoder.held_values += usize::from(holds_reference(&value));
        values.push(value);
        count += 1;
    }

    let mut results = MultiValue::with_capacity(values.len() + 1);
    if !decode_all {
        if stack_used + values.len() + 1 > LUA_MAX_C_STACK {
            return Err(stack_overflow(lua, OFFSET_STACK_CHECK));
        }
        let next = if decoder.position == len {
            -1.0
        } else {
            decoder.position as f64
        };
        results.push_back(Value::Number(next));
    }
    results.extend(values);
    // mlua returns results on a stack that still holds the arguments and
    // may hold one slot of its own, and then checks for 2 + LUA_MINSTACK
    // more slots; past that it fails with an error of its own. Fail first,
    // with the error Redis gives a few values later.
    if args.len() + results.len() + MLUA_RETURN_OVERHEAD > LUA_MAX_C_STACK {
        return Err(stack_overflow(lua, TOO_MANY_RESULTS));
    }
    Ok(results)
}

/// Why decoding stopped.
enum DecodeFailure {
    /// The input ends inside a value.
    MissingBytes,
    /// A type byte this library does not decode.
    BadFormat,
    /// A Lua stack check of the C code failed (its message).
    StackOverflow(&'static str),
    /// A map key Lua refuses (Lua's message, raised without a position).
    BadTableIndex(&'static str),
    /// Lua itself failed (memory).
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecodeFailure {
    fn from(error: mlua::Error) -> Self {
        DecodeFailure::Lua(error)
    }
}

impl DecodeFailure {
    fn into_lua_error(self, lua: &Lua) -> mlua::Error {
        match self {
            DecodeFailure::MissingBytes => lua_error(lua, "Missing bytes in input."),
            DecodeFailure::BadFormat => lua_error(lua, "Bad data format in input."),
            DecodeFailure::StackOverflow(context) => stack_overflow(lua, context),
            DecodeFailure::BadTableIndex(message) => mlua::Error::runtime(message),
            DecodeFailure::Lua(error) => error,
        }
    }
}

/// What one type byte (and its length fields) announces.
enum Item {
    Scalar(Value),
    Array(usize),
    Map(usize),
}

/// A container being filled.
enum Container {
    Array {
        table: Table,
        next_index: i64,
        remaining: usize,
    },
    Map {
        table: Table,
        remaining: usize,
        pending_key: Option<Value>,
    },
}

/// What the values being decoded take: the Lua stack slots the C code
/// would use, and the strings and tables held as map keys until their
/// value is decoded.
struct Usage {
    stack_slots: usize,
    held_keys: usize,
}

/// Whether mlua holds `value` through a reference (strings and tables are
/// the only such values decoding makes).
fn holds_reference(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Table(_))
}

impl Container {
    /// Stores the next decoded value (an array item, a map key or a map
    /// value), keeping `usage` up to date; true when the container is now
    /// full.
    fn store(&mut self, value: Value, usage: &mut Usage) -> Result<bool, DecodeFailure> {
        match self {
            Container::Array {
                table,
                next_index,
                remaining,
            } => {
                table.raw_set(*next_index, value)?;
                *next_index += 1;
                *remaining -= 1;
                Ok(*remaining == 0)
            }
            Container::Map {
                table,
                remaining,
                pending_key,
            } => match pending_key.take() {
                None => {
                    usage.stack_slots += 1;
                    usage.held_keys += usize::from(holds_reference(&value));
                    *pending_key = Some(value);
                    Ok(false)
                }
                Some(key) => {
                    usage.stack_slots -= 1;
                    usage.held_keys -= usize::from(holds_reference(&key));
                    set_map_entry(table, key, value)?;
                    *remaining -= 1;
                    Ok(*remaining == 0)
                }
            },
        }
    }

    /// The finished table and the stack slots it took while open.
    fn into_table(self) -> (Table, usize) {
        match self {
            Container::Array { table, .. } => (table, 2),
            Container::Map { table, .. } => (table, 1),
        }
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    input: &'a [u8],
    position: usize,
    /// Strings and tables already decoded and held until returned.
    held_values: usize,
}

impl<'a> Decoder<'a> {
    /// `mp_decode_to_lua_type` for one top-level value, with `stack_used`
    /// Lua stack slots taken when it starts. Containers are kept on an
    /// explicit stack; the C code's stack accounting (two slots per open
    /// array, one per open map plus one while its value is decoded) bounds
    /// their depth, as Lua bounds the C code's recursion.
    fn value(&mut self, stack_used: usize) -> Result<Value, DecodeFailure> {
        let mut open: Vec<Container> = Vec::new();
        let mut usage = Usage {
            stack_slots: stack_used,
            held_keys: 0,
        };
        loop {
            let held = self.held_values + open.len() + usage.held_keys;
            let mut finished = match self.item(usage.stack_slots, held)? {
                Item::Scalar(value) => value,
                Item::Array(len) => {
                    let table = self.lua.create_table()?;
                    // Checked even for an empty array, as in the C code.
                    if usage.stack_slots + 2 > LUA_MAX_C_STACK {
                        return Err(DecodeFailure::StackOverflow(ARRAY_STACK_CHECK));
                    }
                    if len == 0 {
                        Value::Table(table)
                    } else {
                        open.push(Container::Array {
                            table,
                            next_index: 1,
                            remaining: len,
                        });
                        usage.stack_slots += 2;
                        continue;
                    }
                }
                Item::Map(len) => {
                    let table = self.lua.create_table()?;
                    if len == 0 {
                        Value::Table(table)
                    } else {
                        open.push(Container::Map {
                            table,
                            remaining: len,
                            pending_key: None,
                        });
                        usage.stack_slots += 1;
                        continue;
                    }
                }
            };
            // Store the finished value in its container; a container that
            // becomes full is itself finished and goes one level up.
            loop {
                let Some(mut container) = open.pop() else {
                    return Ok(finished);
                };
                if !container.store(finished, &mut usage)? {
                    open.push(container);
                    break;
                }
                let (table, slots) = container.into_table();
                usage.stack_slots -= slots;
                finished = Value::Table(table);
            }
        }
    }

    /// The `len` bytes at the cursor (type byte included), consumed.
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeFailure> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(DecodeFailure::MissingBytes)?;
        let input: &'a [u8] = self.input;
        let bytes = &input[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    /// The big-endian number in `width` bytes after the type byte, without
    /// consuming anything.
    fn peek_length(&self, width: usize) -> Result<usize, DecodeFailure> {
        let start = self.position + 1;
        let field = self
            .input
            .get(start..start + width)
            .ok_or(DecodeFailure::MissingBytes)?;
        Ok(field
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte)))
    }

    /// An array or map whose `width`-byte count follows the type byte.
    fn container(&mut self, width: usize, kind: fn(usize) -> Item) -> Result<Item, DecodeFailure> {
        let count = self.peek_length(width)?;
        self.position += 1 + width;
        Ok(kind(count))
    }

    /// A string whose `width`-byte length follows the type byte.
    fn string(&mut self, width: usize) -> Result<Item, DecodeFailure> {
        let len = self.peek_length(width)?;
        let header = 1 + width;
        let total = header.checked_add(len).ok_or(DecodeFailure::MissingBytes)?;
        let bytes = self.take(total)?;
        let text = self.lua.create_string(&bytes[header..])?;
        Ok(Item::Scalar(Value::String(text)))
    }

    /// The value, or container start, at the cursor; `stack_used` Lua
    /// stack slots are taken and `held` strings and tables are held.
    fn item(&mut self, stack_used: usize, held: usize) -> Result<Item, DecodeFailure> {
        let Some(&tag) = self.input.get(self.position) else {
            return Err(DecodeFailure::MissingBytes);
        };
        if stack_used + 1 > LUA_MAX_C_STACK || held >= HELD_VALUE_BUDGET {
            return Err(DecodeFailure::StackOverflow(TOO_MANY_RESULTS));
        }
        let number = |value: f64| Ok(Item::Scalar(Value::Number(value)));
        match tag {
            0xc0 => {
                self.position += 1;
                Ok(Item::Scalar(Value::Nil))
            }
            0xc2 | 0xc3 => {
                self.position += 1;
                Ok(Item::Scalar(Value::Boolean(tag == 0xc3)))
            }
            0xcc => number(f64::from(self.take(2)?[1])),
            0xcd => number(f64::from(u16::from_be_bytes(self.fixed::<2>()?))),
            0xce => number(f64::from(u32::from_be_bytes(self.fixed::<4>()?))),
            // Pushed through lua_Integer: values above 2^63 wrap negative.
            0xcf => number(u64::from_be_bytes(self.fixed::<8>()?) as i64 as f64),
            0xd0 => number(f64::from(self.take(2)?[1] as i8)),
            0xd1 => number(f64::from(i16::from_be_bytes(self.fixed::<2>()?))),
            0xd2 => number(f64::from(i32::from_be_bytes(self.fixed::<4>()?))),
            0xd3 => number(i64::from_be_bytes(self.fixed::<8>()?) as f64),
            0xca => number(f64::from(f32::from_be_bytes(self.fixed::<4>()?))),
            0xcb => number(f64::from_be_bytes(self.fixed::<8>()?)),
            0xd9 => self.string(1),
            0xda => self.string(2),
            0xdb => self.string(4),
            0xdc => self.container(2, Item::Array),
            0xdd => self.container(4, Item::Array),
            0xde => self.container(2, Item::Map),
            0xdf => self.container(4, Item::Map),
            0x00..=0x7f => {
                self.position += 1;
                number(f64::from(tag))
            }
            0xe0..=0xff => {
                self.position += 1;
                number(f64::from(tag as i8))
            }
            0xa0..=0xbf => {
                let len = usize::from(tag & 0x1f);
                let bytes = self.take(1 + len)?;
                let text = self.lua.create_string(&bytes[1..])?;
                Ok(Item::Scalar(Value::String(text)))
            }
            0x90..=0x9f => {
                self.position += 1;
                Ok(Item::Array(usize::from(tag & 0x0f)))
            }
            0x80..=0x8f => {
                self.position += 1;
                Ok(Item::Map(usize::from(tag & 0x0f)))
            }
            // 0xc1, bin 8/16/32, ext and fixext: not decoded by 0.4.0.
            _ => Err(DecodeFailure::BadFormat),
        }
    }

    /// The `N` bytes after the type byte, consumed with it.
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeFailure> {
        let bytes = self.take(1 + N)?;
        let mut field = [0u8; N];
        field.copy_from_slice(&bytes[1..]);
        Ok(field)
    }
}

/// `lua_settable` on a fresh table: Lua refuses nil and NaN keys (even
/// with a nil value); a nil value still goes through, as it does in C.
fn set_map_entry(table: &Table, key: Value, value: Value) -> Result<(), DecodeFailure> {
    match key {
        Value::Nil => Err(DecodeFailure::BadTableIndex("table index is nil")),
        Value::Number(number) if number.is_nan() => {
            Err(DecodeFailure::BadTableIndex("table index is NaN"))
        }
        key => Ok(table.raw_set(key, value)?),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::bare_message;
    use super::*;

    /// The probe every expected value below was recorded with on
    /// redis-server 7.0.15 (`EVAL "<probe> return run(function() return
    /// <case> end)" 0`): `run` returns `count:value value...` with strings
    /// as `s` + hex, numbers as `%.17g` and tables with sorted keys, or
    /// `ERROR: <message>`. One line, so positions read `user_script:1:`.
    const PROBE: &str = r#"local function unhex(h) return (h:gsub('..', function(x) return string.char(tonumber(x, 16)) end)) end local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end local function dump(v, d) d = d or 0 if d > 40 then return '...' end local t = type(v) if t == 'string' then return 's' .. hex(v) elseif t == 'number' then return string.format('%.17g', v) elseif t == 'table' then local keys = {} for k in pairs(v) do keys[#keys + 1] = k end local names = {} for _, k in ipairs(keys) do names[k] = dump(k, d + 1) end table.sort(keys, function(a, b) return names[a] < names[b] end) local parts = {} for _, k in ipairs(keys) do parts[#parts + 1] = '[' .. names[k] .. ']=' .. dump(v[k], d + 1) end return '{' .. table.concat(parts, ',') .. '}' else return tostring(v) end end local function dumpall(...) local n = select('#', ...) local parts = {} for i = 1, n do parts[i] = dump((select(i, ...))) end return n .. ':' .. table.concat(parts, ' ') end local function finish(ok, ...) if ok then return dumpall(...) end return 'ERROR: ' .. tostring((...)) end local function run(f) return finish(pcall(f)) end"#;

    /// A VM with the library, whose `pcall` returns error messages as
    /// strings the way the sandbox's (and Redis's) does.
    fn new_vm() -> Lua {
        let lua = Lua::new();
        install(&lua).unwrap();
        let message = lua
            .create_function(|lua, error: Value| match error {
                Value::Error(error) => Ok(Value::String(lua.create_string(bare_message(&error))?)),
                other => Ok(other),
            })
            .unwrap();
        lua.load(
            "local builtin, message = pcall, ... \
             pcall = function(...) \
               return (function(ok, ...) \
                 if ok then return ok, ... end \
                 return false, message((...)) \
               end)(builtin(...)) \
             end",
        )
        .call::<()>(message)
        .unwrap();
        lua
    }

    fn probe(lua: &Lua, case: &str) -> String {
        lua.load(format!("{PROBE} return run(function() return {case} end)"))
            .set_name("@user_script")
            .eval()
            .unwrap()
    }

    fn assert_cases(cases: &[(&str, &str)]) {
        let lua = new_vm();
        for (case, expected) in cases {
            assert_eq!(probe(&lua, case), *expected, "case: {case}");
        }
    }

    /// Integer encoding boundaries, float32/float64 choice, infinities, NaN and -0. Expected
    /// values from redis-server 7.0.15.
    #[test]
    fn pack_numbers_match_redis() {
        assert_cases(&[
            (r#"cmsgpack.pack(0)"#, r#"1:s00"#),
            (r#"cmsgpack.pack(1)"#, r#"1:s01"#),
            (r#"cmsgpack.pack(127)"#, r#"1:s7f"#),
            (r#"cmsgpack.pack(128)"#, r#"1:scc80"#),
            (r#"cmsgpack.pack(255)"#, r#"1:sccff"#),
            (r#"cmsgpack.pack(256)"#, r#"1:scd0100"#),
            (r#"cmsgpack.pack(65535)"#, r#"1:scdffff"#),
            (r#"cmsgpack.pack(65536)"#, r#"1:sce00010000"#),
            (r#"cmsgpack.pack(4294967295)"#, r#"1:sceffffffff"#),
            (r#"cmsgpack.pack(4294967296)"#, r#"1:scf0000000100000000"#),
            (r#"cmsgpack.pack(2^53)"#, r#"1:scf0020000000000000"#),
            (r#"cmsgpack.pack(2^63 - 1024)"#, r#"1:scf7ffffffffffffc00"#),
            (r#"cmsgpack.pack(2^63)"#, r#"1:sca5f000000"#),
            (r#"cmsgpack.pack(2^64)"#, r#"1:sca5f800000"#),
            (r#"cmsgpack.pack(-1)"#, r#"1:sff"#),
            (r#"cmsgpack.pack(-32)"#, r#"1:se0"#),
            (r#"cmsgpack.pack(-33)"#, r#"1:sd0df"#),
            (r#"cmsgpack.pack(-128)"#, r#"1:sd080"#),
            (r#"cmsgpack.pack(-129)"#, r#"1:sd1ff7f"#),
            (r#"cmsgpack.pack(-32768)"#, r#"1:sd18000"#),
            (r#"cmsgpack.pack(-32769)"#, r#"1:sd2ffff7fff"#),
            (r#"cmsgpack.pack(-2147483648)"#, r#"1:sd280000000"#),
            (r#"cmsgpack.pack(-2147483649)"#, r#"1:sd3ffffffff7fffffff"#),
            (r#"cmsgpack.pack(-2^63)"#, r#"1:sd38000000000000000"#),
            (r#"cmsgpack.pack(-2^63 - 2048)"#, r#"1:scbc3e0000000000001"#),
            (r#"cmsgpack.pack(-2^64)"#, r#"1:scadf800000"#),
            (r#"cmsgpack.pack(-0.0)"#, r#"1:s00"#),
            (r#"cmsgpack.pack(1.5)"#, r#"1:sca3fc00000"#),
            (r#"cmsgpack.pack(-1.5)"#, r#"1:scabfc00000"#),
            (r#"cmsgpack.pack(0.1)"#, r#"1:scb3fb999999999999a"#),
            (r#"cmsgpack.pack(1/3)"#, r#"1:scb3fd5555555555555"#),
            (r#"cmsgpack.pack(1e300)"#, r#"1:scb7e37e43c8800759c"#),
            (r#"cmsgpack.pack(1e-300)"#, r#"1:scb01a56e1fc2f8f359"#),
            (
                r#"cmsgpack.pack(3.4028234663852886e38)"#,
                r#"1:sca7f7fffff"#,
            ),
            (r#"cmsgpack.pack(1e19)"#, r#"1:scb43e158e460913d00"#),
            (r#"cmsgpack.pack(1/0)"#, r#"1:sca7f800000"#),
            (r#"cmsgpack.pack(-1/0)"#, r#"1:scaff800000"#),
            (r#"cmsgpack.pack(0/0)"#, r#"1:scbfff8000000000000"#),
            (r#"cmsgpack.pack(-(0/0))"#, r#"1:scb7ff8000000000000"#),
        ]);
    }

    /// nil/booleans, several arguments, string headers at 31/32/255/256/65535/65536 bytes,
    /// unsupported types as nil. Expected values from redis-server 7.0.15.
    #[test]
    fn pack_scalars_and_strings_match_redis() {
        assert_cases(&[
            (r#"cmsgpack.pack(nil)"#, r#"1:sc0"#),
            (r#"cmsgpack.pack(true)"#, r#"1:sc3"#),
            (r#"cmsgpack.pack(false)"#, r#"1:sc2"#),
            (r#"cmsgpack.pack(nil, nil)"#, r#"1:sc0c0"#),
            (r#"cmsgpack.pack(1, 'a', {}, true)"#, r#"1:s01a16190c3"#),
            (r#"cmsgpack.pack('')"#, r#"1:sa0"#),
            (r#"cmsgpack.pack('a')"#, r#"1:sa161"#),
            (r#"cmsgpack.pack('\0\255')"#, r#"1:sa200ff"#),
            (r#"cmsgpack.pack('12')"#, r#"1:sa23132"#),
            (
                r#"cmsgpack.pack(string.rep('x', 31)):sub(1, 3)"#,
                r#"1:sbf7878"#,
            ),
            (
                r#"cmsgpack.pack(string.rep('x', 32)):sub(1, 3)"#,
                r#"1:sd92078"#,
            ),
            (
                r#"cmsgpack.pack(string.rep('x', 255)):sub(1, 3)"#,
                r#"1:sd9ff78"#,
            ),
            (
                r#"cmsgpack.pack(string.rep('x', 256)):sub(1, 4)"#,
                r#"1:sda010078"#,
            ),
            (
                r#"cmsgpack.pack(string.rep('x', 65535)):sub(1, 4)"#,
                r#"1:sdaffff78"#,
            ),
            (
                r#"cmsgpack.pack(string.rep('x', 65536)):sub(1, 6)"#,
                r#"1:sdb0001000078"#,
            ),
            (r#"#cmsgpack.pack(string.rep('x', 31))"#, r#"1:32"#),
            (r#"#cmsgpack.pack(string.rep('x', 32))"#, r#"1:34"#),
            (r#"#cmsgpack.pack(string.rep('x', 255))"#, r#"1:257"#),
            (r#"#cmsgpack.pack(string.rep('x', 256))"#, r#"1:259"#),
            (r#"#cmsgpack.pack(string.rep('x', 65535))"#, r#"1:65538"#),
            (r#"#cmsgpack.pack(string.rep('x', 65536))"#, r#"1:65541"#),
            (r#"cmsgpack.pack(pcall)"#, r#"1:sc0"#),
            (
                r#"cmsgpack.pack(coroutine.create(function() end))"#,
                r#"1:sc0"#,
            ),
        ]);
    }

    /// Array or map choice, holes, non-integer keys, 15/16/65535/65536 entries, the nesting
    /// limit and tables that contain themselves. Expected values from redis-server 7.0.15.
    #[test]
    fn pack_tables_match_redis() {
        assert_cases(&[
            (r#"cmsgpack.pack({})"#, r#"1:s90"#),
            (r#"cmsgpack.pack({1, 2, 3})"#, r#"1:s93010203"#),
            (r#"cmsgpack.pack({a = 1})"#, r#"1:s81a16101"#),
            (
                r#"cmsgpack.pack({'a', {b = {true}}})"#,
                r#"1:s92a16181a16291c3"#,
            ),
            (r#"cmsgpack.pack({[1] = 1, [3] = 3})"#, r#"1:s8201010303"#),
            (
                r#"cmsgpack.pack({[2] = 'b', [1] = 'a'})"#,
                r#"1:s92a161a162"#,
            ),
            (
                r#"cmsgpack.pack({[1] = 1, [2] = 2, [4] = 4})"#,
                r#"1:s83010102020404"#,
            ),
            (
                r#"cmsgpack.pack({1, 2, 3, nil, 5})"#,
                r#"1:s840101020203030505"#,
            ),
            (r#"cmsgpack.pack({nil, 2})"#, r#"1:s810202"#),
            (r#"cmsgpack.pack({1, 2, x = 3})"#, r#"1:s8301010202a17803"#),
            (r#"cmsgpack.pack({[0] = 1})"#, r#"1:s810001"#),
            (r#"cmsgpack.pack({[-1] = 1})"#, r#"1:s81ff01"#),
            (r#"cmsgpack.pack({[1.5] = 1})"#, r#"1:s81ca3fc0000001"#),
            (r#"cmsgpack.pack({[2^31] = 1})"#, r#"1:s81ce8000000001"#),
            (r#"cmsgpack.pack({[2^31 - 1] = 1})"#, r#"1:s81ce7fffffff01"#),
            (r#"cmsgpack.pack({['1'] = 1})"#, r#"1:s81a13101"#),
            (r#"cmsgpack.pack({[true] = false})"#, r#"1:s81c3c2"#),
            (
                r#"cmsgpack.pack({a = 1, b = 2, c = 3, d = 4, e = 5, [1] = 1, [2.5] = 2, [true] = 3, f = {1, 2}})"#,
                r#"1:s89a16101c303a16303a16202a16505a16404a166920102ca40200000020101"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 15 do t[i] = i end return t end)())"#,
                r#"1:s9f0102030405060708090a0b0c0d0e0f"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 16 do t[i] = i end return t end)())"#,
                r#"1:sdc00100102030405060708090a0b0c0d0e0f10"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 65535 do t[i] = 0 end return t end)()):sub(1, 4)"#,
                r#"1:sdcffff00"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 65536 do t[i] = 0 end return t end)()):sub(1, 6)"#,
                r#"1:sdd0001000000"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 15 do t['k' .. i] = i end return t end)())"#,
                r#"1:s8fa36b31320ca26b3909a26b3808a26b3101a36b31350fa26b3303a26b3202a36b31340ea36b31330da36b31300aa36b31310ba26b3606a26b3707a26b3404a26b3505"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 16 do t['k' .. i] = i end return t end)())"#,
                r#"1:sde0010a36b31320ca36b313610a26b3909a26b3808a26b3101a36b31350fa26b3303a26b3202a36b31340ea36b31330da36b31300aa36b31310ba26b3606a26b3707a26b3404a26b3505"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 65535 do t['k' .. i] = 0 end return t end)()):sub(1, 4)"#,
                r#"1:sdeffffa6"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} for i = 1, 65536 do t['k' .. i] = 0 end return t end)()):sub(1, 6)"#,
                r#"1:sdf00010000a6"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = 1 for i = 1, 16 do t = {t} end return t end)())"#,
                r#"1:s9191919191919191919191919191919101"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = 1 for i = 1, 17 do t = {t} end return t end)())"#,
                r#"1:s91919191919191919191919191919191c0"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} t[1] = t return t end)())"#,
                r#"1:s91919191919191919191919191919191c0"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} t.a = t return t end)())"#,
                r#"1:s81a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a16181a161c0"#,
            ),
            (
                r#"cmsgpack.pack((function() local t = {} t[t] = 1 return t end)())"#,
                r#"1:s81818181818181818181818181818181c001010101010101010101010101010101"#,
            ),
            (
                r#"cmsgpack.pack(setmetatable({}, {__index = function() return 1 end}))"#,
                r#"1:s90"#,
            ),
            (
                r#"cmsgpack.pack(setmetatable({1, 2}, {__len = function() return 9 end}))"#,
                r#"1:s920102"#,
            ),
        ]);
    }

    /// Every decodable type, containers of all widths, nil map values, number arguments read as
    /// strings, extra arguments ignored. Expected values from redis-server 7.0.15.
    #[test]
    fn unpack_matches_redis() {
        assert_cases(&[
            (r#"cmsgpack.unpack(unhex(''))"#, r#"0:"#),
            (r#"cmsgpack.unpack(unhex('c0c2c3'))"#, r#"3:nil false true"#),
            (
                r#"cmsgpack.unpack(unhex('007f80e0ff'))"#,
                r#"5:0 127 {} -32 -1"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cc00ccffcd0000cdffffce00000000ceffffffff'))"#,
                r#"6:0 255 0 65535 0 4294967295"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cf0000000000000000cfffffffffffffffffcf8000000000000000cf7fffffffffffffff'))"#,
                r#"4:0 -1 -9.2233720368547758e+18 9.2233720368547758e+18"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d000d0ffd080d17fffd18000d27fffffffd280000000'))"#,
                r#"7:0 -1 -128 32767 -32768 2147483647 -2147483648"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d38000000000000000d3ffffffffffffffffd37fffffffffffffff'))"#,
                r#"3:-9.2233720368547758e+18 -1 9.2233720368547758e+18"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('ca3fc00000ca7f800000caff800000ca7fc00000caffffffffca7f800001'))"#,
                r#"6:1.5 inf -inf nan -nan nan"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cb3fb999999999999acb7ff0000000000000cb7ff0000000000001'))"#,
                r#"3:0.10000000000000001 inf nan"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('a0a161d90161da000162db0000000163'))"#,
                r#"5:s s61 s61 s62 s63"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('bf') .. string.rep('z', 31))"#,
                r#"1:s7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('90809f0102030405060708090a0b0c0d0e0f'))"#,
                r#"3:{} {} {[1]=1,[10]=10,[11]=11,[12]=12,[13]=13,[14]=14,[15]=15,[2]=2,[3]=3,[4]=4,[5]=5,[6]=6,[7]=7,[8]=8,[9]=9}"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('dc0000dd00000000de0000df00000000'))"#,
                r#"4:{} {} {} {}"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('dc0001c3dd00000001c2de000101c2df0000000101c3'))"#,
                r#"4:{[1]=true} {[1]=false} {[1]=false} {[1]=true}"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('82a161a162a161a163'))"#,
                r#"1:{[s61]=s63}"#,
            ),
            (r#"cmsgpack.unpack(unhex('8101c0'))"#, r#"1:{}"#),
            (r#"cmsgpack.unpack(unhex('93c001c0'))"#, r#"1:{[2]=1}"#),
            (
                r#"cmsgpack.unpack(unhex('8191019202'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (r#"cmsgpack.unpack(unhex('81c3c2'))"#, r#"1:{[true]=false}"#),
            (r#"cmsgpack.unpack(5)"#, r#"1:53"#),
            (r#"cmsgpack.unpack(1.5)"#, r#"3:49 46 53"#),
            (r#"cmsgpack.unpack(unhex('010203'), 5)"#, r#"3:1 2 3"#),
            (r#"cmsgpack.unpack(unhex('010203'), 'x', {})"#, r#"3:1 2 3"#),
        ]);
    }

    /// Offsets (-1 at the end), numeric-string and fractional arguments, `unpack_limit(s, 0)`
    /// returning no offset. Expected values from redis-server 7.0.15.
    #[test]
    fn unpack_one_and_unpack_limit_match_redis() {
        assert_cases(&[
            (r#"cmsgpack.unpack_one(unhex('010203'))"#, r#"2:1 1"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), 1)"#, r#"2:2 2"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), 2)"#, r#"2:-1 3"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), 3)"#, r#"1:-1"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), nil)"#, r#"2:1 1"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), '2')"#, r#"2:-1 3"#),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), ' 0x2 ')"#,
                r#"2:-1 3"#,
            ),
            (r#"cmsgpack.unpack_one(unhex('010203'), 1.9)"#, r#"2:2 2"#),
            (r#"cmsgpack.unpack_one(unhex('010203'), -0.5)"#, r#"2:1 1"#),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), nil, 5)"#,
                r#"2:1 1"#,
            ),
            (r#"cmsgpack.unpack_one('')"#, r#"1:-1"#),
            (r#"cmsgpack.unpack_one('', 0)"#, r#"1:-1"#),
            (r#"cmsgpack.unpack_one(123)"#, r#"2:1 49"#),
            (
                r#"cmsgpack.unpack_one(unhex('92a161a162c3'))"#,
                r#"2:5 {[1]=s61,[2]=s62}"#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('92a161a162c3'), 5)"#,
                r#"2:-1 true"#,
            ),
            (r#"cmsgpack.unpack_limit(unhex('010203'), 2)"#, r#"3:2 1 2"#),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 3)"#,
                r#"4:-1 1 2 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 5)"#,
                r#"4:-1 1 2 3"#,
            ),
            (r#"cmsgpack.unpack_limit(unhex('010203'), 0)"#, r#"3:1 2 3"#),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 0, 0)"#,
                r#"3:1 2 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 0, nil)"#,
                r#"3:1 2 3"#,
            ),
            (r#"cmsgpack.unpack_limit(unhex('010203'), 0, 1)"#, r#"1:1"#),
            (r#"cmsgpack.unpack_limit(unhex('010203'), 0, 3)"#, r#"1:-1"#),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 2, 1)"#,
                r#"3:-1 2 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 1, 2)"#,
                r#"2:-1 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 2^31)"#,
                r#"4:-1 1 2 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 2^32 + 1)"#,
                r#"4:-1 1 2 3"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), '1', '1')"#,
                r#"2:2 2"#,
            ),
            (r#"cmsgpack.unpack_limit(unhex('01cd00'), 1)"#, r#"2:1 1"#),
        ]);
    }

    /// Truncated and unsupported input, refused map keys, argument errors (names, method calls,
    /// pcall), offset and limit errors. Expected values from redis-server 7.0.15.
    #[test]
    fn errors_match_redis() {
        assert_cases(&[
            (
                r#"cmsgpack.pack()"#,
                r#"ERROR: user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"#,
            ),
            (
                r#"pcall(cmsgpack.pack)"#,
                r#"2:false s62616420617267756d656e7420233020746f20273f2720284d6573736167655061636b207061636b206e6565647320696e7075742e29"#,
            ),
            (
                r#"cmsgpack.pack(unpack((function() local t = {} for i = 1, 4000 do t[i] = 1 end return t end)())):len()"#,
                r#"1:4000"#,
            ),
            (
                r#"cmsgpack.pack(unpack((function() local t = {} for i = 1, 4001 do t[i] = 1 end return t end)()))"#,
                r#"ERROR: user_script:1: bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cd00'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cc'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('ca0000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cb0000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('ce000000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('cf00000000000000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d0'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d1ff'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d2ffffff'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d3ffffffffffffff'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('a1'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d9'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d90261'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('da00'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('da0001'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('db000000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('dbffffffff'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('91'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('9f'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('dc00'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('ddffffffff'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81c0'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('8f'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('de00'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('df000000'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('dfffffffff01'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c1'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c4016100'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c5'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c6'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c7'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c8'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('c9'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d40102'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d5'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d6'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d7'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('d8'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('0102c1'))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81c001'))"#,
                r#"ERROR: table index is nil"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81c0c0'))"#,
                r#"ERROR: table index is nil"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81c0cd'))"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81cb7ff800000000000001'))"#,
                r#"ERROR: table index is NaN"#,
            ),
            (
                r#"cmsgpack.unpack(unhex('81ca7fc0000001'))"#,
                r#"ERROR: table index is NaN"#,
            ),
            (
                r#"cmsgpack.unpack()"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"#,
            ),
            (
                r#"cmsgpack.unpack(nil)"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got nil)"#,
            ),
            (
                r#"cmsgpack.unpack({})"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got table)"#,
            ),
            (
                r#"cmsgpack.unpack(true)"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got boolean)"#,
            ),
            (
                r#"cmsgpack.unpack(pcall)"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got function)"#,
            ),
            (
                r#"cmsgpack.unpack(coroutine.create(function() end))"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack' (string expected, got thread)"#,
            ),
            (
                r#"pcall(cmsgpack.unpack)"#,
                r#"2:false s62616420617267756d656e7420233120746f20273f272028737472696e672065787065637465642c20676f74206e6f2076616c756529"#,
            ),
            (
                r#"pcall(cmsgpack.unpack, unhex('cd'))"#,
                r#"2:false s4d697373696e6720627974657320696e20696e7075742e"#,
            ),
            (
                r#"pcall(cmsgpack.unpack, unhex('c1'))"#,
                r#"2:false s426164206461746120666f726d617420696e20696e7075742e"#,
            ),
            (
                r#"pcall(cmsgpack.unpack, unhex('81c001'))"#,
                r#"2:false s7461626c6520696e646578206973206e696c"#,
            ),
            (
                r#"cmsgpack:unpack()"#,
                r#"ERROR: user_script:1: calling 'unpack' on bad self (string expected, got table)"#,
            ),
            (
                r#"cmsgpack:unpack_one()"#,
                r#"ERROR: user_script:1: calling 'unpack_one' on bad self (string expected, got table)"#,
            ),
            (
                r#"cmsgpack:unpack_limit()"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack_limit' (number expected, got no value)"#,
            ),
            (
                r#"(function() local f = cmsgpack.unpack return f() end)()"#,
                r#"ERROR: user_script:1: bad argument #1 to 'f' (string expected, got no value)"#,
            ),
            (
                r#"(function() local f = cmsgpack.unpack_limit return f('a') end)()"#,
                r#"ERROR: user_script:1: bad argument #2 to 'f' (number expected, got no value)"#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 4)"#,
                r#"ERROR: user_script:1: Start offset 4 greater than input length 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), -1)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of -1 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 2^32 + 1)"#,
                r#"ERROR: user_script:1: Start offset 1 greater than input length 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), -2^32 - 1)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of -1 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 2^31)"#,
                r#"ERROR: user_script:1: Start offset -2147483648 greater than input length 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 1/0)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 0 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 0/0)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 0 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), true)"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_one' (number expected, got boolean)"#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), 'x')"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_one' (number expected, got string)"#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('010203'), {})"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_one' (number expected, got table)"#,
            ),
            (
                r#"cmsgpack.unpack_one('', 1)"#,
                r#"ERROR: user_script:1: Start offset 1 greater than input length 0."#,
            ),
            (
                r#"cmsgpack.unpack_one()"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack_one' (string expected, got no value)"#,
            ),
            (
                r#"cmsgpack.unpack_one(nil, 'x')"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_one' (number expected, got string)"#,
            ),
            (
                r#"cmsgpack.unpack_one({})"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack_one' (string expected, got table)"#,
            ),
            (
                r#"cmsgpack.unpack_one(unhex('01cd00'), 1)"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'))"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)"#,
            ),
            (
                r#"cmsgpack.unpack_limit()"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)"#,
            ),
            (
                r#"cmsgpack.unpack_limit('a', 'x')"#,
                r#"ERROR: user_script:1: bad argument #2 to 'unpack_limit' (number expected, got string)"#,
            ),
            (
                r#"cmsgpack.unpack_limit('a', 1, 'x')"#,
                r#"ERROR: user_script:1: bad argument #3 to 'unpack_limit' (number expected, got string)"#,
            ),
            (
                r#"cmsgpack.unpack_limit(nil, 1, 1)"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack_limit' (string expected, got nil)"#,
            ),
            (
                r#"cmsgpack.unpack_limit({}, 1)"#,
                r#"ERROR: user_script:1: bad argument #1 to 'unpack_limit' (string expected, got table)"#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), -5, 1)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 1 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), -5, 7)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 7 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 1, 4)"#,
                r#"ERROR: user_script:1: Start offset 4 greater than input length 3."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 1/0)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 0 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('010203'), 1, 0/0)"#,
                r#"ERROR: user_script:1: Invalid request to unpack with offset of 0 and limit of 3."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('01cd00'), 1, 1)"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
            (
                r#"cmsgpack.unpack_limit(unhex('01cd00'), 5)"#,
                r#"ERROR: user_script:1: Missing bytes in input."#,
            ),
        ]);
    }

    /// Where the C code's Lua stack checks stop unpacking: many results, deep nesting, both
    /// together. Expected values from redis-server 7.0.15.
    #[test]
    fn stack_limits_match_redis() {
        assert_cases(&[
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(1), 7976)))"#,
                r#"1:7976"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(1), 8000)))"#,
                r#"ERROR: user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(1), 9000)))"#,
                r#"ERROR: user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 7000))"#,
                r#"1:7001"#,
            ),
            (
                r#"select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 7974))"#,
                r#"1:7975"#,
            ),
            (
                r#"select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 7999))"#,
                r#"ERROR: user_script:1: stack overflow (in function mp_unpack_full)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 8000))"#,
                r#"ERROR: user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0xa0), 7500)))"#,
                r#"1:7500"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(1)))"#,
                r#"1:1"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 4000) .. string.char(1)))"#,
                r#"ERROR: user_script:1: stack overflow (in function mp_decode_to_lua_array)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(0x90)))"#,
                r#"ERROR: user_script:1: stack overflow (in function mp_decode_to_lua_array)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(0x80)))"#,
                r#"1:1"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x81, 1), 3999) .. string.char(1)))"#,
                r#"1:1"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x81, 1), 4000) .. string.char(1)))"#,
                r#"ERROR: user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 3998) .. string.char(0x81, 1, 1)))"#,
                r#"1:1"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(0x81, 1, 1)))"#,
                r#"ERROR: user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(0x91), 100000)))"#,
                r#"ERROR: user_script:1: stack overflow (in function mp_decode_to_lua_array)"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(1), 5000) .. string.rep(string.char(0x91), 1499) .. string.char(1)))"#,
                r#"1:5001"#,
            ),
            (
                r#"select('#', cmsgpack.unpack(string.rep(string.char(1), 5000) .. string.rep(string.char(0x91), 1500) .. string.char(1)))"#,
                r#"ERROR: user_script:1: stack overflow (in function mp_decode_to_lua_array)"#,
            ),
        ]);
    }

    /// pack then unpack, and unpack then pack (map order follows the decoded table). Expected
    /// values from redis-server 7.0.15.
    #[test]
    fn round_trips_match_redis() {
        assert_cases(&[
            (
                r#"cmsgpack.unpack(cmsgpack.pack(1, -1, 0.5, 'abc', {1, 2, {x = 'y'}}, true, false, nil))"#,
                r#"8:1 -1 0.5 s616263 {[1]=1,[2]=2,[3]={[s78]=s79}} true false nil"#,
            ),
            (
                r#"cmsgpack.unpack(cmsgpack.pack({a = {b = {c = {}}}}))"#,
                r#"1:{[s61]={[s62]={[s63]={}}}}"#,
            ),
            (
                r#"cmsgpack.unpack(cmsgpack.pack(2^53, -2^63, 2^63, 1e300, 1/0, -1/0, 0.1, string.rep('q', 300)))"#,
                r#"8:9007199254740992 -9.2233720368547758e+18 9.2233720368547758e+18 1.0000000000000001e+300 inf -inf 0.10000000000000001 s717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171717171"#,
            ),
            (
                r#"cmsgpack.pack(cmsgpack.unpack(unhex('88a161a162a163a164a165a166a167a168a169a16aa16ba16ca16da16ea16fa170')))"#,
                r#"1:s88a161a162a16fa170a163a164a16da16ea165a166a16ba16ca167a168a169a16a"#,
            ),
            (
                r#"cmsgpack.pack(cmsgpack.unpack(unhex('89010203040506070809c00a0b0c0d0e0f1011')))"#,
                r#"1:s8801020708101103040c0d0e0f05060a0b"#,
            ),
            (
                r#"cmsgpack.pack(cmsgpack.unpack(unhex('9a01c00203c0c004c00506')))"#,
                r#"1:s860101030204030a0609050704"#,
            ),
            (
                r#"cmsgpack.pack(cmsgpack.unpack(unhex('cfffffffffffffffffd9026162c4')))"#,
                r#"ERROR: user_script:1: Bad data format in input."#,
            ),
        ]);
    }

    /// The metadata fields and the field order `pairs` sees. Expected values from redis-server
    /// 7.0.15.
    #[test]
    fn library_fields_match_redis() {
        assert_cases(&[
            (r#"cmsgpack._NAME"#, r#"1:s636d73677061636b"#),
            (
                r#"cmsgpack._VERSION"#,
                r#"1:s6c75612d636d73677061636b20302e342e30"#,
            ),
            (
                r#"cmsgpack._COPYRIGHT"#,
                r#"1:s436f707972696768742028432920323031322c2053616c7661746f72652053616e66696c6970706f"#,
            ),
            (
                r#"cmsgpack._DESCRIPTION"#,
                r#"1:s4d6573736167655061636b204320696d706c656d656e746174696f6e20666f72204c7561"#,
            ),
            (
                r#"(function() local t = {} for k in pairs(cmsgpack) do t[#t + 1] = k end return table.concat(t, ',') end)()"#,
                r#"1:s5f4445534352495054494f4e2c7061636b2c5f4e414d452c756e7061636b2c5f434f505952494748542c5f56455253494f4e2c756e7061636b5f6f6e652c756e7061636b5f6c696d6974"#,
            ),
        ]);
    }

    /// Errors that escape the script carry the same text (the sandbox
    /// shows it as `ERR <text> script: ...`). Texts from redis-server 7.0.15
    /// (`EVAL "return cmsgpack.unpack('\\193')" 0` and the like).
    #[test]
    fn uncaught_errors_carry_the_script_position() {
        let lua = new_vm();
        let cases = [
            (
                "local x = 1\nreturn cmsgpack.unpack('\\205')",
                "user_script:2: Missing bytes in input.",
            ),
            (
                "return cmsgpack.unpack('\\193')",
                "user_script:1: Bad data format in input.",
            ),
            (
                "return cmsgpack.pack()",
                "user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
            (
                "local f = cmsgpack.unpack return f()",
                "user_script:1: bad argument #1 to 'f' (string expected, got no value)",
            ),
        ];
        for (script, expected) in cases {
            let error = lua
                .load(script)
                .set_name("@user_script")
                .exec()
                .unwrap_err();
            assert_eq!(bare_message(&error), expected, "script: {script}");
        }
    }

    /// Deliberate differences: Redis returns up to 7,999 values from one
    /// call (each case here succeeds there, returning all its values); mlua
    /// cannot hand back that many results, nor hold that many strings or
    /// tables, so the call fails with the error Redis gives a little later.
    #[test]
    fn results_mlua_cannot_return_fail_with_the_redis_error() {
        let too_many = "ERROR: user_script:1: stack overflow (too many return values at once; \
                        use unpack_one or unpack_limit instead.)";
        assert_cases(&[
            (
                "select('#', cmsgpack.unpack(string.rep(string.char(1), 7977)))",
                too_many,
            ),
            (
                "select('#', cmsgpack.unpack(string.rep(string.char(1), 7976), 1))",
                too_many,
            ),
            (
                "select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 7975))",
                too_many,
            ),
            (
                "select('#', cmsgpack.unpack(string.rep(string.char(0xa0), 7501)))",
                too_many,
            ),
            (
                "select('#', cmsgpack.unpack(string.rep(string.char(0x90), 7600)))",
                too_many,
            ),
            // Two held values (a map and its key) per level.
            (
                "select('#', cmsgpack.unpack(string.rep('\\129\\161a', 3999) .. '\\1'))",
                too_many,
            ),
            // Values held at once stay under the budget here, as in Redis.
            (
                "select('#', cmsgpack.unpack(string.rep('\\129\\161a', 3700) .. '\\1'))",
                "1:1",
            ),
            (
                "select('#', cmsgpack.unpack(string.rep(string.char(0xa0), 7000) \
                 .. string.rep(string.char(0x91), 499) .. string.char(1)))",
                "1:7001",
            ),
        ]);
    }

    /// A fresh VM (mlua's preallocated error slot not yet pooled) returns
    /// the most results allowed without mlua failing on its own.
    #[test]
    fn a_fresh_vm_returns_the_most_results_allowed() {
        for (case, expected) in [
            ("cmsgpack.unpack(string.rep(string.char(1), 7976))", 7976),
            ("cmsgpack.unpack(string.rep(string.char(1), 7975), 1)", 7975),
        ] {
            let lua = Lua::new();
            install(&lua).unwrap();
            let count: usize = lua
                .load(format!("return select('#', {case})"))
                .eval()
                .unwrap();
            assert_eq!(count, expected, "case: {case}");
        }
    }

    /// A table that contains itself many times would pack to an enormous
    /// string; the packer stops at its limit instead of growing on.
    #[test]
    fn packing_stops_at_the_length_limit() {
        let lua = new_vm();
        let table: Table = lua
            .load("local t = {} for i = 1, 200 do t[i] = t end return t")
            .eval()
            .unwrap();
        let mut packer = Packer {
            out: Vec::new(),
            limit: 1 << 20,
        };
        let error = packer.value(&Value::Table(table), 0).unwrap_err();
        assert!(matches!(error, mlua::Error::MemoryError(_)), "{error:?}");
        assert!(packer.out.len() <= 1 << 20);
    }

    /// C's float to integer casts as x86-64 performs them.
    #[test]
    fn truncation_follows_x86_64() {
        assert_eq!(truncate_to_i64(1.9), 1);
        assert_eq!(truncate_to_i64(-1.9), -1);
        assert_eq!(truncate_to_i64(-9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(truncate_to_i64(9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(truncate_to_i64(f64::INFINITY), i64::MIN);
        assert_eq!(truncate_to_i64(f64::NAN), i64::MIN);
        assert_eq!(truncate_to_i32(2_147_483_647.0), i32::MAX);
        assert_eq!(truncate_to_i32(2_147_483_648.0), i32::MIN);
        assert_eq!(truncate_to_i32(-2_147_483_649.0), i32::MIN);
    }
}
