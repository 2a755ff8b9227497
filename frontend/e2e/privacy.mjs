// Loads the transparency page (/privacy) in headless Chromium for tests/integration/api/test_browser.py.
// Usage: node privacy.mjs <base-url> <screenshot.png>
// Prints one JSON line: {"step":"privacy", sections, links, scripts, stylesheets, errors, print_height}.
import { chromium } from "playwright-core";

const [base, shot] = process.argv.slice(2);
const errors = [];
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, errors }) + "\n");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, javaScriptEnabled: false });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("requestfailed", (r) => errors.push("requestfailed: " + r.url()));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.url()}`); });
  const resp = await page.goto(`${base}/privacy`, { waitUntil: "load" });
  const facts = await page.evaluate(() => ({
    title: document.title,
    sections: [...document.querySelectorAll("section h2")].map((h) => h.textContent),
    links: [...document.querySelectorAll("a")].map((a) => a.getAttribute("href")),
    scripts: document.scripts.length,
    stylesheets: [...document.styleSheets].map((s) => s.href),
    styled: getComputedStyle(document.body).maxWidth,
    outline: document.querySelector("svg.outline path")?.getBoundingClientRect().width || 0,
  }));
  await page.screenshot({ path: shot, fullPage: true });
  await page.emulateMedia({ media: "print" });
  const printHeight = await page.evaluate(() => document.body.scrollHeight);
  await page.screenshot({ path: shot.replace(/\.png$/, "-print.png"), fullPage: true });
  say({ step: "privacy", status: resp.status(), ...facts, print_height: printHeight });
} catch (err) {
  say({ step: "failed", message: String(err && err.message) });
} finally {
  await browser.close();
}
