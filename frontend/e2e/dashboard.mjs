// Drives the dashboard in headless Chromium for tests/integration/test_api_browser.py.
// Usage: node dashboard.mjs <base-url> <api-key> <screenshot.png>
// Protocol on stdout (one JSON object per line): {"step":"first",...}, then waits for a line
// "<expected window_start>" on stdin, then {"step":"live",...}, then {"step":"traffic",...}, then
// {"step":"smoothed",...} (crowd layer with smoothing on).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [base, key, shot] = process.argv.slice(2);
const errors = [];
const t0 = Date.now();
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, errors, t_ms: Date.now() - t0 }) + "\n");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => { if (!r.url().includes("/stream")) errors.push("requestfailed: " + r.url()); });
  await page.goto(`${base}/#key=${encodeURIComponent(key)}`);
  await page.waitForFunction(() => window.hexpulse && window.hexpulse.renders > 0 && window.hexpulse.drawn > 0,
    null, { timeout: 30000 });
  const first = await page.evaluate(() => ({ ...window.hexpulse, url: location.href }));
  await page.screenshot({ path: shot });
  say({ step: "first", ...first });

  const lines = createInterface({ input: process.stdin });
  const expected = (await lines[Symbol.asyncIterator]().next()).value.trim();
  lines.close();
  process.stdin.destroy();
  await page.waitForFunction((w) => window.hexpulse.window === w, expected, { timeout: 30000 });
  say({ step: "live", ...(await page.evaluate(() => ({ ...window.hexpulse }))) });

  await page.click("#layer-traffic");
  await page.waitForFunction(() => window.hexpulse.layer === "traffic", null, { timeout: 30000 });
  say({ step: "traffic", ...(await page.evaluate(() => ({ ...window.hexpulse }))) });
  await page.screenshot({ path: shot.replace(/\.png$/, "-traffic.png") });

  await page.click("#layer-crowd");
  await page.waitForFunction(() => window.hexpulse.layer === "crowd", null, { timeout: 30000 });
  await page.click("#smooth");
  await page.waitForFunction(() => window.hexpulse.smoothed > 0, null, { timeout: 30000 });
  say({ step: "smoothed", ...(await page.evaluate(() => ({ ...window.hexpulse }))) });
  await page.screenshot({ path: shot.replace(/\.png$/, "-smoothed.png") });
} catch (err) {
  say({ step: "failed", message: String(err && err.message) });
} finally {
  await browser.close();
}
