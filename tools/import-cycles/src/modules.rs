//! One crate's module tree read from its root file with `syn`: every module (file-backed
//! or inline) with its children, the names its `use` items bring in, and every path it
//! mentions that may lead into the crate (`use` trees, and paths of two or more segments
//! in types, expressions and patterns). Items under `#[cfg(test)]` are left out: a test
//! module reaching back to its parent is no layering cycle.
//!
//! Paths inside macro invocations are token streams and are not seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Why a crate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: syn::Error },
    #[error("{parent}: no file for `mod {name};` (looked for {candidates})")]
    MissingModule {
        parent: PathBuf,
        name: String,
        candidates: String,
    },
}

/// A path mentioned in a module, as written, with where it was written.
#[derive(Debug, Clone)]
pub struct Mention {
    pub segments: Vec<String>,
    /// Written in a `pub use` (any visibility but private): a re-export.
    pub reexport: bool,
    pub file: PathBuf,
    pub line: usize,
}

/// One module of the crate.
#[derive(Debug, Default)]
pub struct Module {
    /// Path from the crate root (empty for the root).
    pub path: Vec<String>,
    /// Index of the parent module (`None` for the root).
    pub parent: Option<usize>,
    /// Child modules by name.
    pub children: BTreeMap<String, usize>,
    /// Names brought in by module-level `use` items, with the path they name.
    pub imports: BTreeMap<String, Vec<String>>,
    /// Every path that may name something of this crate.
    pub mentions: Vec<Mention>,
}

impl Module {
    /// `crate::a::b` style name.
    pub fn display(&self) -> String {
        std::iter::once("crate")
            .chain(self.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::")
    }
}

/// A crate's modules; index 0 is the root.
#[derive(Debug, Default)]
pub struct ModuleTree {
    pub modules: Vec<Module>,
}

impl ModuleTree {
    /// Read the crate whose root file is `root` (a `lib.rs` or a binary's `main.rs`).
    pub fn load(root: &Path) -> Result<Self, LoadError> {
        let mut tree = ModuleTree {
            modules: vec![Module::default()],
        };
        let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
        tree.load_file(0, root, &dir)?;
        Ok(tree)
    }

    fn load_file(&mut self, module: usize, file: &Path, child_dir: &Path) -> Result<(), LoadError> {
        let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        let parsed = syn::parse_file(&text).map_err(|source| LoadError::Parse {
            path: file.to_path_buf(),
            source,
        })?;
        self.load_items(module, &parsed.items, file, child_dir)
    }

    fn load_items(
        &mut self,
        module: usize,
        items: &[syn::Item],
        file: &Path,
        child_dir: &Path,
    ) -> Result<(), LoadError> {
        for item in items {
            match item {
                syn::Item::Mod(m) if !is_test_only(&m.attrs) => {
                    let name = m.ident.to_string();
                    let child = self.add_child(module, &name);
                    match &m.content {
                        Some((_, inner)) => {
                            self.load_items(child, inner, file, &child_dir.join(&name))?;
                        }
                        None => {
                            let (path, dir) = module_file(file, child_dir, &name, &m.attrs)?;
                            self.load_file(child, &path, &dir)?;
                        }
                    }
                }
                syn::Item::Mod(_) => {}
                syn::Item::Use(u) if !is_test_only(&u.attrs) => {
                    let line = u.use_token.span.start().line;
                    let reexport = !matches!(u.vis, syn::Visibility::Inherited);
                    for (segments, name) in flatten_use(&u.tree) {
                        if let Some(name) = name {
                            self.modules[module].imports.insert(name, segments.clone());
                        }
                        self.modules[module].mentions.push(Mention {
                            segments,
                            reexport,
                            file: file.to_path_buf(),
                            line,
                        });
                    }
                }
                other => {
                    let mut paths = PathCollector {
                        file,
                        found: Vec::new(),
                    };
                    paths.visit_item(other);
                    self.modules[module].mentions.extend(paths.found);
                }
            }
        }
        Ok(())
    }

    fn add_child(&mut self, parent: usize, name: &str) -> usize {
        let mut path = self.modules[parent].path.clone();
        path.push(name.to_owned());
        self.modules.push(Module {
            path,
            parent: Some(parent),
            ..Module::default()
        });
        let index = self.modules.len() - 1;
        self.modules[parent].children.insert(name.to_owned(), index);
        index
    }
}

/// The file of `mod name;` declared in `file`, and the directory of its own children.
fn module_file(
    file: &Path,
    child_dir: &Path,
    name: &str,
    attrs: &[syn::Attribute],
) -> Result<(PathBuf, PathBuf), LoadError> {
    if let Some(explicit) = path_attribute(attrs) {
        let path = file.parent().unwrap_or(Path::new(".")).join(explicit);
        let dir = path.with_extension("");
        return Ok((path, dir));
    }
    let flat = child_dir.join(format!("{name}.rs"));
    if flat.is_file() {
        return Ok((flat, child_dir.join(name)));
    }
    let nested = child_dir.join(name).join("mod.rs");
    if nested.is_file() {
        return Ok((nested, child_dir.join(name)));
    }
    Err(LoadError::MissingModule {
        parent: file.to_path_buf(),
        name: name.to_owned(),
        candidates: format!("{} and {}", flat.display(), nested.display()),
    })
}

fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// `#[cfg(test)]` (alone; `cfg(any(test, …))` code is built outside tests too).
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// Each leaf of a `use` tree as its full path and the name it binds (`None` for globs and
/// `_` renames). `a::{self, b as c}` gives `a` binding `a` and `a::b` binding `c`.
fn flatten_use(tree: &syn::UseTree) -> Vec<(Vec<String>, Option<String>)> {
    fn walk(
        tree: &syn::UseTree,
        prefix: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, Option<String>)>,
    ) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) if n.ident == "self" => {
                out.push((prefix.clone(), prefix.last().cloned()));
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                out.push((path, Some(n.ident.to_string())));
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                if r.ident != "self" {
                    path.push(r.ident.to_string());
                }
                let name = (r.rename != "_").then(|| r.rename.to_string());
                out.push((path, name));
            }
            syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// Collects the paths of one item (and `use` items nested in function bodies).
struct PathCollector<'f> {
    file: &'f Path,
    found: Vec<Mention>,
}

impl<'ast> Visit<'ast> for PathCollector<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() >= 2 {
            self.found.push(Mention {
                segments: path.segments.iter().map(|s| s.ident.to_string()).collect(),
                reexport: false,
                file: self.file.to_path_buf(),
                line: path.segments[0].ident.span().start().line,
            });
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let line = u.use_token.span.start().line;
        for (segments, _) in flatten_use(&u.tree) {
            self.found.push(Mention {
                segments,
                reexport: false,
                file: self.file.to_path_buf(),
                line,
            });
        }
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !item_attrs(item).is_some_and(is_test_only) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

fn item_attrs(item: &syn::Item) -> Option<&[syn::Attribute]> {
    Some(match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return None,
    })
}
