//! What a stranger's file may cost before any parser sees it: its size and its nesting.

/// Deepest nesting of blocks, sequences and flow collections a document may have. A VDISession
/// needs about 6; the YAML parsers recurse per level, and a stranger's 3,000 levels overflowed
/// the stack (SIGABRT) where 100 costs nothing.
pub const MAX_DEPTH: usize = 100;
/// Largest input file: a file of 50,000 sessions is about 10 MB.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// Checks, in one linear pass and before any parser sees it, that `text` nests no deeper than
/// [`MAX_DEPTH`]: indentation levels, `- ` entries and flow brackets (outside quoted scalars and
/// comments) are counted. Returns the 1-based line where the limit is passed.
pub fn check_depth(text: &str) -> Result<(), (usize, String)> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.char_indices().peekable();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let trimmed = line.trim();
        let starts_quoted = quote.is_some();
        if !starts_quoted
            && flow == 0
            && !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && !trimmed.starts_with("---")
        {
            while indents.last().is_some_and(|top| *top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - a` nests one level per dash on the line, each as deep as its content.
            let (mut col, mut rest) = (indent, trimmed);
            while let Some(r) = rest.strip_prefix("- ") {
                col += 2;
                indents.push(col);
                rest = r.trim_start();
                if indents.len() > MAX_DEPTH {
                    break;
                }
            }
        }
        let mut prev = ' ';
        while let Some((_, c)) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    // '' inside a single-quoted scalar is an escaped quote.
                    if q == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                (Some(_), _) => {}
                (None, '#') if prev == ' ' || prev == '\t' => break,
                // A quote opens a scalar only where a scalar can start, not inside `it's`.
                (None, '"' | '\'') if matches!(prev, ' ' | '\t' | ':' | '-' | '[' | '{' | ',') => quote = Some(c),
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev = c;
            if indents.len() + flow > MAX_DEPTH {
                return Err((
                    n + 1,
                    format!(
                        "nested more than {MAX_DEPTH} levels deep; a VDISession or VDITemplate needs fewer than 10"
                    ),
                ));
            }
        }
        if indents.len() + flow > MAX_DEPTH {
            return Err((
                n + 1,
                format!("nested more than {MAX_DEPTH} levels deep; a VDISession or VDITemplate needs fewer than 10"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_bounded_in_every_form_and_ordinary_documents_pass() {
        let block: String = (0..3000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert!(check_depth(&block).is_err_and(|(line, _)| line <= MAX_DEPTH + 1));
        let flow = format!("a: {}1{}", "{a: ".repeat(5000), "}".repeat(5000));
        assert!(check_depth(&flow).is_err());
        let seq = format!("a: {}1{}", "[".repeat(5000), "]".repeat(5000));
        assert!(check_depth(&seq).is_err());
        let dashes = format!("{}a\n", "- ".repeat(500));
        assert!(check_depth(&dashes).is_err());
        let ordinary = "# a session\napiVersion: vdi.kasm.io/v1alpha1\nkind: VDISession\nmetadata:\n  name: a # it's fine\nspec:\n  user: a@b.c\n  env:\n    - name: X\n      value: \"{{{{ [[[[ \"\n    - name: Y\n      value: '}}}} it''s'\n    - {name: Z, value: [1, 2]}\n---\nb: c\n";
        assert_eq!(check_depth(ordinary), Ok(()), "{ordinary}");
        let many_docs: String = (0..2000).map(|_| ordinary).collect();
        assert_eq!(check_depth(&many_docs), Ok(()));
    }
}
