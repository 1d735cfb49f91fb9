//! Command strings from a topology file: split into words like a POSIX shell does (quotes
//! and backslashes, no expansion — containerlab does not run `exec` through a shell
//! either), and container paths rewritten to the node's directory on this machine.

/// Split `s` into words: whitespace separates, `'...'` is literal, `"..."` keeps
/// `\"`, `\\`, `\$` and `` \` `` escapes, a backslash outside quotes escapes the next
/// character. `None` on an unbalanced quote or a trailing backslash.
pub fn split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let x = chars.next()?;
                            if !matches!(x, '"' | '\\' | '$' | '`') {
                                cur.push('\\');
                            }
                            cur.push(x);
                        }
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Characters that can continue a path component: an occurrence of a container path
/// preceded or followed by one of them is part of some other path and left alone.
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// Replace every occurrence of a container path in `word` by its host path. `map` holds
/// (container, host) pairs; the longest container path wins where several match. An
/// occurrence counts when it starts the word or follows a non-path character (a quote,
/// `=`, a space inside `sh -c '...'`), and ends the word, is followed by `/`, or by a
/// non-path character.
pub fn rewrite(word: &str, map: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = map.iter().collect();
    sorted.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    let bytes = word.as_bytes();
    'outer: while i < word.len() {
        let prev_ok = i == 0 || !path_char(word[..i].chars().next_back().unwrap_or(' '));
        if prev_ok && bytes[i] == b'/' {
            for (container, host) in &sorted {
                if word[i..].starts_with(container.as_str()) {
                    let end = i + container.len();
                    let next = word[end..].chars().next();
                    let next_ok = match next {
                        None => true,
                        Some('/') => true,
                        Some(c) => !path_char(c),
                    };
                    if next_ok {
                        out.push_str(host);
                        i = end;
                        continue 'outer;
                    }
                }
            }
        }
        let c = word[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"sh -c 'echo "a b" && x' "q\"x" a\ b"#).unwrap(),
            vec!["sh", "-c", r#"echo "a b" && x"#, "q\"x", "a b"]
        );
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split("a ''").unwrap(), vec!["a", ""]);
        assert!(split("a 'b").is_none());
        assert!(split("a \"b").is_none());
        assert!(split("a \\").is_none());
    }

    #[test]
    fn rewrites_container_paths_only() {
        let map = vec![
            ("/etc/wgrd".to_string(), "/x/r1/root/etc/wgrd".to_string()),
            ("/etc/wgrd/special".to_string(), "/y".to_string()),
        ];
        assert_eq!(rewrite("/etc/wgrd", &map), "/x/r1/root/etc/wgrd");
        assert_eq!(
            rewrite("/etc/wgrd/wgrd.toml", &map),
            "/x/r1/root/etc/wgrd/wgrd.toml"
        );
        assert_eq!(rewrite("/etc/wgrd/special/a", &map), "/y/a");
        assert_eq!(
            rewrite("--config=/etc/wgrd/a", &map),
            "--config=/x/r1/root/etc/wgrd/a"
        );
        assert_eq!(
            rewrite("sh /etc/wgrd/start.sh; cat '/etc/wgrd/b'", &map),
            "sh /x/r1/root/etc/wgrd/start.sh; cat '/x/r1/root/etc/wgrd/b'"
        );
        // Not the bound path: a longer name, or inside another path.
        assert_eq!(rewrite("/etc/wgrd2", &map), "/etc/wgrd2");
        assert_eq!(rewrite("/opt/etc/wgrd", &map), "/opt/etc/wgrd");
        assert_eq!(rewrite("plain", &map), "plain");
    }
}
