//! Process facts from `/proc`, and the open-file limit.

use std::time::Instant;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns (soft, hard)
/// as they are afterwards.
pub fn raise_nofile_limit() -> std::io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass,
    // which lives on this stack frame for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Resident memory (`VmRSS`) of a process, in KiB.
pub fn vm_rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// CPU time a process (all its live threads) has run, in seconds.
///
/// Sums the first field of `/proc/PID/task/*/schedstat` (nanoseconds on a
/// CPU), which stays precise over windows of a few milliseconds; falls back
/// to `utime + stime` from `/proc/PID/stat` (clock ticks) without schedstat.
pub fn cpu_seconds(pid: Option<u32>) -> std::io::Result<f64> {
    let base = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    if let Some(ns) = schedstat_ns(&base) {
        return Ok(ns as f64 / 1e9);
    }
    let stat = std::fs::read_to_string(format!("{base}/stat"))?;
    // The command name is in parentheses and may hold spaces: skip past it.
    let rest =
        stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| std::io::Error::other(format!("odd {base}/stat")))?;
    // Fields after ')': state is field 3, utime field 14, stime field 15.
    let mut it = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok((utime + stime) as f64 / hz)
}

fn schedstat_ns(base: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for task in std::fs::read_dir(format!("{base}/task")).ok()?.flatten() {
        // A thread may exit between listing and reading: skip it.
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat"))
            && let Some(ns) = s.split_ascii_whitespace().next().and_then(|v| v.parse::<u64>().ok())
        {
            total += ns;
            any = true;
        }
    }
    any.then_some(total)
}

/// Measures how busy a process (or this one, with `None`) was between
/// [`CpuMeter::start`] and [`CpuMeter::busy`]: 1.0 means one full core.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: Option<u32>,
    at: Instant,
    cpu: f64,
}

impl CpuMeter {
    /// Starts measuring; `None` if the process cannot be read.
    pub fn start(pid: Option<u32>) -> Option<Self> {
        Some(Self { pid, at: Instant::now(), cpu: cpu_seconds(pid).ok()? })
    }

    /// Cores used on average since `start`.
    pub fn busy(&self) -> Option<f64> {
        let cpu = cpu_seconds(self.pid).ok()?;
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| (cpu - self.cpu) / wall)
    }
}

/// Cores busy on the whole machine (all processes, kernel included) from
/// `/proc/stat`, in clock ticks: [`MachineMeter::busy`] minus the server's
/// and the generator's own use tells how much else was running (noise).
#[derive(Debug, Clone, Copy)]
pub struct MachineMeter {
    at: Instant,
    busy_ticks: u64,
}

fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_ascii_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).copied().unwrap_or(0);
    Some(busy)
}

impl MachineMeter {
    /// Starts measuring; `None` without `/proc/stat`.
    pub fn start() -> Option<Self> {
        Some(Self { at: Instant::now(), busy_ticks: machine_busy_ticks()? })
    }

    /// Cores busy on average since `start` (0 to the number of CPUs).
    pub fn busy(&self) -> Option<f64> {
        let now = machine_busy_ticks()?;
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as f64 } else { 100.0 };
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| now.saturating_sub(self.busy_ticks) as f64 / hz / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(vm_rss_kib(std::process::id()).unwrap() > 0);
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(MachineMeter::start().unwrap().busy().is_some());
        let (soft, hard) = raise_nofile_limit().unwrap();
        assert_eq!(soft, hard);
    }
}
