use crate::build::dockerfile::*;

// ----- .dockerignore -----

fn matcher(src: &str) -> IgnoreMatcher {
    match IgnoreMatcher::new(src) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

fn check(src: &str, excluded: &[&str], included: &[&str]) {
    let m = matcher(src);
    for p in excluded {
        assert!(m.is_excluded(p), "{src:?} should exclude {p:?}");
    }
    for p in included {
        assert!(!m.is_excluded(p), "{src:?} should include {p:?}");
    }
}

#[test]
fn ignore_plain_names_are_anchored_and_cover_children() {
    check("node_modules", &["node_modules", "node_modules/x/y.js"], &["a/node_modules", "node_modules2", "x"]);
    check("a/b", &["a/b", "a/b/c"], &["a", "a/bc", "b"]);
}

#[test]
fn ignore_star_and_question_mark() {
    check("*.log", &["x.log", ".log", "dir.log/inner"], &["a/x.log", "x.log.txt"]);
    check("*/*.tmp", &["a/b.tmp"], &["b.tmp", "a/b/c.tmp"]);
    check("a?c", &["abc", "a-c"], &["a/c", "ac", "abbc"]);
    check("*", &["anything", "a/b/c"], &[]);
}

#[test]
fn ignore_double_star() {
    check("**/*.log", &["x.log", "a/x.log", "a/b/c/x.log"], &["x.logs", "a/x.txt"]);
    check("a/**/b", &["a/b", "a/x/b", "a/x/y/b", "a/b/c"], &["a/xb", "b", "x/a/b"]);
    check("a/**", &["a/x", "a/x/y"], &["a", "ab"]);
    check("**", &["x", "a/b/c"], &[]);
    check("**/node_modules", &["node_modules", "x/node_modules/y"], &["xnode_modules"]);
    // Docker quirk: `**` not followed by `/` still means "empty or ending in /".
    check("a**b", &["ab", "a/x/b"], &["axb"]);
    check("**.md", &["x/.md", ".md"], &["x.md"]);
}

#[test]
fn ignore_character_classes() {
    check("[abc].txt", &["a.txt", "c.txt"], &["d.txt", "ab.txt"]);
    check("file[0-9]", &["file0", "file7"], &["filea", "file10"]);
    check("[^a]x", &["bx", "zx"], &["ax"]);
    check("x[\\]]", &["x]"], &["x\\"]);
    check("x[\\-]", &["x-"], &["xa"]);
    check("a[/]b", &["a/b"], &["ab"]);
}

#[test]
fn ignore_escapes() {
    check("a\\*", &["a*"], &["ab"]);
    check("\\!important", &["!important"], &["important"]);
    check("\\#file", &["#file"], &[]);
}

#[test]
fn ignore_exceptions_last_match_wins() {
    check("*.md\n!README.md", &["CHANGES.md"], &["README.md", "src/x.md"]);
    check("!README.md\n*.md", &["README.md"], &[]);
    check("*.md\n!README*.md\nREADME-secret.md", &["README-secret.md", "a.md"], &["README.md", "README-x.md"]);
    check("docs\n!docs/keep.txt", &["docs", "docs/other.txt", "docs/sub/x"], &["docs/keep.txt"]);
    check("docs\n!docs/keep\n", &["docs/k"], &["docs/keep/inner/file"]);
    assert!(matcher("docs\n!docs/keep.txt").has_exceptions());
    assert!(!matcher("docs\n").has_exceptions());
}

#[test]
fn ignore_comments_blank_lines_and_cleaning() {
    let src = "# comment\n\n   \n #notcomment\r\n/abs\n./dot\ntrail/\ndouble//slash\nup/../down\n  spaced  \n";
    check(
        src,
        &["#notcomment", "abs", "abs/x", "dot", "trail", "trail/x", "double/slash", "down", "spaced"],
        &["# comment", "comment", "up", "up/down"],
    );
    let m = matcher("\u{feff}bom");
    assert!(m.is_excluded("bom"));
    assert!(matcher("").is_empty());
    assert!(!matcher("# only\n").is_excluded("x"));
}

#[test]
fn ignore_input_paths_are_cleaned() {
    let m = matcher("foo/bar");
    assert!(m.is_excluded("./foo/bar"));
    assert!(m.is_excluded("/foo/bar/"));
    assert!(m.is_excluded("foo//bar"));
    assert!(m.is_excluded("foo/x/../bar"));
    let m = matcher("*");
    assert!(!m.is_excluded("."));
    assert!(!m.is_excluded(""));
    assert!(!m.is_excluded("/"));
    assert!(!matcher("/").is_excluded("x"));
}

#[test]
fn ignore_errors() {
    for (src, line) in [("ok\n[abc", 2), ("!", 1), ("a\n! \n", 2), ("x\\", 1), ("[z-a]", 1), ("[]", 1), ("[a-]", 1)] {
        match IgnoreMatcher::new(src) {
            Ok(_) => panic!("{src:?} should fail"),
            Err(e) => assert_eq!(e.line, line, "{src:?}: {e}"),
        }
    }
    let big = "x".repeat(MAX_DOCKERIGNORE_BYTES + 1);
    assert_eq!(IgnoreMatcher::new(&big).unwrap_err().line, 0);
}

#[test]
fn ignore_long_paths_are_linear() {
    let m = matcher("**/a*b*c*d*e*f*g\n!x");
    let path = "a/".repeat(20_000) + "z";
    assert!(!m.is_excluded(&path));
    let m = matcher(&"*".repeat(5000));
    assert!(m.is_excluded(&"q".repeat(5000)));
}
