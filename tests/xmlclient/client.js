#!/usr/bin/env node
// A command-line FHIR client that speaks only XML to the server, written and read by FHIR.js
// (the npm `fhir` package): an implementation independent of the server's own conversion.
//
//   FHIR_BASE=http://host/node/fhir FHIR_TOKEN=… node client.js create [file.json]   (or JSON on stdin)
//   FHIR_BASE=… FHIR_TOKEN=… node client.js read MedicationRequest/123
//   FHIR_BASE=… FHIR_TOKEN=… node client.js search MedicationRequest identifier=system|value …
//
// It prints one JSON object on stdout: {"status", "headers", "sent" (the XML it POSTed, on a
// create), "resource" (the answer's XML as FHIR.js converts it to JSON, or null)}. It exits 1
// when the answer is not XML FHIR.js can read.
'use strict';

const fs = require('fs');
const { Fhir } = require('fhir');

const XML = 'application/fhir+xml';
const HEADERS = ['content-type', 'location', 'etag', 'last-modified'];
const fhir = new Fhir(); // FHIR R4 (4.0.0), FHIR.js's default

// FHIR.js writes each primitive's value as its text in the XML, but JSON.parse would make 1.50
// the number 1.5: give it each JSON number as its text (as its own xmlToObj gives decimals).
function numbersAsText(json) {
  return json.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (token) =>
    token.startsWith('"') ? token : `"${token}"`,
  );
}

async function send(method, path, body) {
  if (!process.env.FHIR_BASE) throw new Error('FHIR_BASE (the server\'s FHIR base URL) is not set');
  const base = process.env.FHIR_BASE.replace(/\/$/, '');
  const headers = { Accept: XML, Authorization: `Bearer ${process.env.FHIR_TOKEN}` };
  if (body !== undefined) headers['Content-Type'] = XML;
  const response = await fetch(`${base}/${path}`, { method, headers, body });
  const text = await response.text();
  const answer = { status: response.status, headers: {} };
  for (const name of HEADERS) {
    if (response.headers.has(name)) answer.headers[name] = response.headers.get(name);
  }
  if (body !== undefined) answer.sent = body;
  if (!text) return JSON.stringify({ ...answer, resource: null });
  if (!(answer.headers['content-type'] || '').startsWith(XML)) {
    throw new Error(`the answer is not ${XML}: ${answer.headers['content-type']}\n${text}`);
  }
  // xmlToJson, not xmlToObj: its JSON keeps a decimal's digits (1.50 stays 1.50).
  const resource = fhir.xmlToJson(text);
  if (!resource) throw new Error(`FHIR.js could not read the answer:\n${text}`);
  return JSON.stringify({ ...answer, resource: '@resource@' }).replace('"@resource@"', () => resource);
}

async function main([command, ...args]) {
  if (command === 'create') {
    const json = fs.readFileSync(args[0] || 0, 'utf8');
    const resource = JSON.parse(numbersAsText(json));
    return send('POST', resource.resourceType, fhir.objToXml(resource));
  }
  if (command === 'read') return send('GET', args[0]);
  if (command === 'search') {
    const [type, ...params] = args;
    const query = new URLSearchParams(params.map((param) => param.split(/=(.*)/s, 2)));
    return send('GET', `${type}?${query}`);
  }
  throw new Error('usage: client.js create [file.json] | read Type/id | search Type [name=value …]');
}

main(process.argv.slice(2)).then(
  (output) => console.log(output),
  (error) => {
    console.error(error.message);
    process.exit(1);
  },
);
