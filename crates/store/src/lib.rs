//! certhook-store: the durable outbox on SQLite and PostgreSQL.
#![deny(missing_docs)]
