// Swagger UI for /openapi.json, from this server's own copy (no CDN; the page's CSP allows none).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
