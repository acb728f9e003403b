// Prints every function of the given JavaScript files longer than the limit, as JSON lines
// {"file", "name", "line", "lines"}: the architecture test holds the page to the same rule as
// the Python (node function_lengths.mjs 50 app.js ui/*.js).
import { readFileSync } from "node:fs";
import * as acorn from "acorn";

const [limit, ...files] = process.argv.slice(2);

/** The name a function is known by: its own, its method's or property's key, or its variable. */
function nameOf(node, parent) {
  if (node.id?.name) return node.id.name;
  const key = parent?.key;
  if (key) return key.name ?? String(key.value);
  if (parent?.type === "VariableDeclarator") return parent.id?.name ?? "(anonymous)";
  return "(anonymous)";
}

function visit(node, parent, file) {
  if (node.type?.includes("Function")) {
    const lines = node.loc.end.line - node.loc.start.line + 1;
    if (lines > Number(limit)) {
      console.log(JSON.stringify({ file, name: nameOf(node, parent), line: node.loc.start.line, lines }));
    }
  }
  for (const value of Object.values(node)) {
    for (const child of Array.isArray(value) ? value : [value]) {
      if (child && typeof child.type === "string") visit(child, node, file);
    }
  }
}

for (const file of files) {
  const source = readFileSync(file, "utf8");
  visit(acorn.parse(source, { ecmaVersion: "latest", sourceType: "module", locations: true }), null, file);
}
