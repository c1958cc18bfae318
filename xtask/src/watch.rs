//! A QEMU whose serial output is watched as it arrives, for runners that
//! must stop it on a line (Xen idles after dom0 ends, so its verdict is a
//! line, not QEMU's exit status): the output comes in timestamped chunks,
//! copied to a log; QEMU's stderr is kept whole for the report.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::XtaskError;

/// What [`Watched::next`] saw.
pub enum Event {
    /// Serial output, when it arrived; already in the log.
    Output(Instant, Vec<u8>),
    /// Nothing within the wait.
    Quiet,
    /// QEMU closed its output and exited.
    Exited(ExitStatus),
}

pub struct Watched {
    child: Child,
    program: PathBuf,
    log: File,
    chunks: Receiver<(Instant, Vec<u8>)>,
    stderr: Option<JoinHandle<String>>,
    pub started: Instant,
}

impl Watched {
    /// Starts `command` with no input, its serial output logged to `log_path`.
    pub fn spawn(mut command: Command, log_path: &Path) -> Result<Self, XtaskError> {
        let program = PathBuf::from(command.get_program());
        let log = create_log(log_path)?;
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| XtaskError::failed(format!("cannot start {}: {err}", program.display())))?;
        let (sender, chunks) = mpsc::channel();
        if let Some(mut stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = stdout.read(&mut chunk) {
                    if sender.send((Instant::now(), chunk[..read].to_vec())).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut stderr| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
        });
        Ok(Self { child, program, log, chunks, stderr, started })
    }

    /// The next output, waiting at most `wait`.
    pub fn next(&mut self, wait: Duration) -> Result<Event, XtaskError> {
        match self.chunks.recv_timeout(wait) {
            Ok((arrived, bytes)) => {
                // A full disk must not stop the run the verdict depends on.
                let _ = self.log.write_all(&bytes);
                Ok(Event::Output(arrived, bytes))
            }
            Err(RecvTimeoutError::Timeout) => Ok(Event::Quiet),
            Err(RecvTimeoutError::Disconnected) => self.child.wait().map(Event::Exited).map_err(|err| {
                XtaskError::failed(format!("cannot wait for {}: {err}", self.program.display()))
            }),
        }
    }

    /// Ends QEMU if it still runs and returns what it wrote to stderr.
    pub fn finish(mut self) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.stderr.and_then(|reader| reader.join().ok()).unwrap_or_default()
    }
}

/// A fresh log file at `path`, creating its directory.
pub(crate) fn create_log(path: &Path) -> Result<File, XtaskError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| XtaskError::failed(format!("cannot create {}: {err}", dir.display())))?;
    }
    File::create(path).map_err(|err| XtaskError::failed(format!("cannot create {}: {err}", path.display())))
}
