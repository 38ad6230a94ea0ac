"""GraphiQL at ``GET /graphql`` (a browser asking for HTML), on vendored assets only.

The page loads React, ReactDOM and GraphiQL from ``/static/graphiql/`` (``static/graphiql/
README.md`` lists their versions and licences), never from a CDN, like ``/docs``. It queries
``/graphql`` over HTTP; put the token in GraphiQL's headers editor,
``{"Authorization": "Bearer <token>"}``. Subscriptions need a websocket client (the page does
not open one).
"""

from __future__ import annotations

ASSETS = "/static/graphiql"

PAGE = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>cairn - GraphiQL</title>
    <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
    <link rel="stylesheet" href="{ASSETS}/graphiql.min.css" />
    <script src="{ASSETS}/react.production.min.js"></script>
    <script src="{ASSETS}/react-dom.production.min.js"></script>
    <script src="{ASSETS}/graphiql.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>
      const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher,
          defaultHeaders: '{{"Authorization": "Bearer <token>"}}',
          isHeadersEditorEnabled: true,
        }})
      );
    </script>
  </body>
</html>
"""
