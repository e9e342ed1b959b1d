/* /docs: render the connector's own OpenAPI document with the vendored Redoc. */
(function () {
  'use strict';
  Redoc.init('/openapi.json', { hideHostname: false, expandResponses: '200,202' },
    document.getElementById('redoc'));
}());
