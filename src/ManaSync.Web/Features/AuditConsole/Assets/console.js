// ManaSync audit console: plain DOM, no build step. Every value from the server reaches the page as text
// (never as HTML), so record contents cannot inject markup. Views live in the URL's hash, so the browser's
// back button, bookmarks and the keyboard all work as on any page of links.
"use strict";

const TOKEN_KEY = "manasync.console.token";
const main = document.getElementById("main");

// ---- small helpers ---------------------------------------------------------------------------------------

/** An element with attributes (on* handlers as functions) and children (strings become text). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function say(text, isError = false) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

/** A JSON value as text: strings as they are, anything else as JSON. */
function show(value) {
  if (value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/", params: new URLSearchParams(query || "") };
}

function link(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value !== undefined && value !== null && value !== ""));
  return `#${path}${query.size ? "?" + query : ""}`;
}

/** A view: its title and what it shows below it. */
function view(title, ...content) { return [title, ...content]; }

/** Puts a view in place and moves focus to its heading, so keyboard and screen-reader users land on it. */
function render(title, ...content) {
  const heading = h("h2", { tabindex: "-1" }, title);
  // Parts a view leaves out (no next page, no auditor's form) come as null, false or undefined.
  main.replaceChildren(heading, ...content.filter(part => part !== undefined && part !== null && part !== false));
  heading.focus();
  document.title = `${title} · ManaSync audit console`;
}

function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const offset = date.getTimezoneOffset() * 60000;
  return new Date(date.getTime() - offset).toISOString().slice(0, 23);
}

function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : "";
}

// ---- the signed-in caller ---------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function claims() {
  const value = token();
  if (!value) return null;
  try {
    const payload = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
  } catch {
    return null;
  }
}

function isAuditor() {
  const scope = claims()?.scope;
  return (Array.isArray(scope) ? scope.join(" ") : scope || "").split(" ").includes("audit");
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { Authorization: `Bearer ${token()}`, ...(options.headers || {}) } });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new Error("The token was refused (expired or not valid here): sign in again.");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function json(path, options) { return (await api(path, options)).json(); }

// ---- views -------------------------------------------------------------------------------------------------

async function signIn() {
  const config = await (await fetch("/console/config")).json();
  const tokenForm = h("form", {
    onsubmit: event => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, tokenForm.elements.token.value.trim());
      location.hash = "#/tables";
      refresh();
    },
  },
  h("label", {}, "Bearer token", h("input", { name: "token", type: "password", required: true, autocomplete: "off", size: 40 })),
  h("button", { type: "submit" }, "Sign in"));

  const devForm = config.devTokens && h("form", {
    onsubmit: async event => {
      event.preventDefault();
      const body = { sub: devForm.elements.user.value.trim() };
      if (devForm.elements.auditor.checked) body.scope = "audit";
      const reply = await fetch("/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!reply.ok) return say((await reply.json()).message, true);
      sessionStorage.setItem(TOKEN_KEY, (await reply.json()).token);
      location.hash = "#/tables";
      refresh();
    },
  },
  h("label", {}, "User id", h("input", { name: "user", required: true, autocomplete: "off" })),
  h("label", { class: "inline" }, h("input", { name: "auditor", type: "checkbox" }), "auditor"),
  h("button", { type: "submit" }, "Sign in with a development token"));

  return view("Sign in",
    h("p", {}, "Paste a token from your identity provider. A user reads their own data; a token with the audit scope reads anyone's."),
    tokenForm,
    devForm && h("h3", {}, "Development"),
    devForm);
}

/** The user whose data a view shows: the one in the URL (auditors), else the caller. */
function subject(params) { return params.get("user") || claims()?.sub; }

function userForm(path, params, extra = {}) {
  if (!isAuditor()) return null;
  const form = h("form", {
    onsubmit: event => {
      event.preventDefault();
      location.hash = link(path, { ...extra, user: form.elements.user.value.trim() });
    },
  },
  h("label", {}, "User", h("input", { name: "user", value: subject(params), required: true, autocomplete: "off" })),
  h("button", { type: "submit" }, "Show"));
  return form;
}

async function tablesView(params) {
  const user = subject(params);
  const reply = await json(`/audit/users/${encodeURIComponent(user)}/tables`);
  const rows = reply.tables.map(table => h("tr", {},
    h("td", {}, table.appId),
    h("td", {}, h("a", { href: link("/records", { user, app: table.appId, table: table.table }) }, table.table)),
    h("td", {}, String(table.records))));
  return view(`Data of ${user}`,
    userForm("/tables", params),
    rows.length
      ? h("table", {}, h("caption", {}, "Apps and tables (records, deleted ones included)"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "App"), h("th", { scope: "col" }, "Table"), h("th", { scope: "col" }, "Records"))),
        h("tbody", {}, rows))
      : h("p", {}, "No records."));
}

async function recordsView(params) {
  const user = subject(params), app = params.get("app"), table = params.get("table");
  const q = params.get("q") || "", asOf = params.get("asOf") || "", after = params.get("after") || "";
  const query = new URLSearchParams({ app, table });
  for (const [name, value] of [["q", q], ["asOf", asOf], ["after", after]]) if (value) query.set(name, value);
  const reply = await json(`/audit/users/${encodeURIComponent(user)}/records?${query}`);

  const form = h("form", {
    onsubmit: event => {
      event.preventDefault();
      location.hash = link("/records", { user, app, table, q: form.elements.q.value, asOf: fromLocalInput(form.elements.asOf.value) });
    },
  },
  h("label", {}, "Search id or text", h("input", { name: "q", type: "search", value: q })),
  h("label", {}, "As of (your local time)", h("input", { name: "asOf", type: "datetime-local", step: "0.001", value: localInput(asOf) })),
  h("button", { type: "submit" }, "Show"));

  const rows = reply.records.map(record => h("tr", { class: record.deleted ? "deleted" : null },
    h("td", {}, h("a", { href: link("/record", { user, app, table, id: record.id }) }, record.id)),
    h("td", {}, record.deleted ? "deleted" : "live"),
    h("td", {}, Object.entries(record.fields).slice(0, 4).map(([name, field]) => `${name}: ${show(field.value)}`).join(" · "))));
  return view(`${app} / ${table}${asOf ? ` as of ${asOf}` : ""}`,
    h("p", {}, h("a", { href: link("/tables", { user }) }, `← Data of ${user}`)),
    form,
    h("table", {}, h("caption", {}, `Records of ${user}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Id"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Fields"))),
      h("tbody", {}, rows)),
    reply.nextCursor && h("a", { href: link("/records", { user, app, table, q, asOf, after: reply.nextCursor }) }, "Next page →"));
}

function fieldsTable(caption, fields) {
  return h("table", {}, h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Updated at"))),
    h("tbody", {}, Object.entries(fields).map(([name, field]) =>
      h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "value" }, show(field.value)), h("td", {}, field.updatedAt)))));
}

async function recordView(params) {
  const user = subject(params), app = params.get("app"), table = params.get("table"), id = params.get("id");
  const newestFirst = params.get("order") === "newest", at = params.get("at") || "";
  const path = `/audit/${encodeURIComponent(app)}/${encodeURIComponent(table)}/${encodeURIComponent(id)}`;
  const history = await json(`${path}/history?user=${encodeURIComponent(user)}`);
  const events = newestFirst ? [...history.events].reverse() : history.events;
  const here = { user, app, table, id, order: newestFirst ? "newest" : undefined };

  let atPanel = null;
  if (at) {
    const state = await json(`${path}?user=${encodeURIComponent(user)}&asOf=${encodeURIComponent(at)}`).catch(() => null);
    const record = state?.records?.find(entry => entry.record) ?? null;
    atPanel = h("section", { class: "at", "aria-labelledby": "at-heading" },
      h("h3", { id: "at-heading" }, `As of ${at}`),
      !state ? h("p", {}, "The record did not exist yet.")
        : !record ? h("p", {}, "Deleted at that moment.")
          : fieldsTable("Fields at that moment", record.record.fields ?? {}));
  }

  const stepForm = h("form", {
    onsubmit: event => {
      event.preventDefault();
      location.hash = link("/record", { ...here, at: fromLocalInput(stepForm.elements.at.value) });
    },
  },
  h("label", {}, "Show the record as of (your local time)", h("input", { name: "at", type: "datetime-local", step: "0.001", value: localInput(at) })),
  h("button", { type: "submit" }, "Show"));

  const timeline = h("ol", { class: "timeline", reversed: newestFirst || null }, events.map(event => {
    const actor = event.actor ? `${event.actor.kind ?? "agent"}${event.actor.missionId ? " " + event.actor.missionId : ""}` : "user";
    const changes = Object.entries(event.fields);
    return h("li", { class: "event" },
      h("h3", {}, `${event.op} · ${event.createdAt}`),
      h("p", { class: "meta" }, `by ${event.userId} · actor ${actor} · device ${event.clientId ?? "—"} · schema v${event.schemaVersion} · event ${event.eventId}`),
      changes.length
        ? h("table", {}, h("caption", {}, "What it changed"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))),
          h("tbody", {}, changes.map(([name, change]) => h("tr", {},
            h("th", { scope: "row" }, name),
            h("td", { class: "value before" }, show(change.before ?? undefined)),
            h("td", { class: "value after" }, show(change.after ?? undefined))))))
        : h("p", {}, "Changed nothing (a later write had already won)."),
      h("a", { href: link("/record", { ...here, at: event.createdAt }) }, "Show the record at this moment"));
  }));

  return view(`Record ${id}`,
    h("p", {}, h("a", { href: link("/records", { user, app, table }) }, `← ${app} / ${table}`)),
    h("p", {}, `${history.events.length} events. `,
      h("a", { href: link("/record", { ...here, order: newestFirst ? undefined : "newest", at }) }, newestFirst ? "Oldest first" : "Newest first")),
    stepForm,
    atPanel,
    h("h3", {}, "Timeline"),
    timeline);
}

async function streamView(params) {
  const user = subject(params);
  const filters = Object.fromEntries(["app", "table", "actor", "from", "to"].map(name => [name, params.get(name) || ""]));
  const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
  const base = `/audit/users/${encodeURIComponent(user)}/events`;

  const form = h("form", {
    onsubmit: event => {
      event.preventDefault();
      const values = Object.fromEntries(["app", "table", "actor"].map(name => [name, form.elements[name].value.trim()]));
      location.hash = link("/stream", { user, ...values, from: fromLocalInput(form.elements.from.value), to: fromLocalInput(form.elements.to.value) });
    },
  },
  h("label", {}, "App", h("input", { name: "app", value: filters.app })),
  h("label", {}, "Table", h("input", { name: "table", value: filters.table })),
  h("label", {}, "Actor kind", h("select", { name: "actor" }, ["", "user", "ai"].map(kind =>
    h("option", { value: kind, selected: kind === filters.actor }, kind || "any")))),
  h("label", {}, "From", h("input", { name: "from", type: "datetime-local", step: "0.001", value: localInput(filters.from) })),
  h("label", {}, "To", h("input", { name: "to", type: "datetime-local", step: "0.001", value: localInput(filters.to) })),
  h("button", { type: "submit" }, "Filter"));

  const body = h("tbody");
  const more = h("button", { type: "button" }, "Load more");
  let cursor = null;
  async function load() {
    const page = new URLSearchParams(query);
    if (cursor) page.set("cursor", cursor);
    const reply = await json(`${base}?${page}`);
    for (const event of reply.events)
      body.append(h("tr", {},
        h("td", {}, event.createdAt), h("td", {}, event.appId), h("td", {}, event.table),
        h("td", {}, h("a", { href: link("/record", { user, app: event.appId, table: event.table, id: event.id }) }, event.id)),
        h("td", {}, event.op), h("td", {}, event.actor ? show(event.actor) : "user"), h("td", {}, event.clientId), h("td", {}, String(event.schemaVersion))));
    cursor = reply.nextCursor;
    more.hidden = !cursor;
    say(`${body.children.length} events shown${cursor ? "; more follow" : ""}.`);
  }
  more.addEventListener("click", () => load().catch(error => say(error.message, true)));

  async function download(format, extension, type) {
    const selection = new URLSearchParams(query);
    selection.set("format", format);
    const blob = new Blob([await (await api(`${base}?${selection}`)).arrayBuffer()], { type });
    const anchor = h("a", { href: URL.createObjectURL(blob), download: `mana-audit-${user}.${extension}` });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }

  await load();
  return view(`Event stream of ${user}`,
    userForm("/stream", params, filters),
    form,
    h("p", {},
      h("button", { type: "button", onclick: () => download("jsonl", "jsonl", "application/x-ndjson").catch(error => say(error.message, true)) },
        "Export selection as JSON lines"), " ",
      h("button", { type: "button", onclick: () => download("mana", "mana", "application/zip").catch(error => say(error.message, true)) },
        "Export selection as .mana")),
    h("table", {}, h("caption", {}, "Events, oldest first"),
      h("thead", {}, h("tr", {}, ["Received", "App", "Table", "Record", "Op", "Actor", "Device", "Schema"].map(name => h("th", { scope: "col" }, name)))),
      body),
    more);
}

async function accessLogView(params) {
  const before = params.get("before") || "";
  const reply = await json(`/audit/access-log${before ? `?before=${encodeURIComponent(before)}` : ""}`);
  return view("Access log",
    h("p", {}, "Every read of another user's data, newest first."),
    h("table", {}, h("caption", {}, "Who read whose data"),
      h("thead", {}, h("tr", {}, ["At", "Auditor", "User", "Request"].map(name => h("th", { scope: "col" }, name)))),
      h("tbody", {}, reply.entries.map(entry => h("tr", {},
        h("td", {}, entry.at), h("td", {}, entry.auditor), h("td", {}, entry.user), h("td", {}, h("code", {}, entry.path)))))),
    reply.nextCursor && h("a", { href: link("/access-log", { before: reply.nextCursor }) }, "Older →"));
}

async function statusView() {
  const health = await (await fetch("/health")).json();
  const keyForm = h("form", {
    onsubmit: async event => {
      event.preventDefault();
      try {
        const reply = await fetch("/admin/projections/rebuild", { headers: { "X-Service-Key": keyForm.elements.key.value } });
        const status = await reply.json();
        rebuild.replaceChildren(reply.ok
          ? `Projection rebuild: ${status.state}, ${status.eventsDone} of ${status.eventsTotal} events, ${status.changedRecords} records changed`
          : status.message);
      } catch (error) {
        say(error.message, true);
      }
    },
  },
  h("label", {}, "Service key (operators)", h("input", { name: "key", type: "password", autocomplete: "off" })),
  h("button", { type: "submit" }, "Show projection status"));
  const rebuild = h("p", { "aria-live": "polite" });
  return view("Status",
    h("dl", {},
      h("dt", {}, "Server"), h("dd", {}, `${health.status} (database ${health.database ?? "unknown"})`),
      h("dt", {}, "Live connections"), h("dd", {}, String(health.connections)),
      h("dt", {}, "Users connected"), h("dd", {}, String(health.users)),
      h("dt", {}, "Checked at"), h("dd", {}, health.timestamp)),
    keyForm,
    rebuild);
}

const views = {
  "/tables": tablesView,
  "/records": recordsView,
  "/record": recordView,
  "/stream": streamView,
  "/access-log": accessLogView,
  "/status": statusView,
};

let shown = 0;

async function refresh() {
  // A view still loading when another is asked for must not replace it when it arrives.
  const asked = ++shown;
  const { path, params } = route();
  const signedIn = Boolean(claims());
  document.getElementById("nav").hidden = !signedIn;
  document.querySelector("[data-auditor]").hidden = !isAuditor();
  document.getElementById("who").textContent = signedIn ? `Signed in as ${claims().sub}${isAuditor() ? " (auditor)" : ""}` : "";
  for (const anchor of document.querySelectorAll("nav a[data-view]"))
    anchor.toggleAttribute("aria-current", path === `/${anchor.dataset.view}`) && anchor.setAttribute("aria-current", "page");
  say("");
  try {
    const content = signedIn ? await (views[path] ?? tablesView)(params) : await signIn();
    if (asked === shown) render(...content);
  } catch (error) {
    if (asked !== shown) return;
    if (!claims()) return render(...await signIn());
    render("Something went wrong", h("p", {}, error.message));
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "";
  refresh();
});
window.addEventListener("hashchange", refresh);
refresh();
