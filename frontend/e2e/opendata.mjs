// Loads the open-data index (/open-data/) in headless Chromium for tests/integration/opendata/test_browser.py.
// Usage: node opendata.mjs <base-url> <screenshot.png>
// Prints one JSON line: {"step":"opendata", status, title, links, scripts, rows, errors}.
import { chromium } from "playwright-core";

const [base, shot] = process.argv.slice(2);
const errors = [];
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, errors }) + "\n");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => errors.push("requestfailed: " + r.url()));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.url()}`); });
  const resp = await page.goto(`${base}/open-data/`, { waitUntil: "load" });
  const facts = await page.evaluate(() => ({
    title: document.title,
    links: [...document.querySelectorAll("tbody a")].map((a) => a.href),
    scripts: document.scripts.length,
    rows: document.querySelectorAll("tbody tr").length,
  }));
  await page.screenshot({ path: shot, fullPage: true });
  // Every listed file must download from the index's own links.
  const fetched = [];
  for (const href of facts.links) {
    const r = await page.request.get(href);
    fetched.push({ href, status: r.status(), type: r.headers()["content-type"] || "" });
  }
  say({ step: "opendata", status: resp.status(), ...facts, fetched });
} catch (err) {
  say({ step: "failed", message: String(err && err.message) });
} finally {
  await browser.close();
}
