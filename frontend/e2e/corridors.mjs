// Drives the dashboard's traffic layer through released windows in headless Chromium, for
// tests/integration/api/test_browser_corridors.py.
// Usage: node corridors.mjs <base-url> <api-key> <artifacts-dir> <spec.json>
// spec: {"incident": zone_id, "hover": [lng, lat] inside it, "shots": {"<window_start>": "<name>.png"}}.
// Protocol on stdout (one JSON object per line): {"step":"traffic",...} after switching layers,
// then {"step":"window", window, levels, corridors, ...} for every window of the slider (oldest
// first; a screenshot for each window named in "shots"), {"step":"hover", text} on the incident
// corridor in the first shot's window, then {"step":"done"}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, key, dir, specPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const errors = [];
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, errors }) + "\n");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const state = () => ({ ...window.hexpulse, project: undefined });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => { if (!r.url().includes("/stream")) errors.push("requestfailed: " + r.url()); });
  await page.goto(`${base}/#key=${encodeURIComponent(key)}`);
  await page.waitForFunction(() => window.hexpulse && window.hexpulse.renders > 0, null, { timeout: 30000 });
  await page.click("#layer-traffic");
  await page.waitForFunction(() => window.hexpulse.layer === "traffic" && window.hexpulse.corridors > 0,
    null, { timeout: 30000 });
  say({ step: "traffic", ...(await page.evaluate(state)) });

  const windows = await page.evaluate(async () => {
    const k = localStorage.getItem("hexpulse.apiKey");
    const r = await fetch("/v1/windows?limit=60", { headers: { Authorization: "Bearer " + k } });
    return (await r.json()).recent.map((w) => w.window_start).reverse();
  });
  const first = Object.keys(spec.shots)[0];
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    const before = await page.evaluate(() => window.hexpulse.corridorRenders);
    await page.evaluate((v) => {
      const s = document.getElementById("slider");
      s.value = String(v);
      s.dispatchEvent(new Event("input"));
    }, i);
    await page.waitForFunction(([target, n]) => window.hexpulse.corridorWindow === target
      && window.hexpulse.window === target && window.hexpulse.corridorRenders > n, [w, before], { timeout: 30000 });
    const st = await page.evaluate(state);
    say({ step: "window", window: w, level: st.corridorLevels[spec.incident], corridors: st.corridors,
      levels: st.corridorLevels });
    if (w === first) { // the forming shot shows the incident corridor's tooltip with its intervals
      const box = await page.locator("#map").boundingBox();
      const pt = await page.evaluate(([lng, lat]) => window.hexpulse.project(lng, lat), spec.hover);
      await page.mouse.move(box.x + pt.x, box.y + pt.y);
      await page.waitForFunction(() => !document.getElementById("tooltip").hidden, null, { timeout: 10000 });
      say({ step: "hover", text: await page.textContent("#tooltip"),
        legend: await page.textContent("#legend-corridors") });
    }
    if (spec.shots[w]) await page.screenshot({ path: join(dir, spec.shots[w]) });
    if (w === first) await page.mouse.move(5, 5);
  }
  say({ step: "done" });
} catch (err) {
  say({ step: "failed", message: String(err && err.message) });
} finally {
  await browser.close();
}
