//! ASCII text built on the stack: the cursors and `ETag`s of poll answers, which every poll
//! request writes, without the allocations of `format!` and `to_string`.

use pushgate_hub::Cursor;

/// Longest text of a cursor: an 8-digit epoch, `-`, a 16-digit position.
pub(crate) const CURSOR_TEXT_LEN: usize = 8 + 1 + 16;

/// Up to `N` bytes of ASCII text. Writes past `N` are dropped: callers size `N` for the most
/// they write, which their tests check.
#[derive(Clone, Copy)]
pub(crate) struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub(crate) const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }

    /// `n` in lowercase hex, at least `width` digits (zero-padded), no prefix.
    pub(crate) fn push_hex(&mut self, n: u64, width: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0_u8; 16];
        let significant = ((64 - n.leading_zeros() as usize).div_ceil(4)).max(width.min(16)).max(1);
        for (i, digit) in digits[16 - significant..].iter_mut().enumerate() {
            let shift = 4 * (significant - 1 - i);
            *digit = DIGITS[((n >> shift) & 0xf) as usize];
        }
        self.push(&digits[16 - significant..]);
    }

    /// The cursor as [`Cursor`]'s `Display` writes it: `now`, `oldest`, `<epoch>-<position>`.
    pub(crate) fn push_cursor(&mut self, cursor: Cursor) {
        match cursor {
            Cursor::Now => self.push(b"now"),
            Cursor::Oldest => self.push(b"oldest"),
            Cursor::At { epoch, position } => {
                self.push_hex(u64::from(epoch.as_u32()), 8);
                self.push(b"-");
                self.push_hex(position, 0);
            }
        }
    }
}

/// A cursor's text on the stack.
pub(crate) fn cursor_text(cursor: Cursor) -> StackText<CURSOR_TEXT_LEN> {
    let mut text = StackText::new();
    text.push_cursor(cursor);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_hub::Epoch;

    #[test]
    fn cursors_read_as_their_display() {
        let cursors = [
            Cursor::Now,
            Cursor::Oldest,
            Cursor::at(Epoch::from_u32(0), 0),
            Cursor::at(Epoch::from_u32(0x9f03c1d2), 42),
            Cursor::at(Epoch::from_u32(7), 0x10),
            Cursor::at(Epoch::from_u32(u32::MAX), u64::MAX),
        ];
        for cursor in cursors {
            assert_eq!(cursor_text(cursor).as_bytes(), cursor.to_string().as_bytes());
        }
    }

    #[test]
    fn hex_pads_to_the_width_and_writes_past_the_end_are_dropped() {
        let mut text = StackText::<20>::new();
        text.push_hex(0xab, 16);
        assert_eq!(text.as_bytes(), b"00000000000000ab");
        text.push_hex(u64::MAX, 0);
        assert_eq!(text.as_bytes(), b"00000000000000ab", "16 more digits do not fit in 20");
        text.push(b"-");
        text.push_hex(0, 0);
        assert_eq!(text.as_bytes(), b"00000000000000ab-0");
    }
}
