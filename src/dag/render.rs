//! The plan as a picture: Graphviz DOT or Mermaid.

use std::fmt::Write;

use super::Plan;

/// Output formats for `seal dag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

/// Renders the instance graph of `plan`.
pub fn render_graph(plan: &Plan<'_>, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", escape(&plan.pipeline.name));
            let _ = writeln!(out, "  rankdir=LR;\n  node [shape=box];");
            for (i, instance) in plan.instances.iter().enumerate() {
                let _ = writeln!(out, "  n{i} [label=\"{}\"];", escape(&instance.id));
            }
            for (i, instance) in plan.instances.iter().enumerate() {
                for dep in &instance.deps {
                    let _ = writeln!(out, "  n{dep} -> n{i};");
                }
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, instance) in plan.instances.iter().enumerate() {
                let _ = writeln!(out, "  n{i}[\"{}\"]", instance.id.replace('"', "#quot;"));
            }
            for (i, instance) in plan.instances.iter().enumerate() {
                for dep in &instance.deps {
                    let _ = writeln!(out, "  n{dep} --> n{i}");
                }
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
