//! Redis's `bit` Lua library (LuaBitOp 1.0.2, Redis's `lua_bit.c`) for
//! EVAL scripts: `tobit`, `tohex`, `bnot`, `band`, `bor`, `bxor`,
//! `lshift`, `rshift`, `arshift`, `rol`, `ror` and `bswap`.
//!
//! Invariants:
//! - every argument becomes a 32-bit pattern exactly as LuaBitOp makes it:
//!   Lua's own number coercion (numeric strings count), then the low 32
//!   bits of the double after adding 2^52+2^51, so out-of-range and
//!   fractional values wrap and round as they do in Redis;
//! - every numeric result is the pattern read as a signed 32-bit integer
//!   and returned as a Lua number;
//! - argument errors carry Lua 5.1's `luaL_argerror` text (function name
//!   as the caller spelled it, `calling 'f' on bad self` for method calls)
//!   and `luaL_error`'s `source:line: ` prefix, and variadic functions
//!   check their arguments in LuaBitOp's order (first, then last to
//!   second), so the argument an error names is the one Redis names.

use mlua::{Lua, MultiValue, Value};

use super::support::check_number;

/// Added to a double so that its low 32 mantissa bits hold the rounded
/// integer (LuaBitOp's conversion; 2^52 + 2^51).
const BIT_CONVERSION_BIAS: f64 = 6_755_399_441_055_744.0;

/// `tohex`'s digit count when none is given, and the most it prints.
const MAX_HEX_DIGITS: i32 = 8;

/// Installs the library as the global `bit` (before the sandbox makes
/// globals read-only).
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    let bit = lua.create_table()?;
    bit.raw_set(
        "tobit",
        lua.create_function(|lua, args| unary(lua, &args, |b| b))?,
    )?;
    bit.raw_set(
        "bnot",
        lua.create_function(|lua, args| unary(lua, &args, |b| !b))?,
    )?;
    bit.raw_set(
        "band",
        lua.create_function(|lua, args| fold(lua, &args, |a, b| a & b))?,
    )?;
    bit.raw_set(
        "bor",
        lua.create_function(|lua, args| fold(lua, &args, |a, b| a | b))?,
    )?;
    bit.raw_set(
        "bxor",
        lua.create_function(|lua, args| fold(lua, &args, |a, b| a ^ b))?,
    )?;
    bit.raw_set(
        "lshift",
        lua.create_function(|lua, args| shift(lua, &args, |b, n| b << n))?,
    )?;
    bit.raw_set(
        "rshift",
        lua.create_function(|lua, args| shift(lua, &args, |b, n| b >> n))?,
    )?;
    bit.raw_set(
        "arshift",
        lua.create_function(|lua, args| shift(lua, &args, |b, n| ((b as i32) >> n) as u32))?,
    )?;
    bit.raw_set(
        "rol",
        lua.create_function(|lua, args| shift(lua, &args, u32::rotate_left))?,
    )?;
    bit.raw_set(
        "ror",
        lua.create_function(|lua, args| shift(lua, &args, u32::rotate_right))?,
    )?;
    bit.raw_set(
        "bswap",
        lua.create_function(|lua, args| unary(lua, &args, u32::swap_bytes))?,
    )?;
    bit.raw_set("tohex", lua.create_function(tohex)?)?;
    lua.globals().raw_set("bit", bit)
}

/// LuaBitOp's result: the pattern as a signed 32-bit number.
fn bit_result(bits: u32) -> Value {
    Value::Number(f64::from(bits as i32))
}

fn unary(lua: &Lua, args: &MultiValue, op: impl Fn(u32) -> u32) -> mlua::Result<Value> {
    Ok(bit_result(op(bit_argument(lua, args, 1)?)))
}

/// `band`/`bor`/`bxor`: the first argument, combined with the others from
/// the last one down (LuaBitOp's order, which decides which bad argument
/// is reported).
fn fold(lua: &Lua, args: &MultiValue, op: impl Fn(u32, u32) -> u32) -> mlua::Result<Value> {
    let mut bits = bit_argument(lua, args, 1)?;
    for position in (2..=args.len()).rev() {
        bits = op(bits, bit_argument(lua, args, position)?);
    }
    Ok(bit_result(bits))
}

/// Shifts and rotations: only the low 5 bits of the count matter.
fn shift(lua: &Lua, args: &MultiValue, op: impl Fn(u32, u32) -> u32) -> mlua::Result<Value> {
    let bits = bit_argument(lua, args, 1)?;
    let count = bit_argument(lua, args, 2)? & 31;
    Ok(bit_result(op(bits, count)))
}

/// `tohex(x [, n])`: the low `|n|` hex digits of `x` (at most 8, 8 when
/// `n` is absent), upper-case when `n` is negative.
fn tohex(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let mut bits = bit_argument(lua, &args, 1)?;
    let requested = if args.len() < 2 {
        MAX_HEX_DIGITS
    } else {
        bit_argument(lua, &args, 2)? as i32
    };
    let digits: &[u8; 16] = if requested < 0 {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // i32::MIN has no positive counterpart; Redis's build prints 8 digits
    // for it, which is what saturating gives.
    let count = requested.saturating_abs().min(MAX_HEX_DIGITS) as usize;
    let mut text = [0u8; MAX_HEX_DIGITS as usize];
    for slot in text[..count].iter_mut().rev() {
        *slot = digits[(bits & 15) as usize];
        bits >>= 4;
    }
    lua.create_string(&text[..count])
}

/// LuaBitOp's `barg`: argument `position` (1-based) as a 32-bit pattern.
fn bit_argument(lua: &Lua, args: &MultiValue, position: usize) -> mlua::Result<u32> {
    let number = check_number(lua, args, position)?;
    // The low word of the biased double's bits is the pattern.
    Ok((number + BIT_CONVERSION_BIAS).to_bits() as u32)
}

#[cfg(test)]
mod tests {
    //! Every expected value below was recorded from redis-server 7.0.15
    //! (Debian's x86-64 build) through EVAL, in the form `test_support`
    //! describes: `ok` and the values, or `err` and the error text.

    use super::super::test_support::{check, run_script};
    use super::*;

    /// `bit.tobit`: the 2^52+2^51 normalisation (wrapping, rounding, NaN and infinities), string coercion and type errors.
    #[rustfmt::skip]
    const TOBIT_CASES: &[(&str, &str)] = &[
        (r#"bit.tobit(0)"#, r#"ok 0"#),
        (r#"bit.tobit(1)"#, r#"ok 1"#),
        (r#"bit.tobit(-1)"#, r#"ok -1"#),
        (r#"bit.tobit(2^31)"#, r#"ok -2147483648"#),
        (r#"bit.tobit(2^31 - 1)"#, r#"ok 2147483647"#),
        (r#"bit.tobit(-2^31)"#, r#"ok -2147483648"#),
        (r#"bit.tobit(-2^31 - 1)"#, r#"ok 2147483647"#),
        (r#"bit.tobit(2^32)"#, r#"ok 0"#),
        (r#"bit.tobit(2^32 + 1)"#, r#"ok 1"#),
        (r#"bit.tobit(2^32 - 1)"#, r#"ok -1"#),
        (r#"bit.tobit(2^52)"#, r#"ok 0"#),
        (r#"bit.tobit(2^53 + 3)"#, r#"ok 2"#),
        (r#"bit.tobit(2^64)"#, r#"ok 0"#),
        (r#"bit.tobit(-2^64 - 7)"#, r#"ok 0"#),
        (r#"bit.tobit(1e300)"#, r#"ok -2013235812"#),
        (r#"bit.tobit(1/0)"#, r#"ok 0"#),
        (r#"bit.tobit(-1/0)"#, r#"ok 0"#),
        (r#"bit.tobit(0/0)"#, r#"ok 0"#),
        (r#"bit.tobit(-(0/0))"#, r#"ok 0"#),
        (r#"bit.tobit(0.5)"#, r#"ok 0"#),
        (r#"bit.tobit(1.5)"#, r#"ok 2"#),
        (r#"bit.tobit(2.5)"#, r#"ok 2"#),
        (r#"bit.tobit(-0.5)"#, r#"ok 0"#),
        (r#"bit.tobit(-1.5)"#, r#"ok -2"#),
        (r#"bit.tobit(-2.5)"#, r#"ok -2"#),
        (r#"bit.tobit(0.49999999999999994)"#, r#"ok 0"#),
        (r#"bit.tobit(3.7)"#, r#"ok 4"#),
        (r#"bit.tobit(-3.7)"#, r#"ok -4"#),
        (r#"bit.tobit(-0)"#, r#"ok 0"#),
        (r#"bit.tobit('12')"#, r#"ok 12"#),
        (r#"bit.tobit(' 0x10 ')"#, r#"ok 16"#),
        (r#"bit.tobit('1e3')"#, r#"ok 1000"#),
        (r#"bit.tobit('-7')"#, r#"ok -7"#),
        (r#"bit.tobit('abc')"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got string)"#),
        (r#"bit.tobit('')"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got string)"#),
        (r#"bit.tobit('0')"#, r#"ok 0"#),
        (r#"bit.tobit()"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got no value)"#),
        (r#"bit.tobit(nil)"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got nil)"#),
        (r#"bit.tobit(true)"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got boolean)"#),
        (r#"bit.tobit({})"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got table)"#),
        (r#"bit.tobit(function() end)"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got function)"#),
        (r#"bit.tobit(coroutine.create(function() end))"#, r#"err user_script:1: bad argument #1 to 'tobit' (number expected, got thread)"#),
        (r#"bit.tobit(1, 'ignored')"#, r#"ok 1"#),
    ];

    /// `bit.bnot`.
    #[rustfmt::skip]
    const BNOT_CASES: &[(&str, &str)] = &[
        (r#"bit.bnot(0)"#, r#"ok -1"#),
        (r#"bit.bnot(-1)"#, r#"ok 0"#),
        (r#"bit.bnot(2^31)"#, r#"ok 2147483647"#),
        (r#"bit.bnot(0x12345678)"#, r#"ok -305419897"#),
        (r#"bit.bnot(5.5)"#, r#"ok -7"#),
        (r#"bit.bnot('x')"#, r#"err user_script:1: bad argument #1 to 'bnot' (number expected, got string)"#),
        (r#"bit.bnot()"#, r#"err user_script:1: bad argument #1 to 'bnot' (number expected, got no value)"#),
    ];

    /// `bit.band`, `bit.bor`, `bit.bxor`: variadic; after the first argument, the last bad one is reported.
    #[rustfmt::skip]
    const VARIADIC_CASES: &[(&str, &str)] = &[
        (r#"bit.band(0xff, 0x0f)"#, r#"ok 15"#),
        (r#"bit.band(-1, 0x80000000)"#, r#"ok -2147483648"#),
        (r#"bit.band(7)"#, r#"ok 7"#),
        (r#"bit.band(0xf0f0, 0xff00, 0x3c3c)"#, r#"ok 12288"#),
        (r#"bit.band(2^32 + 5, 3)"#, r#"ok 1"#),
        (r#"bit.band()"#, r#"err user_script:1: bad argument #1 to 'band' (number expected, got no value)"#),
        (r#"bit.band(1, 'x', {})"#, r#"err user_script:1: bad argument #3 to 'band' (number expected, got table)"#),
        (r#"bit.band('x', 1)"#, r#"err user_script:1: bad argument #1 to 'band' (number expected, got string)"#),
        (r#"bit.band(1, 2, nil)"#, r#"err user_script:1: bad argument #3 to 'band' (number expected, got nil)"#),
        (r#"bit.band(1, '3')"#, r#"ok 1"#),
        (r#"bit.bor(1, 2, 4, 8)"#, r#"ok 15"#),
        (r#"bit.bor(0x80000000, 1)"#, r#"ok -2147483647"#),
        (r#"bit.bor(-1)"#, r#"ok -1"#),
        (r#"bit.bor()"#, r#"err user_script:1: bad argument #1 to 'bor' (number expected, got no value)"#),
        (r#"bit.bor(1, true)"#, r#"err user_script:1: bad argument #2 to 'bor' (number expected, got boolean)"#),
        (r#"bit.bxor(5, 3)"#, r#"ok 6"#),
        (r#"bit.bxor(-1, 0x0f0f0f0f)"#, r#"ok -252645136"#),
        (r#"bit.bxor(1, 2, 4, 7)"#, r#"ok 0"#),
        (r#"bit.bxor(nil, 1)"#, r#"err user_script:1: bad argument #1 to 'bxor' (number expected, got nil)"#),
        (r#"bit.band(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)"#, r#"ok 0"#),
        (r#"bit.bor(bit.lshift(1, 30), 2^31, -2^31)"#, r#"ok -1073741824"#),
    ];

    /// `bit.lshift`, `bit.rshift`, `bit.arshift`, `bit.rol`, `bit.ror`: counts use their low 5 bits.
    #[rustfmt::skip]
    const SHIFT_CASES: &[(&str, &str)] = &[
        (r#"bit.lshift(1, 0)"#, r#"ok 1"#),
        (r#"bit.lshift(1, 31)"#, r#"ok -2147483648"#),
        (r#"bit.lshift(1, 32)"#, r#"ok 1"#),
        (r#"bit.lshift(1, 33)"#, r#"ok 2"#),
        (r#"bit.lshift(1, -1)"#, r#"ok -2147483648"#),
        (r#"bit.lshift(0xff, 28)"#, r#"ok -268435456"#),
        (r#"bit.lshift(3, 35.5)"#, r#"ok 48"#),
        (r#"bit.lshift(1)"#, r#"err user_script:1: bad argument #2 to 'lshift' (number expected, got no value)"#),
        (r#"bit.lshift('a', 1)"#, r#"err user_script:1: bad argument #1 to 'lshift' (number expected, got string)"#),
        (r#"bit.rshift(-1, 0)"#, r#"ok -1"#),
        (r#"bit.rshift(-1, 1)"#, r#"ok 2147483647"#),
        (r#"bit.rshift(-1, 31)"#, r#"ok 1"#),
        (r#"bit.rshift(-1, 32)"#, r#"ok -1"#),
        (r#"bit.rshift(0x80000000, 4)"#, r#"ok 134217728"#),
        (r#"bit.rshift(256, -1)"#, r#"ok 0"#),
        (r#"bit.arshift(-256, 4)"#, r#"ok -16"#),
        (r#"bit.arshift(0x80000000, 31)"#, r#"ok -1"#),
        (r#"bit.arshift(0x7fffffff, 30)"#, r#"ok 1"#),
        (r#"bit.arshift(-1, 32)"#, r#"ok -1"#),
        (r#"bit.arshift(-8, 2)"#, r#"ok -2"#),
        (r#"bit.rol(0x12345678, 0)"#, r#"ok 305419896"#),
        (r#"bit.rol(0x12345678, 4)"#, r#"ok 591751041"#),
        (r#"bit.rol(0x12345678, 32)"#, r#"ok 305419896"#),
        (r#"bit.rol(0x80000001, 1)"#, r#"ok 3"#),
        (r#"bit.rol(1, -1)"#, r#"ok -2147483648"#),
        (r#"bit.ror(0x12345678, 0)"#, r#"ok 305419896"#),
        (r#"bit.ror(0x12345678, 4)"#, r#"ok -2128394905"#),
        (r#"bit.ror(1, 1)"#, r#"ok -2147483648"#),
        (r#"bit.ror(0x80000001, 33)"#, r#"ok -1073741824"#),
    ];

    /// `bit.bswap`.
    #[rustfmt::skip]
    const BSWAP_CASES: &[(&str, &str)] = &[
        (r#"bit.bswap(0x12345678)"#, r#"ok 2018915346"#),
        (r#"bit.bswap(-1)"#, r#"ok -1"#),
        (r#"bit.bswap(0xff)"#, r#"ok -16777216"#),
        (r#"bit.bswap(0x80)"#, r#"ok -2147483648"#),
        (r#"bit.bswap()"#, r#"err user_script:1: bad argument #1 to 'bswap' (number expected, got no value)"#),
    ];

    /// `bit.tohex`: digit counts, case, clamping.
    #[rustfmt::skip]
    const TOHEX_CASES: &[(&str, &str)] = &[
        (r#"bit.tohex(0)"#, r#"ok "00000000""#),
        (r#"bit.tohex(1)"#, r#"ok "00000001""#),
        (r#"bit.tohex(-1)"#, r#"ok "ffffffff""#),
        (r#"bit.tohex(0xabcdef)"#, r#"ok "00abcdef""#),
        (r#"bit.tohex(0xabcdef, 4)"#, r#"ok "cdef""#),
        (r#"bit.tohex(0xabcdef, -4)"#, r#"ok "CDEF""#),
        (r#"bit.tohex(0xabcdef, -8)"#, r#"ok "00ABCDEF""#),
        (r#"bit.tohex(0xabcdef, 12)"#, r#"ok "00abcdef""#),
        (r#"bit.tohex(0xabcdef, -12)"#, r#"ok "00ABCDEF""#),
        (r#"bit.tohex(0xabcdef, 0)"#, r#"ok """#),
        (r#"bit.tohex(0xabcdef, 1)"#, r#"ok "f""#),
        (r#"bit.tohex(0xabcdef, 2^32 + 3)"#, r#"ok "def""#),
        (r#"bit.tohex(0xabcdef, '-3')"#, r#"ok "DEF""#),
        (r#"bit.tohex(0xabc, -2147483648)"#, r#"ok "00000ABC""#),
        (r#"bit.tohex(0xabc, 2147483647)"#, r#"ok "00000abc""#),
        (r#"bit.tohex(0xabc, -2147483647)"#, r#"ok "00000ABC""#),
        (r#"bit.tohex(2^31)"#, r#"ok "80000000""#),
        (r#"bit.tohex(0xabc, nil)"#, r#"err user_script:1: bad argument #2 to 'tohex' (number expected, got nil)"#),
        (r#"bit.tohex(0xabc, 'x')"#, r#"err user_script:1: bad argument #2 to 'tohex' (number expected, got string)"#),
        (r#"bit.tohex()"#, r#"err user_script:1: bad argument #1 to 'tohex' (number expected, got no value)"#),
        (r#"bit.tohex('255')"#, r#"ok "000000ff""#),
        (r#"bit.tohex(1, 2, 3)"#, r#"ok "01""#),
    ];

    /// How the caller shapes error texts: `pcall`, local names, method calls.
    #[rustfmt::skip]
    const CALLERS_CASES: &[(&str, &str)] = &[
        (r#"pcall(bit.band, 1, {})"#, r#"ok boolean:false "bad argument #2 to '?' (number expected, got table)""#),
        (r#"pcall(bit.tohex)"#, r#"ok boolean:false "bad argument #1 to '?' (number expected, got no value)""#),
        (r#"(function() local b = bit.bor return b(1, {}) end)()"#, r#"err user_script:1: bad argument #2 to 'b' (number expected, got table)"#),
        (r#"bit:band(1)"#, r#"err user_script:1: calling 'band' on bad self (number expected, got table)"#),
        (r#"bit:tohex()"#, r#"err user_script:1: calling 'tohex' on bad self (number expected, got table)"#),
        (r#"bit:bnot()"#, r#"err user_script:1: calling 'bnot' on bad self (number expected, got table)"#),
    ];

    #[test]
    fn tobit_matches_redis() {
        check(install, TOBIT_CASES);
    }

    #[test]
    fn bnot_matches_redis() {
        check(install, BNOT_CASES);
    }

    #[test]
    fn band_bor_bxor_match_redis() {
        check(install, VARIADIC_CASES);
    }

    #[test]
    fn shifts_and_rotations_match_redis() {
        check(install, SHIFT_CASES);
    }

    #[test]
    fn bswap_matches_redis() {
        check(install, BSWAP_CASES);
    }

    #[test]
    fn tohex_matches_redis() {
        check(install, TOHEX_CASES);
    }

    #[test]
    fn error_texts_follow_the_caller_as_in_redis() {
        check(install, CALLERS_CASES);
    }

    #[test]
    fn errors_name_the_calling_line() {
        // Redis returns `user_script:3: bad argument #1 to 'band' (number
        // expected, got table)` for `return e` (the sandbox's `pcall` gives
        // the message; this plain VM's gives the error object).
        assert_eq!(
            run_script(
                install,
                "local x = 1\nlocal ok, e = pcall(function()\n return bit.band({}) end)\nreturn bare_error(e)"
            ),
            "user_script:3: bad argument #1 to 'band' (number expected, got table)"
        );
    }
}
