use crate::build::dockerfile::tests::*;
use crate::build::dockerfile::*;

// ----- variable substitution -----

#[test]
fn substitution_forms() {
    let env = "ENV A=a E= SP=\"x y\"";
    assert_eq!(subst(env, "/$A").unwrap(), "/a");
    assert_eq!(subst(env, "/${A}b").unwrap(), "/ab");
    assert_eq!(subst(env, "/$Ab").unwrap(), "/");
    assert_eq!(subst(env, "/${U:-def}").unwrap(), "/def");
    assert_eq!(subst(env, "/${E:-def}").unwrap(), "/def");
    assert_eq!(subst(env, "/${A:-def}").unwrap(), "/a");
    assert_eq!(subst(env, "/${U-def}").unwrap(), "/def");
    assert_eq!(subst(env, "/${E-def}x").unwrap(), "/x");
    assert_eq!(subst(env, "/${A:+alt}").unwrap(), "/alt");
    assert_eq!(subst(env, "/${E:+alt}x").unwrap(), "/x");
    assert_eq!(subst(env, "/${U:+alt}x").unwrap(), "/x");
    assert_eq!(subst(env, "/${E+alt}").unwrap(), "/alt");
    assert_eq!(subst(env, "/${U+alt}x").unwrap(), "/x");
    assert_eq!(subst(env, "/${A:?boom}").unwrap(), "/a");
    assert_eq!(subst(env, "/${SP}").unwrap(), "/x y");
    assert_eq!(subst(env, "/${U:-${A}-${U:-z}}").unwrap(), "/a-z");
    assert_eq!(subst(env, "/${U:-\"q }\"}").unwrap(), "/q }");
}

#[test]
fn substitution_literals_and_escapes() {
    let env = "ENV A=a";
    assert_eq!(subst(env, "/\\$A").unwrap(), "/$A");
    assert_eq!(subst(env, "/\\${A}").unwrap(), "/${A}");
    assert_eq!(subst(env, "/'$A'").unwrap(), "/$A");
    assert_eq!(subst(env, "/\"$A\\$A\"").unwrap(), "/a$A");
    assert_eq!(subst(env, "/\"\\x\"").unwrap(), "/\\x");
    assert_eq!(subst(env, "/$").unwrap(), "/$");
    assert_eq!(subst(env, "/a$-b").unwrap(), "/ab");
    assert_eq!(subst(env, "/$1x").unwrap(), "/x");
    assert_eq!(subst(env, "/$ x").unwrap(), "/$ x");
    assert_eq!(subst(env, "/\\\\x").unwrap(), "/\\x");
    // An escape at the very end of a word is dropped (reachable through JSON, not through a line end).
    let v = stage("COPY [\"a\\\\\", \"/d\"]");
    assert_eq!(copy_parts(&v[0]).0, sv(&["a"]));
}

#[test]
fn substitution_errors() {
    let env = "ENV A=a";
    for (word, needle) in [
        ("/${A", "missing '}'"),
        ("/${", "missing '}'"),
        ("/${}", "bad substitution"),
        ("/${:x}", "bad substitution"),
        ("/${A:%x}", "unsupported modifier"),
        ("/${A!x}", "missing ':'"),
        ("/${U:?must be set}", "U: must be set"),
        ("/${U?}", "not allowed to be unset"),
        ("/${A:-x", "missing '}'"),
        ("/\"abc", "double-quote"),
    ] {
        let e = subst(env, word).unwrap_err();
        assert_eq!(e.line, 3, "{word}");
        assert!(e.message.contains(needle), "{word}: {e}");
    }
}

#[test]
fn substitution_depth_is_bounded() {
    let deep = format!("/{}x{}", "${U:-".repeat(100_000), "}".repeat(100_000));
    let e = subst("ENV A=a", &deep).unwrap_err();
    assert!(e.message.contains("nested deeper"), "{}", &e.message[..60.min(e.message.len())]);
    let ok_depth = format!("/{}x{}", "${U:-".repeat(MAX_SUBSTITUTION_DEPTH), "}".repeat(MAX_SUBSTITUTION_DEPTH));
    assert_eq!(subst("ENV A=a", &ok_depth).unwrap(), "/x");
}

#[test]
fn substitution_output_is_bounded() {
    let mut src = String::from("FROM a\nENV A=0123456789abcdef0123456789abcdef\n");
    for _ in 0..40 {
        src.push_str("ENV A=$A$A\n");
    }
    let e = parse(&src, &no_args()).unwrap_err();
    assert!(e.message.contains("more than"), "{e}");
    assert!(e.line > 2);
}

#[test]
fn shell_prefix_copies_are_bounded() {
    let big = "x".repeat(900_000);
    let mut src = format!("FROM a\nSHELL [\"{big}\"]\n");
    for _ in 0..9_000 {
        src.push_str("RUN y\n");
    }
    assert!(src.len() <= MAX_DOCKERFILE_BYTES);
    let e = parse(&src, &no_args()).unwrap_err();
    assert!(e.message.contains("more than"), "{e}");
}
