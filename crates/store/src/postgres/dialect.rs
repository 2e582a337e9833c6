//! PostgreSQL's SQL: how it writes each marker of the neutral statements (see `sql.rs`).

use std::sync::LazyLock;

use crate::sql::{Queries, rewrite_calls};

/// Every statement, in PostgreSQL's dialect.
pub(crate) static SQL: LazyLock<Queries> = LazyLock::new(|| Queries::build(translate));

/// One neutral statement as PostgreSQL runs it.
fn translate(sql: &str) -> String {
    let sql = sql
        // Once per statement, as an InitPlan: a volatile function call compared with a
        // column is a filter, never an index bound, so `next_attempt_at <= now` walked the
        // whole due index past every delivery scheduled for later (the claim's walk under
        // EXPLAIN ANALYZE, 200,000 waiting for a retry and none due: 117 ms, against
        // 0.08 ms). Only
        // where it bounds a range: written everywhere, the pipeline measured 5–8 % slower.
        .replace("NOW_BOUND", "(SELECT certhook_now_ms())")
        .replace("NOW_MS", "certhook_now_ms()")
        .replace("SKIP_LOCKED", "FOR UPDATE SKIP LOCKED")
        .replace("LOCK_ROWS", "FOR NO KEY UPDATE")
        .replace("JSON_LIST(?)", "(SELECT jsonb_array_elements_text(CAST(? AS jsonb)))")
        // jsonb: parsed once; `value ->> 'k'` on `json` re-parses the element on every
        // access, which a join that rescans the batch pays for per row.
        .replace("JSON_ELEMENTS(?)", "jsonb_array_elements(CAST(? AS jsonb))");
    // PostgreSQL plans from its own statistics: SQLite's index pins go.
    let sql = rewrite_calls(&sql, "USE_INDEX(", |_| String::new());
    // `NOIDX(column)` (text columns only): `(column || '')`, which no index matches. A
    // batch write joins its bound JSON table to the deliveries by primary key; left free,
    // the planner (whose statistics rarely see many leased rows) drove the join from the
    // `(state, created_at)` index and hashed every leased row for each batch of outcomes:
    // O(rows in flight) per batch, 200 µs per recorded row in a 1-channel pipeline run.
    let sql = rewrite_calls(&sql, "NOIDX(", |column| format!("({column} || '')"));
    let sql = rewrite_calls(&sql, "TO_BYTES(", |text| format!("convert_to({text}, 'UTF8')"));
    let sql = rewrite_calls(&sql, "SERIALIZE(", |key| format!("SELECT pg_advisory_xact_lock({key})"));
    number_placeholders(&sql)
}

/// `?` placeholders as `$1`, `$2`, … in order.
fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_postgres() {
        assert_eq!(translate("SERIALIZE(7)"), "SELECT pg_advisory_xact_lock(7)");
        assert_eq!(
            translate(
                "SELECT ? + NOW_MS FROM t USE_INDEX(t_due) WHERE NOIDX(a) = ? AND b <= NOW_BOUND LIMIT ? SKIP_LOCKED"
            ),
            "SELECT $1 + certhook_now_ms() FROM t  WHERE (a || '') = $2 AND b <= (SELECT certhook_now_ms()) LIMIT $3 FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(
            translate("SELECT TO_BYTES(value ->> 'b') FROM JSON_ELEMENTS(?)"),
            "SELECT convert_to(value ->> 'b', 'UTF8') FROM jsonb_array_elements(CAST($1 AS jsonb))"
        );
    }

    #[test]
    fn every_statement_is_written_for_postgres() {
        assert!(SQL.claim_due.contains("FOR UPDATE SKIP LOCKED"));
        assert!(!SQL.claim_due.contains("INDEXED"));
        assert!(!SQL.list_deliveries.contains('?'));
        assert!(SQL.record_delivered.contains("jsonb_array_elements(CAST($1 AS jsonb))"));
        assert!(SQL.claim_due.contains("next_attempt_at <= (SELECT certhook_now_ms())"), "{}", SQL.claim_due);
        for (name, sql) in SQL.all() {
            assert!(!sql.contains("NOW_"), "{name}: a clock marker left: {sql}");
        }
    }
}
