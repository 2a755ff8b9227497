// Copies the browser builds of the dashboard's npm dependencies into api/static/vendor/ so the
// dashboard works offline (no CDN). Run `npm ci && npm run build` in frontend/, commit the result.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "static", "vendor");
mkdirSync(out, { recursive: true });
const files = [
  ["maplibre-gl/dist/maplibre-gl.js", "maplibre-gl.js"],
  ["maplibre-gl/dist/maplibre-gl.css", "maplibre-gl.css"],
  ["maplibre-gl/LICENSE.txt", "maplibre-gl.LICENSE.txt"],
  ["h3-js/dist/h3-js.umd.js", "h3-js.umd.js"],
  ["h3-js/LICENSE", "h3-js.LICENSE.txt"],
];
const versions = {};
for (const [src, dst] of files) {
  copyFileSync(join(here, "node_modules", src), join(out, dst));
}
for (const pkg of ["maplibre-gl", "h3-js"]) {
  versions[pkg] = JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"))).version;
}
writeFileSync(join(out, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored ${Object.entries(versions).map(([k, v]) => `${k}@${v}`).join(", ")} into ${out}`);
