/* The map page: entries as points (grouped on screen when close) or server-side clusters, their
   popups, zones, layers, live refresh, the replay slider, zone drawing; the base map is app.js's. */
(function () {
  "use strict";
  var element = document.getElementById("carte");
  if (!element || !window.L) return;
  var body = document.body;
  var state = document.getElementById("carte-etat");
  var query = element.dataset.query || "";
  var map = L.map(element, { attributionControl: false, maxZoom: 19 });
  var params = new URLSearchParams(location.search);
  map.setView([parseFloat(params.get("lat")) || 48.8566, parseFloat(params.get("lon")) || 2.3522],
              parseInt(params.get("z"), 10) || 12);

  // --- base map: the PMTiles file, the configured tiles, else the shipped boundaries (app.js) --
  if (window.hvBaseMap) window.hvBaseMap(map, element);

  // --- entries: points or clusters from the server, for the view and zoom -------------------
  var entries = L.layerGroup().addTo(map);
  var replayUntil = "";  // the time chosen on the replay slider (replay.js): "" is live
  function until() { return replayUntil; }
  // Every marker is a target of 24 px at least (WCAG 2.2, target size): a point's box is 24 px
  // with a 16 px disc drawn in it (app.css), a group's 34 px; markers never overlap (group()).
  var POINT = 24, GROUPED = 34;
  function icon(severity, count) {
    var label = count ? String(count > 999 ? Math.round(count / 100) / 10 + "k" : count) : "";
    return L.divIcon({
      className: "hv-marker hv-marker--" + severity + (count ? " hv-marker--cluster" : " hv-marker--point"),
      html: "<span>" + label + "</span>",
      iconSize: count ? [GROUPED, GROUPED] : [POINT, POINT]
    });
  }
  var RANK = { info: 0, minor: 1, major: 2, critical: 3 };
  var severities = JSON.parse(element.dataset.severities || "{}");
  var timeFormat = new Intl.DateTimeFormat(document.documentElement.lang || "fr", { dateStyle: "short", timeStyle: "short" });
  // A popup built from text nodes (titles are user input): the title linked to the entry, its
  // severity and, once read from the API, its time.
  function popupOf(points) {
    var box = document.createElement("div");
    box.className = "hv-map-popup";
    var list = document.createElement(points.length > 1 ? "ul" : "div");
    points.forEach(function (p) {
      var item = document.createElement(points.length > 1 ? "li" : "div");
      var link = document.createElement("a");
      link.href = "/entrees/" + p.id;
      link.textContent = p.title;
      var meta = document.createElement("p");
      meta.className = "fr-text--xs fr-mb-0";
      var severity = document.createElement("span");
      severity.className = "hv-dot hv-dot--" + p.severity;
      severity.setAttribute("aria-hidden", "true");
      var time = document.createElement("time");
      time.dataset.entry = String(p.id);
      meta.append(severity, document.createTextNode(" " + (severities[p.severity] || p.severity) + " · "), time);
      item.append(link, meta);
      list.append(item);
    });
    box.append(list);
    return box;
  }
  function fillTimes(popup) {
    popup.getElement().querySelectorAll("time[data-entry]:not([datetime])").forEach(function (time) {
      fetch("/api/v1/entries/" + time.dataset.entry, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (entry) {
          if (!entry) return;
          time.setAttribute("datetime", entry.occurred_at);
          time.textContent = timeFormat.format(new Date(entry.occurred_at));
          if (popup.isOpen()) popup.update();  // taller now: panned again into view if needed
        });
    });
  }
  map.on("popupopen", function (event) { fillTimes(event.popup); });
  // Client-side grouping of the points the server sent one by one (street level): points
  // closer than GROUP px on screen make one marker, the gravest severity, the count inside.
  // Then any two markers whose boxes would overlap (the server's clusters included) are
  // merged, so that each stays a whole target: with many entries close together, markers of
  // 34 px would otherwise hide one another.
  var GROUP = 28;
  function where(g) {
    return L.latLngBounds(g.points.map(function (p) { return [p.lat, p.lon]; })
      .concat(g.clusters.map(function (c) { return [c.lat, c.lon]; }))).getCenter();
  }
  function count(g) {
    return g.points.length + g.clusters.reduce(function (n, c) { return n + c.count; }, 0);
  }
  function gravest(g) {
    return g.points.concat(g.clusters).reduce(function (worst, m) {
      return RANK[m.severity] > RANK[worst] ? m.severity : worst;
    }, "info");
  }
  function group(points, clusters) {
    var groups = [];
    points.slice().sort(function (a, b) { return RANK[b.severity] - RANK[a.severity]; }).forEach(function (p) {
      var at = map.latLngToLayerPoint([p.lat, p.lon]);
      var home = groups.filter(function (g) { return g.at.distanceTo(at) < GROUP; })[0];
      if (home) home.points.push(p); else groups.push({ at: at, points: [p], clusters: [] });
    });
    clusters.forEach(function (c) { groups.push({ points: [], clusters: [c] }); });
    groups.forEach(function (g) { g.at = map.latLngToLayerPoint(where(g)); });
    function half(g) { return (count(g) > 1 ? GROUPED : POINT) / 2; }
    for (var merged = true; merged;) {
      merged = false;
      for (var i = 0; i < groups.length && !merged; i += 1) {
        for (var j = i + 1; j < groups.length; j += 1) {
          var a = groups[i], b = groups[j];
          var gap = Math.max(Math.abs(a.at.x - b.at.x), Math.abs(a.at.y - b.at.y));  // boxes, not discs
          if (gap < half(a) + half(b)) {
            a.points = a.points.concat(b.points);
            a.clusters = a.clusters.concat(b.clusters);
            a.at = map.latLngToLayerPoint(where(a));
            groups.splice(j, 1);
            merged = true;
            break;
          }
        }
      }
    }
    groups.forEach(function (g) {
      g.points.sort(function (a, b) { return RANK[b.severity] - RANK[a.severity]; });
    });
    return groups;
  }
  var shownMarkers = {};  // key → marker: kept across refreshes, so an open popup stays open
  function show(key, make) {
    if (!shownMarkers[key]) shownMarkers[key] = make().addTo(entries);
    return key;
  }
  function groupMarker(g) {
    var points = g.points, first = points[0];
    var bounds = L.latLngBounds(points.map(function (p) { return [p.lat, p.lon]; }));
    var marker = L.marker(bounds.getCenter(), { icon: icon(first.severity, points.length), title: String(points.length),
                                                keyboard: true, zIndexOffset: RANK[first.severity] * 1000 });
    // Zooming in separates them, unless they share a place (or the map is at its closest):
    // then the popup lists them.
    var apart = map.getZoom() < map.getMaxZoom() &&
      map.project(bounds.getNorthWest(), map.getMaxZoom()).distanceTo(map.project(bounds.getSouthEast(), map.getMaxZoom())) >= GROUP;
    if (apart) {
      marker.on("click", function () { map.fitBounds(bounds.pad(0.3), { maxZoom: map.getMaxZoom() }); });
    } else {
      marker.bindPopup(popupOf(points), { minWidth: 200 });
    }
    return marker;
  }
  // The server's clusters (with any point merged into them): clicking zooms to what they hold.
  function clusterMarker(g) {
    var n = count(g), severity = gravest(g);
    var bounds = L.latLngBounds(g.points.map(function (p) { return [p.lat, p.lon]; }));
    g.clusters.forEach(function (c) { bounds.extend([[c.bbox[1], c.bbox[0]], [c.bbox[3], c.bbox[2]]]); });
    return L.marker(where(g), { icon: icon(severity, n), title: String(n), keyboard: true,
                                zIndexOffset: RANK[severity] * 1000 })
      .on("click", function () { map.fitBounds(bounds, { maxZoom: map.getZoom() + 3 }); });
  }
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
      var keep = {}, zoom = map.getZoom();
      group(data.points, data.clusters).forEach(function (g) {
        var p = g.points[0];
        if (g.clusters.length === 0 && g.points.length === 1) {
          keep[show("p" + p.id + p.severity + p.title, function () {
            return L.marker([p.lat, p.lon], { icon: icon(p.severity), title: p.title, keyboard: true, alt: p.title,
                                              zIndexOffset: RANK[p.severity] * 1000 })  // the gravest on top
              .bindPopup(popupOf([p]), { minWidth: 200 });
          })] = true;
        } else if (g.clusters.length === 0) {
          var ids = g.points.map(function (q) { return q.id + q.severity + q.title; }).sort().join(",");
          keep[show("g" + zoom + ":" + ids, function () { return groupMarker(g); })] = true;
        } else {
          var members = g.clusters.map(function (c) { return [c.lat, c.lon, c.count, c.severity].join(","); })
            .concat(g.points.map(function (q) { return q.id + q.severity + q.title; })).sort().join(";");
          keep[show("c" + zoom + ":" + members, function () { return clusterMarker(g); })] = true;
        }
      });
      Object.keys(shownMarkers).forEach(function (key) {
        if (!keep[key]) { entries.removeLayer(shownMarkers[key]); delete shownMarkers[key]; }
      });
      element.dataset.total = String(data.total);
      element.dataset.clustered = String(data.clustered);
      element.dataset.markers = String(entries.getLayers().length);
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
    var at = event.detail.until || "";
    if (at === replayUntil) return;  // the slider's first word (live): the view has it already
    replayUntil = at;
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
  // A feature's tooltip: its name, or (a data product's row) its first text properties.
  function caption(properties) {
    if (!properties) return "";
    if (properties.name) return String(properties.name);
    return Object.keys(properties).filter(function (k) { return typeof properties[k] === "string"; })
      .slice(0, 3).map(function (k) { return properties[k]; }).join(" · ");
  }
  function toggleLayer(box) {
    var product = box.dataset.product, id = product || box.dataset.layer;
    var color = product ? "#6a6af4" : "#18753c";
    if (!box.checked) { if (shown[id]) { map.removeLayer(shown[id]); delete shown[id]; } return; }
    var url = product ? "/api/v1/products/" + id + "/features" : "/api/v1/layers/" + id + "/features";
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : { type: "FeatureCollection", features: [] }; })
      .then(function (data) {
        box.dataset.features = String(data.features.length);
        shown[id] = L.geoJSON(data, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 5, color: color }); },
          style: { color: color, weight: 2 },
          onEachFeature: function (f, layer) { var text = caption(f.properties); if (text) layer.bindTooltip(document.createTextNode(text)); }
        }).addTo(map);
      });
  }
  document.querySelectorAll("[data-layer], [data-product]").forEach(function (box) {
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
