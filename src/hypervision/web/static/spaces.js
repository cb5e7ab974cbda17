/* A space's page (docs/adr/0041): each module loads on its own (htmx, in parallel); the live
   stream (app.js) pushes the new content of its modules when events change them (docs/adr/
   0052), and for what it does not push the page reloads the modules in one request (0051);
   the page's protection marking rises to the highest module's; map modules draw their GeoJSON (and the layers and products they name, read as the
   reader). The editor's previews (space_editor.js) are drawn by the same code. */
(function () {
  "use strict";
  var space = document.getElementById("espace") || document.createElement("div");

  // --- layout: the grid's places (CSSOM: the pages' CSP allows no style attribute) ----------
  space.querySelectorAll("[data-module]").forEach(function (section) {
    ["x", "y", "w", "h"].forEach(function (name) {
      section.style.setProperty("--" + name, section.dataset[name]);
    });
  });

  // --- live: modules pushed through the stream (docs/adr/0052) -------------------------------
  // The stream watches the space: it names the modules it will push (space.watch), then sends
  // their new content when events change them (space.modules). Those are not asked for; the
  // others (a form, the latest synthesis) still are, below. A reopened stream may have missed
  // pushes: its modules are asked for once. space.refresh: the server could not push, the
  // page asks; space.unwatch: it stopped pushing (the space changed), the page asks again.
  var pushed = {}, opened = 0;
  function watched(data) {
    pushed = {};
    (data.modules || []).forEach(function (id) {
      pushed[id] = true;
      if (opened > 1) pending[id] = true;  // a reopened stream: what it missed, asked once
    });
    schedule();
  }
  document.addEventListener("hv:space", function (event) {
    var detail = event.detail || {}, data = detail.data || {};
    if (detail.type === "open") { opened += 1; pushed = {}; return; }  // by request until watched
    if (!space.dataset.space || data.space !== space.dataset.space) return;
    if (detail.type === "space.watch") {
      watched(data);
    } else if (detail.type === "space.unwatch") {
      pushed = {};  // the server no longer pushes: events are asked for again
    } else if (detail.type === "space.modules") {
      var sections = {};
      space.querySelectorAll("[data-module]").forEach(function (s) { sections[s.dataset.module] = s; });
      Object.keys(data.modules || {}).forEach(function (id) {
        if (sections[id]) htmx.swap(sections[id], data.modules[id], { swapStyle: "innerHTML" });
      });
    } else if (detail.type === "space.refresh") {
      (data.modules || []).forEach(function (id) { pending[id] = true; });
      schedule();
    }
  });

  // --- live: refresh the modules of the events' topics, in one request ----------------------
  // The events that come within WINDOW ms of the first are gathered, then one request
  // (GET /espaces/{id}/modules?modules=a,b,c) brings the content of every module they concern;
  // while it runs, further events gather for the next (one request at a time per page: a
  // burst of imported rows reloads the modules twice, not once per row).
  var WINDOW = 300;
  var pending = {}, timer = null, busy = false;
  function refresh(section) {
    pending[section.dataset.module] = true;
    schedule();
  }
  function schedule() {
    if (timer || busy || !Object.keys(pending).length) return;
    timer = setTimeout(load, WINDOW);
  }
  function load() {
    timer = null;
    var ids = Object.keys(pending);
    pending = {};
    busy = true;
    var url = "/espaces/" + encodeURIComponent(space.dataset.space) + "/modules?modules=" +
      ids.map(encodeURIComponent).join(",");
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true", "X-Hypervision-Background": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) swapAll(html); })
      .catch(function () { /* kept as it was: the next event tries again */ })
      .then(function () { busy = false; schedule(); });
  }
  function swapAll(html) {
    var sections = {};
    space.querySelectorAll("[data-module]").forEach(function (s) { sections[s.dataset.module] = s; });
    var parsed = new DOMParser().parseFromString(html, "text/html");
    parsed.querySelectorAll("template[data-fragment]").forEach(function (fragment) {
      var section = sections[fragment.dataset.fragment];
      // htmx's own swap: its afterSwap (marking, maps, below) and load (charts) events follow
      if (section) htmx.swap(section, fragment.innerHTML, { swapStyle: "innerHTML" });
    });
  }
  document.addEventListener("hv:live", function (event) {
    var detail = event.detail || {};
    var topic = String(detail.type || "").split(".")[0];
    if (!space.dataset.space) return;
    if (topic === "space") {
      if (detail.data && detail.data.id === space.dataset.space) location.reload();
      return;
    }
    // a module follows a kind (entry) or one product (product:<id>): only its own events refresh it
    var one = topic + ":" + String((detail.data && detail.data.resource_id) || "");
    space.querySelectorAll("[data-module]").forEach(function (section) {
      var topics = (section.dataset.live || "").split(" ");
      if (pushed[section.dataset.module]) return;  // it comes through the stream
      if (topics.indexOf(topic) >= 0 || topics.indexOf(one) >= 0) refresh(section);
    });
  });

  // the stream may have opened before this script ran: app.js keeps what it said
  var said = window.hvSpaceStream;
  if (said) {
    opened = said.opened;
    if (said.watch && said.watch.space === space.dataset.space) watched(said.watch);
  }

  // --- marking: the page carries the highest level its modules show ------------------------
  var top = 0;
  function raiseMarking(body) {
    var rank = parseInt(body.dataset.rank || "0", 10);
    if (!body.dataset.marking || rank <= top) return;
    top = rank;
    ["marquage-haut", "marquage-bas"].forEach(function (id) {
      var banner = document.getElementById(id);
      if (!banner) return;
      banner.textContent = body.dataset.marking;
      banner.hidden = false;
    });
  }

  // --- maps ----------------------------------------------------------------------------------
  var COLOURS = { info: "#0063cb", minor: "#b34000", major: "#ce0500", critical: "#6e0000" };
  function drawMap(box) {
    if (!window.L || !box.dataset.geo) return;
    var geo = JSON.parse(box.dataset.geo);
    var map = L.map(box, { attributionControl: false, zoomControl: true, maxZoom: 18 });
    map.setView([48.8566, 2.3522], 11);
    if (window.hvBaseMap) window.hvBaseMap(map, box);
    var zones = L.geoJSON(geo.zones, { style: { color: "#18753c", weight: 2, fillOpacity: 0.08 } }).addTo(map);
    var points = L.geoJSON(geo.entries, {
      pointToLayer: function (feature, at) {
        var colour = COLOURS[feature.properties.severity] || COLOURS.info;
        return L.circleMarker(at, { radius: 6, color: colour, fillColor: colour, fillOpacity: 0.8 });
      },
      onEachFeature: function (feature, layer) {
        var link = document.createElement("a");
        link.href = "/main-courante/" + feature.properties.id;
        link.textContent = feature.properties.title;
        layer.bindPopup(link);
      }
    }).addTo(map);
    var bounds = points.getBounds();
    if (zones.getBounds().isValid()) bounds = bounds.isValid() ? bounds.extend(zones.getBounds()) : zones.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.2), { maxZoom: 15 });
    function overlay(url, colour) {  // read as the reader by the layer's or product's own route
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) L.geoJSON(data, { style: { color: colour, weight: 2 } }).addTo(map); });
    }
    (geo.layers || []).forEach(function (id) { overlay("/api/v1/layers/" + id + "/features", "#18753c"); });
    (geo.products || []).forEach(function (id) { overlay("/api/v1/products/" + id + "/features", "#6a6af4"); });
  }

  document.body.addEventListener("htmx:afterSwap", function (event) {
    var section = event.target.closest && event.target.closest("[data-module], .hv-module__preview");
    if (!section) return;
    var body = section.querySelector(".hv-module__body");
    if (body) raiseMarking(body);
    section.querySelectorAll(".hv-module__map").forEach(drawMap);
  });
})();
