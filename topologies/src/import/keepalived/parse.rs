//! keepalived.conf's syntax: statements (a keyword and its words on one line), blocks in
//! braces, `!` and `#` comments, double-quoted strings. The tree it gives keeps each
//! word's line and column for messages; whole-line comments are kept too, since lvsim's
//! own exports carry facts in them (`! Director NAME (ADDRESS)`).
//!
//! Bounded: a file over [`MAX_BYTES`] or blocks nested deeper than [`MAX_DEPTH`] are
//! errors (keepalived's own deepest block is four levels: `virtual_server`,
//! `real_server`, `HTTP_GET`, `url`), so no input makes the parser recurse without end.

use super::super::ImportError;

/// The largest file read \[bytes\]: far above any real configuration.
pub(crate) const MAX_BYTES: usize = 16 << 20;

/// The deepest nesting of blocks accepted.
pub(crate) const MAX_DEPTH: usize = 16;

/// A word of the file and where it starts (1-based line and column, in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub line: usize,
    pub col: usize,
}

/// A statement: its keyword, the words after it on its line, and its block if `{` follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub key: Word,
    pub args: Vec<Word>,
    pub block: Option<Vec<Node>>,
    /// The line of the block's `}` (the statement's own line without a block).
    pub end: usize,
}

/// A comment that is a whole line: its line and its text after `!` or `#` (one leading
/// space removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Comment {
    pub line: usize,
    pub text: String,
}

/// The whole-line comments inside a statement's block (between its line and the line
/// of its `}`), found by bisection: `comments` is in line order.
pub(crate) fn comments_in<'c>(comments: &'c [Comment], n: &Node) -> &'c [Comment] {
    let from = comments.partition_point(|c| c.line <= n.key.line);
    let to = comments.partition_point(|c| c.line < n.end).max(from);
    &comments[from..to]
}

/// A parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub nodes: Vec<Node>,
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Word(String),
}

/// A token, its place, and whether it is the first of its line.
#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
    first: bool,
}

/// Reads `text` (the file `path`) into statements and comments.
pub(crate) fn parse(path: &str, text: &str) -> Result<Parsed, ImportError> {
    if text.len() > MAX_BYTES {
        return Err(ImportError::file(
            path,
            format!("{} bytes: larger than any keepalived.conf (at most {MAX_BYTES})", text.len()),
        ));
    }
    let mut comments = Vec::new();
    let tokens = tokens(path, text, &mut comments)?;
    let mut i = 0;
    let nodes = block(path, &tokens, &mut i, 0)?;
    Ok(Parsed { nodes, comments })
}

/// Splits the text into tokens; whole-line comments go to `comments`.
fn tokens(path: &str, text: &str, comments: &mut Vec<Comment>) -> Result<Vec<Token>, ImportError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let chars: Vec<char> = raw.chars().collect();
        let mut c = 0;
        let mut first = true;
        while c < chars.len() {
            let ch = chars[c];
            if ch.is_whitespace() {
                c += 1;
                continue;
            }
            let col = c + 1;
            match ch {
                '!' | '#' => {
                    if first {
                        let rest: String = chars[c + 1..].iter().collect();
                        let text = rest.strip_prefix(' ').unwrap_or(&rest).to_owned();
                        comments.push(Comment { line, text });
                    }
                    break;
                }
                '{' | '}' => {
                    let tok = if ch == '{' { Tok::Open } else { Tok::Close };
                    out.push(Token { tok, line, col, first });
                    c += 1;
                }
                '"' => {
                    let Some(len) = chars[c + 1..].iter().position(|&q| q == '"') else {
                        return Err(ImportError::at(
                            path,
                            line,
                            col,
                            "a quoted string is not closed on its line",
                        ));
                    };
                    let s: String = chars[c + 1..c + 1 + len].iter().collect();
                    out.push(Token { tok: Tok::Word(s), line, col, first });
                    c += len + 2;
                }
                _ => {
                    let len = chars[c..]
                        .iter()
                        .position(|&x| x.is_whitespace() || x == '{' || x == '}')
                        .unwrap_or(chars.len() - c);
                    let s: String = chars[c..c + len].iter().collect();
                    out.push(Token { tok: Tok::Word(s), line, col, first });
                    c += len;
                }
            }
            first = false;
        }
    }
    Ok(out)
}

/// The statements from token `i` to the `}` closing a block at `depth` (or the end of
/// the file at depth 0); `i` ends after that `}`.
fn block(path: &str, toks: &[Token], i: &mut usize, depth: usize) -> Result<Vec<Node>, ImportError> {
    let mut end = 0;
    block_to(path, toks, i, depth, &mut end)
}

/// [`block`], setting `end` to the line of the closing `}`.
fn block_to(
    path: &str,
    toks: &[Token],
    i: &mut usize,
    depth: usize,
    end: &mut usize,
) -> Result<Vec<Node>, ImportError> {
    let opened = i.checked_sub(1).map(|k| (toks[k].line, toks[k].col));
    let mut nodes = Vec::new();
    loop {
        let Some(t) = toks.get(*i) else {
            return match (depth, opened) {
                (0, _) | (_, None) => Ok(nodes),
                (_, Some((line, col))) => Err(ImportError::at(path, line, col, "this `{` is never closed")),
            };
        };
        let key = match &t.tok {
            Tok::Close if depth == 0 => {
                return Err(ImportError::at(path, t.line, t.col, "this `}` closes no block"));
            }
            Tok::Close => {
                *end = t.line;
                *i += 1;
                return Ok(nodes);
            }
            Tok::Open => {
                return Err(ImportError::at(path, t.line, t.col, "a `{` without a keyword before it"));
            }
            Tok::Word(w) => Word { text: w.clone(), line: t.line, col: t.col },
        };
        *i += 1;
        let mut args = Vec::new();
        while let Some(Token { tok: Tok::Word(w), line, col, first: false }) = toks.get(*i) {
            if *line != key.line {
                break;
            }
            args.push(Word { text: w.clone(), line: *line, col: *col });
            *i += 1;
        }
        // `{` on the statement's line, or alone at the start of the next.
        let opens = matches!(toks.get(*i), Some(Token { tok: Tok::Open, .. }));
        let mut last = key.line;
        let block = if opens {
            let t = &toks[*i];
            if depth + 1 > MAX_DEPTH {
                return Err(ImportError::at(
                    path,
                    t.line,
                    t.col,
                    format!("blocks nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            *i += 1;
            Some(block_to(path, toks, i, depth + 1, &mut last)?)
        } else {
            None
        };
        nodes.push(Node { key, args, block, end: last });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: &Node) -> Vec<&str> {
        std::iter::once(&n.key).chain(&n.args).map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn statements_blocks_comments_and_quotes() {
        let text = "! top\nglobal_defs {\n  router_id lb1 # trailing\n}\nvirtual_server 10.0.0.1 80\n{\n  url { path / }\n  regex \"a b#!\"\n}\n";
        let p = parse("k.conf", text).unwrap();
        assert_eq!(p.comments, [Comment { line: 1, text: "top".into() }]);
        assert_eq!(p.nodes.len(), 2);
        let g = p.nodes[0].block.as_ref().unwrap();
        assert_eq!(words(&g[0]), ["router_id", "lb1"]);
        assert_eq!((g[0].args[0].line, g[0].args[0].col), (3, 13));
        let vs = p.nodes[1].block.as_ref().unwrap();
        assert_eq!(words(&p.nodes[1]), ["virtual_server", "10.0.0.1", "80"]);
        assert_eq!(words(&vs[0].block.as_ref().unwrap()[0]), ["path", "/"]);
        assert_eq!(words(&vs[1]), ["regex", "a b#!"]);
    }

    #[test]
    fn broken_structure_is_an_error_at_its_place() {
        for (text, line, col, msg) in [
            ("a {\n b 1\n", 1, 3, "never closed"),
            ("a 1\n}\n", 2, 1, "closes no block"),
            ("{ a }\n", 1, 1, "without a keyword"),
            ("a \"open\n", 1, 3, "not closed"),
        ] {
            let e = parse("f", text).unwrap_err();
            assert_eq!((e.line, e.column), (line, col), "{text:?}: {e}");
            assert!(e.message.contains(msg), "{e}");
        }
    }

    #[test]
    fn deep_nesting_and_huge_files_are_refused_without_recursing_far() {
        let deep = "a {\n".repeat(100_000) + &"}\n".repeat(100_000);
        let e = parse("f", &deep).unwrap_err();
        assert_eq!(e.line, MAX_DEPTH + 1, "{e}");
        assert!(e.message.contains("nested deeper"));
        let ok = "a {\n".repeat(MAX_DEPTH) + &"}\n".repeat(MAX_DEPTH);
        assert!(parse("f", &ok).is_ok());
        let huge = "x".repeat(MAX_BYTES + 1);
        assert!(parse("f", &huge).unwrap_err().message.contains("larger than any"));
    }
}
