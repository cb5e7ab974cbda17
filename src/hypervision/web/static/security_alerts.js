// Security alerts, live, on every page of a security officer (docs/adr/0040, 0046): the
// security_alert topic of the live stream (only security officers' streams receive it). A
// raised alert shows a DSFR notice at the top right of the page (and, if the officer allowed
// it, a browser notification), and the menu's badge is refreshed. Neither says more than the
// event does: the rule, the severity, the kind's name, the number of records, the subject.
(function () {
  "use strict";
  var box = document.getElementById("alertes-direct");
  if (!box || !window.EventSource) return;
  var lastEventId = "";
  var attempt = 0;
  var SEVERITY = { low: "info", medium: "warning", high: "error", critical: "error" };

  function refreshBadge() {
    var link = document.getElementById("lien-alertes");
    if (!link) return;
    fetch("/securite/alertes/badge", { credentials: "same-origin", headers: { "X-Hypervision-Background": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) link.innerHTML = html; }, function () {});
  }

  function text(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function severityName(severity) {
    var key = "severity" + severity.charAt(0).toUpperCase() + severity.slice(1);
    return box.dataset[key] || severity;
  }

  function notifyBrowser(alert) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      var note = new Notification(box.dataset.title + " — " + severityName(alert.severity), {
        body: alert.rule_name + " (" + alert.record_count + " " + box.dataset.records + ")",
        tag: "hv-alert-" + alert.id
      });
      note.onclick = function () { window.focus(); window.location.href = "/securite/alertes/" + alert.id; };
    } catch (e) { /* some browsers only notify from a service worker: the notice is enough */ }
  }

  function toast(alert) {
    var notice = text("div", "fr-alert fr-alert--sm fr-alert--" + (SEVERITY[alert.severity] || "warning") + " hv-toast");
    notice.setAttribute("role", "alert");
    notice.dataset.alert = alert.id;
    notice.appendChild(text("h3", "fr-alert__title", box.dataset.title + " — " + severityName(alert.severity)));
    notice.appendChild(text("p", "", alert.rule_name + " : " + alert.subject_name + " (" +
      alert.record_count + " " + box.dataset.records + ")"));
    var open = text("a", "fr-link", box.dataset.open);
    open.href = "/securite/alertes/" + alert.id;
    notice.appendChild(text("p")).appendChild(open);
    if ("Notification" in window && Notification.permission === "default") {
      var ask = text("button", "fr-btn fr-btn--sm fr-btn--tertiary fr-mt-1w hv-toast-notify", box.dataset.notify);
      ask.type = "button";
      ask.addEventListener("click", function () {
        Notification.requestPermission().then(function () { ask.remove(); });
      });
      notice.appendChild(ask);
    }
    var close = text("button", "fr-btn--close fr-btn", box.dataset.close);
    close.type = "button";
    close.title = box.dataset.close;
    close.addEventListener("click", function () { notice.remove(); });
    notice.appendChild(close);
    box.insertBefore(notice, box.firstChild);
    while (box.children.length > 4) box.removeChild(box.lastChild);
  }

  function onRaise(event) {
    if (event.lastEventId) lastEventId = event.lastEventId;
    var alert = JSON.parse(event.data);
    toast(alert);
    notifyBrowser(alert);
    refreshBadge();
  }

  function connect() {
    var url = "/api/v1/stream?topic=security_alert" + (lastEventId ? "&since=" + encodeURIComponent(lastEventId) : "");
    var stream = new EventSource(url);
    stream.addEventListener("security_alert.raise", onRaise);
    ["security_alert.merge", "security_alert.acknowledged", "security_alert.closed"].forEach(function (type) {
      stream.addEventListener(type, function (event) {
        if (event.lastEventId) lastEventId = event.lastEventId;
        refreshBadge();
      });
    });
    stream.addEventListener("open", function () { attempt = 0; box.dataset.live = "open"; });
    stream.addEventListener("revoked", function () { stream.close(); });
    stream.addEventListener("resync", function () { stream.close(); lastEventId = ""; setTimeout(connect, 300); });
    stream.addEventListener("shutdown", function () { stream.close(); setTimeout(connect, 200 + Math.random() * 800); });
    stream.addEventListener("error", function () {
      stream.close();
      box.dataset.live = "lost";
      attempt += 1;
      var delay = Math.min(30, Math.pow(2, attempt - 1)) * (0.5 + Math.random() * 0.5);
      setTimeout(connect, delay * 1000);
    });
  }
  connect();
})();
