//! certhook-worker: the delivery loop that leases, renders, signs, sends and records.
#![deny(missing_docs)]
