// Apollo Client with its automatic-persisted-queries link, against a running server.
// usage: node apq.mjs <graphql url> <token> <query> [get]  -> JSON {results, requests}
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";

const [uri, token, query, get] = process.argv.slice(2);
const requests = [];
const recordingFetch = async (input, init = {}) => {
  const url = new URL(typeof input === "string" ? input : input.url);
  const body = init.body ? JSON.parse(init.body) : null;
  const response = await fetch(input, init);
  const text = await response.clone().text();
  requests.push({
    method: init.method ?? "GET",
    hasQuery: Boolean(body ? body.query : url.searchParams.get("query")),
    hash: Boolean(body ? body.extensions?.persistedQuery : url.searchParams.get("extensions")),
    status: response.status,
    answer: text.slice(0, 300),
  });
  return response;
};
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

async function run() {
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: get === "get" }).concat(
    new HttpLink({ uri, fetch: recordingFetch, headers: { authorization: `Bearer ${token}` } }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const result = await client.query({ query: gql(query), fetchPolicy: "no-cache" });
  return result.data;
}
const results = [await run(), await run()]; // a new client each time: the second finds it stored
console.log(JSON.stringify({ results, requests }));
