// Starts Swagger UI on /docs. Kept out of the HTML so the page runs under a CSP without
// 'unsafe-inline'; the schema URL comes from the page (data-openapi-url).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
