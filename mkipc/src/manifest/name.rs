//! Fixed-size names of nodes and channels.

use core::fmt;

use super::wire::NAME_LEN;

/// A node or channel name: 1 to 32 printable ASCII bytes, NUL-padded on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; NAME_LEN],
    len: u8,
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty (or the stored bytes start with NUL).
    Empty,
    /// The name is longer than [`NAME_LEN`] bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A byte is not printable ASCII (`!` to `~`).
    BadByte {
        /// Position of the byte.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// Stored bytes after the terminating NUL are not all NUL.
    Unterminated,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NameError::Empty => write!(f, "name is empty; give 1 to {NAME_LEN} bytes"),
            NameError::TooLong { len } => {
                write!(f, "name has {len} bytes; at most {NAME_LEN} fit")
            }
            NameError::BadByte { at, byte } => write!(
                f,
                "name byte {at} is {byte:#04x}; use printable ASCII without spaces"
            ),
            NameError::Unterminated => write!(f, "stored name has bytes after its NUL padding"),
        }
    }
}

impl core::error::Error for NameError {}

impl Name {
    /// Checks and pads `name`.
    pub fn new(name: &str) -> Result<Name, NameError> {
        let src = name.as_bytes();
        if src.is_empty() {
            return Err(NameError::Empty);
        }
        if src.len() > NAME_LEN {
            return Err(NameError::TooLong { len: src.len() });
        }
        let mut bytes = [0u8; NAME_LEN];
        for (at, (&byte, dst)) in src.iter().zip(&mut bytes).enumerate() {
            if !byte.is_ascii_graphic() {
                return Err(NameError::BadByte { at, byte });
            }
            *dst = byte;
        }
        Ok(Name {
            bytes,
            len: src.len() as u8,
        })
    }

    /// Validates stored bytes (from a manifest entry).
    pub fn from_wire(bytes: [u8; NAME_LEN]) -> Result<Name, NameError> {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if len == 0 {
            return Err(NameError::Empty);
        }
        if bytes[len..].iter().any(|&b| b != 0) {
            return Err(NameError::Unterminated);
        }
        if let Some(at) = bytes[..len].iter().position(|b| !b.is_ascii_graphic()) {
            return Err(NameError::BadByte {
                at,
                byte: bytes[at],
            });
        }
        Ok(Name {
            bytes,
            len: len as u8,
        })
    }

    /// The stored form.
    pub fn to_wire(&self) -> [u8; NAME_LEN] {
        self.bytes
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever admitted, so this never fails.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        let n = Name::new("kernel0.rx").unwrap();
        assert_eq!(n.as_str(), "kernel0.rx");
        assert_eq!(Name::from_wire(n.to_wire()), Ok(n));
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(
            Name::new("a b"),
            Err(NameError::BadByte { at: 1, byte: b' ' })
        );
        assert!(matches!(
            Name::new(&"x".repeat(33)),
            Err(NameError::TooLong { len: 33 })
        ));
        assert!(Name::new(&"x".repeat(32)).is_ok());
        let mut w = n.to_wire();
        w[20] = b'z';
        assert_eq!(Name::from_wire(w), Err(NameError::Unterminated));
        assert_eq!(Name::from_wire([0; NAME_LEN]), Err(NameError::Empty));
        let mut w = [b'a'; NAME_LEN];
        w[3] = 0x80;
        assert_eq!(
            Name::from_wire(w),
            Err(NameError::BadByte { at: 3, byte: 0x80 })
        );
    }
}
