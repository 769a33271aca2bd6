//! Comma-separated values (RFC 4180): a header row, then one row per record, `\n` line ends.

/// A CSV document under construction.
pub(crate) struct Csv {
    text: String,
    columns: usize,
}

/// A field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

impl Csv {
    /// A document with this header.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Self {
        let mut csv = Csv { text: String::new(), columns: header.len() };
        csv.row(header);
        csv
    }

    /// Appends a row; it must have as many fields as the header.
    pub fn row<S: AsRef<str>>(&mut self, fields: &[S]) {
        assert_eq!(fields.len(), self.columns, "a CSV row has as many fields as the header");
        let line: Vec<String> = fields.iter().map(|f| field(f.as_ref())).collect();
        self.text.push_str(&line.join(","));
        self.text.push('\n');
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// A number as CSV writes it: Rust's shortest round-trip form (never an exponent), 0 for a
/// non-finite value.
pub(crate) fn num(x: f64) -> String {
    format!("{}", crate::summary::finite(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        let mut c = Csv::new(&["a", "b,c"]);
        c.row(&["\"wlc\"", "1.5"]);
        assert_eq!(c.finish(), "a,\"b,c\"\n\"\"\"wlc\"\"\",1.5\n");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(1e-7), "0.0000001");
    }
}
