// Headless Chromium (Debian's package) with every host but 127.0.0.1 blocked:
// GraphiQL runs a query with an Authorization header typed into its headers pane,
// Swagger UI lists the operations and runs a REST call with a token,
// and a page on another origin calls both faces and reads the exposed headers.
// usage: node browser.mjs <api base> <token> <other-origin page url> <screenshot dir>
import { chromium } from "playwright-core";

const [base, token, otherPage, shots] = process.argv.slice(2);
const out = { blocked: [], steps: {} };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route("**/*", (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === "127.0.0.1") return route.continue();
    out.blocked.push(route.request().url());
    return route.abort();
  });
  const page = await context.newPage();
  out.console = [];
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.console.push(`pageerror: ${e.message}`));

  // ---- GraphiQL
  await page.goto(`${base}/graphql`, { waitUntil: "load" });
  await page.waitForSelector(".graphiql-execute-button", { timeout: 20000 });
  const editors = page.locator(".graphiql-query-editor .CodeMirror");
  await editors.first().click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText("{ sessions(limit: 5) { id status jobContext { title } } }");
  const headers = page.locator(".graphiql-editor-tool .CodeMirror").last();
  await headers.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(
    () => (document.querySelector(".graphiql-response")?.innerText || "").includes('"sessions"'),
    null,
    { timeout: 20000 },
  );
  out.steps.graphiql = await page.locator(".graphiql-response").innerText();
  await page.screenshot({ path: `${shots}/graphiql.png` });

  // ---- GraphiQL runs a subscription over the socket, with the same headers
  await editors.first().click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText("subscription { myEvents { type session { jobContext { title } } } }");
  await page.click(".graphiql-execute-button");
  await page.waitForTimeout(1000);
  await fetch(`${base}/interview-sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ jobContext: { title: "Live in GraphiQL", company: "Socket" } }),
  });
  try {
    await page.waitForFunction(
      () => (document.querySelector(".graphiql-response")?.innerText || "").includes("SESSION_CREATED"),
      null,
      { timeout: 20000 },
    );
  } catch (e) {
    await page.screenshot({ path: `${shots}/graphiql-subscription-failed.png` });
    console.log(JSON.stringify({ failed: String(e), console: out.console,
      response: await page.locator(".graphiql-response").innerText() }));
    throw e;
  }
  out.steps.subscription = await page.locator(".graphiql-response").innerText();
  await page.screenshot({ path: `${shots}/graphiql-subscription.png` });
  await page.click(".graphiql-execute-button"); // stop it

  // ---- Swagger UI: the operations, then a REST call with the token
  await page.goto(`${base}/schema/swagger`, { waitUntil: "load" });
  await page.waitForSelector(".opblock", { timeout: 20000 });
  out.steps.operations = await page.locator(".opblock-summary-path").allInnerTexts();
  await page.click("button.authorize");
  await page.fill(".modal-ux input", token);
  await page.click(".modal-ux button.authorize");
  await page.click(".modal-ux button.btn-done");
  const op = page.locator(".opblock-get", { has: page.locator('[data-path="/interview-sessions/active"]') });
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  await op.locator(".live-responses-table tbody .response-col_status").first().waitFor({ timeout: 20000 });
  out.steps.swaggerStatus = (await op.locator(".live-responses-table tbody .response-col_status").first().innerText()).trim();
  out.steps.swaggerBody = await op.locator(".live-responses-table .microlight").first().innerText();
  await page.screenshot({ path: `${shots}/swagger.png`, fullPage: false });

  // ---- A page on another origin calling both faces
  await page.goto(`${otherPage}#${encodeURIComponent(base)}|${token}`, { waitUntil: "load" });
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 20000 });
  out.steps.crossOrigin = await page.evaluate(() => window.__result);
  await page.screenshot({ path: `${shots}/cross-origin.png` });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
