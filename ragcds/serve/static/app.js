// ragcds page: ask a question, show the cited answer, open a cited section at its printed page.
// No framework and no build step; every text from the server is inserted as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ragcds-token";
const HEADINGS = {
  answered: "Answer from the UCG 2023",
  quoted: "Answer, with the treatment quoted from the UCG 2023",
  refused: "No treatment advice given: read the cited section",
  out_of_scope: "Not covered by the UCG",
};
const FIELD_LABELS = [
  ["condition", "Condition"], ["confidence", "Confidence"], ["actions", "Actions"],
  ["next_steps", "Next steps"], ["red_flags", "Red flags"],
];
let lastAnswer = null;
let pending = null; // the action to retry once a token is given

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---- HTTP ----

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.error) || `the server answered ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function setStatus(text, kind) {
  const s = $("status");
  s.textContent = text || "";
  s.className = kind || "";
  s.setAttribute("role", kind === "error" ? "alert" : "status");
}

function needToken(retry) {
  pending = retry;
  $("token-box").hidden = false;
  $("token").focus();
  setStatus("This server needs an access token.", "error");
}

async function guarded(action) {
  try {
    return await action();
  } catch (e) {
    if (e.status === 401) needToken(action);
    else setStatus(e.message, "error");
    return null;
  }
}

// ---- citations and links ----

function sectionHash(section, chunk, page) {
  const q = new URLSearchParams();
  if (chunk) q.set("chunk", chunk);
  if (page) q.set("page", page);
  const tail = q.toString();
  return "#section/" + encodeURIComponent(section) + (tail ? "?" + tail : "");
}

function citationHref(c) {
  return c && c.valid && c.section ? sectionHash(c.section, c.chunk_id, (c.printed_pages || [])[0]) : null;
}

function citationLabel(c) {
  if (!c.valid) return `[${c.n}] no such passage was provided`;
  const pages = (c.printed_pages || []).filter(Boolean);
  const span = pages.length > 1 ? `pp. ${pages[0]}–${pages[pages.length - 1]}` : pages.length ? `p. ${pages[0]}` : "";
  return `[${c.n}] §${c.section} ${c.title}${span ? ", " + span : ""}`;
}

// Text with its [n] markers turned into links to the cited section.
function linked(text, byN) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    out.push(text.slice(last, m.index));
    const c = byN.get(Number(m[1]));
    const href = citationHref(c);
    out.push(href ? el("a", { href, class: "cite", title: citationLabel(c) }, m[0])
                  : el("span", { class: "cite invalid", title: "no such passage" }, m[0]));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

// ---- the answer ----

function triageOf(a) {
  if (a.triage && a.triage.level) return a.triage;
  const level = a.fields && typeof a.fields.level === "string" ? a.fields.level : "";
  return level ? { level, because: [] } : null;
}

function renderResolved(a) {
  if (!Array.isArray(a.resolved) || !a.resolved.length) return null;
  const items = a.resolved.map((r, i) => el("li", {},
    el("a", { href: sectionHash(r.section, null, (r.printed_pages || [])[0]) },
      `§${r.section} ${r.title || ""}${(r.printed_pages || []).length ? ", p. " + r.printed_pages[0] : ""}`),
    i === 0 ? el("span", { class: "tag" }, "primary") : null,
    r.why ? el("span", { class: "why" }, " — " + r.why) : null));
  return el("div", { class: "resolved" }, el("h3", {}, "Section"), el("ul", {}, items));
}

// A triage reason's citation: a passage number, a "[n]" string, or a citation object.
function citeNode(c, byN) {
  if (typeof c === "number") return linked(`[${c}]`, byN);
  if (typeof c === "string") return linked(c, byN);
  if (c && typeof c === "object") {
    const full = c.n !== undefined && byN.has(c.n) ? byN.get(c.n) : { valid: true, ...c };
    const href = citationHref(full);
    const label = full.section ? citationLabel({ n: full.n ?? "", ...full }) : `[${full.n}]`;
    return href ? el("a", { href, class: "cite" }, label) : el("span", {}, label);
  }
  return null;
}

function renderTriage(a, byN) {
  const t = triageOf(a);
  if (!t) return null;
  const level = String(t.level).toLowerCase();
  const because = (t.because || []).map((b) => el("li", {}, b.finding || "",
    b.citation !== undefined && b.citation !== null ? el("span", {}, " ", citeNode(b.citation, byN)) : null));
  return el("div", { class: "triage" },
    el("span", { class: "badge level-" + level.replace(/[^a-z]/g, "") }, "Triage: " + level.toUpperCase()),
    because.length ? el("ul", { class: "because" }, because) : null);
}

function renderFields(a, byN) {
  if (!a.fields || typeof a.fields !== "object") return null;
  const rows = [];
  for (const [key, label] of FIELD_LABELS) {
    const v = a.fields[key];
    if (v === undefined || v === null || v === "") continue;
    const value = Array.isArray(v) ? el("ul", {}, v.map((x) => el("li", {}, linked(String(x), byN))))
                                   : el("span", {}, linked(String(v), byN));
    rows.push(el("dt", {}, label), el("dd", {}, value));
  }
  return rows.length ? el("dl", { class: "fields" }, rows) : null;
}

function renderBody(a, byN) {
  if (a.format !== "prose" && a.parse_ok && a.fields) {
    return el("details", { class: "packet" }, el("summary", {}, "The packet as received"),
      el("pre", {}, a.answer));
  }
  return el("div", { class: "text" }, linked(a.answer || "", byN));
}

function renderQuote(a, byN) {
  if (!a.quote) return null;
  return el("blockquote", { class: "quote" },
    el("p", { class: "quote-label" }, "Quoted verbatim from the guideline — ragcds does not write doses"),
    el("div", { class: "text" }, linked(a.quote.replace(/^> ?/gm, ""), byN)));
}

function renderSources(a) {
  const cites = (a.citations || []).slice().sort((x, y) => x.n - y.n);
  if (!cites.length) return null;
  return el("div", { class: "sources" }, el("h3", {}, "Sources"),
    el("ol", {}, cites.map((c) => {
      const href = citationHref(c);
      return el("li", { class: c.valid ? "" : "invalid" },
        href ? el("a", { href, class: "source" }, citationLabel(c)) : el("span", {}, citationLabel(c)),
        c.quoted ? el("span", { class: "tag" }, "quoted") : null);
    })));
}

function renderAnswer(a) {
  lastAnswer = a;
  const byN = new Map((a.citations || []).map((c) => [c.n, c]));
  const policy = a.policy || "answered";
  const box = $("answer");
  box.replaceChildren(...[
    el("h2", { id: "answer-heading" }, policy === "out_of_scope" ? "⊘ " + HEADINGS[policy] : (HEADINGS[policy] || "Answer")),
    el("p", { class: "asked" }, "Q: " + a.question),
    policy === "out_of_scope" ? null : renderTriage(a, byN),
    renderResolved(a),
    renderBody(a, byN),
    renderFields(a, byN),
    renderQuote(a, byN),
    renderSources(a),
    (a.notes || []).length ? el("ul", { class: "notes" }, a.notes.map((n) => el("li", {}, n))) : null,
    el("p", { class: "meta" }, `${a.backend}:${a.model} · index ${a.index_version || "-"} · ${policy}` +
      (a.timings && a.timings.total !== undefined ? ` · ${Math.round(a.timings.total * 1000)} ms` : "")),
  ].filter(Boolean));
  box.className = "answer policy-" + policy;
  box.dataset.policy = policy;
  box.hidden = false;
}

async function ask(event) {
  if (event) event.preventDefault();
  const question = $("question").value.trim();
  if (!question) {
    setStatus("Type a question first.", "error");
    $("question").focus();
    return;
  }
  const body = { question, format: $("format").value };
  const button = $("ask-button");
  button.disabled = true;
  setStatus("Looking in the guideline…", "busy");
  const run = async () => {
    const a = await api("POST", "/v1/ask", body);
    if (location.hash) history.pushState(null, "", location.pathname);
    closeViewer();
    renderAnswer(a);
    setStatus("");
    $("answer").focus();
    return a;
  };
  try { await guarded(run); } finally { button.disabled = false; }
}

// ---- the section viewer ----

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer").replaceChildren();
  if (lastAnswer) $("answer").hidden = false;
}

function target(blocks, chunk, page) {
  return blocks.find((b) => b.dataset.chunk === chunk && b.dataset.page === page)
    || blocks.find((b) => b.dataset.chunk === chunk)
    || blocks.find((b) => b.dataset.page === page) || null;
}

function renderSection(s, chunk, page) {
  const blocks = [];
  let shown = null;
  for (const b of s.blocks) {
    if (b.printed_page !== shown) {
      blocks.push(el("h3", { class: "page-mark" }, b.printed_page ? `p. ${b.printed_page}` : "page"));
      shown = b.printed_page;
    }
    blocks.push(el("div", { class: "block", "data-chunk": b.chunk_id, "data-page": b.printed_page }, b.text));
  }
  const back = el("button", { type: "button", class: "back" }, "← Answer");
  back.addEventListener("click", () => { if (history.length > 1 && lastAnswer) history.back(); else location.hash = ""; });
  const children = (s.children || []).map((c) => el("li", {}, el("a", { href: sectionHash(c.section) }, `§${c.section} ${c.title}`)));
  const v = $("viewer");
  v.replaceChildren(...[
    el("div", { class: "viewer-bar" }, lastAnswer ? back : null,
      el("span", { class: "viewer-title" }, `§${s.section} ${s.title}`),
      page ? el("span", { class: "tag" }, `cited: p. ${page}`) : null),
    el("p", { class: "crumbs" }, (s.heading_path || []).join(" › ")),
    el("h2", {}, `§${s.section} ${s.title}`),
    el("p", { class: "meta" }, `${s.citation} · index ${s.index_version}`),
    el("div", { class: "section-text" }, blocks),
    children.length ? el("div", { class: "children" }, el("h3", {}, "Sub-sections"), el("ul", {}, children)) : null,
    s.parent ? el("p", {}, "Part of ", el("a", { href: sectionHash(s.parent.section) }, `§${s.parent.section} ${s.parent.title}`)) : null,
  ].filter(Boolean));
  $("answer").hidden = true;
  v.hidden = false;
  const hit = target(Array.from(v.querySelectorAll(".block")), chunk, page);
  if (hit) {
    hit.classList.add("cited");
    hit.setAttribute("tabindex", "-1");
    hit.setAttribute("aria-label", `Cited passage, page ${page || hit.dataset.page}`);
    // show the page mark above the cited passage when it sits right before it
    const prev = hit.previousElementSibling;
    (prev && prev.classList.contains("page-mark") ? prev : hit).scrollIntoView({ block: "start" });
    hit.focus({ preventScroll: true });
  } else {
    v.scrollIntoView({ block: "start" });
    v.focus({ preventScroll: true });
  }
}

async function route() {
  const h = location.hash;
  if (!h.startsWith("#section/")) {
    closeViewer();
    return;
  }
  const [path, query] = h.slice("#section/".length).split("?");
  const number = decodeURIComponent(path);
  const params = new URLSearchParams(query || "");
  setStatus(`Opening §${number}…`, "busy");
  await guarded(async () => {
    const s = await api("GET", "/v1/sections/" + encodeURIComponent(number));
    renderSection(s, params.get("chunk"), params.get("page"));
    setStatus("");
  });
}

// ---- start ----

async function health() {
  await guarded(async () => {
    const h = await api("GET", "/v1/health");
    const line = `Index ${h.index.version} (${h.index.chunks} passages) · ${h.model.backend}:${h.model.model} · `;
    const shown = $("health");
    if (shown) shown.textContent = line;
    else $("about").prepend(el("span", { id: "health" }, line));
  });
}

function start() {
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(); }
  });
  $("token-box").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token-box").hidden = true;
    setStatus("");
    const retry = pending;
    pending = null;
    if (retry) guarded(retry);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("viewer").hidden) { location.hash = ""; $("answer").focus(); }
  });
  window.addEventListener("hashchange", route);
  health();
  if (location.hash) route();
  else $("question").focus();
}

document.addEventListener("DOMContentLoaded", start);
