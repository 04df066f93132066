//! Tests of the parser as a whole (end to end, limits, random input) and the helpers the per-module tests share.

use super::*;

pub(super) fn no_args() -> BTreeMap<String, String> {
    BTreeMap::new()
}

pub(super) fn bargs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(super) fn ok(src: &str) -> Vec<Instruction> {
    match parse(src, &no_args()) {
        Ok(p) => p.instructions,
        Err(e) => panic!("unexpected error {e} for {src:?}"),
    }
}

pub(super) fn err(src: &str) -> ParseError {
    match parse(src, &no_args()) {
        Ok(p) => panic!("expected an error for {src:?}, got {:?}", p.instructions),
        Err(e) => e,
    }
}

/// Parses `FROM scratch` + `body` and returns the instructions after FROM.
pub(super) fn stage(body: &str) -> Vec<Instruction> {
    let mut v = ok(&format!("FROM scratch\n{body}"));
    v.remove(0);
    v
}

pub(super) fn stage_err(body: &str) -> ParseError {
    err(&format!("FROM scratch\n{body}"))
}

pub(super) fn one(body: &str) -> Instruction {
    let v = stage(body);
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

pub(super) fn argv(i: &Instruction) -> Vec<String> {
    match i {
        Instruction::Run { argv, .. }
        | Instruction::Cmd { argv, .. }
        | Instruction::Entrypoint { argv, .. }
        | Instruction::Shell { argv, .. } => argv.clone(),
        other => panic!("no argv in {other:?}"),
    }
}

pub(super) fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub(super) fn sh(cmd: &str) -> Vec<String> {
    sv(&["/bin/sh", "-c", cmd])
}

pub(super) fn env_of(i: &Instruction) -> Vec<(String, String)> {
    match i {
        Instruction::Env { vars, .. } => vars.clone(),
        Instruction::Label { labels, .. } => labels.clone(),
        other => panic!("not ENV/LABEL: {other:?}"),
    }
}

pub(super) fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(super) fn workdir(body: &str) -> String {
    match stage(body).pop() {
        Some(Instruction::Workdir { path, .. }) => path,
        other => panic!("not WORKDIR: {other:?}"),
    }
}

pub(super) fn subst(env: &str, word: &str) -> Result<String, ParseError> {
    let src = format!("FROM scratch\n{env}\nWORKDIR {word}");
    parse(&src, &no_args()).map(|p| match p.instructions.last() {
        Some(Instruction::Workdir { path, .. }) => path.clone(),
        other => panic!("not WORKDIR: {other:?}"),
    })
}

pub(super) fn copy_parts(i: &Instruction) -> (Vec<String>, String, Option<String>, Option<u32>) {
    match i {
        Instruction::Copy { srcs, dest, chown, chmod, .. } | Instruction::Add { srcs, dest, chown, chmod, .. } => {
            (srcs.clone(), dest.clone(), chown.clone(), *chmod)
        }
        other => panic!("not COPY/ADD: {other:?}"),
    }
}

pub(super) fn run_args(i: &Instruction) -> Vec<(String, String)> {
    match i {
        Instruction::Run { build_args, .. } => build_args.clone(),
        other => panic!("not RUN: {other:?}"),
    }
}

#[test]
fn realistic_dockerfile_end_to_end() {
    let src = concat!(
        "# syntax=docker/dockerfile:1\n",
        "# check=skip=all\n",
        "ARG PY=3.12\n",
        "FROM python:${PY}-slim AS app\n",
        "LABEL org.opencontainers.image.title=\"demo app\" version=1\n",
        "ARG PIP_INDEX\n",
        "ENV APP_HOME=/srv/app \\\n",
        "    PYTHONUNBUFFERED=1\n",
        "WORKDIR $APP_HOME\n",
        "COPY --chown=1000:1000 requirements.txt ./\n",
        "RUN pip install --no-cache-dir \\\n",
        "      -r requirements.txt   # installs deps\n",
        "COPY . .\n",
        "EXPOSE 8000 9000/udp\n",
        "VOLUME [\"/data\"]\n",
        "USER 1000\n",
        "HEALTHCHECK CMD curl -f http://localhost:8000/ || exit 1\n",
        "STOPSIGNAL SIGINT\n",
        "ENTRYPOINT [\"python\", \"-m\", \"app\"]\n",
        "CMD [\"--port\", \"8000\"]\n",
    );
    let p = parse(src, &bargs(&[("PIP_INDEX", "https://pypi.internal"), ("TYPO", "x")])).unwrap();
    let v = &p.instructions;
    assert_eq!(p.unused_args, sv(&["TYPO"]));
    let keywords: Vec<&str> = v.iter().map(Instruction::keyword).collect();
    assert_eq!(
        keywords,
        [
            "ARG",
            "FROM",
            "LABEL",
            "ARG",
            "ENV",
            "WORKDIR",
            "COPY",
            "RUN",
            "COPY",
            "EXPOSE",
            "VOLUME",
            "USER",
            "HEALTHCHECK",
            "STOPSIGNAL",
            "ENTRYPOINT",
            "CMD"
        ]
    );
    assert!(matches!(&v[1], Instruction::From { image, alias: Some(a), line: 4, .. }
        if image == "python:3.12-slim" && a == "app"));
    assert_eq!(env_of(&v[2]), kv(&[("org.opencontainers.image.title", "demo app"), ("version", "1")]));
    assert_eq!(env_of(&v[4]), kv(&[("APP_HOME", "/srv/app"), ("PYTHONUNBUFFERED", "1")]));
    assert!(matches!(&v[5], Instruction::Workdir { path, line: 9, .. } if path == "/srv/app"));
    assert_eq!(copy_parts(&v[6]), (sv(&["requirements.txt"]), "./".into(), Some("1000:1000".into()), None));
    assert_eq!(argv(&v[7]), sh("pip install --no-cache-dir       -r requirements.txt   # installs deps"));
    assert_eq!(run_args(&v[7]), kv(&[("PIP_INDEX", "https://pypi.internal")]));
    assert_eq!(v[7].line(), 11);
    assert_eq!(argv(&v[15]), sv(&["--port", "8000"]));
    assert_eq!(v[15].line(), 20);
}

#[test]
fn parse_error_is_a_std_error() {
    let e: Box<dyn std::error::Error> = Box::new(err("FROM a\nBOGUS"));
    assert_eq!(e.to_string(), "line 2: unknown instruction \"BOGUS\"");
}

#[test]
fn unicode_is_preserved() {
    assert_eq!(workdir("WORKDIR /données/日本"), "/données/日本");
    assert_eq!(env_of(&one("ENV É=ü")), kv(&[("É", "ü")]));
    assert_eq!(subst("ENV Ü=x", "/$Ü").unwrap(), "/x");
    assert!(err("FROM a\nRÜN x").message.contains("RÜN"));
}

// ----- limits -----

#[test]
fn size_limit() {
    let src = format!("FROM a\nRUN {}", "x".repeat(MAX_DOCKERFILE_BYTES));
    let e = err(&src);
    assert_eq!(e.line, 0);
    assert!(e.to_string().contains("byte limit"));
}

// ----- fuzz: never panic -----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "FROM ",
    "from ",
    "RUN ",
    "CMD ",
    "ENTRYPOINT ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "EXPOSE ",
    "WORKDIR ",
    "USER ",
    "VOLUME ",
    "SHELL ",
    "STOPSIGNAL ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "MAINTAINER ",
    "AS ",
    "scratch",
    "alpine",
    "\n",
    "\r\n",
    "\\\n",
    "`\n",
    "\\",
    "`",
    "# escape=`\n",
    "# escape=\\\n",
    "#",
    " ",
    "\t",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "-",
    "+",
    "?",
    "=",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "A",
    "B",
    "PATH",
    "1",
    "80",
    "/",
    "--chown=",
    "--chmod=",
    "--from=",
    "--platform=",
    "--",
    "<<EOF",
    "\\u00e9",
    "\\\"",
    "é",
    "\u{feff}",
    "\0",
    "true",
    "null",
    "NONE",
    "**",
    "*",
    "!",
    "[a-z]",
    "[^",
    "..",
    "./",
];

#[test]
fn fuzz_random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let args = bargs(&[("A", "x"), ("B", "y y")]);
    for _ in 0..3000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, &args);
        let _ = parse(&format!("FROM a\n{text}"), &args);
        if let Ok(m) = IgnoreMatcher::new(&text) {
            let _ = m.is_excluded(&text);
        }
    }
}

#[test]
fn fuzz_token_soup_never_panics() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let args = bargs(&[("A", "x"), ("PATH", "/bin")]);
    let mut parsed_ok = 0;
    for i in 0..4000 {
        let n = rng.below(40);
        let mut text = if i % 2 == 0 { String::from("FROM a\n") } else { String::new() };
        for _ in 0..n {
            text.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
        if parse(&text, &args).is_ok() {
            parsed_ok += 1;
        }
        match IgnoreMatcher::new(&text) {
            Ok(m) => {
                for _ in 0..4 {
                    let mut path = String::new();
                    for _ in 0..rng.below(8) {
                        path.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                    }
                    let _ = m.is_excluded(&path);
                }
            }
            Err(e) => assert!(e.line > 0 || e.message.contains("limit")),
        }
    }
    // Sanity check that the generator exercises the success paths too.
    assert!(parsed_ok > 50, "{parsed_ok}");
}
