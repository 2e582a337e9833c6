//! The rows batch statements bind: each batch is one JSON array (a table to the SQL,
//! through `JSON_ELEMENTS(?)`), split so that no bound array grows without bound.

/// One outcome as a row of [`OUTCOMES`] (the JSON keys are its column sources).
#[derive(serde::Serialize)]
pub(crate) struct OutcomeRow<'a> {
    pub id: &'a str,
    pub token: String,
    pub added: i64,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub delay: i64,
    pub reason: Option<&'a str>,
}

/// A lease as a row that `extend_leases` reads.
#[derive(serde::Serialize)]
pub(crate) struct LeaseRow {
    pub id: String,
    pub token: String,
}

/// One attempt as a row that `insert_attempts` reads.
#[derive(serde::Serialize)]
pub(crate) struct AttemptRow<'a> {
    pub id: &'a str,
    pub number: i64,
    pub started: i64,
    pub duration: i64,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub snippet: Option<&'a str>,
}

/// Rows as the JSON array a batch statement binds.
pub(crate) fn json_array<T: serde::Serialize>(rows: &[T]) -> String {
    // Strings, integers and options only: serialising them cannot fail.
    serde_json::to_string(rows).expect("plain rows serialise")
}

/// A channel's own claim limit as a row that `claim_due` reads.
#[derive(serde::Serialize)]
pub(crate) struct ChannelLimitRow {
    pub c: String,
    pub n: usize,
}

/// A channel's outcome in a batch as a row that `channel_health` reads.
#[derive(serde::Serialize)]
pub(crate) struct ChannelHealthRow {
    pub c: String,
    pub ok: i64,
    pub failed: i64,
}

/// One certificate of the inventory as a row of `upsert_certificates`.
#[derive(serde::Serialize)]
pub(crate) struct CertificateRow<'a> {
    pub app: &'a str,
    pub id: &'a str,
    pub serial: &'a str,
    pub cn: &'a str,
    /// The SAN list as JSON text (the column's format).
    pub san: String,
    pub profile: Option<&'a str>,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub reason: Option<&'static str>,
    pub status: &'static str,
}

/// One new outbox row as a row of `insert_events`.
#[derive(serde::Serialize)]
pub(crate) struct EventRow<'a> {
    /// Its place in the batch: rows are inserted (and numbered by `seq`) in this order.
    pub n: usize,
    pub id: uuid::Uuid,
    pub app: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub key: Option<&'a str>,
    /// The certificate as JSON text (the column's format).
    pub certificate: String,
}

/// One rendered message as a row of `insert_messages`.
#[derive(serde::Serialize)]
pub(crate) struct MessageRow<'a> {
    pub id: String,
    pub event: &'a str,
    pub alert: String,
    #[serde(rename = "type")]
    pub delivery_type: &'static str,
    /// The rendered CloudEvent (JSON text, stored as bytes).
    pub body: String,
}

/// One new delivery as a row of `insert_deliveries`.
#[derive(serde::Serialize)]
pub(crate) struct DeliveryRow<'a> {
    pub id: String,
    pub message: String,
    pub event: &'a str,
    pub channel: String,
    #[serde(rename = "type")]
    pub delivery_type: &'static str,
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub enqueued: i64,
}

/// Splits `rows` into runs of at most `max_rows` rows and about `max_bytes` of payload
/// (`size` of each row; a single larger row still goes alone), so no bound JSON array grows
/// with the events' size: PostgreSQL caps a jsonb value at 256 MB, and the array is held in
/// memory more than once while it is sent.
pub(crate) fn byte_chunks<T>(rows: &[T], max_rows: usize, max_bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        if i > start && (i - start >= max_rows.max(1) || bytes + size(row) > max_bytes) {
            chunks.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(row);
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stop_at_a_row_count_or_a_byte_budget() {
        let sizes = [4, 4, 4, 10, 1, 1, 1];
        let lens = |c: Vec<&[usize]>| c.iter().map(|c| c.len()).collect::<Vec<_>>();
        assert_eq!(lens(byte_chunks(&sizes, 3, 100, |s| *s)), vec![3, 3, 1]);
        assert_eq!(lens(byte_chunks(&sizes, 100, 8, |s| *s)), vec![2, 1, 1, 3], "an oversized row goes alone");
        assert!(byte_chunks(&[] as &[usize], 3, 8, |s| *s).is_empty());
        let all: usize = byte_chunks(&sizes, 2, 5, |s| *s).iter().map(|c| c.len()).sum();
        assert_eq!(all, sizes.len(), "every row is in exactly one chunk");
    }
}
