//! compose's progress lines: ` ✔ Container p-web-1  Started` on a terminal (names
//! aligned), plain `Container p-web-1  Started` when the output is not one.

use std::io::IsTerminal;

pub struct Progress {
    tty: bool,
    width: usize,
}

impl Progress {
    /// `names`: every name that will be shown, so the states line up.
    pub fn new(names: impl Iterator<Item = String>) -> Progress {
        Progress { tty: std::io::stdout().is_terminal(), width: names.map(|n| n.len()).max().unwrap_or(0) }
    }

    pub fn line(&self, kind: &str, name: &str, state: &str) {
        println!("{}", self.render(kind, name, state));
    }

    fn render(&self, kind: &str, name: &str, state: &str) -> String {
        if !self.tty {
            return format!("{kind} {name}  {state}");
        }
        let w = self.width;
        let waiting = state == "Waiting";
        let mark = if waiting { "\u{1b}[33m⠿\u{1b}[0m" } else { "\u{1b}[32m✔\u{1b}[0m" };
        format!(" {mark} {kind:<9} {name:<w$}  {state}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_terminal_lines() {
        let p = Progress { tty: false, width: 9 };
        assert_eq!(p.render("Container", "p-web-1", "Started"), "Container p-web-1  Started");
        let t = Progress { tty: true, width: 7 };
        assert!(t.render("Container", "p-web-1", "Started").contains("✔"));
        assert!(t.render("Network", "p_default", "Created").ends_with("Network   p_default  Created"));
    }
}
