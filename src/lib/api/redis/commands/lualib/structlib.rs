//! Redis's `struct` Lua library (Roberto Ierusalimschy's struct.c 1.7
//! with Redis's fixes, `lua_struct.c` in Redis 7.0) for EVAL scripts:
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])` and
//! `struct.size(fmt)`.
//!
//! Format options: `>` big and `<` little endian (native, i.e. the host's,
//! until one is given), `![n]` maximum alignment (default 8), `x` a zero
//! byte, `b/B h/H l/L` signed/unsigned 1, 2 and 8-byte integers, `T` an
//! unsigned 8-byte integer, `i/I[n]` signed/unsigned integers of `n` bytes
//! (default 4, at most 32), `f d` single and double floats,
//! `s` a zero-terminated string, `c[n]` `n` raw bytes (`c0`: the whole
//! string when packing, the previous unpacked value as length when
//! unpacking); spaces are ignored. The format ends at its first zero byte,
//! as the C code reads it as a C string.
//!
//! Invariants:
//! - bytes and numbers are what Redis's x86-64 build produces, including
//!   its undefined-behaviour corners: out-of-range doubles convert as
//!   `cvttsd2si` does, integers wider than 8 bytes carry only 64 bits
//!   (zero-filled when packing), and sign extension of such widths uses a
//!   shift count taken modulo 64;
//! - errors have the C library's texts, Lua 5.1's argument-error wording
//!   (function name as the caller spelled it, `calling 'f' on bad self`
//!   for method calls) and `luaL_error`'s `source:line: ` prefix; `pack`
//!   reports a missing value argument as `nil`, as the C code's stack
//!   marker makes Redis do, and its "string too short" names the argument
//!   after the string, as the C code does;
//! - `unpack` refuses, as Redis does, to return more values than a C
//!   function may push onto Lua 5.1's stack (with Redis's error, but about
//!   32 values sooner: mlua needs some of those slots), so a huge format
//!   cannot grow the result list without bound; `pack` output is bounded
//!   by the format length plus the given strings.

use mlua::{Lua, MultiValue, Value};

use super::support::{
    LUA_MAX_C_STACK, TWO_POW_63, argument_error, check_number, check_string, lua_error,
    optional_integer, truncate_to_i64,
};

/// Widest `i`/`I` integer, in bytes (`MAXINTSIZE`).
const MAX_INT_SIZE: i32 = 32;
/// Default of `!` (`MAXALIGN`: the alignment of a double on x86-64).
const MAX_ALIGN: i32 = 8;
/// Default size of `i`/`I` (`sizeof(int)`).
const INT_SIZE: i32 = 4;
/// `sizeof(short)`, `sizeof(long)`, `sizeof(size_t)`.
const SHORT_SIZE: usize = 2;
const LONG_SIZE: usize = 8;
const SIZE_T_SIZE: usize = 8;
const FLOAT_SIZE: usize = 4;
const DOUBLE_SIZE: usize = 8;
/// Slots mlua itself needs in a callback's frame to hand results back
/// (it fails with its own error about 22 slots short of Lua's limit), so
/// `unpack` stops this much earlier than Redis with Redis's error.
const MLUA_RESERVED_SLOTS: usize = 32;

/// Installs the library as the global `struct` (before the sandbox makes
/// globals read-only).
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    let library = lua.create_table()?;
    library.raw_set("pack", lua.create_function(pack)?)?;
    library.raw_set("unpack", lua.create_function(unpack)?)?;
    library.raw_set("size", lua.create_function(size)?)?;
    lua.globals().raw_set("struct", library)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Big,
    Little,
}

const NATIVE_ENDIAN: Endian = if cfg!(target_endian = "big") {
    Endian::Big
} else {
    Endian::Little
};

/// The byte order and maximum alignment in force (the C `Header`).
struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            endian: NATIVE_ENDIAN,
            align: 1,
        }
    }
}

/// A format string being read one option at a time.
struct Format<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Format<'a> {
    fn new(text: &'a [u8]) -> Self {
        // The C code reads the format as a C string.
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Format {
            bytes: &text[..end],
            at: 0,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let option = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(option)
    }

    fn next_is_digit(&self) -> bool {
        self.bytes.get(self.at).is_some_and(u8::is_ascii_digit)
    }

    /// The C `getnum`: the digits after an option, or `default`; refuses
    /// numbers beyond `INT_MAX` before they could wrap.
    fn number(&mut self, lua: &Lua, default: i32) -> mlua::Result<i32> {
        if !self.next_is_digit() {
            return Ok(default);
        }
        let mut value: i32 = 0;
        while let Some(&byte) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            let digit = i32::from(byte - b'0');
            if value > i32::MAX / 10 || value * 10 > i32::MAX - digit {
                return Err(lua_error(lua, "integral size overflow"));
            }
            value = value * 10 + digit;
            self.at += 1;
        }
        Ok(value)
    }
}

/// The C `optsize`: how many bytes `option` takes (0 for options that are
/// not values, and for `s`, whose size depends on the data).
fn option_size(lua: &Lua, option: u8, format: &mut Format<'_>) -> mlua::Result<usize> {
    Ok(match option {
        b'b' | b'B' | b'x' => 1,
        b'h' | b'H' => SHORT_SIZE,
        b'l' | b'L' => LONG_SIZE,
        b'T' => SIZE_T_SIZE,
        b'f' => FLOAT_SIZE,
        b'd' => DOUBLE_SIZE,
        b'c' => non_negative(format.number(lua, 1)?),
        b'i' | b'I' => {
            let size = format.number(lua, INT_SIZE)?;
            if size > MAX_INT_SIZE {
                return Err(lua_error(
                    lua,
                    &format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                ));
            }
            non_negative(size)
        }
        _ => 0,
    })
}

/// `getnum` never returns a negative number.
fn non_negative(number: i32) -> usize {
    usize::try_from(number).unwrap_or(0)
}

/// The C `gettoalign`: padding needed before an item of `size` bytes at
/// offset `len` (sizes that are not powers of two give the C's odd but
/// deterministic padding).
fn padding(len: usize, header: &Header, option: u8, size: usize) -> usize {
    if size == 0 || option == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    (size - (len & (size - 1))) & (size - 1)
}

/// The C `controloptions`: endianness, alignment and spaces; anything else
/// is an invalid option.
fn control_option(
    lua: &Lua,
    option: u8,
    format: &mut Format<'_>,
    header: &mut Header,
) -> mlua::Result<()> {
    match option {
        b' ' => {}
        b'>' => header.endian = Endian::Big,
        b'<' => header.endian = Endian::Little,
        b'!' => {
            let align = format.number(lua, MAX_ALIGN)?;
            let power_of_two = u32::try_from(align).is_ok_and(u32::is_power_of_two);
            if !power_of_two {
                return Err(lua_error(
                    lua,
                    &format!("alignment {align} is not a power of 2"),
                ));
            }
            header.align = non_negative(align);
        }
        _ => {
            let shown = String::from_utf8_lossy(&[option]).into_owned();
            return Err(argument_error(
                lua,
                1,
                &format!("invalid format option '{shown}'"),
            ));
        }
    }
    Ok(())
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, mut args: MultiValue) -> mlua::Result<mlua::String> {
    let format_text = check_string(lua, &args, 1)?;
    let format_bytes = format_text.as_bytes();
    let mut format = Format::new(&format_bytes);
    // Once it has the format, the C code pushes a nil marker above its
    // arguments, so in Redis the first missing value argument (where
    // packing stops) reads as nil, not as no value.
    args.push_back(Value::Nil);
    let mut header = Header::new();
    let mut next_arg = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(option) = format.next_option() {
        let mut size = option_size(lua, option, &mut format)?;
        out.resize(out.len() + padding(out.len(), &header, option, size), 0);
        match option {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let number = check_number(lua, &args, next_arg)?;
                next_arg += 1;
                put_integer(&mut out, number, header.endian, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let number = check_number(lua, &args, next_arg)? as f32;
                next_arg += 1;
                out.extend_from_slice(&match header.endian {
                    Endian::Big => number.to_be_bytes(),
                    Endian::Little => number.to_le_bytes(),
                });
            }
            b'd' => {
                let number = check_number(lua, &args, next_arg)?;
                next_arg += 1;
                out.extend_from_slice(&match header.endian {
                    Endian::Big => number.to_be_bytes(),
                    Endian::Little => number.to_le_bytes(),
                });
            }
            b'c' | b's' => {
                let text = check_string(lua, &args, next_arg)?;
                let text = text.as_bytes();
                next_arg += 1;
                if size == 0 {
                    size = text.len();
                }
                let Some(taken) = text.get(..size) else {
                    // The C code checks after moving past the string, so
                    // it names the next argument.
                    return Err(argument_error(lua, next_arg as i64, "string too short"));
                };
                out.extend_from_slice(taken);
                if option == b's' {
                    out.push(0);
                }
            }
            _ => control_option(lua, option, &mut format, &mut header)?,
        }
    }
    lua.create_string(&out)
}

/// The C `putinteger`: the low `size` bytes of the number's 64-bit
/// pattern; widths beyond 8 bytes are zero-filled.
fn put_integer(out: &mut Vec<u8>, number: f64, endian: Endian, size: usize) {
    let mut value = if number < 0.0 {
        truncate_to_i64(number) as u64
    } else {
        truncate_to_u64(number)
    };
    let mut bytes = [0u8; MAX_INT_SIZE as usize];
    for byte in bytes[..size].iter_mut() {
        *byte = (value & 0xff) as u8;
        value >>= 8;
    }
    if endian == Endian::Big {
        bytes[..size].reverse();
    }
    out.extend_from_slice(&bytes[..size]);
}

/// C's `(unsigned long)d` as gcc compiles it for x86-64: values below 2^63
/// (and NaN) go through the signed conversion, larger ones are converted
/// after subtracting 2^63, so 2^64 and infinity give 0.
fn truncate_to_u64(number: f64) -> u64 {
    if number >= TWO_POW_63 {
        (truncate_to_i64(number - TWO_POW_63) as u64) ^ (1 << 63)
    } else {
        truncate_to_i64(number) as u64
    }
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position
/// after them.
fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let format_text = check_string(lua, &args, 1)?;
    let data = check_string(lua, &args, 2)?;
    let start = optional_integer(lua, &args, 3, 1)?;
    // `pos` is a size_t in the C code: a negative start wraps to a huge
    // offset (refused by the length checks unless nothing is read).
    if start == 0 {
        return Err(argument_error(lua, 3, "offset must be 1 or greater"));
    }
    let mut pos = (start as u64 as usize).wrapping_sub(1);
    let format_bytes = format_text.as_bytes();
    let data = data.as_bytes();
    let mut format = Format::new(&format_bytes);
    let mut header = Header::new();
    let mut results: Vec<Value> = Vec::new();
    while let Some(option) = format.next_option() {
        let mut size = option_size(lua, option, &mut format)?;
        pos = pos.wrapping_add(padding(pos, &header, option, size));
        let mut item = slice_at(&data, pos, size).ok_or_else(|| data_too_short(lua))?;
        // Room for this item and the final position (`luaL_checkstack`).
        if args.len() + results.len() + 2 > LUA_MAX_C_STACK - MLUA_RESERVED_SLOTS {
            return Err(lua_error(lua, "stack overflow (too many results)"));
        }
        match option {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = option.is_ascii_lowercase();
                results.push(Value::Number(get_integer(item, header.endian, signed)));
            }
            b'x' => {}
            b'f' => {
                let mut bytes = [0u8; FLOAT_SIZE];
                bytes.copy_from_slice(item);
                let number = match header.endian {
                    Endian::Big => f32::from_be_bytes(bytes),
                    Endian::Little => f32::from_le_bytes(bytes),
                };
                results.push(Value::Number(f64::from(number)));
            }
            b'd' => {
                let mut bytes = [0u8; DOUBLE_SIZE];
                bytes.copy_from_slice(item);
                results.push(Value::Number(match header.endian {
                    Endian::Big => f64::from_be_bytes(bytes),
                    Endian::Little => f64::from_le_bytes(bytes),
                }));
            }
            b'c' => {
                if size == 0 {
                    // The length is the previous value, which is consumed.
                    let length = match results.last() {
                        Some(previous) => lua.coerce_number(previous.clone())?,
                        None => None,
                    };
                    let Some(length) = length else {
                        return Err(lua_error(lua, "format 'c0' needs a previous size"));
                    };
                    results.pop();
                    size = truncate_to_u64(length) as usize;
                    item = slice_at(&data, pos, size).ok_or_else(|| data_too_short(lua))?;
                }
                results.push(Value::String(lua.create_string(item)?));
            }
            b's' => {
                let rest = data.get(pos..).unwrap_or_default();
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    return Err(lua_error(lua, "unfinished string in data"));
                };
                results.push(Value::String(lua.create_string(&rest[..end])?));
                size = end + 1;
            }
            _ => control_option(lua, option, &mut format, &mut header)?,
        }
        pos = pos.wrapping_add(size);
    }
    // `lua_pushinteger` of the size_t position: reads back as signed.
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_iter(results))
}

/// `size` bytes of `data` at `pos`, if they are all there.
fn slice_at(data: &[u8], pos: usize, size: usize) -> Option<&[u8]> {
    data.get(pos..)?.get(..size)
}

fn data_too_short(lua: &Lua) -> mlua::Error {
    argument_error(lua, 2, "data string too short")
}

/// The C `getinteger`: bytes folded into 64 bits (for widths beyond 8,
/// only the last 8 folded remain), then sign-extended from the width's
/// top bit with x86's shift-count masking.
fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
    let fold = |value: u64, byte: &u8| (value << 8) | u64::from(*byte);
    let value = match endian {
        Endian::Big => bytes.iter().fold(0, fold),
        Endian::Little => bytes.iter().rev().fold(0, fold),
    };
    if !signed {
        return value as f64;
    }
    let sign_bit = (bytes.len() as u32).wrapping_mul(8).wrapping_sub(1) & 63;
    let mask = u64::MAX << sign_bit;
    let extended = if value & mask != 0 {
        value | mask
    } else {
        value
    };
    extended as i64 as f64
}

/// `struct.size(fmt)`: the bytes `pack` produces for a fixed-size format.
fn size(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let format_text = check_string(lua, &args, 1)?;
    let format_bytes = format_text.as_bytes();
    let mut format = Format::new(&format_bytes);
    let mut header = Header::new();
    let mut pos: usize = 0;
    while let Some(option) = format.next_option() {
        let size = option_size(lua, option, &mut format)?;
        pos = pos.wrapping_add(padding(pos, &header, option, size));
        if option == b's' {
            return Err(argument_error(lua, 1, "option 's' has no fixed size"));
        }
        if option == b'c' && size == 0 {
            return Err(argument_error(lua, 1, "option 'c0' has no fixed size"));
        }
        // Letters and digits the sizes did not know are skipped here, not
        // refused (the C code only hands other bytes to controloptions).
        if !option.is_ascii_alphanumeric() {
            control_option(lua, option, &mut format, &mut header)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}

#[cfg(test)]
mod tests {
    //! Every expected value below was recorded from redis-server 7.0.15
    //! (Debian's x86-64 build) through EVAL, in the form `test_support`
    //! describes: `ok` and the values, or `err` and the error text.

    use super::super::test_support::{check, describe, run_script};
    use super::*;

    /// `struct.pack`: bytes, alignment, conversions and errors.
    #[rustfmt::skip]
    const PACK_CASES: &[(&str, &str)] = &[
        (r#"struct.pack('b', 1)"#, r#"ok "\x01""#),
        (r#"struct.pack('b', -1)"#, r#"ok "\xff""#),
        (r#"struct.pack('b', 127)"#, r#"ok "\x7f""#),
        (r#"struct.pack('b', 128)"#, r#"ok "\x80""#),
        (r#"struct.pack('b', 255)"#, r#"ok "\xff""#),
        (r#"struct.pack('b', 256)"#, r#"ok "\x00""#),
        (r#"struct.pack('b', -129)"#, r#"ok "\x7f""#),
        (r#"struct.pack('B', -1)"#, r#"ok "\xff""#),
        (r#"struct.pack('B', 300)"#, r#"ok ",""#),
        (r#"struct.pack('b', 1.9)"#, r#"ok "\x01""#),
        (r#"struct.pack('b', -1.9)"#, r#"ok "\xff""#),
        (r#"struct.pack('<h', -2)"#, r#"ok "\xfe\xff""#),
        (r#"struct.pack('>h', 0x1234)"#, r#"ok "\x124""#),
        (r#"struct.pack('<h', 0x1234)"#, r#"ok "4\x12""#),
        (r#"struct.pack('>H', 65535)"#, r#"ok "\xff\xff""#),
        (r#"struct.pack('>h', 70000)"#, r#"ok "\x11p""#),
        (r#"struct.pack('h', 1)"#, r#"ok "\x01\x00""#),
        (r#"struct.pack('<l', -1)"#, r#"ok "\xff\xff\xff\xff\xff\xff\xff\xff""#),
        (r#"struct.pack('>l', 1)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x01""#),
        (r#"struct.pack('>L', 2^32)"#, r#"ok "\x00\x00\x00\x01\x00\x00\x00\x00""#),
        (r#"struct.pack('>l', 2^53)"#, r#"ok "\x00 \x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>l', 2^63)"#, r#"ok "\x80\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>l', 2^63 - 1024)"#, r#"ok "\x7f\xff\xff\xff\xff\xff\xfc\x00""#),
        (r#"struct.pack('>L', 2^64)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('<L', 1e20)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('<l', -2^63)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x80""#),
        (r#"struct.pack('<l', -1e20)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x80""#),
        (r#"struct.pack('<L', 1/0)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('<L', -1/0)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x80""#),
        (r#"struct.pack('<L', 0/0)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x80""#),
        (r#"struct.pack('<l', -(0/0))"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x80""#),
        (r#"struct.pack('<T', 5)"#, r#"ok "\x05\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>T', -5)"#, r#"ok "\xff\xff\xff\xff\xff\xff\xff\xfb""#),
        (r#"struct.pack('i', 1)"#, r#"ok "\x01\x00\x00\x00""#),
        (r#"struct.pack('<i', 1)"#, r#"ok "\x01\x00\x00\x00""#),
        (r#"struct.pack('>i', -1)"#, r#"ok "\xff\xff\xff\xff""#),
        (r#"struct.pack('>i', 2^31)"#, r#"ok "\x80\x00\x00\x00""#),
        (r#"struct.pack('<i3', -1)"#, r#"ok "\xff\xff\xff""#),
        (r#"struct.pack('>I3', 2^24 + 5)"#, r#"ok "\x00\x00\x05""#),
        (r#"struct.pack('<i8', -2)"#, r#"ok "\xfe\xff\xff\xff\xff\xff\xff\xff""#),
        (r#"struct.pack('<i16', -2)"#, r#"ok "\xfe\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>i16', -2)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe""#),
        (r#"struct.pack('>I9', 2^64 - 2^11)"#, r#"ok "\x00\xff\xff\xff\xff\xff\xff\xf8\x00""#),
        (r#"struct.pack('<i0', 5)"#, r#"ok """#),
        (r#"struct.pack('<i0', 'x')"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got string)"#),
        (r#"struct.pack('<I1', 256)"#, r#"ok "\x00""#),
        (r#"struct.pack('i32', 1)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>i32', -1)"#, r#"ok "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff""#),
        (r#"struct.pack('i33', 1)"#, r#"err user_script:1: integral size 33 is larger than limit of 32"#),
        (r#"struct.pack('i99999999999', 1)"#, r#"err user_script:1: integral size overflow"#),
        (r#"struct.pack('i2147483647', 1)"#, r#"err user_script:1: integral size 2147483647 is larger than limit of 32"#),
        (r#"struct.pack('i2147483648', 1)"#, r#"err user_script:1: integral size overflow"#),
        (r#"struct.pack('i000000000000000000004', 1)"#, r#"ok "\x01\x00\x00\x00""#),
        (r#"struct.pack('<f', 1.5)"#, r#"ok "\x00\x00\xc0?""#),
        (r#"struct.pack('>f', -0.1)"#, r#"ok "\xbd\xcc\xcc\xcd""#),
        (r#"struct.pack('<f', 1e40)"#, r#"ok "\x00\x00\x80\x7f""#),
        (r#"struct.pack('<f', -1e40)"#, r#"ok "\x00\x00\x80\xff""#),
        (r#"struct.pack('<f', 1e-50)"#, r#"ok "\x00\x00\x00\x00""#),
        (r#"struct.pack('<f', 0/0)"#, r#"ok "\x00\x00\xc0\xff""#),
        (r#"struct.pack('f', 3.4028235677973366e38)"#, r#"ok "\x00\x00\x80\x7f""#),
        (r#"struct.pack('<d', 1.5)"#, r#"ok "\x00\x00\x00\x00\x00\x00\xf8?""#),
        (r#"struct.pack('>d', 1/0)"#, r#"ok "\x7f\xf0\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('>d', -0.0)"#, r#"ok "\x80\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('<d', 0/0)"#, r#"ok "\x00\x00\x00\x00\x00\x00\xf8\xff""#),
        (r#"struct.pack('d', 2^-1074)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('x')"#, r#"ok "\x00""#),
        (r#"struct.pack('bxb', 1, 2)"#, r#"ok "\x01\x00\x02""#),
        (r#"struct.pack('xx')"#, r#"ok "\x00\x00""#),
        (r#"struct.pack('!4 b i', 1, 2)"#, r#"ok "\x01\x00\x00\x00\x02\x00\x00\x00""#),
        (r#"struct.pack('!b d', 1, 2)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@""#),
        (r#"struct.pack('!2 b i', 1, 2)"#, r#"ok "\x01\x00\x02\x00\x00\x00""#),
        (r#"struct.pack('!1 b i', 1, 2)"#, r#"ok "\x01\x02\x00\x00\x00""#),
        (r#"struct.pack('!16 b d', 1, 2)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@""#),
        (r#"struct.pack('!8 b c3 i', 1, 'abc', 5)"#, r#"ok "\x01abc\x05\x00\x00\x00""#),
        (r#"struct.pack('!8 b s i', 1, 'ab', 3)"#, r#"ok "\x01ab\x00\x03\x00\x00\x00""#),
        (r#"struct.pack('!4 b x h', 1, 2)"#, r#"ok "\x01\x00\x02\x00""#),
        (r#"struct.pack('!4 b i3 b', 1, 2, 3)"#, r#"ok "\x01\x00\x00\x02\x00\x00\x03""#),
        (r#"struct.pack('!4 b i3 b i6 b', 1, 2, 3, 4, 5)"#, r#"ok "\x01\x00\x00\x02\x00\x00\x03\x00\x04\x00\x00\x00\x00\x00\x05""#),
        (r#"struct.pack('!8 b T b l b h b f b d', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x05\x00\x06\x00\x07\x00\x00\x00\x00\x00\x00A\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00$@""#),
        (r#"struct.pack('!4 b i16', 1, 2)"#, r#"ok "\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('!64 b i32', 1, 2)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00""#),
        (r#"struct.pack('!3 b', 1)"#, r#"err user_script:1: alignment 3 is not a power of 2"#),
        (r#"struct.pack('!0 b', 1)"#, r#"err user_script:1: alignment 0 is not a power of 2"#),
        (r#"struct.pack('!2147483648', 1)"#, r#"err user_script:1: integral size overflow"#),
        (r#"struct.pack('!1073741824 b', 1)"#, r#"ok "\x01""#),
        (r#"struct.pack('c3', 'abcdef')"#, r#"ok "abc""#),
        (r#"struct.pack('c0', 'abc')"#, r#"ok "abc""#),
        (r#"struct.pack('c', 'xyz')"#, r#"ok "x""#),
        (r#"struct.pack('c5', 'ab')"#, r#"err user_script:1: bad argument #3 to 'pack' (string too short)"#),
        (r#"struct.pack('b c5', 1, 'ab')"#, r#"err user_script:1: bad argument #4 to 'pack' (string too short)"#),
        (r#"struct.pack('c', 12)"#, r#"ok "1""#),
        (r#"struct.pack('c0', 1.5)"#, r#"ok "1.5""#),
        (r#"struct.pack('c0', 2^63)"#, r#"ok "9.2233720368548e+18""#),
        (r#"struct.pack('c2', {})"#, r#"err user_script:1: bad argument #2 to 'pack' (string expected, got table)"#),
        (r#"struct.pack('c0', '')"#, r#"ok """#),
        (r#"struct.pack('c00', 'ab')"#, r#"ok "ab""#),
        (r#"struct.pack('c3', 'a\0bcd')"#, r#"ok "a\x00b""#),
        (r#"struct.pack('c2147483647', 'x')"#, r#"err user_script:1: bad argument #3 to 'pack' (string too short)"#),
        (r#"struct.pack('s', 'hello')"#, r#"ok "hello\x00""#),
        (r#"struct.pack('s', 'a\0b')"#, r#"ok "a\x00b\x00""#),
        (r#"struct.pack('s3', 'abcdef')"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option '3')"#),
        (r#"struct.pack('s', 5)"#, r#"ok "5\x00""#),
        (r#"struct.pack('s', '')"#, r#"ok "\x00""#),
        (r#"struct.pack('s')"#, r#"err user_script:1: bad argument #2 to 'pack' (string expected, got nil)"#),
        (r#"struct.pack(' < i ', 1)"#, r#"ok "\x01\x00\x00\x00""#),
        (r#"struct.pack('<i>i', 1, 1)"#, r#"ok "\x01\x00\x00\x00\x00\x00\x00\x01""#),
        (r#"struct.pack('q')"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option 'q')"#),
        (r#"struct.pack('=b', 1)"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option '=')"#),
        (r#"struct.pack('b', 1, 2)"#, r#"ok "\x01""#),
        (r#"struct.pack('b')"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack('b', 'x')"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got string)"#),
        (r#"struct.pack('b', '12')"#, r#"ok "\x0c""#),
        (r#"struct.pack('b', ' 0x10 ')"#, r#"ok "\x10""#),
        (r#"struct.pack('b', nil)"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack('d', true)"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got boolean)"#),
        (r#"struct.pack('f', {})"#, r#"err user_script:1: bad argument #2 to 'pack' (number expected, got table)"#),
        (r#"struct.pack()"#, r#"err user_script:1: bad argument #1 to 'pack' (string expected, got no value)"#),
        (r#"struct.pack(nil)"#, r#"err user_script:1: bad argument #1 to 'pack' (string expected, got nil)"#),
        (r#"struct.pack({})"#, r#"err user_script:1: bad argument #1 to 'pack' (string expected, got table)"#),
        (r#"struct.pack(12)"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option '1')"#),
        (r#"struct.pack('')"#, r#"ok """#),
        (r#"struct.pack('b\0q', 1)"#, r#"ok "\x01""#),
        (r#"struct.pack('\0q')"#, r#"ok """#),
        (r#"struct.pack('b', 1, 'i33')"#, r#"ok "\x01""#),
        (r#"struct.pack('bb', 1, nil)"#, r#"err user_script:1: bad argument #3 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack('hhh', 1, 2, 'z')"#, r#"err user_script:1: bad argument #4 to 'pack' (number expected, got string)"#),
        (r#"struct.pack('<I4', 2^32 + 1)"#, r#"ok "\x01\x00\x00\x00""#),
        (r#"struct.pack('>i4', -2^31 - 1)"#, r#"ok "\x7f\xff\xff\xff""#),
        (r#"struct.pack('>i7', -1)"#, r#"ok "\xff\xff\xff\xff\xff\xff\xff""#),
        (r#"struct.pack('B', 0.5)"#, r#"ok "\x00""#),
        (r#"struct.pack('b', -0.5)"#, r#"ok "\x00""#),
        (r#"struct.pack('{')"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option '{')"#),
        (r#"struct.pack('X')"#, r#"err user_script:1: bad argument #1 to 'pack' (invalid format option 'X')"#),
        (r#"struct.pack('b b b', 1, 2, 3)"#, r#"ok "\x01\x02\x03""#),
        (r#"struct.pack('bb', 1)"#, r#"err user_script:1: bad argument #3 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack('b s', 1)"#, r#"err user_script:1: bad argument #3 to 'pack' (string expected, got nil)"#),
        (r#"struct.pack('bbb', 1, 2)"#, r#"err user_script:1: bad argument #4 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack(('x'):rep(8193) .. 'bb', 1)"#, r#"err user_script:1: bad argument #3 to 'pack' (number expected, got nil)"#),
        (r#"struct.pack('c0')"#, r#"err user_script:1: bad argument #2 to 'pack' (string expected, got nil)"#),
    ];

    /// `struct.unpack`: values, positions, `c0`, `s`, errors and round trips.
    #[rustfmt::skip]
    const UNPACK_CASES: &[(&str, &str)] = &[
        (r#"struct.unpack('<i', '\1\0\0\0')"#, r#"ok 1 5"#),
        (r#"struct.unpack('>i', '\255\255\255\254')"#, r#"ok -2 5"#),
        (r#"struct.unpack('i', '\1\0\0\0\5')"#, r#"ok 1 5"#),
        (r#"struct.unpack('b', '\255')"#, r#"ok -1 2"#),
        (r#"struct.unpack('B', '\255')"#, r#"ok 255 2"#),
        (r#"struct.unpack('b', '\127')"#, r#"ok 127 2"#),
        (r#"struct.unpack('b', '\128')"#, r#"ok -128 2"#),
        (r#"struct.unpack('<h', '\255\127')"#, r#"ok 32767 3"#),
        (r#"struct.unpack('<h', '\0\128')"#, r#"ok -32768 3"#),
        (r#"struct.unpack('>H', '\255\254')"#, r#"ok 65534 3"#),
        (r#"struct.unpack('<l', ('\255'):rep(8))"#, r#"ok -1 9"#),
        (r#"struct.unpack('<L', ('\255'):rep(8))"#, r#"ok 1.8446744073709552e+19 9"#),
        (r#"struct.unpack('>l', '\128' .. ('\0'):rep(7))"#, r#"ok -9.2233720368547758e+18 9"#),
        (r#"struct.unpack('>L', '\128' .. ('\0'):rep(6) .. '\1')"#, r#"ok 9.2233720368547758e+18 9"#),
        (r#"struct.unpack('<T', '\5\0\0\0\0\0\0\0')"#, r#"ok 5 9"#),
        (r#"struct.unpack('>I3', '\1\2\3')"#, r#"ok 66051 4"#),
        (r#"struct.unpack('<i3', '\255\255\255')"#, r#"ok -1 4"#),
        (r#"struct.unpack('<i3', '\255\255\127')"#, r#"ok 8388607 4"#),
        (r#"struct.unpack('<I9', ('\255'):rep(9))"#, r#"ok 1.8446744073709552e+19 10"#),
        (r#"struct.unpack('<i9', ('\255'):rep(9))"#, r#"ok -1 10"#),
        (r#"struct.unpack('<i9', ('\1'):rep(9))"#, r#"ok -127 10"#),
        (r#"struct.unpack('>i9', ('\1'):rep(9))"#, r#"ok -127 10"#),
        (r#"struct.unpack('>i9', '\128' .. ('\1'):rep(8))"#, r#"ok -127 10"#),
        (r#"struct.unpack('<i16', ('\255'):rep(16))"#, r#"ok -1 17"#),
        (r#"struct.unpack('<i16', ('\1'):rep(15) .. '\128')"#, r#"ok 72340172838076672 17"#),
        (r#"struct.unpack('<i12', ('\1'):rep(11) .. '\128')"#, r#"ok -2130640639 13"#),
        (r#"struct.unpack('<i32', ('\1'):rep(31) .. '\128')"#, r#"ok 72340172838076672 33"#),
        (r#"struct.unpack('<i31', ('\1'):rep(30) .. '\128')"#, r#"ok -35746218218815232 32"#),
        (r#"struct.unpack('>I32', ('\255'):rep(32))"#, r#"ok 1.8446744073709552e+19 33"#),
        (r#"struct.unpack('<i0', 'abc')"#, r#"ok 0 1"#),
        (r#"struct.unpack('<I0', 'abc')"#, r#"ok 0 1"#),
        (r#"struct.unpack('i0', '')"#, r#"ok 0 1"#),
        (r#"struct.unpack('<I2', '\1\2')"#, r#"ok 513 3"#),
        (r#"struct.unpack('<i7', ('\255'):rep(6) .. '\127')"#, r#"ok 36028797018963968 8"#),
        (r#"struct.unpack('<i7', ('\255'):rep(7))"#, r#"ok -1 8"#),
        (r#"struct.unpack('b', 'abc', 2)"#, r#"ok 98 3"#),
        (r#"struct.unpack('b', 'abc', 3)"#, r#"ok 99 4"#),
        (r#"struct.unpack('b', 'abc', 4)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b', 'abc', 0)"#, r#"err user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)"#),
        (r#"struct.unpack('b', 'abc', -1)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b', 'abc', 2.7)"#, r#"ok 98 3"#),
        (r#"struct.unpack('b', 'abc', 0.5)"#, r#"err user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)"#),
        (r#"struct.unpack('b', 'abc', '2')"#, r#"ok 98 3"#),
        (r#"struct.unpack('b', 'abc', 'x')"#, r#"err user_script:1: bad argument #3 to 'unpack' (number expected, got string)"#),
        (r#"struct.unpack('b', 'abc', nil)"#, r#"ok 97 2"#),
        (r#"struct.unpack('b', 'abc', {})"#, r#"err user_script:1: bad argument #3 to 'unpack' (number expected, got table)"#),
        (r#"struct.unpack('b', 'abc', true)"#, r#"err user_script:1: bad argument #3 to 'unpack' (number expected, got boolean)"#),
        (r#"struct.unpack('b', 'abc', 1/0)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b', 'abc', 0/0)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('', 'abc', 10)"#, r#"ok 10"#),
        (r#"struct.unpack('', 'abc', -5)"#, r#"ok -5"#),
        (r#"struct.unpack('', 'abc', 2^53)"#, r#"ok 9007199254740992"#),
        (r#"struct.unpack('', 'abc', 2^63)"#, r#"ok -9.2233720368547758e+18"#),
        (r#"struct.unpack('', 'abc', -2^63)"#, r#"ok -9.2233720368547758e+18"#),
        (r#"struct.unpack('', 'abc', 1/0)"#, r#"ok -9.2233720368547758e+18"#),
        (r#"struct.unpack('', '')"#, r#"ok 1"#),
        (r#"struct.unpack('x', 'abc', 10)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('x', 'abc', 4)"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('x', 'abc', 3)"#, r#"ok 4"#),
        (r#"struct.unpack('<f', struct.pack('<f', 1.5))"#, r#"ok 1.5 5"#),
        (r#"struct.unpack('>f', struct.pack('>f', -0.1))"#, r#"ok -0.10000000149011612 5"#),
        (r#"struct.unpack('f', '\0\0\192\127')"#, r#"ok nan 5"#),
        (r#"struct.unpack('f', '\1\0\192\255')"#, r#"ok -nan 5"#),
        (r#"struct.unpack('f', '\0\0\128\127')"#, r#"ok inf 5"#),
        (r#"struct.unpack('f', '\1\0\0\0')"#, r#"ok 1.4012984643248171e-45 5"#),
        (r#"struct.unpack('>d', struct.pack('>d', -2.25))"#, r#"ok -2.25 9"#),
        (r#"struct.unpack('<d', '\0\0\0\0\0\0\248\127')"#, r#"ok nan 9"#),
        (r#"struct.unpack('<d', '\1\0\0\0\0\0\248\255')"#, r#"ok -nan 9"#),
        (r#"struct.unpack('<d', '\0\0\0\0\0\0\240\255')"#, r#"ok -inf 9"#),
        (r#"struct.unpack('d', '1234567')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('c3', 'abcdef')"#, r#"ok "abc" 4"#),
        (r#"struct.unpack('c0', 'abc')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('b c0', '\3abcdef')"#, r#"ok "abc" 5"#),
        (r#"struct.unpack('B c0 B', '\2ab\7')"#, r#"ok "ab" 7 5"#),
        (r#"struct.unpack('c1 c0', '3abc')"#, r#"ok "abc" 5"#),
        (r#"struct.unpack('c1 c0', 'xabc')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('c1 c0', ' 0x2 abc')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('c2 c0', '2 abc')"#, r#"ok "ab" 5"#),
        (r#"struct.unpack('b c0', '\255abc')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b c0', '\4abc')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b c0', '\0abc')"#, r#"ok "" 2"#),
        (r#"struct.unpack('d c0', struct.pack('d', 2.5) .. 'abc')"#, r#"ok "ab" 11"#),
        (r#"struct.unpack('d c0', struct.pack('d', -0.5) .. 'abc')"#, r#"ok "" 9"#),
        (r#"struct.unpack('d c0', struct.pack('d', -1) .. 'abc')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('d c0', struct.pack('d', 0/0) .. 'abc')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('d c0', struct.pack('d', 2^64) .. 'abc')"#, r#"ok "" 9"#),
        (r#"struct.unpack('x c0', 'abc')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('b x c0', '\2?ab')"#, r#"ok "ab" 5"#),
        (r#"struct.unpack('b c0 c0', '\1\2ab')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('b c0 c0', '\1' .. '2ab')"#, r#"ok "ab" 5"#),
        (r#"struct.unpack('s c0', '2\0ab')"#, r#"ok "ab" 5"#),
        (r#"struct.unpack('c', 'abc')"#, r#"ok "a" 2"#),
        (r#"struct.unpack('c00', 'abc')"#, r#"err user_script:1: format 'c0' needs a previous size"#),
        (r#"struct.unpack('c4', 'abc')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('s', 'ab\0cd')"#, r#"ok "ab" 4"#),
        (r#"struct.unpack('s', 'abc')"#, r#"err user_script:1: unfinished string in data"#),
        (r#"struct.unpack('s s', 'a\0b\0')"#, r#"ok "a" "b" 5"#),
        (r#"struct.unpack('s', '')"#, r#"err user_script:1: unfinished string in data"#),
        (r#"struct.unpack('s', '\0')"#, r#"ok "" 2"#),
        (r#"struct.unpack('s b', 'a\0\5')"#, r#"ok "a" 5 4"#),
        (r#"struct.unpack('x b', 'ab')"#, r#"ok 98 3"#),
        (r#"struct.unpack('!4 b i', '\1\0\0\0\2\0\0\0')"#, r#"ok 1 2 9"#),
        (r#"struct.unpack('!4 b i', '\1\0\0')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('!4 b i', '\1\0\0\0\2\0\0')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('!2 b d', '\1\0' .. struct.pack('d', 3))"#, r#"ok 1 3 11"#),
        (r#"struct.unpack('!8 b d', '\1' .. ('\0'):rep(7) .. struct.pack('d', 3))"#, r#"ok 1 3 17"#),
        (r#"struct.unpack('!4 b i3 b', '\1\0\0\0\2\0\0\3')"#, r#"ok 1 512 0 8"#),
        (r#"struct.unpack('!4 b i', '\1\0\0\0\2\0\0\0', 2)"#, r#"ok 0 2 9"#),
        (r#"struct.unpack('!4 i', '\1\0\0\0\2\0\0\0\0', 2)"#, r#"ok 2 9"#),
        (r#"struct.unpack('!3', 'a')"#, r#"err user_script:1: alignment 3 is not a power of 2"#),
        (r#"struct.unpack('!', '\1\2')"#, r#"ok 1"#),
        (r#"struct.unpack(' < i > i ', '\1\0\0\0\0\0\0\1')"#, r#"ok 1 1 9"#),
        (r#"struct.unpack()"#, r#"err user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"#),
        (r#"struct.unpack('b')"#, r#"err user_script:1: bad argument #2 to 'unpack' (string expected, got no value)"#),
        (r#"struct.unpack(nil, 'a')"#, r#"err user_script:1: bad argument #1 to 'unpack' (string expected, got nil)"#),
        (r#"struct.unpack('b', nil)"#, r#"err user_script:1: bad argument #2 to 'unpack' (string expected, got nil)"#),
        (r#"struct.unpack('b', {})"#, r#"err user_script:1: bad argument #2 to 'unpack' (string expected, got table)"#),
        (r#"struct.unpack('b', 12)"#, r#"ok 49 2"#),
        (r#"struct.unpack(5, 'a')"#, r#"err user_script:1: bad argument #1 to 'unpack' (invalid format option '5')"#),
        (r#"struct.unpack('q', 'a')"#, r#"err user_script:1: bad argument #1 to 'unpack' (invalid format option 'q')"#),
        (r#"struct.unpack('=b', 'a')"#, r#"err user_script:1: bad argument #1 to 'unpack' (invalid format option '=')"#),
        (r#"struct.unpack('b', '')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('i40', '')"#, r#"err user_script:1: integral size 40 is larger than limit of 32"#),
        (r#"struct.unpack('i99999999999', '')"#, r#"err user_script:1: integral size overflow"#),
        (r#"struct.unpack('b\0q', '\1')"#, r#"ok 1 2"#),
        (r#"struct.unpack('bb', '\1')"#, r#"err user_script:1: bad argument #2 to 'unpack' (data string too short)"#),
        (r#"struct.unpack('b q', '\1')"#, r#"err user_script:1: bad argument #1 to 'unpack' (invalid format option 'q')"#),
        (r#"struct.unpack('{', 'a')"#, r#"err user_script:1: bad argument #1 to 'unpack' (invalid format option '{')"#),
        (r#"struct.unpack('>i', struct.pack('>i', -123456))"#, r#"ok -123456 5"#),
        (r#"struct.unpack('<s>I2c0', struct.pack('<s>I2c0', 'hi', 3, 'abc'))"#, r#"ok "hi" "abc" 9"#),
        (r#"struct.unpack('<d f', struct.pack('<d f', math.pi, math.pi))"#, r#"ok 3.1415926535897931 3.1415927410125732 13"#),
        (r#"struct.unpack('!4 b i b d', struct.pack('!4 b i b d', -1, 70000, 2, 1.25))"#, r#"ok -1 70000 2 1.25 21"#),
        (r#"struct.unpack('b c0', '\1a', 1, 'extra')"#, r#"ok "a" 3"#),
    ];

    /// `struct.size`.
    #[rustfmt::skip]
    const SIZE_CASES: &[(&str, &str)] = &[
        (r#"struct.size('b')"#, r#"ok 1"#),
        (r#"struct.size('')"#, r#"ok 0"#),
        (r#"struct.size('!4 b i')"#, r#"ok 8"#),
        (r#"struct.size('!4 b i3 b')"#, r#"ok 7"#),
        (r#"struct.size('i3')"#, r#"ok 3"#),
        (r#"struct.size('i0')"#, r#"ok 0"#),
        (r#"struct.size('c5')"#, r#"ok 5"#),
        (r#"struct.size('c')"#, r#"ok 1"#),
        (r#"struct.size('c0')"#, r#"err user_script:1: bad argument #1 to 'size' (option 'c0' has no fixed size)"#),
        (r#"struct.size('b c0')"#, r#"err user_script:1: bad argument #1 to 'size' (option 'c0' has no fixed size)"#),
        (r#"struct.size('s')"#, r#"err user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)"#),
        (r#"struct.size('b s')"#, r#"err user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)"#),
        (r#"struct.size('d')"#, r#"ok 8"#),
        (r#"struct.size('f h H l L T b B x')"#, r#"ok 35"#),
        (r#"struct.size('<>!')"#, r#"ok 0"#),
        (r#"struct.size('!8 b d')"#, r#"ok 16"#),
        (r#"struct.size('!b d')"#, r#"ok 16"#),
        (r#"struct.size('!16 b d')"#, r#"ok 16"#),
        (r#"struct.size('q')"#, r#"ok 0"#),
        (r#"struct.size('q5')"#, r#"ok 0"#),
        (r#"struct.size('q5=')"#, r#"err user_script:1: bad argument #1 to 'size' (invalid format option '=')"#),
        (r#"struct.size('=')"#, r#"err user_script:1: bad argument #1 to 'size' (invalid format option '=')"#),
        (r#"struct.size('i33')"#, r#"err user_script:1: integral size 33 is larger than limit of 32"#),
        (r#"struct.size('x')"#, r#"ok 1"#),
        (r#"struct.size('!3')"#, r#"err user_script:1: alignment 3 is not a power of 2"#),
        (r#"struct.size('!3 b')"#, r#"err user_script:1: alignment 3 is not a power of 2"#),
        (r#"struct.size('!0')"#, r#"err user_script:1: alignment 0 is not a power of 2"#),
        (r#"struct.size()"#, r#"err user_script:1: bad argument #1 to 'size' (string expected, got no value)"#),
        (r#"struct.size(5)"#, r#"ok 0"#),
        (r#"struct.size(nil)"#, r#"err user_script:1: bad argument #1 to 'size' (string expected, got nil)"#),
        (r#"struct.size({})"#, r#"err user_script:1: bad argument #1 to 'size' (string expected, got table)"#),
        (r#"struct.size('i99999999999')"#, r#"err user_script:1: integral size overflow"#),
        (r#"struct.size('c2147483647 c2147483647 c2147483647 c2147483647 c2147483647')"#, r#"ok 10737418235"#),
        (r#"struct.size('b\0s')"#, r#"ok 1"#),
        (r#"struct.size('b{')"#, r#"err user_script:1: bad argument #1 to 'size' (invalid format option '{')"#),
        (r#"struct.size('s', 'ignored')"#, r#"err user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)"#),
    ];

    /// How the caller shapes error texts: `pcall`, local names, method calls.
    #[rustfmt::skip]
    const CALLERS_CASES: &[(&str, &str)] = &[
        (r#"struct:pack('b')"#, r#"err user_script:1: calling 'pack' on bad self (string expected, got table)"#),
        (r#"struct:unpack('b')"#, r#"err user_script:1: calling 'unpack' on bad self (string expected, got table)"#),
        (r#"struct:size()"#, r#"err user_script:1: calling 'size' on bad self (string expected, got table)"#),
        (r#"pcall(struct.pack, 'q')"#, r#"ok boolean:false "bad argument #1 to '?' (invalid format option 'q')""#),
        (r#"pcall(struct.unpack, 'b', '')"#, r#"ok boolean:false "bad argument #2 to '?' (data string too short)""#),
        (r#"pcall(struct.size, 's')"#, r#"ok boolean:false "bad argument #1 to '?' (option 's' has no fixed size)""#),
        (r#"pcall(struct.pack, 'i33')"#, r#"ok boolean:false "integral size 33 is larger than limit of 32""#),
        (r#"(function() local p = struct.pack return p('c5', 'a') end)()"#, r#"err user_script:1: bad argument #3 to 'p' (string too short)"#),
        (r#"(function() local t = {f = struct.unpack} return t.f('b', 'abc', 0) end)()"#, r#"err user_script:1: bad argument #3 to 'f' (offset must be 1 or greater)"#),
        (r#"(function() local t = {f = struct.size} return t:f() end)()"#, r#"err user_script:1: calling 'f' on bad self (string expected, got table)"#),
        (r#"(function() local t = {f = struct.pack} return t:f('b') end)()"#, r#"err user_script:1: calling 'f' on bad self (string expected, got table)"#),
        (r#"(function() local t = {f = struct.pack} return t:f(1) end)()"#, r#"err user_script:1: calling 'f' on bad self (string expected, got table)"#),
        (r#"(function() local t = {f = struct.unpack} return t:f('') end)()"#, r#"err user_script:1: calling 'f' on bad self (string expected, got table)"#),
    ];

    #[test]
    fn pack_matches_redis() {
        check(install, PACK_CASES);
    }

    #[test]
    fn unpack_matches_redis() {
        check(install, UNPACK_CASES);
    }

    #[test]
    fn size_matches_redis() {
        check(install, SIZE_CASES);
    }

    #[test]
    fn error_texts_follow_the_caller_as_in_redis() {
        check(install, CALLERS_CASES);
    }

    #[test]
    fn errors_name_the_calling_line() {
        // Redis: `ERR user_script:2: bad argument #1 to 'pack' (invalid
        // format option 'q') script: ..., on @user_script:2.`
        assert_eq!(
            run_script(install, "local x = 1\nreturn struct.pack('q')"),
            "err user_script:2: bad argument #1 to 'pack' (invalid format option 'q')"
        );
    }

    #[test]
    fn unpack_result_count_is_bounded() {
        // Redis returns up to 7997 values with two arguments; mlua needs
        // some of those stack slots, so the limit here is 7965.
        assert_eq!(
            describe(
                install,
                "select('#', struct.unpack(('b'):rep(7965), ('a'):rep(8000)))"
            ),
            "ok 7966"
        );
        let refused = "err user_script:1: stack overflow (too many results)";
        assert_eq!(
            describe(
                install,
                "select('#', struct.unpack(('b'):rep(7966), ('a'):rep(8000)))"
            ),
            refused
        );
        // Refused by Redis too, with this text.
        for expression in [
            "select('#', struct.unpack(('b'):rep(7998), ('a'):rep(8000)))",
            "select('#', struct.unpack(('b'):rep(7997), ('a'):rep(8000), 1))",
            "select('#', struct.unpack(('b'):rep(7996), ('a'):rep(8000), 1, 2))",
            "select('#', struct.unpack(('b'):rep(7997) .. ' ', ('a'):rep(8000)))",
            "select('#', struct.unpack(('b'):rep(7997) .. 'c0', ('\\1'):rep(8000)))",
        ] {
            assert_eq!(describe(install, expression), refused, "{expression}");
        }
    }

    #[test]
    fn invalid_option_outside_ascii_is_shown_lossily() {
        // Redis puts the raw byte (here 0xC8) in the message; mlua errors
        // carry UTF-8 text, so it becomes U+FFFD.
        assert_eq!(
            describe(install, r"struct.unpack('\200', 'a')"),
            "err user_script:1: bad argument #1 to 'unpack' (invalid format option '\u{fffd}')"
        );
    }
}
