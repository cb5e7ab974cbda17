/* The space editor (docs/adr/0044), loaded only on /espaces/{id}/modifier.
   The modules are one JSON document: every change pushes the document before it on the undo
   stack, redraws the cards and saves the whole list by PATCH /api/v1/spaces/{id} (If-Match:
   a conflict is told, never overwritten), so each save is a version on the server too.
   Each module's preview is read as the officer from its unsaved settings (POST …/apercu).
   Moving and resizing: drag a card's handle (or its corner), or arrow keys on a card (Shift:
   resize), or the buttons of its settings; every change is announced (aria-live). */
(function () {
  "use strict";
  var root = document.getElementById("editeur");
  if (!root) return;
  var COLUMNS = 12, MAX_ROWS = 12, MAX_MODULES = 40;
  var doc = JSON.parse(root.dataset.document);
  var C = JSON.parse(root.dataset.choices);
  var M = C.messages;
  var grid = document.getElementById("editeur-grille");
  var panel = document.getElementById("reglages");
  var fields = document.getElementById("reglages-champs");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var english = (document.documentElement.lang || "fr").indexOf("en") === 0;
  var palette = {};
  C.palette.forEach(function (k) { palette[k.type] = k; });
  var modules = doc.modules, etag = doc.etag, undo = [], redo = [], cards = {};
  var selected = null, burst = null, burstTimer = null;

  function say(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; });
  }
  function copy(value) { return JSON.parse(JSON.stringify(value)); }
  function find(id) { return modules.filter(function (m) { return m.id === id; })[0]; }
  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function titleOf(m) { return m.title || (palette[m.type] || {}).name || m.type; }
  function byId(id) { return document.getElementById(id); }
  function announce(text) {
    var box = byId("editeur-annonce");
    box.textContent = "";
    setTimeout(function () { box.textContent = text; }, 30);
  }
  function status(text) { byId("editeur-etat").textContent = text; }
  function showError(text) {
    byId("editeur-erreur-texte").textContent = text;
    byId("editeur-erreur").hidden = !text;
  }

  // --- geometry: a module pushes down whatever it now overlaps (cascading) -----------------
  function overlaps(a, b) {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  }
  function settle(moved) {
    var queue = [moved];
    for (var guard = 0; queue.length && guard < 400; guard++) {
      var m = queue.shift();
      modules.forEach(function (o) {
        if (o !== m && overlaps(m, o)) { o.y = m.y + m.h; queue.push(o); }
      });
    }
  }
  function freeSpot(w, h) {
    for (var y = 0; y < 500; y++) {
      for (var x = 0; x + w <= COLUMNS; x++) {
        var spot = { x: x, y: y, w: w, h: h };
        if (!modules.some(function (o) { return overlaps(spot, o); })) return spot;
      }
    }
    return { x: 0, y: 0, w: w, h: h };
  }

  // --- history and saving ---------------------------------------------------------------------
  function snapshot() {
    undo.push(copy(modules));
    if (undo.length > 100) undo.shift();
    redo = [];
  }
  function change(mutate, message) {
    snapshot();
    burst = null;
    mutate();
    commit(message);
  }
  function typing(key, mutate) {  // a burst of typing in one field is one step of the history
    if (burst !== key) { snapshot(); burst = key; }
    clearTimeout(burstTimer);
    burstTimer = setTimeout(function () { burst = null; }, 1500);
    mutate();
    commit(null);
  }
  function commit(message) {
    draw();
    queue({ modules: modules });
    if (message) announce(message);
  }
  function travel(from, to, message) {
    if (!from.length) return;
    to.push(copy(modules));
    modules = from.pop();
    burst = null;
    if (selected && !find(selected)) select(null);
    commit(message);
    if (selected) build();
  }
  byId("annuler").addEventListener("click", function () { travel(undo, redo, M.undone); });
  byId("retablir").addEventListener("click", function () { travel(redo, undo, M.redone); });
  byId("recharger").addEventListener("click", function () { location.reload(); });

  var pending = null, saveTimer = null, saving = false, conflict = false;
  function queue(payload) {
    if (conflict) return;
    pending = Object.assign(pending || {}, payload);
    status(M.saving);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(send, 400);
  }
  function send() {
    if (saving || !pending || conflict) return;
    var body = pending;
    pending = null;
    saving = true;
    fetch("/api/v1/spaces/" + doc.id, {
      method: "PATCH",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "If-Match": etag, "X-CSRF-Token": csrf,
                 "Accept-Language": english ? "en" : "fr" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 412) {
        conflict = true;
        byId("editeur-conflit").hidden = false;
        status("");
        byId("recharger").focus();
        return null;
      }
      return response.json().then(function (data) {
        if (!response.ok) throw new Error((data.error && data.error.message) || String(response.status));
        etag = response.headers.get("ETag") || etag;
        doc.label = data.label;
        root.dataset.version = data.version;
        status(say(M.saved, { v: data.version }));
        showError("");
      });
    }).catch(function (error) {
      status("");
      showError(say(M.notSaved, { message: error.message }));
    }).then(function () {
      saving = false;
      if (pending) send(); else if (leaving) location.href = leaving;
    });
  }
  // Leaving for the space's page waits for the last change to be saved.
  var leaving = null;
  byId("voir-espace").addEventListener("click", function (event) {
    if (!pending && !saving) return;
    event.preventDefault();
    leaving = this.href;
    clearTimeout(saveTimer);
    send();
  });

  // --- the cards --------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function place(card, m) {
    ["x", "y"].forEach(function (k) { card.style.setProperty("--" + k, m[k] + 1); });
    ["w", "h"].forEach(function (k) { card.style.setProperty("--" + k, m[k]); });
  }
  function makeCard(m) {
    var card = el("div", { "class": "hv-module hv-module--edit", role: "listitem", tabindex: "0",
                           "data-id": m.id, "aria-describedby": "editeur-aide" });
    var bar = el("div", { "class": "hv-module__bar" });
    bar.appendChild(el("button", { type: "button", title: M.drag,
      "class": "fr-btn fr-btn--sm fr-btn--tertiary-no-outline fr-icon-drag-move-2-line hv-module__handle" }, M.drag));
    bar.appendChild(el("p", { "class": "hv-module__bar-title" }));
    bar.appendChild(el("button", { type: "button", title: M.configure, "data-act": "configure",
      "class": "fr-btn fr-btn--sm fr-btn--tertiary-no-outline fr-icon-settings-5-line" }, M.configure));
    bar.appendChild(el("button", { type: "button", title: M.remove, "data-act": "remove",
      "class": "fr-btn fr-btn--sm fr-btn--tertiary-no-outline fr-icon-delete-line" }, M.remove));
    card.appendChild(bar);
    var box = el("div", { "class": "hv-module__preview" });
    box.inert = true;  // a preview: nothing in it is to be used here
    card.appendChild(box);
    card.appendChild(el("div", { "class": "hv-module__resize", "aria-hidden": "true", title: M.resize }));
    cards[m.id] = card;
    return card;
  }
  var previewTimers = {};
  function release(node) {  // what was drawn in it (a chart's canvas and observer) is freed
    node.dispatchEvent(new CustomEvent("htmx:beforeCleanupElement", { bubbles: true }));
  }
  function preview(m, card) {
    var key = JSON.stringify([m.type, m.config]);
    if (card.dataset.key === key) return;
    card.dataset.key = key;
    var box = card.querySelector(".hv-module__preview");
    clearTimeout(previewTimers[m.id]);
    previewTimers[m.id] = setTimeout(function () {
      // A new slot each time, the request's source as well as its target: htmx queues the
      // requests of one source element (by default, the body for all of them) and keeps only
      // the last of those waiting, so previews asked for together would be lost.
      var slot = el("div", { "class": "hv-module__slot" });
      if (box.firstChild) { release(box.firstChild); box.replaceChild(slot, box.firstChild); } else box.appendChild(slot);
      box.setAttribute("aria-busy", "true");
      htmx.ajax("POST", "/espaces/" + doc.id + "/apercu", {
        source: slot, target: slot, swap: "innerHTML", values: { module: JSON.stringify(m) }
      }).then(function () { if (slot.parentNode) box.removeAttribute("aria-busy"); });
    }, card.dataset.shown ? 350 : 0);
    card.dataset.shown = "1";
  }
  function draw() {
    Object.keys(cards).forEach(function (id) {
      if (!find(id)) { release(cards[id]); cards[id].remove(); delete cards[id]; }
    });
    var ordered = modules.slice().sort(function (a, b) { return a.y - b.y || a.x - b.x; });
    var focused = document.activeElement;
    var current = Array.prototype.map.call(grid.children, function (c) { return c.dataset.id; });
    var wanted = ordered.map(function (m) { return m.id; });
    ordered.forEach(function (m) {
      var card = cards[m.id] || makeCard(m);
      place(card, m);
      card.querySelector(".hv-module__bar-title").textContent = titleOf(m);
      card.setAttribute("aria-label", say(M.module, { title: titleOf(m) }));
      card.classList.toggle("hv-module--selected", m.id === selected);
      if (current.join(" ") !== wanted.join(" ")) grid.appendChild(card);  // reading order
      preview(m, card);
    });
    if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus();
    byId("editeur-vide").hidden = modules.length > 0;
    byId("annuler").disabled = !undo.length;
    byId("retablir").disabled = !redo.length;
  }

  // --- adding, moving, resizing, removing ------------------------------------------------------
  function add(type) {
    var kind = palette[type];
    if (modules.length >= MAX_MODULES) return;
    var config = copy(kind.config);
    if (kind.needsProduct) {
      if (!C.products.length) { showError(M.noProduct); return; }
      config = { product_id: C.products[0].id };
    }
    var spot = freeSpot(kind.w, kind.h);
    var m = { id: type + "-" + Math.random().toString(36).slice(2, 7), type: type, title: kind.name,
              x: spot.x, y: spot.y, w: kind.w, h: kind.h, config: config };
    change(function () { modules.push(m); }, say(M.added, { title: kind.name, x: m.x + 1, y: m.y + 1 }));
    select(m.id);
  }
  function move(id, dx, dy) {
    var m = find(id);
    var x = clamp(m.x + dx, 0, COLUMNS - m.w), y = Math.max(0, m.y + dy);
    if (x === m.x && y === m.y) { announce(say(M.moved, { title: titleOf(m), x: x + 1, y: y + 1 })); return; }
    change(function () { m.x = x; m.y = y; settle(m); }, say(M.moved, { title: titleOf(m), x: x + 1, y: y + 1 }));
  }
  function resize(id, dw, dh) {
    var m = find(id);
    var w = clamp(m.w + dw, 1, COLUMNS - m.x), h = clamp(m.h + dh, 1, MAX_ROWS);
    var words = say(M.resized, { title: titleOf(m), w: w, h: h });
    if (w === m.w && h === m.h) { announce(words); return; }
    change(function () { m.w = w; m.h = h; settle(m); }, words);
  }
  function removeModule(id) {
    var m = find(id);
    var index = modules.indexOf(m);
    change(function () { modules.splice(index, 1); }, say(M.removed, { title: titleOf(m) }));
    select(null);
    var next = grid.querySelector(".hv-module--edit");
    (next || byId("ajouter-" + m.type)).focus();
  }
  function select(id) {
    selected = id;
    Object.keys(cards).forEach(function (k) { cards[k].classList.toggle("hv-module--selected", k === id); });
    panel.hidden = !id;
    if (id) build();
  }
  root.querySelectorAll(".hv-palette__item").forEach(function (button) {
    button.addEventListener("click", function () { add(button.dataset.type); });
  });
  grid.addEventListener("click", function (event) {
    var card = event.target.closest(".hv-module--edit");
    if (!card) return;
    var act = event.target.closest("[data-act]");
    if (act && act.dataset.act === "remove") { removeModule(card.dataset.id); return; }
    select(card.dataset.id);
    if (act) byId("reglage-titre").focus();
  });
  grid.addEventListener("keydown", function (event) {
    var card = event.target;
    if (!card.classList || !card.classList.contains("hv-module--edit")) return;
    var id = card.dataset.id;
    var arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    var step = arrows[event.key];
    if (step) {
      if (event.shiftKey) resize(id, step[0], step[1]); else move(id, step[0], step[1]);
      if (selected !== id) select(id);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      removeModule(id);
    } else if (event.key === "Enter" || event.key === " ") {
      select(id);
      byId("reglage-titre").focus();
    } else {
      return;
    }
    event.preventDefault();
  });
  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
    var key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) travel(undo, redo, M.undone);
    else if (key === "y" || (key === "z" && event.shiftKey)) travel(redo, undo, M.redone);
    else return;
    event.preventDefault();
  });
  panel.querySelectorAll("[data-move], [data-size]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!selected) return;
      var d = (button.dataset.move || button.dataset.size).split(",").map(Number);
      if (button.dataset.move) move(selected, d[0], d[1]); else resize(selected, d[0], d[1]);
    });
  });
  byId("supprimer-module").addEventListener("click", function () { if (selected) removeModule(selected); });
  byId("fermer-reglages").addEventListener("click", function () {
    var id = selected;
    select(null);
    if (id && cards[id]) cards[id].focus();
  });

  // --- drag and drop (pointer events; a phone stacks the modules: buttons and keys there) ---
  grid.addEventListener("pointerdown", function (event) {
    var handle = event.target.closest(".hv-module__handle, .hv-module__resize");
    if (!handle || event.button !== 0 || !window.matchMedia("(min-width: 62em)").matches) return;
    var card = handle.closest(".hv-module--edit"), m = find(card.dataset.id);
    var sizing = handle.classList.contains("hv-module__resize");
    var gap = parseFloat(getComputedStyle(grid).columnGap) || 16;
    var pitchX = (grid.getBoundingClientRect().width + gap) / COLUMNS;
    var pitchY = (card.getBoundingClientRect().height + gap) / m.h;
    var start = { x: event.clientX, y: event.clientY };
    var target = { x: m.x, y: m.y, w: m.w, h: m.h };
    handle.setPointerCapture(event.pointerId);
    card.classList.add("hv-module--dragging");
    event.preventDefault();
    function follow(e) {
      var dx = Math.round((e.clientX - start.x) / pitchX), dy = Math.round((e.clientY - start.y) / pitchY);
      if (sizing) {
        target.w = clamp(m.w + dx, 1, COLUMNS - m.x);
        target.h = clamp(m.h + dy, 1, MAX_ROWS);
      } else {
        target.x = clamp(m.x + dx, 0, COLUMNS - m.w);
        target.y = Math.max(0, m.y + dy);
      }
      place(card, target);
    }
    function drop() {
      handle.removeEventListener("pointermove", follow);
      handle.removeEventListener("pointerup", drop);
      handle.removeEventListener("pointercancel", drop);
      card.classList.remove("hv-module--dragging");
      if (target.x === m.x && target.y === m.y && target.w === m.w && target.h === m.h) { place(card, m); return; }
      var words = sizing ? say(M.resized, { title: titleOf(m), w: target.w, h: target.h })
                         : say(M.moved, { title: titleOf(m), x: target.x + 1, y: target.y + 1 });
      change(function () { Object.assign(m, target); settle(m); }, words);
    }
    handle.addEventListener("pointermove", follow);
    handle.addEventListener("pointerup", drop);
    handle.addEventListener("pointercancel", drop);
  });

  // --- sharing: the label's organisations, and whether the space is personal ----------------
  function share() {
    var all = byId("partage-tous").checked;
    var orgs = Array.prototype.map.call(
      root.querySelectorAll("#partage-organisations input:checked"), function (i) { return i.value; });
    var label = { level: doc.label.level, need_to_know: doc.label.need_to_know,
                  audience: all ? [] : [doc.ownOrganisation].concat(orgs) };
    var payload = { label: label };
    var personal = byId("partage-personnel");
    if (personal) payload.personal = personal.checked;
    queue(payload);
    announce(M.shared);
  }
  function words(value) { return value.split(/[\s,;]+/).filter(function (w) { return w; }); }
  byId("partage-personnes").addEventListener("change", function () {
    queue({ people: words(byId("partage-personnes").value) });
    announce(M.shared);
  });
  // --- the space's title and description, saved when the field is left ----------------------
  byId("espace-nom").addEventListener("change", function () {
    var title = byId("espace-nom").value.trim();
    if (!title) { byId("espace-nom").value = doc.title; return; }  // a space keeps a title
    doc.title = title;
    queue({ title: title });
    announce(M.described);
  });
  byId("espace-description").addEventListener("change", function () {
    queue({ description: byId("espace-description").value });
    announce(M.described);
  });
  root.querySelectorAll("#partage input[type=radio], #partage input[type=checkbox]").forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.name === "organisation" && input.checked) byId("partage-choisies").checked = true;
      share();
    });
  });

  window.hvSpaceEditor = { settings: null, module: function () { return find(selected); },
                           change: change, typing: typing, build: function () { build(); } };
  function build() {
    if (window.hvSpaceEditor.settings) window.hvSpaceEditor.settings(fields, find(selected), C);
  }
  draw();
  root.dataset.ready = "1";  // the page can be used (the tests wait for it)
})();
