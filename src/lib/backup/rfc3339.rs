//! The `wall_time_iso` form of MANIFEST.json: RFC 3339 with up to nine
//! fractional digits, as Go's `time.RFC3339Nano` writes and parses it.
//!
//! The writer always emits UTC with `Z` and trims trailing fractional zeros
//! (`2026-04-29T15:42:11.094Z`, `2026-04-29T15:42:11Z`); the parser accepts
//! any offset and checks every field's range, so a manifest with an
//! impossible date is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats a UTC instant as RFC3339Nano with trailing zeros trimmed.
/// Instants before 1970 are clamped to the epoch (the tools never need them).
pub fn format_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn digits(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    let part = bytes.get(range)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    part.iter().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

/// Reports whether `text` is a valid RFC3339Nano timestamp.
pub fn is_valid(text: &str) -> bool {
    parse_fields(text.as_bytes()).is_some()
}

fn parse_fields(b: &[u8]) -> Option<()> {
    let year = digits(b, 0..4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let month = digits(b, 5..7)?;
    let day = digits(b, 8..10)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (digits(b, 11..13)?, digits(b, 14..16)?, digits(b, 17..19)?);
    let month_days = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day == 0 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let count = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 || count > 9 {
            return None;
        }
        rest = &frac[count..];
    }
    match rest {
        b"Z" => Some(()),
        [sign, ..] if (*sign == b'+' || *sign == b'-') && rest.len() == 6 && rest[3] == b':' => {
            let (oh, om) = (digits(rest, 1..3)?, digits(rest, 4..6)?);
            (oh <= 23 && om <= 59).then_some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_with_trimmed_fraction() {
        let t = UNIX_EPOCH + Duration::from_millis(1_777_477_331_094);
        assert_eq!(format_utc(t), "2026-04-29T15:42:11.094Z");
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::new(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
    }

    #[test]
    fn accepts_valid_forms() {
        for ok in [
            "2026-04-29T15:42:11.094Z",
            "2026-04-29T15:42:11Z",
            "2024-02-29T00:00:00+09:00",
            "2026-01-01T00:00:00.123456789-05:30",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_invalid_forms() {
        for bad in [
            "",
            "yesterday",
            "2026-04-29",
            "2026-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-04-29T24:00:00Z",
            "2026-04-29T15:42:11.Z",
            "2026-04-29T15:42:11.0123456789Z",
            "2026-04-29T15:42:11",
            "2026-04-29 15:42:11Z",
            "2026-04-29T15:42:11+0900",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn formatted_times_parse(secs in 0u64..8_000_000_000, nanos in 0u32..1_000_000_000) {
            let text = format_utc(UNIX_EPOCH + Duration::new(secs, nanos));
            prop_assert!(is_valid(&text), "{}", text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = is_valid(&text);
        }
    }
}
