//! Exit codes (SPEC §6): 0 success, 2 bad usage or bad input, 1 anything else.

use certhook_core::config::ConfigError;

use crate::channel_ops::ChannelError;
use certhook_core::validate::ValidationError;
use certhook_producer::ProduceError;
use certhook_store::StoreError;

/// Input the user can fix: an unknown id, a malformed value, a refused state change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Exit code for a command that succeeded.
pub const SUCCESS: i32 = 0;
/// Exit code for any failure that is not the user's input.
pub const FAILURE: i32 = 1;
/// Exit code for bad usage or bad input.
pub const BAD_INPUT: i32 = 2;

/// Maps an error to its exit code by what caused it.
pub fn code_for(err: &anyhow::Error) -> i32 {
    let bad_input = err.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<ValidationError>()
            || cause.is::<ConfigError>()
            || cause.downcast_ref::<StoreError>().is_some_and(StoreError::is_bad_input)
            || cause.downcast_ref::<ProduceError>().is_some_and(ProduceError::is_bad_input)
            || cause.downcast_ref::<ChannelError>().is_some_and(ChannelError::is_bad_input)
    });
    if bad_input { BAD_INPUT } else { FAILURE }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn bad_input_anywhere_in_the_chain_exits_2() {
        let e = anyhow::Error::new(BadInput("unknown channel id 'x'".into())).context("channel pause");
        assert_eq!(code_for(&e), BAD_INPUT);
        let e: anyhow::Error = Err::<(), _>(ValidationError::Empty).context("reading events.json").unwrap_err();
        assert_eq!(code_for(&e), BAD_INPUT);
        assert_eq!(code_for(&anyhow::anyhow!("database is down")), FAILURE);
    }
}
