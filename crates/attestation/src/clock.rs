//! TPM clock validation across consecutive quotes of one agent (PROTOCOL.md §4.5 step 5).
//!
//! Each quote carries `TPMS_CLOCK_INFO`: `clock` (ms the TPM has been powered, kept in NV),
//! `resetCount` (TPM Resets, i.e. reboots: `TPM2_Startup(CLEAR)` after a power loss or
//! `Shutdown(CLEAR)`), `restartCount` (TPM Restarts/Resumes since the last Reset, i.e.
//! `Startup(STATE)` or `Startup(CLEAR)` after `Shutdown(STATE)`; set to 0 on a Reset) and
//! `safe` (no clock value above the current one was ever reported).
//!
//! Rules, given the clock of the last *accepted* quote (`prior`) and the current one:
//!
//! | case | rule | outcome |
//! |---|---|---|
//! | any | `safe` must be 1 (upstream checks it on every quote, the first included) | else fail "clock safe flag is disabled" |
//! | no prior | — | [`ClockTransition::FirstQuote`] |
//! | `resetCount` lower | — | fail "resetCount value decreased…" |
//! | `resetCount` higher | `restartCount` and `clock` are not compared (they restart with the boot) | [`ClockTransition::Rebooted`] |
//! | same `resetCount`, `restartCount` lower | — | fail "restartCount value decreased…" |
//! | same `resetCount`, `restartCount` higher | `clock` must not go back (a Shutdown(STATE) saves it) | [`ClockTransition::Resumed`] |
//! | both counters equal | `clock` must strictly increase | [`ClockTransition::SameBoot`] |
//!
//! Every failure is `qoute_validation.quote_validation`, irrecoverable. Differences from
//! upstream 7.14.3 (`Tpm.check_quote_timing`), which are deliberate improvements: upstream
//! fails a reboot whenever the prior `restartCount` was non-zero (the Reset zeroes it, which
//! it reads as a decrease), does not record the new boot's clock when both counters change,
//! and demands a strictly increasing clock after a Resume.

use keylime_tpm::ClockInfo;
use serde::{Deserialize, Serialize};

/// `TPMS_CLOCK_INFO` as persisted; field names are upstream's `tpm_clockinfo` column
/// (`{"clock","resetCount","restartCount","safe"}`, `safe` as 0/1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmClockInfo {
    pub clock: u64,
    #[serde(rename = "resetCount")]
    pub reset_count: u32,
    #[serde(rename = "restartCount")]
    pub restart_count: u32,
    pub safe: u8,
}

impl From<ClockInfo> for TpmClockInfo {
    fn from(c: ClockInfo) -> Self {
        TpmClockInfo {
            clock: c.clock,
            reset_count: c.reset_count,
            restart_count: c.restart_count,
            safe: u8::from(c.safe),
        }
    }
}

/// How the current quote's clock relates to the prior accepted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ClockTransition {
    /// No prior clock (first attestation, or state was reset).
    FirstQuote,
    /// Same boot, same restart: clock advanced.
    SameBoot,
    /// Same boot, `restartCount` increased (suspend/resume, Shutdown(STATE)/Startup).
    Resumed { from: u32, to: u32 },
    /// `resetCount` increased: the machine rebooted.
    Rebooted { from: u32, to: u32 },
}

/// Why a clock was rejected; the text is upstream's where upstream has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("clock safe flag is disabled")]
    NotSafe,
    #[error(
        "resetCount value decreased on TPM between two consecutive quotes ({prior} -> {current})"
    )]
    ResetCountDecreased { prior: u32, current: u32 },
    #[error(
        "restartCount value decreased on TPM between two consecutive quotes ({prior} -> {current})"
    )]
    RestartCountDecreased { prior: u32, current: u32 },
    #[error(
        "clock timestamp issued by TPM did not increase between two consecutive quotes ({prior} -> {current})"
    )]
    ClockNotIncreasing { prior: u64, current: u64 },
    #[error("clock timestamp issued by TPM went back across a TPM restart ({prior} -> {current})")]
    ClockWentBack { prior: u64, current: u64 },
}

/// Apply the rules in the module docs.
pub fn check_clock(
    prior: Option<&TpmClockInfo>,
    current: &TpmClockInfo,
) -> Result<ClockTransition, ClockError> {
    if current.safe != 1 {
        return Err(ClockError::NotSafe);
    }
    let Some(prior) = prior else {
        return Ok(ClockTransition::FirstQuote);
    };
    use std::cmp::Ordering::*;
    match current.reset_count.cmp(&prior.reset_count) {
        Less => Err(ClockError::ResetCountDecreased {
            prior: prior.reset_count,
            current: current.reset_count,
        }),
        Greater => Ok(ClockTransition::Rebooted {
            from: prior.reset_count,
            to: current.reset_count,
        }),
        Equal => match current.restart_count.cmp(&prior.restart_count) {
            Less => Err(ClockError::RestartCountDecreased {
                prior: prior.restart_count,
                current: current.restart_count,
            }),
            Greater if current.clock < prior.clock => Err(ClockError::ClockWentBack {
                prior: prior.clock,
                current: current.clock,
            }),
            Greater => Ok(ClockTransition::Resumed {
                from: prior.restart_count,
                to: current.restart_count,
            }),
            Equal if current.clock <= prior.clock => Err(ClockError::ClockNotIncreasing {
                prior: prior.clock,
                current: current.clock,
            }),
            Equal => Ok(ClockTransition::SameBoot),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(clock: u64, reset_count: u32, restart_count: u32, safe: u8) -> TpmClockInfo {
        TpmClockInfo {
            clock,
            reset_count,
            restart_count,
            safe,
        }
    }

    #[test]
    fn rules() {
        let p = c(1000, 5, 2, 1);
        assert_eq!(check_clock(None, &p), Ok(ClockTransition::FirstQuote));
        assert_eq!(check_clock(None, &c(1, 0, 0, 0)), Err(ClockError::NotSafe));
        assert_eq!(
            check_clock(Some(&p), &c(1001, 5, 2, 1)),
            Ok(ClockTransition::SameBoot)
        );
        assert!(matches!(
            check_clock(Some(&p), &c(1000, 5, 2, 1)),
            Err(ClockError::ClockNotIncreasing { .. })
        ));
        assert!(matches!(
            check_clock(Some(&p), &c(999, 5, 2, 1)),
            Err(ClockError::ClockNotIncreasing { .. })
        ));
        assert_eq!(
            check_clock(Some(&p), &c(2000, 5, 2, 0)),
            Err(ClockError::NotSafe)
        );
        // Reboot: restartCount back to 0 and a lower clock are fine.
        assert_eq!(
            check_clock(Some(&p), &c(10, 6, 0, 1)),
            Ok(ClockTransition::Rebooted { from: 5, to: 6 })
        );
        assert!(matches!(
            check_clock(Some(&p), &c(5000, 4, 9, 1)),
            Err(ClockError::ResetCountDecreased {
                prior: 5,
                current: 4
            })
        ));
        // Resume: restartCount up, clock continues (equal allowed), never back.
        assert_eq!(
            check_clock(Some(&p), &c(1000, 5, 3, 1)),
            Ok(ClockTransition::Resumed { from: 2, to: 3 })
        );
        assert!(matches!(
            check_clock(Some(&p), &c(999, 5, 3, 1)),
            Err(ClockError::ClockWentBack { .. })
        ));
        assert!(matches!(
            check_clock(Some(&p), &c(5000, 5, 1, 1)),
            Err(ClockError::RestartCountDecreased {
                prior: 2,
                current: 1
            })
        ));
    }

    #[test]
    fn persisted_form_is_upstreams() {
        let v = serde_json::to_value(c(7, 1, 2, 1)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"clock": 7, "resetCount": 1, "restartCount": 2, "safe": 1})
        );
    }
}
