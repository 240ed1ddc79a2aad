//! The long-lived serializer: one Python process per serialization environment
//! (`serializer.py`, run with the environment's Python) that serializes the workflows of
//! that environment one after another, each in isolation, writing what `pyflyte package`
//! writes. Spoken to in length-prefixed JSON frames on its stdin and stdout. A process that
//! exits, or hangs past the per-workflow timeout, fails only the workflow it was serving: it
//! is killed with its child processes, and the next workflow gets a fresh one. Runs the
//! program and writes only into its own temporary folder; the output path and the cache are
//! the caller's ([`crate::artifacts::serialize`]).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::artifacts::environment;
use crate::artifacts::serialize::{failure, Raised, Request};

/// The serializer program (see the file's docstring for the protocol and the isolation).
const PROGRAM: &str = include_str!("serializer.py");
/// The pyflyte driver, which the serializer imports for its error reports.
/// Frames larger than this are refused (answers are a few kilobytes).
const MAX_FRAME: usize = 64 << 20;

/// The flytekit versions the serializer was checked against (their `pyflyte package` and the
/// state they keep between workflows); `serializer.py` checks the same at start-up.
pub const KNOWN_FLYTEKIT: &[&str] = &["1.16."];

/// True when the long-lived serializer serializes for this flytekit version; other versions
/// get one `pyflyte package` per workflow.
pub fn knows(flytekit: &str) -> bool {
    KNOWN_FLYTEKIT.iter().any(|prefix| flytekit.starts_with(prefix))
}

/// The largest peak resident memory any serializer of this run reported, in KiB.
static PEAK_KIB: AtomicU64 = AtomicU64::new(0);

/// The largest peak resident memory (VmHWM) any serializer process of this run reached, in KiB.
pub fn peak_memory_kib() -> u64 {
    PEAK_KIB.load(Ordering::Relaxed)
}

/// What serving one request gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// The package was written to the output path.
    Written,
    /// The environment's flytekit is not one the serializer knows: serialize the workflow
    /// with `pyflyte package` instead.
    Unsupported { flytekit: String },
}

/// The serializer of one environment: started on first use, restarted after a crash or a
/// hang, stopped (and its process group killed) when dropped.
pub struct Serializer {
    python: PathBuf,
    timeout: Duration,
    process: Option<Process>,
    unsupported: Option<String>,
    starts: usize,
    served: usize,
    /// The process ended in the middle of the last request.
    ended: bool,
}

impl Serializer {
    /// A serializer for the environment whose Python is `python`; `timeout` bounds each
    /// workflow (and the start-up).
    pub fn new(python: &Path, timeout: Duration) -> Serializer {
        Serializer {
            python: python.to_path_buf(),
            timeout,
            process: None,
            unsupported: None,
            starts: 0,
            served: 0,
            ended: false,
        }
    }

    /// True while a process is up (the next request does not start one).
    pub fn running(&self) -> bool {
        self.process.is_some()
    }

    /// True, once, when the process ended in the middle of the last request (not a timeout
    /// and not an error it reported): the caller may try that workflow alone.
    pub fn take_ended(&mut self) -> bool {
        std::mem::take(&mut self.ended)
    }

    /// The id of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    /// How many processes were started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// How many requests were answered.
    pub fn served(&self) -> usize {
        self.served
    }

    /// The flytekit version the process refused, once it did.
    pub fn unsupported(&self) -> Option<&str> {
        self.unsupported.as_deref()
    }

    /// Serializes one workflow into `out` (a `.tgz` path that does not exist yet). An error
    /// names the workflow's exception and its frames (as [`failure`] does), or says that the
    /// process exited or was stopped for taking too long; either way the next request gets a
    /// fresh process.
    pub fn serve(&mut self, req: &Request<'_>, out: &Path) -> Result<Served> {
        if let Some(flytekit) = &self.unsupported {
            return Ok(Served::Unsupported { flytekit: flytekit.clone() });
        }
        // A process that died between two requests (a thread of an earlier workflow's code
        // ending it, say) is not this workflow's fault: one fresh start is tried.
        for attempt in 0..2 {
            if self.process.is_none() {
                match Process::start(&self.python, self.timeout, req)? {
                    Started::Up(process) => {
                        self.starts += 1;
                        self.process = Some(process);
                    }
                    Started::Unsupported(flytekit) => {
                        self.unsupported = Some(flytekit.clone());
                        return Ok(Served::Unsupported { flytekit });
                    }
                }
            }
            let process = self.process.as_mut().expect("started above");
            match process.send(req, out) {
                Ok(log) => return self.answer(req, out, log),
                Err(_) if attempt == 0 => self.stop(),
                Err(e) => {
                    self.stop();
                    return Err(e);
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Waits for the answer to the request just sent.
    fn answer(&mut self, req: &Request<'_>, out: &Path, log: PathBuf) -> Result<Served> {
        let process = self.process.as_mut().expect("a request was sent");
        let received = process.frames.recv_timeout(self.timeout);
        let pkgs = req.packages.join(", ");
        let bytes = match received {
            Ok(Ok(bytes)) => bytes,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Read before the process's folder goes with it.
                let mut process = self.process.take().expect("a request was sent");
                process.finish(Duration::from_millis(0));
                let tail = tail(&log, req.code_dir);
                drop(process);
                bail!(
                    "pyflyte could not serialize {pkgs}: it took longer than {} (the per-workflow timeout, {}); \
                     the serializer was stopped with its child processes, and the next workflow gets a new \
                     one{tail}",
                    humantime::format_duration(self.timeout),
                    crate::settings::FLYTE_DEPLOY_SERIALIZE_TIMEOUT
                );
            }
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.ended = true;
                let mut process = self.process.take().expect("a request was sent");
                let status = describe_status(process.finish(Duration::from_secs(5)));
                let tail = tail(&log, req.code_dir);
                drop(process);
                bail!(
                    "pyflyte could not serialize {pkgs}: the serializer {status} while serializing it; the next \
                     workflow gets a new one{tail}"
                );
            }
        };
        self.served += 1;
        let answer: Answer = serde_json::from_slice(&bytes).context("reading the serializer's answer")?;
        PEAK_KIB.fetch_max(answer.rss_kib, Ordering::Relaxed);
        if answer.ok && out.is_file() {
            let _ = std::fs::remove_file(&log);
            return Ok(Served::Written);
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let mut message = failure(req, answer.report.as_deref(), &text);
        if let Some(code) = answer.exit {
            message.push_str(&format!("\n  (the workflow's code called exit({code}))"));
        }
        bail!("{message}")
    }

    /// Stops the process, if one runs: end of input, a short wait, then its process group
    /// is killed (children the workflow code started included).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.finish(Duration::from_millis(0));
        }
    }
}

impl Drop for Serializer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.finish(Duration::from_secs(5));
        }
    }
}

/// The serializer's answer to one request.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    report: Option<Vec<Raised>>,
    exit: Option<i32>,
    #[serde(default)]
    rss_kib: u64,
}

/// The serializer's first frame.
#[derive(Debug, Deserialize)]
struct Hello {
    flytekit: Option<String>,
    supported: bool,
    error: Option<Vec<Raised>>,
}

enum Started {
    Up(Process),
    Unsupported(String),
}

/// One running serializer process.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Frames read from its stdout by a thread; an error or a closed channel is its end.
    frames: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Its HOME and working folder: the programs, the start-up log, the request logs.
    scratch: tempfile::TempDir,
    requests: usize,
    /// How it ended, once reaped.
    status: Option<std::process::ExitStatus>,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.finish(Duration::from_millis(0));
    }
}

impl Process {
    /// Starts the serializer with the environment's Python, the scrubbed variables of
    /// [`environment::workflow_env`] and a temporary HOME, in a process group of its own,
    /// and reads its first frame. `req` is the workflow it is started for (a start-up error
    /// is its error).
    fn start(python: &Path, timeout: Duration, req: &Request<'_>) -> Result<Started> {
        // The program imports the driver from its own folder.
        let (scratch, _driver) = crate::artifacts::serialize::scratch_with_driver("flyte-deploy-serializer")?;
        let program = scratch.path().join("flyte_deploy_serializer.py");
        std::fs::write(&program, PROGRAM).with_context(|| format!("writing {}", program.display()))?;
        let log = scratch.path().join("serializer.log");
        let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        // A Command rather than duct: the pipes stay open across requests.
        let mut command = Command::new(python);
        command
            .arg(&program)
            .current_dir(scratch.path())
            .env_clear()
            .envs(environment::workflow_env())
            .env("HOME", scratch.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("FLYTE_SDK_LOGGING_LEVEL", "40")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0);
        environment::die_with_parent(&mut command);
        let mut child =
            command.spawn().with_context(|| format!("starting the serializer with {}", python.display()))?;
        let stdout = child.stdout.take().context("the serializer's stdout")?;
        let (send, frames) = mpsc::channel();
        std::thread::Builder::new()
            .name("serializer-reader".into())
            .spawn(move || read_frames(stdout, send))
            .context("starting a thread")?;
        let stdin = child.stdin.take();
        let mut process = Process { child, stdin, frames, scratch, requests: 0, status: None };
        let pkgs = req.packages.join(", ");
        let hello = match process.frames.recv_timeout(timeout) {
            Ok(Ok(bytes)) => match serde_json::from_slice::<Hello>(&bytes) {
                Ok(hello) => hello,
                Err(e) => {
                    process.finish(Duration::from_millis(0));
                    bail!("pyflyte could not serialize {pkgs}: the serializer's first frame is not understood: {e}");
                }
            },
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = describe_status(process.finish(Duration::from_secs(5)));
                let tail = tail(&log, req.code_dir);
                bail!("pyflyte could not serialize {pkgs}: the serializer {status} as it started{tail}");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                process.finish(Duration::from_millis(0));
                let tail = tail(&log, req.code_dir);
                let timeout = humantime::format_duration(timeout);
                bail!("pyflyte could not serialize {pkgs}: the serializer did not start within {timeout}{tail}");
            }
        };
        if let Some(chain) = &hello.error {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            process.finish(Duration::from_secs(5));
            bail!("{}", failure(req, Some(chain), &text));
        }
        if !hello.supported {
            process.finish(Duration::from_secs(5));
            return Ok(Started::Unsupported(hello.flytekit.unwrap_or_else(|| "(none)".into())));
        }
        Ok(Started::Up(process))
    }

    /// Sends one request; returns the path of its log (the workflow code's output).
    fn send(&mut self, req: &Request<'_>, out: &Path) -> Result<PathBuf> {
        self.requests += 1;
        let log = self.scratch.path().join(format!("request-{}.log", self.requests));
        let request = serde_json::json!({
            "packages": req.packages,
            "code_dir": req.code_dir,
            "image": req.image,
            "images": req.images,
            "out": out,
            "log": log,
        });
        let body = serde_json::to_vec(&request)?;
        let stdin = self.stdin.as_mut().context("the serializer's input is closed")?;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        stdin.write_all(&frame).and_then(|()| stdin.flush()).context("writing to the serializer")?;
        Ok(log)
    }

    /// Ends the process: its input closed, up to `grace` for it to exit, then its process
    /// group killed (whatever the workflow code started goes too) and the process reaped.
    /// Its folder stays until the value is dropped.
    fn finish(&mut self, grace: Duration) -> std::process::ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        drop(self.stdin.take());
        let pid = self.child.id() as libc::pid_t;
        let deadline = Instant::now() + grace;
        while !exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The leader is alive or a zombie, so the group's id is still its own.
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let status = match self.child.wait() {
            Ok(status) => status,
            Err(_) => std::os::unix::process::ExitStatusExt::from_raw(libc::SIGKILL),
        };
        self.status = Some(status);
        status
    }
}

/// True when the process has exited (it is not reaped: its id stays reserved).
fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waits on our own child without reaping it.
    let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
    // SAFETY: si_pid is set when waitid reports a child (and zero otherwise).
    rc != 0 || unsafe { info.si_pid() } != 0
}

/// Reads frames until the end of the stream, sending each; the end is sent as an error.
fn read_frames(mut stdout: impl Read, send: mpsc::Sender<std::io::Result<Vec<u8>>>) {
    loop {
        let frame = read_frame(&mut stdout);
        let end = frame.is_err();
        if send.send(frame).is_err() || end {
            return;
        }
    }
}

/// One frame: a 4-byte big-endian length, then that many bytes.
fn read_frame(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    input.read_exact(&mut head)?;
    let size = u32::from_be_bytes(head) as usize;
    if size > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a frame of {size} bytes")));
    }
    let mut body = vec![0u8; size];
    input.read_exact(&mut body)?;
    Ok(body)
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended".into(),
    }
}

/// The last lines of a log, the code set's temporary folder named as such; empty when the
/// log is.
fn tail(log: &Path, code_dir: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let code_dir = code_dir.to_string_lossy();
    let lines: Vec<&str> = text.lines().rev().filter(|l| !l.trim().is_empty()).take(15).collect();
    if lines.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = lines.into_iter().rev().map(|l| l.replace(&*code_dir, "<code set>")).collect();
    format!(":\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_a_big_endian_length_and_the_bytes() {
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0];
        assert_eq!(read_frame(&mut input).unwrap(), b"abc");
        assert!(read_frame(&mut input).is_err(), "a cut frame is the end");
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert_eq!(read_frame(&mut huge).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_serializer_knows_flytekit_1_16_only() {
        assert!(knows("1.16.31"));
        assert!(knows("1.16.0"));
        assert!(!knows("1.15.4"));
        assert!(!knows("1.1.6"));
        assert!(!knows("2.0.0"));
        // serializer.py checks the same versions.
        assert!(PROGRAM.contains("SUPPORTED = (\"1.16.\",)"));
    }
}
