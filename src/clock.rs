//! Durations as people write and read them, and timestamps as files record them.
//!
//! Durations are accepted the way Kubernetes manifests and Go programs write them (`1m30s`,
//! `1h2m3s`, `250ms`, `1.5s`, `300us`) and as a bare number of seconds; they are printed back in
//! the same style (`12m04s`, `1.0s`, `250ms`), so a log line can be pasted into a flag.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest duration accepted: a year is far beyond any sensible grace, delay or timeout, and
/// the bound keeps the arithmetic of deadlines (Instant + Duration) from overflowing.
const MAX_NANOS: u128 = 365 * 24 * 3600 * 1_000_000_000;

/// `1.5` (a decimal number as written) times `unit_ns`, in nanoseconds, exactly: integers only,
/// so no float parsing or formatting code is linked in for durations. `None` when it is not a
/// number (digits, at most one point, a digit somewhere) or is absurdly large.
fn decimal_nanos(num: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || int.len() > 20 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let whole = if int.is_empty() {
        0
    } else {
        int.parse::<u128>().ok()?
    };
    // Digits past the nanosecond of the smallest unit change nothing.
    let frac = &frac[..frac.len().min(18)];
    let scale = 10u128.pow(frac.len() as u32);
    let part = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().ok()?
    };
    whole
        .checked_mul(unit_ns)?
        .checked_add(part.checked_mul(unit_ns)? / scale)
}

/// Parses `500ms`, `10s`, `2m`, `1h`, `1.5s`, `1m30s`, `1h2m3s`, `300us`, `7` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let err = |why: String| format!("invalid duration {s:?}: {why}");
    if t.is_empty() {
        return Err(err("expected e.g. 500ms, 10s, 1m30s, 2h".into()));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let nanos =
            decimal_nanos(t, 1_000_000_000).ok_or_else(|| err(format!("{t:?} is not a number")))?;
        return bounded(nanos).ok_or_else(|| err("too large".into()));
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(err(format!(
                "expected a number before {tail:?} (e.g. 500ms, 10s, 1m30s)"
            )));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err(format!("{num:?} needs a unit (ms, s, m or h)"))),
            _ => return Err(err(format!("unknown unit {unit:?} (use ms, s, m or h)"))),
        };
        let nanos =
            decimal_nanos(num, unit_ns).ok_or_else(|| err(format!("{num:?} is not a number")))?;
        total = total.saturating_add(nanos);
        rest = next;
    }
    bounded(total).ok_or_else(|| err("too large".into()))
}

fn bounded(nanos: u128) -> Option<Duration> {
    (nanos <= MAX_NANOS).then(|| {
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    })
}

/// A duration for people: `250ms`, `1.5s`, `12m04s`, `2h03m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms + 50) / 100;
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    if secs < 3600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
}

/// RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-24T00:41:00.123Z`. Written digit by
/// digit: every log line carries one, and the formatting machinery costs more than the arithmetic.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, u64::from(mo));
    put(8, 2, u64::from(da));
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, u64::from(d.subsec_millis()));
    String::from_utf8_lossy(&b).into_owned()
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day). Howard Hinnant's
/// well-known civil-from-days algorithm (public-domain arithmetic, written out here).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_form_people_write() {
        let ok = [
            ("500ms", 500),
            ("10s", 10_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("7", 7_000),
            ("0", 0),
            ("0s", 0),
            ("1.5s", 1_500),
            (" 3s ", 3_000),
            ("1m30s", 90_000),
            ("1h2m3s", 3_723_000),
            ("250ms", 250),
            ("2h45m", 9_900_000),
            ("1.5m", 90_000),
            ("1s500ms", 1_500),
            ("1500000us", 1_500),
            ("2000000000ns", 2_000),
            (".5s", 500),
            ("1.s", 1_000),
            ("8760h", 31_536_000_000),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        assert_eq!(parse_duration("300us"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_duration("0.0001s"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("1.0000000019s"), Ok(Duration::new(1, 1)));
        for s in [
            "",
            "s",
            "10x",
            "-1s",
            "1.2.3s",
            "ms",
            "1e3",
            "99999999h",
            "10 s",
            "1m30",
            "m30s",
            "1h-2m",
            "..s",
            "5d",
            ".",
            "1..5s",
            "8760.001h",
            "99999999999999999999999999999999999s",
        ] {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(&format!("{s:?}")), "{s}: {err}");
        }
    }

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0ms"),
            (250, "250ms"),
            (1_000, "1.0s"),
            (12_340, "12.3s"),
            (12_350, "12.4s"),
            (59_960, "60.0s"),
            (724_000, "12m04s"),
            (3_723_000, "1h02m"),
        ];
        for (ms, want) in cases {
            assert_eq!(human(Duration::from_millis(ms)), want);
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_481_999); // checked with date -u -d @
        assert_eq!(rfc3339(t), "2026-11-24T00:59:59.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_107_542_400); // 2100-03-01, not a leap year
        assert_eq!(rfc3339(t), "2100-03-01T00:00:00.000Z");
    }
}
