//! Loading a scenario text in a test: `load`, and `ok`/`err` that expect it to load or
//! to be refused.

use std::path::Path;

use scenarios::{Error, Loaded, load_str};

/// Loads `text` as `s.ron` in the current directory, with `--set` overrides.
pub fn load(text: &str, sets: &[&str]) -> Result<Loaded, Error> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_str("s.ron", "s", text, Path::new("."), &sets)
}

/// Loads `text`, which must load.
pub fn ok(text: &str, sets: &[&str]) -> Loaded {
    load(text, sets).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Loads `text`, which must be refused: the error.
pub fn err(text: &str, sets: &[&str]) -> Error {
    match load(text, sets) {
        Ok(_) => panic!("loaded, but an error was expected:\n{text}\n{sets:?}"),
        Err(e) => e,
    }
}
