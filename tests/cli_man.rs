//! The committed man pages under `man/` must match what the current clap
//! definitions render. `make man` (ELASTICKV_UPDATE_MAN=1) rewrites them.

#[path = "support/paths.rs"]
mod paths;

#[test]
fn man_pages_are_up_to_date() {
    let dir = paths::repo_root().join("man");
    let pages = elastickv::cli::man::render_all().expect("render man pages");
    if std::env::var_os("ELASTICKV_UPDATE_MAN").is_some() {
        std::fs::create_dir_all(&dir).expect("create man/");
        for entry in std::fs::read_dir(&dir).expect("list man/") {
            let path = entry.expect("man entry").path();
            if path.extension().is_some_and(|e| e == "1") {
                std::fs::remove_file(path).expect("remove stale page");
            }
        }
        for (name, bytes) in &pages {
            std::fs::write(dir.join(name), bytes).expect("write man page");
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, bytes) in &pages {
        match std::fs::read(dir.join(name)) {
            Ok(existing) if &existing == bytes => {}
            _ => stale.push(name.clone()),
        }
    }
    let committed: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".1"))
                .collect()
        })
        .unwrap_or_default();
    for name in committed {
        if !pages.iter().any(|(n, _)| *n == name) {
            stale.push(format!("{name} (no longer a command)"));
        }
    }
    assert!(stale.is_empty(), "man/ is stale, run `make man`: {stale:?}");
}
