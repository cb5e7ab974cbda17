/* Drafts that never lose text.
   - form[data-autosave="<name>"]: what is typed is kept in this browser (localStorage, one key
     per form and user), given back after a reload with a notice, dropped once the form went
     through (the next page does not show it again with an error).
   - form[data-server-autosave="<url>"]: saved on the server shortly after typing stops (the
     answer gives the version the form carries from then on); a button of the form waits for a
     save under way before it acts.
   The new-entry form keeps its own draft (app.js). No inline script (strict CSP). */
(function () {
  "use strict";
  var user = document.body.dataset.user || "";
  var english = (document.documentElement.lang || "fr").indexOf("en") === 0;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var SENT = "hv-draft-sent";
  var SKIPPED = ["csrf_token", "etag", "idempotency_key"];

  function say(fr, en) { return english ? en : fr; }
  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }
  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      if (!el.name || SKIPPED.indexOf(el.name) >= 0) return false;
      if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
      return el.tagName === "INPUT" && ["text", "search", "email", "number", "url", "tel", "datetime-local", ""].indexOf(el.type) >= 0;
    });
  }
  function values(form) {
    var out = {};
    fields(form).forEach(function (el) { out[el.name] = el.value; });
    return out;
  }
  function hasError(form) {
    return form.querySelector(".fr-alert--error, .fr-error-text, .fr-input-group--error") !== null;
  }

  // --- drafts kept in this browser ---------------------------------------------------------------
  function localDraft(form) {
    var store = storage();
    if (!store || !user) return;
    var key = "hv-draft:" + user + ":" + form.dataset.autosave;
    form.hvDraftKey = key;
    var original = values(form);
    var saved = null;
    try { saved = JSON.parse(store.getItem(key) || "null"); } catch (e) { saved = null; }
    var differs = saved && Object.keys(saved).some(function (name) {
      return form.elements[name] && saved[name] !== form.elements[name].value;
    });
    var typed = saved && Object.keys(saved).some(function (name) { return saved[name] && saved[name].trim(); });
    if (differs && typed) {
      Object.keys(saved).forEach(function (name) {
        var el = form.elements[name];
        if (el && typeof el.value === "string" && fields(form).indexOf(el) >= 0) el.value = saved[name];
      });
      var notice = document.createElement("div");
      notice.className = "fr-alert fr-alert--info fr-alert--sm fr-mb-2w hv-draft-restored";
      notice.setAttribute("role", "status");
      var text = document.createElement("p");
      text.textContent = say("Brouillon restauré : ce texte tapé sur cet ordinateur n'a pas encore été envoyé. ",
        "Draft restored: this text typed on this computer has not been sent yet. ");
      var discard = document.createElement("button");
      discard.type = "button";
      discard.className = "fr-btn fr-btn--sm fr-btn--tertiary-no-outline";
      discard.textContent = say("Effacer le brouillon", "Discard the draft");
      discard.addEventListener("click", function () {
        store.removeItem(key);
        Object.keys(original).forEach(function (name) { if (form.elements[name]) form.elements[name].value = original[name]; });
        notice.remove();
      });
      text.appendChild(discard);
      notice.appendChild(text);
      form.insertBefore(notice, form.firstChild);
    }
    var timer = null;
    function save() {
      timer = null;
      var now = values(form);
      var changed = Object.keys(now).some(function (name) { return now[name] !== original[name]; });
      try {
        if (changed) store.setItem(key, JSON.stringify(now)); else store.removeItem(key);
      } catch (e) { /* storage full or off */ }
    }
    function later() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(save, 300);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    // leaving the page (a link, a reload, the tab closed) before the short wait: kept all the same
    window.addEventListener("pagehide", function () { if (timer) { clearTimeout(timer); save(); } });
    form.addEventListener("submit", function () {
      if (timer) { clearTimeout(timer); save(); }
      try { sessionStorage.setItem(SENT, key); } catch (e) { /* storage off */ }
    });
  }

  // A form sent on the previous page: gone through unless it is shown again with an error.
  function settleSent() {
    var key = null;
    try { key = sessionStorage.getItem(SENT); } catch (e) { return; }
    if (!key || !user) return;
    if (location.pathname === "/connexion") return;  // signed out meanwhile: nothing was saved
    sessionStorage.removeItem(SENT);
    var nav = window.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    if (nav && nav.responseStatus >= 400) return;  // refused (an error page): the draft stays
    var again = Array.prototype.filter.call(document.querySelectorAll("form[data-autosave]"), function (form) {
      return "hv-draft:" + user + ":" + form.dataset.autosave === key;
    })[0];
    if (again && hasError(again)) return;
    var store = storage();
    if (store) store.removeItem(key);
  }

  // --- drafts saved on the server ----------------------------------------------------------------
  function serverDraft(form) {
    var url = form.dataset.serverAutosave;
    var status = form.querySelector("#brouillon-etat") || document.createElement("p");
    var timer = null;
    var running = null;
    var again = false;
    var stopped = false;
    function show(message, failed) {
      status.textContent = message;
      status.classList.toggle("fr-error-text", !!failed);
    }
    function save() {
      timer = null;
      if (stopped) return Promise.resolve();
      if (running) { again = true; return running; }
      var data = new FormData(form);
      var edits = typedSince;
      show(say("Enregistrement du brouillon…", "Saving the draft…"));
      running = fetch(url, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
      }).then(function (response) {
        var json = (response.headers.get("content-type") || "").indexOf("json") >= 0;
        return (json ? response.json() : Promise.resolve({})).then(function (answer) {
          if (response.ok && answer.etag) {
            form.elements.etag.value = answer.etag;
            show(answer.message);
            var preview = form.querySelector("[data-preview]");  // rendered by the server (nh3)
            if (preview && typeof answer.narrative_html === "string") preview.innerHTML = answer.narrative_html;
            // saved on the server: a copy in this browser is only for what is not (yet)
            var store = storage();
            if (form.hvDraftKey && store && edits === typedSince) {
              setTimeout(function () { if (edits === typedSince) store.removeItem(form.hvDraftKey); }, 400);
            }
            return;
          }
          if (response.status === 412) stopped = true;  // someone else saved: no overwriting
          show(answer.message || say("Brouillon non enregistré : le serveur ne répond pas.",
            "Draft not saved: the server does not answer."), true);
        });
      }, function () {
        show(say("Brouillon non enregistré (hors ligne) : votre texte reste dans la page.",
          "Draft not saved (offline): your text stays on the page."), true);
      }).then(function () {
        running = null;
        if (again) { again = false; return save(); }
      });
      return running;
    }
    var typedSince = 0;
    function later() {
      typedSince += 1;
      if (timer) clearTimeout(timer);
      timer = setTimeout(save, 1500);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    // The buttons send the whole form (it carries the analysis): first let a save under way
    // end, so that the version they send is the one just saved.
    form.addEventListener("submit", function (event) {
      if (timer) { clearTimeout(timer); timer = null; }
      if (!running) return;
      event.preventDefault();
      var submitter = event.submitter;
      running.then(function () { form.requestSubmit(submitter); });
    });
  }

  settleSent();
  document.querySelectorAll("form[data-autosave]").forEach(localDraft);
  document.querySelectorAll("form[data-server-autosave]").forEach(serverDraft);
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target;
    if (!root.querySelectorAll) return;
    root.querySelectorAll("form[data-autosave]").forEach(function (form) {
      if (form.dataset.autosaveReady) return;
      form.dataset.autosaveReady = "1";
      localDraft(form);
    });
  });
  document.querySelectorAll("form[data-autosave]").forEach(function (form) { form.dataset.autosaveReady = "1"; });
}());
