// The graphql-ws library's own client (graphql-transport-ws), as a frontend uses it:
// subscribe to myEvents with the token in connectionParams, write over REST, read the events.
// usage: node ws.mjs <api base> <token> <writes>  -> JSON {events, closed}
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [base, token, writes] = process.argv.slice(2);
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
let connected;
const ready = new Promise((resolve) => (connected = resolve));
const client = createClient({
  url: base.replace(/^http/, "ws") + "/graphql",
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => connected() },
});
const events = [];
const done = new Promise((resolve, reject) => {
  const dispose = client.subscribe(
    { query: "subscription { myEvents { cursor type sessionId interaction { question } } }" },
    {
      next: (value) => {
        if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
        events.push(value.data.myEvents);
        if (events.length === Number(writes) + 1) {
          dispose();
          resolve();
        }
      },
      error: (e) => reject(e),
      complete: () => resolve(),
    },
  );
});
await ready;
await new Promise((r) => setTimeout(r, 300));
const session = await (
  await fetch(`${base}/interview-sessions`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ jobContext: { title: "Live", company: "Node" } }),
  })
).json();
for (let k = 0; k < Number(writes); k++) {
  await fetch(`${base}/interview-sessions/interactions`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ sessionId: session.id, question: `Q${k}` }),
  });
}
await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 15000))]);
await client.dispose();
console.log(JSON.stringify({ events, session: session.id }));
