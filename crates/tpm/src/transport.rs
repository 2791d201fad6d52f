//! Transports to a TPM: a character device (`/dev/tpmrm0`, `/dev/tpm0`) or swtpm's TCP data
//! port, both carrying raw TPM command and response bytes; and the TCTI strings that name
//! them (tpm2-tss syntax, so `TPM2TOOLS_TCTI` values work unchanged).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, TpmError};

/// Largest response accepted from a TPM (TPM2 responses are at most a few KiB).
const MAX_RESPONSE: usize = 8192;
/// How long to wait for a TPM answer; RSA key generation on swtpm can take seconds.
const IO_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_SWTPM_PORT: u16 = 2321;

/// Where the TPM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tcti {
    /// A TPM character device.
    Device(PathBuf),
    /// swtpm's TCP data port.
    Swtpm { host: String, port: u16 },
}

impl Tcti {
    /// Parse a tpm2-tss style TCTI string: `device:/dev/tpmrm0`, `device` (→ `/dev/tpmrm0`),
    /// `swtpm:host=127.0.0.1,port=2321`, `swtpm:port=N`, `swtpm:`/`swtpm` (localhost:2321).
    pub fn parse(s: &str) -> Result<Tcti> {
        let err = |reason: &str| TpmError::Tcti {
            tcti: s.to_string(),
            reason: reason.to_string(),
        };
        let (kind, conf) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "device" => Ok(Tcti::Device(PathBuf::from(if conf.is_empty() {
                "/dev/tpmrm0"
            } else {
                conf
            }))),
            "swtpm" => {
                let mut host = "localhost".to_string();
                let mut port = DEFAULT_SWTPM_PORT;
                for kv in conf.split(',').filter(|kv| !kv.is_empty()) {
                    match kv.split_once('=') {
                        Some(("host", h)) if !h.is_empty() => host = h.to_string(),
                        Some(("port", p)) => {
                            port = p.parse().map_err(|_| err("port is not a number 0-65535"))?
                        }
                        _ => return Err(err("expected host=<name> or port=<number>")),
                    }
                }
                Ok(Tcti::Swtpm { host, port })
            }
            "" => Err(err("empty")),
            _ => Err(err("unsupported TCTI kind (supported: device, swtpm)")),
        }
    }

    /// `$TCTI`, else `$TPM2TOOLS_TCTI`, else `/dev/tpmrm0` if present, else `/dev/tpm0`.
    /// A variable that is set but does not parse is an error, not silently ignored.
    pub fn from_env() -> Result<Tcti> {
        for var in ["TCTI", "TPM2TOOLS_TCTI"] {
            if let Ok(v) = std::env::var(var)
                && !v.is_empty()
            {
                return Tcti::parse(&v);
            }
        }
        let rm = Path::new("/dev/tpmrm0");
        Ok(Tcti::Device(if rm.exists() {
            rm.to_path_buf()
        } else {
            PathBuf::from("/dev/tpm0")
        }))
    }

    /// Whether a kernel resource manager sits between us and the TPM (objects are then
    /// flushed when our connection closes, and stale objects of others are invisible).
    pub fn has_resource_manager(&self) -> bool {
        match self {
            Tcti::Device(p) => p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tpmrm")),
            Tcti::Swtpm { .. } => false,
        }
    }
}

impl std::fmt::Display for Tcti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tcti::Device(p) => write!(f, "device:{}", p.display()),
            Tcti::Swtpm { host, port } => write!(f, "swtpm:host={host},port={port}"),
        }
    }
}

/// An open connection carrying raw command/response bytes.
///
/// The swtpm socket is connected per command: swtpm serves one client connection at a time,
/// so a connection held open by a long-running agent would lock every other client (an
/// operator's tpm2-tools, a test extending a PCR) out of the TPM. swtpm keeps loaded
/// objects across connections, so nothing is lost between commands.
#[derive(Debug)]
pub(crate) enum Transport {
    Device {
        file: File,
        endpoint: String,
    },
    Socket {
        host: String,
        port: u16,
        endpoint: String,
    },
}

impl Transport {
    pub(crate) fn open(tcti: &Tcti) -> Result<Transport> {
        let endpoint = tcti.to_string();
        let io = |source| TpmError::Transport {
            endpoint: endpoint.clone(),
            source,
        };
        match tcti {
            Tcti::Device(path) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io)?;
                Ok(Transport::Device { file, endpoint })
            }
            Tcti::Swtpm { host, port } => {
                // Fail at open time, not at the first command, when nothing listens there.
                connect(host, *port).map_err(io)?;
                Ok(Transport::Socket {
                    host: host.clone(),
                    port: *port,
                    endpoint,
                })
            }
        }
    }

    fn endpoint(&self) -> &str {
        match self {
            Transport::Device { endpoint, .. } | Transport::Socket { endpoint, .. } => endpoint,
        }
    }

    /// Send one command and return the whole response.
    pub(crate) fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let result = match self {
            Transport::Device { file, .. } => {
                // The driver takes a whole command per write and returns a whole response
                // per read.
                file.write_all(command).and_then(|()| {
                    let mut buf = vec![0u8; MAX_RESPONSE];
                    let n = file.read(&mut buf)?;
                    buf.truncate(n);
                    Ok(buf)
                })
            }
            Transport::Socket { host, port, .. } => connect(host, *port).and_then(|mut stream| {
                stream.write_all(command)?;
                read_framed(&mut stream)
            }),
        };
        result.map_err(|source| TpmError::Transport {
            endpoint: self.endpoint().to_string(),
            source,
        })
    }
}

/// One connection to swtpm's data socket, with timeouts so a wedged TPM cannot hang us.
fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Read one response from a byte stream using the size field of its header.
fn read_framed(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 10];
    stream.read_exact(&mut header)?;
    let size = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if !(10..=MAX_RESPONSE).contains(&size) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("response size field {size} outside 10..={MAX_RESPONSE}"),
        ));
    }
    let mut buf = header.to_vec();
    buf.resize(size, 0);
    stream.read_exact(&mut buf[10..])?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcti_strings() {
        assert_eq!(
            Tcti::parse("swtpm:host=127.0.0.1,port=2341").unwrap(),
            Tcti::Swtpm {
                host: "127.0.0.1".into(),
                port: 2341
            }
        );
        assert_eq!(
            Tcti::parse("swtpm:").unwrap(),
            Tcti::Swtpm {
                host: "localhost".into(),
                port: 2321
            }
        );
        assert_eq!(
            Tcti::parse("swtpm:port=5").unwrap(),
            Tcti::Swtpm {
                host: "localhost".into(),
                port: 5
            }
        );
        assert_eq!(
            Tcti::parse("device:/dev/tpm0").unwrap(),
            Tcti::Device("/dev/tpm0".into())
        );
        assert_eq!(
            Tcti::parse("device").unwrap(),
            Tcti::Device("/dev/tpmrm0".into())
        );
        for bad in [
            "",
            "mssim:",
            "swtpm:port=99999",
            "swtpm:bogus=1",
            "swtpm:port",
        ] {
            assert!(
                matches!(Tcti::parse(bad), Err(TpmError::Tcti { .. })),
                "accepted {bad:?}"
            );
        }
        let t = Tcti::parse("swtpm:host=::1,port=7").unwrap();
        assert_eq!(Tcti::parse(&t.to_string()).unwrap(), t);
        assert!(Tcti::Device("/dev/tpmrm0".into()).has_resource_manager());
        assert!(!Tcti::Device("/dev/tpm0".into()).has_resource_manager());
    }

    #[test]
    fn framed_read_rejects_bad_sizes() {
        let mut short: &[u8] = &[0x80, 0x01, 0, 0, 0, 5, 0, 0, 0, 0];
        assert!(read_framed(&mut short).is_err());
        let mut huge: &[u8] = &[0x80, 0x01, 0x7F, 0, 0, 0, 0, 0, 0, 0];
        assert!(read_framed(&mut huge).is_err());
        let mut ok: &[u8] = &[0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 1, 2, 3];
        assert_eq!(read_framed(&mut ok).unwrap().len(), 12);
    }
}
