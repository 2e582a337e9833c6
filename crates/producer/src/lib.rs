//! certhook-producer: what a PKI links or calls to hand certhook certificate events.
#![deny(missing_docs)]
