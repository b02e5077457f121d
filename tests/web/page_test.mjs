// page_test.mjs: drives the hub's operator page in headless Chromium
// (Debian's /usr/bin/chromium, through playwright-core) and reports what
// it saw as JSON. tests/integration/test_web_page.py starts PostgreSQL, a
// hub and agents, runs this script and checks the report.
//
//   node page_test.mjs --url http://127.0.0.1:PORT/ --branches a,b,c \
//       --rejects CODE --screenshot OUT.png --report OUT.json
//
// Steps: load the page; wait for one row per branch and for "#updated";
// read every row (classes, cells, background colours); click
// th[data-sort=queue_events] twice and read the order each time; take the
// screenshot; click the rejects link of --rejects and read #list; follow
// the list's "#" link and check the list closes. Every request the page
// makes is recorded, and any outside the hub's origin is refused.
//
// playwright-core is not in the source tree: test_web_page.py installs it
// with npm into the build folder and passes that folder in
// BS_WEB_NODE_DIR. Without it, a plain `import` is tried (npm install in
// tests/web). Exit 0 when every step ran (the report says what was seen),
// 1 when a step failed (timeout, no browser); the report is written in
// both cases.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const CHROMIUM = "/usr/bin/chromium";
// Headless in this sandbox: no GPU, no background connections (the
// network is closed, and Chromium's own requests would only fail).
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function parseArgs(argv) {
  const o = { branches: [], rejects: null, screenshot: null, report: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    i++;
    if (k === "--url") o.url = v;
    else if (k === "--branches") o.branches = v.split(",").filter(Boolean);
    else if (k === "--rejects") o.rejects = v;
    else if (k === "--screenshot") o.screenshot = v;
    else if (k === "--report") o.report = v;
    else if (k === "--timeout-ms") o.timeout = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!o.url) throw new Error("--url is required");
  return o;
}

async function loadPlaywright() {
  const dir = process.env.BS_WEB_NODE_DIR;
  if (dir) {
    // createRequire resolves from <dir>/node_modules.
    const require = createRequire(path.join(path.resolve(dir), "noop.js"));
    return require("playwright-core");
  }
  return await import("playwright-core");
}

// rows reads every branch row of #branches in display order.
async function readRows(page) {
  return await page.$$eval("#branches tbody tr[data-branch]", (trs) =>
    trs.map((tr) => {
      const cell = (c) => {
        const td = tr.querySelector("td." + c);
        return td ? td.textContent.trim() : null;
      };
      const link = (c) => {
        const a = tr.querySelector("a." + c);
        return a ? { href: a.getAttribute("href"), text: a.textContent.trim() } : null;
      };
      const bg = (el) => (el ? getComputedStyle(el).backgroundColor : null);
      return {
        branch: tr.getAttribute("data-branch"),
        classes: [...tr.classList],
        state: cell("c-state"),
        queue: cell("c-queue"),
        age: cell("c-age"),
        seen: cell("c-seen"),
        version: cell("c-version"),
        rejects: cell("c-rejects"),
        conflicts: cell("c-conflicts"),
        error: cell("c-error"),
        rejectsLink: link("open-rejects"),
        conflictsLink: link("open-conflicts"),
        rowBackground: bg(tr),
        cellBackground: bg(tr.querySelector("td.c-state") || tr.querySelector("td")),
      };
    }),
  );
}

async function headerClass(page, key) {
  return await page.$eval(`#branches th[data-sort="${key}"]`, (th) => [...th.classList]);
}

async function order(page) {
  return await page.$$eval("#branches tbody tr[data-branch]", (trs) =>
    trs.map((tr) => {
      const td = tr.querySelector("td.c-queue");
      return { branch: tr.getAttribute("data-branch"), queue: td ? td.textContent.trim() : null };
    }),
  );
}

// sortBy clicks a header and waits until it shows a sort class that
// differs from the one it had (the first click may give either).
async function sortBy(page, key, timeout) {
  const before = (await headerClass(page, key)).filter((c) => c.startsWith("sorted-")).join(" ");
  await page.click(`#branches th[data-sort="${key}"]`);
  await page.waitForFunction(
    ([k, b]) => {
      const th = document.querySelector(`#branches th[data-sort="${k}"]`);
      const now = [...th.classList].filter((c) => c.startsWith("sorted-")).join(" ");
      return now !== "" && now !== b;
    },
    [key, before],
    { timeout },
  );
  return { headerClasses: await headerClass(page, key), order: await order(page) };
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const scale = Math.max(1, Number(process.env.BS_TIME_SCALE || 1));
  const timeout = (opt.timeout || 30000) * scale;
  const origin = new URL(opt.url).origin;
  const report = {
    url: opt.url,
    origin,
    requests: [],
    outside: [],
    pageErrors: [],
    consoleErrors: [],
    steps: [],
  };
  const step = (s) => {
    report.steps.push(s);
    console.error(`page_test: ${s}`);
  };
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bs-chromium-"));
  let context = null;
  let failed = null;
  try {
    const { chromium } = await loadPlaywright();
    step("launch " + CHROMIUM);
    // launchPersistentContext: the fresh --user-data-dir (Playwright
    // refuses it in args and takes it here).
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
      timeout,
    });
    context.setDefaultTimeout(timeout);
    // Every request goes through here: same-origin ones go on, any other
    // is recorded and refused (the page must work offline).
    await context.route("**/*", (route) => {
      const u = route.request().url();
      let same = false;
      try {
        same = new URL(u).origin === origin;
      } catch (e) {
        same = false;
      }
      if (same || u.startsWith("data:") || u.startsWith("blob:")) {
        report.requests.push(u);
        return route.continue();
      }
      report.outside.push(u);
      return route.abort();
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (e) => report.pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") report.consoleErrors.push(m.text());
    });

    step("load " + opt.url);
    const resp = await page.goto(opt.url, { waitUntil: "load" });
    report.status = resp ? resp.status() : null;
    report.contentType = resp ? resp.headers()["content-type"] || null : null;

    step("wait for a row per branch and #updated");
    await page.waitForFunction(
      (codes) => {
        const rows = new Set(
          [...document.querySelectorAll("#branches tbody tr[data-branch]")].map((tr) =>
            tr.getAttribute("data-branch"),
          ),
        );
        const up = document.querySelector("#updated");
        return codes.every((c) => rows.has(c)) && up && /updated \d\d:\d\d:\d\d/.test(up.textContent);
      },
      opt.branches,
      { timeout },
    );
    report.title = await page.title();
    report.rows = await readRows(page);
    report.summary = await page.$eval("#summary", (e) => e.textContent.trim()).catch(() => null);
    report.updated = await page.$eval("#updated", (e) => e.textContent.trim()).catch(() => null);
    report.errorText = await page
      .$eval("#error", (e) => (e.offsetParent === null ? "" : e.textContent.trim()))
      .catch(() => null);
    report.headers = await page.$$eval("#branches th[data-sort]", (ths) =>
      ths.map((th) => th.getAttribute("data-sort")),
    );
    report.chart = await page
      .$eval("svg#chart", (svg) => ({
        total: svg.querySelectorAll("path.series-total").length,
        series: [...svg.querySelectorAll("path.series")].map((p) => p.getAttribute("data-branch")),
        text: [...svg.querySelectorAll("text")].map((t) => t.textContent.trim()).filter(Boolean),
      }))
      .catch(() => null);

    step("sort by queue_events (two clicks)");
    report.sort = [];
    report.sort.push(await sortBy(page, "queue_events", timeout));
    report.sort.push(await sortBy(page, "queue_events", timeout));
    // Leave it largest first for the screenshot.
    if (report.sort[1].headerClasses.includes("sorted-asc")) {
      report.sort.push(await sortBy(page, "queue_events", timeout));
    }

    if (opt.screenshot) {
      step("screenshot " + opt.screenshot);
      fs.mkdirSync(path.dirname(path.resolve(opt.screenshot)), { recursive: true });
      await page.screenshot({ path: opt.screenshot, fullPage: true });
      report.screenshot = opt.screenshot;
    }

    if (opt.rejects) {
      step(`open the rejects list of ${opt.rejects}`);
      const link = `#branches tr[data-branch="${opt.rejects}"] a.open-rejects`;
      await page.click(link);
      await page.waitForSelector("#list", { state: "visible", timeout });
      await page.waitForFunction(() => document.querySelectorAll("#list-table tbody tr").length > 0, null, {
        timeout,
      });
      report.list = await page.$eval("#list", (s) => {
        const h = s.querySelector("h1, h2, h3, h4, caption");
        const table = s.querySelector("#list-table");
        return {
          heading: h ? h.textContent.trim() : null,
          headers: table ? [...table.querySelectorAll("th")].map((th) => th.textContent.trim()) : [],
          rows: table
            ? [...table.querySelectorAll("tbody tr")].map((tr) =>
                [...tr.querySelectorAll("td")].map((td) => td.textContent.trim()),
              )
            : [],
          closeLinks: [...s.querySelectorAll('a[href="#"]')].length,
        };
      });
      report.list.hash = await page.evaluate(() => location.hash);
      if (opt.screenshot) {
        const p = opt.screenshot.replace(/\.png$/, "") + "-rejects.png";
        await page.screenshot({ path: p, fullPage: true });
        report.listScreenshot = p;
      }
      step("close the list");
      const close = await page.$('#list a[href="#"]');
      if (close) {
        await close.click();
      } else {
        await page.evaluate(() => {
          location.hash = "#";
        });
      }
      await page.waitForSelector("#list", { state: "hidden", timeout });
      report.listClosed = true;
    }
    step("done");
  } catch (e) {
    failed = e;
    report.failure = String(e && e.stack ? e.stack : e);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  const text = JSON.stringify(report, null, 2);
  if (opt.report) fs.writeFileSync(opt.report, text + "\n");
  else console.log(text);
  if (failed) {
    console.error(`page_test: FAIL: ${failed.message || failed}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`page_test: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
