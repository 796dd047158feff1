//! Where each poll of an app entity starts reading, and why no row is
//! skipped or read again forever.
//!
//! A row can commit late: its updated-at is earlier than rows the connector
//! has already read. So a poll starts `overlap` before the saved cursor and
//! re-reads that window (re-read rows are recognised by their fingerprint and
//! not sent again). The window is needed only while such a row could still
//! commit: once a poll that read to the end began more than `overlap` after
//! some instant, every row changed before that instant had committed and was
//! read. That instant is the cursor's `settled`; a poll never starts before
//! it, and once it passes the cursor the poll starts exactly at the cursor.
//! Without it a bulk change made within `overlap` of the cursor would be
//! re-read by every poll until a newer change moved the cursor, which in a
//! quiet app is forever (thousands of rows per poll after an import).
//!
//! Assumes that the app's clock (its updated-at values) and the connector's
//! agree to well within `overlap`, as they do on one machine or with NTP.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::adapter::Cursor;

/// A push cursor as saved in the state file. Cursors saved before `settled`
/// existed load with none (the whole overlap is re-read, as before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PushCursor {
    #[serde(flatten)]
    pub at: Cursor,
    /// Every row changed at or before this had committed, and was read, when
    /// the last complete poll began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Timestamp>,
}

impl PushCursor {
    /// Where the next poll starts listing.
    pub fn resume(&self, overlap: SignedDuration) -> Cursor {
        let window = self.at.updated_at.checked_sub(overlap).unwrap_or(Timestamp::MIN);
        match self.settled {
            Some(settled) if settled >= self.at.updated_at => self.at.clone(),
            Some(settled) => Cursor { updated_at: settled.max(window), id: String::new() },
            None => Cursor { updated_at: window, id: String::new() },
        }
    }

    /// This cursor after a poll that began at `began` (the connector's
    /// clock) read every page: rows up to `overlap` before it have settled.
    /// None when that changes nothing the next poll would do.
    pub fn settled_by(&self, began: Timestamp, overlap: SignedDuration) -> Option<PushCursor> {
        let settled = began.checked_sub(overlap).ok()?;
        let already = self.settled.is_some_and(|s| s >= self.at.updated_at || s >= settled);
        (!already).then(|| PushCursor { at: self.at.clone(), settled: Some(settled) })
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::PushCursor;
    use crate::adapter::Cursor;

    const OVERLAP: SignedDuration = SignedDuration::from_secs(30);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn cursor(seconds: i64, settled: Option<i64>) -> PushCursor {
        PushCursor { at: Cursor { updated_at: at(seconds), id: "42".into() }, settled: settled.map(at) }
    }

    #[test]
    fn a_fresh_cursor_re_reads_the_whole_overlap() {
        let resume = cursor(100, None).resume(OVERLAP);
        assert_eq!(resume, Cursor { updated_at: at(70), id: String::new() });
    }

    #[test]
    fn the_window_shrinks_as_polls_pass_and_ends_at_the_cursor() {
        let c = cursor(100, None);

        // A poll 10 s after the cursor's change: rows before 80 s have settled.
        let c = c.settled_by(at(110), OVERLAP).expect("moves");
        assert_eq!(c.resume(OVERLAP), Cursor { updated_at: at(80), id: String::new() });

        // A poll 40 s after it: all rows up to the cursor have settled, and the
        // next poll starts after the cursor's own row, not at its timestamp.
        let c = c.settled_by(at(140), OVERLAP).expect("moves");
        assert_eq!(c.resume(OVERLAP), Cursor { updated_at: at(100), id: "42".into() });

        // From then on nothing needs saving until the cursor moves again.
        assert_eq!(c.settled_by(at(500), OVERLAP), None);
    }

    #[test]
    fn a_poll_that_began_too_early_changes_nothing() {
        let c = cursor(100, Some(90));
        assert_eq!(c.settled_by(at(115), OVERLAP), None, "85 s is older than what had settled");
        assert_eq!(c.resume(OVERLAP), Cursor { updated_at: at(90), id: String::new() });
    }

    #[test]
    fn a_cursor_saved_before_settled_existed_loads() {
        let old: PushCursor = serde_json::from_str(r#"{"updated_at":"2027-01-15T08:00:00Z","id":"7"}"#).unwrap();
        assert_eq!(old.settled, None);
        let saved = serde_json::to_string(&cursor(0, Some(0))).unwrap();
        assert!(saved.contains("\"settled\""), "{saved}");
    }
}
