//! A check that modules of one crate never import each other in a cycle. Each workspace
//! crate (library and binaries) is read from its root file with `syn`; a module depends on
//! another when it names something there (`use` items and paths in code, re-exports
//! followed to the module that holds the item; `#[cfg(test)]` code left out; items of the
//! crate root are crate-wide vocabulary and a module's `pub use` of its own submodules'
//! items is their façade, so neither adds an edge). A cycle is a
//! set of modules each reaching the others; `scripts/test.sh` fails on any cycle not in the
//! allow-list (`allowed-cycles.txt`, each kept with its reason), and on an allow-list entry
//! that no longer matches a cycle.
//!
//! Modules: [`modules`] (reading a crate), [`graph`] (resolving names, the cycles),
//! [`workspace`] (the crates), [`allowed`] (the allow-list).

#![forbid(unsafe_code)]

pub mod allowed;
pub mod graph;
pub mod modules;
pub mod workspace;

use std::path::{Path, PathBuf};

use graph::ImportGraph;
use modules::{LoadError, ModuleTree};

/// One import of a cycle: `from` names something of `to` at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub from: String,
    pub to: String,
    pub file: PathBuf,
    pub line: usize,
}

/// Modules of one crate that import each other in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The crate (`package (lib)`; empty for [`crate_cycles`]).
    pub krate: String,
    /// The modules, sorted (`crate::a::b`).
    pub modules: Vec<String>,
    /// The imports between them.
    pub imports: Vec<Import>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {}", self.krate, self.modules.join(" "))?;
        for i in &self.imports {
            writeln!(
                f,
                "    {} -> {}  ({}:{})",
                i.from,
                i.to,
                i.file.display(),
                i.line
            )?;
        }
        Ok(())
    }
}

/// The import cycles of the crate whose root file is `root`.
pub fn crate_cycles(root: &Path) -> Result<Vec<Cycle>, LoadError> {
    let tree = ModuleTree::load(root)?;
    let graph = ImportGraph::build(&tree);
    let name = |i: usize| tree.modules[i].display();
    Ok(graph
        .cycles(tree.modules.len())
        .into_iter()
        .map(|members| {
            let mut imports = Vec::new();
            for &from in &members {
                for (&to, mention) in graph.edges.get(&from).into_iter().flatten() {
                    if members.contains(&to) {
                        imports.push(Import {
                            from: name(from),
                            to: name(to),
                            file: mention.file.clone(),
                            line: mention.line,
                        });
                    }
                }
            }
            let mut modules: Vec<String> = members.iter().map(|&m| name(m)).collect();
            modules.sort();
            Cycle {
                krate: String::new(),
                modules,
                imports,
            }
        })
        .collect())
}

/// What a workspace check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Cycles not in the allow-list.
    pub cycles: Vec<Cycle>,
    /// Cycles found and allowed.
    pub allowed: Vec<Cycle>,
    /// Allow-list entries that match no cycle.
    pub stale: Vec<allowed::AllowedCycle>,
}

impl Report {
    /// Whether the check passes.
    pub fn passed(&self) -> bool {
        self.cycles.is_empty() && self.stale.is_empty()
    }
}

/// Check every crate of the workspace at `dir` against `allow`.
pub fn check_workspace(dir: &Path, allow: &[allowed::AllowedCycle]) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut used = vec![false; allow.len()];
    for krate in workspace::crate_roots(dir)? {
        for mut cycle in crate_cycles(&krate.root)? {
            cycle.krate = krate.name.clone();
            for import in &mut cycle.imports {
                if let Ok(relative) = import.file.strip_prefix(dir) {
                    import.file = relative.to_path_buf();
                }
            }
            let allowed = allow
                .iter()
                .position(|a| a.krate == cycle.krate && a.modules == cycle.modules);
            match allowed {
                Some(i) => {
                    used[i] = true;
                    report.allowed.push(cycle);
                }
                None => report.cycles.push(cycle),
            }
        }
    }
    report.stale = allow
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(a, _)| a.clone())
        .collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate written to a temporary directory: `(relative path, text)` pairs.
    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn modules_of(cycles: &[Cycle]) -> Vec<Vec<&str>> {
        cycles
            .iter()
            .map(|c| c.modules.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn finds_a_cycle_through_three_modules_and_names_the_imports() {
        let dir = fixture(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nmod c;\nmod d;\npub struct Error;\nuse d::D;\n",
            ),
            ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
            // Items of the root (the façade) add no edge: `crate::Error` is no cycle.
            ("src/b.rs", "pub struct B(crate::c::C, crate::Error);\n"),
            (
                "src/c.rs",
                "pub struct C;\nfn f() { let _ = super::a::A; }\n",
            ),
            ("src/d.rs", "use crate::a::A;\npub struct D;\n"),
        ]);
        let cycles = crate_cycles(&dir.path().join("src/lib.rs")).unwrap();
        assert_eq!(modules_of(&cycles), [["crate::a", "crate::b", "crate::c"]]);
        let imports: Vec<(&str, &str, usize)> = cycles[0]
            .imports
            .iter()
            .map(|i| (i.from.as_str(), i.to.as_str(), i.line))
            .collect();
        assert_eq!(
            imports,
            [
                ("crate::a", "crate::b", 1),
                ("crate::b", "crate::c", 1),
                ("crate::c", "crate::a", 2)
            ]
        );
    }

    #[test]
    fn parent_and_child_that_use_each_other_are_a_cycle() {
        let dir = fixture(&[
            ("src/lib.rs", "mod pull;\n"),
            (
                "src/pull/mod.rs",
                "mod poll;\npub struct Supervisor;\nfn spawn() { poll::run(); }\n",
            ),
            (
                "src/pull/poll.rs",
                "use super::Supervisor;\npub fn run() {}\n",
            ),
        ]);
        let cycles = crate_cycles(&dir.path().join("src/lib.rs")).unwrap();
        assert_eq!(modules_of(&cycles), [["crate::pull", "crate::pull::poll"]]);
    }

    #[test]
    fn a_parent_reexporting_its_child_is_a_facade_but_calling_it_is_a_dependency() {
        let facade = fixture(&[
            ("src/lib.rs", "mod policy;\n"),
            (
                "src/policy/mod.rs",
                "mod dsse;\npub use dsse::verify;\npub struct Policy;\n",
            ),
            (
                "src/policy/dsse.rs",
                "use super::Policy;\npub fn verify() {}\n",
            ),
        ]);
        let cycles = crate_cycles(&facade.path().join("src/lib.rs")).unwrap();
        assert!(cycles.is_empty(), "{cycles:?}");

        let calling = fixture(&[
            ("src/lib.rs", "mod policy;\n"),
            (
                "src/policy/mod.rs",
                "mod dsse;\nuse dsse::verify;\npub struct Policy;\n",
            ),
            (
                "src/policy/dsse.rs",
                "use super::Policy;\npub fn verify() {}\n",
            ),
        ]);
        let cycles = crate_cycles(&calling.path().join("src/lib.rs")).unwrap();
        assert_eq!(
            modules_of(&cycles),
            [["crate::policy", "crate::policy::dsse"]]
        );
    }

    #[test]
    fn reexports_are_followed_and_tests_and_other_crates_ignored() {
        let dir = fixture(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\nuse other::listener;\npub use b::Thing;\npub use a::run;\n",
            ),
            // Through the root's re-export to `b`, not to the root; `listener` is another
            // crate's module; the test module reaching back is test code.
            (
                "src/a.rs",
                "use crate::Thing;\nuse crate::listener::Info;\npub fn run() {}\n\
                 #[cfg(test)]\nmod tests { use super::*; use crate::b::helper; }\n",
            ),
            (
                "src/b.rs",
                "pub struct Thing;\n#[cfg(test)]\npub fn helper() { crate::a::run(); }\n",
            ),
        ]);
        let cycles = crate_cycles(&dir.path().join("src/lib.rs")).unwrap();
        assert!(cycles.is_empty(), "{cycles:?}");
    }

    #[test]
    fn a_workspace_cycle_fails_unless_allowed_and_a_stale_entry_fails() {
        let dir = fixture(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"m\"]\n"),
            ("m/Cargo.toml", "[package]\nname = \"m\"\n"),
            ("m/src/lib.rs", "mod a;\nmod b;\n"),
            ("m/src/a.rs", "use crate::b::B;\npub struct A;\n"),
            ("m/src/b.rs", "use crate::a::A;\npub struct B;\n"),
        ]);
        let report = check_workspace(dir.path(), &[]).unwrap();
        assert!(!report.passed());
        assert_eq!(report.cycles[0].krate, "m (lib)");
        assert_eq!(
            report.cycles[0].imports[0].file,
            PathBuf::from("m/src/a.rs")
        );

        let allow = allowed::parse("m (lib): crate::b crate::a  # the fixture's reason\n").unwrap();
        let report = check_workspace(dir.path(), &allow).unwrap();
        assert!(report.passed(), "{report:?}");
        assert_eq!(report.allowed.len(), 1);

        let stale = allowed::parse("m (lib): crate::a crate::c  # gone\n").unwrap();
        let report = check_workspace(dir.path(), &stale).unwrap();
        assert!(!report.passed());
        assert_eq!(report.stale.len(), 1);
    }

    #[test]
    fn an_allowed_cycle_needs_a_reason() {
        assert!(matches!(
            allowed::parse("m (lib): crate::a crate::b\n"),
            Err(allowed::AllowListError::NoReason { line: 1 })
        ));
        assert!(matches!(
            allowed::parse("# comment\nm (lib): crate::a  # one module\n"),
            Err(allowed::AllowListError::Malformed { line: 2 })
        ));
    }
}
