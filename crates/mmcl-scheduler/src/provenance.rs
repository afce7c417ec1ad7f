//! What made a run's numbers: the `provenance` object of `results.json`.
//!
//! Its top-level fields describe the session that started the run; every later session
//! (`mmcl train --resume`) is appended to `resumes` with its own fields, so a run resumed by
//! another build, on another host or with an overridden config says so. A session killed
//! before its first checkpoint left nothing behind (its resume restarts from the checkpoint
//! before it) and is not listed. The run's wall time is `elapsed_s` of `results.json`.
//!
//! Results written before provenance existed have none (`provenance` absent, read as
//! `None`); a run of such a version resumed by this one records the resuming session as its
//! first, and `from_task` says where that session began.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The git commit mmcl was built from (`unknown` when built outside a git checkout).
pub const GIT_COMMIT: &str = env!("MMCL_GIT_COMMIT");

/// Whether the checkout had uncommitted changes to tracked files when built (`None` =
/// unknown). See this crate's build script for when it is re-evaluated.
pub fn git_dirty() -> Option<bool> {
    env!("MMCL_GIT_DIRTY").parse().ok()
}

/// Provenance of a run: its first session's [`SessionProvenance`] and the later ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(flatten)]
    pub first: SessionProvenance,
    /// The sessions that resumed the run, in order.
    #[serde(default)]
    pub resumes: Vec<SessionProvenance>,
}

/// One session of a run (a `train` or a `resume`): the code, the inputs, the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionProvenance {
    /// The mmcl version (`CARGO_PKG_VERSION`).
    pub mmcl_version: String,
    /// The git commit of the build, or `unknown`.
    pub commit: String,
    /// Uncommitted changes to tracked files in the build's checkout (`None` = unknown).
    pub dirty: Option<bool>,
    /// SHA-256 (hex) of the run's `config.toml` as this session read or wrote it.
    pub config_sha256: String,
    /// The cache's manifest SHA-256 (`manifest_sha256` of its `cache.json`).
    pub cache_manifest_sha256: String,
    /// The device as configured (`cpu`, `cuda:N`).
    pub device: String,
    /// Worker threads of the CPU kernels (rayon's pool).
    pub threads: usize,
    /// The op implementation: `fast` (mmcl-ops CPU kernels) or `composed` (candle's ops;
    /// `MMCL_KERNELS=composed`, and always on a GPU).
    pub kernels: String,
    pub host: String,
    /// The process's arguments, the program first.
    pub command_line: Vec<String>,
    /// Start of the session, UTC (RFC 3339).
    pub started: String,
    /// The first task the session trained (0 for the session that started the run).
    pub from_task: usize,
    /// The process's peak resident memory in bytes (Linux `VmHWM`) when the session last
    /// wrote the results; `None` where the OS does not tell.
    pub peak_rss_bytes: Option<u64>,
}

impl SessionProvenance {
    /// This process, about to train `from_task` onwards of a run with `config_toml` (the
    /// bytes of its `config.toml`) on `device`, from a cache with `cache_manifest_sha256`.
    pub fn capture(
        config_toml: &[u8],
        cache_manifest_sha256: &str,
        device: &str,
        is_cpu: bool,
        from_task: usize,
    ) -> SessionProvenance {
        // `use_fast` in mmcl-ops: the fast kernels run on the CPU only.
        let kernels = match (is_cpu, mmcl_ops::kernels()) {
            (true, Ok(k)) => k.name().to_string(),
            (true, Err(_)) => "invalid MMCL_KERNELS".to_string(),
            (false, _) => mmcl_ops::Kernels::Composed.name().to_string(),
        };
        SessionProvenance {
            mmcl_version: env!("CARGO_PKG_VERSION").to_string(),
            commit: GIT_COMMIT.to_string(),
            dirty: git_dirty(),
            config_sha256: crate::sha256_hex(config_toml),
            cache_manifest_sha256: cache_manifest_sha256.to_string(),
            device: device.to_string(),
            threads: mmcl_ops::process::worker_threads(),
            kernels,
            host: host_name(),
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            started: rfc3339_utc(SystemTime::now()),
            from_task,
            peak_rss_bytes: peak_rss_bytes(),
        }
    }

    /// `mmcl <version> <commit, 7 digits>[+dirty]`: what two runs must share to sit in one
    /// table cell.
    pub fn code_version(&self) -> String {
        let short = self.commit.get(..7).unwrap_or(&self.commit);
        let dirty = match self.dirty {
            Some(true) => "+dirty",
            Some(false) => "",
            None => "+?",
        };
        format!("mmcl {} {short}{dirty}", self.mmcl_version)
    }
}

impl Provenance {
    /// Every session, the first first.
    pub fn sessions(&self) -> impl Iterator<Item = &SessionProvenance> {
        std::iter::once(&self.first).chain(&self.resumes)
    }

    /// The session writing the results now (the last one).
    pub fn current_mut(&mut self) -> &mut SessionProvenance {
        self.resumes.last_mut().unwrap_or(&mut self.first)
    }

    /// The largest peak resident memory of any session.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.sessions().filter_map(|s| s.peak_rss_bytes).max()
    }

    /// One line for the report's run list: code version, cache, device and threads, host,
    /// peak memory; a resumed run adds its sessions' code versions when they differ.
    pub fn summary(&self) -> String {
        let f = &self.first;
        let cache = f.cache_manifest_sha256.get(..8).unwrap_or("?");
        let mut s = format!(
            "{}, cache {cache}…, {} x{} {}, host {}",
            f.code_version(),
            f.device,
            f.threads,
            f.kernels,
            f.host
        );
        if let Some(bytes) = self.peak_rss_bytes() {
            s += &format!(", peak {:.0} MiB", bytes as f64 / (1024.0 * 1024.0));
        }
        if !self.resumes.is_empty() {
            let mut versions: Vec<String> = self.sessions().map(|s| s.code_version()).collect();
            versions.dedup();
            s += &format!(", {} sessions", self.resumes.len() + 1);
            if versions.len() > 1 {
                s += &format!(" ({})", versions.join(" / "));
            }
        }
        s
    }
}

/// The machine's name: the kernel's, `/etc/hostname`, or `HOSTNAME`; `unknown` if none.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(Path::new(p)).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`; Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time (UTC; times before 1970 clamp to the epoch).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil inverse).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates_match_known_instants() {
        let at = |s| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn peak_memory_is_read_from_vm_hwm_in_bytes() {
        let status = "Name:\tmmcl\nVmPeak:\t  200 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }

    #[test]
    fn code_version_names_version_short_commit_and_dirty_flag() {
        let mut s = SessionProvenance::capture(b"seed = 1\n", "ab", "cpu", true, 0);
        s.commit = "0123456789abcdef".into();
        s.dirty = Some(true);
        assert_eq!(
            s.code_version(),
            format!("mmcl {} 0123456+dirty", env!("CARGO_PKG_VERSION"))
        );
        s.dirty = None;
        s.commit = "unknown".into();
        assert!(s.code_version().ends_with(" unknown+?"));
        assert_eq!(s.config_sha256, crate::sha256_hex(b"seed = 1\n"));
        assert!(!s.host.is_empty() && !s.command_line.is_empty());
    }
}
