use crate::build::dockerfile::tests::*;
use crate::build::dockerfile::*;

// ----- FROM and stage structure -----

#[test]
fn from_image() {
    let v = ok("FROM alpine:3.19");
    assert_eq!(
        v,
        vec![Instruction::From { image: "alpine:3.19".into(), alias: None, line: 1, text: "FROM alpine:3.19".into() }]
    );
}

#[test]
fn from_with_alias_lowercased() {
    match &ok("FROM alpine AS Builder")[0] {
        Instruction::From { image, alias, .. } => {
            assert_eq!(image, "alpine");
            assert_eq!(alias.as_deref(), Some("builder"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&ok("from alpine as b")[0], Instruction::From { alias: Some(a), .. } if a == "b"));
}

#[test]
fn from_scratch_and_platform_flag() {
    assert!(matches!(&ok("FROM scratch")[0], Instruction::From { image, .. } if image == "scratch"));
    let v = ok("FROM --platform=$BUILDPLATFORM golang:1.22 AS build");
    assert!(matches!(&v[0], Instruction::From { image, .. } if image == "golang:1.22"));
}

#[test]
fn from_errors() {
    assert_eq!(err("FROM").message, "FROM requires either one or three arguments");
    assert_eq!(err("FROM a b").message, "FROM requires either one or three arguments");
    assert!(err("FROM a FOR b").message.contains("AS"));
    assert!(err("FROM a AS 1abc").message.contains("invalid name for build stage"));
    assert!(err("FROM a AS a$b").message.contains("invalid name for build stage"));
    assert!(err("FROM --foo=bar a").message.contains("unknown flag \"--foo\""));
    assert!(err("FROM --platform a").message.contains("missing a value"));
}

#[test]
fn from_uses_only_args_declared_before_it() {
    let src = "ARG TAG=3.19\nARG IMG=alpine\nFROM ${IMG}:$TAG";
    assert!(matches!(&ok(src)[2], Instruction::From { image, .. } if image == "alpine:3.19"));
    let p = parse(src, &bargs(&[("TAG", "edge")])).unwrap();
    assert!(matches!(&p.instructions[2], Instruction::From { image, .. } if image == "alpine:edge"));
    assert!(p.unused_args.is_empty());
    // Meta ARG defaults can refer to earlier meta ARGs.
    let v = ok("ARG A=x\nARG B=${A}y\nFROM $B");
    assert!(matches!(&v[2], Instruction::From { image, .. } if image == "xy"));
    let e = err("ARG IMG\nFROM $IMG");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn first_instruction_must_be_from() {
    let e = err("# comment\n\nRUN echo hi\nFROM alpine");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("first instruction must be FROM"), "{e}");
    assert_eq!(err("ARG X=1\nENV A=b\nFROM a").line, 2);
}

#[test]
fn second_from_is_rejected() {
    let e = err("FROM a\nRUN x\n\nFROM b");
    assert_eq!(e.line, 4);
    assert!(e.to_string().contains("multi-stage builds are not supported"));
}

#[test]
fn whole_file_errors() {
    let e = err("");
    assert_eq!(e.line, 0);
    assert_eq!(e.to_string(), "the Dockerfile contains no instructions");
    assert_eq!(err("# just a comment\n\n   \n").line, 0);
    let e = err("ARG A=1\n");
    assert_eq!(e.to_string(), "the Dockerfile has no FROM instruction");
}

#[test]
fn unknown_instruction_display() {
    let e = err("FROM a\nRUN x\n\nFOO bar");
    assert_eq!(e.to_string(), "line 4: unknown instruction \"FOO\"");
    assert_eq!(e.line, 4);
}

#[test]
fn long_offending_text_is_truncated() {
    let kw = "X".repeat(10_000);
    let e = err(&format!("FROM a\n{kw}"));
    assert!(e.message.len() < 200, "{}", e.message.len());
    assert!(e.message.contains('…'));
}

#[test]
fn keywords_are_case_insensitive() {
    let v = ok("from alpine\nRuN echo hi\nworkdir /x");
    assert_eq!(v.len(), 3);
    assert_eq!(v[1].keyword(), "RUN");
    assert_eq!(v[2].keyword(), "WORKDIR");
}

#[test]
fn accessors_report_line_and_text() {
    let v = ok("FROM a\n\n# c\nRUN echo \\\n  hi\nUSER bob");
    assert_eq!(v[1].line(), 4);
    assert_eq!(v[1].text(), "RUN echo   hi");
    assert_eq!(v[2].line(), 6);
    assert_eq!(v[2].text(), "USER bob");
    assert_eq!(v[0].keyword(), "FROM");
}

// ----- ENV / LABEL / MAINTAINER -----

#[test]
fn env_forms() {
    assert_eq!(env_of(&one("ENV A=1")), kv(&[("A", "1")]));
    assert_eq!(env_of(&one("ENV A=1 B=\"two words\" C='single $X' D=a\\ b")), {
        kv(&[("A", "1"), ("B", "two words"), ("C", "single $X"), ("D", "a b")])
    });
    assert_eq!(env_of(&one("ENV MY_NAME John Doe")), kv(&[("MY_NAME", "John Doe")]));
    assert_eq!(env_of(&one("ENV A \"quoted value\"")), kv(&[("A", "quoted value")]));
    assert_eq!(env_of(&one("ENV A=\"x\\\"y\" B=\"\"")), kv(&[("A", "x\"y"), ("B", "")]));
    assert_eq!(env_of(&one("ENV A= B=2")), kv(&[("A", ""), ("B", "2")]));
    assert_eq!(env_of(&one("ENV A=b=c")), kv(&[("A", "b=c")]));
}

#[test]
fn env_substitutes_against_previous_scope() {
    let v = stage("ENV A=1\nENV A=2 B=$A\nENV C=$A");
    assert_eq!(env_of(&v[1]), kv(&[("A", "2"), ("B", "1")]));
    assert_eq!(env_of(&v[2]), kv(&[("C", "2")]));
    let v = stage("ENV PATH=/opt/bin:$PATH");
    assert_eq!(env_of(&v[0]), kv(&[("PATH", "/opt/bin:")]));
}

#[test]
fn base_env_is_visible_after_from() {
    let base = bargs(&[("PATH", "/usr/bin:/bin")]);
    let p = parse_with_base_env("FROM x\nENV PATH=/opt/bin:$PATH", &no_args(), &base).unwrap();
    assert_eq!(env_of(&p.instructions[1]), kv(&[("PATH", "/opt/bin:/usr/bin:/bin")]));
    let p = parse_with_base_env("ARG I=$PATH\nFROM x$I", &no_args(), &base).unwrap();
    assert!(matches!(&p.instructions[1], Instruction::From { image, .. } if image == "x"));
}

#[test]
fn env_errors() {
    assert_eq!(stage_err("ENV").message, "ENV requires at least one argument");
    assert_eq!(stage_err("ENV A").message, "ENV must have two arguments");
    assert!(stage_err("ENV A=1 B").message.contains("can't find ="));
    assert!(stage_err("ENV =x").message.contains("can not be blank"));
    assert!(stage_err("ENV A=\"unterminated").message.contains("double-quote"));
    assert!(stage_err("ENV A='x").message.contains("single-quote"));
}

#[test]
fn label_forms() {
    assert_eq!(
        env_of(&one("LABEL version=\"1.0\" \"com.example.key\"=value description=\"multi word\"")),
        kv(&[("version", "1.0"), ("com.example.key", "value"), ("description", "multi word")])
    );
    assert_eq!(env_of(&one("LABEL legacy some value")), kv(&[("legacy", "some value")]));
    assert_eq!(env_of(&stage("ENV V=2\nLABEL v=$V")[1]), kv(&[("v", "2")]));
    assert!(stage_err("LABEL").message.contains("at least one"));
}

#[test]
fn maintainer_becomes_label() {
    let i = one("MAINTAINER Jane Doe <jane@example.com>");
    assert_eq!(env_of(&i), kv(&[("maintainer", "Jane Doe <jane@example.com>")]));
    assert_eq!(i.keyword(), "LABEL");
    assert!(i.text().starts_with("MAINTAINER"));
    assert!(stage_err("MAINTAINER").message.contains("MAINTAINER"));
}

// ----- ARG -----

fn arg_values(i: &Instruction) -> Vec<(String, Option<String>)> {
    match i {
        Instruction::Arg { args, .. } => args.clone(),
        other => panic!("not ARG: {other:?}"),
    }
}

#[test]
fn arg_defaults_and_build_args() {
    let src = "FROM a\nARG A=1 B C=\"x y\"\nWORKDIR /$A/$B/$C";
    let p = parse(src, &bargs(&[("B", "given"), ("EXTRA", "1"), ("HTTP_PROXY", "http://p")])).unwrap();
    assert_eq!(
        arg_values(&p.instructions[1]),
        vec![("A".into(), Some("1".into())), ("B".into(), Some("given".into())), ("C".into(), Some("x y".into()))]
    );
    assert!(matches!(&p.instructions[2], Instruction::Workdir { path, .. } if path == "/1/given/x y"));
    assert_eq!(p.unused_args, sv(&["EXTRA"]));
    let p = parse(src, &bargs(&[("A", "override")])).unwrap();
    assert!(matches!(&p.instructions[2], Instruction::Workdir { path, .. } if path == "/override//x y"));
}

#[test]
fn arg_without_value_is_unset() {
    let v = stage("ARG X\nWORKDIR /a${X-unset}/b${X:-empty}");
    assert_eq!(arg_values(&v[0]), vec![("X".into(), None)]);
    assert!(matches!(&v[1], Instruction::Workdir { path, .. } if path == "/aunset/bempty"));
}

#[test]
fn arg_defaults_see_previous_scope_only() {
    let v = stage("ARG A=1\nARG A=2 B=$A");
    assert_eq!(arg_values(&v[1]), vec![("A".into(), Some("2".into())), ("B".into(), Some("1".into()))]);
}

#[test]
fn meta_args_need_redeclaration_in_stage() {
    let src = "ARG V=1\nFROM a\nWORKDIR /x$V\nARG V\nWORKDIR /y$V";
    let v = ok(src);
    assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "/x"));
    assert_eq!(arg_values(&v[3]), vec![("V".into(), Some("1".into()))]);
    assert!(matches!(&v[4], Instruction::Workdir { path, .. } if path == "/y1"));
    // A build arg wins over the meta default.
    let p = parse(src, &bargs(&[("V", "9")])).unwrap();
    assert!(matches!(&p.instructions[4], Instruction::Workdir { path, .. } if path == "/y9"));
}

#[test]
fn env_shadows_arg() {
    let v = stage("ARG V=fromarg\nENV V=fromenv\nWORKDIR /$V\nARG V=again\nWORKDIR /$V");
    assert!(matches!(&v[2], Instruction::Workdir { path, .. } if path == "/fromenv"));
    assert!(matches!(&v[4], Instruction::Workdir { path, .. } if path == "/fromenv"));
}

#[test]
fn run_receives_build_args_not_shadowed_by_env() {
    let src = "ARG META=m\nFROM a\nARG A=1\nARG B=2\nARG UNSET\nENV B=env\nRUN make";
    let p = parse(src, &bargs(&[("https_proxy", "http://proxy"), ("META", "x")])).unwrap();
    assert_eq!(run_args(&p.instructions[6]), kv(&[("A", "1"), ("https_proxy", "http://proxy")]));
    assert!(p.unused_args.is_empty(), "{:?}", p.unused_args);
    // Before any ARG nothing is exported.
    assert!(run_args(&one("RUN x")).is_empty());
}

#[test]
fn arg_errors() {
    assert!(stage_err("ARG").message.contains("at least one"));
    assert!(stage_err("ARG =x").message.contains("can not be blank"));
    assert!(stage_err("ARG A=${").message.contains("missing '}'"));
}
