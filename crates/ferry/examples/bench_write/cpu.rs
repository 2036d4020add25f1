//! CPU time (user and system) from `/proc`: the whole process's, which counts every
//! thread including those that have exited, and single threads'. The simulators answer
//! on threads of their own (each wiremock server runs its own runtime on a thread it
//! spawns), so ferry's share is the process's minus theirs.
//!
//! Linux only; elsewhere every figure is `None`.

use std::collections::BTreeSet;

/// `USER_HZ`: the unit of `utime` and `stime` in `/proc/*/stat`, 100 on every Linux ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// User and system CPU time, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cpu {
    pub(crate) user: u64,
    pub(crate) sys: u64,
}

impl Cpu {
    pub(crate) fn user_s(self) -> f64 {
        self.user as f64 / TICKS_PER_SEC
    }

    pub(crate) fn sys_s(self) -> f64 {
        self.sys as f64 / TICKS_PER_SEC
    }

    pub(crate) fn total_s(self) -> f64 {
        self.user_s() + self.sys_s()
    }

    pub(crate) fn minus(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            user: self.user + other.user,
            sys: self.sys + other.sys,
        }
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `stat` line. Fields are counted after the
/// `)` closing the command name, which may itself hold spaces and parentheses.
pub(crate) fn parse_stat(line: &str) -> Option<Cpu> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    Some(Cpu {
        user: fields.get(11)?.parse().ok()?,
        sys: fields.get(12)?.parse().ok()?,
    })
}

/// The whole process.
pub(crate) fn process() -> Option<Cpu> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn thread(tid: u32) -> Option<Cpu> {
    parse_stat(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)
}

/// The sum over `tids` (a thread that has gone counts nothing).
pub(crate) fn threads(tids: &[u32]) -> Cpu {
    tids.iter()
        .filter_map(|t| thread(*t))
        .fold(Cpu::default(), Cpu::plus)
}

/// The ids of this process's threads now.
pub(crate) fn tids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Threads started since `before` that are not named with `ours` (the prefix this
/// benchmark gives ferry's runtime threads).
pub(crate) fn new_threads(before: &BTreeSet<u32>, ours: &str) -> Vec<u32> {
    tids()
        .difference(before)
        .copied()
        .filter(|t| {
            std::fs::read_to_string(format!("/proc/self/task/{t}/comm"))
                .map_or(true, |name| !name.starts_with(ours))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_and_system_ticks_whatever_the_command_name() {
        let line = "4242 (bench (w) x) S 1 4242 4242 0 -1 4194304 2 0 0 0 731 42 0 0 20 0 9 0 \
                    123 4096 512 18446744073709551615";
        assert_eq!(parse_stat(line), Some(Cpu { user: 731, sys: 42 }));
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        let c = Cpu { user: 150, sys: 50 };
        assert!((c.total_s() - 2.0).abs() < 1e-9);
        assert_eq!(
            c.minus(Cpu { user: 200, sys: 10 }),
            Cpu { user: 0, sys: 40 }
        );
    }

    #[test]
    fn this_process_has_a_cpu_figure_and_threads_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process().is_some());
            assert!(!tids().is_empty());
        }
    }
}
