use crate::build::dockerfile::tests::*;
use crate::build::dockerfile::*;

// ----- line handling -----

#[test]
fn continuation_lines() {
    let v = stage("RUN apt-get update && \\\n    apt-get install -y \\\n      curl\nUSER x");
    assert_eq!(argv(&v[0]), sh("apt-get update &&     apt-get install -y       curl"));
    assert_eq!(v[0].line(), 2);
    assert_eq!(v[1].line(), 5);
}

#[test]
fn continuation_skips_comments_and_blank_lines() {
    let v = stage("RUN echo a \\\n# comment inside\n  # indented comment\n\n   \n  b\nUSER x");
    assert_eq!(argv(&v[0]), sh("echo a   b"));
    assert_eq!(v[1].line(), 8);
}

#[test]
fn continuation_with_trailing_blanks_and_at_eof() {
    assert_eq!(argv(&one("RUN a \\  \t\n b")), sh("a  b"));
    assert_eq!(argv(&one("RUN a \\")), sh("a"));
    assert_eq!(argv(&one("RUN a \\\n")), sh("a"));
    // A continuation in the middle of a word joins it.
    assert_eq!(env_of(&one("ENV A=he\\\nllo")), kv(&[("A", "hello")]));
}

#[test]
fn continued_keyword_and_exec_form() {
    assert_eq!(argv(&one("RUN \\\n [\"a\", \\\n \"b\"]")), sv(&["a", "b"]));
    let v = stage("\\\nUSER x");
    assert!(matches!(&v[0], Instruction::User { user, line: 2, .. } if user == "x"));
}

#[test]
fn comments_blank_lines_crlf_bom_and_indentation() {
    let src = concat!(
        "\u{feff}# header\r\n\r\n   # indented comment\r\n",
        "FROM a\r\n\t  RUN echo hi # not a comment\r\nUSER \\\r\n bob\r\n",
    );
    let v = ok(src);
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].line(), 4);
    assert_eq!(argv(&v[1]), sh("echo hi # not a comment"));
    assert!(matches!(&v[2], Instruction::User { user, line: 6, .. } if user == "bob"));
}

#[test]
fn escape_directive_backtick() {
    let src = concat!(
        "# escape=`\nFROM mcr.microsoft.com/windows/servercore\n",
        "RUN dir c:\\ `\n  && echo done\nWORKDIR c:\\app\nENV P=`$notvar",
    );
    let v = ok(src);
    assert_eq!(argv(&v[1]), sh("dir c:\\   && echo done"));
    assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "c:\\app"));
    assert_eq!(env_of(&v[3]), kv(&[("P", "$notvar")]));
}

#[test]
fn escape_directive_variants() {
    // Key is case-insensitive and blanks are allowed; other known directives may precede it.
    let v = ok("# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM a\nRUN a `\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
    // Explicit backslash is the default.
    let v = ok("# escape=\\\nFROM a\nRUN a \\\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
}

#[test]
fn escape_directive_only_at_top() {
    // After an instruction it is an ordinary comment.
    let v = ok("FROM a\n# escape=`\nRUN a \\\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
    // After an ordinary comment or unknown directive it is ignored too.
    let v = ok("# hello\n# escape=`\nFROM a\nRUN a \\\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
    let v = ok("# foo=bar\n# escape=`\nFROM a\nRUN a \\\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
    // After a blank line too.
    let v = ok("\n# escape=`\nFROM a\nRUN a \\\nb");
    assert_eq!(argv(&v[1]), sh("a b"));
}

#[test]
fn escape_directive_errors() {
    let e = err("# escape=x\nFROM a");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("invalid escape token"));
    let e = err("# escape=`\n# escape=\\\nFROM a");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("only one escape parser directive"));
}

#[test]
fn instruction_limit() {
    let mut src = String::from("FROM a\n");
    for _ in 0..MAX_INSTRUCTIONS - 1 {
        src.push_str("RUN x\n");
    }
    assert_eq!(ok(&src).len(), MAX_INSTRUCTIONS);
    src.push_str("RUN x\n");
    let e = err(&src);
    assert_eq!(e.line, MAX_INSTRUCTIONS + 1);
    assert!(e.message.contains("too many instructions"));
}
