/* EffectVis: a static explorer for SAE feature effects (saets, paper section 6).
 * No network, no libraries. Data lives in <script type="application/json"> blocks written by
 * saets.effectvis: ev-meta (small, parsed at start), ev-labels (parsed at start, for search),
 * ev-info (densities, tokens, snippets, urls) and ev-lists (top-k lists as base64 typed arrays),
 * both parsed only when the first card opens. */
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const readJSON = (id) => { const el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; };
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };

  const meta = readJSON("ev-meta") || {};
  const labels = readJSON("ev-labels") || [];
  const N = meta.n_features | 0;
  const PAGE = 50, SHOW = 10, MAX_UNPINNED = 12;
  const KINDS = [
    ["effects", "Effects", "Features that steering with this feature makes fire more (top of its effect row)"],
    ["actions", "Actions", "Features whose steering makes this feature fire more (top of its effect column)"],
    ["cosine", "Similar directions", "Features with the most cosine-similar decoder directions"],
  ];

  // ---------- lazy data ----------
  let info = null, listsRaw = null;
  const decoded = {};
  const getInfo = () => (info || (info = readJSON("ev-info") || {}));
  function b64(s) {
    const bin = atob(s), u = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u.buffer;
  }
  function getList(kind) {
    if (!(kind in decoded)) {
      listsRaw = listsRaw || readJSON("ev-lists") || {};
      const r = listsRaw[kind];
      decoded[kind] = r ? { k: r.k, sentinel: r.sentinel, vals: new Float32Array(b64(r.vals)),
        ids: r.dtype === "u16" ? new Uint16Array(b64(r.ids)) : new Int32Array(b64(r.ids)) } : null;
    }
    return decoded[kind];
  }
  function entries(kind, id) {
    const L = getList(kind), out = [];
    if (!L) return out;
    for (let r = 0; r < L.k; r++) {
      const j = L.ids[id * L.k + r];
      if (j === L.sentinel) break;
      out.push([j, L.vals[id * L.k + r]]);
    }
    return out;
  }
  const labelOf = (id) => labels[id] || "";
  const isId = (x) => Number.isInteger(x) && x >= 0 && x < N;

  // ---------- messages ----------
  const msgs = $("#ev-messages");
  function message(text, level) {
    const m = el("div", "ev-msg" + (level === "error" ? " ev-error" : ""));
    m.appendChild(el("span", null, text));
    const x = el("button", "ev-x", "\u00d7"); x.title = "dismiss"; x.onclick = () => m.remove();
    m.appendChild(x); msgs.appendChild(m);
    return m;
  }
  (meta.notes || []).forEach((t) => message(t, "warn"));

  // ---------- selection / highlighting ----------
  let selected = null, hovered = null;
  function paint(root) {
    (root || document).querySelectorAll("[data-id]").forEach((e) => {
      const id = +e.dataset.id;
      if (e.classList.contains("ev-card")) e.classList.toggle("ev-selected", id === selected);
      else e.classList.toggle("ev-hl", id === selected);
      if (e.classList.contains("ev-item")) e.classList.toggle("ev-hover", id === hovered);
    });
  }
  function select(id) { selected = isId(id) ? id : null; paint(); }
  function hover(id) { hovered = id; document.querySelectorAll(".ev-item").forEach((e) => e.classList.toggle("ev-hover", +e.dataset.id === id)); }

  // ---------- search ----------
  const box = $("#ev-search"), results = $("#ev-results"), count = $("#ev-count");
  const lower = labels.map((s) => (s || "").toLowerCase());
  let hits = [], shown = 0, cursor = 0, lastQ = null;
  function search(q) {
    // an id first; then labels where every word starts a word of the label; then plain substring matches
    q = q.trim().toLowerCase();
    const out = [];
    const m = q.match(/^#?(\d+)$/);
    if (m) { const id = +m[1]; if (isId(id)) out.push(id); }
    if (!q) { for (let i = 0; i < N; i++) out.push(i); return out; }
    const words = q.replace(/^#/, "").split(/\s+/).filter(Boolean);
    const later = [];
    for (let i = 0; i < N; i++) {
      if (m && i === +m[1]) continue;
      const s = lower[i];
      if (!s) continue;
      let sub = true, start = true;
      for (const w of words) {
        if (!s.includes(w)) { sub = false; break; }
        if (start && !(s.startsWith(w) || s.includes(" " + w))) start = false;
      }
      if (sub) (start ? out : later).push(i);
    }
    return out.concat(later);
  }
  function resultRow(id) {
    const li = el("li"); li.dataset.id = id;
    li.appendChild(el("span", "ev-id", "#" + id));
    const lab = labelOf(id);
    li.appendChild(el("span", lab ? "ev-label" : "ev-label ev-nolabel", lab || "(no label)"));
    li.onclick = () => openFromSearch(id);
    return li;
  }
  function renderMore() {
    const more = $(".ev-more", results); if (more) more.remove();
    const frag = document.createDocumentFragment();
    const stop = Math.min(hits.length, shown + PAGE);
    for (let r = shown; r < stop; r++) frag.appendChild(resultRow(hits[r]));
    shown = stop;
    if (shown < hits.length) {
      const li = el("li", "ev-more", "show " + Math.min(PAGE, hits.length - shown) + " more of " + (hits.length - shown));
      li.onclick = renderMore; frag.appendChild(li);
    }
    results.appendChild(frag); paint(results); moveCursor(0);
  }
  function runSearch() {
    const q = (lastQ = box.value);
    hits = search(q); shown = 0; cursor = 0; results.textContent = "";
    const m = q.trim().match(/^#?(\d+)$/);
    if (m && !isId(+m[1])) count.textContent = "no feature #" + m[1] + " (ids are 0\u2013" + (N - 1) + "); " + hits.length + " label matches";
    else count.textContent = q.trim() ? hits.length + " of " + N + " features match" : N + " features";
    renderMore();
  }
  function moveCursor(d) {
    const rows = results.querySelectorAll("li[data-id]");
    if (!rows.length) return;
    cursor = Math.max(0, Math.min(rows.length - 1, cursor + d));
    rows.forEach((r, i) => r.classList.toggle("ev-cursor", i === cursor));
    if (d) rows[cursor].scrollIntoView({ block: "nearest" });
  }
  let timer = 0;
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(runSearch, N > 20000 ? 120 : 40); });
  box.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") { moveCursor(1); e.preventDefault(); }
    else if (e.key === "ArrowUp") { moveCursor(-1); e.preventDefault(); }
    else if (e.key === "Enter") {
      clearTimeout(timer); if (lastQ !== box.value) runSearch();
      const rows = results.querySelectorAll("li[data-id]");
      if (rows[cursor]) openFromSearch(+rows[cursor].dataset.id, e.shiftKey);
    } else if (e.key === "Escape") { box.value = ""; runSearch(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement !== box) { box.focus(); box.select(); e.preventDefault(); }
  });

  // ---------- cards ----------
  const canvas = $("#ev-canvas");
  const cards = []; // {id, pinned, el}
  const fmt = (v) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : +v.toPrecision(3) + "");
  function snippetNode(text) {
    const li = el("li");
    // the max-activating token is marked like «token»
    text.split(/(\u00ab[^\u00bb]*\u00bb)/).forEach((part) => {
      if (part.startsWith("\u00ab") && part.endsWith("\u00bb")) li.appendChild(el("mark", null, part.slice(1, -1)));
      else if (part) li.appendChild(document.createTextNode(part));
    });
    return li;
  }
  function listNode(card, kind, title, help) {
    const box = el("div", "ev-list"); box.dataset.kind = kind;
    const h = el("h3", null, title); h.title = help; box.appendChild(h);
    const all = entries(kind, card.id);
    const ol = el("ol"); box.appendChild(ol);
    if (!all.length) {
      const has = (meta.has || {})[kind];
      box.appendChild(el("div", "ev-none", !has ? (kind === "cosine" ? "no decoder weights given" : "no effect data")
        : kind === "effects" ? "no effect row for this feature" : "none"));
      return box;
    }
    const scale = Math.max(...all.map((e) => Math.abs(e[1]))) || 1;
    let n = 0;
    const add = (stop) => {
      const frag = document.createDocumentFragment();
      for (; n < Math.min(stop, all.length); n++) {
        const [j, v] = all[n];
        const li = el("li", "ev-item"); li.dataset.id = j;
        li.title = "#" + j + " " + (labelOf(j) || "(no label)") + "  value " + v;
        li.appendChild(el("span", "ev-id", "#" + j + (j === card.id ? "\u00b7self" : "")));
        const lab = labelOf(j);
        li.appendChild(el("span", lab ? "ev-label" : "ev-label ev-nolabel", lab || "(no label)"));
        li.appendChild(el("span", "ev-val", fmt(v)));
        const bar = el("span", "ev-bar"), fill = el("i"); fill.style.width = (100 * Math.max(0, v) / scale).toFixed(1) + "%";
        bar.appendChild(fill); li.appendChild(bar);
        li.onclick = (e) => { e.stopPropagation(); openCard(j, { after: card, pin: e.shiftKey }); };
        li.onmouseenter = () => hover(j); li.onmouseleave = () => hover(null);
        frag.appendChild(li);
      }
      ol.appendChild(frag); paint(ol);
    };
    add(SHOW);
    if (all.length > SHOW) {
      const t = el("button", "ev-toggle", "show all " + all.length);
      t.onclick = (e) => { e.stopPropagation(); add(all.length); t.remove(); };
      box.appendChild(t);
    }
    return box;
  }
  function buildCard(card) {
    const id = card.id, I = getInfo();
    const c = el("div", "ev-card"); c.dataset.id = id;
    const head = el("div", "ev-card-head");
    head.appendChild(el("span", "ev-id", "#" + id));
    const lab = labelOf(id);
    head.appendChild(el("span", "ev-title" + (lab ? "" : " ev-nolabel"), lab || "(no label)"));
    const pin = el("button", "ev-btn ev-pin", "pin"); pin.title = "keep this card when a new search opens a feature";
    pin.onclick = (e) => { e.stopPropagation(); setPinned(card, !card.pinned); };
    const close = el("button", "ev-btn ev-close", "\u00d7"); close.title = "close";
    close.onclick = (e) => { e.stopPropagation(); closeCard(card); };
    head.appendChild(pin); head.appendChild(close);
    c.appendChild(head);
    const body = el("div", "ev-card-body"); c.appendChild(body);
    const m = el("div", "ev-meta");
    const d = I.density ? I.density[id] : null;
    if (d != null) {
      const s = el("span", null, "density " + (100 * d).toPrecision(3) + "% ");
      const bar = el("span", "ev-dbar"), fill = el("i");
      fill.style.width = Math.max(2, Math.min(100, 100 + 16 * Math.log10(Math.max(d, 1e-7)))).toFixed(0) + "%"; // log scale, 1e-6..1
      bar.appendChild(fill); s.appendChild(bar); s.title = "fraction of tokens on which it fires (log-scale bar)"; m.appendChild(s);
    } else m.appendChild(el("span", "ev-nolabel", "density unknown"));
    const url = I.urls ? I.urls[id] : null;
    if (url && /^https?:\/\//.test(url)) {
      const a = el("a", "ev-np", "Neuronpedia \u2197"); a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
      a.onclick = (e) => e.stopPropagation(); m.appendChild(a);
    }
    body.appendChild(m);
    const toks = I.tokens ? I.tokens[id] : null;
    if (toks && toks.length) {
      const t = el("div", "ev-tokens"); toks.forEach((s) => t.appendChild(el("span", null, s))); body.appendChild(t);
    }
    const sn = I.snippets ? I.snippets[id] : null;
    if (sn && sn.length) { const ul = el("ul", "ev-snips"); sn.forEach((s) => ul.appendChild(snippetNode(s))); body.appendChild(ul); }
    const grid = el("div", "ev-lists");
    KINDS.forEach(([k, t, h]) => grid.appendChild(listNode(card, k, t, h)));
    body.appendChild(grid);
    c.onclick = () => select(id);
    return c;
  }
  function layout() {
    // pinned cards first (in pin order), then the unpinned trail
    const order = cards.filter((c) => c.pinned).concat(cards.filter((c) => !c.pinned));
    cards.splice(0, cards.length, ...order);
    order.forEach((c) => canvas.appendChild(c.el));
    const empty = $(".ev-empty", canvas);
    if (empty) empty.style.display = cards.length ? "none" : "";
    writeHash();
  }
  function setPinned(card, on) {
    card.pinned = on; card.el.classList.toggle("ev-pinned", on);
    $(".ev-pin", card.el).textContent = on ? "pinned" : "pin";
    layout();
  }
  function closeCard(card) {
    const i = cards.indexOf(card); if (i >= 0) cards.splice(i, 1);
    card.el.remove(); if (selected === card.id) select(null); layout();
  }
  function openCard(id, opts) {
    opts = opts || {};
    if (!isId(id)) { message("There is no feature #" + id + " (this explorer has features 0\u2013" + (N - 1) + ").", "error"); return null; }
    let card = cards.find((c) => c.id === id);
    if (!card) {
      card = { id, pinned: false, el: null };
      card.el = buildCard(card);
      const at = opts.after ? cards.indexOf(opts.after) : -1;
      if (at >= 0) cards.splice(at + 1, 0, card); else cards.push(card);
      const unpinned = cards.filter((c) => !c.pinned && c !== card);
      while (unpinned.length >= MAX_UNPINNED) closeCard(unpinned.shift());
    }
    if (opts.pin && !card.pinned) setPinned(card, true); else layout();
    select(id);
    card.el.scrollIntoView({ block: "nearest", inline: "nearest" });
    return card;
  }
  function openFromSearch(id, pin) {
    // a search replaces the unpinned trail; pinned cards stay side by side
    cards.filter((c) => !c.pinned && c.id !== id).forEach(closeCard);
    return openCard(id, { pin });
  }

  // ---------- deep links: #feature=12  or  #feature=12,40&pin=3 ----------
  let writing = false;
  function writeHash() {
    const open = cards.filter((c) => !c.pinned).map((c) => c.id), pinned = cards.filter((c) => c.pinned).map((c) => c.id);
    const parts = [];
    if (pinned.length) parts.push("pin=" + pinned.join(","));
    if (open.length) parts.push("feature=" + open.join(","));
    try { writing = true; history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search); } catch (e) { /* srcdoc iframes */ }
    writing = false;
  }
  function readHash() {
    const h = decodeURIComponent(location.hash.replace(/^#/, ""));
    if (!h) return;
    const bad = [];
    h.split("&").forEach((kv) => {
      const [key, val] = kv.split("=");
      if (key !== "feature" && key !== "pin") { bad.push("unknown link key '" + key + "'"); return; }
      (val || "").split(",").filter((s) => s.trim()).forEach((s) => {
        const id = /^\s*\d+\s*$/.test(s) ? +s : NaN;
        if (!isId(id)) bad.push(/^\s*\d+\s*$/.test(s) ? "feature " + s.trim() + " is out of range (this explorer has features 0\u2013" + (N - 1) + ")" : "'" + s + "' is not a feature id");
        else openCard(id, { pin: key === "pin" });
      });
    });
    if (bad.length) message("Link not followed: " + bad.join("; ") + ".", "error");
  }
  window.addEventListener("hashchange", () => { if (!writing) readHash(); });

  // ---------- start ----------
  $("#ev-sub").textContent = (meta.subtitle || "") + (meta.subtitle ? " \u00b7 " : "") + N + " features \u00b7 top " + (meta.k || 0) + " per list";
  runSearch();
  readHash();
  window.EV = { meta, openCard, select, search, entries, cards, get selected() { return selected; } };
  window.EV.readyMs = performance.now();
  document.documentElement.dataset.evReady = "1";
})();
