// The card preview page. Everything it offers comes from the service: the modules, their examples
// and the form's choices (GET /preview/modules), the hook requests (POST /preview/requests); the
// cards come from the CDS services themselves (POST /cds-services/{id}), called as an EHR calls them.
// It names no drug and no code of its own.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const INDICATOR_ORDER = { critical: 0, warning: 1, info: 2 };
  const UCUM = "http://unitsofmeasure.org";
  const BODY_WEIGHT = { system: "http://loinc.org", code: "29463-7" };  // FHIR vital signs: body weight
  const PATIENT = "preview-patient";
  const state = { modules: [], module: null, counter: 0 };

  // -- calls to the service -------------------------------------------------------------------

  // With trusted clients every call needs a client JWT addressed to its endpoint (`aud`), and each
  // is accepted once: the page takes, for each call, the first pasted token whose audience is the
  // called URL's path, and uses it up. It reads the audience only; the service checks the token.
  function audience(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const aud = JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).aud;
      return [].concat(aud || []).map((url) => new URL(url, location.href).pathname);
    } catch (error) {
      return [];
    }
  }

  function takeToken(path) {
    const tokens = $("token").value.split(/\s+/).filter(Boolean);
    const index = tokens.findIndex((token) => audience(token).includes(path));
    if (index < 0) return null;
    const [token] = tokens.splice(index, 1);
    $("token").value = tokens.join("\n");
    return token;
  }

  function headers(url, extra) {
    const result = Object.assign({ Accept: "application/json" }, extra || {});
    const token = takeToken(new URL(url, location.href).pathname);
    if (token) result.Authorization = "Bearer " + token;
    return result;
  }

  async function call(method, url, body) {
    const options = { method: method, headers: headers(url, body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) options.body = JSON.stringify(body);
    const response = await fetch(url, options);
    let payload = null;
    try { payload = await response.json(); } catch (error) { payload = null; }
    return { status: response.status, ok: response.ok, body: payload };
  }

  function problem(answer) {
    const issues = (answer.body && answer.body.issue) || [];
    const said = issues.map((issue) => issue.diagnostics || (issue.details && issue.details.text) || issue.code).filter(Boolean);
    return "HTTP " + answer.status + (said.length ? ": " + said.join("\n") : "");
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "muted";
  }

  // -- modules and examples -------------------------------------------------------------------

  async function loadModules() {
    const answer = await call("GET", "/preview/modules");
    if (!answer.ok) {
      setStatus("The service did not list its modules: " + problem(answer) +
        (answer.status === 401 ? "\nPaste client tokens under \"Client tokens\" and press \"Load the modules\"." : ""), true);
      $("auth").open = answer.status === 401 || $("auth").open;
      return;
    }
    state.modules = answer.body.modules;
    setStatus("Pick an example, fill the form or paste a request.");
    const select = $("module");
    select.replaceChildren(...state.modules.map((module) => option(module.name,
      module.title + (module.version ? " " + module.version : ""))));
    select.onchange = () => chooseModule(select.value);
    if (state.modules.length) chooseModule(state.modules[0].name);
    else setStatus("The service serves no module with CDS services.", true);
  }

  function option(value, label, data) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = label;
    if (data) element.dataset.concept = JSON.stringify(data);
    return element;
  }

  function optgroup(label, options) {
    const group = document.createElement("optgroup");
    group.label = label;
    group.append(...options);
    return group;
  }

  function chooseModule(name) {
    const module = state.modules.find((m) => m.name === name);
    state.module = module;
    $("module-info").textContent = module.services.map((s) => s.id).join(", ");
    // Examples, grouped as the module's cases folder groups them.
    const groups = {};
    for (const example of module.examples) (groups[example.group || "cases"] = groups[example.group || "cases"] || []).push(example);
    const select = $("example");
    select.replaceChildren(...Object.keys(groups).map((name) => optgroup(name, groups[name].map((example) =>
      option(example.id, example.id + " (" + example.hook + ", " + (example.expectedCards || "no") + " card" +
        (example.expectedCards === 1 ? "" : "s") + " expected)")))));
    select.onchange = describeExample;
    $("show-example").disabled = !module.examples.length;
    describeExample();
    fillForm(module);
  }

  function describeExample() {
    const example = state.module.examples.find((e) => e.id === $("example").value);
    $("example-description").textContent = example ? example.description : "This module brings no examples (a bundle carries no cases).";
  }

  async function showExample() {
    const id = $("example").value;
    setStatus("Building the request for " + id + "...");
    const answer = await call("GET", "/preview/examples/" + encodeURIComponent(state.module.name) + "/" + encodeURIComponent(id));
    if (!answer.ok) { setStatus("The example could not be read: " + problem(answer), true); return; }
    const chart = answer.body;
    await showChart({ hook: chart.hook, patientId: chart.patientId, record: chart.record,
      draftOrders: chart.draftOrders, selections: chart.selections });
  }

  // -- the form -------------------------------------------------------------------------------

  function conceptOptions(groups) {
    return groups.map((group) => optgroup(group.title, group.concepts.map((concept) =>
      option(concept.system + "|" + concept.code, concept.display, concept))));
  }

  function fillForm(module) {
    $("f-hook").replaceChildren(...[...new Set(module.services.map((s) => s.hook))].map((hook) => option(hook, hook)));
    $("f-product").replaceChildren(...module.products.map((product, index) =>
      option(String(index), product.display + (product.doseForm ? " (" + product.doseForm + ")" : ""), product)));
    $("f-product").onchange = () => {
      const product = module.products[Number($("f-product").value)];
      if (product) $("f-dose").value = product.strengthMg;
    };
    $("f-product").onchange();
    $("f-route").replaceChildren(option("", "(not stated)"), ...conceptOptions(module.valueSets.route));
    const weighed = module.valueSets.observation.some((group) => group.concepts.some((c) => c.system === BODY_WEIGHT.system && c.code === BODY_WEIGHT.code));
    $("f-weight").disabled = !weighed;
    $("f-weight").title = weighed ? "" : "no served rule reads body weight";
    for (const list of ["f-observations", "f-medications", "f-conditions", "f-allergies"]) $(list).replaceChildren();
  }

  const ROWS = {
    observation: { list: "f-observations", kind: "observation", extra: () => [
      input("number", "value", "value"), unitInput(), input("date", "date", "date", today())] },
    medication: { list: "f-medications", kind: "medication", extra: () => [
      labelled("from", input("date", "start", "started", today(-30))), labelled("to", input("date", "end", "stopped (empty: still taken)"))] },
    condition: { list: "f-conditions", kind: "condition", extra: () => [
      select("clinical", ["active", "recurrence", "relapse", "inactive", "remission", "resolved"]),
      select("verification", ["confirmed", "provisional", "differential", "unconfirmed", "refuted"])] },
    allergy: { list: "f-allergies", kind: "medication", extra: () => [] },
  };

  function input(type, name, title, value) {
    const element = document.createElement("input");
    element.type = type;
    element.name = name;
    element.title = title;
    element.placeholder = title;
    if (type === "number") element.step = "any";
    if (value !== undefined) element.value = value;
    return element;
  }

  function unitInput() {
    const element = input("text", "unit", "unit (UCUM)");
    element.size = 10;
    return element;
  }

  function labelled(text, element) {
    const label = document.createElement("label");
    label.append(text + " ", element);
    return label;
  }

  function select(name, values) {
    const element = document.createElement("select");
    element.name = name;
    element.append(...values.map((value) => option(value, value)));
    return element;
  }

  function addRow(which) {
    const spec = ROWS[which];
    const groups = state.module.valueSets[spec.kind];
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.kind = which;
    const concept = document.createElement("select");
    concept.name = "concept";
    concept.append(...conceptOptions(groups));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.onclick = () => row.remove();
    row.append(concept, ...spec.extra(), remove);
    $(spec.list).append(row);
  }

  function today(days) {
    const day = new Date();
    day.setDate(day.getDate() + (days || 0));
    return day.toISOString().slice(0, 10);
  }

  function birthDate(age) {
    const day = new Date();
    day.setFullYear(day.getFullYear() - age);
    return day.toISOString().slice(0, 10);
  }

  function conceptOf(selectElement) {
    const chosen = selectElement.selectedOptions[0];
    if (!chosen || !chosen.dataset.concept) return null;
    const concept = JSON.parse(chosen.dataset.concept);
    return { coding: [{ system: concept.system, code: concept.code, display: concept.display }], text: concept.display };
  }

  function field(row, name) { return row.querySelector("[name=" + name + "]"); }

  function nextId(kind) { state.counter += 1; return "preview-" + kind + "-" + state.counter; }

  function formChart() {
    const subject = { reference: "Patient/" + PATIENT };
    const record = [{ resourceType: "Patient", id: PATIENT, gender: $("f-sex").value, birthDate: birthDate(Number($("f-age").value || 0)) }];
    const weight = $("f-weight");
    if (!weight.disabled && weight.value) {
      record.push({ resourceType: "Observation", id: nextId("weight"), status: "final",
        code: { coding: [BODY_WEIGHT], text: "Body weight" }, subject: subject, effectiveDateTime: today(),
        valueQuantity: { value: Number(weight.value), unit: "kg", system: UCUM, code: "kg" } });
    }
    for (const row of $("f-observations").querySelectorAll(".row")) {
      const code = conceptOf(field(row, "concept"));
      const value = field(row, "value").value;
      if (!code || value === "") continue;
      const unit = field(row, "unit").value.trim();
      const quantity = { value: Number(value) };
      if (unit) Object.assign(quantity, { unit: unit, system: UCUM, code: unit });
      record.push({ resourceType: "Observation", id: nextId("observation"), status: "final", code: code, subject: subject,
        effectiveDateTime: field(row, "date").value || today(), valueQuantity: quantity });
    }
    for (const row of $("f-medications").querySelectorAll(".row")) {
      const code = conceptOf(field(row, "concept"));
      if (!code) continue;
      const period = { start: field(row, "start").value || undefined, end: field(row, "end").value || undefined };
      record.push({ resourceType: "MedicationStatement", id: nextId("medication"), status: period.end ? "completed" : "active",
        medicationCodeableConcept: code, subject: subject, effectivePeriod: JSON.parse(JSON.stringify(period)) });
    }
    for (const row of $("f-conditions").querySelectorAll(".row")) {
      const code = conceptOf(field(row, "concept"));
      if (!code) continue;
      record.push({ resourceType: "Condition", id: nextId("condition"), subject: subject, code: code,
        clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-clinical", code: field(row, "clinical").value }] },
        verificationStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/condition-ver-status", code: field(row, "verification").value }] } });
    }
    for (const row of $("f-allergies").querySelectorAll(".row")) {
      const code = conceptOf(field(row, "concept"));
      if (!code) continue;
      record.push({ resourceType: "AllergyIntolerance", id: nextId("allergy"), patient: subject, code: code,
        clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", code: "active" }] },
        verificationStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", code: "confirmed" }] } });
    }
    const product = state.module.products[Number($("f-product").value)];
    const dose = Number($("f-dose").value);
    const perDay = Number($("f-frequency").value || 1);
    const dosage = { text: dose + " mg " + (perDay === 1 ? "once" : perDay + " times") + " a day",
      timing: { repeat: { frequency: perDay, period: 1, periodUnit: "d" } },
      doseAndRate: [{ doseQuantity: { value: dose, unit: "mg", system: UCUM, code: "mg" } }] };
    const route = conceptOf($("f-route"));
    if (route) dosage.route = route;
    const order = { resourceType: "MedicationRequest", id: "preview-order", status: "draft", intent: "order", subject: subject,
      authoredOn: today(), dosageInstruction: [dosage] };
    if (product) order.medicationCodeableConcept = { coding: [{ system: product.system, code: product.code, display: product.display }], text: product.display };
    const hook = $("f-hook").value;
    return { hook: hook, patientId: PATIENT, record: record, draftOrders: [order],
      selections: hook === "order-select" ? ["MedicationRequest/" + order.id] : [] };
  }

  // -- requests and cards ---------------------------------------------------------------------

  async function showChart(chart) {
    const built = await call("POST", "/preview/requests", chart);
    if (!built.ok) { setStatus("The request could not be built: " + problem(built), true); return; }
    const requests = built.body.requests;
    $("request").value = JSON.stringify(requests[0].request, null, 2);
    await showCards(requests);
  }

  async function sendPasted() {
    let request;
    try { request = JSON.parse($("request").value); } catch (error) {
      setStatus("The request is not JSON: " + error.message, true);
      return;
    }
    const discovery = await call("GET", "/cds-services");
    if (!discovery.ok) { setStatus("Discovery failed: " + problem(discovery), true); return; }
    const services = discovery.body.services.filter((s) => request && s.hook === request.hook);
    if (!services.length) { setStatus("No service of this service answers the hook " + JSON.stringify(request && request.hook) + ".", true); return; }
    await showCards(services.map((s) => ({ service: s.id, title: s.title, request: request })));
  }

  // Every service of the hook is called; their cards are shown together, most urgent first, as an
  // EHR shows them.
  async function showCards(requests) {
    setStatus("Calling " + requests.map((r) => r.service).join(", ") + "...");
    const answers = await Promise.all(requests.map((r) => call("POST", "/cds-services/" + encodeURIComponent(r.service), r.request)));
    const container = $("cards");
    container.replaceChildren();
    const cards = [];
    answers.forEach((answer, index) => {
      const line = document.createElement("div");
      line.className = "service-status";
      line.dataset.service = requests[index].service;
      if (answer.ok) {
        const count = (answer.body.cards || []).length;
        line.textContent = requests[index].service + ": " + (count ? count + " card" + (count > 1 ? "s" : "") : "no cards");
        for (const card of answer.body.cards || []) cards.push({ card: card, request: requests[index].request });
      } else {
        line.className += " problem";
        line.textContent = requests[index].service + ": " + problem(answer);
      }
      container.append(line);
    });
    cards.sort((a, b) => (INDICATOR_ORDER[a.card.indicator] ?? 3) - (INDICATOR_ORDER[b.card.indicator] ?? 3));
    for (const entry of cards) container.append(renderCard(entry.card, entry.request));
    if (!cards.length && answers.every((a) => a.ok)) {
      const none = document.createElement("div");
      none.className = "no-cards";
      none.textContent = "No cards: nothing to say about this order.";
      container.append(none);
    }
    setStatus(cards.length + " card" + (cards.length === 1 ? "" : "s") + " from " + requests.length + " service" + (requests.length === 1 ? "" : "s") + ".",
      answers.some((a) => !a.ok));
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(url, label) {
    const anchor = element("a", "", label || url);
    anchor.href = url;
    anchor.target = "_blank";
    anchor.rel = "noopener";
    return anchor;
  }

  function renderCard(card, request) {
    const node = element("article", "card " + (card.indicator || "info"));
    node.dataset.indicator = card.indicator || "";
    const head = element("div", "head");
    head.append(element("span", "indicator", card.indicator || "info"), element("span", "summary", card.summary || ""));
    node.append(head);
    if (card.detail) {
      const detail = element("div", "detail");
      detail.innerHTML = window.Markdown.render(card.detail);  // escaped, links filtered (markdown.js)
      node.append(detail);
    }
    const source = card.source || {};
    if (source.label) {
      const line = element("div", "source", "Source: ");
      line.append(source.url ? link(source.url, source.label) : document.createTextNode(source.label));
      if (source.topic && source.topic.display) line.append(document.createTextNode(" · topic: " + source.topic.display));
      node.append(line);
    }
    if ((card.links || []).length) {
      const links = element("div", "links", "Links: ");
      for (const item of card.links) links.append(link(item.url, item.label));
      node.append(links);
    }
    if ((card.suggestions || []).length) node.append(renderSuggestions(card, request));
    if ((card.overrideReasons || []).length) node.append(renderOverride(card, node));
    return node;
  }

  function renderSuggestions(card, request) {
    const box = element("div", "suggestion-box");
    const buttons = element("div", "suggestions");
    const change = element("div", "change");
    change.hidden = true;
    for (const suggestion of card.suggestions) {
      const button = element("button", suggestion.isRecommended ? "recommended" : "", suggestion.label);
      button.type = "button";
      button.setAttribute("aria-expanded", "false");
      button.onclick = () => {
        const open = button.getAttribute("aria-expanded") !== "true";
        for (const other of buttons.querySelectorAll("button")) other.setAttribute("aria-expanded", "false");
        button.setAttribute("aria-expanded", String(open));
        change.hidden = !open;
        change.replaceChildren(...(open ? suggestion.actions.map((action) => renderAction(action, request)) : []));
      };
      buttons.append(button);
    }
    box.append(buttons, change);
    return box;
  }

  function draftOrder(request, action) {
    const wanted = action.resourceId || (action.resource && action.resource.resourceType + "/" + action.resource.id);
    const entries = (((request || {}).context || {}).draftOrders || {}).entry || [];
    const found = entries.map((e) => e.resource).find((r) => r && r.resourceType + "/" + r.id === wanted);
    return found || null;
  }

  // What a suggestion's action would do to the draft orders, as a line diff of their JSON.
  function renderAction(action, request) {
    const box = element("div", "action");
    const before = draftOrder(request, action);
    const verb = { create: "Adds", update: "Changes", delete: "Removes" }[action.type] || action.type;
    box.append(element("div", "what", verb + ": " + (action.description || action.resourceId || "")));
    const beforeText = action.type === "create" || !before ? "" : JSON.stringify(before, null, 2);
    const afterText = action.type === "delete" ? "" : JSON.stringify(inOrderOf(action.resource || {}, before), null, 2);
    const pre = element("pre", "diff");
    for (const [mark, line] of lineDiff(beforeText, afterText)) {
      pre.append(element("span", mark === "-" ? "del" : mark === "+" ? "add" : "same", mark + " " + line));
    }
    box.append(pre);
    return box;
  }

  // The suggested resource with its keys in the draft's order (new keys last), so the diff shows
  // what changes, not how the service happened to order the keys.
  function inOrderOf(after, before) {
    if (Array.isArray(after)) return after.map((item, index) => inOrderOf(item, Array.isArray(before) ? before[index] : undefined));
    if (!after || typeof after !== "object") return after;
    const template = before && typeof before === "object" && !Array.isArray(before) ? before : {};
    const result = {};
    for (const key of Object.keys(template)) if (key in after) result[key] = inOrderOf(after[key], template[key]);
    for (const key of Object.keys(after)) if (!(key in result)) result[key] = inOrderOf(after[key], undefined);
    return result;
  }

  function lineDiff(a, b) {
    const left = a ? a.split("\n") : [];
    const right = b ? b.split("\n") : [];
    // Longest common subsequence of lines (orders are small: a few hundred lines at most).
    const table = Array.from({ length: left.length + 1 }, () => new Array(right.length + 1).fill(0));
    for (let i = left.length - 1; i >= 0; i -= 1) {
      for (let j = right.length - 1; j >= 0; j -= 1) {
        table[i][j] = left[i] === right[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
      }
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < left.length && j < right.length) {
      if (left[i] === right[j]) { out.push([" ", left[i]]); i += 1; j += 1; }
      else if (table[i + 1][j] >= table[i][j + 1]) { out.push(["-", left[i]]); i += 1; }
      else { out.push(["+", right[j]]); j += 1; }
    }
    while (i < left.length) { out.push(["-", left[i]]); i += 1; }
    while (j < right.length) { out.push(["+", right[j]]); j += 1; }
    return out;
  }

  function renderOverride(card, node) {
    const box = element("div", "override");
    const reasons = document.createElement("select");
    reasons.setAttribute("aria-label", "Override reason");
    reasons.append(option("", "Override reason..."), ...card.overrideReasons.map((reason, index) => option(String(index), reason.display || reason.code)));
    const dismiss = element("button", "", "Dismiss");
    dismiss.type = "button";
    dismiss.disabled = true;
    reasons.onchange = () => { dismiss.disabled = reasons.value === ""; };
    dismiss.onclick = () => {
      const reason = card.overrideReasons[Number(reasons.value)];
      node.classList.add("dismissed");
      box.replaceWith(element("div", "dismissal", "Dismissed: " + (reason.display || reason.code) + " (the preview sends no feedback)"));
    };
    box.append(reasons, dismiss);
    return box;
  }

  // -- wiring ---------------------------------------------------------------------------------

  function showTab(name) {
    for (const button of document.querySelectorAll(".tabs button")) button.classList.toggle("active", button.dataset.tab === name);
    for (const tab of ["example", "form", "request"]) $("tab-" + tab).hidden = tab !== name;
  }

  function guarded(action) {
    return async () => {
      try { await action(); } catch (error) { setStatus("The page failed: " + error, true); }
    };
  }

  for (const button of document.querySelectorAll(".tabs button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  for (const button of document.querySelectorAll("button.add")) button.addEventListener("click", () => addRow(button.dataset.add));
  $("show-example").addEventListener("click", guarded(showExample));
  $("show-form").addEventListener("click", guarded(() => showChart(formChart())));
  $("send-request").addEventListener("click", guarded(sendPasted));
  $("reload").addEventListener("click", guarded(loadModules));
  guarded(loadModules)();
})();
