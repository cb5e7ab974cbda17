// The security console (/securite, docs/adr/0039): the audit trail live, from the audit topic.
// Pausing keeps the stream open and holds what arrives; resuming shows it all, in order. When
// the stream drops, it is reopened from the last record received (?since=): nothing is lost.
(function () {
  "use strict";
  var body = document.getElementById("journal-direct");
  if (!body || !window.EventSource) return;
  var state = document.getElementById("etat-journal");
  var button = document.getElementById("pause-journal");
  var readable = (body.dataset.readable || "").split(" ");
  var base = body.dataset.stream;
  var lastSeq = new URL(base, location.href).searchParams.get("since") || "0";
  var paused = false;
  var held = [];
  var attempt = 0;
  var stream = null;

  function show(kind, text) {
    state.className = "fr-badge fr-badge--sm " + (kind === "open" ? "fr-badge--success" : kind === "lost" ? "fr-badge--warning" : "fr-badge--info");
    state.textContent = text;
  }
  function cell(row, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content == null ? "" : String(content);
    row.appendChild(td);
    return td;
  }
  function link(href, text, code) {
    var a = document.createElement("a");
    a.href = href;
    if (code) { var c = document.createElement("code"); c.textContent = text; a.appendChild(c); } else { a.textContent = text; }
    return a;
  }
  function row(r) {
    var tr = document.createElement("tr");
    tr.dataset.seq = r.seq;
    tr.className = "hv-new";
    var at = new Date(r.at);
    cell(tr, at.toLocaleString(document.documentElement.lang || "fr"));
    cell(tr, r.actor_id ? link("/securite/personnes/" + encodeURIComponent(r.actor_id), r.actor_name) : r.actor_name);
    cell(tr, r.actor_organisation || "");
    var action = document.createElement("code"); action.textContent = r.action; cell(tr, action);
    cell(tr, r.surface);
    var badge = document.createElement("span");
    badge.className = "fr-badge fr-badge--sm fr-badge--no-icon " + (r.decision === "allowed" ? "fr-badge--success" : "fr-badge--error");
    badge.textContent = body.dataset[{ allowed: "allowed", denied: "denied", not_found: "notFound" }[r.decision] || "denied"] || r.decision;
    cell(tr, badge);
    cell(tr, (r.labels || []).join(" "));
    var ids = cell(tr, "");
    ids.className = "hv-ids";
    (r.resource_ids || []).slice(0, 5).forEach(function (id) {
      if (readable.indexOf(r.resource_type) >= 0) {
        ids.appendChild(link("/securite/qui-a-vu?type=" + encodeURIComponent(r.resource_type) + "&id=" + encodeURIComponent(id), id.slice(0, 8), true));
      } else {
        var c = document.createElement("code"); c.textContent = id.slice(0, 8); ids.appendChild(c);
      }
      ids.appendChild(document.createTextNode(" "));
    });
    if (r.resource_count > 5) ids.appendChild(document.createTextNode("(+" + (r.resource_count - 5) + ")"));
    cell(tr, r.client_address || "");
    return tr;
  }
  function add(records) {
    var empty = document.getElementById("journal-vide");
    if (empty && records.length) empty.remove();
    records.forEach(function (r) { body.insertBefore(row(r), body.firstChild); });
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  }
  function pausedText() {
    return state.dataset.paused.replace("{n}", String(held.length));
  }
  function onRecord(event) {
    var r = JSON.parse(event.data);
    if (Number(r.seq) <= Number(lastSeq)) return;  // once, in order
    lastSeq = String(r.seq);
    if (paused) { held.push(r); show("paused", pausedText()); return; }
    add([r]);
  }
  function connect() {
    var url = new URL(base, location.href);
    url.searchParams.set("since", lastSeq);
    stream = new EventSource(url.pathname + url.search);
    stream.addEventListener("audit", onRecord);
    stream.addEventListener("open", function () { attempt = 0; show("open", paused ? pausedText() : state.dataset.open); });
    stream.addEventListener("revoked", function () {
      stream.close();
      location.href = "/connexion?expiree=1&suite=" + encodeURIComponent(location.pathname + location.search);
    });
    ["resync", "shutdown"].forEach(function (name) {
      stream.addEventListener(name, function () { stream.close(); setTimeout(connect, 300); });
    });
    stream.addEventListener("error", function () {
      stream.close();
      show("lost", state.dataset.lost);
      attempt += 1;
      setTimeout(connect, Math.min(30, Math.pow(2, attempt)) * 500 * (0.5 + Math.random()));
    });
  }
  button.addEventListener("click", function () {
    paused = !paused;
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    button.textContent = paused ? button.dataset.resume : button.dataset.pause;
    if (paused) { show("paused", pausedText()); return; }
    add(held);
    held = [];
    show("open", state.dataset.open);
  });
  show("connecting", state.dataset.connecting);
  connect();
})();
