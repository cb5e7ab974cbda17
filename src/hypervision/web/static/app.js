/* Hypervision web app: live feed, shortcuts, drafts, drag and drop, maps, guided tour.
   No inline script anywhere (strict Content-Security-Policy): everything is here. */
(function () {
  "use strict";
  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var user = body.dataset.user || "";

  // --- HTMX: every request carries the CSRF token -------------------------------------------
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  // --- protection marking: shown as soon as marked content is on the page --------------------
  function updateMarking(root) {
    root = root || document;
    var marked = root.matches && root.matches("[data-marking]") ? root : root.querySelector("[data-marking]");
    if (!marked) return;
    ["marquage-haut", "marquage-bas"].forEach(function (id) {
      var banner = document.getElementById(id);
      if (banner && banner.hidden) { banner.textContent = marked.dataset.marking; banner.hidden = false; }
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    updateMarking(event.target);
    initMaps(event.target);
    initCharts(event.target);
  });

  // --- drafts never outlive the session on a shared workstation ----------------------------
  function forgetDrafts() {
    try {
      Object.keys(localStorage).forEach(function (key) { if (key.indexOf("hv-draft:") === 0) localStorage.removeItem(key); });
    } catch (e) { /* storage off */ }
  }
  document.querySelectorAll('form[action="/deconnexion"]').forEach(function (f) {
    f.addEventListener("submit", forgetDrafts);
  });
  if (location.pathname === "/connexion" && new URLSearchParams(location.search).has("expiree")) forgetDrafts();

  // --- live stream ------------------------------------------------------------------------------
  var feed = document.getElementById("fil");
  var queued = [];
  var news = document.getElementById("nouveautes");
  function announce(text) {
    var live = document.getElementById("annonce");
    if (live) live.textContent = text;
  }
  function insertCards(html) {
    var holder = document.createElement("ol");
    holder.innerHTML = html;
    var card = holder.querySelector("li.hv-card");
    if (!card) return;
    var existing = document.getElementById(card.id);
    if (existing) { existing.replaceWith(card); } else {
      var empty = feed.querySelector(".hv-empty");
      if (empty) empty.remove();
      feed.insertBefore(card, feed.firstChild);
    }
    htmx.process(card);
    updateMarking(card);
    announce(card.querySelector("a") ? card.querySelector("a").textContent : "");
  }
  function showNews() {
    if (!news) return;
    news.hidden = queued.length === 0;
    document.getElementById("nouveautes-nombre").textContent = String(queued.length);
  }
  if (news) {
    news.querySelector("button").addEventListener("click", function () {
      queued.splice(0).reverse().forEach(insertCards);
      showNews();
      window.scrollTo({ top: 0 });
      var first = feed.querySelector("li.hv-card a");
      if (first) first.focus();
    });
  }
  function fetchCard(id, isNew) {
    var url = "/main-courante/carte/" + encodeURIComponent(id) + "?" + (feed.dataset.live || "");
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (r) {
      if (r.status !== 200) return null;
      return r.text();
    }).then(function (html) {
      if (!html) return;
      var readingAway = window.scrollY > 300 || (document.activeElement && feed.contains(document.activeElement) && document.activeElement !== feed.querySelector("li.hv-card a"));
      if (isNew && readingAway) { queued.push(html); showNews(); } else { insertCards(html); }
    });
  }
  var follows = {
    category: (body.dataset.followCategories || "").split(" ").filter(Boolean),
    situation: (body.dataset.followSituations || "").split(" ").filter(Boolean),
    entry: (body.dataset.followEntries || "").split(" ").filter(Boolean)
  };
  var badgeTimer = null;
  function refreshBadge() {
    if (badgeTimer) return;
    badgeTimer = setTimeout(function () {
      badgeTimer = null;
      htmx.ajax("GET", "/suivis/badge", { target: "#badge", swap: "outerHTML" });
    }, 1500);
  }
  function onEntry(event) {
    var data = JSON.parse(event.data);
    document.dispatchEvent(new CustomEvent("hv:entry", { detail: data }));
    document.dispatchEvent(new CustomEvent("hv:live", { detail: { type: event.type, data: data } }));
    if (feed && !feed.hasAttribute("data-live-text")) {
      if (event.type === "entry.create") fetchCard(data.id, true);
      else if (document.getElementById("e-" + data.id)) fetchCard(data.id, false);
    }
    if (event.type === "entry.create" && (follows.category.indexOf(data.category) >= 0 ||
        (data.situation_id && follows.situation.indexOf(data.situation_id) >= 0))) {
      refreshBadge();
    }
    if (event.type !== "entry.create" && follows.entry.indexOf(data.id) >= 0) refreshBadge();
  }
  function onComment(event) {
    var data = JSON.parse(event.data);
    var shown = document.getElementById("entree");
    if (shown && shown.dataset.entry === data.entry_id) {
      body.dispatchEvent(new CustomEvent("hv:comment"));
    }
    if (follows.entry.indexOf(data.entry_id) >= 0) refreshBadge();
  }
  // The stream is reopened by us, not by the browser: an EventSource answered with anything
  // but 200 (a 503 while a replica restarts) closes for good. Backoff with jitter, capped at
  // 30 s; a new EventSource sends no Last-Event-ID, so the last id goes in ?since=.
  var english = (document.documentElement.lang || "fr").indexOf("en") === 0;
  var lastEventId = "";
  var attempt = 0;
  var retryTimer = null;
  var liveState = null;
  function liveIndicator() {
    if (!liveState) {
      liveState = document.createElement("p");
      liveState.id = "etat-direct";
      liveState.setAttribute("role", "status");
      var anchor = feed || document.querySelector("main");
      if (!anchor) return liveState;
      if (feed) { feed.parentNode.insertBefore(liveState, feed); } else { anchor.insertBefore(liveState, anchor.firstChild); }
    }
    return liveState;
  }
  function showLive(state, seconds) {
    body.dataset.live = state;
    var text = {
      connecting: english ? "Connecting to the live feed…" : "Connexion au direct…",
      open: english ? "Live" : "En direct",
      lost: seconds === undefined ? (english ? "Connection lost" : "Connexion perdue") :
        english ? "Connection lost — retrying in " + seconds + " s" : "Connexion perdue — nouvel essai dans " + seconds + " s"
    }[state];
    var badge = liveIndicator();
    badge.className = "fr-badge fr-badge--sm fr-mb-1w " + (state === "open" ? "fr-badge--success" : state === "lost" ? "fr-badge--warning" : "fr-badge--info");
    badge.textContent = text;
  }
  function signInAgain() {
    window.location.href = "/connexion?expiree=1&suite=" + encodeURIComponent(location.pathname + location.search);
  }
  function tracked(handler) {
    return function (event) {
      if (event.lastEventId) lastEventId = event.lastEventId;
      handler(event);
    };
  }
  function scheduleReconnect() {
    attempt += 1;
    var ceiling = Math.min(30, Math.pow(2, attempt - 1));
    var delay = ceiling * (0.5 + Math.random() * 0.5);
    var due = Date.now() + delay * 1000;
    function tick() {
      var left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      if (left <= 0) { retryTimer = null; connect(); return; }
      showLive("lost", left);
      retryTimer = setTimeout(tick, Math.min(1000, due - Date.now()));
    }
    tick();
  }
  // A space's page follows the products its modules show (product:<id>, listed by the page), not every product.
  var spacePage = document.getElementById("espace");
  var spaceTopics = spacePage ? ["situation", "space"].concat((spacePage.dataset.topics || "").split(" ").filter(Boolean)) : [];
  var SPACE_EVENTS = spacePage ? ["product.import", "product.status", "product.schema", "product.rules",
    "product.release", "product.quality", "situation.create", "situation.update", "space.update", "space.archive"] : [];
  // The hub (/accueil) asks for the announcements too: a new or changed one offers a link that shows it.
  var notices = document.querySelector("[data-live-topic='announcement']");
  if (notices) spaceTopics = spaceTopics.concat(["announcement"]);
  var spaceState = window.hvSpaceStream = { opened: 0, watch: null };  // a space's page: spaces.js
  function connect() {
    var url = "/api/v1/stream?topic=entry&topic=comment" + spaceTopics.map(function (t) { return "&topic=" + t; }).join("") +
      (lastEventId ? "&since=" + encodeURIComponent(lastEventId) : "") +
      // a space's page: its modules come pushed through the stream (docs/adr/0052, spaces.js)
      (spacePage && spacePage.dataset.space ? "&space=" + encodeURIComponent(spacePage.dataset.space) +
        "&lang=" + encodeURIComponent(document.documentElement.lang || "fr") : "");
    var stream = new EventSource(url);
    ["space.watch", "space.unwatch", "space.modules", "space.refresh"].forEach(function (type) {
      stream.addEventListener(type, function (event) {
        var data = JSON.parse(event.data);
        // kept for spaces.js, which may load after the stream has opened
        if (type === "space.watch" || type === "space.unwatch") spaceState.watch = type === "space.watch" ? data : null;
        document.dispatchEvent(new CustomEvent("hv:space", { detail: { type: event.type, data: data } }));
      });
    });
    ["announcement.create", "announcement.update", "announcement.withdraw"].forEach(function (type) {
      stream.addEventListener(type, tracked(function () {
        var link = notices && notices.querySelector("#annonces-nouvelles a");
        if (link) link.hidden = false;
      }));
    });
    // A space (spaces.js) refreshes its modules on the events of their topics.
    SPACE_EVENTS.forEach(function (type) {
      stream.addEventListener(type, tracked(function (event) {
        document.dispatchEvent(new CustomEvent("hv:live", { detail: { type: event.type, data: JSON.parse(event.data) } }));
      }));
    });
    ["entry.create", "entry.update", "entry.validate", "entry.severity", "entry.duplicate",
     "entry.situation", "entry.label"].forEach(function (type) { stream.addEventListener(type, tracked(onEntry)); });
    stream.addEventListener("comment.create", tracked(onComment));
    stream.addEventListener("import.progress", function (event) {
      document.dispatchEvent(new CustomEvent("hv:import", { detail: JSON.parse(event.data) }));
    });
    stream.addEventListener("message", tracked(function () {}));
    stream.addEventListener("resync", function () { stream.close(); window.location.reload(); });
    stream.addEventListener("revoked", function () { stream.close(); signInAgain(); });
    // The server is stopping (a release): another replica resumes from the last event id.
    stream.addEventListener("shutdown", function () {
      stream.close();
      showLive("connecting");
      setTimeout(connect, 200 + Math.random() * 800);
    });
    stream.addEventListener("open", function () {
      attempt = 0;
      showLive("open");
      spaceState.opened += 1;
      spaceState.watch = null;
      document.dispatchEvent(new CustomEvent("hv:space", { detail: { type: "open", data: {} } }));
    });
    stream.addEventListener("error", function () {
      stream.close();  // whatever the failure, we reopen it ourselves (below)
      if (retryTimer) return;
      retryTimer = true;
      showLive("lost");
      // refused because the session ended: back to the sign-in page, then to this page
      fetch("/api/v1/auth/me", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) { signInAgain(); return; }
        retryTimer = null;
        scheduleReconnect();
      }, function () { retryTimer = null; scheduleReconnect(); });
    });
  }
  // The security console (/securite) has its own stream, the audit topic (security.js); a
  // role that reads no records (a security officer, an administrator) has no feed to follow.
  if (user && window.EventSource && !document.getElementById("journal-direct") && body.dataset.reader !== "0") {
    showLive("connecting");
    connect();
  }

  // --- import wizard: each step of the import, told on the live stream (ADR 0029) -------------
  // The page stays while the form's answer is awaited, and its stream goes on meanwhile.
  var importForm = document.getElementById("import-apercu");
  var importBox = document.getElementById("import-progres");
  if (importForm && importBox) {
    var importShare = { read: 10, check: 40, write: 60, quality: 85 };
    var importWords = JSON.parse(importBox.dataset.steps || "{}");
    var importBar = document.getElementById("import-barre");
    var importStep = document.getElementById("import-etape");
    importForm.addEventListener("submit", function () {
      importBox.hidden = false;
      importBar.value = 2;
      var button = document.getElementById("import-confirmer");
      setTimeout(function () { button.disabled = true; }, 0);  // once the form is sent
    });
    document.addEventListener("hv:import", function (event) {
      var note = event.detail;
      if (note["import"] !== importBox.dataset["import"] || !(note.step in importShare)) return;
      importBar.value = Math.max(importBar.value, importShare[note.step]);
      importStep.textContent = importWords[note.step] || note.step;
    });
  }

  // --- keyboard shortcuts -----------------------------------------------------------------------
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable], dialog[open]") !== null;
  }
  function moveInFeed(step) {
    if (!feed) return;
    var links = Array.prototype.slice.call(feed.querySelectorAll("li.hv-card .hv-card__link"));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = links[Math.max(0, Math.min(links.length - 1, at < 0 ? 0 : at + step))];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || !user) return;
    if (event.key === "n") { event.preventDefault(); window.location.href = "/main-courante/nouvelle"; }
    else if (event.key === "/") {
      event.preventDefault();
      var box = document.getElementById("q") || document.getElementById("f-q");
      if (box) box.focus(); else window.location.href = "/recherche";
    }
    else if (event.key === "j") { event.preventDefault(); moveInFeed(1); }
    else if (event.key === "k") { event.preventDefault(); moveInFeed(-1); }
    else if (event.key === "?") { event.preventDefault(); window.location.href = "/aide"; }
  });

  // --- new entry: local draft, drag and drop, place picker ----------------------------------
  var form = document.getElementById("nouvelle-entree");
  var draftKey = "hv-draft:" + user;
  var DRAFT_FIELDS = ["title", "category", "body", "place", "lat", "lon", "situation", "idempotency_key"];
  function saveDraft() {
    var draft = {};
    DRAFT_FIELDS.forEach(function (name) { if (form.elements[name]) draft[name] = form.elements[name].value; });
    var sev = form.querySelector('input[name="severity"]:checked');
    if (sev) draft.severity = sev.value;
    try { localStorage.setItem(draftKey, JSON.stringify(draft)); } catch (e) { /* storage full or off */ }
  }
  if (form) {
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (e) { saved = null; }
    if (saved && form.dataset.draft === "restore" && (saved.title || saved.body)) {
      DRAFT_FIELDS.forEach(function (name) { if (saved[name] && form.elements[name]) form.elements[name].value = saved[name]; });
      var radio = saved.severity && document.getElementById("sev-" + saved.severity);
      if (radio) radio.checked = true;
      document.getElementById("brouillon-info").hidden = false;
    }
    var discard = document.getElementById("brouillon-effacer");
    if (discard) discard.addEventListener("click", function () { localStorage.removeItem(draftKey); window.location.reload(); });
    form.addEventListener("input", saveDraft);
    form.addEventListener("change", saveDraft);
    saveDraft();

    var drop = document.getElementById("depot");
    var input = document.getElementById("files");
    var list = document.getElementById("fichiers-choisis");
    function listFiles() {
      list.innerHTML = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var item = document.createElement("li");
        item.textContent = file.name + " (" + (list.dataset.kb || "%(kb)s kB").replace("%(kb)s", Math.ceil(file.size / 1024)) + ")";
        list.appendChild(item);
      });
    }
    input.addEventListener("change", listFiles);
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (event) { event.preventDefault(); drop.classList.add("hv-drop--over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function () { drop.classList.remove("hv-drop--over"); });
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      var merged = new DataTransfer();
      Array.prototype.forEach.call(input.files, function (f) { merged.items.add(f); });
      Array.prototype.forEach.call(event.dataTransfer.files, function (f) { merged.items.add(f); });
      input.files = merged.files;
      listFiles();
    });
  }
  if (document.querySelector("[data-clear-draft]")) localStorage.removeItem(draftKey);

  // --- maps (Leaflet) -------------------------------------------------------------------------
  // The base map, first that answers: the operator's PMTiles file (vector tiles served by the
  // app, drawn by protomaps-leaflet), the configured tile server, the boundaries shipped with
  // the app. map.js (the map page) uses the same through window.hvBaseMap.
  var PARIS = [48.8566, 2.3522];
  var PROTOMAPS = "/static/vendor/protomaps-leaflet/protomaps-leaflet.js";
  var protomapsLoading = null;
  function loadProtomaps() {
    if (window.protomapsL) return Promise.resolve(window.protomapsL);
    if (!protomapsLoading) {
      protomapsLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = PROTOMAPS;
        script.onload = function () { resolve(window.protomapsL); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return protomapsLoading;
  }
  // The shipped boundaries, each file fetched and turned into a layer only when the zoom first
  // needs it: the regions alone when zoomed out; zoomed in, the departments, those of the Paris
  // area from their finer file instead (the files are simplified differently, so drawing two of
  // them shows every shared border twice, slightly offset). A map opened on a city never
  // fetches nor builds the regions, one opened on France never the departments.
  var boundaryFiles = {};
  function boundaryFile(folder, name) {
    var key = folder + name;
    if (!boundaryFiles[key]) boundaryFiles[key] = fetch(folder + name + ".geojson").then(function (r) { return r.json(); });
    return boundaryFiles[key];
  }
  function drawBoundaries(map, element) {
    element.classList.add("hv-map--offline");
    element.dataset.base = "boundaries";
    var folder = element.dataset.boundaries || "/static/vendor/boundaries/";
    var line = { color: "#9a9aca", weight: 1, fillColor: "#f5f5fe", fillOpacity: 0.6, interactive: false };
    function counted(name, data) {
      element.dataset["boundaries" + name.charAt(0).toUpperCase() + name.slice(1)] = String(data.features.length);
      return data;
    }
    var layers = {
      wide: function () {
        return boundaryFile(folder, "regions").then(function (regions) {
          return L.geoJSON(counted("regions", regions), { style: line, interactive: false });
        });
      },
      close: function () {
        return Promise.all([boundaryFile(folder, "departements"), boundaryFile(folder, "paris")]).then(function (all) {
          var finer = {};
          counted("departements", all[0]);
          counted("paris", all[1]).features.forEach(function (f) { finer[f.properties.name] = true; });
          var features = all[0].features.filter(function (f) { return !finer[f.properties.name]; }).concat(all[1].features);
          return L.geoJSON({ type: "FeatureCollection", features: features }, { style: line, interactive: false });
        });
      }
    };
    var built = {}, shown = null;
    function pick() {
      var which = map.getZoom() <= 6 ? "wide" : "close";
      if (!built[which]) built[which] = layers[which]();
      built[which].then(function (layer) {
        var now = map.getZoom() <= 6 ? "wide" : "close";
        if (now !== which) return;  // zoomed across meanwhile: that pick draws
        if (shown && shown !== layer) map.removeLayer(shown);
        if (!map.hasLayer(layer)) { layer.addTo(map); layer.bringToBack(); }
        shown = layer;
        element.dataset.boundariesDrawn = String(layer.getLayers().length);
      });
    }
    map.on("zoomend", pick);
    pick();
  }
  function drawTiles(map, element, next) {
    var loaded = 0, failed = 0;
    var tiles = L.tileLayer(body.dataset.tiles, { attribution: body.dataset.tilesAttribution || "", maxZoom: 19 });
    tiles.on("tileload", function () { loaded += 1; });
    tiles.on("tileerror", function () {
      failed += 1;
      if (loaded === 0 && failed === 2) { map.removeLayer(tiles); next(); }
    });
    if (!map.attributionControl) L.control.attribution().addTo(map);
    tiles.addTo(map);
    element.dataset.base = "tiles";
  }
  function drawPmtiles(map, element, next) {
    var url = new URL(element.dataset.pmtiles, location.href).href;
    // The 127-byte header first: a file that answers, in PMTiles v3, of vector tiles.
    fetch(url, { credentials: "same-origin", headers: { Range: "bytes=0-126" } }).then(function (r) {
      if (r.status !== 206) throw new Error("no base map");
      return r.arrayBuffer();
    }).then(function (buffer) {
      var head = new Uint8Array(buffer);
      if (String.fromCharCode.apply(null, head.slice(0, 7)) !== "PMTiles" || head[7] !== 3 || head[99] !== 1) throw new Error("not a PMTiles v3 vector base map");
      return loadProtomaps().then(function (protomaps) {
        var layer = protomaps.leafletLayer({ url: url, flavor: "light", lang: document.documentElement.lang || "fr", maxDataZoom: head[101], maxZoom: 19 });
        if (!map.attributionControl) L.control.attribution().addTo(map);
        layer.addTo(map);
        layer.bringToBack();
        element.dataset.base = "pmtiles";
      });
    }).catch(next);
  }
  function baseLayers(map, element) {
    var steps = [];
    if (element.dataset.pmtiles) steps.push(drawPmtiles);
    if (body.dataset.tiles) steps.push(drawTiles);
    function next() {
      var step = steps.shift();
      if (step) step(map, element, next); else drawBoundaries(map, element);
    }
    next();
  }
  window.hvBaseMap = baseLayers;
  function baseMap(element, options) {
    var map = L.map(element, Object.assign({ zoomControl: true, attributionControl: false, maxZoom: 19 }, options || {}));
    baseLayers(map, element);
    return map;
  }
  // The entry's place: Leaflet's pin without its shadow, an image that has no high-density
  // version (blurred on phones; the pin itself has one).
  var PlaceIcon = null;
  function placeIcon() {
    if (!PlaceIcon) PlaceIcon = L.Icon.Default.extend({ createShadow: function () { return null; } });
    return new PlaceIcon();
  }
  function venues() {
    return Array.prototype.map.call(document.querySelectorAll("#lieux option"), function (o) {
      return { name: o.value, lat: parseFloat(o.dataset.lat), lon: parseFloat(o.dataset.lon) };
    });
  }
  // The place picker of the new-entry form and of the correction form (#carte-saisie,
  // #carte-correction): a click, a venue, an address found or typed coordinates move one pin
  // and fill the lat/lon fields, whose "input" event keeps the form's draft.
  function initPicker(element) {
    var map = baseMap(element).setView(PARIS, 11);
    var lat = document.getElementById("lat"), lon = document.getElementById("lon"), place = document.getElementById("place");
    var marker = null, former = null;
    function put(latlng, keepPlace) {
      if (former) { map.removeLayer(former); former = null; }
      if (marker) marker.setLatLng(latlng); else marker = L.marker(latlng, { keyboard: false, icon: placeIcon() }).addTo(map);
      lat.value = latlng.lat.toFixed(5); lon.value = latlng.lng.toFixed(5);
      if (!keepPlace) place.value = "";
      lat.dispatchEvent(new Event("input", { bubbles: true }));
    }
    venues().forEach(function (v) {
      L.circleMarker([v.lat, v.lon], { radius: 5, weight: 1, color: "#000091" }).addTo(map)
        .bindTooltip(v.name).on("click", function () { place.value = v.name; put(L.latLng(v.lat, v.lon), true); });
    });
    map.on("click", function (event) { put(event.latlng, false); });
    place.addEventListener("change", function () {
      var found = venues().filter(function (v) { return v.name.toLowerCase() === place.value.trim().toLowerCase(); })[0];
      if (found) { put(L.latLng(found.lat, found.lon), true); map.setView([found.lat, found.lon], 14); }
    });
    [lat, lon].forEach(function (field) {
      field.addEventListener("change", function () {
        var a = parseFloat(lat.value.replace(",", ".")), b = parseFloat(lon.value.replace(",", "."));
        if (!isNaN(a) && !isNaN(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180) put(L.latLng(a, b), false);
      });
    });
    var holder = element.closest("[data-location]");  // a correction: the entry's place now
    if (lat.value && lon.value) {
      var at = L.latLng(parseFloat(lat.value), parseFloat(lon.value));
      put(at, true);
      if (holder) map.setView(at, 15);
    } else if (holder) {  // a line or an area: shown until a point replaces it
      former = L.geoJSON(JSON.parse(holder.dataset.location), { interactive: false }).addTo(map);
      map.fitBounds(former.getBounds(), { maxZoom: 15 });
    }
    (element.closest("form") || document).addEventListener("hv:place", function (event) { // _place_search.html
      var d = event.detail;
      place.value = d.kind === "venue" ? d.name : "";
      put(L.latLng(d.lat, d.lon), true);
      map.setView([d.lat, d.lon], 16);
    });
  }
  function initShow(element) {
    var holder = element.closest("[data-location]");
    if (!holder) return;
    var shape = L.geoJSON(JSON.parse(holder.dataset.location), {
      pointToLayer: function (feature, latlng) {
        return L.marker(latlng, { icon: placeIcon(), interactive: false, keyboard: false });
      }
    });
    var map = baseMap(element, { scrollWheelZoom: false });
    shape.addTo(map);
    map.fitBounds(shape.getBounds(), { maxZoom: 15 });
  }
  var leafletRequested = false;
  function loadLeaflet() {  // a map arrived in a page that does not carry Leaflet (the feed)
    var meta = document.querySelector('meta[name="hv-leaflet"]');
    if (leafletRequested || !meta) return;
    leafletRequested = true;
    var waiting = 2;  // the stylesheet and the script
    function ready() { if (--waiting === 0) initMaps(document); }
    var link = document.createElement("link");
    link.rel = "stylesheet"; link.href = meta.dataset.css; link.onload = link.onerror = ready;
    document.head.appendChild(link);
    var script = document.createElement("script");
    script.src = meta.content; script.onload = ready;
    document.head.appendChild(script);
  }
  function initMaps(root) {
    if (!window.L) {
      if ((root || document).querySelector("[data-map]")) loadLeaflet();
      return;
    }
    (root || document).querySelectorAll("[data-map]").forEach(function (element) {
      if (element.dataset.ready) return;
      element.dataset.ready = "1";
      if (element.dataset.map === "pick") initPicker(element); else initShow(element);
    });
  }
  initMaps(document);

  // --- charts: ECharts (about 1 MB) and charts.js load only when a chart shows (ADR 0043) ----
  var chartsRequested = false;
  function initCharts(root) {
    var scope = root || document;
    if (window.HvCharts || chartsRequested) return;  // charts.js draws what htmx brings
    if (!(scope.matches && scope.matches("[data-chart]")) && !scope.querySelector("[data-chart]")) return;
    var meta = document.querySelector('meta[name="hv-charts"]');
    if (!meta) return;
    chartsRequested = true;
    var engine = document.createElement("script");
    engine.src = meta.dataset.echarts;
    engine.onload = function () {
      var own = document.createElement("script");
      own.src = meta.content;
      document.head.appendChild(own);
    };
    document.head.appendChild(engine);
  }
  initCharts(document);

  // --- guided tour (first visit; replayable from the help page) ------------------------------
  var dialog = document.getElementById("visite");
  if (dialog && body.dataset.tour === "pending" && location.pathname === "/main-courante" &&
      !new URLSearchParams(location.search).has("entree")) {  // not over an entry being read
    var steps = Array.prototype.slice.call(document.getElementById("visite-etapes").content.querySelectorAll("p"));
    var index = 0, target = null;
    function show() {
      var step = steps[index];
      if (target) target.classList.remove("hv-tour-target");
      target = step.dataset.step ? document.querySelector('[data-tour-step="' + step.dataset.step + '"]') : null;
      if (target) { target.classList.add("hv-tour-target"); target.scrollIntoView({ block: "nearest" }); }
      document.getElementById("visite-titre").textContent = step.dataset.title;
      document.getElementById("visite-texte").textContent = step.textContent;
      dialog.dataset.step = String(index + 1);
      if (index > 0) dialog.querySelector('[data-tour="next"]').focus();  // never on arrival
    }
    function finish() {
      if (target) target.classList.remove("hv-tour-target");
      dialog.close();
      body.dataset.tour = "done";
      fetch("/visite", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    }
    dialog.querySelector('[data-tour="next"]').addEventListener("click", function () {
      index += 1;
      if (index >= steps.length) finish(); else show();
    });
    dialog.querySelector('[data-tour="skip"]').addEventListener("click", finish);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && dialog.open) finish();
    });
    // Not modal: the officer may start working at once, the tour waits in its corner and
    // comes back on the next visit of the feed until it is finished or skipped.
    var before = document.activeElement;
    dialog.show();  // show() moves the focus into the dialog: give it back
    if (before && before !== document.body && before.focus) before.focus();
    else if (document.activeElement) document.activeElement.blur();
    show();
  }
})();
