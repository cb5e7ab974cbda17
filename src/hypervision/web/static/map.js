/* The map page: entries as points or server-side clusters, zones, layers, live refresh, the
   replay slider, zone drawing, and the offline base map (boundaries shipped with the app). */
(function () {
  "use strict";
  var element = document.getElementById("carte");
  if (!element || !window.L) return;
  var body = document.body;
  var state = document.getElementById("carte-etat");
  var query = element.dataset.query || "";
  var map = L.map(element, { attributionControl: !!body.dataset.tiles, preferCanvas: false });
  var params = new URLSearchParams(location.search);
  map.setView([parseFloat(params.get("lat")) || 48.8566, parseFloat(params.get("lon")) || 2.3522],
              parseInt(params.get("z"), 10) || 12);

  // --- base map: the configured tiles, else (or when they fail) the shipped boundaries -----
  var fallbackShown = false;
  function showFallback() {
    if (fallbackShown) return;
    fallbackShown = true;
    element.classList.add("hv-map--offline");
    element.dataset.base = "boundaries";
    var styles = {
      regions: { color: "#6a6af4", weight: 2, fill: false },
      departements: { color: "#9a9aca", weight: 1, fillColor: "#f5f5fe", fillOpacity: 0.6 },
      paris: { color: "#000091", weight: 2, fill: false }
    };
    ["departements", "regions", "paris"].forEach(function (name) {
      fetch(element.dataset.boundaries + name + ".geojson").then(function (r) { return r.json(); })
        .then(function (data) {
          var layer = L.geoJSON(data, { style: styles[name], interactive: false }).addTo(map);
          layer.bringToBack();
          element.dataset["boundaries" + name.charAt(0).toUpperCase() + name.slice(1)] = String(data.features.length);
        });
    });
  }
  if (body.dataset.tiles) {
    var loaded = 0, failed = 0;
    var tiles = L.tileLayer(body.dataset.tiles, { attribution: body.dataset.tilesAttribution || "", maxZoom: 19 });
    tiles.on("tileload", function () { loaded += 1; });
    tiles.on("tileerror", function () {
      failed += 1;
      if (loaded === 0 && failed >= 2) { map.removeLayer(tiles); showFallback(); }
    });
    tiles.addTo(map);
    element.dataset.base = "tiles";
  } else {
    showFallback();
  }

  // --- entries: points or clusters from the server, for the view and zoom -------------------
  var entries = L.layerGroup().addTo(map);
  var replayUntil = "";  // the time chosen on the replay slider (replay.js): "" is live
  function until() { return replayUntil; }
  function icon(severity, count) {
    var label = count ? String(count > 999 ? Math.round(count / 100) / 10 + "k" : count) : "";
    return L.divIcon({
      className: "hv-marker hv-marker--" + severity + (count ? " hv-marker--cluster" : ""),
      html: "<span>" + label + "</span>",
      iconSize: count ? [34, 34] : [16, 16]
    });
  }
  function escapeText(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }
  var RANK = { info: 0, minor: 1, major: 2, critical: 3 };
  var loading = null;
  function refresh() {
    var b = map.getBounds();
    var view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) {
      return Math.max(-180, Math.min(180, v)).toFixed(5);
    }).join(",");
    var url = "/api/v1/map/entries?view=" + view + "&zoom=" + map.getZoom() + (query ? "&" + query : "");
    var at = until();
    if (at) url += "&until=" + encodeURIComponent(at);
    if (loading) loading.abort();
    loading = new AbortController();
    fetch(url, { credentials: "same-origin", signal: loading.signal }).then(function (r) {
      if (r.status === 401) { location.href = "/connexion?expiree=1&suite=" + encodeURIComponent(location.pathname + location.search); return null; }
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (!data) return;
      entries.clearLayers();
      data.points.forEach(function (p) {
        L.marker([p.lat, p.lon], { icon: icon(p.severity), title: p.title, keyboard: true, alt: p.title,
                                   zIndexOffset: RANK[p.severity] * 1000 })  // the gravest on top
          .bindPopup('<a href="/entrees/' + p.id + '">' + escapeText(p.title) + "</a>")
          .addTo(entries);
      });
      data.clusters.forEach(function (c) {
        L.marker([c.lat, c.lon], { icon: icon(c.severity, c.count), title: String(c.count), keyboard: true })
          .on("click", function () { map.fitBounds([[c.bbox[1], c.bbox[0]], [c.bbox[3], c.bbox[2]]], { maxZoom: map.getZoom() + 3 }); })
          .addTo(entries);
      });
      element.dataset.total = String(data.total);
      element.dataset.clustered = String(data.clustered);
      if (state) {
        var text = data.clustered ? state.dataset.grouped : state.dataset.points;
        state.textContent = (text || "%(n)s").replace("%(n)s", data.total);
      }
    }).catch(function () { /* aborted by a newer request */ });
  }
  var timer = null;
  function soon(delay) { clearTimeout(timer); timer = setTimeout(refresh, delay); }
  map.on("moveend", function () { soon(150); });
  document.addEventListener("hv:replay", function (event) {
    replayUntil = event.detail.until || "";
    soon(250);
  });
  document.addEventListener("hv:entry", function (event) {
    var box = event.detail.bbox;
    if (!box || until()) return;  // replaying the past: the live view waits
    if (map.getBounds().intersects([[box[1], box[0]], [box[3], box[2]]])) soon(500);
  });

  // --- zones and layers ------------------------------------------------------------------------
  var zonesLayer = L.geoJSON(null, {
    style: function (f) { return { color: f.properties.kind === "evacuation" ? "#ce0500" : "#000091", weight: 2, fillOpacity: 0.08 }; },
    onEachFeature: function (f, layer) { layer.bindTooltip(document.createTextNode(String(f.properties.name))); }
  }).addTo(map);
  fetch("/api/v1/zones", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : []; })
    .then(function (zones) {
      zones.forEach(function (z) { zonesLayer.addData({ type: "Feature", geometry: z.geometry, properties: { name: z.name, kind: z.kind, id: z.id } }); });
      element.dataset.zones = String(zones.length);
      var chosen = element.dataset.zone && zones.filter(function (z) { return z.id === element.dataset.zone; })[0];
      if (chosen) map.fitBounds(L.geoJSON(chosen.geometry).getBounds());
    });
  var zonesToggle = document.getElementById("voir-zones");
  if (zonesToggle) zonesToggle.addEventListener("change", function () {
    if (zonesToggle.checked) zonesLayer.addTo(map); else map.removeLayer(zonesLayer);
  });
  var shown = {};
  function toggleLayer(box) {
    var id = box.dataset.layer;
    if (!box.checked) { if (shown[id]) { map.removeLayer(shown[id]); delete shown[id]; } return; }
    fetch("/api/v1/layers/" + id + "/features", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        shown[id] = L.geoJSON(data, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 4, color: "#18753c" }); },
          style: { color: "#18753c", weight: 2 },
          onEachFeature: function (f, layer) { if (f.properties && f.properties.name) layer.bindTooltip(document.createTextNode(String(f.properties.name))); }
        }).addTo(map);
      });
  }
  document.querySelectorAll("[data-layer]").forEach(function (box) {
    box.addEventListener("change", function () { toggleLayer(box); });
    if (box.checked) toggleLayer(box);
  });

  // --- drawing a zone (watch officers) ----------------------------------------------------------
  var start = document.getElementById("dessin-debut");
  if (start) {
    var corners = [], outline = null, drawing = false;
    var field = document.getElementById("zone-geometrie");
    function redraw() {
      if (outline) map.removeLayer(outline);
      outline = corners.length ? L.polygon(corners, { color: "#ce0500", dashArray: "4" }).addTo(map) : null;
    }
    start.addEventListener("click", function () { drawing = true; corners = []; redraw(); element.classList.add("hv-map--drawing"); });
    map.on("click", function (event) { if (drawing) { corners.push([event.latlng.lat, event.latlng.lng]); redraw(); } });
    document.getElementById("dessin-fin").addEventListener("click", function () {
      drawing = false;
      element.classList.remove("hv-map--drawing");
      if (corners.length < 3) return;
      var ring = corners.map(function (c) { return [Number(c[1].toFixed(6)), Number(c[0].toFixed(6))]; });
      ring.push(ring[0]);
      field.value = JSON.stringify({ type: "Polygon", coordinates: [ring] });
      document.getElementById("zone-nom").focus();
    });
    document.getElementById("dessin-effacer").addEventListener("click", function () { corners = []; field.value = ""; redraw(); });
  }

  refresh();
})();
