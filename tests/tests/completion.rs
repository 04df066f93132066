//! `agentctl completion bash|zsh|fish`: scripts the shells load (no agent needed).

use std::process::Command;

fn ctl() -> std::path::PathBuf {
    e2e::bin_dir().join("agentctl")
}

#[test]
fn bash_completion_loads_and_completes_verbs_and_flags() {
    let script = format!(
        "source <({ctl} completion bash) && complete -p agentctl && \
         COMP_WORDS=(agentctl run --log-d) COMP_CWORD=2 && _agentctl agentctl --log-d run && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        ctl = ctl().display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("complete -o bashdefault -o default -o nosort -F _agentctl agentctl"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "--log-driver"), "{stdout}");
}

#[test]
fn zsh_and_fish_scripts_and_unknown_shells() {
    let run = |shell: &str| Command::new(ctl()).args(["completion", shell]).output().expect("agentctl");
    let zsh = run("zsh");
    assert!(zsh.status.success() && String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef agentctl"));
    let fish = String::from_utf8_lossy(&run("fish").stdout).into_owned();
    assert!(fish.contains("complete -c agentctl") && fish.contains("prune"), "{fish}");
    let bad = run("tcsh");
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'tcsh'"));
}
