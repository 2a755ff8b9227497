// Drives the dashboard's alert feed in headless Chromium for tests/integration/alerts/test_dashboard.py.
// Usage: node alerts.mjs <base-url> <api-key>. Prints one JSON object: the feed's lines and errors.
import { chromium } from "playwright-core";

const [base, key] = process.argv.slice(2);
const errors = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  await page.goto(`${base}/#key=${encodeURIComponent(key)}`);
  await page.waitForFunction(() => !document.getElementById("alerts").hidden, null, { timeout: 30000 });
  const lines = await page.evaluate(() =>
    [...document.querySelectorAll("#alert-list li")].map((li) => ({ text: li.textContent, cls: li.className })));
  process.stdout.write(JSON.stringify({ lines, errors }) + "\n");
} finally {
  await browser.close();
}
