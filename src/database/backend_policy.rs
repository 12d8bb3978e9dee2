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

    /// The policy field (41) of `/proc/<pid>/stat`.
    fn policy(pid: u32) -> u32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let rest = stat.rsplit_once(')').expect("comm").1;
        rest.split_whitespace().nth(41 - 3).expect("field 41").parse().expect("number")
    }

    #[test]
    fn a_process_of_ours_moves_to_batch() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().expect("sleep");
        let pid = child.id();
        assert_eq!(policy(pid), 0, "starts under SCHED_OTHER");
        set_batch(i32::try_from(pid).expect("pid")).expect("allowed for our own child");
        assert_eq!(policy(pid), libc::SCHED_BATCH as u32);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_missing_process_is_an_error() {
        // Larger than any pid_max Linux allows.
        assert!(set_batch(i32::MAX).is_err());
    }
}
