//! Comma-separated values (RFC 4180): a header row, then one row per record, `\n` line ends.
//! A number without a value (NaN: a percentile of an interval without a response) is an
//! empty field, as spreadsheets and pandas read a missing value; never a 0.

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

/// A number as CSV writes it: Rust's shortest round-trip form (never an exponent), an
/// empty field for a non-finite value (no value: not a 0).
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() { format!("{x}") } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        let mut c = Csv::new(&["a", "b,c"]);
        c.row(&["\"wlc\"", "1.5"]);
        assert_eq!(c.finish(), "a,\"b,c\"\n\"\"\"wlc\"\"\",1.5\n");
        assert_eq!(num(f64::NAN), "");
        assert_eq!(num(f64::INFINITY), "");
        assert_eq!(num(-0.25), "-0.25");
        assert_eq!(num(1e-7), "0.0000001");
    }
}
