//! The layers of `src/` (see docs/ARCHITECTURE.md), checked from the source:
//! which modules each module names through `crate::` paths, no import circle
//! among modules, and no import upward (the log never names the wire, handlers
//! never name the server, the record format names nothing but errors).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules (as paths like `log::segment`) and the modules they name.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file defines: `src/log/segment/scan.rs` → `log::segment::scan`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests`
/// (tests may reach anywhere).
fn code(text: &str) -> String {
    let text = match text
        .find("#[cfg(test)]\nmod tests")
        .or_else(|| text.find("#[cfg(test)]\npub(crate) mod tests"))
    {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` path in `code`, as its segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_word = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_word {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.push(path);
    }
    out
}

/// The graph at `depth` path segments (1: `log`, 2: `log::segment`).
fn graph(depth: usize) -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g = Graph::new();
    for file in files {
        let module = module_of(&src, &file);
        if module.is_empty() || matches!(module[0].as_str(), "lib" | "main") || module.last().unwrap() == "tests" {
            continue;
        }
        let from = module[..module.len().min(depth)].join("::");
        let text = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&code(&text)) {
            let to = path[..path.len().min(depth)].join("::");
            // A module's own children and ancestors are not edges.
            if to == from || from.starts_with(&format!("{to}::")) || to.starts_with(&format!("{from}::")) {
                continue;
            }
            g.entry(from.clone()).or_default().insert(to);
        }
    }
    g
}

/// A circle of modules, if there is one.
fn circle(g: &Graph) -> Option<Vec<String>> {
    fn visit(g: &Graph, node: &str, stack: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut c = stack[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, next, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys().find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_among_modules() {
    for depth in [1, 2] {
        let g = graph(depth);
        assert!(g.len() > 5, "the graph was read: {g:?}");
        if let Some(c) = circle(&g) {
            panic!("import circle at depth {depth}: {}", c.join(" → "));
        }
    }
}

#[test]
fn nothing_imports_upward() {
    let g = graph(1);
    // (module, modules it must not name)
    let rules: &[(&str, &[&str])] = &[
        (
            "record",
            &[
                "protocol", "server", "handlers", "broker", "replica", "log", "group", "cluster", "config",
            ],
        ),
        (
            "protocol",
            &["server", "handlers", "broker", "replica", "log", "group", "cluster"],
        ),
        (
            "log",
            &[
                "protocol", "server", "handlers", "broker", "replica", "group", "cluster", "config",
            ],
        ),
        ("replica", &["protocol", "server", "handlers", "broker", "group"]),
        // Coordinators see the cluster only through traits the broker implements.
        (
            "group",
            &["protocol", "server", "handlers", "broker", "replica", "cluster"],
        ),
        // The cluster's metadata is below everything that acts on it.
        (
            "cluster",
            &["protocol", "server", "handlers", "broker", "replica", "group", "txn"],
        ),
        ("handlers", &["server"]),
        ("broker", &["server", "handlers", "protocol"]),
        (
            "quota",
            &[
                "protocol", "server", "handlers", "broker", "replica", "log", "group", "cluster", "security",
            ],
        ),
        (
            "security",
            &[
                "protocol", "server", "handlers", "broker", "replica", "log", "group", "cluster",
            ],
        ),
        (
            "metrics",
            &[
                "protocol", "server", "handlers", "broker", "replica", "log", "group", "cluster", "security", "trace",
            ],
        ),
        (
            "trace",
            &[
                "server", "handlers", "broker", "replica", "log", "group", "cluster", "security",
            ],
        ),
        (
            "util",
            &[
                "record", "protocol", "server", "handlers", "broker", "replica", "log", "group", "cluster", "metrics",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (module, forbidden) in rules {
        for to in g.get(*module).into_iter().flatten() {
            if forbidden.contains(&to.as_str()) {
                wrong.push(format!("{module} → {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:?}");
}

#[test]
fn the_checker_sees_circles() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(circle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circle(&g).map(|c| c.len()), Some(4));
    assert_eq!(
        crate_paths("use crate::log::segment::{x};\nlet a = my_crate::foo;"),
        vec![vec!["log".to_string(), "segment".into()]]
    );
}
