//! Retry schedule of failed deliveries.
//!
//! After a failed attempt, the batch is retried after the next delay of the
//! schedule, spread by a random jitter so that many endpoints failing together
//! do not all come back at the same second. A `Retry-After` sent by the
//! receiver lengthens the wait. When the schedule is exhausted, the batch
//! becomes a dead letter.

use std::time::Duration;

use rand::Rng;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Longest wait a receiver's `Retry-After` can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(DAY);

/// Delays between attempts, with a relative jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// Nominal delay before each retry; `delays[0]` precedes the first retry.
    pub delays: Vec<Duration>,
    /// Relative spread applied to each delay: 0.2 means ±20%. Clamped to 0..=1.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    /// 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h, 8h (about 31.7 hours), ±20%.
    fn default() -> Self {
        let secs =
            [5, 30, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 8 * HOUR, 8 * HOUR];
        Self { delays: secs.into_iter().map(Duration::from_secs).collect(), jitter: 0.2 }
    }
}

impl RetrySchedule {
    /// Delay before retry number `attempt` (1 = first retry after the first
    /// failure); `None` when the schedule is exhausted (or `attempt` is 0) and
    /// the batch becomes a dead letter.
    ///
    /// `retry_after`, when the receiver sent one, replaces the jittered delay
    /// if it is longer; it is capped at [`MAX_RETRY_AFTER`].
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let nominal = *self.delays.get(index)?;
        let jittered = self.apply_jitter(nominal, rng);
        let requested = retry_after.map_or(Duration::ZERO, |d| d.min(MAX_RETRY_AFTER));
        Some(jittered.max(requested))
    }

    /// Sum of the nominal delays: how long a batch is retried before it
    /// becomes a dead letter (give or take the jitter).
    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }

    /// Parses a comma-separated list such as `5s,30s,2m,1h,1d` (units ms, s,
    /// m, h, d), for config files and environment variables.
    pub fn parse_delays(s: &str) -> Result<Vec<Duration>, String> {
        if s.trim().is_empty() {
            return Err("empty retry schedule".to_owned());
        }
        s.split(',').map(|item| parse_delay(item.trim())).collect()
    }

    fn apply_jitter(&self, nominal: Duration, rng: &mut impl Rng) -> Duration {
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        if jitter == 0.0 {
            return nominal;
        }
        let factor = rng.gen_range(1.0 - jitter..=1.0 + jitter);
        nominal.mul_f64(factor)
    }
}

/// Parses one delay: a whole number followed by ms, s, m, h or d.
fn parse_delay(item: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid delay {item:?}: expected a number followed by ms, s, m, h or d");
    let digits = item.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = item.split_at(digits);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => MINUTE * 1000,
        "h" => HOUR * 1000,
        "d" => DAY * 1000,
        _ => return Err(invalid()),
    };
    if number.is_empty() {
        return Err(invalid());
    }
    let millis = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| format!("delay {item:?} is too long"))?;
    Ok(Duration::from_millis(millis))
}

/// Parses a `Retry-After` header value: delta-seconds or an HTTP-date (RFC
/// 9110 IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`), relative to
/// `now`. `None` when unparseable; a date in the past gives `Some(0)`.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long values saturate; callers cap the wait anyway.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let millis = date.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn default_retries_for_more_than_a_day() {
        let schedule = RetrySchedule::default();
        assert!(schedule.total() > secs(DAY), "{:?}", schedule.total());
        assert_eq!(schedule.delays.len(), 11);
        assert_eq!(schedule.jitter, 0.2);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let schedule = RetrySchedule::default();
        let mut rng = rng();
        let delays: Vec<Duration> = (0..1000).map(|_| schedule.next_delay(3, None, &mut rng).unwrap()).collect();
        let nominal = secs(120);
        assert!(delays.iter().all(|d| *d >= nominal.mul_f64(0.8) && *d <= nominal.mul_f64(1.2)));
        assert!(delays.iter().any(|d| *d < secs(110)));
        assert!(delays.iter().any(|d| *d > secs(130)));
    }

    #[test]
    fn no_jitter_gives_nominal_delays() {
        for jitter in [0.0, -1.0, f64::NAN] {
            let schedule = RetrySchedule { delays: vec![secs(5), secs(30)], jitter };
            assert_eq!(schedule.next_delay(2, None, &mut rng()), Some(secs(30)));
        }
    }

    #[test]
    fn exhaustion_and_attempt_zero() {
        let schedule = RetrySchedule::default();
        let mut rng = rng();
        assert!(schedule.next_delay(11, None, &mut rng).is_some());
        assert_eq!(schedule.next_delay(12, None, &mut rng), None);
        assert_eq!(schedule.next_delay(u32::MAX, None, &mut rng), None);
        assert_eq!(schedule.next_delay(0, None, &mut rng), None);
        let empty = RetrySchedule { delays: vec![], jitter: 0.2 };
        assert_eq!(empty.next_delay(1, Some(secs(5)), &mut rng), None);
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens() {
        let schedule = RetrySchedule { delays: vec![secs(60)], jitter: 0.0 };
        let mut rng = rng();
        assert_eq!(schedule.next_delay(1, Some(secs(600)), &mut rng), Some(secs(600)));
        assert_eq!(schedule.next_delay(1, Some(secs(5)), &mut rng), Some(secs(60)));
        assert_eq!(schedule.next_delay(1, Some(secs(10 * DAY)), &mut rng), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn parses_delays() {
        assert_eq!(
            RetrySchedule::parse_delays("5s,30s,2m,1h,1d").unwrap(),
            vec![secs(5), secs(30), secs(120), secs(HOUR), secs(DAY)]
        );
        assert_eq!(RetrySchedule::parse_delays(" 0s , 10m ").unwrap(), vec![secs(0), secs(600)]);
        for bad in ["", " ", "5", "s", "5x", "5s,", "-5s", "1.5h", "5 s", "5é", "99999999999999999999d"] {
            assert!(RetrySchedule::parse_delays(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = jiff::Timestamp::now();
        assert_eq!(parse_retry_after("7", now), Some(secs(7)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(secs(120)));
        assert_eq!(parse_retry_after("0", now), Some(secs(0)));
        for bad in ["", "-5", "1.5", "soon", "7s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_date() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(secs(0)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 25:00:00 GMT", now), None);
    }
}
