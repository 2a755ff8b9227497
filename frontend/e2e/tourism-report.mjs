// Loads a tourism area's printable report in headless Chromium for tests/integration/tourism/test_report.py.
// Usage: node tourism-report.mjs <url> <api-key> <screenshot.png>
// Prints one JSON line: {"step":"report", status, title, svgs, scripts, bars, curve, errors}.
import { chromium } from "playwright-core";

const [url, key, shot] = process.argv.slice(2);
const errors = [];
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, errors }) + "\n");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({
    viewport: { width: 900, height: 1200 },
    extraHTTPHeaders: { Authorization: `Bearer ${key}` },
  });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => errors.push("requestfailed: " + r.url()));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.url()}`); });
  const resp = await page.goto(url, { waitUntil: "load" });
  const facts = await page.evaluate(() => ({
    title: document.title,
    svgs: document.querySelectorAll("svg.chart").length,
    scripts: document.scripts.length,
    bars: document.querySelectorAll("rect.bar").length,
    // The drawn size of the occupancy curve: zero if the chart did not lay out.
    curve: (() => { const c = document.querySelector("polyline.curve"); return c ? c.getBBox().width : 0; })(),
  }));
  await page.screenshot({ path: shot, fullPage: true });
  say({ step: "report", status: resp.status(), ...facts });
} catch (err) {
  say({ step: "failed", message: String(err && err.message) });
} finally {
  await browser.close();
}
