use crate::build::dockerfile::tests::*;
use crate::build::dockerfile::*;

// ----- RUN / CMD / ENTRYPOINT / SHELL -----

#[test]
fn run_shell_form() {
    let i = one("RUN apt-get update && apt-get install -y curl");
    assert_eq!(argv(&i), sh("apt-get update && apt-get install -y curl"));
}

#[test]
fn run_is_not_substituted() {
    assert_eq!(argv(&stage("ENV A=1\nRUN echo $A ${B:-x} \\$C")[1]), sh("echo $A ${B:-x} \\$C"));
}

#[test]
fn run_exec_form() {
    assert_eq!(argv(&one(r#"RUN ["/bin/echo", "a b", "c"]"#)), sv(&["/bin/echo", "a b", "c"]));
    assert_eq!(argv(&one(r#"RUN   [ "x" ]  "#)), sv(&["x"]));
    assert_eq!(argv(&one(r#"RUN ["$HOME"]"#)), sv(&["$HOME"]));
}

#[test]
fn json_escapes() {
    let i = one(r#"CMD ["a\"b", "c\\d", "\u00e9\n\t", "\ud83d\ude00", "\/", "\ud800x"]"#);
    assert_eq!(argv(&i), sv(&["a\"b", "c\\d", "é\n\t", "😀", "/", "\u{FFFD}x"]));
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    assert_eq!(argv(&one("RUN [ -f /etc/passwd ] && echo yes")), sh("[ -f /etc/passwd ] && echo yes"));
    assert_eq!(argv(&one("RUN [\"a\",]")), sh("[\"a\",]"));
    assert_eq!(argv(&one("RUN [\"a\" \"b\"]")), sh("[\"a\" \"b\"]"));
    assert_eq!(argv(&one("CMD [foo]")), sh("[foo]"));
    assert_eq!(argv(&one("RUN [\"a\"] trailing")), sh("[\"a\"] trailing"));
}

#[test]
fn valid_json_with_non_strings_is_an_error() {
    for body in [
        "RUN [1]",
        "RUN [\"a\", 2.5e3]",
        "CMD [\"a\", null]",
        "ENTRYPOINT [true]",
        "RUN [\"a\", {\"b\": [1, {\"c\": false}], \"d\": -0.5}]",
        "RUN [[]]",
    ] {
        let e = stage_err(body);
        assert_eq!(e.line, 2);
        assert!(e.message.contains("must all be strings"), "{body}: {e}");
    }
    // Malformed nested values are not JSON, hence shell form.
    assert_eq!(argv(&one("RUN [{\"a\" 1}]")), sh("[{\"a\" 1}]"));
    assert_eq!(argv(&one("RUN [01]")), sh("[01]"));
}

#[test]
fn run_errors() {
    assert_eq!(stage_err("RUN").message, "RUN requires at least one argument");
    assert_eq!(stage_err("RUN []").message, "RUN requires at least one argument");
    assert_eq!(stage_err("RUN --mount=type=cache,target=/x make").message, "RUN --mount is not supported");
    assert!(stage_err("RUN --network=none x").message.contains("not supported"));
    assert!(stage_err("RUN --foo=1 x").message.contains("unknown flag"));
    assert!(stage_err("RUN <<EOF\necho hi\nEOF").message.contains("heredoc"));
    assert!(stage_err("RUN cat <<-'END' > /f").message.contains("heredoc"));
}

#[test]
fn run_allows_here_strings_and_double_dash_end_of_flags() {
    assert_eq!(argv(&one("RUN cat <<<hello")), sh("cat <<<hello"));
    assert_eq!(argv(&one("RUN -- --weird")), sh("--weird"));
    assert_eq!(argv(&one("RUN echo -- --x")), sh("echo -- --x"));
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(argv(&one("CMD echo hi")), sh("echo hi"));
    assert_eq!(argv(&one("CMD [\"nginx\", \"-g\", \"daemon off;\"]")), sv(&["nginx", "-g", "daemon off;"]));
    assert_eq!(argv(&one("CMD []")), Vec::<String>::new());
    assert_eq!(argv(&one("ENTRYPOINT exec top -b")), sh("exec top -b"));
    assert_eq!(argv(&one("ENTRYPOINT [\"top\", \"-b\"]")), sv(&["top", "-b"]));
    assert_eq!(stage_err("CMD").message, "CMD requires at least one argument");
    assert_eq!(stage_err("ENTRYPOINT   ").message, "ENTRYPOINT requires at least one argument");
}

#[test]
fn shell_changes_later_shell_forms() {
    let v =
        stage("RUN a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN b\nCMD c\nENTRYPOINT d\nRUN [\"e\"]");
    assert_eq!(argv(&v[0]), sh("a"));
    assert_eq!(argv(&v[1]), sv(&["/bin/bash", "-eo", "pipefail", "-c"]));
    assert_eq!(argv(&v[2]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "b"]));
    assert_eq!(argv(&v[3]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "c"]));
    assert_eq!(argv(&v[4]), sv(&["/bin/bash", "-eo", "pipefail", "-c", "d"]));
    assert_eq!(argv(&v[5]), sv(&["e"]));
}

#[test]
fn shell_errors() {
    assert!(stage_err("SHELL /bin/bash -c").message.contains("JSON form"));
    assert!(stage_err("SHELL [1]").message.contains("JSON form"));
    assert!(stage_err("SHELL []").message.contains("at least one"));
    assert!(stage_err("SHELL").message.contains("JSON form"));
}

// ----- COPY / ADD -----

#[test]
fn copy_plain_and_json() {
    assert_eq!(copy_parts(&one("COPY . /app")), (sv(&["."]), "/app".into(), None, None));
    assert_eq!(copy_parts(&one("COPY a b  c /dst/")), (sv(&["a", "b", "c"]), "/dst/".into(), None, None));
    assert_eq!(
        copy_parts(&one(r#"COPY ["my file", "other", "/dst dir/"]"#)),
        (sv(&["my file", "other"]), "/dst dir/".into(), None, None)
    );
    assert!(matches!(one("add x.tar.gz /"), Instruction::Add { .. }));
}

#[test]
fn copy_flags() {
    let i = one("COPY --chown=app:app --chmod=0755 run.sh /usr/local/bin/");
    assert_eq!(copy_parts(&i), (sv(&["run.sh"]), "/usr/local/bin/".into(), Some("app:app".into()), Some(0o755)));
    let v = stage("ARG U=1000\nADD --chown=${U}:${U} x /y");
    assert_eq!(copy_parts(&v[1]).2.as_deref(), Some("1000:1000"));
    assert!(stage_err("COPY --chmod=abc a b").message.contains("--chmod"));
    assert!(stage_err("COPY --chmod=99999 a b").message.contains("--chmod"));
    assert!(stage_err("COPY --chown a b").message.contains("missing a value"));
    assert!(stage_err("COPY --link a b").message.contains("not supported"));
    assert!(stage_err("COPY --chown=a --chown=b a b").message.contains("duplicate flag"));
}

#[test]
fn copy_from_is_not_supported() {
    let e = err("FROM a\n\nCOPY --from=builder /out /out");
    assert_eq!(e.to_string(), "line 3: COPY --from is not supported");
    assert!(stage_err("COPY --link a b").message.contains("not supported"));
    assert!(stage_err("ADD --checksum=sha256:00 https://x /y").message.contains("not supported"));
    assert!(stage_err("ADD --from=x a b").message.contains("unknown flag"));
}

#[test]
fn copy_argument_count() {
    assert!(stage_err("COPY onlyone").message.contains("at least two arguments"));
    assert!(stage_err("COPY").message.contains("at least two arguments"));
    assert!(stage_err("COPY [\"a\"]").message.contains("at least two arguments"));
    assert!(stage_err("COPY [\"a\", 1]").message.contains("must all be strings"));
    assert!(stage_err("COPY <<EOF /x\nhi\nEOF").message.contains("heredoc"));
}

#[test]
fn copy_substitution_and_quote_quirk() {
    let v = stage("ENV SRC=app DST=/srv\nCOPY $SRC/ ${DST}/");
    assert_eq!(copy_parts(&v[1]), (sv(&["app/"]), "/srv/".into(), None, None));
    // Plain form splits on whitespace without honouring quotes, exactly like Docker.
    assert!(stage_err("COPY \"a b\" /x").message.contains("double-quote"));
    // JSON elements are substituted too.
    let v = stage("ENV D=/d\nCOPY [\"x\", \"$D\"]");
    assert_eq!(copy_parts(&v[1]).1, "/d");
}

// ----- WORKDIR / USER / STOPSIGNAL / VOLUME / EXPOSE -----

#[test]
fn workdir_user_stopsignal() {
    assert_eq!(workdir("WORKDIR /app"), "/app");
    assert_eq!(workdir("WORKDIR relative/dir"), "relative/dir");
    assert_eq!(workdir("WORKDIR \"/with space\""), "/with space");
    assert_eq!(workdir("WORKDIR /a b"), "/a b");
    assert!(matches!(one("USER 1000:1000"), Instruction::User { user, .. } if user == "1000:1000"));
    assert!(matches!(&stage("ENV U=app\nUSER $U")[1], Instruction::User { user, .. } if user == "app"));
    assert!(matches!(one("STOPSIGNAL SIGQUIT"), Instruction::StopSignal { signal, .. } if signal == "SIGQUIT"));
    assert!(matches!(one("STOPSIGNAL 9"), Instruction::StopSignal { signal, .. } if signal == "9"));
    assert!(matches!(one("STOPSIGNAL SIGRTMIN+3"), Instruction::StopSignal { .. }));
    assert!(stage_err("STOPSIGNAL 0").message.contains("invalid signal"));
    assert!(stage_err("STOPSIGNAL SIG TERM").message.contains("invalid signal"));
    assert!(stage_err("WORKDIR").message.contains("exactly one argument"));
    assert!(stage_err("WORKDIR $NOPE").message.contains("empty"));
    assert!(stage_err("USER").message.contains("exactly one argument"));
}

#[test]
fn volume_forms() {
    let paths = |i: Instruction| match i {
        Instruction::Volume { paths, .. } => paths,
        other => panic!("{other:?}"),
    };
    assert_eq!(paths(one("VOLUME /data")), sv(&["/data"]));
    assert_eq!(paths(one("VOLUME /a /b")), sv(&["/a", "/b"]));
    assert_eq!(paths(one("VOLUME [\"/a b\", \"/c\"]")), sv(&["/a b", "/c"]));
    assert_eq!(paths(stage("ENV D=/d\nVOLUME $D").remove(1)), sv(&["/d"]));
    assert!(stage_err("VOLUME").message.contains("at least one"));
    assert!(stage_err("VOLUME []").message.contains("at least one"));
    assert!(stage_err("VOLUME [\"\"]").message.contains("empty string"));
    assert!(stage_err("VOLUME [1]").message.contains("must all be strings"));
}

fn ports(body: &str) -> Vec<String> {
    match stage(body).pop() {
        Some(Instruction::Expose { ports, .. }) => ports.iter().map(|p| p.to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expose_forms() {
    assert_eq!(ports("EXPOSE 80"), sv(&["80/tcp"]));
    assert_eq!(ports("EXPOSE 80/tcp 53/UDP 9/sctp 443/"), sv(&["80/tcp", "53/udp", "9/sctp", "443/tcp"]));
    assert_eq!(ports("EXPOSE 8000-8010/udp"), sv(&["8000-8010/udp"]));
    assert_eq!(ports("ARG PORTS=\"80 443\"\nEXPOSE $PORTS 22"), sv(&["80/tcp", "443/tcp", "22/tcp"]));
    assert_eq!(ports("ENV P=8080\nEXPOSE ${P}/udp"), sv(&["8080/udp"]));
    let spec = PortSpec { start: 5, end: 7, protocol: Protocol::Tcp };
    assert_eq!(spec.ports().collect::<Vec<_>>(), vec![5, 6, 7]);
    assert_eq!(Protocol::Sctp.as_str(), "sctp");
}

#[test]
fn expose_errors() {
    for bad in ["EXPOSE", "EXPOSE 80/icmp", "EXPOSE http", "EXPOSE 65536", "EXPOSE 90-80", "EXPOSE +80", "EXPOSE 1:80"]
    {
        let e = stage_err(bad);
        assert_eq!(e.line, 2, "{bad}");
    }
    assert!(stage_err("EXPOSE $NOTHING").message.contains("no ports"));
}

// ----- HEALTHCHECK / ONBUILD -----

#[test]
fn healthcheck_is_typed_and_onbuild_ignored() {
    let v = stage(concat!(
        "HEALTHCHECK --interval=5m --timeout=3s --retries=2 CMD curl -f http://localhost/ || exit 1\n",
        "HEALTHCHECK NONE\n",
        "ONBUILD RUN make\n",
        "HEALTHCHECK --start-period=1m30s CMD [\"test\", \"-f\", \"/ok\"]",
    ));
    match &v[0] {
        Instruction::Healthcheck { test, interval_ns, timeout_ns, start_period_ns, retries, line: 2, .. } => {
            assert_eq!(test, &["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
            assert_eq!((*interval_ns, *timeout_ns, *start_period_ns, *retries), (300_000_000_000, 3_000_000_000, 0, 2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&v[1], Instruction::Healthcheck { test, .. } if test == &["NONE"]));
    assert!(matches!(&v[2], Instruction::Ignored { keyword: "ONBUILD", line: 4, .. }));
    assert_eq!(v[2].keyword(), "ONBUILD");
    assert!(matches!(&v[3], Instruction::Healthcheck { test, start_period_ns: 90_000_000_000, .. }
        if test == &["CMD", "test", "-f", "/ok"]));
    assert_eq!(v[3].keyword(), "HEALTHCHECK");
}

#[test]
fn healthcheck_and_onbuild_errors() {
    assert!(stage_err("HEALTHCHECK").message.contains("at least one"));
    assert!(stage_err("HEALTHCHECK PING x").message.contains("unknown type"));
    assert!(stage_err("HEALTHCHECK NONE x").message.contains("no arguments"));
    assert!(stage_err("HEALTHCHECK CMD").message.contains("requires a command"));
    assert!(stage_err("HEALTHCHECK --bogus=1 CMD x").message.contains("unknown flag"));
    assert!(stage_err("HEALTHCHECK --interval=soon CMD x").message.contains("\"soon\""));
    assert!(stage_err("HEALTHCHECK --timeout=10us CMD x").message.contains("less than 1ms"));
    assert!(stage_err("HEALTHCHECK --retries=0 CMD x").message.contains("at least 1"));
    assert!(stage_err("ONBUILD").message.contains("at least one"));
    assert!(stage_err("ONBUILD onbuild RUN x").message.to_lowercase().contains("chaining"));
    assert!(stage_err("ONBUILD FROM x").message.contains("isn't allowed"));
    assert!(stage_err("ONBUILD BOGUS x").message.contains("unknown instruction"));
}

#[test]
fn deep_json_nesting_does_not_overflow() {
    let deep = format!("RUN {}{}", "[".repeat(200_000), "]".repeat(200_000));
    assert!(stage_err(&deep).message.contains("must all be strings"));
    let unbalanced = format!("RUN {}", "[{\"a\":".repeat(100_000));
    assert_eq!(argv(&one(&unbalanced)).len(), 3);
}
