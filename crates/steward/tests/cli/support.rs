//! Running the `steward` binary in a private temporary directory.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any single CLI invocation may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variables that would change what the binary does.
const STEWARD_ENV: &[&str] = &[
    "STEWARD_DATA_DIR",
    "STEWARD_DATABASE_URL",
    "STEWARD_LISTEN",
    "STEWARD_MASTER_KEY",
    "STEWARD_MASTER_KEY_FILE",
    "STEWARD_LOG",
    "STEWARD_SMTP_URL",
    "STEWARD_MAIL_FROM",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
];
pub const PASSWORD: &str = "correct horse battery staple";

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// A refusal: exit 1 with exactly one line on stderr, which is returned.
    #[track_caller]
    pub fn refused(&self) -> String {
        self.expect_code(1);
        self.one_line_error()
    }

    /// The single, non-empty line on stderr.
    #[track_caller]
    pub fn one_line_error(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{}", self.stderr);
        lines[0].to_string()
    }
}

/// Fails if `stderr` shows a panic or a backtrace: errors must be sentences.
#[track_caller]
pub fn assert_no_panic(stderr: &str) {
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE", "thread 'main'"] {
        assert!(!stderr.contains(bad), "stderr shows a panic ({bad:?}):\n{stderr}");
    }
}

/// Fails if `haystack` contains any of `secrets`.
#[track_caller]
pub fn assert_contains_none(what: &str, haystack: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !haystack.contains(s),
            "{what} contains the personal value {s:?}:\n{haystack}"
        );
    }
}

/// A temporary directory holding one Steward data dir (`<tmp>/data`, not
/// created until Steward creates it). The binary runs with `<tmp>` as its
/// working directory and without any inherited STEWARD_* variables.
pub struct Steward {
    pub tmp: tempfile::TempDir,
    data_dir: PathBuf,
}

impl Steward {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        Self { tmp, data_dir }
    }

    /// A Steward whose data dir is initialised.
    pub fn initialised() -> Self {
        let s = Self::new();
        s.run(["init"]).ok();
        s
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The binary with no data dir option.
    pub fn bare_command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
        cmd.current_dir(self.tmp.path());
        for v in STEWARD_ENV {
            cmd.env_remove(v);
        }
        cmd
    }

    /// The binary with `--data-dir` set.
    pub fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.arg("--data-dir").arg(&self.data_dir);
        cmd
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, None)
    }

    pub fn run_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, Some(stdin))
    }

    /// Creates a user with [`PASSWORD`].
    pub fn create_user(&self, name: &str, role: &str) {
        self.run_stdin(
            ["user", "create", name, "--role", role, "--password-stdin"],
            format!("{PASSWORD}\n").as_bytes(),
        )
        .ok();
    }

    /// Creates an API token for `name` and returns it.
    pub fn create_token(&self, name: &str) -> String {
        let out = self.run(["token", "create", name]);
        out.ok();
        out.stdout.trim().to_string()
    }
}

/// Runs `cmd` to completion (killing it after [`COMMAND_TIMEOUT`]), feeding
/// it `stdin` (or nothing), and checks that it did not panic.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the steward binary starts");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        // The binary may exit without reading (e.g. a usage error).
        let _ = input.write_all(&stdin);
    });
    let out_reader = read_all(child.stdout.take().unwrap());
    let err_reader = read_all(child.stderr.take().unwrap());
    let status = wait_with_timeout(&mut child, COMMAND_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("steward did not finish within {COMMAND_TIMEOUT:?}");
    });
    let _ = writer.join();
    let stdout_bytes = out_reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    assert_no_panic(&stderr);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("steward was killed by a signal: {status:?}\nstderr:\n{stderr}"));
    Output {
        code,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stderr,
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Unix permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A running `steward serve`, killed when dropped so that a failing test
/// leaves no server behind.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `serve` on an ephemeral loopback port and waits until
    /// `/healthz` answers 200.
    pub async fn start(steward: &Steward) -> Self {
        let server = Self::spawn(steward, &[]);
        assert!(server.base.starts_with("http://"), "serve without TLS serves http://");
        server.wait_healthy().await;
        server
    }

    /// Starts `serve` on an ephemeral loopback port with `extra` arguments
    /// and returns once it has printed its URL (`http://` or `https://`),
    /// without waiting for it to answer.
    pub fn spawn(steward: &Steward, extra: &[&OsStr]) -> Self {
        let mut cmd = steward.command();
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the steward binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (first_tx, first_rx) = mpsc::channel::<String>();
        let mut readers = Vec::new();
        {
            let lines = Arc::clone(&stdout);
            let out = child.stdout.take().unwrap();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let _ = first_tx.send(line.clone());
                    lines.lock().unwrap().push(line);
                }
            }));
            let buf = Arc::clone(&stderr);
            let mut err = child.stderr.take().unwrap();
            readers.push(std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            }));
        }
        let mut server = Self {
            child: Some(child),
            base: String::new(),
            stdout,
            stderr,
            readers,
        };
        let first = match first_rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!("serve printed no line; stderr:\n{}", server.stderr()),
        };
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("the first line of serve names no URL: {first:?}"));
        server.base = url.trim_end_matches(['/', '.', ',']).to_string();
        assert!(
            server
                .base
                .split_once("://")
                .is_some_and(|(_, a)| a.starts_with("127.0.0.1:")),
            "serve listens on loopback: {first}"
        );
        assert!(
            !server.base.ends_with(":0"),
            "serve prints the port it actually listens on: {first}"
        );
        server
    }

    /// Polls `GET /healthz` over plain HTTP until it answers 200.
    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(self.url("/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "GET /healthz did not answer 200; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends SIGTERM.
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Sends SIGTERM and returns the exit status, failing if the server does
    /// not stop within 15 seconds.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait_exit()
    }

    /// Kills the server outright (SIGKILL): a crash.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let Some(status) = wait_with_timeout(&mut child, Duration::from_secs(15)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not stop within 15 s of SIGTERM; stderr:\n{}", self.stderr());
        };
        // The pipes are closed now: read them to the end.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        assert_no_panic(&self.stderr());
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
