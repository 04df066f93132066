//! `agentctl build`: Dockerfiles run by our own runtime, one layer per RUN/COPY/ADD, a
//! cache that makes an unchanged rebuild reuse every step, .dockerignore, clear errors.

use e2e::{privileged, Agent};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

fn layers_of(a: &Agent, image: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", image])).unwrap();
    v[0]["RootFS"]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

fn image_id(a: &Agent, image: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", image])).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

#[test]
fn dockerfile_layers_cache_and_ignore() {
    if !privileged("dockerfile_layers_cache_and_ignore") {
        return;
    }
    let a = Agent::start("build");
    let ctx = a.dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM local/busybox\nARG GREETING=hello\nCOPY . /src/\nRUN echo \"$GREETING from run\" | tee /out.txt && rm /src/gone.txt\n");
    write(&ctx, "hello.txt", "hello file\n");
    write(&ctx, "gone.txt", "deleted by RUN\n");
    write(&ctx, "secret.key", "never in the image\n");
    write(&ctx, "logs/a.log", "ignored\n");
    write(&ctx, ".dockerignore", "*.key\nlogs\n");
    let base = layers_of(&a, "local/busybox").len();

    let r = a.ctl(&["build", "-t", "local/app:1", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "build: {}{}\n{}", r.stdout, r.stderr, a.log());
    assert!(
        r.stdout.contains("Step 3/4 : COPY . /src/") && r.stdout.contains("Successfully tagged local/app:1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().any(|l| l == "hello from run"), "RUN output is streamed: {}", r.stdout);
    assert_eq!(layers_of(&a, "local/app:1").len(), base + 2, "COPY and RUN make one layer each; FROM and ARG none");
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "local/app:1",
        "sh",
        "-c",
        "cat /out.txt /src/hello.txt; ls /src | tr '\\n' ' '; test -e /src/gone.txt && echo GONE-VISIBLE; true",
    ]);
    assert!(out.starts_with("hello from run\nhello file\n"), "{out}");
    assert!(!out.contains("GONE-VISIBLE"), "a file deleted by RUN is hidden (whiteout): {out}");
    assert!(!out.contains("secret.key") && !out.contains("logs"), ".dockerignore excludes: {out}");
    let hist = a.ok(&["image", "history", "local/app:1"]);
    assert!(hist.contains("RUN echo") && hist.contains("COPY . /src/"), "{hist}");
    let id1 = image_id(&a, "local/app:1");
    // The RUN layer holds what the command changed, not the files the runtime writes.
    let run_layer = layers_of(&a, "local/app:1")[base + 1].trim_start_matches("sha256:").to_string();
    let fs = a.root().join("layers").join(run_layer).join("fs");
    assert!(fs.join("out.txt").is_file(), "the RUN layer has the command's file");
    for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        assert!(!fs.join(f).exists(), "{f} is the runtime's, not the layer's");
    }

    // Unchanged: every step cached, same image.
    let r = a.ctl(&["build", "-t", "local/app:1", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("CACHED").count(), 2, "COPY and RUN cached: {}", r.stdout);
    assert!(!r.stdout.lines().any(|l| l == "hello from run"), "a cached RUN does not run: {}", r.stdout);
    assert_eq!(image_id(&a, "local/app:1"), id1, "a cached rebuild gives the same image");

    // A build arg changes the RUN step only; a changed file the COPY and what follows.
    let r = a.ctl(&["build", "-t", "local/app:2", "--build-arg", "GREETING=hi", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("CACHED").count(), 1, "{}", r.stdout);
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", "local/app:2", "cat", "/out.txt"]), "hi from run");
    write(&ctx, "hello.txt", "changed\n");
    let r = a.ctl(&["build", "-t", "local/app:3", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches("CACHED").count(), 0, "{}", r.stdout);
    // Layers are shared: app:1 and app:3 differ only above the base.
    let (l1, l3) = (layers_of(&a, "local/app:1"), layers_of(&a, "local/app:3"));
    assert_eq!(l1[..base], l3[..base]);
    assert_ne!(l1[base], l3[base]);

    // Build containers and intermediate images do not stay.
    assert_eq!(a.ok(&["ps", "-a", "-q"]), "", "no build container left");
    let images = a.ok(&["images"]);
    assert!(!images.contains("<none>"), "no intermediate image left: {images}");
    a.assert_no_leftovers();
}

#[test]
fn dockerfile_config_and_errors() {
    if !privileged("dockerfile_config_and_errors") {
        return;
    }
    let a = Agent::start("buildcfg");
    let ctx = a.dir.path().join("ctx");
    write(
        &ctx,
        "build/app.Dockerfile",
        "FROM local/busybox\nENV GREETING=hey NAME=world\nWORKDIR /srv\nWORKDIR data\nUSER 1000:1000\nLABEL team=infra\nEXPOSE 8080/tcp\nADD files.tar /opt/\nENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"echo $GREETING $NAME from $(pwd) as $(id -u); cat /opt/inside\"]\n",
    );
    // ADD of a local tar extracts it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "inside", &b"tar"[..]).unwrap();
    std::fs::write(ctx.join("files.tar"), b.into_inner().unwrap()).unwrap();
    let r = a.ctl(&[
        "build",
        "-q",
        "-t",
        "local/cfg",
        "-f",
        ctx.join("build/app.Dockerfile").to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.trim().starts_with("sha256:"), "-q prints the ID: {}", r.stdout);
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", "local/cfg"]), "hey world from /srv/data as 1000\ntar");
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["image", "inspect", "local/cfg"])).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["team"], "infra");
    assert_eq!(v[0]["Config"]["ExposedPorts"][0], "8080/tcp", "{v}");

    // Errors name the line, the command and its code; nothing is left behind.
    write(&ctx, "Dockerfile", "FROM local/busybox\nFROBNICATE now\n");
    let r = a.ctl(&["build", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 2") && r.stderr.contains("FROBNICATE"), "{}", r.stderr);
    write(&ctx, "Dockerfile", "FROM local/busybox\nRUN echo partial > /p\nRUN exit 3\n");
    let r = a.ctl(&["build", "-t", "local/broken", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 3") && r.stderr.contains("non-zero code: 3"), "{}", r.stderr);
    write(&ctx, "Dockerfile", "FROM local/nothing-here\n");
    let r = a.ctl(&["build", ctx.to_str().unwrap()]);
    assert!(r.stderr.contains("local/nothing-here"), "{}", r.stderr);
    write(&ctx, "Dockerfile", "FROM local/busybox\nCOPY ../../etc/passwd /x\n");
    let r = a.ctl(&["build", ctx.to_str().unwrap()]);
    assert!(r.stderr.contains("outside the build context"), "{}", r.stderr);
    // Symlinks in the context lead nowhere outside it: not to read host files...
    std::os::unix::fs::symlink("/", ctx.join("hostroot")).unwrap();
    write(&ctx, "Dockerfile", "FROM local/busybox\nCOPY hostroot/etc/hostname /x\n");
    let r = a.ctl(&["build", ctx.to_str().unwrap()]);
    assert!(r.stderr.contains("outside the build context (through a symlink)"), "{}", r.stderr);
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("Dockerfile")).unwrap();
    let r = a.ctl(&["build", ctx.to_str().unwrap()]);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    // ...nor to write them: `a/b` is a link to a host file, then `b` is copied onto it.
    let victim = a.dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::fs::create_dir(ctx.join("a")).unwrap();
    std::os::unix::fs::symlink(&victim, ctx.join("a/b")).unwrap();
    write(&ctx, "b", "overwritten");
    write(&ctx, "Dockerfile", "FROM local/busybox\nCOPY a b /d/\n");
    let r = a.ctl(&["build", "-t", "local/linkcopy", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched", "COPY wrote through a staged symlink");
    assert_eq!(a.ok(&["run", "--rm", "--network", "none", "local/linkcopy", "cat", "/d/b"]), "overwritten");
    a.ok(&["rmi", "local/linkcopy"]);
    assert_eq!(a.ok(&["ps", "-a", "-q"]), "");
    let images = a.ok(&["images"]);
    assert!(!images.contains("broken") && !images.contains("<none>"), "{images}");
    a.assert_no_leftovers();
}
