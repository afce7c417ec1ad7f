//! `--device cpu|cuda|cuda:N`: parse the runner's device flag into a candle [`Device`].
//!
//! The parse and the open are separate so the spelling can be checked (and tested) without
//! a GPU; opening a CUDA device explains whether the binary lacks the `cuda` feature or the
//! machine lacks a usable GPU, instead of candle's bare error.
use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// A device as named on the command line, not yet opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// CUDA device ordinal (`cuda` means `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad device {s:?}: use cpu, cuda or cuda:N");
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            t => {
                let n = t.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse::<usize>().map(Self::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this binary was built with candle's CUDA backend (`--features cuda`).
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");

impl DeviceSpec {
    /// Open the device. Errors say which of "built without CUDA" or "no usable GPU" applies.
    pub fn open(self) -> anyhow::Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => {
                if !CUDA_COMPILED {
                    anyhow::bail!(
                        "device {self}: this mmcl binary was built without CUDA support; \
                         build one with `cargo xtask build-cuda` (see README, section GPU)"
                    );
                }
                Device::new_cuda(n).map_err(|e| {
                    // With RUST_BACKTRACE set candle appends a backtrace: keep the reason.
                    let e = e.to_string();
                    let reason = e.lines().next().unwrap_or_default();
                    anyhow::anyhow!(
                        "device {self}: no usable CUDA GPU ({reason}); check `nvidia-smi`, the \
                         driver's libcuda.so.1 and the CUDA runtime libraries on LD_LIBRARY_PATH"
                    )
                })
            }
        }
    }
}

/// Parse and open in one go, e.g. `open_device("cuda:1")`.
pub fn open_device(name: &str) -> anyhow::Result<Device> {
    name.parse::<DeviceSpec>()
        .map_err(anyhow::Error::msg)?
        .open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_cuda_spellings() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSpec::Cuda(3)));
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
    }

    #[test]
    fn rejects_bad_spellings_with_the_input_named() {
        for bad in ["gpu", "cuda:", "cuda:x", "cuda1", "metal", ""] {
            let e = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("cuda:N"),
                "{e}"
            );
        }
    }

    #[test]
    fn cpu_opens() {
        assert!(open_device("cpu").unwrap().is_cpu());
    }

    #[test]
    fn cuda_without_the_feature_or_gpu_is_a_clear_error() {
        // Here (CI, this machine) there is no GPU; with the feature off the message must
        // point at the CUDA build, with it on at the missing GPU. Skip on a real GPU.
        if let Ok(d) = open_device("cuda:0") {
            assert!(d.is_cuda());
            return;
        }
        let e = open_device("cuda:0").unwrap_err().to_string();
        if CUDA_COMPILED {
            assert!(e.contains("no usable CUDA GPU"), "{e}");
        } else {
            assert!(
                e.contains("built without CUDA") && e.contains("build-cuda"),
                "{e}"
            );
        }
    }
}
