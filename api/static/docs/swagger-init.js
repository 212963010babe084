/*
 * Starts Swagger UI on the /docs page of sohoa.
 *
 * Why a file and not an inline <script>: every response carries the Content-Security-Policy
 * "script-src 'self'" (api/security.py), which blocks inline scripts. FastAPI's own /docs page
 * starts Swagger UI with an inline script, so sohoa serves its own page (api/docs.py) that loads
 * this file from /static/docs/ next to swagger-ui-bundle.js (from the fastapi-offline package,
 * so the page also works without internet access).
 *
 * The page passes its settings as data- attributes of <div id="swagger-ui">:
 *   data-openapi-url          the OpenAPI document (with the app's root path)
 *   data-oauth2-redirect-url  Swagger UI's OAuth2 redirect page
 *   data-csrf-token           (optional) the session's CSRF token, sent as X-CSRF-Token with the
 *                             state-changing requests of "Try it out"
 * The options are FastAPI's defaults for Swagger UI.
 */
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  var csrf = node.getAttribute("data-csrf-token");
  var safe = { GET: true, HEAD: true, OPTIONS: true };
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-openapi-url"),
    oauth2RedirectUrl: window.location.origin + node.getAttribute("data-oauth2-redirect-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor: function (request) {
      if (csrf && !safe[(request.method || "GET").toUpperCase()]) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    }
  });
})();
