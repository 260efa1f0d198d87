// Starts Swagger UI on /docs (a file of its own, so the page needs no inline script).
window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  // The default asks validator.swagger.io to grade the schema: nothing leaves this server.
  validatorUrl: null,
  presets: [window.SwaggerUIBundle.presets.apis],
});
