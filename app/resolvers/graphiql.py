"""GraphiQL at ``GET /graphql``, with every file served by this server (app.assets).

The page's fetcher sends the headers typed in GraphiQL's headers pane with
every request (``{"Authorization": "Bearer <token>"}``), and runs
subscriptions over the ``graphql-transport-ws`` socket at the same URL, with
those headers as the ``connection_init`` payload.
"""

from __future__ import annotations

import html

from app.assets import Assets

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GraphiQL · Interview Session API</title>
  <link rel="icon" type="image/png" href="{favicon}">
  <link rel="stylesheet" href="{graphiql_css}">
  <style>html, body {{ margin: 0; height: 100%; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="{react}"></script>
  <script src="{react_dom}"></script>
  <script src="{graphql_ws}"></script>
  <script src="{graphiql}"></script>
  <script>
    const url = new URL(window.location.pathname, window.location.href).toString();
    const socketUrl = url.replace(/^http/, "ws");

    function isSubscription(params, documentAST) {{
      const wanted = params.operationName;
      // GraphiQL's parsed document can lag behind the text just typed: use it
      // only when it is the document being sent.
      const source = documentAST && documentAST.loc && documentAST.loc.source;
      if (source && source.body === params.query) {{
        const ops = documentAST.definitions.filter((d) => d.kind === "OperationDefinition");
        const op = ops.find((d) => !wanted || (d.name && d.name.value === wanted));
        return Boolean(op && op.operation === "subscription");
      }}
      // Without a parsed document: the operation keyword, comments left out.
      const text = (params.query || "").replace(/#[^\n]*/g, "");
      const named = wanted
        ? new RegExp("\\bsubscription\\s+" + wanted + "\\b")
        : /^\s*subscription\b/;
      return named.test(wanted ? text : text.trim());
    }}

    async function* fetcher(params, opts) {{
      const headers = Object.assign({{}}, opts && opts.headers);
      if (isSubscription(params, opts && opts.documentAST)) {{
        const client = graphqlWs.createClient({{
          url: socketUrl, connectionParams: headers, retryAttempts: 0,
        }});
        try {{
          for await (const result of client.iterate(params)) yield result;
        }} catch (error) {{
          // A socket the server closed (4403: a bad token) rejects with its
          // CloseEvent: show its code and reason, not the raw event.
          if (error && typeof error.code === "number") {{
            throw new Error(
              `The socket closed: ${{error.code}} ${{error.reason || ""}}`.trim()
            );
          }}
          throw error;
        }} finally {{
          client.dispose();
        }}
        return;
      }}
      const response = await fetch(url, {{
        method: "POST",
        headers: Object.assign({{
          "content-type": "application/json",
          accept: "application/graphql-response+json, application/json",
        }}, headers),
        body: JSON.stringify(params),
      }});
      yield await response.json();
    }}

    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultEditorToolsVisibility: "headers",
        defaultHeaders: JSON.stringify(
          {{ Authorization: "Bearer <token from: interview-api token>" }}, null, 2
        ),
        shouldPersistHeaders: true,
      }})
    );
  </script>
</body>
</html>
"""


def graphiql_html(assets: Assets) -> str:
    urls = {
        "favicon": assets.url("favicon.png"),
        "graphiql_css": assets.url("graphiql.css"),
        "react": assets.url("react.js"),
        "react_dom": assets.url("react-dom.js"),
        "graphql_ws": assets.url("graphql-ws.js"),
        "graphiql": assets.url("graphiql.js"),
    }
    return TEMPLATE.format(**{k: html.escape(v, quote=True) for k, v in urls.items()})
