//! The terminal's stderr line, shared by everything that prints there or on stdout: the
//! live progress line is redrawn in place (`\r` + clear-line) and cleared before anything
//! else is printed, so no warning lands in the middle of it.

use std::io::Write;
use std::sync::Mutex;

/// Clears the terminal line: carriage return, then ANSI "erase entire line".
const CLEAR: &str = "\r\x1b[2K";

/// Whether the live line is on screen now.
#[derive(Debug, Default)]
pub struct Terminal {
    drawn: Mutex<bool>,
}

impl Terminal {
    /// Runs `print` with the live line off the screen; the next tick redraws it.
    pub fn print(&self, print: impl FnOnce()) {
        let mut drawn = self.drawn.lock().expect("terminal lock");
        if *drawn {
            eprint!("{CLEAR}");
            *drawn = false;
        }
        print();
    }

    /// Redraws the live line.
    pub fn draw(&self, line: &str) {
        let mut drawn = self.drawn.lock().expect("terminal lock");
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR}{line}");
        let _ = err.flush();
        *drawn = true;
    }
}
