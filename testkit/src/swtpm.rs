//! A private swtpm per test: a `swtpm socket` process on reserved loopback ports (see
//! [`crate::ports`]) with its own state directory, optionally manufactured by `swtpm_setup` with EK and platform
//! certificates signed by a throw-away `swtpm_localca` CA.
//!
//! The control channel's socket is bound here and handed to swtpm as its standard input
//! (`--ctrl type=tcp,fd=0`), so nothing can take that port in between; swtpm 0.7 reads a
//! `--server` descriptor as an accepted connection, so the data port is bound by swtpm
//! itself and a start that fails on it is tried again on new ports.
//!
//! Missing swtpm binaries are a loud panic, never a skipped test. The process gets an
//! orderly `TPM2_Shutdown` and is killed when the [`Swtpm`] is dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `tpm2_pcrextend SPEC` (`15:sha256=…`, or several banks: `10:sha1=…,sha256=…`) on
/// the TPM at `tcti`, as another process on the machine would; panics with its output when
/// it fails.
pub fn pcr_extend(tcti: &str, spec: &str) {
    let out = Command::new("tpm2_pcrextend")
        .arg(spec)
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .expect("running tpm2_pcrextend (Debian package tpm2-tools)");
    assert!(
        out.status.success(),
        "tpm2_pcrextend {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why a swtpm could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SwtpmError {
    #[error(
        "`{0}` is not installed or not in PATH: install swtpm and swtpm-tools (Debian: apt-get install swtpm swtpm-tools)"
    )]
    NotInstalled(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("swtpm_setup failed ({status}); output:\n{output}")]
    Setup { status: String, output: String },
    #[error("swtpm did not accept connections on port {port} within {secs}s; log:\n{log}")]
    NotListening { port: u16, secs: u64, log: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SwtpmError {
    let what = what.into();
    move |source| SwtpmError::Io { what, source }
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// swtpm control channel commands (swtpm_ioctl semantics).
const CMD_INIT: u32 = 0x02;
const CMD_SHUTDOWN: u32 = 0x03;
/// `TPM2_Startup(TPM_SU_CLEAR)`.
const TPM2_STARTUP_CLEAR: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0];
/// `TPM2_Shutdown(TPM_SU_CLEAR)`.
const TPM2_SHUTDOWN_CLEAR: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0];

/// A running private swtpm.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    dir: tempfile::TempDir,
    data_port: u16,
    ctrl_port: u16,
    localca: Option<PathBuf>,
}

impl Swtpm {
    /// A fresh TPM without EK certificates (no `swtpm_setup`). Panics with the reason if
    /// swtpm cannot be started.
    pub fn start() -> Swtpm {
        Swtpm::try_start(false).unwrap_or_else(|e| panic!("cannot start swtpm: {e}"))
    }

    /// A TPM manufactured by `swtpm_setup`: persistent RSA-2048 EK 0x81010001 with its
    /// certificate at NV 0x01c00002, persistent ECC NIST P-384 EK 0x81010016 with its
    /// certificate at NV 0x01c00016, a platform certificate at NV 0x01c08000, PCR banks
    /// sha1 and sha256. The issuing CA is in [`Swtpm::localca_dir`].
    pub fn start_with_ek_certs() -> Swtpm {
        Swtpm::try_start(true)
            .unwrap_or_else(|e| panic!("cannot start swtpm with EK certificates: {e}"))
    }

    /// Like [`Swtpm::start`] / [`Swtpm::start_with_ek_certs`] but returning the error.
    pub fn try_start(ek_certs: bool) -> Result<Swtpm, SwtpmError> {
        let swtpm = which("swtpm").ok_or(SwtpmError::NotInstalled("swtpm"))?;
        let dir = tempfile::Builder::new()
            .prefix("swtpm-")
            .tempdir()
            .map_err(io("creating swtpm state directory"))?;
        let state = dir.path().join("state");
        fs::create_dir(&state).map_err(io("creating swtpm state directory"))?;
        let localca = if ek_certs {
            Some(manufacture(dir.path(), &state)?)
        } else {
            None
        };
        let mut last_err = None;
        for _ in 0..crate::ports::START_ATTEMPTS {
            let data_port = crate::ports::reserve_pair();
            let ctrl_port = data_port + 1;
            match spawn(&swtpm, dir.path(), data_port, ctrl_port) {
                Ok(child) => {
                    return Ok(Swtpm {
                        child,
                        dir,
                        data_port,
                        ctrl_port,
                        localca,
                    });
                }
                // Most likely the data port taken between its reservation and swtpm's bind
                // by a program outside the tests: start again on new ports.
                Err(e @ SwtpmError::NotListening { .. }) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(SwtpmError::NotInstalled("swtpm")))
    }

    /// TCTI string for this TPM, e.g. `swtpm:host=127.0.0.1,port=40123` (tpm2-tss syntax,
    /// usable as `TPM2TOOLS_TCTI`).
    pub fn tcti_string(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.data_port)
    }

    pub fn data_port(&self) -> u16 {
        self.data_port
    }

    pub fn ctrl_port(&self) -> u16 {
        self.ctrl_port
    }

    /// The TPM state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Where `swtpm_localca` keeps its CA: `swtpm-localca-rootca-cert.pem` (root) and
    /// `issuercert.pem` (the intermediate that signed the EK certificates). `None` for a TPM
    /// started without EK certificates.
    pub fn localca_dir(&self) -> Option<&Path> {
        self.localca.as_deref()
    }

    /// Power-cycle the TPM: `CMD_INIT` on the control channel (PCRs reset, the reset
    /// counter increments, transient objects and sessions vanish), then `TPM2_Startup(CLEAR)`
    /// on the data port, which swtpm does not send by itself after `CMD_INIT`. No client may
    /// hold the data port meanwhile (swtpm serves one connection at a time).
    pub fn power_cycle(&self) -> std::io::Result<()> {
        let mut payload = CMD_INIT.to_be_bytes().to_vec();
        payload.extend(0u32.to_be_bytes());
        ctrl_command(self.ctrl_port, &payload)?;
        let mut s = TcpStream::connect_timeout(&addr(self.data_port), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&TPM2_STARTUP_CLEAR)?;
        let mut resp = [0u8; 10];
        s.read_exact(&mut resp)?;
        match u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]) {
            0 => Ok(()),
            rc => Err(std::io::Error::other(format!(
                "TPM2_Startup after power cycle failed: 0x{rc:x}"
            ))),
        }
    }

    /// Kills swtpm (SIGKILL), as a crashed TPM daemon: clients then meet a closed
    /// connection or a refused one.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts swtpm again after [`Swtpm::kill`], on the same state directory and ports, as
    /// a TPM daemon restarted by its supervisor: the TPM starts with `TPM2_Startup(CLEAR)`
    /// (PCRs reset, the reset counter increments, transient objects and sessions are gone;
    /// after a kill the clock is not marked safe until the TPM next saves it).
    pub fn restart(&mut self) -> Result<(), SwtpmError> {
        let swtpm = which("swtpm").ok_or(SwtpmError::NotInstalled("swtpm"))?;
        self.kill();
        self.child = spawn(&swtpm, self.dir.path(), self.data_port, self.ctrl_port)?;
        Ok(())
    }

    /// An orderly stop: `TPM2_Shutdown(CLEAR)` on the data port (best effort; a client may
    /// still hold the port), then `CMD_SHUTDOWN` on the control channel.
    fn stop(&mut self) {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&addr(self.data_port), Duration::from_millis(200))
        {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            if s.write_all(&TPM2_SHUTDOWN_CLEAR).is_ok() {
                let mut resp = [0u8; 10];
                let _ = s.read_exact(&mut resp);
            }
        }
        let _ = ctrl_command(self.ctrl_port, &CMD_SHUTDOWN.to_be_bytes());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `swtpm socket` on the state in `dir/state`, logging to `dir/swtpm.log`, and
/// waits until it listens on both ports.
fn spawn(swtpm: &Path, dir: &Path, data_port: u16, ctrl_port: u16) -> Result<Child, SwtpmError> {
    let state = dir.join("state");
    let ctrl = TcpListener::bind((Ipv4Addr::LOCALHOST, ctrl_port))
        .map_err(io(format!("binding the control port {ctrl_port}")))?;
    let log = dir.join("swtpm.log");
    let mut child = Command::new(swtpm)
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={data_port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg("type=tcp,fd=0")
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .arg("--log")
        .arg(format!("file={},level=1", log.display()))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(ctrl)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io(format!("spawning {}", swtpm.display())))?;
    match wait_listening(&mut child, data_port, ctrl_port, &log) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Poll until swtpm accepts connections on both ports, or it exits, or the timeout passes.
fn wait_listening(
    child: &mut Child,
    data_port: u16,
    ctrl_port: u16,
    log: &Path,
) -> Result<(), SwtpmError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if !exited
            && TcpStream::connect(addr(data_port)).is_ok()
            && TcpStream::connect(addr(ctrl_port)).is_ok()
        {
            return Ok(());
        }
        if exited || Instant::now() > deadline {
            return Err(SwtpmError::NotListening {
                port: data_port,
                secs: START_TIMEOUT.as_secs(),
                log: fs::read_to_string(log).unwrap_or_default(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Send one control-channel command and check its u32 result is 0.
fn ctrl_command(port: u16, command: &[u8]) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(command)?;
    let mut result = [0u8; 4];
    s.read_exact(&mut result)?;
    match u32::from_be_bytes(result) {
        0 => Ok(()),
        rc => Err(std::io::Error::other(format!(
            "swtpm control command failed: 0x{rc:x}"
        ))),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run `swtpm_setup` with a private `swtpm_localca` CA; returns the CA directory.
fn manufacture(dir: &Path, state: &Path) -> Result<PathBuf, SwtpmError> {
    let setup = which("swtpm_setup").ok_or(SwtpmError::NotInstalled("swtpm_setup"))?;
    let localca_tool = which("swtpm_localca")
        .or_else(|| Some(PathBuf::from("/usr/share/swtpm/swtpm-localca")).filter(|p| p.is_file()))
        .ok_or(SwtpmError::NotInstalled("swtpm_localca"))?;
    which("certtool").ok_or(SwtpmError::NotInstalled("certtool"))?;
    let ca = dir.join("localca");
    fs::create_dir(&ca).map_err(io("creating the local CA directory"))?;
    let write = |name: &str, text: String| -> Result<PathBuf, SwtpmError> {
        let p = dir.join(name);
        fs::write(&p, text).map_err(io(format!("writing {}", p.display())))?;
        Ok(p)
    };
    let ca_conf = write(
        "swtpm-localca.conf",
        format!(
            "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
            ca = ca.display()
        ),
    )?;
    let ca_opts = write(
        "swtpm-localca.options",
        "--platform-manufacturer Keylime\n--platform-version 2.1\n--platform-model swtpm\n".into(),
    )?;
    let setup_conf = write(
        "swtpm_setup.conf",
        format!(
            "create_certs_tool = {}\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha1,sha256\n",
            localca_tool.display(),
            ca_conf.display(),
            ca_opts.display()
        ),
    )?;
    let out = Command::new(&setup)
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(state)
        .arg("--create-ek-cert")
        .arg("--create-platform-cert")
        .arg("--overwrite")
        .arg("--config")
        .arg(&setup_conf)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {}", setup.display())))?;
    let ok = out.status.success() && ca.join("issuercert.pem").is_file();
    if !ok {
        return Err(SwtpmError::Setup {
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TPM2_GetRandom(8)` answered with success proves a live, started TPM.
    fn get_random_ok(port: u16) -> bool {
        let mut s = TcpStream::connect(addr(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&[0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8])
            .unwrap();
        let mut header = [0u8; 10];
        s.read_exact(&mut header).unwrap();
        if header[6..10] != [0, 0, 0, 0] {
            return false;
        }
        let mut body = [0u8; 10];
        s.read_exact(&mut body).unwrap();
        body[..2] == [0, 8]
    }

    #[test]
    fn starts_answers_power_cycles_and_stops() {
        let tpm = Swtpm::start();
        assert!(
            tpm.tcti_string()
                .ends_with(&format!("port={}", tpm.data_port()))
        );
        assert!(tpm.localca_dir().is_none());
        assert!(get_random_ok(tpm.data_port()));
        tpm.power_cycle().unwrap();
        assert!(
            get_random_ok(tpm.data_port()),
            "TPM started again after CMD_INIT"
        );
        let port = tpm.data_port();
        drop(tpm);
        assert!(
            TcpStream::connect(addr(port)).is_err(),
            "swtpm still listening after drop"
        );
    }

    #[test]
    fn restarts_on_its_state_after_a_kill() {
        let mut tpm = Swtpm::start();
        let port = tpm.data_port();
        tpm.kill();
        assert!(
            TcpStream::connect(addr(port)).is_err(),
            "swtpm still listening after kill"
        );
        tpm.restart().unwrap();
        assert_eq!(tpm.data_port(), port);
        assert!(get_random_ok(port), "TPM started again after the restart");
    }

    #[test]
    fn manufactured_tpm_has_a_local_ca() {
        let tpm = Swtpm::start_with_ek_certs();
        let ca = tpm.localca_dir().unwrap();
        assert!(ca.join("issuercert.pem").is_file());
        assert!(ca.join("swtpm-localca-rootca-cert.pem").is_file());
        assert!(get_random_ok(tpm.data_port()));
    }
}
