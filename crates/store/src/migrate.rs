//! The schema migrations, embedded in the binary so an installed `certhook` needs no
//! files beside it. Both backends carry the same version numbers.

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Name of the table that records applied migrations (prefixed, so a PKI's own sqlx
/// migrations in the same database are left alone).
pub const MIGRATIONS_TABLE: &str = "certhook_migrations";

fn migrator(files: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).into(),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(*sql),
                false,
            )
        })
        .collect();
    let mut m = Migrator::with_migrations(migrations);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    // During a rolling upgrade an older process (or CLI) meets a schema that a newer one
    // has migrated. Migrations only add, or drop what no version reads or relies on (0007:
    // an index no statement used; 0008: foreign keys that certhook's writes keep), so it
    // carries on rather than refusing to start; a migration it knows that was changed is
    // still refused (checksums).
    m.set_ignore_missing(true);
    m
}

/// The SQLite migrations.
pub fn sqlite() -> Migrator {
    migrator(&[
        (1, "init", include_str!("../../../migrations/sqlite/0001_init.sql")),
        (2, "certificate status", include_str!("../../../migrations/sqlite/0002_certificate_status.sql")),
        (3, "notify only due again", include_str!("../../../migrations/sqlite/0003_notify_only_due_again.sql")),
        (4, "alert types and filters", include_str!("../../../migrations/sqlite/0004_alert_types_filters.sql")),
        (5, "channel tls rate limit", include_str!("../../../migrations/sqlite/0005_channel_tls_rate_limit.sql")),
        (6, "channel last failure", include_str!("../../../migrations/sqlite/0006_channel_last_failure.sql")),
        (
            7,
            "drop unused lease token index",
            include_str!("../../../migrations/sqlite/0007_drop_unused_lease_token_index.sql"),
        ),
        (
            8,
            "drop hot path foreign keys",
            include_str!("../../../migrations/sqlite/0008_drop_hot_path_foreign_keys.sql"),
        ),
    ])
}

/// The PostgreSQL migrations.
pub fn postgres() -> Migrator {
    migrator(&[
        (1, "init", include_str!("../../../migrations/postgres/0001_init.sql")),
        (2, "certificate status", include_str!("../../../migrations/postgres/0002_certificate_status.sql")),
        (3, "notify only due again", include_str!("../../../migrations/postgres/0003_notify_only_due_again.sql")),
        (4, "alert types and filters", include_str!("../../../migrations/postgres/0004_alert_types_filters.sql")),
        (5, "channel tls rate limit", include_str!("../../../migrations/postgres/0005_channel_tls_rate_limit.sql")),
        (6, "channel last failure", include_str!("../../../migrations/postgres/0006_channel_last_failure.sql")),
        (
            7,
            "drop unused lease token index",
            include_str!("../../../migrations/postgres/0007_drop_unused_lease_token_index.sql"),
        ),
        (
            8,
            "drop hot path foreign keys",
            include_str!("../../../migrations/postgres/0008_drop_hot_path_foreign_keys.sql"),
        ),
    ])
}
