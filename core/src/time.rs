//! Temporal values at microsecond precision, with PostgreSQL's ±infinity.
//!
//! Everything counts from the Unix epoch (1970-01-01), which is what Arrow,
//! Parquet and Debezium's JSON use; sources convert from their own epochs.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A calendar date: days since 1970-01-01, or ±infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Date {
    NegInfinity,
    Days(i32),
    PosInfinity,
}

/// A point in time: microseconds since 1970-01-01 00:00:00, or ±infinity.
/// For `timestamptz` the instant is UTC; for `timestamp` it is wall-clock
/// time with no zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timestamp {
    NegInfinity,
    Micros(i64),
    PosInfinity,
}

/// A time of day in microseconds since midnight. PostgreSQL allows
/// `24:00:00`; MySQL's `TIME` is a duration and may be negative or exceed a
/// day, so the range is not clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Time(pub i64);

/// A time of day with a UTC offset in seconds east of Greenwich.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeTz {
    pub micros: i64,
    pub offset_seconds: i32,
}

/// PostgreSQL's interval: months, days and microseconds kept apart, because
/// a month is not a fixed number of days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01; the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn write_time_of_day(f: &mut fmt::Formatter<'_>, micros: i64) -> fmt::Result {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    write!(
        f,
        "{sign}{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )?;
    if frac != 0 {
        write!(f, ".{frac:06}")?;
    }
    Ok(())
}

fn write_date(f: &mut fmt::Formatter<'_>, days: i64) -> fmt::Result {
    let (y, m, d) = civil_from_days(days);
    if y <= 0 {
        write!(f, "{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Date::NegInfinity => f.write_str("-infinity"),
            Date::PosInfinity => f.write_str("infinity"),
            Date::Days(days) => write_date(f, i64::from(*days)),
        }
    }
}

/// ISO 8601 form (`2024-01-31T12:00:00.000001`); a `timestamptz` is
/// rendered by the caller with a `Z` suffix.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timestamp::NegInfinity => f.write_str("-infinity"),
            Timestamp::PosInfinity => f.write_str("infinity"),
            Timestamp::Micros(micros) => {
                write_date(f, micros.div_euclid(MICROS_PER_DAY))?;
                f.write_str("T")?;
                write_time_of_day(f, micros.rem_euclid(MICROS_PER_DAY))
            }
        }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time_of_day(f, self.0)
    }
}

impl fmt::Display for TimeTz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time_of_day(f, self.micros)?;
        let sign = if self.offset_seconds < 0 { '-' } else { '+' };
        let off = self.offset_seconds.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", off / 3600, off / 60 % 60)?;
        if !off.is_multiple_of(60) {
            write!(f, ":{:02}", off % 60)?;
        }
        Ok(())
    }
}

/// ISO 8601 duration (`P1Y2M3DT4H5M6.000007S`).
impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "P{}Y{}M{}DT",
            self.months / 12,
            self.months % 12,
            self.days
        )?;
        let sign = if self.micros < 0 { "-" } else { "" };
        let micros = self.micros.unsigned_abs();
        let secs = micros / 1_000_000;
        write!(
            f,
            "{sign}{}H{sign}{}M{sign}{}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        if !micros.is_multiple_of(1_000_000) {
            write!(f, ".{:06}", micros % 1_000_000)?;
        }
        f.write_str("S")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversion_round_trips() {
        for days in [-1_000_000_i64, -719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn display_forms() {
        assert_eq!(Date::Days(0).to_string(), "1970-01-01");
        assert_eq!(
            Timestamp::Micros(-1).to_string(),
            "1969-12-31T23:59:59.999999"
        );
        assert_eq!(Timestamp::PosInfinity.to_string(), "infinity");
        assert_eq!(Time(MICROS_PER_DAY).to_string(), "24:00:00");
        let tz = TimeTz {
            micros: 3_600_000_000,
            offset_seconds: -19_800,
        };
        assert_eq!(tz.to_string(), "01:00:00-05:30");
        let iv = Interval {
            months: 14,
            days: 3,
            micros: 3_723_000_001,
        };
        assert_eq!(iv.to_string(), "P1Y2M3DT1H2M3.000001S");
    }
}
