// A frontend's use of GraphQL Code Generator's persisted documents, against a
// server started with GRAPHQL_TRUSTED_DOCUMENTS=<the generated manifest>.
//
// The client preset's document nodes carry their manifest id in __meta__.hash;
// a client sends that id instead of the document. Node 20 cannot import the
// generated graphql.ts, so its document nodes (JSON object literals) are read
// from the file as they are.
//
// usage: node codegen/client.mjs <api base> <token> <generated dir> [app|recipe]
//   app (default): plain fetch and graphql-ws send documentId = __meta__.hash
//     (query, mutation, subscription), what is refused, and Apollo Client's
//     persisted-query link with a sha256 id's bare hex;
//   recipe: the hash sent as GraphQL Code Generator's docs show it,
//     extensions.persistedQuery.sha256Hash = __meta__.hash (fetch, Apollo)
//   -> one JSON line: what each client sent and got back
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [base, token, dir, mode = "app"] = process.argv.slice(2);
const url = `${base}/graphql`;
const auth = { authorization: `Bearer ${token}` };

const documents = {};
const source = readFileSync(join(dir, "graphql.ts"), "utf8");
for (const m of source.matchAll(/^export const (\w+)Document = (\{.*\}) as unknown as DocumentNode</gm)) {
  documents[m[1]] = JSON.parse(m[2]);
}
const operationName = (doc) =>
  doc.definitions.find((d) => d.kind === "OperationDefinition").name.value;

// ------------------------------------------------ plain fetch: documentId instead of query
async function execute(doc, variables, method = "POST") {
  const documentId = doc.__meta__.hash;
  let response;
  if (method === "GET") {
    const params = new URLSearchParams({
      documentId,
      operationName: operationName(doc),
      variables: JSON.stringify(variables),
    });
    response = await fetch(`${url}?${params}`, { headers: auth });
  } else {
    response = await fetch(url, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ documentId, operationName: operationName(doc), variables }),
    });
  }
  return { documentId, method, status: response.status, body: await response.json() };
}

async function post(body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

// ------------------------------------------------ Apollo Client's persisted-query link
// (hash-only requests: extensions.persistedQuery.sha256Hash = generateHash(document))
async function apollo(generateHash) {
  const requests = [];
  const recordingFetch = async (input, init = {}) => {
    const response = await fetch(input, init);
    requests.push({
      method: init.method ?? "GET",
      url: String(input).replace(base, ""),
      body: init.body ? JSON.parse(init.body) : null,
      status: response.status,
      answer: (await response.clone().text()).slice(0, 400),
    });
    return response;
  };
  const link = createPersistedQueryLink({ generateHash }).concat(
    new HttpLink({ uri: url, fetch: recordingFetch, headers: auth }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  try {
    const result = await client.query({
      query: documents.SessionsWithInteractions,
      variables: { limit: 10 },
      fetchPolicy: "no-cache",
    });
    return { data: result.data, requests };
  } catch (e) {
    return { error: String(e.message ?? e), requests };
  }
}

async function app() {
  // ------------------------------------------------ graphql-ws: subscribe by documentId
  // graphql-ws checks that a subscribe payload has a string `query`; the replacer
  // takes it out of the message it sends, leaving documentId.
  const withoutQuery = (key, value) => {
    if (key === "payload" && value && typeof value === "object" && "documentId" in value) {
      const { query: _query, ...rest } = value;
      return rest;
    }
    return value;
  };
  let connected;
  const ready = new Promise((resolve) => (connected = resolve));
  const ws = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    jsonMessageReplacer: withoutQuery,
    retryAttempts: 0,
    on: { connected: () => connected() },
  });
  const events = [];
  let gotEvent;
  let timer;
  const firstEvent = new Promise((resolve, reject) => {
    gotEvent = resolve;
    timer = setTimeout(() => reject(new Error("no event within 15 s")), 15000);
  });
  const subscriptionErrors = [];
  const MyEvents = documents.MyEvents;
  ws.subscribe(
    { query: "", documentId: MyEvents.__meta__.hash, operationName: "MyEvents", variables: {} },
    {
      next: (value) => {
        if (value.errors) subscriptionErrors.push(value.errors);
        else {
          events.push(value.data.myEvents);
          gotEvent();
        }
      },
      error: (e) => {
        subscriptionErrors.push(Array.isArray(e) ? e : String(e));
        gotEvent();
      },
      complete: () => {},
    },
  );
  await ready;
  await new Promise((r) => setTimeout(r, 300)); // the subscription is registered

  // ------------------------------------------------ what is refused: nothing runs
  const untrusted = {
    mutation: await post({
      query: 'mutation { createSession(input: {jobContext: {title: "X", company: "Y"}}) { id } }',
    }),
    query: await post({ query: "query Other { sessions { id } }" }),
    id: await post({ documentId: `sha256:${"0".repeat(64)}` }),
  };

  // ------------------------------------------------ the app's operations, by id
  const created = await execute(documents.CreateSession, {
    input: { jobContext: { title: "Frontend", company: "Codegen", interviewType: "TECHNICAL" } },
  });
  const listed = await execute(documents.SessionsWithInteractions, { limit: 10 });
  const listedByGet = await execute(documents.SessionsWithInteractions, { limit: 10 }, "GET");
  await firstEvent;
  clearTimeout(timer);
  await ws.dispose();
  // Apollo Client's own persisted-query link, fed the sha256 id without its
  // prefix: extensions.persistedQuery.sha256Hash wants bare hex.
  const apolloBareHex = documents.SessionsWithInteractions.__meta__.hash.startsWith("sha256:")
    ? await apollo((doc) => doc.__meta__.hash.replace(/^sha256:/, ""))
    : null;
  return { created, listed, listedByGet, events, subscriptionErrors, untrusted, apolloBareHex };
}

// The codegen docs' fetch example, and Apollo's link fed __meta__.hash as it is.
async function recipe() {
  const doc = documents.SessionsWithInteractions;
  const fetched = await post({
    operationName: "SessionsWithInteractions",
    variables: { limit: 10 },
    extensions: { persistedQuery: { version: 1, sha256Hash: doc.__meta__.hash } },
  });
  const apolloAsDocumented = await apollo((d) => d.__meta__.hash);
  return { fetched, apolloAsDocumented };
}

const hashes = Object.fromEntries(
  Object.entries(documents).map(([name, doc]) => [name, doc.__meta__?.hash ?? null]),
);
const result = mode === "recipe" ? await recipe() : await app();
console.log(JSON.stringify({ documents: hashes, ...result }));
