//! Man pages rendered from the clap definitions, one per (sub)command, so
//! they can never drift from `--help`. The committed copies under `man/` are
//! checked by `tests/cli_man.rs`; `make man` rewrites them.

use clap::CommandFactory;

use super::Cli;

/// Renders every man page: `(file name, roff bytes)`, sorted by file name.
pub fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    let root = Cli::command();
    render_recursive(&root, "elastickv", &mut pages)?;
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pages)
}

fn render_recursive(
    cmd: &clap::Command,
    name: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    let cmd = cmd.clone().name(clap::builder::Str::from(name.to_string()));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    pages.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        render_recursive(sub, &sub_name, pages)?;
    }
    Ok(())
}
