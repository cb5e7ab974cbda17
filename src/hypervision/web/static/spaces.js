/* A space's page (docs/adr/0041): each module loads on its own (htmx, in parallel) and loads
   again when the live stream (app.js) tells an event of one of its topics — at most once a
   second per module; the page's protection marking rises to the highest module's; map
   modules draw their GeoJSON (and the layers and products they name, read as the reader).
   The editor's previews (space_editor.js) are drawn by the same code. */
(function () {
  "use strict";
  var space = document.getElementById("espace") || document.createElement("div");

  // --- layout: the grid's places (CSSOM: the pages' CSP allows no style attribute) ----------
  space.querySelectorAll("[data-module]").forEach(function (section) {
    ["x", "y", "w", "h"].forEach(function (name) {
      section.style.setProperty("--" + name, section.dataset[name]);
    });
  });

  // --- live: refresh the modules of the event's topic -----------------------------------------
  // At once on the first event, then at most once a second while events keep coming (a burst
  // of imported rows reloads a module twice, not once per row).
  var quiet = {}, again = {};
  function refresh(section) {
    var id = section.dataset.module;
    if (quiet[id]) { again[id] = true; return; }
    htmx.trigger(section, "hv:refresh");
    quiet[id] = setTimeout(function () {
      delete quiet[id];
      if (again[id]) { delete again[id]; refresh(section); }
    }, 1000);
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
      if (topics.indexOf(topic) >= 0 || topics.indexOf(one) >= 0) refresh(section);
    });
  });

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
