//! Typing a password without it showing: echo off on standard input's
//! terminal while an [`EchoOff`] lives.

/// Turns echo off on standard input's terminal until dropped.
pub struct EchoOff {
    saved: Option<libc::termios>,
}

impl EchoOff {
    pub fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own; on any
        // failure nothing is changed and nothing is restored.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Self { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Self { saved: None };
            }
            Self { saved: Some(saved) }
        }
    }
}

impl Default for EchoOff {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &saved);
            }
        }
    }
}
