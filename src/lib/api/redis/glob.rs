//! Redis glob-style pattern matching (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`).
//!
//! Semantics follow Redis's `stringmatchlen`: `*` any run of bytes, `?` one
//! byte, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges allowed), `\x` a literal
//! `x`; an unterminated `[` class ends at the end of the pattern. Matching
//! is over bytes and runs in O(pattern × subject) worst case (the single
//! backtracking point of the last `*` bounds the work).

/// Whether `subject` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    glob_match_with_case(pattern, subject, false)
}

/// Whether `subject` matches `pattern`, optionally ignoring ASCII case.
pub fn glob_match_with_case(pattern: &[u8], subject: &[u8], nocase: bool) -> bool {
    let mut p = 0;
    let mut s = 0;
    // Where to resume after the most recent `*`: (pattern after star, subject position).
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            star = Some((p, s));
            continue;
        }
        if let Some(next) = match_one(pattern, p, subject[s], nocase) {
            p = next;
            s += 1;
            continue;
        }
        match star {
            Some((star_p, star_s)) => {
                p = star_p;
                s = star_s + 1;
                star = Some((star_p, star_s + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|&byte| byte == b'*')
}

/// Matches the single-byte pattern element at `p` against `byte`; returns
/// the position after the element when it matches.
fn match_one(pattern: &[u8], p: usize, byte: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut matched = false;
            loop {
                match pattern.get(i) {
                    None => break,
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < pattern.len() => {
                        if eq(pattern[i + 1], byte) {
                            matched = true;
                        }
                        i += 2;
                    }
                    Some(&low) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                        let high = pattern[i + 2];
                        let (start, end) = if low <= high {
                            (low, high)
                        } else {
                            (high, low)
                        };
                        let (value, start, end) = if nocase {
                            (
                                byte.to_ascii_lowercase(),
                                start.to_ascii_lowercase(),
                                end.to_ascii_lowercase(),
                            )
                        } else {
                            (byte, start, end)
                        };
                        if (start..=end).contains(&value) {
                            matched = true;
                        }
                        i += 3;
                    }
                    Some(&other) => {
                        if eq(other, byte) {
                            matched = true;
                        }
                        i += 1;
                    }
                }
            }
            if matched != negate { Some(i) } else { None }
        }
        b'\\' if p + 1 < pattern.len() => eq(pattern[p + 1], byte).then_some(p + 2),
        &literal => eq(literal, byte).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redis_glob_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("news.*", "news.tech", true),
            ("news.*", "new", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("[abc", "a", true),
            ("", "", true),
            ("", "a", false),
            ("**a", "ba", true),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), subject.as_bytes()),
                *expected,
                "{pattern} vs {subject}"
            );
        }
        assert!(glob_match_with_case(b"HE*", b"hello", true));
    }

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(a in "[a-z]{0,8}", b in "[a-z]{0,8}") {
            prop_assert_eq!(glob_match(a.as_bytes(), b.as_bytes()), a == b);
        }

        #[test]
        fn star_prefix_matches_suffixes(prefix in "[a-z]{0,6}", rest in "[a-z]{0,6}") {
            let pattern = format!("{prefix}*");
            let subject = format!("{prefix}{rest}");
            prop_assert!(glob_match(pattern.as_bytes(), subject.as_bytes()));
        }

        #[test]
        fn never_panics(pattern in proptest::collection::vec(any::<u8>(), 0..20), subject in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = glob_match(&pattern, &subject);
        }
    }
}
