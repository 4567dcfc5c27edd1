//! Quoted-printable bodies assembled from pieces. The shared text of an issue is encoded once;
//! each reader's values are encoded on their own and put between the pieces. Every piece ends
//! a line, with a soft line break (`=` CRLF) where its text does not, which decodes to nothing, so the concatenation is valid
//! quoted-printable (no line over 76 characters) and decodes to exactly the whole text.

/// Lines in the output end in CRLF, as mail wants.
fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 32);
    let mut prev = '\0';
    for c in s.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Appends `text`, encoded, followed by a soft line break.
pub fn encode_piece(text: &str, out: &mut Vec<u8>) {
    if text.is_empty() {
        return;
    }
    let encoded = quoted_printable::encode(crlf(text));
    let ends_line = encoded.ends_with(b"\r\n");
    out.extend_from_slice(&encoded);
    // A piece that ends a line needs no soft break: the next one starts a line anyway.
    if !ends_line {
        out.extend_from_slice(b"=\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_decode_to_the_whole_and_keep_lines_short() {
        let pieces = [
            "<p style=\"color:#333\">Ժամանակ — ",
            "ann@example.org",
            &format!(" {} ", "x".repeat(300)),
            "line one\nline two\n",
            "tail with trailing space ",
            "=equals= and →",
        ];
        let mut out = Vec::new();
        for p in pieces {
            encode_piece(p, &mut out);
        }
        let text = String::from_utf8(out.clone()).expect("ascii");
        assert!(text.is_ascii());
        assert!(text.split("\r\n").all(|l| l.len() <= 76), "{text}");
        let decoded = quoted_printable::decode(&out, quoted_printable::ParseMode::Robust).expect("valid QP");
        assert_eq!(String::from_utf8(decoded).expect("utf-8"), crlf(&pieces.concat()));
    }
}
