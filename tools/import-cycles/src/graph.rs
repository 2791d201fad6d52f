//! The import graph of one crate and its cycles. A module depends on another when it names
//! something there: `crate::a::b::Item`, `super::Item`, `self::child::Item`, a child module
//! by name, or a name one of its `use` items brought in. Re-exports are followed to the
//! module that holds the item, so a module reaching an item through the crate root's
//! `pub use` depends on the item's own module, not on the root. Names that lead out of the
//! crate (other crates, `std`) add no edge.
//!
//! The crate root is the crate's façade (it declares the modules, re-exports their items and
//! may hold crate-wide vocabulary such as the error type): naming an item defined in the
//! root adds no edge, so the root is never part of a cycle. In the same way a module that
//! re-exports (`pub use`) items of its own submodules is their façade: the re-export adds no
//! edge (using a submodule's item in its own code does). What a module must not do is reach
//! a module that reaches back to it.
//!
//! Cycles are the strongly connected components of more than one module (Tarjan).

use std::collections::{BTreeMap, BTreeSet};

use crate::modules::{Mention, ModuleTree};

/// Edges between module indices, each with the first mention that made it.
#[derive(Debug, Default)]
pub struct ImportGraph {
    pub edges: BTreeMap<usize, BTreeMap<usize, Mention>>,
}

/// Index of the crate root in [`ModuleTree::modules`].
const ROOT: usize = 0;

/// Longest chain of re-exports followed before giving up (a `use` cycle is a compile error,
/// so only malformed input gets there).
const MAX_REEXPORTS: usize = 32;

impl ImportGraph {
    /// Resolve every mention of every module of `tree`.
    pub fn build(tree: &ModuleTree) -> Self {
        let mut graph = ImportGraph::default();
        for (from, module) in tree.modules.iter().enumerate() {
            for mention in &module.mentions {
                let Some(to) = target(tree, from, &mention.segments) else {
                    continue;
                };
                let facade = mention.reexport && is_descendant(tree, to, from);
                if to != from && to != ROOT && !facade {
                    graph
                        .edges
                        .entry(from)
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| mention.clone());
                }
            }
        }
        graph
    }

    /// Every set of modules that import each other in a cycle, each sorted, in order.
    pub fn cycles(&self, nodes: usize) -> Vec<Vec<usize>> {
        let mut tarjan = Tarjan {
            graph: self,
            index: vec![None; nodes],
            low: vec![0; nodes],
            on_stack: vec![false; nodes],
            stack: Vec::new(),
            next: 0,
            components: Vec::new(),
        };
        for n in 0..nodes {
            if tarjan.index[n].is_none() {
                tarjan.visit(n);
            }
        }
        let mut cycles: Vec<Vec<usize>> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        cycles.sort();
        cycles
    }
}

/// Whether module `inner` is inside module `outer`.
fn is_descendant(tree: &ModuleTree, inner: usize, outer: usize) -> bool {
    tree.modules[inner]
        .path
        .starts_with(&tree.modules[outer].path)
}

/// The module that `segments`, written in module `from`, leads to (`None`: outside the
/// crate, or not a path to anything the crate holds).
fn target(tree: &ModuleTree, from: usize, segments: &[String]) -> Option<usize> {
    let mut absolute = absolute(tree, from, segments, 0)?;
    for _ in 0..MAX_REEXPORTS {
        match walk(tree, &absolute) {
            Walk::Module(m) => return Some(m),
            Walk::Import { module, name_at } => {
                let imported = &tree.modules[module].imports[&absolute[name_at]];
                let mut next = absolute_import(tree, module, imported)?;
                next.extend_from_slice(&absolute[name_at + 1..]);
                absolute = next;
            }
        }
    }
    None
}

enum Walk {
    /// The path ends in (or at an item of) this module.
    Module(usize),
    /// The path continues through a name `module` imports, at `absolute[name_at]`.
    Import { module: usize, name_at: usize },
}

fn walk(tree: &ModuleTree, absolute: &[String]) -> Walk {
    let mut node = 0;
    for (i, segment) in absolute.iter().enumerate() {
        let module = &tree.modules[node];
        if let Some(&child) = module.children.get(segment) {
            node = child;
        } else if module.imports.contains_key(segment) {
            return Walk::Import {
                module: node,
                name_at: i,
            };
        } else {
            break;
        }
    }
    Walk::Module(node)
}

/// `segments` as written in module `from`, made absolute from the crate root.
fn absolute(
    tree: &ModuleTree,
    from: usize,
    segments: &[String],
    depth: usize,
) -> Option<Vec<String>> {
    let module = &tree.modules[from];
    let first = segments.first()?;
    match first.as_str() {
        "crate" => Some(segments[1..].to_vec()),
        "self" => Some([&module.path[..], &segments[1..]].concat()),
        "super" => {
            let mut node = from;
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                node = tree.modules[node].parent?;
                rest = &rest[1..];
            }
            Some([&tree.modules[node].path[..], rest].concat())
        }
        _ if module.children.contains_key(first) => Some([&module.path[..], segments].concat()),
        _ if depth < MAX_REEXPORTS => {
            let imported = module.imports.get(first)?;
            let mut out = absolute(tree, from, imported, depth + 1)?;
            out.extend_from_slice(&segments[1..]);
            Some(out)
        }
        _ => None,
    }
}

fn absolute_import(tree: &ModuleTree, module: usize, imported: &[String]) -> Option<Vec<String>> {
    absolute(tree, module, imported, 0)
}

struct Tarjan<'g> {
    graph: &'g ImportGraph,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        let successors: BTreeSet<usize> = self
            .graph
            .edges
            .get(&v)
            .map(|e| e.keys().copied().collect())
            .unwrap_or_default();
        for w in successors {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}
