//! The scheduling policy of the embedded cluster's REST backends:
//! `SCHED_BATCH`.
//!
//! The cluster shares the machine with Fluxbase, and every REST request
//! wakes its session's backend. Under Linux's default policy the woken
//! backend preempts the connection thread that woke it, in the middle of
//! that thread's batch of ready requests, and the thread runs again only
//! after a second switch. A `SCHED_BATCH` process does not preempt on
//! wake-up: it runs when the thread blocks or its slice ends, and otherwise
//! gets its full share of the CPU. Measured on two cores: 11–19 % more
//! inserts and about 13 % more GETs per second (`docs/performance.md`,
//! seventeenth session).
//!
//! Only the REST sessions' backends move: the WAL sender and every other
//! session keep the default policy, so the change stream's latency and
//! PostgreSQL's other clients are untouched. Only on the embedded cluster,
//! whose backends are processes of this machine: a remote server's process
//! id names nothing here.

use std::sync::Once;

/// Moves process `pid` (a backend of the embedded cluster) to
/// `SCHED_BATCH`. Allowed for a process of the same user, or with
/// `CAP_SYS_NICE` (root, whose cluster runs as `postgres`).
#[allow(unsafe_code)]
pub fn set_batch(pid: i32) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`, which outlives the call.
    let rc = unsafe { libc::sched_setscheduler(pid, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The scheduling policy process `pid` runs under (`libc::SCHED_OTHER`,
/// `libc::SCHED_BATCH`, …), as [`set_batch`] leaves it.
#[allow(unsafe_code)]
pub fn policy(pid: i32) -> std::io::Result<i32> {
    // SAFETY: sched_getscheduler takes a pid and reads nothing of ours.
    let policy = unsafe { libc::sched_getscheduler(pid) };
    if policy >= 0 {
        Ok(policy)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// [`set_batch`], saying once per process why it could not be done (the
/// backend then keeps the default policy; nothing else changes).
pub fn try_set_batch(pid: i32) {
    static WARNED: Once = Once::new();
    if let Err(e) = set_batch(pid) {
        WARNED.call_once(|| {
            tracing::warn!(pid, error = %e, "cannot move REST backends to SCHED_BATCH; they keep the default scheduling policy");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_ours_moves_to_batch() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().expect("sleep");
        let pid = i32::try_from(child.id()).expect("pid");
        assert_eq!(policy(pid).expect("policy"), 0, "starts under SCHED_OTHER");
        set_batch(pid).expect("allowed for our own child");
        assert_eq!(policy(pid).expect("policy"), libc::SCHED_BATCH);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_missing_process_is_an_error() {
        // Larger than any pid_max Linux allows.
        assert!(set_batch(i32::MAX).is_err());
        assert!(policy(i32::MAX).is_err());
    }
}
