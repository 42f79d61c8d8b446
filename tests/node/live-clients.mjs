// Real clients of the live streams and the docs pages, as a frontend uses them
// (driven by tests/frontend/test_live_clients.py). The two reconnect scenarios
// reach the server through a TCP proxy this script can cut, as when a server
// restarts or a network drops: every open connection is destroyed and new ones
// are refused until it is restored. Writes go straight to the server, so
// changes happen while the clients are cut off.
//
// usage: node live-clients.mjs eventsource <api base> <token>
//        node live-clients.mjs reconnect   <api base> <token>
//        node live-clients.mjs graphiql    <api base> <bad token> <screenshot dir>
//        node live-clients.mjs redoc       <api base> <screenshot dir>
// The last line printed is the JSON the test reads.
import net from "node:net";
import { createClient } from "graphql-ws";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const [mode, base, ...rest] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// ---------------------------------------------------------------- the proxy

const HEAD = /(GET|POST|PUT|DELETE|OPTIONS) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/g;

async function tcpProxy(target) {
  const targetPort = Number(new URL(target).port);
  const open = new Set();
  const requests = []; // every request head seen: path (token hidden), Last-Event-ID
  let server = null;
  let port = 0;
  const connection = (client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const side of [client, upstream]) {
      side.on("error", end);
      side.on("close", end);
    }
    client.on("data", (chunk) => {
      for (const [, method, path, headers] of chunk.toString("latin1").matchAll(HEAD)) {
        const lastEventId = /^last-event-id: *(.*)$/im.exec(headers);
        requests.push({
          method,
          path: path.replace(/access_token=[^&]*/, "access_token=***"),
          lastEventId: lastEventId ? lastEventId[1].trim() : null,
        });
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const listen = () =>
    new Promise((resolve, reject) => {
      server = net.createServer(connection);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = server.address().port;
        resolve();
      });
    });
  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    // Drop every connection and refuse new ones.
    cut: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
    restore: listen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------- writes (straight to the server)

function writer(token) {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const call = async (method, path, body) => {
    const response = await fetch(`${base}${path}`, { method, headers, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  return {
    session: async (title) =>
      (await call("POST", "/interview-sessions", { jobContext: { title, company: "Live" } })).id,
    interaction: (sessionId, question) =>
      call("POST", "/interview-sessions/interactions", { sessionId, question }),
    metric: (sessionId) => call("POST", "/interview-sessions/metrics", { sessionId, totalLatencyMs: 7 }),
    status: (id, status) => call("PUT", `/interview-sessions/${id}`, { status }),
  };
}

// ---------------------------------------------------------------- Chromium, nothing but 127.0.0.1

async function launch(out) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  out.blocked = [];
  out.requested = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    out.requested.push(url.replace(/access_token=[^&]*/, "access_token=***"));
    if (new URL(url).hostname === "127.0.0.1") return route.continue();
    out.blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  out.console = [];
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.console.push(`pageerror: ${e.message}`));
  return { browser, page };
}

// ---------------------------------------------------------------- EventSource in Chromium

async function eventSourceScenario(token) {
  const out = { written: { all: [], one: [] } };
  const proxy = await tcpProxy(base);
  const write = writer(token);
  const { browser, page } = await launch(out);
  try {
    await page.goto(`${proxy.url}/health`); // same origin as the streams
    await page.evaluate(() => {
      const types = [
        "session_created", "session_updated", "status_changed", "session_deleted",
        "interaction_created", "interaction_updated", "metrics_recorded", "message",
      ];
      window.streams = {};
      window.openStream = (name, url) => {
        const seen = { events: [], opens: 0, errors: 0, statesOnError: [] };
        const source = new EventSource(url);
        for (const type of types) {
          source.addEventListener(type, (e) => {
            const data = JSON.parse(e.data);
            seen.events.push({
              id: e.lastEventId, event: e.type, cursor: data.cursor, type: data.type, sessionId: data.sessionId,
            });
          });
        }
        source.onopen = () => seen.opens++;
        source.onerror = () => {
          seen.errors++;
          seen.statesOnError.push(source.readyState);
        };
        window.streams[name] = seen;
        window[`source_${name}`] = source;
      };
    });
    const state = () => page.evaluate(() => {
      const s = {};
      for (const [name, seen] of Object.entries(window.streams)) {
        s[name] = { ...seen, readyState: window[`source_${name}`].readyState };
      }
      return s;
    });
    const waitFor = (fn, what, arg = null) =>
      page.waitForFunction(fn, arg, { timeout: 15000 }).catch(async (e) => {
        throw new Error(`${what}: ${e.message}\n${JSON.stringify(await state())}`);
      });
    const summary = (streams) => Object.fromEntries(
      Object.entries(streams).map(([name, { events, ...rest }]) => [name, { events: events.length, ...rest }]),
    );
    const open = (name, path) =>
      page.evaluate(([n, url]) => window.openStream(n, url), [name, `${proxy.url}${path}?access_token=${token}`]);
    const counts = (all, one) =>
      waitFor(
        ([n, m]) => window.streams.all.events.length >= n && window.streams.one.events.length >= m,
        `${all} and ${one} events`,
        [all, one],
      );
    const both = (all, one) => { out.written.all.push(...all); out.written.one.push(...one); };

    await open("all", "/interview-sessions/events");
    await waitFor(() => window.streams.all.opens === 1, "the first stream opening");
    const a = await write.session("EventSource A");
    both(["session_created"], []);
    await open("one", `/interview-sessions/${a}/events`);
    await waitFor(() => window.streams.one.opens === 1, "the session's stream opening");
    await write.interaction(a, "Before the drop");
    await write.metric(a);
    both(["interaction_created", "metrics_recorded"], ["interaction_created", "metrics_recorded"]);
    await counts(3, 2);
    out.beforeCut = summary(await state());

    // The drop: both EventSources see their connection fail and stay open (CONNECTING).
    await proxy.cut();
    await waitFor(() => window.streams.all.errors >= 1 && window.streams.one.errors >= 1, "the drop to be noticed");
    await write.interaction(a, "During the outage");
    await write.status(a, "paused");
    const b = await write.session("EventSource B");
    both(["interaction_created", "status_changed", "session_created"], ["interaction_created", "status_changed"]);
    await sleep(2600); // one reconnect attempt (retry: 2000) is refused
    out.duringOutage = summary(await state());
    await proxy.restore();

    // On their own, with Last-Event-ID: the outage's events, then live ones.
    await waitFor(() => window.streams.all.opens === 2 && window.streams.one.opens === 2, "the reconnects");
    await write.status(a, "active");
    await write.interaction(b, "After the reconnect");
    both(["status_changed", "interaction_created"], ["status_changed"]);
    await counts(8, 5);
    await sleep(300); // anything extra (a duplicate) would show up now
    out.streams = await state();
    out.sessions = { a, b };
    out.sseRequests = proxy.requests.filter((r) => r.path.includes("/events"));
  } finally {
    await browser.close();
    await proxy.close();
  }
  return out;
}

// ---------------------------------------------------------------- graphql-ws's own reconnect

async function reconnectScenario(token) {
  const proxy = await tcpProxy(base);
  const url = proxy.url.replace(/^http/, "ws") + "/graphql";
  const write = writer(token);

  // withCursor: the documented recipe (connectionParams name the last cursor seen).
  function start(withCursor) {
    const seen = { events: [], connected: 0, closed: 0, connectionParams: [], errors: [], completed: false };
    let lastCursor;
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: () => {
        const params = withCursor
          ? { Authorization: `Bearer ${token}`, after: lastCursor }
          : { Authorization: `Bearer ${token}` };
        seen.connectionParams.push(params.after ?? null);
        return params;
      },
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: () => sleep(250),
      on: { connected: () => seen.connected++, closed: () => seen.closed++ },
    });
    client.subscribe(
      { query: "subscription { myEvents { cursor type sessionId } }" },
      {
        next: (value) => {
          if (value.errors) return seen.errors.push(value.errors);
          seen.events.push(value.data.myEvents);
          lastCursor = value.data.myEvents.cursor;
        },
        error: (e) => seen.errors.push(String(e && e.code ? `${e.code} ${e.reason}` : e)),
        complete: () => (seen.completed = true),
      },
    );
    return { seen, client };
  }

  const recipe = start(true);
  const control = start(false);
  const written = [];
  let result;
  try {
    await until(() => recipe.seen.connected === 1 && control.seen.connected === 1, "both connecting");
    await sleep(500); // the subscriptions reach the server
    const a = await write.session("graphql-ws A");
    await write.interaction(a, "Before the drop");
    await write.metric(a);
    written.push("SESSION_CREATED", "INTERACTION_CREATED", "METRICS_RECORDED");
    await until(() => recipe.seen.events.length === 3 && control.seen.events.length === 3, "the first events");

    await proxy.cut();
    await until(() => recipe.seen.closed >= 1 && control.seen.closed >= 1, "both noticing the drop");
    await write.interaction(a, "During the outage");
    await write.status(a, "paused");
    const b = await write.session("graphql-ws B");
    written.push("INTERACTION_CREATED", "STATUS_CHANGED", "SESSION_CREATED");
    await sleep(1000); // a few refused attempts
    await proxy.restore();

    await until(() => recipe.seen.connected === 2 && control.seen.connected === 2, "both reconnecting");
    await until(() => recipe.seen.events.length >= 6, "the recipe's replay");
    await sleep(500); // the control's resubscription reaches the server
    await write.status(a, "active");
    await write.interaction(b, "After the reconnect");
    written.push("STATUS_CHANGED", "INTERACTION_CREATED");
    await until(() => recipe.seen.events.length >= 8 && control.seen.events.length >= 5, "the live events");
    await sleep(300); // anything extra (a duplicate) would show up now
    result = structuredClone({ written, recipe: recipe.seen, control: control.seen });
  } catch (e) {
    console.log(JSON.stringify({ failed: String(e), recipe: recipe.seen, control: control.seen }));
    throw e;
  } finally {
    await recipe.client.dispose();
    await control.client.dispose();
    await proxy.close();
  }
  return result;
}

// ---------------------------------------------------------------- GraphiQL shows why a socket closed

async function graphiqlScenario(badToken, shots) {
  const out = {};
  const { browser, page } = await launch(out);
  try {
    await page.goto(`${base}/graphql`, { waitUntil: "load" });
    await page.waitForSelector(".graphiql-execute-button", { timeout: 20000 });
    await page.locator(".graphiql-query-editor .CodeMirror").first().click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText("subscription { myEvents { cursor type sessionId } }");
    await page.locator(".graphiql-editor-tool .CodeMirror").last().click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${badToken}` }));
    await page.click(".graphiql-execute-button");
    try {
      await page.waitForFunction(
        () => (document.querySelector(".graphiql-response")?.innerText || "").trim() !== "",
        null,
        { timeout: 20000 },
      );
      await sleep(300); // the whole answer
    } finally {
      out.response = await page.locator(".graphiql-response").innerText();
      await page.screenshot({ path: `${shots}/graphiql-closed.png` });
    }
  } finally {
    await browser.close();
  }
  return out;
}

// ---------------------------------------------------------------- ReDoc, offline

async function redocScenario(shots) {
  const out = {};
  const { browser, page } = await launch(out);
  try {
    await page.goto(`${base}/schema/redoc`, { waitUntil: "load" });
    await page.waitForSelector(".menu-content [role=menuitem]", { timeout: 20000 });
    await page.waitForLoadState("networkidle");
    out.tags = await page
      .locator(".menu-content li[data-item-id^='tag/']:not([data-item-id*='/operation/'])")
      .evaluateAll((items) => items.map((i) => i.getAttribute("aria-label")));
    await page.click(".menu-content li[data-item-id='tag/interview-sessions'] > label");
    const operations = page.locator(".menu-content li[data-item-id*='/operation/']");
    await operations.first().waitFor({ state: "visible" });
    out.operations = [];
    for (const item of await operations.all()) {
      if (!(await item.isVisible())) continue;
      const id = (await item.getAttribute("data-item-id")).split("/operation/")[1];
      const label = await item.getAttribute("aria-label");
      out.operations.push({ id, label, method: await item.locator(".operation-type").innerText() });
    }
    out.images = await page.evaluate(() => Array.from(document.images, (i) => i.src.slice(0, 60)));
    out.title = await page.locator(".api-info h1").first().innerText();
    await page.screenshot({ path: `${shots}/redoc.png` });
  } finally {
    await browser.close();
  }
  return out;
}

const scenarios = {
  eventsource: () => eventSourceScenario(rest[0]),
  reconnect: () => reconnectScenario(rest[0]),
  graphiql: () => graphiqlScenario(rest[0], rest[1]),
  redoc: () => redocScenario(rest[0]),
};
if (!scenarios[mode]) throw new Error(`unknown scenario ${mode}`);
console.log(JSON.stringify(await scenarios[mode]()));
